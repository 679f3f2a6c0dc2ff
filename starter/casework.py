"""Staff casework over the case store: the queue, and the case file behind ``show --report``.

Both read PostgreSQL only (the case store projects what the queue needs), and both need
an active member of staff. Reading the case file is reading personal data: every read,
allowed or refused, is written to ``audit_log`` (action ``show-report``) with its actor
and case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from activities.owed import owed_context
from activities.store import note_context
from domain.case import TEAMS, Role
from domain.queue import STAFF_STAGES, age_text, band, next_action, stages_for
from starter.errors import RejectedError
from starter.store import case_store
from whn.codec import Keyring
from whn.sealed import unseal


async def staff_roles(conn: asyncpg.Connection | asyncpg.Pool, actor: str) -> list[str] | str:
    """The actor's roles, or the reason they may not act (unknown, disabled, no role)."""
    row = await conn.fetchrow("SELECT roles, active FROM staff WHERE staff_id = $1", actor)
    if row is None:
        return f"unknown staff id {actor!r}"
    if not row["active"]:
        return f"staff {actor!r} is disabled"
    roles = [r for r in row["roles"] if r in Role._value2member_map_]
    if not roles:
        return f"{actor} has no staff role"
    return roles


# --- the queue --------------------------------------------------------------------------

# reporter_added: the reporter sent something on their page (/track) since staff last
# acted on the case (web/track.py writes its events under 'reporter.' keys).
_QUEUE_COLUMNS = """receipt_code, stage, priority, due_at, overdue, flags, team, officer,
    crime_reference, investigation_reference, received_at, touched_at,
    CASE WHEN claimed_until > $1 THEN claimed_by END AS claimed_by,
    CASE WHEN claimed_until > $1 THEN claimed_until END AS claimed_until,
    EXISTS (SELECT 1 FROM case_events e WHERE e.workflow_id = cases.workflow_id
            AND e.event_key LIKE 'reporter.%'
            AND e.at > coalesce(cases.touched_at, cases.received_at)) AS reporter_added"""
_QUEUE_ORDER = "ORDER BY priority, due_at, received_at, receipt_code"


@dataclass(frozen=True)
class QueueView:
    """Which open cases a queue shows: in ``stages`` (None: any), of ``team``, held by
    ``holder``, untouched since ``since``; ``now`` decides which claims still hold."""

    now: datetime
    stages: tuple[str, ...] | None = None
    team: str | None = None
    holder: str | None = None
    since: datetime | None = None

    def conditions(self, args: list[Any]) -> str:
        """The WHERE clause every part of the view shares; appends its parameters to ``args``."""
        where = ["closed_at IS NULL"]
        if self.team is not None:
            args.append(self.team)
            where.append(f"team = ${len(args)}")
        if self.holder is not None:
            args.append(self.holder)
            where.append(f"claimed_by = ${len(args)} AND claimed_until > $1")
        if self.since is not None:
            args.append(self.since)
            where.append(f"coalesce(touched_at, received_at) < ${len(args)}")
            where.append("(claimed_by IS NULL OR claimed_until <= $1)")
        return " AND ".join(where)


def queue_sql(view: QueueView, *, limit: int) -> tuple[str, list[Any]]:
    """The queue's query and its parameters (``$1`` is now, ``$2`` the limit).

    One index scan per stage, each in the index's order (``cases_queue_idx``, or
    ``cases_queue_team_idx`` for a team) and cut at ``limit``, then merged: PostgreSQL
    does not walk one index in order across ``stage = ANY(...)``, and sorting a whole
    role's cases (15,000 at 50,000 open) for the first 50 was most of the time
    (bench/queue.py).
    """
    args: list[Any] = [view.now, limit]
    common = view.conditions(args)
    if not view.stages:
        return f"SELECT {_QUEUE_COLUMNS} FROM cases WHERE {common} {_QUEUE_ORDER} LIMIT $2", args
    parts = []
    for stage in view.stages:
        args.append(stage)
        parts.append(
            f"(SELECT {_QUEUE_COLUMNS} FROM cases WHERE {common} AND stage = ${len(args)}"
            f" {_QUEUE_ORDER} LIMIT $2)"
        )
    if len(parts) == 1:
        return parts[0][1:-1], args
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS q {_QUEUE_ORDER} LIMIT $2", args


COUNT_CAP = 1_000  # "1000+ waiting": an exact figure past this costs a scan of them all


def count_sql(view: QueueView) -> tuple[str, list[Any]]:
    """How many cases the same view holds, up to ``COUNT_CAP`` + 1 (``$1`` is now)."""
    args: list[Any] = [view.now]
    common = view.conditions(args)
    if view.stages:
        args.append(list(view.stages))
        common += f" AND stage = ANY(${len(args)}::text[])"
    args.append(COUNT_CAP + 1)
    # $1 appears only in some views: name it in all, so its type is always known.
    return (
        "SELECT count(*) FROM (SELECT 1 FROM cases"
        f" WHERE $1::timestamptz IS NOT NULL AND {common} LIMIT ${len(args)}) AS q",
        args,
    )


async def queue(
    dsn: str,
    *,
    actor: str,
    role: str | None = None,
    team: str | None = None,
    mine: bool = False,
    review_deadline: timedelta,
    limit: int = 50,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What waits for someone of ``role`` (default: the actor's roles) or ``team`` now,
    most urgent first: priority, then the earliest open deadline, then age.

    ``role="supervisor"`` is the supervisor's check on the promise that every report is
    followed up: every open case waiting for staff that nobody holds and nobody has
    touched within ``review_deadline``. ``mine``: what the actor holds.
    """
    now = now or datetime.now(UTC)
    if role is not None and role not in Role._value2member_map_:
        raise RejectedError(f"--role: one of {', '.join(r.value for r in Role)} (got {role!r})")
    if team is not None and team not in TEAMS:
        raise RejectedError(f"--team: unknown team {team!r} (one of {', '.join(TEAMS)})")
    async with case_store(dsn) as pool:
        roles = await staff_roles(pool, actor)
        if isinstance(roles, str):
            raise RejectedError(roles)
        untouched = role == Role.SUPERVISOR.value
        if mine:
            stages: tuple[str, ...] | None = None
        elif untouched:
            stages = STAFF_STAGES
        elif role is not None:
            stages = stages_for([role])
        elif team is not None:
            stages = stages_for([Role.OFFICER.value])
        else:
            stages = stages_for(roles)
        view = QueueView(
            now=now,
            stages=tuple(s.value for s in stages) if stages is not None else None,
            team=team,
            holder=actor if mine else None,
            since=now - review_deadline if untouched else None,
        )
        sql, args = queue_sql(view, limit=limit)
        rows = await pool.fetch(sql, *args)
        sql, args = count_sql(view)
        waiting = await pool.fetchval(sql, *args)
        letters = []
        if not mine and team is None and _sends_letters([role] if role else roles):
            letters = [_letter_row(r, now) for r in await pool.fetch(_OWED_SQL, limit)]
    cases = [_queue_row(r, now) for r in rows]
    return {
        "as_of": now.isoformat(),
        "role": role,
        "team": team,
        "mine": mine,
        "waiting": min(waiting, COUNT_CAP),
        "more": waiting > COUNT_CAP,  # more than "waiting" wait
        "cases": cases,
        # Letters owed to reporters without email, what falls due first (workflows.owed).
        "letters": letters,
    }


# Who sends the letters owed to reporters without email: the call handlers' desk.
_LETTER_ROLES = frozenset({Role.CALL_HANDLER.value, Role.SUPERVISOR.value})
_OWED_SQL = """SELECT c.receipt_code, o.purpose, o.letter, o.meets, o.due_at, o.ways, o.owed_at,
        EXISTS (SELECT 1 FROM case_deadlines d WHERE d.workflow_id = o.workflow_id
                AND d.name = o.meets AND d.missed AND d.met_at IS NULL) AS overdue
    FROM owed_letters o JOIN cases c USING (workflow_id)
    WHERE o.delivered_at IS NULL
    ORDER BY o.due_at NULLS LAST, o.owed_at, o.purpose LIMIT $1"""


def _sends_letters(roles: list[str]) -> bool:
    return bool(_LETTER_ROLES.intersection(roles))


def _letter_row(r: asyncpg.Record, now: datetime) -> dict[str, Any]:
    return {
        "receipt_code": r["receipt_code"],
        "purpose": r["purpose"],
        "letter": r["letter"],
        "meets": r["meets"],
        "due_at": r["due_at"].isoformat() if r["due_at"] else None,
        "band": band(r["due_at"], now, overdue=r["overdue"]),
        "ways": list(r["ways"]),
        "owed_at": r["owed_at"].isoformat(),
        "next_action": "send the letter: " + (" or ".join(r["ways"]) or "in person"),
    }


def _queue_row(r: asyncpg.Record, now: datetime) -> dict[str, Any]:
    flags = list(r["flags"])
    return {
        "receipt_code": r["receipt_code"],
        "stage": r["stage"],
        "priority": r["priority"],
        "due_at": r["due_at"].isoformat() if r["due_at"] else None,
        "band": band(r["due_at"], now, overdue=r["overdue"]),
        "next_action": next_action(r["stage"], flags)
        + ("; read what the reporter added" if r["reporter_added"] else ""),
        "reporter_added": r["reporter_added"],
        "claimed_by": r["claimed_by"],
        "claimed_until": r["claimed_until"].isoformat() if r["claimed_until"] else None,
        "age": age_text(now - r["received_at"]),
        "received_at": r["received_at"].isoformat(),
        "touched_at": r["touched_at"].isoformat() if r["touched_at"] else None,
        "team": r["team"],
        "officer": r["officer"],
        "crime_reference": r["crime_reference"],
        "investigation_reference": r["investigation_reference"],
        "flags": flags,
    }


# --- the case file ----------------------------------------------------------------------


async def case_file(
    dsn: str, *, actor: str, workflow_id: str, keyring: Keyring | None
) -> dict[str, Any]:
    """The report as given, the details questions with their replies, staff notes, the
    assessment and the intelligence summary: personal data, read by staff only, audited."""
    async with case_store(dsn) as pool, pool.acquire() as conn:
        roles = await staff_roles(conn, actor)
        reason = roles if isinstance(roles, str) else None
        await conn.execute(
            """INSERT INTO audit_log (actor, action, workflow_id, allowed, reason)
               VALUES ($1, 'show-report', $2, $3, $4)""",
            actor,
            workflow_id,
            reason is None,
            reason,
        )
        if reason is not None:
            raise RejectedError(f"show --report: {reason}")
        case = await conn.fetchrow(
            "SELECT report, assessment, intelligence FROM cases WHERE workflow_id = $1",
            workflow_id,
        )
        notes = await conn.fetch(
            """SELECT event_key, at, kind, request, step, actor, key_id, sealed
               FROM case_notes WHERE workflow_id = $1 ORDER BY at, event_key""",
            workflow_id,
        )
        owed = await conn.fetch(
            """SELECT purpose, letter, meets, due_at, ways, key_id, sealed, delivered_at,
                   delivered_how, delivered_by
               FROM owed_letters WHERE workflow_id = $1 ORDER BY owed_at, purpose""",
            workflow_id,
        )
        # Investigation notes written before they were sealed into case_notes.
        legacy = await conn.fetch(
            """SELECT e.event_key, e.at, e.actor, substr(e.event, 6) AS step, e.detail ->> 'note' AS text
               FROM case_events e
               WHERE e.workflow_id = $1 AND e.event LIKE 'step:%' AND e.detail ? 'note'
               ORDER BY e.at, e.event_key""",
            workflow_id,
        )
    if case is None:
        raise RejectedError("the case is not in the case store yet")
    details: dict[int, dict[str, Any]] = {}
    staff_notes: list[dict[str, Any]] = []
    for n in notes:
        text = unseal(
            keyring,
            n["key_id"],
            n["sealed"],
            context=note_context(workflow_id, n["event_key"], n["kind"]),
        )
        if n["kind"] in ("details_question", "details_reply"):
            entry = details.setdefault(
                n["request"] or 0,
                {
                    "number": n["request"],
                    "question": None,
                    "asked_by": None,
                    "asked_at": None,
                    "replies": [],
                },
            )
            if n["kind"] == "details_question":
                entry.update(question=text, asked_by=n["actor"], asked_at=n["at"].isoformat())
            else:
                entry["replies"].append({"at": n["at"].isoformat(), "text": text})
        else:
            staff_notes.append(
                {
                    "at": n["at"].isoformat(),
                    "kind": n["kind"],
                    "step": n["step"],
                    "actor": n["actor"],
                    "text": text,
                }
            )
    for row in legacy:
        staff_notes.append(
            {
                "at": row["at"].isoformat(),
                "kind": "step_note",
                "step": row["step"],
                "actor": row["actor"],
                "text": row["text"],
            }
        )
    staff_notes.sort(key=lambda x: x["at"])
    letters = [
        {
            "purpose": o["purpose"],
            "letter": o["letter"],
            "meets": o["meets"],
            "due_at": o["due_at"].isoformat() if o["due_at"] else None,
            "ways": list(o["ways"]),
            "delivered_at": o["delivered_at"].isoformat() if o["delivered_at"] else None,
            "delivered_how": o["delivered_how"],
            "delivered_by": o["delivered_by"],
            "text": unseal(
                keyring,
                o["key_id"],
                o["sealed"],
                context=owed_context(workflow_id, o["purpose"]),
            ),
        }
        for o in owed
    ]
    return {
        "letters": letters,
        "as_given": case["report"],
        "details": [details[k] for k in sorted(details)],
        "notes": staff_notes,
        "assessment": case["assessment"],
        "intelligence": case["intelligence"],
    }
