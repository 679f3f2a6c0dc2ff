"""The case store in PostgreSQL: cases, their event log, references, referrals, staff."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.handoff import ACKNOWLEDGED_SQL
from activities.projection import count_results, event_number, project_deadlines
from activities.rules import (
    assess_report,
    imu_outcome,
    name_outcome,
    route_case,
    screen_report,
    working_days_after,
)
from domain.actions import action_rule
from domain.effects import (
    Authorise,
    Begin,
    Begun,
    CaseChange,
    Commit,
    ControlRoomAlert,
    Decide,
    IssueReference,
    OpenCase,
    Referral,
    ScreenRequest,
    StaffCheck,
    StaffMember,
)
from domain.references import format_crime_reference, format_investigation_reference
from domain.screening import Screening
from whn.codec import Keyring
from whn.sealed import seal

_CLAIM_EVENTS = frozenset({"claimed", "released", "claim_lapsed", "reassigned"})
# Deadlines the reporter, not the force, has to meet: not the queue's order.
_REPORTER_OWES = ("details_reply",)
# Actors that are not members of staff: their events do not count as the case touched.
_NOT_STAFF = frozenset({"system", "intake", "reporter"})


def note_context(workflow_id: str, event_key: str, kind: str) -> str:
    """What a sealed note is bound to: its row's identity in case_notes."""
    return f"{workflow_id}/{event_key}/{kind}"


async def _roster_entry(
    conn: asyncpg.Connection | PoolConnectionProxy, staff_id: str, *, field: str = ""
) -> tuple[asyncpg.Record | None, str | None]:
    """``staff_id``'s roster row, and why they cannot act at all (unknown or disabled).

    ``field`` prefixes the reason with the option it answers (``--to: `` for a reassign).
    """
    row = await conn.fetchrow(
        "SELECT staff_id, name, roles, active FROM staff WHERE staff_id = $1", staff_id
    )
    if row is None:
        return None, f"{field}unknown staff id {staff_id!r}"
    if not row["active"]:
        return row, f"{field}staff {staff_id!r} is disabled"
    return row, None


async def _audit(
    conn: asyncpg.Connection | PoolConnectionProxy,
    *,
    actor: str,
    action: str,
    workflow_id: str,
    reason: str | None = None,
    key: str | None = None,
) -> bool:
    """One row of the audit log: allowed unless there is a ``reason`` it was refused.

    With a ``key`` (a staff action's, ``Authorise.key``) the row is written once: False
    if the action already has one (a retry), which then stands."""
    # A row without a key never conflicts (the index is on keyed rows only).
    inserted = await conn.fetchval(
        """INSERT INTO audit_log (actor, action, workflow_id, allowed, reason, action_key)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (workflow_id, action_key) WHERE action_key IS NOT NULL DO NOTHING
           RETURNING id""",
        actor,
        action,
        workflow_id,
        reason is None,
        reason,
        key,
    )
    return inserted is not None


async def _verdict(
    conn: asyncpg.Connection | PoolConnectionProxy,
    row: asyncpg.Record | None,
    reason: str | None,
    *,
    actor: str,
    action: str,
    workflow_id: str,
    audit_allowed: bool = True,
    key: str | None = None,
) -> StaffMember:
    """The answer of a roster check: audited, then the staff member or ``NotAuthorisedError``.

    A refusal is always audited against ``actor``; an allowed check only when
    ``audit_allowed`` (the action's own authorisation, not a check of its target). A
    keyed action (``Authorise.key``) is answered once: a retry that finds the row an
    earlier attempt wrote follows that answer and writes nothing.
    """
    if reason is not None or audit_allowed:
        written = await _audit(
            conn, actor=actor, action=action, workflow_id=workflow_id, reason=reason, key=key
        )
        if not written:
            reason = await _first_answer(conn, workflow_id, key, reason)
    elif key is not None:
        reason = await _first_answer(conn, workflow_id, key, reason)
    if reason is not None or row is None:
        raise NotAuthorisedError(reason or "not authorised")
    return StaffMember(staff_id=row["staff_id"], name=row["name"], roles=list(row["roles"]))


async def _first_answer(
    conn: asyncpg.Connection | PoolConnectionProxy,
    workflow_id: str,
    key: str | None,
    reason: str | None,
) -> str | None:
    """The refusal's reason of the answer written first for the keyed action (None:
    allowed); ``reason`` (this attempt's own) when none was written yet."""
    if key is None:
        return reason
    first = await conn.fetchrow(
        "SELECT allowed, reason FROM audit_log WHERE workflow_id = $1 AND action_key = $2",
        workflow_id,
        key,
    )
    if first is None:
        return reason
    return None if first["allowed"] else (first["reason"] or "not authorised")


async def _issue(
    conn: asyncpg.Connection | PoolConnectionProxy, force_code: str, request: IssueReference
) -> str:
    """The case's reference of this kind: issued once, gapless, the same on every retry."""
    async with conn.transaction():
        existing = await conn.fetchval(
            "SELECT reference FROM case_references WHERE workflow_id = $1 AND kind = $2",
            request.workflow_id,
            request.kind,
        )
        if existing is not None:
            return str(existing)
        sequence = await conn.fetchval(
            """INSERT INTO reference_counters (kind, year, value) VALUES ($1, $2, 1)
               ON CONFLICT (kind, year)
               DO UPDATE SET value = reference_counters.value + 1
               RETURNING value""",
            request.kind,
            request.year,
        )
        if request.kind == "crime":
            reference = format_crime_reference(force_code, sequence, request.year)
            column = "crime_reference"
        else:
            reference = format_investigation_reference(sequence, request.year)
            column = "investigation_reference"
        await conn.execute(
            "INSERT INTO case_references (reference, workflow_id, kind) VALUES ($1, $2, $3)",
            reference,
            request.workflow_id,
            request.kind,
        )
        await conn.execute(
            f"UPDATE cases SET {column} = $2, updated_at = now() WHERE workflow_id = $1",
            request.workflow_id,
            reference,
        )
        return reference


async def _authorise(
    conn: asyncpg.Connection | PoolConnectionProxy, request: Authorise, *, audit_allowed: bool = True
) -> StaffMember:
    """The actor checked against the roster for the action; the answer audited (an
    allowed one only if ``audit_allowed``: else the caller writes it with ``_audit``)."""
    rule = action_rule(request.action)
    row, reason = await _roster_entry(conn, request.actor)
    if row is not None and reason is None:
        if not rule.roles.intersection(row["roles"]):
            reason = rule.wrong_role(request.actor, row["roles"])
        elif request.override_claim_of and "supervisor" not in row["roles"]:
            reason = (
                f"the case is held by {request.override_claim_of}: only they or a"
                " supervisor may act on it"
            )
    return await _verdict(
        conn,
        row,
        reason,
        actor=request.actor,
        action=request.action,
        workflow_id=request.workflow_id,
        audit_allowed=audit_allowed,
        key=request.key,
    )


async def open_case_row(conn: asyncpg.Connection | PoolConnectionProxy, case: OpenCase) -> None:
    """The case row and its first event (a retry finds them and does nothing)."""
    await conn.execute(
        """INSERT INTO cases (workflow_id, receipt_code, submission_id, stage, priority,
               category, report, received_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (workflow_id) DO NOTHING""",
        case.workflow_id,
        case.receipt_code,
        case.submission_id,
        case.stage,
        case.priority,
        case.category,
        case.report.model_dump(mode="json"),
        case.received_at,
    )
    await conn.execute(
        """INSERT INTO case_events (workflow_id, event_key, at, actor, event, detail)
           VALUES ($1, 'received', $2, 'intake', 'received', $3)
           ON CONFLICT (workflow_id, event_key) DO NOTHING""",
        case.workflow_id,
        case.received_at,
        {"channel": case.report.channel.value, "category": case.category},
    )


async def _insert_referral(
    conn: asyncpg.Connection | PoolConnectionProxy, referral: Referral
) -> None:
    await conn.execute(
        """INSERT INTO referrals (workflow_id, kind, agency, due_at)
           VALUES ($1, $2, $3, $4) ON CONFLICT (workflow_id, kind) DO NOTHING""",
        referral.workflow_id,
        referral.kind,
        referral.agency,
        referral.due_at,
    )


async def _insert_alert(
    conn: asyncpg.Connection | PoolConnectionProxy, alert: ControlRoomAlert
) -> None:
    await conn.execute(
        """INSERT INTO control_room_alerts (workflow_id, attempt, indicators)
           VALUES ($1, $2, $3) ON CONFLICT (workflow_id, attempt) DO NOTHING""",
        alert.workflow_id,
        alert.attempt,
        alert.indicators,
    )


async def write_commit(
    conn: asyncpg.Connection | PoolConnectionProxy, commit: Commit, keyring: Keyring | None
) -> list[tuple[str, str]]:
    """``commit``'s rows, inside the caller's transaction; the deadline results to count.

    ``keyring`` seals the notes of ``case_notes`` (whn/sealed.py)."""
    workflow_id = commit.workflow_id
    for allowed in commit.audits:  # authorised by begin, audited with the action
        await _audit(
            conn,
            actor=allowed.actor,
            action=allowed.action,
            workflow_id=allowed.workflow_id,
            key=allowed.key,
        )
    values: dict[str, object] = {}
    latest: CaseChange | None = None  # the newest change written that knows the deadlines
    for change in commit.changes:
        inserted = await conn.fetchval(
            """INSERT INTO case_events (workflow_id, event_key, at, actor, event, detail)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (workflow_id, event_key) DO NOTHING
               RETURNING id""",
            workflow_id,
            change.event_key,
            change.at,
            change.actor,
            change.event,
            change.detail,
        )
        if inserted is None:
            continue  # written by an earlier attempt
        if change.event in _CLAIM_EVENTS:
            # Claims, releases, lapses and reassignments are in the audit log too.
            await conn.execute(
                """INSERT INTO audit_log (at, actor, action, workflow_id, allowed, reason)
                   VALUES ($1, $2, $3, $4, true, $5)""",
                change.at,
                change.actor,
                change.event,
                workflow_id,
                ", ".join(f"{k} {v}" for k, v in sorted(change.detail.items())) or None,
            )
        for note in change.notes:
            key_id, sealed = seal(
                keyring,
                note.text,
                context=note_context(workflow_id, change.event_key, note.kind),
            )
            await conn.execute(
                """INSERT INTO case_notes (workflow_id, event_key, at, kind, request, step,
                       actor, key_id, sealed)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                   ON CONFLICT DO NOTHING""",
                workflow_id,
                change.event_key,
                change.at,
                note.kind,
                note.request,
                note.step,
                change.actor,
                key_id,
                sealed,
            )
        # Columns in event order: a later change's value wins, as one UPDATE each would.
        values.update(change.fields.given())
        if change.actor not in _NOT_STAFF:
            values["touched_at"] = change.at
        if change.deadlines is not None:
            latest = change
    for referral in commit.referrals:
        await _insert_referral(conn, referral)
    for alert in commit.alerts:
        await _insert_alert(conn, alert)
    for taken in commit.acknowledged:
        await conn.execute(ACKNOWLEDGED_SQL, workflow_id, taken.attempt_key, taken.officer)
    if values:
        names = sorted(values)
        assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
        await conn.execute(
            f"UPDATE cases SET {assignments}, updated_at = now() WHERE workflow_id = $1",
            workflow_id,
            *(values[name] for name in names),
        )
    if latest is None:
        return []
    # Each change carries the whole list as it then stood: the newest one says it all.
    results = await project_deadlines(
        conn, workflow_id, latest.deadlines, event=event_number(latest.event_key)
    )
    # The queue's order: the earliest deadline staff still owe (missed ones too),
    # from the projection, so an older change committed late never sets it.
    await conn.execute(
        """UPDATE cases SET due_at = (
               SELECT min(d.due_at) FROM case_deadlines d
               WHERE d.workflow_id = $1 AND d.met_at IS NULL
                 AND d.promise <> ALL($2::text[]))
           WHERE workflow_id = $1""",
        workflow_id,
        list(_REPORTER_OWES),
    )
    return results


class NotAuthorisedError(ApplicationError):
    """A staff action refused by the roster (unknown person, disabled, or missing role)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="NotAuthorised", non_retryable=True)


class CaseStore:
    """Activities over the case store; one instance per worker, sharing a pool."""

    def __init__(
        self, pool: asyncpg.Pool, *, force_code: str, keyring: Keyring | None = None
    ) -> None:
        self._pool = pool
        self._force_code = force_code
        self._keyring = keyring  # seals the notes of case_notes (whn/sealed.py)

    @activity.defn
    async def open_case(self, case: OpenCase) -> None:
        """Insert the case row and its first event; a retry finds them and does nothing."""
        async with self._pool.acquire() as conn, conn.transaction():
            await open_case_row(conn, case)

    @activity.defn
    async def record_change(self, change: CaseChange) -> None:
        """Append an event and update the case's columns, both or neither."""
        await self.commit(Commit(workflow_id=change.workflow_id, changes=[change]))

    @activity.defn
    async def commit(self, commit: Commit) -> None:
        """Append a case's events in order and update its columns, its referrals and
        control-room alerts with them: all or nothing, each event once (by its key)."""
        async with self._pool.acquire() as conn, conn.transaction():
            results = await self._write(conn, commit)
        count_results(results)

    @activity.defn
    async def decide(self, decide: Decide) -> None:
        """A staff action decided before it was authorised (patch begin-in-commit), in
        one transaction: the actor authorised against the roster and audited, then,
        only if allowed, what the action changed (``decide.commit``, as ``commit``).
        Refused: the refusal's audit row commits alone and ``NotAuthorisedError`` is
        raised (the case undoes what the action changed). Retried, it follows the answer
        its first attempt wrote (by ``Authorise.key``) and writes each row once."""
        refused: NotAuthorisedError | None = None
        results: list[tuple[str, str]] = []
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                await _authorise(conn, decide.authorise)
            except NotAuthorisedError as refusal:
                refused = refusal  # the refusal's audit row commits; nothing else
            else:
                results = await self._write(conn, decide.commit)
        if refused is not None:
            raise refused
        count_results(results)

    @activity.defn
    async def open_and_screen(self, case: OpenCase) -> Screening:
        """Step 1's first local activity: the case opened (as ``open_case``), then the
        report screened (triage and the right agency)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await open_case_row(conn, case)
        return await screen_report(ScreenRequest(report=case.report, received_at=case.received_at))

    async def _write(
        self, conn: asyncpg.Connection | PoolConnectionProxy, commit: Commit
    ) -> list[tuple[str, str]]:
        return await write_commit(conn, commit, self._keyring)

    @activity.defn
    async def issue_reference(self, request: IssueReference) -> str:
        """The case's reference of this kind: issued once, gapless, the same on every retry."""
        async with self._pool.acquire() as conn:
            return await _issue(conn, self._force_code, request)

    @activity.defn
    async def authorise(self, request: Authorise) -> StaffMember:
        """Check the actor against the roster for this action; audit the answer either way."""
        async with self._pool.acquire() as conn:
            return await _authorise(conn, request)

    @activity.defn
    async def begin(self, begin: Begin) -> Begun:
        """A staff action's start in one local activity: the actor authorised (audited
        either way); then, only if allowed, its reference issued and its rules run (the
        IMU's decision support among them).

        With ``begin.audit_with_commit`` and no reference to issue, an allowed actor's
        audit row is left to the action's commit (``Begun.audited`` false): the check is
        one query, and the action writes in one transaction, not two.
        """
        refused: NotAuthorisedError | None = None
        reference: str | None = None
        audited = not begin.audit_with_commit or begin.reference is not None
        async with self._pool.acquire() as conn:
            if not audited:
                # Read only; a refusal's audit row is a statement of its own (committed).
                staff = await _authorise(conn, begin.authorise, audit_allowed=False)
            else:
                async with conn.transaction():
                    try:
                        staff = await _authorise(conn, begin.authorise)
                    except NotAuthorisedError as refusal:
                        refused = refusal  # the refusal's audit row commits; nothing else
                    else:
                        if begin.reference is not None:
                            reference = await _issue(conn, self._force_code, begin.reference)
        if refused is not None:
            raise refused
        return Begun(
            staff=staff,
            audited=audited,
            reference=reference,
            team=await route_case(begin.route) if begin.route else None,
            imu_outcome=await imu_outcome(begin.imu_outcome) if begin.imu_outcome else None,
            outcome_name=await name_outcome(begin.outcome) if begin.outcome is not None else None,
            due=await working_days_after(begin.working_days) if begin.working_days else None,
            assessment=await assess_report(begin.assess) if begin.assess else None,
        )

    @activity.defn
    async def check_staff(self, check: StaffCheck) -> StaffMember:
        """``check.staff_id`` is active staff with one of ``check.roles`` (or a supervisor);
        refused otherwise, and the refusal audited against the actor."""
        async with self._pool.acquire() as conn:
            row, reason = await _roster_entry(conn, check.staff_id, field="--to: ")
            needed = set(check.roles).union({"supervisor"})
            if row is not None and reason is None and not needed.intersection(row["roles"]):
                reason = (
                    f"--to: {check.staff_id} has "
                    + (", ".join(row["roles"]) or "no role")
                    + f"; the case needs {' or '.join(sorted(check.roles))}"
                )
            return await _verdict(
                conn,
                row,
                reason,
                actor=check.actor,
                action="reassign",
                workflow_id=check.workflow_id,
                audit_allowed=False,
            )

    @activity.defn
    async def record_referral(self, referral: Referral) -> None:
        """Record a hand-off to another body (once per case and kind)."""
        async with self._pool.acquire() as conn:
            await _insert_referral(conn, referral)

    @activity.defn
    async def raise_control_room_alert(self, alert: ControlRoomAlert) -> None:
        """Record an emergency escalation for the control room (once per attempt)."""
        async with self._pool.acquire() as conn:
            await _insert_alert(conn, alert)
