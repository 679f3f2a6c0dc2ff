"""The promises report: how the force kept every deadline of the cases received in a period.

One ``PromiseFigures`` per promise (a deadline name, less any trailing request number):
how many were due, met on time, met late, missed (passed unmet) and still open, the
on-time rate (met on time over those decided: open ones are not yet decided), and the
median and 90th percentile time from the promise being made to it being met.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SplitBy = Literal["team", "category", "enhanced_rights"]
SPLITS: tuple[SplitBy, ...] = ("team", "category", "enhanced_rights")


class PromiseFigures(BaseModel):
    """One promise's figures (contract: ``name``, ``due`` ... ``on_time_rate``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    due: int
    met_on_time: int
    met_late: int
    missed: int
    open: int
    on_time_rate: float | None = Field(
        description="met_on_time / (met_on_time + met_late + missed), 4 places; None if none"
    )
    median_seconds_to_meet: int | None = None
    p90_seconds_to_meet: int | None = None


class SplitFigures(BaseModel):
    """The promises of the cases sharing one value of a split (a team, a category...)."""

    by: SplitBy
    value: str
    promises: list[PromiseFigures]


class WeekFigures(BaseModel):
    """One promise over the cases received in one week (Monday first)."""

    week: date
    name: str
    due: int
    decided: int
    met_on_time: int
    on_time_rate: float | None


class ComplianceReport(BaseModel):
    """The whole report (``whn-admin report``); ``model_dump(by_alias=True)`` is its JSON."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    as_of: datetime
    team: str | None = None
    cases: int
    promises: list[PromiseFigures]
    splits: list[SplitFigures] = Field(default_factory=list)
    weekly: list[WeekFigures] = Field(default_factory=list)


def on_time_rate(met_on_time: int, met_late: int, missed: int) -> float | None:
    """The share of decided promises kept on time, to four places."""
    decided = met_on_time + met_late + missed
    return round(met_on_time / decided, 4) if decided else None


def split_label(by: SplitBy, value: object) -> str:
    """A split's value as the report prints it."""
    if by == "enhanced_rights":
        return "yes" if value else "no"
    return str(value) if value is not None else "unallocated"


class SummaryInput(BaseModel):
    """Input of the morning summary workflow: the day it is for (default: yesterday)."""

    day: date | None = None


class SummaryRequest(BaseModel):
    """The summary of ``day`` (the force's time), overdue counted at ``as_of``."""

    model_config = ConfigDict(frozen=True)

    day: date
    as_of: datetime


class DailySummary(BaseModel):
    """What the morning email says: overdue now, and yesterday's promises kept or missed."""

    day: date
    overdue_now: dict[str, int]
    overdue_cases: list[str]  # receipt codes, most overdue first (at most 20)
    due_yesterday: dict[str, int]
    missed_yesterday: dict[str, int]

    def context(self) -> dict[str, str]:
        """The letter's placeholders (``supervisor_daily_summary``)."""

        def lines(counts: dict[str, int]) -> str:
            return "\n".join(f"  {n:5}  {name.replace('_', ' ')}" for name, n in counts.items())

        return {
            "day": self.day.strftime("%A %d %B %Y"),
            "overdue_total": str(sum(self.overdue_now.values())),
            "overdue_lines": lines(self.overdue_now) or "  none",
            "overdue_cases": ", ".join(self.overdue_cases) or "none",
            "missed_total": str(sum(self.missed_yesterday.values())),
            "due_total": str(sum(self.due_yesterday.values())),
            "missed_lines": lines(self.missed_yesterday) or "  none",
        }
