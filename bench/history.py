"""What one case's history says: its events, and the side effects of each step.

The naive baseline is built from this, not from a hand-written list, so it keeps the
shape of the real workflow as that changes: every activity call of a completed case is
attributed to the step that made it (the start, an update, the reply signal, or the
work the main loop does after an update), and classified as a side effect (a write, an
email, a reference number) or not (a rule evaluated, the roster read, a search).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History

# Activity types whose calls change the world: the case store, the outbox and SMTP,
# reference numbers, the team's queue. Everything else a case calls only reads or
# computes (rules, the roster check, the intelligence search).
SIDE_EFFECTS = frozenset(
    {
        "open_case",
        "record_change",
        "commit",
        "open_and_screen",
        "issue_reference",
        "record_referral",
        "raise_control_room_alert",
        "notify",
        "notify_all",
        "hand_off",
        "mark_acknowledged",
        "search_and_record",  # the search writing its outcome (patch search-records)
    }
)

_LOCAL_ACTIVITY_MARKER = "core_local_activity"

# Calls that make several of the writes above in one transaction (patch
# one-transaction-actions): a plan made of them is no longer one call per write.
BATCHED = frozenset({"commit", "begin", "open_and_screen", "notify_all", "search_and_record"})
NAIVE_PLAN = Path(__file__).with_name("naive_plan.json")


def naive_plan() -> dict[str, list[str]]:
    """The common path's side effects one call each (see bench/naive_plan.json)."""
    plan: dict[str, list[str]] = json.loads(NAIVE_PLAN.read_text())["plan"]
    return plan


def _event_name(event_type: int) -> str:
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]


def _local_activity_type(event: Any) -> str:
    details = event.marker_recorded_event_attributes.details
    data = details["data"].payloads[0].data
    return str(json.loads(data)["activity_type"])


def activity_calls(history: History) -> list[tuple[str, str, bool]]:
    """``(step, activity type, local)`` for every activity call, in history order.

    Steps: ``start``; an update's name while it runs; ``after:<update>`` for the main
    loop's work once it has answered; the signal's name while its reply is handled.
    """
    step = "start"
    update_names: dict[str, str] = {}
    calls: list[tuple[str, str, bool]] = []
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = event.workflow_execution_update_accepted_event_attributes
            name = attrs.accepted_request.input.name
            update_names[attrs.protocol_instance_id] = name
            step = name
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            attrs = event.workflow_execution_update_completed_event_attributes
            step = "after:" + update_names.get(attrs.meta.update_id, step)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            step = event.workflow_execution_signaled_event_attributes.signal_name
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            calls.append((step, name, False))
        elif (
            kind == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == _LOCAL_ACTIVITY_MARKER
        ):
            calls.append((step, _local_activity_type(event), True))
    return calls


def side_effect_plan(history: History) -> dict[str, list[str]]:
    """Step -> the side-effecting activity types it calls, in order (the naive plan)."""
    plan: dict[str, list[str]] = {}
    for step, name, _ in activity_calls(history):
        if name in SIDE_EFFECTS:
            plan.setdefault(step, []).append(name)
    return plan


def summarise(history: History) -> dict[str, Any]:
    """Event counts and activity calls of one history, for the results file."""
    calls = activity_calls(history)
    events = Counter(_event_name(e.event_type) for e in history.events)
    return {
        "events": len(history.events),
        "event_types": dict(events.most_common()),
        "activity_calls": len(calls),
        "local_activity_calls": sum(1 for _, _, local in calls if local),
        "side_effects": sum(1 for _, name, _ in calls if name in SIDE_EFFECTS),
        "calls_by_type": dict(Counter(name for _, name, _ in calls).most_common()),
        "side_effects_by_step": side_effect_plan(history),
    }


def update_breakdown(history: History, update: str) -> dict[str, float] | None:
    """Where the server saw the time go in the first ``update`` of a case, in ms.

    - ``accept``: the update's workflow task, from scheduled to the update accepted
      (queueing, a replay if the case was not cached, the validator, and any local
      activities the handler runs before its first ordinary activity or timer);
    - ``activities``: ordinary activities, scheduled to completed;
    - ``task_queueing``: later workflow tasks, scheduled to started;
    - ``task_running``: later workflow tasks, started to completed (local activities
      run inside them);
    - ``server_total``: the update's first workflow task scheduled to update completed.

    What the client measures beyond ``server_total`` is the RPC and the server's own
    handling of the request.
    """
    events = list(history.events)
    accepted = next(
        (
            i
            for i, e in enumerate(events)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
            and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            == update
        ),
        None,
    )
    if accepted is None:
        return None
    update_id = events[
        accepted
    ].workflow_execution_update_accepted_event_attributes.protocol_instance_id
    scheduled = next(
        i
        for i in range(accepted, -1, -1)
        if events[i].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
    )

    def at(i: int) -> float:
        return events[i].event_time.ToMicroseconds() / 1000

    out = {"accept": at(accepted) - at(scheduled), "activities": 0.0}
    out |= {"task_queueing": 0.0, "task_running": 0.0}
    started_at: dict[int, float] = {}
    for i in range(accepted + 1, len(events)):
        e = events[i]
        kind = e.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sched = e.activity_task_completed_event_attributes.scheduled_event_id
            out["activities"] += at(i) - events[sched - 1].event_time.ToMicroseconds() / 1000
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            sched = e.workflow_task_started_event_attributes.scheduled_event_id
            out["task_queueing"] += at(i) - events[sched - 1].event_time.ToMicroseconds() / 1000
            started_at[e.event_id] = at(i)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            begun = started_at.get(e.workflow_task_completed_event_attributes.started_event_id)
            if begun is not None:
                out["task_running"] += at(i) - begun
        elif (
            kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
            and e.workflow_execution_update_completed_event_attributes.meta.update_id == update_id
        ):
            out["server_total"] = at(i) - at(scheduled)
            return {k: round(v, 2) for k, v in out.items()}
    return None
