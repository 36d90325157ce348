"""Staff accounts from the command line.

    python -m bot.staff add-user NAME --role agent|supervisor [--password-stdin]
    python -m bot.staff list-users

The password is read from standard input (one line) with --password-stdin or
when stdin is not a terminal; otherwise it is asked for twice without echo.
Uses REDIS_URL and REDIS_KEY_PREFIX like the gateway.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from bot.staff.accounts import ROLES, AccountError, AccountStore
from bot.staff.audit import AuditLog
from core.redis_conn import create_keys, create_redis
from core.settings import Settings


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码: ")
    if getpass.getpass("再输一次: ") != first:
        raise AccountError("两次输入的密码不一致")
    return first


async def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    redis, keys = create_redis(settings), create_keys(settings)
    try:
        accounts = AccountStore(redis, keys)
        if args.cmd == "add-user":
            existed = await accounts.get(args.name)
            user = await accounts.add_user(args.name, args.role, _read_password(args.password_stdin))
            await AuditLog(redis, keys).record("cli", "add_user", user.name,
                                               {"role": existed.role} if existed else None, {"role": user.role})
            print(f"{'updated' if existed else 'created'} {user.name} ({user.role})")
        else:
            for u in await accounts.list_users():
                print(f"{u.name}\t{u.role}")
        return 0
    finally:
        await redis.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.staff", description="staff console accounts")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add-user", help="create an account or set a new password")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    sub.add_parser("list-users")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except AccountError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
