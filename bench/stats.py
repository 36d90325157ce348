"""Figures from measured samples (pure, no I/O)."""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Iterable, Optional

WINDOW_S = 5.0  # WeChat waits 5 s for the passive reply


@dataclass
class Sample:
    path: str                 # "gateway" | "rasa"
    users: int                # concurrency level
    kind: str                 # conversation kind (bench/mix.py)
    turn: int
    t: float                  # start, seconds since the level began
    http_s: float             # HTTP round trip
    latency_s: float          # until the user had the answer (late delivery included)
    passive: bool             # answered in the HTTP response (gateway: the passive reply)
    late: bool                # gateway answered `success`, the answer came through the customer-service API
    ok: bool                  # the answer contained what the turn expects
    error: str = ""
    note: str = ""            # the start of a wrong answer, to see what went wrong
    conv: str = ""            # which conversation: the same one is held on both paths

    def missed_window(self) -> bool:
        """WeChat would not have shown this answer within its 5 s window."""
        return self.path == "gateway" and (self.late or self.http_s > WINDOW_S or bool(self.error))


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def summarize(samples: list[Sample], duration_s: float) -> dict:
    lat = [s.latency_s for s in samples if not s.error]
    return {
        "messages": len(samples),
        "errors": sum(1 for s in samples if s.error),
        "unexpected_answers": sum(1 for s in samples if not s.ok and not s.error),
        "p50_ms": pct(lat, 50) * 1000,
        "p95_ms": pct(lat, 95) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "max_ms": max(lat) * 1000 if lat else math.nan,
        "mean_ms": statistics.mean(lat) * 1000 if lat else math.nan,
        "messages_per_s": len(samples) / duration_s if duration_s > 0 else math.nan,
        "missed_window": sum(1 for s in samples if s.missed_window()),
        "late_deliveries": sum(1 for s in samples if s.late),
        "over_5s": sum(1 for s in samples if s.latency_s > WINDOW_S),
    }


def paired(samples: list[Sample], a: str = "gateway", b: str = "rasa") -> dict:
    """The same message (conversation, turn) on both paths: the median of the
    per-message differences a - b (robust to the mix: each pair is one message)."""
    by = {}
    for s in samples:
        if not s.error:
            by.setdefault((s.conv, s.turn), {})[s.path] = s.latency_s
    diffs = [v[a] - v[b] for v in by.values() if a in v and b in v]
    base = [v[b] for v in by.values() if a in v and b in v]
    med_b = statistics.median(base) if base else math.nan
    med_d = statistics.median(diffs) if diffs else math.nan
    return {"pairs": len(diffs), "median_added_ms": med_d * 1000, "mean_added_ms":
            statistics.mean(diffs) * 1000 if diffs else math.nan,
            "median_rasa_ms": med_b * 1000, "added_share_of_rasa_median": ratio(med_d, med_b)}


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def flatness(series: list[tuple[float, float]], tolerance: float = 0.05, floor_mb: float = 10.0) -> dict:
    """Compare the mean of the first and the last third of (t, MB) samples.
    Flat when the growth is at most `tolerance` of the first third or `floor_mb`."""
    values = [v for _, v in series]
    n = len(values)
    if n < 3:
        return {"flat": None, "first_mb": math.nan, "last_mb": math.nan, "growth_mb": math.nan, "growth_pct": math.nan}
    third = n // 3
    first, last = statistics.mean(values[:third]), statistics.mean(values[-third:])
    growth = last - first
    return {"flat": growth <= max(tolerance * first, floor_mb), "first_mb": first, "last_mb": last,
            "growth_mb": growth, "growth_pct": 100 * growth / first if first else math.nan}


def as_dicts(samples: Iterable[Sample]) -> list[dict]:
    return [asdict(s) for s in samples]


def rounded(obj, digits: int = 2):
    """JSON-friendly copy: floats rounded, NaN as None."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj


def median_or_nan(values: list[float]) -> Optional[float]:
    return statistics.median(values) if values else math.nan
