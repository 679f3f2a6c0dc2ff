"""What the reporter's page (``web/track.py``) reads and writes in the case store.

The page reads from PostgreSQL, never from workflow queries, so it answers while the
workers restart. It writes three things of its own: failed sign-ins (``track_attempts``,
for the lockout), what a reporter adds to a case (an event and a sealed note, as a
details reply is kept), and an ``audit_log`` row for every reporter action. Answers to
details requests go through ``starter.intake.details``, the signal ``whn-intake details``
sends.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from activities.store import note_context
from domain.case import Stage
from domain.track import CaseFacts, Event
from whn.codec import CodecKeyError, Keyring
from whn.sealed import seal, unseal

REPORTER = "reporter"
Added = Literal["reporter_information", "reopen_requested"]


@dataclass(frozen=True)
class Lockout:
    """How many failures a key may have within ``window`` before it is locked for it."""

    code_failures: int = 5
    client_failures: int = 20
    window: timedelta = timedelta(minutes=15)


def same_email(given: str, kept: str | None) -> bool:
    """The email of the sign-in form is the report's (case-insensitive, constant time)."""
    a = given.strip().casefold().encode()
    b = (kept or "").strip().casefold().encode()
    return hmac.compare_digest(hashlib.sha256(a).digest(), hashlib.sha256(b).digest()) and bool(b)


async def reporter_email(pool: asyncpg.Pool, receipt_code: str) -> tuple[str, str | None] | None:
    """``(workflow id, the report's email)`` of the case with this receipt code, or None."""
    row = await pool.fetchrow(
        """SELECT workflow_id, report -> 'reporter' ->> 'email' AS email
           FROM cases WHERE receipt_code = $1""",
        receipt_code,
    )
    return None if row is None else (str(row["workflow_id"]), row["email"])


async def locked_until(pool: asyncpg.Pool, keys: list[str]) -> datetime | None:
    """The latest lock on any of ``keys`` still in force, or None."""
    value = await pool.fetchval(
        "SELECT max(locked_until) FROM track_attempts WHERE key = ANY($1) AND locked_until > now()",
        keys,
    )
    return value  # type: ignore[no-any-return]


async def record_failure(pool: asyncpg.Pool, keys: dict[str, int], window: timedelta) -> int:
    """Count a failed sign-in against each key (key -> its limit); lock a key that reaches
    its limit for ``window``. Returns the most failures any key has in its window."""
    worst = 0
    async with pool.acquire() as conn, conn.transaction():
        for key, limit in keys.items():
            failures = await conn.fetchval(
                """INSERT INTO track_attempts AS t (key, failures, first_at) VALUES ($1, 1, now())
                   ON CONFLICT (key) DO UPDATE SET
                     failures = CASE WHEN t.first_at < now() - $2::interval THEN 1
                                     ELSE t.failures + 1 END,
                     first_at = CASE WHEN t.first_at < now() - $2::interval THEN now()
                                     ELSE t.first_at END
                   RETURNING failures""",
                key,
                window,
            )
            if failures >= limit:
                await conn.execute(
                    """UPDATE track_attempts SET locked_until = now() + $2::interval,
                           failures = 0, first_at = now()
                       WHERE key = $1""",
                    key,
                    window,
                )
            worst = max(worst, int(failures))
    return worst


async def clear_failures(pool: asyncpg.Pool, key: str) -> None:
    """A good sign-in forgets the code's earlier failures (never a client's)."""
    await pool.execute("DELETE FROM track_attempts WHERE key = $1 AND locked_until IS NULL", key)


async def case_facts(pool: asyncpg.Pool, workflow_id: str) -> CaseFacts | None:
    """What the page shows of a case, from the case store; None if it is not there."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT c.receipt_code, c.stage, c.received_at, c.crime_reference,
                      c.investigation_reference, c.team, s.name AS officer_name,
                      c.redirected_to, c.enhanced_rights, c.closed_at
               FROM cases c LEFT JOIN staff s ON s.staff_id = c.officer
               WHERE c.workflow_id = $1""",
            workflow_id,
        )
        if row is None:
            return None
        events = await conn.fetch(
            """SELECT at, event, detail FROM case_events WHERE workflow_id = $1
               ORDER BY at, id""",
            workflow_id,
        )
    return CaseFacts(
        receipt_code=row["receipt_code"],
        stage=Stage(row["stage"]),
        received_at=row["received_at"],
        crime_reference=row["crime_reference"],
        investigation_reference=row["investigation_reference"],
        team=row["team"],
        officer_name=row["officer_name"],
        redirected_to=row["redirected_to"],
        enhanced_rights=row["enhanced_rights"],
        closed_at=row["closed_at"],
        events=tuple(Event(e["at"], e["event"], dict(e["detail"] or {})) for e in events),
    )


async def question(
    pool: asyncpg.Pool, keyring: Keyring | None, workflow_id: str, number: int
) -> str | None:
    """The text of details request ``number``, if the case store keeps it (sealed)."""
    row = await pool.fetchrow(
        """SELECT event_key, key_id, sealed FROM case_notes
           WHERE workflow_id = $1 AND kind = 'details_question' AND request = $2
           ORDER BY at DESC LIMIT 1""",
        workflow_id,
        number,
    )
    if row is None:
        return None
    try:
        return unseal(
            keyring,
            row["key_id"],
            row["sealed"],
            context=note_context(workflow_id, row["event_key"], "details_question"),
        )
    except CodecKeyError:
        return None  # the letter has it; the page says so


async def add(
    pool: asyncpg.Pool, keyring: Keyring | None, workflow_id: str, text: str, *, what: Added
) -> bool:
    """Record what the reporter adds: an event in the case's log and the text as a sealed
    note, both or neither; the same text again is recorded once. True if it was new."""
    digest = hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:32]
    event_key = f"reporter.{digest}"
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO case_events (workflow_id, event_key, at, actor, event, detail)
               VALUES ($1, $2, now(), $3, $4, $5)
               ON CONFLICT (workflow_id, event_key) DO NOTHING RETURNING id""",
            workflow_id,
            event_key,
            REPORTER,
            what,
            {"length": len(text)},
        )
        if inserted is None:
            return False
        kind = "reporter_information"
        key_id, sealed = seal(keyring, text, context=note_context(workflow_id, event_key, kind))
        await conn.execute(
            """INSERT INTO case_notes (workflow_id, event_key, at, kind, actor, key_id, sealed)
               VALUES ($1, $2, now(), $3, $4, $5, $6)""",
            workflow_id,
            event_key,
            kind,
            REPORTER,
            key_id,
            sealed,
        )
        await conn.execute(
            "UPDATE cases SET updated_at = now() WHERE workflow_id = $1", workflow_id
        )
    return True


async def audit(
    pool: asyncpg.Pool,
    action: str,
    *,
    workflow_id: str | None,
    allowed: bool,
    reason: str | None = None,
) -> None:
    """One audit_log row for a reporter action (actor ``reporter``), allowed or refused."""
    await pool.execute(
        """INSERT INTO audit_log (actor, action, workflow_id, allowed, reason)
           VALUES ($1, $2, $3, $4, $5)""",
        REPORTER,
        action,
        workflow_id,
        allowed,
        reason,
    )
