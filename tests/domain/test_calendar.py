"""domain.calendar: England-and-Wales working days and Victims' Code deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.calendar import LONDON, add_working_days, bank_holidays, is_working_day


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 11, 27), True),  # Friday
        (date(2026, 11, 28), False),  # Saturday
        (date(2026, 11, 29), False),  # Sunday
        (date(2026, 11, 30), True),  # Monday
        (date(2026, 12, 24), True),  # Christmas Eve is not a bank holiday
        (date(2026, 12, 25), False),  # Christmas Day, Friday
        (date(2026, 12, 26), False),  # Boxing Day, Saturday
        (date(2026, 12, 28), False),  # Boxing Day substitute, Monday
        (date(2026, 12, 29), True),
        (date(2026, 12, 31), True),
        (date(2027, 1, 1), False),  # New Year's Day, Friday
        (date(2027, 1, 4), True),
        (date(2027, 3, 25), True),  # Maundy Thursday
        (date(2027, 3, 26), False),  # Good Friday
        (date(2027, 3, 29), False),  # Easter Monday
        (date(2027, 3, 30), True),
        (date(2027, 5, 3), False),  # Early May bank holiday
        (date(2027, 5, 31), False),  # Spring bank holiday
        (date(2027, 8, 30), False),  # Summer bank holiday (England, not Scotland's)
        (date(2027, 8, 2), True),  # Scotland's summer holiday is a working day here
        (date(2027, 12, 27), False),  # Christmas substitute
        (date(2027, 12, 28), False),  # Boxing Day substitute
        (date(2027, 3, 17), True),  # St Patrick's Day: Northern Ireland only
        (datetime(2026, 12, 25, 12, 0), False),  # a datetime counts by its date
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert is_working_day(day) is working


def test_given_holidays_replace_the_bank_holidays() -> None:
    closed = [date(2026, 11, 30)]
    assert not is_working_day(date(2026, 11, 30), holidays=closed)
    assert is_working_day(date(2026, 12, 25), holidays=closed)
    assert not is_working_day(date(2026, 11, 28), holidays=closed)  # weekends stay closed


def test_bank_holidays() -> None:
    assert date(2026, 12, 28) in bank_holidays(2026)
    assert date(2027, 3, 26) in bank_holidays(2027)
    assert date(2027, 3, 17) not in bank_holidays(2027)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # an ordinary week
        (utc(2026, 11, 25, 10), 1, utc(2026, 11, 26, 10)),
        (utc(2026, 11, 25, 10), 0, utc(2026, 11, 25, 10)),
        (utc(2026, 11, 27, 17, 30), 1, utc(2026, 11, 30, 17, 30)),  # Friday -> Monday
        (utc(2026, 11, 26, 9), 5, utc(2026, 12, 3, 9)),
        # the weekend: counts from 00:00 on Monday
        (utc(2026, 11, 28, 15), 0, utc(2026, 11, 30, 0)),
        (utc(2026, 11, 28, 15), 1, utc(2026, 12, 1, 0)),
        (utc(2026, 11, 29, 23, 59), 2, utc(2026, 12, 2, 0)),
        # Christmas and New Year 2026
        (utc(2026, 12, 24, 10), 1, utc(2026, 12, 29, 10)),
        (utc(2026, 12, 24, 10), 2, utc(2026, 12, 30, 10)),
        (utc(2026, 12, 24, 10), 5, utc(2027, 1, 5, 10)),
        (utc(2026, 12, 25, 14), 0, utc(2026, 12, 29, 0)),
        (utc(2026, 12, 25, 14), 1, utc(2026, 12, 30, 0)),
        (utc(2026, 12, 28, 8), 1, utc(2026, 12, 30, 0)),
        (utc(2026, 12, 31, 16), 1, utc(2027, 1, 4, 16)),
        # Easter 2027 (clocks go forward on Sunday 28 March: wall time is kept)
        (utc(2027, 3, 25, 12), 1, utc(2027, 3, 30, 11)),
        (utc(2027, 3, 25, 12), 2, utc(2027, 3, 31, 11)),
        (utc(2027, 3, 26, 9), 0, utc(2027, 3, 29, 23)),  # Good Friday -> Tuesday 00:00 BST
        (utc(2027, 3, 26, 9), 1, utc(2027, 3, 30, 23)),
        # late evening UTC is already the next London day in summer
        (utc(2026, 7, 2, 23, 30), 1, utc(2026, 7, 5, 23, 30)),
        # a whole year: 253 working days in 2027
        (utc(2026, 12, 31, 10), 253, utc(2027, 12, 31, 10)),
    ],
)
def test_add_working_days(start: datetime, days: int, due: datetime) -> None:
    result = add_working_days(start, days)
    assert result == due
    assert result.tzinfo == start.tzinfo


def test_result_keeps_the_timezone_of_start() -> None:
    plus5 = timezone(timedelta(hours=5))
    start = datetime(2026, 12, 24, 15, 0, tzinfo=plus5)  # 10:00 London
    result = add_working_days(start, 1)
    assert result.tzinfo is plus5
    assert result == datetime(2026, 12, 29, 15, 0, tzinfo=plus5)
    paris = ZoneInfo("Europe/Paris")
    assert add_working_days(datetime(2026, 12, 24, 11, tzinfo=paris), 1).tzinfo is paris


def test_naive_start_is_london_wall_time() -> None:
    assert add_working_days(datetime(2026, 12, 24, 10), 1) == datetime(2026, 12, 29, 10)
    assert add_working_days(datetime(2026, 12, 26, 10), 0) == datetime(2026, 12, 29, 0)


def test_given_holidays_are_used_and_may_be_a_generator() -> None:
    start = utc(2026, 11, 27, 10)
    closed = (date(2026, 11, 30) + timedelta(days=n) for n in range(2))
    assert add_working_days(start, 1, holidays=closed) == utc(2026, 12, 2, 10)
    assert add_working_days(utc(2026, 12, 24, 10), 1, holidays=[]) == utc(2026, 12, 25, 10)


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        add_working_days(utc(2026, 11, 27, 10), -1)


@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 1), timezones=st.just(UTC)
    ),
    days=st.integers(min_value=0, max_value=40),
)
def test_due_is_exactly_n_working_days_later(start: datetime, days: int) -> None:
    due = add_working_days(start, days)
    local_start, local_due = start.astimezone(LONDON), due.astimezone(LONDON)
    assert due >= start
    assert is_working_day(local_due.date())
    first = local_start.date()
    while not is_working_day(first):
        first += timedelta(days=1)
    between = sum(
        is_working_day(first + timedelta(days=n))
        for n in range(1, (local_due.date() - first).days + 1)
    )
    assert between == days
    if is_working_day(local_start.date()):
        assert local_due.time() == local_start.time()
    else:
        assert local_due.time() == datetime.min.time()
