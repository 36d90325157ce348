"""Working days across the 2026 holidays (with make-up days) and the next
review meeting."""
from __future__ import annotations

import datetime as dt

import pytest

from core.workdays import CHINA_TZ, add_working_days, calendar_knows, is_working_day, next_review_meeting

D = dt.date


def test_the_submission_day_itself_never_counts():
    # Monday 2026-11-23: day 1 is Tuesday.
    assert add_working_days(D(2026, 11, 23), 1).date == D(2026, 11, 24)
    assert add_working_days(D(2026, 11, 23), 0).date == D(2026, 11, 23)
    # Friday: day 1 is the next Monday.
    assert add_working_days(D(2026, 11, 27), 1).date == D(2026, 11, 30)


def test_national_day_2026_holiday_and_make_up_saturday():
    # Submitted Wed 30 Sep 2026: 1-7 Oct off, Sat 10 Oct is a make-up working day.
    start = D(2026, 9, 30)
    assert add_working_days(start, 1).date == D(2026, 10, 8)
    assert add_working_days(start, 3).date == D(2026, 10, 10)   # the make-up Saturday counts
    assert add_working_days(start, 5).date == D(2026, 10, 13)   # 8, 9, 10(Sat), 12, 13
    assert add_working_days(start, 10).date == D(2026, 10, 20)
    assert add_working_days(start, 5).estimated is False


def test_spring_festival_2026_with_two_make_up_saturdays():
    # Submitted Fri 13 Feb 2026: Sat 14 Feb works, 15-23 Feb off, Sat 28 Feb works.
    start = D(2026, 2, 13)
    assert add_working_days(start, 1).date == D(2026, 2, 14)
    assert add_working_days(start, 2).date == D(2026, 2, 24)
    assert add_working_days(start, 5).date == D(2026, 2, 27)
    assert add_working_days(start, 6).date == D(2026, 2, 28)
    assert add_working_days(start, 10).date == D(2026, 3, 5)


def test_holidays_and_make_up_days_per_calendar():
    assert not is_working_day(D(2026, 10, 1))
    assert is_working_day(D(2026, 10, 10)) and D(2026, 10, 10).weekday() == 5
    assert not is_working_day(D(2026, 2, 16))
    assert is_working_day(D(2026, 2, 28))


def test_years_the_package_lacks_fall_back_to_monday_to_friday():
    assert calendar_knows(D(2026, 12, 31))
    assert not calendar_knows(D(2027, 1, 4))
    due = add_working_days(D(2027, 1, 4), 5)        # Mon 4 Jan 2027
    assert due.date == D(2027, 1, 11) and due.estimated
    # Crossing into 2027: 31 Dec (Thu) counts exactly, 1 Jan 2027 is only assumed a weekday.
    due = add_working_days(D(2026, 12, 30), 3)
    assert due.date == D(2027, 1, 4) and due.estimated
    with pytest.raises(ValueError):
        add_working_days(D(2026, 1, 5), -1)


def test_next_meeting_from_a_tuesday_evening_is_wednesday_morning():
    tuesday_evening = dt.datetime(2026, 11, 24, 20, 0, tzinfo=CHINA_TZ)
    assert tuesday_evening.weekday() == 1
    nxt = next_review_meeting(tuesday_evening)
    assert nxt == dt.datetime(2026, 11, 25, 7, 50, tzinfo=CHINA_TZ)


def test_next_meeting_uses_china_time_for_utc_input():
    # 12:00 UTC Tuesday is 20:00 in Shanghai.
    utc = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc)
    assert next_review_meeting(utc) == dt.datetime(2026, 11, 25, 7, 50, tzinfo=CHINA_TZ)
    # 23:30 UTC Tuesday is already 07:30 Wednesday in Shanghai: the meeting is today.
    late = dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.timezone.utc)
    assert next_review_meeting(late) == dt.datetime(2026, 11, 25, 7, 50, tzinfo=CHINA_TZ)


def test_meeting_under_way_is_not_next_and_friday_evening_goes_to_monday():
    monday = dt.datetime(2026, 11, 23, 7, 0)  # naive: taken as Shanghai time
    assert next_review_meeting(monday) == dt.datetime(2026, 11, 23, 7, 50, tzinfo=CHINA_TZ)
    during = dt.datetime(2026, 11, 23, 8, 0, tzinfo=CHINA_TZ)
    assert next_review_meeting(during) == dt.datetime(2026, 11, 25, 7, 50, tzinfo=CHINA_TZ)
    friday_evening = dt.datetime(2026, 11, 27, 18, 0, tzinfo=CHINA_TZ)
    assert next_review_meeting(friday_evening) == dt.datetime(2026, 11, 30, 7, 50, tzinfo=CHINA_TZ)


def test_no_meeting_on_holidays_nor_on_make_up_saturdays():
    # From Wed 30 Sep 2026 evening: Fri 2, Mon 5, Wed 7 Oct are holidays;
    # Sat 10 Oct is a working day but not a meeting day. Next: Fri 9 Oct.
    start = dt.datetime(2026, 9, 30, 20, 0, tzinfo=CHINA_TZ)
    assert next_review_meeting(start) == dt.datetime(2026, 10, 9, 7, 50, tzinfo=CHINA_TZ)


def test_custom_meeting_days_and_time():
    tuesday = dt.datetime(2026, 11, 24, 9, 0, tzinfo=CHINA_TZ)
    assert next_review_meeting(tuesday, weekdays=(3,), start=dt.time(15, 0)) == \
        dt.datetime(2026, 11, 26, 15, 0, tzinfo=CHINA_TZ)
