"""The complaint spool (core/spool.py): durable appends while Redis is down,
exactly-once replay into a real Redis."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.redis_conn import create_redis
from core.settings import Settings
from core.spool import Spool
from core.tickets import StoreUnavailable, TicketStore
from tests.redis_fixtures import (  # noqa: F401  (fixtures)
    FakeClock, clock, key_prefix_t, keys, rc, report, settings_t, store,
)

ROOT = Path(__file__).resolve().parent.parent


def reports(n: int):
    # distinct places: these must become n separate tickets, not duplicates
    return [report(reporter=f"user{i}", location_text=f"第{i}工地", description=f"投诉{i}") for i in range(n)]


async def ticket_count(rc, keys) -> int:
    return await rc.zcard(keys.tickets_by_created())


async def idem_counts(rc, keys) -> dict:
    ids = await rc.zrange(keys.tickets_by_created(), 0, -1)
    out: dict = {}
    for tid in ids:
        idem = json.loads(await rc.hget(keys.ticket(tid), "idempotency_key"))
        out[idem] = out.get(idem, 0) + 1
    return out


def test_append_writes_one_fsynced_private_json_line(tmp_path):
    spool = Spool(tmp_path / "spool" / "complaints.jsonl")
    rec = spool.append(report(), "wx-1")
    rec2 = spool.append(report(description="第二条"))
    lines = spool.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3
    first = json.loads(lines[0])
    assert first["spool_id"] == rec.spool_id and first["idem_key"] == "wx-1"
    assert first["report"]["contact_phone"] == "13912345678"
    assert json.loads(lines[1])["idem_key"] == f"spool-{rec2.spool_id}"
    assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600
    assert spool.pending_count() == 2


async def test_replay_moves_everything_once_and_twice_is_harmless(tmp_path, store, rc, keys):
    spool = Spool(tmp_path / "complaints.jsonl")
    recs = [spool.append(r, f"wx-{i}") for i, r in enumerate(reports(5))]
    res = await spool.replay(store)
    assert res.complete and len(res.replayed) == 5
    assert [r.spool_id for r, _ in res.replayed] == [r.spool_id for r in recs]
    assert all(c.created for _, c in res.replayed)
    assert await ticket_count(rc, keys) == 5
    assert spool.pending_count() == 0
    assert not spool.replaying_path.exists() and not spool.done_path.exists()
    t = await store.get(res.replayed[0][1].ticket.ticket_id)
    assert "暂存" in t.history[0]["note"]

    again = await spool.replay(store)
    assert again.complete and again.replayed == []
    assert await ticket_count(rc, keys) == 5
    # the same records spooled a second time (a retry spooled twice) still give 5 tickets
    for i, r in enumerate(reports(5)):
        spool.append(r, f"wx-{i}")
    third = await spool.replay(store)
    assert all(c.replayed for _, c in third.replayed) and len(third.replayed) == 5
    assert await idem_counts(rc, keys) == {f"wx-{i}": 1 for i in range(5)}


_CRASHING_REPLAY = textwrap.dedent("""
    import asyncio, os, sys
    from core.keys import Keys
    from core.redis_conn import create_redis
    from core.settings import Settings
    from core.spool import Spool
    from core.tickets import TicketStore

    path, url, prefix, crash_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    class DiesAfterWriting:
        # Writes the ticket, then the process dies before the spool marks progress.
        def __init__(self, store):
            self.store, self.n = store, 0
        async def create(self, report, idem_key, note=""):
            res = await self.store.create(report, idem_key, note=note)
            self.n += 1
            if self.n == crash_after:
                os._exit(17)
            return res

    async def main():
        r = create_redis(Settings(redis_url=url))
        await Spool(path).replay(DiesAfterWriting(TicketStore(r, Keys(prefix))))
    asyncio.run(main())
""")


async def test_crash_mid_replay_then_replay_again_gives_each_complaint_once(tmp_path, store, rc, keys,
                                                                             settings_t):
    spool = Spool(tmp_path / "complaints.jsonl")
    for i, r in enumerate(reports(6)):
        spool.append(r, f"wx-{i}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING_REPLAY, str(spool.path), settings_t.redis_url,
        settings_t.redis_key_prefix, "3", cwd=str(ROOT))
    assert await proc.wait() == 17
    # the process died: 3 tickets written, progress marks only for the first 2, batch still on disk
    assert await ticket_count(rc, keys) == 3
    assert spool.replaying_path.exists()
    assert len(spool.done_path.read_text().split()) == 2
    # a complaint spooled after the crash
    spool.append(report(reporter="late", location_text="后来的地点"), "wx-late")

    res = await spool.replay(store)
    assert res.complete and res.skipped_done == 2
    assert len(res.replayed) == 5                    # 1 replayed (already written) + 3 new + the late one
    assert sum(c.replayed for _, c in res.replayed) == 1
    assert await idem_counts(rc, keys) == {**{f"wx-{i}": 1 for i in range(6)}, "wx-late": 1}
    assert spool.pending_count() == 0 and not spool.replaying_path.exists()


async def test_in_process_crash_keeps_the_batch(tmp_path, store, rc, keys):
    class Boom(Exception):
        pass

    class FailsOnThird:
        def __init__(self):
            self.n = 0

        async def create(self, report_, idem_key, note=""):
            self.n += 1
            if self.n == 3:
                raise Boom()
            return await store.create(report_, idem_key, note=note)

    spool = Spool(tmp_path / "complaints.jsonl")
    for i, r in enumerate(reports(4)):
        spool.append(r, f"wx-{i}")
    with pytest.raises(Boom):
        await spool.replay(FailsOnThird())
    assert spool.pending_count() == 4                # nothing dropped
    res = await spool.replay(store)
    assert res.complete and res.skipped_done == 2 and len(res.replayed) == 2
    assert await idem_counts(rc, keys) == {f"wx-{i}": 1 for i in range(4)}


async def test_partial_last_line_is_ignored_with_a_log(tmp_path, store, rc, keys, caplog):
    spool = Spool(tmp_path / "complaints.jsonl")
    for i, r in enumerate(reports(2)):
        spool.append(r, f"wx-{i}")
    with open(spool.path, "ab") as f:
        f.write(b'{"spool_id": "torn", "idem_key": "wx-torn", "rep')   # writer died mid-line
    with caplog.at_level(logging.WARNING, logger="core.spool"):
        res = await spool.replay(store)
    assert res.complete and len(res.replayed) == 2 and res.bad_lines == 1
    assert "incomplete last line" in caplog.text
    assert b"wx-torn" in spool.bad_path.read_bytes()
    assert await idem_counts(rc, keys) == {"wx-0": 1, "wx-1": 1}


async def test_append_after_a_torn_line_is_not_swallowed(tmp_path, store, rc, keys, caplog):
    spool = Spool(tmp_path / "complaints.jsonl")
    spool.append(reports(1)[0], "wx-0")
    with open(spool.path, "ab") as f:
        f.write(b'{"spool_id": "torn", "idem')
    spool.append(report(reporter="next", location_text="下一个地点"), "wx-next")
    with caplog.at_level(logging.ERROR, logger="core.spool"):
        res = await spool.replay(store)
    assert res.bad_lines == 1 and "unreadable line" in caplog.text
    assert await idem_counts(rc, keys) == {"wx-0": 1, "wx-next": 1}


async def test_replay_while_redis_is_down_keeps_everything(tmp_path, store, rc, keys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead_client = create_redis(Settings(redis_url=f"redis://127.0.0.1:{port}/0"),
                               connect_timeout=0.3, socket_timeout=0.3)
    dead = TicketStore(dead_client, keys)
    spool = Spool(tmp_path / "complaints.jsonl")

    # the caller's path: create fails fast, the complaint is spooled
    r0 = reports(1)[0]
    with pytest.raises(StoreUnavailable):
        await dead.create(r0, "wx-0")
    spool.append(r0, "wx-0")
    for i, r in enumerate(reports(3)[1:], start=1):
        spool.append(r, f"wx-{i}")

    res = await spool.replay(dead)
    assert not res.complete and "unreachable" in res.error and res.replayed == []
    assert spool.pending_count() == 3
    await dead_client.close()

    res = await spool.replay(store)
    assert res.complete and len(res.replayed) == 3
    assert await idem_counts(rc, keys) == {"wx-0": 1, "wx-1": 1, "wx-2": 1}


async def test_only_one_replay_runs_at_a_time(tmp_path, store, rc, keys):
    spool = Spool(tmp_path / "complaints.jsonl")
    for i, r in enumerate(reports(20)):
        spool.append(r, f"wx-{i}")
    a, b = await asyncio.gather(spool.replay(store), Spool(spool.path).replay(store))
    assert sorted([a.busy, b.busy]) == [False, True]
    assert len(a.replayed) + len(b.replayed) == 20
    assert await ticket_count(rc, keys) == 20


_APPENDER = textwrap.dedent("""
    import sys
    from core.spool import Spool
    from core.ticket_model import ComplaintReport
    path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spool = Spool(path)
    for i in range(n):
        spool.append(ComplaintReport(reporter=who, channel="web", pollution_type="noise",
                                     description="噪音" * 200, location_text=f"{who}-{i}"),
                     f"{who}-{i}")
""")


def test_concurrent_appends_from_several_processes(tmp_path):
    path = tmp_path / "complaints.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(path), f"p{k}", "40"], cwd=str(ROOT))
             for k in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(x) for x in lines[:-1]]          # every line is whole JSON
    assert len(records) == 160
    assert len({r["spool_id"] for r in records}) == 160
    assert sorted(r["idem_key"] for r in records) == sorted(f"p{k}-{i}" for k in range(4) for i in range(40))


async def test_appends_during_a_replay_are_kept(tmp_path, store, rc, keys):
    spool = Spool(tmp_path / "complaints.jsonl")
    for i, r in enumerate(reports(3)):
        spool.append(r, f"wx-{i}")

    class AppendsWhileReplaying:
        def __init__(self):
            self.done = False

        async def create(self, report_, idem_key, note=""):
            if not self.done:
                self.done = True
                # another process spools a complaint while this batch is being replayed
                Spool(spool.path).append(report(reporter="during", location_text="回放中的地点"), "wx-during")
            return await store.create(report_, idem_key, note=note)

    res = await spool.replay(AppendsWhileReplaying())
    assert res.complete and len(res.replayed) == 4
    assert await idem_counts(rc, keys) == {"wx-0": 1, "wx-1": 1, "wx-2": 1, "wx-during": 1}
    assert spool.pending_count() == 0
    assert not spool.path.exists() and not spool.replaying_path.exists()
