"""The force's changeable rules, evaluated in activities so a rule change never breaks replay.

Screening (triage, right agency), IMU decision support, outcome mapping, team routing and
working-day deadlines all live in ``domain`` as pure functions over data tables; these
activities are the only place the workflow reaches them.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from domain.agency import right_agency
from domain.assessment import Assessment, assess
from domain.calendar import add_working_days
from domain.effects import ImuOutcome, ImuOutcomeRequest, RouteRequest, ScreenRequest, WorkingDays
from domain.outcomes import imu_close_outcome, outcome_name
from domain.report import Report
from domain.routing import route_team
from domain.screening import Screening
from domain.triage import triage


@activity.defn
async def screen_report(request: ScreenRequest) -> Screening:
    """Triage the report (Grade 1-4, enhanced rights) and decide who deals with it."""
    report = request.report
    return Screening(
        triage=triage(report, received_at=request.received_at), agency=right_agency(report)
    )


@activity.defn
async def working_days_after(request: WorkingDays) -> datetime:
    """The due time ``request.days`` England and Wales working days after ``request.start``."""
    return add_working_days(request.start, request.days)


@activity.defn
async def assess_report(report: Report) -> Assessment:
    """Solvability and vulnerability for the IMU: decision support, not a decision."""
    return assess(report)


@activity.defn
async def route_case(request: RouteRequest) -> str:
    """The team a case goes to, from the routing table."""
    return route_team(
        request.category,
        domestic_abuse=request.domestic_abuse,
        hate_crime=request.hate_crime,
        under_18=request.under_18,
        district=request.district,
    )


@activity.defn
async def imu_outcome(request: ImuOutcomeRequest) -> ImuOutcome:
    """The Home Office outcome type for an IMU closure reason, and its name."""
    number = imu_close_outcome(request.reason, request.suspect_identified)
    return ImuOutcome(outcome=number, name=outcome_name(number))


@activity.defn
async def name_outcome(number: int) -> str:
    """The name of a Home Office outcome type."""
    return outcome_name(number)
