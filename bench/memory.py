"""Resident memory (RSS) of the stack's processes, sampled in a background
thread. Each process is counted with its children (psutil when the venv has
it, else /proc)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

try:
    import psutil
except ImportError:  # pragma: no cover - psutil comes with the venv
    psutil = None


def rss_bytes(pid: int) -> int:
    """RSS of `pid` and all its descendants; 0 when it is gone."""
    if psutil is not None:
        try:
            p = psutil.Process(pid)
            procs = [p] + p.children(recursive=True)
        except psutil.Error:
            return 0
        total = 0
        for q in procs:
            try:
                total += q.memory_info().rss
            except psutil.Error:
                pass
        return total
    return _proc_rss(pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its live descendants (NaN without psutil)."""
    if psutil is None:
        return float("nan")
    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.Error:
        return float("nan")
    total = 0.0
    for q in procs:
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _proc_rss(pid: int) -> int:
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


class MemorySampler:
    """Samples {name: pid} every `interval_s`; `series[name]` = [(t, MB)]."""

    def __init__(self, pids: dict[str, int], interval_s: float = 1.0) -> None:
        self.pids = dict(pids)
        self.interval_s = interval_s
        self.series: dict[str, list[tuple[float, float]]] = {n: [] for n in pids}
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def set_pid(self, name: str, pid: int) -> None:
        with self._lock:
            self.pids[name] = pid

    def start(self) -> "MemorySampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def sample_now(self) -> None:
        t = time.monotonic() - self.t0
        with self._lock:
            pids = dict(self.pids)
        for name, pid in pids.items():
            mb = rss_bytes(pid) / 2**20
            if mb:
                self.series.setdefault(name, []).append((t, mb))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_now()
            self._stop.wait(self.interval_s)

    def peak_between(self, t_from: float, t_to: float) -> dict[str, float]:
        return {n: max((mb for t, mb in s if t_from <= t <= t_to), default=float("nan"))
                for n, s in self.series.items()}

    def now(self) -> float:
        return time.monotonic() - self.t0
