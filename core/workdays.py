"""Working days (工作日) in mainland China, and the bureau's review meetings.

Counting rule for promised limits ("5个工作日"): the day the complete
application is received does not count, whatever day it is. Day 1 is the first
working day after it; the decision is due by the end of day n. Working days
follow the State Council's holiday schedule from the `chinese_calendar`
package: statutory holidays are off, make-up working days (调休上班, e.g. a
Saturday) count.

`chinese_calendar` only knows the years it was released with (1.11.0: 2004 to
2026). For any other year the count falls back to Monday-Friday and the result
says so (`DueDate.estimated`), so the answer can tell the user the date is an
estimate that may move with holidays.

Review meetings (会审会) are held on the configured weekdays (default Mon, Wed,
Fri 07:50-08:30, from the seed document) when that day is a working day; a
make-up Saturday is not a meeting day, a holiday Monday has no meeting.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Optional

import chinese_calendar

# China has had no daylight saving time since 1991: a fixed UTC+8 is exact.
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")

MEETING_WEEKDAYS = (0, 2, 4)  # Mon, Wed, Fri
MEETING_START = dt.time(7, 50)
MEETING_END = dt.time(8, 30)


def calendar_knows(day: dt.date) -> bool:
    """True when chinese_calendar has the official schedule for day's year."""
    try:
        chinese_calendar.is_workday(day)
        return True
    except NotImplementedError:
        return False


def is_working_day(day: dt.date) -> bool:
    """Official working day; Monday-Friday for years the calendar lacks."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


@dataclass(frozen=True)
class DueDate:
    date: dt.date
    # True when some counted day fell in a year without the official schedule
    # (Monday-Friday assumed; holidays may move the real date later).
    estimated: bool


def add_working_days(start_date: dt.date, n: int) -> DueDate:
    """The n-th working day after start_date (start_date itself never counts)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if isinstance(start_date, dt.datetime):
        start_date = start_date.date()
    day, counted, estimated = start_date, 0, False
    while counted < n:
        day += dt.timedelta(days=1)
        if not calendar_knows(day):
            estimated = True
        if is_working_day(day):
            counted += 1
    return DueDate(day, estimated)


def to_china(now: dt.datetime) -> dt.datetime:
    """`now` in Asia/Shanghai; a naive datetime is taken as already local."""
    if now.tzinfo is None:
        return now.replace(tzinfo=CHINA_TZ)
    return now.astimezone(CHINA_TZ)


def next_review_meeting(
    now: dt.datetime,
    weekdays: Iterable[int] = MEETING_WEEKDAYS,
    start: dt.time = MEETING_START,
    horizon_days: int = 60,
) -> Optional[dt.datetime]:
    """Start of the next review meeting strictly after `now` (Asia/Shanghai).

    A meeting already under way is not "next": from Monday 08:00 the answer is
    Wednesday 07:50. None only if no meeting day falls within horizon_days.
    """
    local = to_china(now)
    days = set(weekdays)
    for offset in range(horizon_days + 1):
        day = local.date() + dt.timedelta(days=offset)
        if day.weekday() not in days or not is_working_day(day):
            continue
        begin = dt.datetime.combine(day, start, tzinfo=CHINA_TZ)
        if begin > local:
            return begin
    return None
