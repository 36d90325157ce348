"""Complaint tickets: the data model, the status lifecycle and the views shown
to citizens. Pure logic, no I/O (the Redis side is core/tickets.py).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

# China has had no daylight saving time since 1991: a fixed +08:00 is exact and
# needs no tz database on the host.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

POLLUTION_TYPES = ("air", "water", "noise", "solid_waste", "livestock", "other")
TICKET_ID_RE = re.compile(r"^HB\d{8}\d{4}$")


class Status:
    ACCEPTED = "已受理"
    PROCESSING = "处理中"
    CLOSED = "已办结"
    DUPLICATE = "重复"
    TRANSFERRED = "转办"


OPEN_STATUSES = (Status.ACCEPTED, Status.PROCESSING)
# ASCII names used in Redis keys (core/keys.py tickets_by_status).
STATUS_CODES = {
    Status.ACCEPTED: "accepted",
    Status.PROCESSING: "processing",
    Status.CLOSED: "closed",
    Status.DUPLICATE: "duplicate",
    Status.TRANSFERRED: "transferred",
}
# Legal status changes. 已办结 / 重复 / 转办 are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.ACCEPTED: frozenset({Status.PROCESSING, Status.DUPLICATE, Status.TRANSFERRED}),
    Status.PROCESSING: frozenset({Status.CLOSED, Status.DUPLICATE, Status.TRANSFERRED}),
    Status.CLOSED: frozenset(),
    Status.DUPLICATE: frozenset(),
    Status.TRANSFERRED: frozenset(),
}


class IllegalTransition(ValueError):
    """A status change the lifecycle does not allow, or one missing its target."""


# History actions (the `action` of a history entry).
A_CREATED = "created"
A_DUPLICATE_REPORT = "duplicate_report"   # another report merged into this ticket
A_STATUS = "status"
A_LINKED_DUPLICATE = "linked_duplicate"   # staff marked another ticket as a duplicate of this one
A_EVIDENCE = "evidence_added"
A_STAFF_REPLY = "staff_reply"
A_ESCALATED = "escalated"


def now_shanghai() -> datetime:
    return datetime.now(SHANGHAI)


def iso(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).isoformat(timespec="seconds")


def history_entry(at: datetime, actor: str, action: str, note: str = "",
                  status_from: Optional[str] = None, status_to: Optional[str] = None,
                  **extra: Any) -> dict:
    entry = {"at": iso(at), "actor": actor, "action": action,
             "status_from": status_from, "status_to": status_to, "note": note}
    entry.update(extra)
    return entry


def evidence_item(media_id: str, url: str = "", received_at: Optional[datetime] = None,
                  at: Optional[datetime] = None) -> dict:
    when = received_at or at or now_shanghai()
    return {"media_id": media_id, "url": url, "received_at": iso(when)}


def normalise_pollution_type(value: Optional[str]) -> str:
    v = (value or "").strip().lower()
    return v if v in POLLUTION_TYPES else "other"


@dataclass
class ComplaintReport:
    """What a citizen reported; the input of TicketStore.create and of the spool."""

    reporter: str                       # sender id: WeChat OpenID, web chat id
    channel: str                        # "wechat", "web", "hotline", ...
    pollution_type: str
    description: str = ""
    location_text: str = ""
    lat: Optional[float] = None
    lon: Optional[float] = None
    location_label: str = ""
    occurred: str = ""                  # when it happens, free text ("每天晚上")
    contact_phone: Optional[str] = None
    anonymous: Optional[bool] = None    # None: anonymous when no phone is given
    evidence: list = field(default_factory=list)  # [{media_id, url, received_at?}]
    urgent: Optional[bool] = None       # None: decided by core.emergency.is_emergency
    urgent_reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ComplaintReport":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def has_coordinates(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass
class Ticket:
    ticket_id: str
    created_at: str                     # ISO 8601, +08:00
    reporter: str
    channel: str
    pollution_type: str
    location_text: str = ""
    lat: Optional[float] = None
    lon: Optional[float] = None
    location_label: str = ""
    occurred: str = ""
    description: str = ""
    contact_phone: Optional[str] = None
    anonymous: bool = True
    evidence: list = field(default_factory=list)
    urgent: bool = False
    urgent_reason: str = ""
    status: str = Status.ACCEPTED
    linked_to: Optional[str] = None     # set with status 重复
    transferred_to: Optional[str] = None  # set with status 转办
    staff_reply: Optional[str] = None
    history: list = field(default_factory=list)
    idempotency_key: str = ""
    updated_at: str = ""

    # --- Redis hash encoding: every field is a JSON value -------------------
    def to_hash(self) -> dict[str, str]:
        return {f.name: encode(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> "Ticket":
        names = {f.name for f in fields(cls)}
        data = {k: json.loads(v) for k, v in raw.items() if k in names}
        for list_field in ("evidence", "history"):
            if not isinstance(data.get(list_field), list):
                data[list_field] = []
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def new_ticket(report: ComplaintReport, now: datetime, idem_key: str,
               urgent: bool, urgent_reason: str) -> Ticket:
    """The ticket a report becomes (ticket_id is filled in by the store)."""
    anonymous = report.anonymous if report.anonymous is not None else not report.contact_phone
    at = iso(now)
    return Ticket(
        ticket_id="",
        created_at=at,
        reporter=report.reporter,
        channel=report.channel,
        pollution_type=normalise_pollution_type(report.pollution_type),
        location_text=report.location_text or "",
        lat=report.lat,
        lon=report.lon,
        location_label=report.location_label or "",
        occurred=report.occurred or "",
        description=report.description or "",
        contact_phone=None if anonymous else (report.contact_phone or None),
        anonymous=anonymous,
        evidence=[_evidence_from_report(e, now) for e in report.evidence],
        urgent=urgent,
        urgent_reason=urgent_reason,
        status=Status.ACCEPTED,
        history=[history_entry(now, report.reporter, A_CREATED, "", None, Status.ACCEPTED)],
        idempotency_key=idem_key,
        updated_at=at,
    )


def _evidence_from_report(item: Any, now: datetime) -> dict:
    if isinstance(item, str):
        return evidence_item(item, "", at=now)
    return {"media_id": item.get("media_id", ""), "url": item.get("url", ""),
            "received_at": item.get("received_at") or iso(now)}


def duplicate_report_entry(report: ComplaintReport, now: datetime, idem_key: str,
                           urgent: bool, urgent_reason: str) -> dict:
    """History entry appended to an open ticket when another report is merged into it."""
    anonymous = report.anonymous if report.anonymous is not None else not report.contact_phone
    return history_entry(
        now, report.reporter, A_DUPLICATE_REPORT, report.description or "",
        channel=report.channel,
        location_text=report.location_text or "",
        lat=report.lat, lon=report.lon,
        occurred=report.occurred or "",
        contact_phone=None if anonymous else (report.contact_phone or None),
        evidence=[_evidence_from_report(e, now) for e in report.evidence],
        urgent_reason=urgent_reason if urgent else "",
        idempotency_key=idem_key,
    )


def apply_status_change(ticket: Ticket, new_status: str, actor: str, note: str, now: datetime,
                        linked_to: Optional[str] = None,
                        transferred_to: Optional[str] = None) -> Ticket:
    """The ticket after a legal status change, or IllegalTransition."""
    if new_status not in TRANSITIONS:
        raise IllegalTransition(f"unknown status {new_status!r}; known: {', '.join(TRANSITIONS)}")
    allowed = TRANSITIONS[ticket.status]
    if new_status not in allowed:
        options = "、".join(sorted(allowed)) or "none (final status)"
        raise IllegalTransition(
            f"ticket {ticket.ticket_id}: illegal status change {ticket.status} -> {new_status}; "
            f"allowed from {ticket.status}: {options}")
    if new_status == Status.DUPLICATE:
        if not linked_to:
            raise IllegalTransition(f"ticket {ticket.ticket_id}: status 重复 needs linked_to (the original ticket id)")
        if linked_to == ticket.ticket_id:
            raise IllegalTransition(f"ticket {ticket.ticket_id}: cannot be a duplicate of itself")
    if new_status == Status.TRANSFERRED and not (transferred_to or "").strip():
        raise IllegalTransition(f"ticket {ticket.ticket_id}: status 转办 needs transferred_to (the department)")
    entry = history_entry(now, actor, A_STATUS, note or "", ticket.status, new_status)
    if linked_to and new_status == Status.DUPLICATE:
        entry["linked_to"] = linked_to
    if new_status == Status.TRANSFERRED:
        entry["transferred_to"] = transferred_to
    return replace(
        ticket,
        status=new_status,
        linked_to=linked_to if new_status == Status.DUPLICATE else ticket.linked_to,
        transferred_to=transferred_to if new_status == Status.TRANSFERRED else ticket.transferred_to,
        history=ticket.history + [entry],
        updated_at=iso(now),
    )


# --- what citizens see ------------------------------------------------------

def public_view(ticket: Ticket) -> dict:
    """For anyone who knows the number: status and last update, nothing else."""
    return {"ticket_id": ticket.ticket_id, "status": ticket.status,
            "updated_at": ticket.updated_at or ticket.created_at}


def _owner_text(entry: dict) -> str:
    action = entry.get("action")
    if action == A_CREATED:
        return "已受理您的反映"
    if action == A_DUPLICATE_REPORT:
        return "收到其他群众对同一问题的反映，已合并办理"
    if action == A_STATUS:
        to = entry.get("status_to")
        if to == Status.DUPLICATE:
            return f"与工单{entry.get('linked_to', '')}为同一问题，已合并至该工单办理"
        if to == Status.TRANSFERRED:
            return f"已转交{entry.get('transferred_to', '')}办理"
        return f"办理状态：{entry.get('status_from')} → {to}"
    if action == A_LINKED_DUPLICATE:
        return "同一问题的其他工单已合并至本工单"
    if action == A_EVIDENCE:
        return "补充了图片或视频材料"
    if action == A_STAFF_REPLY:
        return "工作人员已答复"
    if action == A_ESCALATED:
        return "已列为紧急事项优先处理"
    return "工单已更新"


def owner_view(ticket: Ticket) -> dict:
    """For the reporter: progress and the staff reply.

    Staff notes, reporter ids, phone numbers and other citizens' descriptions
    are never included: each history entry is shown as a fixed sentence.
    """
    return {
        "ticket_id": ticket.ticket_id,
        "status": ticket.status,
        "pollution_type": ticket.pollution_type,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at or ticket.created_at,
        "linked_to": ticket.linked_to,
        "transferred_to": ticket.transferred_to,
        "staff_reply": ticket.staff_reply,
        "history": [{"at": e.get("at"), "status_from": e.get("status_from"),
                     "status_to": e.get("status_to"), "text": _owner_text(e)}
                    for e in ticket.history],
    }
