"""Screening and deadline rules, evaluated in activities so a rule change never breaks replay."""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from domain.agency import right_agency
from domain.calendar import add_working_days
from domain.effects import WorkingDays
from domain.report import Report
from domain.screening import Screening
from domain.triage import triage


@activity.defn
async def screen_report(report: Report) -> Screening:
    """Triage the report (Grade 1-4, enhanced rights) and decide who deals with it."""
    return Screening(triage=triage(report), agency=right_agency(report))


@activity.defn
async def working_days_after(request: WorkingDays) -> datetime:
    """The due time ``request.days`` England and Wales working days after ``request.start``."""
    return add_working_days(request.start, request.days)
