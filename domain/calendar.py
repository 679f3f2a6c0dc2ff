"""Working days in England and Wales, for the Victims' Code deadlines.

A working day is a weekday that is not an England-and-Wales bank holiday (from the
``holidays`` package, ``UnitedKingdom(subdiv="ENG")``; its England list is the
England-and-Wales one, substitute days included). Days are London calendar days,
whatever timezone a datetime is given in.

Deadline rule of :func:`add_working_days`: the due time is the *same London wall-clock
time on the N-th following working day*. A start outside a working day (a Saturday, a
bank holiday) counts as 00:00 on the next working day, so "1 working day" from Saturday
afternoon is due at 00:00 on Tuesday, that is, by the end of Monday. ``days=0`` gives
the start itself on a working day, or 00:00 on the next working day otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

__all__ = ["LONDON", "add_working_days", "bank_holidays", "is_working_day"]

LONDON = ZoneInfo("Europe/London")


@cache
def _bank_holidays_of(year: int) -> frozenset[date]:
    return frozenset(holidays_lib.country_holidays("GB", subdiv="ENG", years=year))


def bank_holidays(year: int) -> frozenset[date]:
    """England-and-Wales bank holidays of a year (substitute days included)."""
    return _bank_holidays_of(year)


def is_working_day(d: date, *, holidays: Iterable[date] | None = None) -> bool:
    """True for a weekday that is not a bank holiday.

    Args:
        d: The calendar day (a ``datetime`` counts by its own date: convert first).
        holidays: Days to treat as holidays instead of the England-and-Wales list.
    """
    day = d.date() if isinstance(d, datetime) else d
    if day.weekday() >= 5:
        return False
    if holidays is None:
        return day not in bank_holidays(day.year)
    return day not in (holidays if isinstance(holidays, frozenset | set) else set(holidays))


def add_working_days(
    start: datetime, days: int, *, holidays: Iterable[date] | None = None
) -> datetime:
    """The deadline ``days`` working days after ``start`` (rule in the module doc).

    Args:
        start: When the clock starts. Aware datetimes are read in London time and the
            result is returned in ``start``'s timezone; naive ones are taken as London
            wall-clock time and the result is naive too.
        days: Working days to add; 0 or more.
        holidays: Days to treat as holidays instead of the England-and-Wales list.

    Returns:
        The due time.

    Raises:
        ValueError: ``days`` is negative.
    """
    if days < 0:
        raise ValueError("days must be 0 or more")
    fixed = frozenset(holidays) if holidays is not None else None

    def working(d: date) -> bool:
        return is_working_day(d, holidays=fixed)

    local = start.astimezone(LONDON) if start.tzinfo is not None else start
    day, clock = local.date(), local.time().replace(tzinfo=None)
    if not working(day):
        while not working(day):
            day += timedelta(days=1)
        clock = time(0)
    for _ in range(days):
        day += timedelta(days=1)
        while not working(day):
            day += timedelta(days=1)
    # Working days are never the Sunday of a clock change, so the wall time exists.
    due = datetime.combine(day, clock)
    if start.tzinfo is None:
        return due
    return due.replace(tzinfo=LONDON).astimezone(start.tzinfo)
