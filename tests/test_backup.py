"""Backup and restore of the product's Redis data (scripts/backup.py), against a
real Redis: every type the product writes (ticket hashes, index zsets, GEO,
the hotline Streams with their consumer group and pending entries, strings with
a TTL) and Rasa's tracker and lock keys, through the command as `make backup` /
`make restore` run it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis as redis_sync

from core.keys import Keys
from core.redis_conn import create_redis, sync_client_for_db
from core.settings import Settings
from core.ticket_model import ComplaintReport
from core.tickets import TicketStore
from scripts import backup
from scripts.stack import rasa_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def prefix() -> str:
    return f"bk{os.getpid()}{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def env(redis_url, prefix, monkeypatch):
    """The environment of the deployment under test (also set in os.environ for Target.from_env)."""
    values = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    for k in ("RASA_TRACKER_DB", "RASA_LOCK_DB"):
        monkeypatch.delenv(k, raising=False)
    return {**os.environ, **values}


@pytest.fixture
def target(env) -> backup.Target:
    return backup.Target.from_env()


@pytest.fixture
def clients(target):
    cs = {s: sync_client_for_db(target.redis_url, target.dbs[s]) for s in backup.STORES}
    yield cs
    for s, c in cs.items():
        for pattern in (target.prefix + "*", target.rasa_prefix + ":*", "other" + target.prefix + "*"):
            keys = list(c.scan_iter(match=pattern, count=1000))
            if keys:
                c.delete(*keys)
        c.close()


def run_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.backup", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def content(c: redis_sync.Redis, key: bytes):
    """A key's type and full value (DUMP bytes of a hash table depend on its
    insertion history, so the comparison is by value)."""
    t = c.type(key).decode()
    if t == "string":
        return t, c.get(key)
    if t == "hash":
        return t, c.hgetall(key)
    if t == "list":
        return t, c.lrange(key, 0, -1)
    if t == "set":
        return t, c.smembers(key)
    if t == "zset":  # GEO keys are zsets
        return t, c.zrange(key, 0, -1, withscores=True)
    if t == "stream":
        groups = [(g["name"], g["pending"], g["last-delivered-id"]) for g in c.xinfo_groups(key)]
        pending = [(p["message_id"], p["consumer"]) for g in groups
                   for p in c.xpending_range(key, g[0], "-", "+", 1000)]
        return t, (c.xrange(key), groups, pending)
    raise AssertionError(f"unexpected type {t} of {key!r}")


def snapshot(clients, target) -> dict:
    """Every key of the deployment: (store, key) -> (type and value, has a TTL)."""
    out = {}
    for s, c in clients.items():
        for key in c.scan_iter(match=target.pattern(s), count=1000):
            out[(s, key)] = (content(c, key), c.pttl(key) > 0)
    return out


def delete_all(clients, target) -> None:
    for s, c in clients.items():
        keys = list(c.scan_iter(match=target.pattern(s), count=1000))
        if keys:
            c.delete(*keys)


async def populate(target: backup.Target, clients) -> dict:
    """Real product data (two tickets through the real store, one of them taken from
    the hotline queue by a staff consumer) plus Rasa-shaped tracker and lock keys."""
    settings = Settings(redis_url=target.redis_url, redis_key_prefix=target.prefix)
    rc = create_redis(settings)
    store = TicketStore(rc, Keys(target.prefix))
    try:
        first = await store.create(ComplaintReport(
            reporter="oWx_backup_A", channel="wechat", pollution_type="air", description="化工厂夜里冒黑烟",
            location_text="城东工业园", lat=31.20, lon=121.50, occurred="每天晚上", contact_phone="13912345678"),
            idem_key="m1")
        second = await store.create(ComplaintReport(
            reporter="oWx_backup_B", channel="web", pollution_type="noise", description="工地半夜施工",
            location_text="人民路12号", occurred="昨晚", contact_phone=None, anonymous=True), idem_key="m2")
        taken = await store.read_queue("staff-1", count=1)
    finally:
        await rc.close()
    keys = Keys(target.prefix)
    product = clients["product"]
    product.set(keys.wx_token(), "ACCESS_TOKEN_XYZ", ex=600)
    product.set(keys.wx_dedup("m1"), json.dumps({"state": "done", "reply": "好的"}, ensure_ascii=False), ex=600)
    tracker_key = f"{target.rasa_prefix}:tracker:web-backup-1"
    clients["tracker"].set(tracker_key, json.dumps({"sender_id": "web-backup-1", "events": [
        {"event": "user", "text": "报告表要交什么材料"}]}, ensure_ascii=False), ex=2592000)
    clients["lock"].set(f"{target.rasa_prefix}:lock:web-backup-1", json.dumps({"conversation_id": "web-backup-1"}))
    # Another deployment's keys on the same server: never in the backup, never touched.
    product.set("other" + target.prefix + "ticket:X", "theirs")
    return {"tickets": [first.ticket.ticket_id, second.ticket.ticket_id], "taken": len(taken),
            "tracker_key": tracker_key}


async def test_dump_then_restore_brings_back_every_key_exactly(env, target, clients, tmp_path):
    info = await populate(target, clients)
    assert info["taken"] == 1
    file = tmp_path / "b.jsonl"
    res = run_cli(env, "dump", str(file))
    assert res.returncode == 0, res.stderr
    before = snapshot(clients, target)
    assert {s for s, _ in before} == {"product", "tracker", "lock"}
    types = {v[0][0] for v in before.values()}
    assert {"string", "hash", "zset", "stream"} <= types
    assert any(v[0][0] == "stream" and v[0][1][2] for v in before.values())  # a pending entry

    lines = file.read_text(encoding="utf-8").splitlines()
    header, trailer = json.loads(lines[0]), json.loads(lines[-1])
    assert header["prefix"] == target.prefix and header["format"] == backup.FORMAT
    assert trailer["end"] is True
    assert sum(trailer["counts"].values()) == len(lines) - 2 == len(before)
    assert not any(("other" + target.prefix).encode() in k for _, k in before)
    assert oct(file.stat().st_mode & 0o777) == "0o600"  # phone numbers inside

    delete_all(clients, target)
    assert snapshot(clients, target) == {}
    res = run_cli(env, "restore", str(file))
    assert res.returncode == 0, res.stderr
    assert snapshot(clients, target) == before

    # The restored data works through the product's own code.
    rc = create_redis(Settings(redis_url=target.redis_url, redis_key_prefix=target.prefix))
    store = TicketStore(rc, Keys(target.prefix))
    try:
        for tid in info["tickets"]:
            t = await store.get(tid)
            assert t is not None and t.ticket_id == tid
        # The consumer group and its pending entry survived: the next read gets the other ticket.
        nxt = await store.read_queue("staff-2", count=5)
        assert len(nxt) == 1
    finally:
        await rc.close()
    assert clients["product"].get("other" + target.prefix + "ticket:X") == b"theirs"
    ttl = clients["tracker"].pttl(info["tracker_key"])
    assert 2592000 * 1000 - 120_000 < ttl <= 2592000 * 1000


async def test_restore_is_idempotent_and_keep_existing_merges(env, target, clients, tmp_path):
    await populate(target, clients)
    file = tmp_path / "b.jsonl"
    assert run_cli(env, "dump", str(file)).returncode == 0
    token_key = Keys(target.prefix).wx_token()

    first = backup.restore(target, lambda: file.read_text(encoding="utf-8").splitlines())
    state1 = snapshot(clients, target)
    second = backup.restore(target, lambda: file.read_text(encoding="utf-8").splitlines())
    assert snapshot(clients, target) == state1
    assert first["restored"] == second["restored"] > 0

    # A live change is kept with --keep-existing and rolled back without it.
    clients["product"].set(token_key, "NEWER_TOKEN", ex=600)
    res = run_cli(env, "restore", "--keep-existing", str(file))
    assert res.returncode == 0, res.stderr
    assert clients["product"].get(token_key) == b"NEWER_TOKEN"
    assert run_cli(env, "restore", str(file)).returncode == 0
    assert clients["product"].get(token_key) == b"ACCESS_TOKEN_XYZ"
    assert 0 < clients["product"].pttl(token_key) <= 600_000


def test_a_key_that_expired_since_the_backup_is_not_brought_back(env, target, clients, tmp_path):
    keys = Keys(target.prefix)
    clients["product"].set(keys.wx_dedup("soon"), "x", px=400)
    clients["product"].set(keys.wx_dedup("later"), "y", ex=600)
    file = tmp_path / "b.jsonl"
    with open(file, "w", encoding="utf-8") as f:
        counts = backup.dump(target, f)
    assert counts["product"] == 2
    time.sleep(0.6)
    delete_all(clients, target)
    result = backup.restore(target, lambda: file.read_text(encoding="utf-8").splitlines())
    assert result == {"restored": 1, "skipped_expired": 1, "kept_existing": 0}
    assert clients["product"].get(keys.wx_dedup("soon")) is None
    assert clients["product"].get(keys.wx_dedup("later")) == b"y"


def test_a_truncated_or_foreign_backup_is_refused_before_writing(env, target, clients, tmp_path, monkeypatch):
    keys = Keys(target.prefix)
    for i in range(3):
        clients["product"].set(keys.ticket(f"HB2026112900{i:02d}"), f"v{i}")
    file = tmp_path / "b.jsonl"
    assert run_cli(env, "dump", str(file)).returncode == 0
    delete_all(clients, target)

    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(file.read_text(encoding="utf-8").splitlines()[:-2]) + "\n", encoding="utf-8")
    res = run_cli(env, "restore", str(cut))
    assert res.returncode == 1 and "truncated" in res.stderr
    assert snapshot(clients, target) == {}

    other_env = {**env, "REDIS_KEY_PREFIX": "other" + target.prefix}
    res = run_cli(other_env, "restore", str(file))
    assert res.returncode == 1 and "REDIS_KEY_PREFIX" in res.stderr
    assert list(clients["product"].scan_iter(match="other" + target.prefix + "*")) == []

    res = run_cli(env, "restore", str(ROOT / "domain.yml"))
    assert res.returncode == 1 and "not a backup" in res.stderr
    assert snapshot(clients, target) == {}


def test_databases_and_rasa_prefix_follow_make_runs_rules(env, target, redis_url, prefix):
    base = redis_sync.Redis.from_url(redis_url).connection_pool.connection_kwargs.get("db", 0)
    r = rasa_env(redis_url, prefix, "")
    assert target.dbs == {"product": base, "tracker": base + 1, "lock": base + 2}
    assert target.rasa_prefix == r["RASA_KEY_PREFIX"]
    # Rasa's stores write "{prefix}:tracker:{sender}" and "{prefix}:lock:{sender}".
    assert target.pattern("tracker") == r["RASA_KEY_PREFIX"] + ":tracker:*"


def test_glob_characters_in_a_prefix_match_only_themselves(redis_url, clients, target):
    c = clients["product"]
    star = f"g*{uuid.uuid4().hex[:6]}:"
    plain = star.replace("*", "x")
    try:
        c.set(star + "a", 1)
        c.set(plain + "a", 2)
        found = list(c.scan_iter(match=backup.glob_escape(star) + "*", count=1000))
        assert found == [(star + "a").encode()]
    finally:
        c.delete(star + "a", plain + "a")
