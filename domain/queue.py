"""The staff queue's rules: which stages wait for which role, what is expected next, bands.

Pure functions over what the case store projects (stage, flags, the earliest open
deadline); ``starter.casework`` runs the SQL and these name and band its rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from domain.case import Role, Stage

Band = Literal["overdue", "due_soon", "today", "later"]

# Open stages in which the case waits for a member of staff (awaiting_details waits for
# the reporter; received and screening for nobody).
ROLE_STAGES: dict[str, tuple[Stage, ...]] = {
    Role.CONTROL_ROOM.value: (Stage.EMERGENCY,),
    Role.CALL_HANDLER.value: (Stage.AWAITING_REVIEW,),
    Role.IMU.value: (Stage.WITH_IMU,),
    Role.OFFICER.value: (Stage.ALLOCATED, Stage.INVESTIGATING),
}
STAFF_STAGES: tuple[Stage, ...] = tuple(s for stages in ROLE_STAGES.values() for s in stages)
# The role whose work a stage is (a claim lasts while the case stays with that role; a
# call handler keeps a case while its reporter is asked for details).
STAGE_ROLE: dict[Stage, str] = {
    **{stage: role for role, stages in ROLE_STAGES.items() for stage in stages},
    Stage.AWAITING_DETAILS: Role.CALL_HANDLER.value,
}

DUE_SOON = timedelta(hours=2)
FORCE_TIME = ZoneInfo("Europe/London")


def stages_for(roles: list[str] | tuple[str, ...]) -> tuple[Stage, ...]:
    """The stages waiting for anyone holding one of ``roles`` (a supervisor: all of them)."""
    if Role.SUPERVISOR.value in roles:
        return STAFF_STAGES
    return tuple(s for r in roles for s in ROLE_STAGES.get(r, ()))


def next_action(stage: str, flags: list[str] | tuple[str, ...] = ()) -> str:
    """What the person the case waits for is expected to do next, in the queue's words."""
    if stage == Stage.AWAITING_REVIEW.value:
        if "details_not_received" in flags:
            return "reply overdue: decide"
        if "manual_area_check" in flags:
            return "review: check the area"
        return "review"
    return {
        Stage.EMERGENCY.value: "acknowledge emergency",
        Stage.AWAITING_DETAILS.value: "wait for the reporter's reply",
        Stage.WITH_IMU.value: "IMU decision",
        Stage.ALLOCATED.value: "acknowledge allocation",
        Stage.INVESTIGATING.value: "investigate: next victim update",
    }.get(stage, "none")


def band(due_at: datetime | None, now: datetime, *, overdue: bool = False) -> Band:
    """How soon the case's earliest open deadline falls: overdue, within 2 hours, today
    (before midnight, force time), or later (also when nothing is due)."""
    if overdue or (due_at is not None and due_at <= now):
        return "overdue"
    if due_at is None:
        return "later"
    if due_at - now <= DUE_SOON:
        return "due_soon"
    local_now = now.astimezone(FORCE_TIME)
    midnight = (local_now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return "today" if due_at < midnight else "later"


def age_text(delta: timedelta) -> str:
    """``3d 4h``, ``5h 12m``, ``7m``: a case's age at a glance."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    return f"{mins}m"
