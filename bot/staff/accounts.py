"""Staff accounts: argon2 password hashes in Redis, lockout after repeated
failed logins (5 within 15 minutes lock the account for 15 minutes).

Hashing and verifying run in a worker thread: argon2 is deliberately slow and
must not stall the gateway's event loop.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.keys import Keys

ROLES = ("agent", "supervisor")
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,32}$")
MIN_PASSWORD = 8
MAX_FAILURES = 5
LOCK_S = 15 * 60

_hasher = PasswordHasher()
# Verified against when the account does not exist, so that a wrong name costs
# as much time as a wrong password (no account enumeration by timing).
_DUMMY_HASH = _hasher.hash("not-a-real-password-just-for-timing")


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


@dataclass(frozen=True)
class LoginResult:
    user: Optional[User]
    locked: bool = False
    failures: int = 0


class AccountError(ValueError):
    pass


class AccountStore:
    def __init__(self, redis, keys: Keys) -> None:
        self.r = redis
        self.keys = keys

    async def add_user(self, name: str, role: str, password: str) -> User:
        """Create or replace an account (a new password also unlocks it)."""
        if not NAME_RE.match(name or ""):
            raise AccountError("用户名需为2-32位字母、数字、点、下划线或短横线")
        if role not in ROLES:
            raise AccountError(f"角色只能是 {' / '.join(ROLES)}")
        if len(password or "") < MIN_PASSWORD:
            raise AccountError(f"密码至少{MIN_PASSWORD}位")
        pw_hash = await asyncio.to_thread(_hasher.hash, password)
        k = self.keys
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(k.staff_user(name), mapping={"name": name, "role": role, "pwhash": pw_hash,
                                                    "created_at": repr(time.time())})
            pipe.sadd(k.staff_users(), name)
            pipe.delete(k.staff_fail(name), k.staff_lock(name))
            await pipe.execute()
        return User(name, role)

    async def get(self, name: str) -> Optional[User]:
        raw = await self.r.hgetall(self.keys.staff_user(name)) if NAME_RE.match(name or "") else {}
        return User(raw["name"], raw["role"]) if raw else None

    async def list_users(self) -> list[User]:
        names = sorted(await self.r.smembers(self.keys.staff_users()))
        users = [await self.get(n) for n in names]
        return [u for u in users if u is not None]

    async def is_locked(self, name: str) -> bool:
        return bool(await self.r.exists(self.keys.staff_lock(name)))

    async def login(self, name: str, password: str) -> LoginResult:
        k = self.keys
        valid_name = bool(NAME_RE.match(name or ""))
        if valid_name and await self.is_locked(name):
            return LoginResult(None, locked=True)
        raw = await self.r.hgetall(k.staff_user(name)) if valid_name else {}
        ok = await asyncio.to_thread(_verify, raw.get("pwhash") or _DUMMY_HASH, password or "")
        if ok and raw:
            await self.r.delete(k.staff_fail(name))
            return LoginResult(User(raw["name"], raw["role"]))
        if not valid_name:
            return LoginResult(None)
        # Count failures for unknown names too: the answer must not tell them apart.
        failures = await self.r.incr(k.staff_fail(name))
        if failures == 1:  # the window starts at the first failure (EXPIRE NX needs Redis 7)
            await self.r.expire(k.staff_fail(name), LOCK_S)
        if failures >= MAX_FAILURES:
            async with self.r.pipeline(transaction=True) as pipe:
                pipe.set(k.staff_lock(name), "1", ex=LOCK_S)
                pipe.delete(k.staff_fail(name))
                await pipe.execute()
            return LoginResult(None, locked=True, failures=int(failures))
        return LoginResult(None, failures=int(failures))


def _verify(pw_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(pw_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
