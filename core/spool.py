"""A local spool for complaints that arrive while Redis cannot be reached.

    try:
        result = await store.create(report, idem_key)
    except StoreUnavailable:
        spool.append(report, idem_key)      # durable on disk when it returns
    ...
    await spool.replay(store)               # later, once Redis answers again

File layout (all next to `path`, e.g. var/spool/complaints.jsonl, mode 0600:
the lines hold phone numbers):
  complaints.jsonl              appends go here: one JSON object per line
  complaints.jsonl.lock         flock'ed (LOCK_EX) by every append and by the
                                hand-over to a replay, across processes
  complaints.jsonl.replaying    the batch a replay is working on
  complaints.jsonl.replaying.done   spool ids already confirmed by Redis
  complaints.jsonl.replay.lock  held by the one replay running at a time
  complaints.jsonl.bad          lines that could not be parsed (kept for a person)

Exactly once: every record carries the idem key it was spooled with, and
TicketStore.create is idempotent by that key; the .done file only saves work.
Crash safety: the batch is renamed away under the lock, processed, and deleted
only after every record in it was confirmed. A crash leaves .replaying behind
and the next replay finishes it first.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from core.ticket_model import ComplaintReport, iso, now_shanghai

log = logging.getLogger(__name__)


@dataclass
class SpoolRecord:
    spool_id: str
    idem_key: str
    spooled_at: str
    report: ComplaintReport


@dataclass
class ReplayResult:
    replayed: List[Tuple[SpoolRecord, object]] = field(default_factory=list)  # (record, CreateResult)
    skipped_done: int = 0          # already confirmed by an earlier, interrupted replay
    bad_lines: int = 0             # unparsable lines moved to the .bad file
    busy: bool = False             # another replay holds the replay lock; nothing done
    error: Optional[str] = None    # why the replay stopped early (records stay spooled)

    @property
    def complete(self) -> bool:
        return not self.busy and self.error is None


class Spool:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.replaying_path = self.path.with_name(self.path.name + ".replaying")
        self.done_path = self.path.with_name(self.path.name + ".replaying.done")
        self.replay_lock_path = self.path.with_name(self.path.name + ".replay.lock")
        self.bad_path = self.path.with_name(self.path.name + ".bad")

    @classmethod
    def from_settings(cls, settings) -> "Spool":
        return cls(Path(settings.spool_dir) / "complaints.jsonl")

    # --- append (any process, any time) -------------------------------------------
    def append(self, report: ComplaintReport, idem_key: Optional[str] = None) -> SpoolRecord:
        """Write the complaint to disk (flush + fsync) and return its record.

        Without an idem key the spool id becomes the key, so a replay is still
        idempotent.
        """
        spool_id = uuid.uuid4().hex
        record = SpoolRecord(spool_id, idem_key or f"spool-{spool_id}", iso(now_shanghai()), report)
        line = json.dumps({"spool_id": record.spool_id, "idem_key": record.idem_key,
                           "spooled_at": record.spooled_at, "report": report.to_dict()},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(self.lock_path):
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and _last_byte(self.path, size) != b"\n":
                    # A writer crashed mid-line: end that line so it cannot swallow this one.
                    line = b"\n" + line
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)
        return record

    def pending_count(self) -> int:
        """Complete records waiting for a replay (main file + an unfinished batch)."""
        n = 0
        for p in (self.path, self.replaying_path):
            if p.exists():
                n += p.read_bytes().count(b"\n")
        return n

    # --- replay (one at a time) ---------------------------------------------------
    async def replay(self, store) -> ReplayResult:
        """Move every spooled complaint into the store, exactly once.

        Stops at the first StoreUnavailable (the rest stays spooled). Returns the
        CreateResult of each record so the caller can tell citizens their numbers.
        """
        result = ReplayResult()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.replay_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                result.busy = True
                return result
            # Finish an interrupted batch first, then take over what was appended since.
            for _ in range(10):
                if not self.replaying_path.exists() and not self._take_batch():
                    break
                if not await self._replay_batch(store, result):
                    break
            return result
        finally:
            os.close(fd)  # releases the flock

    def _take_batch(self) -> bool:
        """Rename the append file to .replaying (under the append lock). False if empty."""
        with self._locked(self.lock_path):
            if not self.path.exists() or self.path.stat().st_size == 0:
                return False
            if self.done_path.exists():
                self.done_path.unlink()   # stale: its batch was already deleted
            os.rename(self.path, self.replaying_path)
            _fsync_dir(self.path.parent)
            return True

    async def _replay_batch(self, store, result: ReplayResult) -> bool:
        from core.tickets import StoreUnavailable  # local: keeps this module free of Redis imports

        done = self._read_done()
        records, bad = self._read_batch()
        result.bad_lines += bad
        with open(self.done_path, "ab") as done_file:
            for rec in records:
                if rec.spool_id in done:
                    result.skipped_done += 1
                    continue
                try:
                    created = await store.create(
                        rec.report, rec.idem_key,
                        note=f"网络故障期间暂存（{rec.spooled_at}），恢复后登记")
                except StoreUnavailable as e:
                    result.error = str(e)
                    log.warning("spool replay stopped, %s; records stay spooled", e)
                    return False
                except ValueError as e:
                    # The store refuses this record (bad data): keep it for a person, go on.
                    log.error("spool record %s refused by the store (%s); kept in %s",
                              rec.spool_id, e, self.bad_path)
                    self._keep_bad([json.dumps({"spool_id": rec.spool_id, "idem_key": rec.idem_key,
                                                "spooled_at": rec.spooled_at, "error": str(e),
                                                "report": rec.report.to_dict()},
                                               ensure_ascii=False).encode("utf-8")])
                    result.bad_lines += 1
                    created = None
                if created is not None:
                    result.replayed.append((rec, created))
                done_file.write(rec.spool_id.encode() + b"\n")
                done_file.flush()
                os.fsync(done_file.fileno())
                done.add(rec.spool_id)
        # Every record is in Redis: drop the batch, then its progress file.
        os.unlink(self.replaying_path)
        _fsync_dir(self.path.parent)
        if self.done_path.exists():
            self.done_path.unlink()
        return True

    def _read_done(self) -> set:
        if not self.done_path.exists():
            return set()
        return {ln.strip() for ln in self.done_path.read_text("utf-8", "replace").splitlines() if ln.strip()}

    def _read_batch(self) -> Tuple[List[SpoolRecord], int]:
        data = self.replaying_path.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        records: List[SpoolRecord] = []
        bad: List[bytes] = []
        if tail:
            log.warning("spool %s: ignoring an incomplete last line (%d bytes, a writer crashed)",
                        self.replaying_path, len(tail))
            bad.append(tail)
        for raw in lines:
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                records.append(SpoolRecord(obj["spool_id"], obj["idem_key"], obj["spooled_at"],
                                           ComplaintReport.from_dict(obj["report"])))
            except (ValueError, KeyError, TypeError) as e:
                log.error("spool %s: unreadable line kept in %s (%s)", self.replaying_path, self.bad_path, e)
                bad.append(raw)
        self._keep_bad(bad)
        return records, len(bad)

    def _keep_bad(self, lines: List[bytes]) -> None:
        if not lines:
            return
        fd = os.open(self.bad_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            _write_all(fd, b"".join(raw + b"\n" for raw in lines))
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    @contextmanager
    def _locked(path: Path) -> Iterator[None]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
