"""Deadline clocks shown in the console. Pure functions.

Complaints (hotline tickets): accepted (已受理 -> 处理中) within
COMPLAINT_ACCEPT_WORKDAYS (1) working days and finished within
COMPLAINT_CLOSE_WORKDAYS (15). Enquiries handed to staff (escalations):
answered within ENQUIRY_REPLY_WORKDAYS (1). Working days follow the State
Council's holiday schedule (core/workdays.py): the day of the report does not
count, the deadline is the end of the n-th working day after it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Optional

from core.ticket_model import Status, Ticket
from core.workdays import CHINA_TZ, add_working_days, is_working_day


@dataclass(frozen=True)
class Clock:
    label: str               # 受理时限 / 办结时限 / 答复时限
    due: datetime            # end of the due day, Asia/Shanghai
    done_at: Optional[datetime]
    now: datetime

    @property
    def overdue(self) -> bool:
        return (self.done_at or self.now) > self.due

    @property
    def css(self) -> str:
        if self.done_at is not None:
            return "late" if self.overdue else "ontime"
        return "overdue" if self.overdue else ("due-soon" if self.remaining_workdays() <= 1 else "ok")

    def remaining_workdays(self) -> int:
        """Working days left after today (0 = due today or overdue)."""
        n, day = 0, self.now.date()
        while day < self.due.date():
            day += timedelta(days=1)
            if is_working_day(day):
                n += 1
        return n

    @property
    def text(self) -> str:
        due = f"{self.due.month}月{self.due.day}日"
        if self.done_at is not None:
            if self.overdue:
                return f"{self.label}：超期完成（{due}到期）"
            return f"{self.label}：按时完成（{due}到期）"
        if self.overdue:
            days = (self.now.date() - self.due.date()).days
            return f"{self.label}：已超期{max(days, 1)}天（{due}到期）"
        left = self.remaining_workdays()
        if left == 0:
            return f"{self.label}：今天到期（{due}）"
        return f"{self.label}：剩{left}个工作日（{due}到期）"


def due_after(start: datetime, workdays: int) -> datetime:
    """End of the `workdays`-th working day after the day of `start`."""
    local = start.astimezone(CHINA_TZ)
    day: date = add_working_days(local.date(), workdays).date
    return datetime.combine(day, time(23, 59, 59), tzinfo=CHINA_TZ)


def _parse(at: str | None) -> Optional[datetime]:
    if not at:
        return None
    try:
        dt = datetime.fromisoformat(at)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=CHINA_TZ)


def _first_change(ticket: Ticket, from_status: str) -> Optional[datetime]:
    for e in ticket.history:
        if e.get("action") == "status" and e.get("status_from") == from_status:
            return _parse(e.get("at"))
    return None


def _finished_at(ticket: Ticket) -> Optional[datetime]:
    for e in reversed(ticket.history):
        if e.get("action") == "status" and e.get("status_to") == ticket.status:
            return _parse(e.get("at"))
    return _parse(ticket.updated_at)


def ticket_clocks(ticket: Ticket, now: datetime, accept_workdays: int = 1,
                  close_workdays: int = 15) -> list[Clock]:
    """The clocks that matter for the ticket now, the most pressing first."""
    created = _parse(ticket.created_at) or now
    now = now.astimezone(CHINA_TZ)
    accept = Clock("受理时限", due_after(created, accept_workdays),
                   None if ticket.status == Status.ACCEPTED else _first_change(ticket, Status.ACCEPTED) or now, now)
    close = Clock("办结时限", due_after(created, close_workdays),
                  None if ticket.is_open else _finished_at(ticket), now)
    if ticket.status == Status.ACCEPTED:
        return [accept, close]
    return [close]


def escalation_clock(created_ts: float, closed_ts: float, now: datetime, reply_workdays: int = 1) -> Clock:
    created = datetime.fromtimestamp(created_ts, CHINA_TZ)
    done = datetime.fromtimestamp(closed_ts, CHINA_TZ) if closed_ts else None
    return Clock("答复时限", due_after(created, reply_workdays), done, now.astimezone(CHINA_TZ))


def format_wait(seconds: float) -> str:
    """"3分钟" / "2小时5分" / "3天4小时"."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}秒"
    m = s // 60
    if m < 60:
        return f"{m}分钟"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}小时{m}分"
    d, h = divmod(h, 24)
    return f"{d}天{h}小时"
