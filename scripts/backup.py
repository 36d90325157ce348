"""Back up and restore the product's Redis data.

    python -m scripts.backup dump FILE       # FILE "-" = stdout
    python -m scripts.backup restore FILE    # FILE "-" = stdin
    python -m scripts.backup restore FILE --keep-existing

What is saved: every key under `REDIS_KEY_PREFIX` in the product database
(tickets, hotline queues with their consumer groups, escalations, staff
accounts, ... see core/keys.py) and Rasa's conversation trackers and locks
(the databases and key prefix endpoints.yml gets from scripts/stack.rasa_env).
Other keys on the same server (other counties, other programs) are not touched.

File format: JSON lines, written as the keys are read (no whole copy in memory).
The first line is a header
    {"format": "ecobot-redis-backup", "version": 1, "created": ..., "prefix": ...,
     "rasa_prefix": ..., "dbs": {...}}
then one line per key
    {"store": "product" | "tracker" | "lock", "key": ..., "expire_at_ms": int | null,
     "dump": base64 of Redis's DUMP payload}
and last an end marker {"end": true, "counts": {store: number of keys}}; a file
without it (a backup cut short) is refused before anything is written.
DUMP/RESTORE keeps every type exactly (streams with their consumer groups,
geo sets, hashes). A key's time to live is kept as its absolute expiry time,
so a key that expired between backup and restore is not brought back.

Restore is idempotent: RESTORE ... REPLACE writes each key as it was in the
backup, so running it twice gives the same data. `--keep-existing` leaves keys
that already exist alone (merge into a live system instead of rolling back).

The dump is a logical copy made with SCAN while the system runs, not a
point-in-time snapshot: for that, copy Redis's own append-only file (see
docs/deploy.md). DUMP payloads carry the RDB version: restore into the same or
a newer Redis major version.

Configuration: REDIS_URL (default: the server `make run` starts,
redis://127.0.0.1:6399/0), REDIS_KEY_PREFIX, RASA_TRACKER_DB, RASA_LOCK_DB.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import IO, Callable, Iterable, Iterator

import redis

from core.redis_conn import sync_client_for_db
from scripts.stack import rasa_env

FORMAT = "ecobot-redis-backup"
VERSION = 1
MAKE_RUN_REDIS_URL = "redis://127.0.0.1:6399/0"
STORES = ("product", "tracker", "lock")


@dataclass(frozen=True)
class Target:
    """Where each store lives (database numbers) and its key prefixes, for one deployment."""

    redis_url: str
    prefix: str
    rasa_prefix: str
    dbs: dict[str, int]

    @classmethod
    def from_env(cls) -> "Target":
        """The deployment the environment describes, with the same rules as `make run`."""
        url = os.environ.get("REDIS_URL", "").strip() or MAKE_RUN_REDIS_URL
        prefix = os.environ.get("REDIS_KEY_PREFIX", "").strip() or "ecobot:"
        renv = rasa_env(url, prefix, "")
        base_db = int(redis.Redis.from_url(url).connection_pool.connection_kwargs.get("db", 0))
        return cls(url, prefix, renv["RASA_KEY_PREFIX"], {
            "product": base_db,
            "tracker": int(renv["RASA_TRACKER_DB"]),
            "lock": int(renv["RASA_LOCK_DB"]),
        })

    def pattern(self, store: str) -> str:
        """SCAN pattern of a store. Rasa's stores use `{prefix}:tracker:` / `{prefix}:lock:`."""
        if store == "product":
            return glob_escape(self.prefix) + "*"
        return glob_escape(self.rasa_prefix) + ":" + store + ":*"

    def client(self, store: str) -> redis.Redis:
        return sync_client_for_db(self.redis_url, self.dbs[store], socket_timeout=30)


def glob_escape(text: str) -> str:
    """Escape Redis glob metacharacters so a prefix matches only itself."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _records(r: redis.Redis, store: str, pattern: str) -> Iterator[dict]:
    now_ms = int(time.time() * 1000)
    for key in r.scan_iter(match=pattern, count=1000):
        pipe = r.pipeline(transaction=False)
        pipe.dump(key)
        pipe.pttl(key)
        payload, pttl = pipe.execute()
        if payload is None:  # deleted or expired between SCAN and DUMP
            continue
        yield {
            "store": store,
            "key": base64.b64encode(key).decode() if not _is_text(key) else key.decode(),
            "key_b64": not _is_text(key),
            "expire_at_ms": now_ms + pttl if pttl and pttl > 0 else None,
            "dump": base64.b64encode(payload).decode(),
        }


def _is_text(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def dump(target: Target, out: IO[str]) -> dict[str, int]:
    """Stream the backup to `out`; return the number of keys per store."""
    out.write(json.dumps({
        "format": FORMAT, "version": VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "prefix": target.prefix, "rasa_prefix": target.rasa_prefix, "dbs": target.dbs,
    }, ensure_ascii=False) + "\n")
    counts = {s: 0 for s in STORES}
    for store in STORES:
        r = target.client(store)
        try:
            for rec in _records(r, store, target.pattern(store)):
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                counts[store] += 1
        finally:
            r.close()
    # The trailer tells a complete file from a truncated one.
    out.write(json.dumps({"end": True, "counts": counts}) + "\n")
    out.flush()
    return counts


class BackupError(ValueError):
    pass


def iter_backup(lines: Iterable[str]) -> Iterator[dict]:
    """The key records of a backup, checked line by line; raises BackupError at the
    first bad line, and at the end when the trailer is missing or disagrees."""
    it = iter(lines)
    try:
        header = json.loads(next(it))
    except (StopIteration, json.JSONDecodeError) as e:
        raise BackupError("not a backup file: the first line is not a JSON header") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
        raise BackupError(f"not a {FORMAT} v{VERSION} file")
    yield header
    counts = {s: 0 for s in STORES}
    trailer = None
    for n, line in enumerate(it, 2):
        if not line.strip():
            continue
        if trailer is not None:
            raise BackupError(f"line {n}: data after the end marker")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise BackupError(f"line {n}: not JSON ({e.msg})") from e
        if rec.get("end") is True:
            trailer = rec
            continue
        if rec.get("store") not in STORES or not isinstance(rec.get("key"), str) or not isinstance(rec.get("dump"), str):
            raise BackupError(f"line {n}: not a key record")
        counts[rec["store"]] += 1
        yield rec
    if trailer is None:
        raise BackupError("truncated backup: the end marker is missing")
    if trailer.get("counts") != counts:
        raise BackupError(f"truncated backup: the end marker counts {trailer.get('counts')}, the file holds {counts}")


def check(lines: Iterable[str]) -> tuple[dict, dict[str, int]]:
    """Read a whole backup without writing anything: (header, keys per store)."""
    it = iter_backup(lines)
    header = next(it)
    counts = {s: 0 for s in STORES}
    for rec in it:
        counts[rec["store"]] += 1
    return header, counts


def restore(target: Target, open_lines: Callable[[], Iterable[str]], keep_existing: bool = False) -> dict[str, int]:
    """Write the backup's keys back. The file is checked completely first (nothing
    is written from a truncated or foreign file), then read again and restored.
    Returns counts of restored / skipped_expired / kept_existing keys."""
    header, _ = check(open_lines())
    if header.get("prefix") != target.prefix:
        raise BackupError(
            f"the backup holds prefix {header.get('prefix')!r}, REDIS_KEY_PREFIX is {target.prefix!r}: "
            "set REDIS_KEY_PREFIX to the backup's prefix")
    if header.get("rasa_prefix") != target.rasa_prefix:
        raise BackupError(f"the backup's Rasa key prefix {header.get('rasa_prefix')!r} differs from {target.rasa_prefix!r}")
    result = {"restored": 0, "skipped_expired": 0, "kept_existing": 0}
    clients = {s: target.client(s) for s in STORES}
    pipes = {s: c.pipeline(transaction=False) for s, c in clients.items()}
    try:
        now_ms = int(time.time() * 1000)
        it = iter_backup(open_lines())
        next(it)  # header
        pending = 0
        for rec in it:
            key = base64.b64decode(rec["key"]) if rec.get("key_b64") else rec["key"].encode()
            exp = rec.get("expire_at_ms")
            if exp is not None and exp <= now_ms:
                result["skipped_expired"] += 1
                continue
            if keep_existing and clients[rec["store"]].exists(key):
                result["kept_existing"] += 1
                continue
            args = ["RESTORE", key, exp if exp is not None else 0, base64.b64decode(rec["dump"]), "REPLACE"]
            if exp is not None:
                args.append("ABSTTL")  # the absolute expiry the key had
            pipes[rec["store"]].execute_command(*args)
            result["restored"] += 1
            pending += 1
            if pending >= 500:
                for p in pipes.values():
                    p.execute()
                pending = 0
        for p in pipes.values():
            p.execute()
    finally:
        for c in clients.values():
            c.close()
    return result


def _lines(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        yield from f


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.backup", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="write every product and Rasa key to FILE (JSON lines)")
    d.add_argument("file", help='backup file, "-" for stdout')
    r = sub.add_parser("restore", help="write the keys of FILE back (idempotent)")
    r.add_argument("file", help='backup file, "-" for stdin')
    r.add_argument("--keep-existing", action="store_true", help="leave keys that already exist unchanged")
    args = ap.parse_args(argv)
    target = Target.from_env()
    try:
        if args.cmd == "dump":
            if args.file == "-":
                counts = dump(target, sys.stdout)
            else:
                tmp = args.file + ".part"
                os.makedirs(os.path.dirname(os.path.abspath(args.file)), exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # phone numbers inside
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    counts = dump(target, f)
                    os.fsync(f.fileno())
                os.replace(tmp, args.file)
            print(f"backed up {counts} from {target.redis_url} (prefix {target.prefix!r}) to {args.file}",
                  file=sys.stderr)
        else:
            if args.file == "-":
                data = sys.stdin.read().splitlines()
                result = restore(target, lambda: data, args.keep_existing)
            else:
                result = restore(target, lambda: _lines(args.file), args.keep_existing)
            print(f"restored into {target.redis_url} (prefix {target.prefix!r}): {result}", file=sys.stderr)
    except (BackupError, OSError, redis.RedisError) as e:
        print(f"backup: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
