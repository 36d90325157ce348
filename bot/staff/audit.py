"""The audit log: every staff action (who, what, when, before, after),
append-only in a Redis Stream (never trimmed, never edited). Supervisors read
it at /staff/audit.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Optional

from core.keys import Keys


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    at: float
    who: str
    role: str
    action: str
    target: str
    before: Any
    after: Any
    detail: str


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class AuditLog:
    def __init__(self, redis, keys: Keys) -> None:
        self.r = redis
        self.keys = keys

    async def record(self, who: str, action: str, target: str = "", before: Any = None, after: Any = None,
                     detail: str = "", role: str = "") -> str:
        return await self.r.xadd(self.keys.staff_audit(), {
            "at": repr(time.time()), "who": who, "role": role, "action": action, "target": target,
            "before": _dump(before), "after": _dump(after), "detail": detail[:1000],
        })

    async def entries(self, limit: int = 100, before_id: Optional[str] = None,
                      who: str = "", action: str = "") -> list[AuditEntry]:
        """Newest first; `before_id` pages back. Filters apply to the fetched window."""
        end = f"({before_id}" if before_id else "+"
        raw = await self.r.xrevrange(self.keys.staff_audit(), max=end, min="-", count=limit)
        out = []
        for entry_id, f in raw:
            e = AuditEntry(entry_id, float(f.get("at") or 0), f.get("who", ""), f.get("role", ""),
                           f.get("action", ""), f.get("target", ""), _load(f.get("before")),
                           _load(f.get("after")), f.get("detail", ""))
            if (who and e.who != who) or (action and e.action != action):
                continue
            out.append(e)
        return out


def _load(raw: Optional[str]) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw
