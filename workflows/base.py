"""What every part of the case workflow shares: its state and its records.

``CaseBase`` holds the case's state (``self.case``) and the small operations every step
uses: record an event (idempotent by key), change stage (and the search attributes and
the UI's current details with it), keep deadlines. Letters are ``workflows.letters``, staff actions ``workflows.acting``, what falls
due ``workflows.due``; the steps live in ``workflows.review`` (Steps 1-2) and
``workflows.investigation`` (Steps 3-4); ``workflows.case`` puts them together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.rules import working_days_after
    from activities.store import CaseStore
    from domain.assessment import Assessment
    from domain.case import (
        ActionResult,
        CaseInput,
        CaseState,
        Deadline,
        DetailsReply,
        DetailsRequestState,
        Stage,
        TimelineEntry,
    )
    from domain.effects import (
        Authorise,
        Begun,
        CaseChange,
        CaseNote,
        Commit,
        ControlRoomAlert,
        Decide,
        IssueReference,
        ReferenceKind,
        Referral,
        TeamAcknowledged,
        WorkingDays,
    )
    from whn import attributes as sa

# Short database writes run as local activities: one round trip fewer per step. They
# retry until PostgreSQL is back; a case never gives up on its own records.
DB_TIMEOUT = timedelta(seconds=10)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
# Events; continue as new past this (or when Temporal suggests it).
HISTORY_LIMIT = 2_000
# "Immediately": a few minutes' grace for the mail server, then it is a missed promise.
RECEIPT_GRACE = timedelta(minutes=5)

# workflow.patched ids: one per change to workflow code made while cases are open.
#
# Every patch is asked through ``CaseBase._patched(id)``, never ``workflow.patched``
# directly: a new case takes the patches of the newest bundle with one marker, asked once
# at its first activation (``_start_keeping``), instead of one marker (and one
# TemporalChangeVersion upsert) per patch. The rules (docs/versioning.md):
#
# - a case whose history has a bundle's marker takes every patch of that bundle without
#   a marker of its own; a case without one (every history from before the bundle) asks
#   each patch by itself, as it was recorded;
# - a bundle's set is frozen once it is deployed: never add an id to it nor take one out
#   (either changes what a bundled case does on replay);
# - a patch added after the newest bundle is asked by itself (its own marker, as
#   before) until the next bundle, a new id whose set has every id of the one before and
#   the new ones; add it first in ``BUNDLES``; older bundles stay for the cases that
#   carry them.
#
# From this one on, a case keeps what it changes (events, referrals, control-room alerts,
# search attributes) until the end of the staff action or the step that changed it, and
# writes it then in one local activity (``CaseStore.commit``) and one upsert.
PATCH_ONE_TRANSACTION = "one-transaction-actions"
# The main loop's due timer is kept while the next due time is unchanged
# (workflows.due.DueTimer). Bundled from the start (the two landed together, before
# either was deployed), so no history has its own marker: asked once as a run starts, it
# is False for every case from before the bundle, for the rest of its run.
PATCH_KEEP_DUE_TIMER = "keep-due-timer"
# A staff action whose body needs nothing from ``CaseStore.begin`` (no ``needs``, no
# activity inside it) is decided before it is authorised: the body runs on a copy of the
# case's state, then ONE local activity (``CaseStore.decide``) authorises the actor and,
# only if allowed, writes the whole commit in the same transaction; the search
# attributes are upserted and the letters set off only after it answers. Refused, the
# case's state is put back as it was (nothing the body changed survives) and the update
# fails NotAuthorised as before. Only while nothing else can change the case meanwhile
# (``_quiet``: the main loop parked in its wait, which holds while an action decides,
# and no letter on its way); otherwise begin then commit, as before. Each action's audit
# row is keyed (``Authorise.key``). Bundled from the start (bundle-2026-12-actions), so
# no history has its own marker: asked once as a run starts, False for every case from
# before the bundle.
PATCH_BEGIN_IN_COMMIT = "begin-in-commit"
# One marker for all of these (written out: the ids live beside their code, which imports
# this module; tests/test_replay.py checks each is a PATCH_* id of workflows/).
PATCH_BUNDLE_2026_12 = "bundle-2026-12"
_BUNDLE_2026_12 = frozenset(
    {
        PATCH_ONE_TRANSACTION,
        PATCH_KEEP_DUE_TIMER,
        "details-reply-acknowledged",  # workflows.review
        "letters-after-decision",  # workflows.letters
        "deadline-met-recorded",  # workflows.letters
        "owed-letters",  # workflows.letters
        "agreed-updates",  # workflows.victims
    }
)
# The one before and the patches added since.
PATCH_BUNDLE_2026_12_LETTERS = "bundle-2026-12-letters"
# Deployed: frozen (never add an id to it nor take one out).
_BUNDLE_2026_12_LETTERS = _BUNDLE_2026_12 | {
    "letters-local",  # workflows.letters
    "intel-local",  # workflows.investigation
    "acknowledged-in-commit",  # workflows.investigation
    "begin-prepares",  # workflows.review
    "receipt-opens-case",  # workflows.receipt
    "letters-carry-commit",  # workflows.letters
}
# Not deployed yet: a patch added before it is, joins it (and every
# *.bundle-2026-12-actions.json history is recorded again).
PATCH_BUNDLE_2026_12_ACTIONS = "bundle-2026-12-actions"
BUNDLES: tuple[tuple[str, frozenset[str]], ...] = (
    (
        PATCH_BUNDLE_2026_12_ACTIONS,
        _BUNDLE_2026_12_LETTERS
        | {
            PATCH_BEGIN_IN_COMMIT,
            "search-records",  # workflows.investigation
        },
    ),
    # "intel-local", "acknowledged-in-commit", "begin-prepares", "receipt-opens-case" and
    # "letters-carry-commit" joined it before it was deployed (it landed the same day, on
    # main only): every *.bundle-2026-12-letters.json history was recorded again with
    # them.
    (PATCH_BUNDLE_2026_12_LETTERS, _BUNDLE_2026_12_LETTERS),
    (PATCH_BUNDLE_2026_12, _BUNDLE_2026_12),
)
# What a staff action decided first (PATCH_BEGIN_IN_COMMIT) may change, put back as it
# was when it is refused (``CaseBase._tentative``, ``_undo``): the case's state and what
# is kept for the next commit (``_ordered``: the letters to send after it, CaseLetters).
_TENTATIVE = ("case", "_kept", "_audits", "_acknowledged", "_attributes_dirty", "_ordered")

# Deadlines the reporter, not the force, has to meet: missing them is not "overdue".
_REPORTER_OWES = ("details_reply",)


class CaseBase:
    """State and shared operations of a case (see the module docstring)."""

    _inp: CaseInput
    _id: str
    _received_at: datetime
    case: CaseState
    _lock: asyncio.Lock
    _inbox: list[DetailsReply]
    _changes: int
    _letters: list[asyncio.Task[None]]
    # The patches this case takes without a marker of their own (its bundle's, if any).
    _bundled: frozenset[str] = frozenset()
    # PATCH_ONE_TRANSACTION: what is kept for the next commit (``_commit``).
    _one_transaction: bool = False
    _kept: tuple[list[CaseChange], list[Referral], list[ControlRoomAlert]]
    # Staff actions allowed whose audit row is the next commit's (``Begun.audited``).
    _audits: list[Authorise]
    # Team queue entries taken, for the next commit (acknowledged-in-commit).
    _acknowledged: list[TeamAcknowledged]
    _attributes_dirty: bool = False
    _commit_lock: asyncio.Lock
    # What the running staff action's first local activity answered (CaseStore.begin).
    _begun: Begun | None = None
    # PATCH_BEGIN_IN_COMMIT: staff actions may decide before they are authorised; one
    # is deciding now (its body ran on a copy, its ``CaseStore.decide`` not answered),
    # with what it would put back if refused; the main loop is parked in its wait.
    _decides_first: bool = False
    _deciding: bool = False
    _undo: dict[str, Any] | None = None
    _undo_details: str = ""
    _loop_parked: bool = False

    def _start_keeping(self) -> None:
        """Called once, first thing in a run: the case's patch bundle (the newest for a
        new run; on replay the one its history carries, or none), then whether it
        commits once per action."""
        self._bundled = next(
            (ids for bundle, ids in BUNDLES if workflow.patched(bundle)), frozenset()
        )
        self._one_transaction = self._patched(PATCH_ONE_TRANSACTION)
        self._decides_first = self._one_transaction and self._patched(PATCH_BEGIN_IN_COMMIT)
        self._kept = ([], [], [])
        self._audits = []
        self._acknowledged = []
        self._commit_lock = asyncio.Lock()

    def _patched(self, patch: str) -> bool:
        """``workflow.patched(patch)``, unless the case's bundle has it: then True, and
        no marker (see ``BUNDLES``). The one way workflow code asks for a patch."""
        return patch in self._bundled or workflow.patched(patch)

    def _not_deciding(self, what: str) -> None:
        """A staff action decided first runs no activity before its decision: one that
        does says ``decide_first=False`` (workflows.acting)."""
        if self._deciding:
            raise RuntimeError(f"{what} inside a staff action decided first (decide_first)")

    async def _in_store(self, method: Any, arg: Any, summary: str) -> Any:
        """A short write to (or read of) the case store, as a local activity retried
        until PostgreSQL is back: a case never gives up on its own records."""
        self._not_deciding(summary)
        return await workflow.execute_local_activity_method(
            method, arg, retry_policy=DB_RETRY, summary=summary, start_to_close_timeout=DB_TIMEOUT
        )

    async def _refer(self, referral: Referral, summary: str) -> None:
        """A hand-off to another body, recorded (once per case and kind)."""
        if self._one_transaction:
            self._kept[1].append(referral)
            return
        await self._in_store(CaseStore.record_referral, referral, summary)

    def _take_kept(self) -> Commit | None:
        changes, referrals, alerts = self._kept
        audits, acknowledged = self._audits, self._acknowledged
        if not (changes or referrals or alerts or audits or acknowledged):
            return None
        self._kept = ([], [], [])
        self._audits = []
        self._acknowledged = []
        return Commit(
            workflow_id=self._id,
            changes=changes,
            referrals=referrals,
            alerts=alerts,
            audits=audits,
            acknowledged=acknowledged,
        )

    def _keep_again(self, commit: Commit) -> None:
        """Put back what ``commit`` took (``_take_kept``), before anything kept since:
        its local activity failed, and the next commit writes it (each row once)."""
        changes, referrals, alerts = self._kept
        self._kept = (
            [*commit.changes, *changes],
            [*commit.referrals, *referrals],
            [*commit.alerts, *alerts],
        )
        self._audits = [*commit.audits, *self._audits]
        self._acknowledged = [*commit.acknowledged, *self._acknowledged]

    async def _commit(self) -> None:
        """Write what the case has kept (PATCH_ONE_TRANSACTION): the search attributes
        once, then the writes in one local activity. Commits run one at a time, in
        order; one that finds its writes taken by a commit still running waits for it,
        so a caller returns only once what it changed is in the store."""
        if not self._one_transaction:
            return
        self._write_attributes()
        async with self._commit_lock:
            commit = self._take_kept()
            if commit is None:
                return
            events = ", ".join(c.event.replace("_", " ") for c in commit.changes)
            summary = f"Recorded: {events}" if events else "Recorded: authorisation"
            await self._in_store(CaseStore.commit, commit, summary[:200])
            self._changes += 1

    # --- deciding before authorising (PATCH_BEGIN_IN_COMMIT, workflows.acting) --------

    def _quiet(self) -> bool:
        """Nothing but a staff action can change the case until it has decided: the main
        loop is parked in its wait (``_park``: it holds while an action decides) and no
        letter is on its way (its answer would change the case)."""
        ordered = getattr(self, "_ordered", ())  # CaseLetters: letters not yet set off
        return self._loop_parked and not ordered and all(t.done() for t in self._letters)

    async def _park(self, wake: Callable[[], bool]) -> None:
        """The main loop's wait for ``wake()``: held while a staff action decides, and
        no longer parked from the moment it is let through (its task is then ready)."""

        def ready() -> bool:
            if self._deciding or not wake():
                return False
            self._loop_parked = False
            return True

        self._loop_parked = self._decides_first
        try:
            await workflow.wait_condition(ready)
        finally:
            self._loop_parked = False

    def _tentative(self) -> None:
        """A staff action decides first: what it may change is kept aside as it is, and
        its body runs on copies (``_TENTATIVE``; the UI's current details too)."""
        self._undo = {name: getattr(self, name) for name in _TENTATIVE}
        self._undo_details = workflow.get_current_details()
        self.case = self.case.model_copy(deep=True)
        changes, referrals, alerts = self._kept
        self._kept = (list(changes), list(referrals), list(alerts))
        self._audits = list(self._audits)
        self._acknowledged = list(self._acknowledged)
        self._deciding = True

    def _undo_tentative(self) -> None:
        """Refused: the case exactly as it was before the action (the same objects)."""
        assert self._undo is not None
        for name, value in self._undo.items():
            setattr(self, name, value)
        workflow.set_current_details(self._undo_details)
        self._undo = None

    async def _decide(self, authorise: Authorise) -> None:
        """The decided action's one local activity (``CaseStore.decide``): the actor
        authorised and, only if allowed, everything kept written, in one transaction
        (in order with the other commits). Refused (or failed): what the action changed
        is put back, and the error raised. Allowed: the action's state is the case's;
        the caller then commits (the search attributes, the letters: ``_commit``)."""
        try:
            async with self._commit_lock:
                commit = self._take_kept() or Commit(workflow_id=self._id)
                events = ", ".join(c.event.replace("_", " ") for c in commit.changes)
                summary = f"Authorised {authorise.action} for {authorise.actor}" + (
                    f"; recorded: {events}" if events else ""
                )
                await workflow.execute_local_activity_method(
                    CaseStore.decide,
                    Decide(authorise=authorise, commit=commit),
                    retry_policy=DB_RETRY,
                    summary=summary[:200],
                    start_to_close_timeout=DB_TIMEOUT,
                )
        except BaseException:
            self._undo_tentative()
            raise
        finally:
            self._deciding = False
        self._undo = None
        self._changes += 1

    @contextmanager
    def _as_decided(self) -> Iterator[None]:
        """While a staff action decides first, the case as it was before it (what a
        query answers: the action may yet be refused)."""
        if self._undo is None:
            yield
            return
        tentative = self.case
        self.case = self._undo["case"]
        try:
            yield
        finally:
            self.case = tentative

    def _reference_request(self, kind: ReferenceKind) -> IssueReference:
        return IssueReference(workflow_id=self._id, kind=kind, year=workflow.now().year)

    async def _issue_reference(self, kind: ReferenceKind, now: datetime) -> str:
        """The case's crime or investigation reference: issued once, the same on retry."""
        if self._begun is not None and self._begun.reference is not None:
            return self._begun.reference  # issued with the action's authorisation
        reference: str = await self._in_store(
            CaseStore.issue_reference,
            IssueReference(workflow_id=self._id, kind=kind, year=now.year),
            f"{kind.capitalize()} reference issued",
        )
        return reference

    async def _right6_due(self, start: datetime, days: int) -> datetime:
        """Victims' Code Right 6: ``days`` working days after ``start`` (bank holidays)."""
        if self._begun is not None and self._begun.due is not None:
            return self._begun.due  # worked out with the action's authorisation
        due: datetime = await self._rule(
            working_days_after,
            WorkingDays(start=start, days=days),
            f"Right 6 due in {days} working day(s)",
        )
        return due

    async def _assessed(self, assessment: Assessment) -> None:
        """The IMU's decision support (solvability and vulnerability) on the case."""
        self.case.assessment = assessment
        await self._record(
            "assessed",
            "system",
            {"summary": assessment.summary},
            fields={"assessment": assessment.model_dump(mode="json")},
        )

    def _prepared(self, name: str) -> Any:
        """What the running action's authorisation also worked out (``Begun.<name>``),
        or None: the body then asks for it itself."""
        return getattr(self._begun, name) if self._begun is not None else None

    async def _rule(self, fn: Any, arg: Any, summary: str) -> Any:
        """A rule evaluated by its own local activity (the rules live in activities)."""
        self._not_deciding(summary)
        return await workflow.execute_local_activity(
            fn, arg, retry_policy=DB_RETRY, summary=summary, start_to_close_timeout=DB_TIMEOUT
        )

    def _open_request(self) -> DetailsRequestState | None:
        if self.case.stage != Stage.AWAITING_DETAILS or not self.case.details:
            return None
        last = self.case.details[-1]
        return None if last.answered_at or last.lapsed else last

    def _result(self, detail: str, *, reference: str | None = None) -> ActionResult:
        return ActionResult(
            receipt_code=self._inp.receipt_code,
            stage=self.case.stage,
            detail=detail,
            reference=reference,
        )

    def _close_open_request(self) -> None:
        request = self._open_request()
        if request is not None:
            request.lapsed = True
            self._meet(f"details_reply_{request.number}")

    def _deadline(self, name: str, due_at: datetime) -> None:
        self.case.deadlines.append(Deadline(name=name, due_at=due_at, opened_at=workflow.now()))

    def _meet(self, name: str, *, missed: bool = False) -> None:
        for deadline in self.case.deadlines:
            if deadline.name == name and deadline.met_at is None and not deadline.superseded:
                if missed:
                    deadline.missed = True
                else:
                    deadline.met_at = workflow.now()
                    if deadline.due_at < deadline.met_at:
                        deadline.missed = True

    # --- claims (workflows.claims): who holds the case ---------------------------------

    def _holder(self) -> str | None:
        """Who holds the case now (a claim past its time holds nothing)."""
        c = self.case
        if c.holder is None or (c.claimed_until is not None and workflow.now() >= c.claimed_until):
            return None
        return c.holder

    def _check_holder(self, actor: str, *, override: bool) -> None:
        """Refuse ``actor``'s action on a case someone else holds, naming them (a
        supervisor's ``override`` aside: the roster check makes sure it is one)."""
        holder = self._holder()
        if holder is not None and holder != actor and not override:
            until = self.case.claimed_until
            when = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
            raise ApplicationError(
                f"the case is held by {holder}{when}: ask them to release it, or a supervisor",
                type="Held",
                non_retryable=True,
            )

    def _overriding(self, actor: str) -> str | None:
        """The holder ``actor`` acts over, if any (the roster check wants a supervisor)."""
        holder = self._holder()
        return holder if holder is not None and holder != actor else None

    async def _claim_follows_stage(self, old: Stage, new: Stage) -> None:
        """Hook: a claim ends when the case passes to another role (workflows.claims)."""

    def _flag(self, flag: str) -> None:
        if flag not in self.case.flags:
            self.case.flags.append(flag)

    def _overdue(self) -> bool:
        """Staff owe the case something whose time has passed (the reporter's replies aside)."""
        return any(
            d.missed
            and d.met_at is None
            and not d.superseded
            and not d.name.startswith(_REPORTER_OWES)
            for d in self.case.deadlines
        )

    async def _record(
        self,
        event: str,
        actor: str,
        detail: dict[str, Any] | None = None,
        *,
        fields: dict[str, Any] | None = None,
        notes: list[CaseNote] | None = None,
    ) -> None:
        """Append to the case's event log (idempotent by event key) and to its timeline.

        ``notes`` is what a person wrote (a reply, a note): kept sealed in the case store
        for ``show --report``, never in the event's ``detail``.
        """
        change = self._change(event, actor, detail, fields=fields, notes=notes)
        if self._one_transaction:
            # Kept for the commit, which wakes the main loop (not each record: an action
            # half done would have the loop commit its first half on its own).
            self._kept[0].append(change)
            return
        self._changes += 1
        await self._in_store(
            CaseStore.record_change, change, f"Recorded: {event.replace('_', ' ')}"
        )

    def _change(
        self,
        event: str,
        actor: str,
        detail: dict[str, Any] | None = None,
        *,
        fields: dict[str, Any] | None = None,
        notes: list[CaseNote] | None = None,
    ) -> CaseChange:
        """The next event of the case: its number taken, its timeline entry appended, the
        change to write (``_record`` keeps or writes it; an activity that records what it
        did, such as ``search-records``, completes and writes it itself)."""
        self.case.events += 1
        now = workflow.now()
        self.case.timeline.append(TimelineEntry(at=now, event=event, actor=actor))
        change = CaseChange(
            workflow_id=self._id,
            event_key=f"{self.case.events:05d}.{event}",
            at=now,
            actor=actor,
            event=event,
            detail=detail or {},
            fields={
                **(fields or {}),
                "overdue": self._overdue(),
                "flags": list(self.case.flags),
            },
            deadlines=[d.model_copy() for d in self.case.deadlines],
            notes=notes or [],
        )
        return change

    async def _set_stage(
        self,
        stage: Stage,
        actor: str,
        summary: str,
        *,
        fields: dict[str, Any] | None = None,
        notes: list[CaseNote] | None = None,
    ) -> None:
        await self._claim_follows_stage(self.case.stage, stage)
        self.case.stage = stage
        workflow.set_current_details(self._details(summary))
        self._upsert_attributes()
        await self._record(
            f"stage:{stage.value}",
            actor,
            {"summary": summary},
            fields={
                "stage": stage.value,
                "priority": self.case.priority.value,
                "enhanced_rights": self.case.enhanced_rights,
                **(fields or {}),
            },
            notes=notes,
        )

    def _details(self, last: str) -> str:
        """The case at a glance, for the Temporal UI's "current details" (no personal data)."""
        c = self.case
        lines = [
            f"**{c.stage.value.replace('_', ' ').capitalize()}**: {last}",
            f"Receipt {self._inp.receipt_code} · {c.category} · {c.priority.value}",
        ]
        refs = [r for r in (c.crime_reference, c.investigation_reference) if r]
        if refs:
            lines.append("References: " + ", ".join(refs))
        if c.team:
            lines.append(f"Team: {c.team}" + (f" · officer {c.officer}" if c.officer else ""))
        for d in c.deadlines:
            if d.met_at is None and not d.superseded:
                state = "OVERDUE since" if d.missed else "due"
                lines.append(f"- {d.name.replace('_', ' ')}: {state} {d.due_at:%Y-%m-%d %H:%M} UTC")
        if c.flags:
            lines.append("Flags: " + ", ".join(c.flags))
        return "\n".join(lines)

    def _upsert_attributes(self) -> None:
        """The search attributes from the case as it is: now, or (PATCH_ONE_TRANSACTION)
        once at the next commit."""
        self._attributes_dirty = True
        if not self._one_transaction:
            self._write_attributes()

    def _write_attributes(self) -> None:
        if not self._attributes_dirty:
            return
        self._attributes_dirty = False
        c = self.case
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CASE_STAGE.value_set(c.stage.value),
            sa.RECEIPT_CODE.value_set(self._inp.receipt_code),
            sa.CRIME_CATEGORY.value_set(c.category),
            sa.PRIORITY.value_set(c.priority.value),
            sa.OVERDUE.value_set(self._overdue()),
            sa.ENHANCED_RIGHTS.value_set(c.enhanced_rights),
            sa.REPORTED_AT.value_set(self._received_at),
        ]
        if c.crime_reference:
            updates.append(sa.CRIME_REFERENCE.value_set(c.crime_reference))
        if c.investigation_reference:
            updates.append(sa.INVESTIGATION_REFERENCE.value_set(c.investigation_reference))
        if c.team:
            updates.append(sa.TEAM.value_set(c.team))
        if c.claims:  # only cases that were ever claimed: older histories replay unchanged
            updates.append(
                sa.ASSIGNEE.value_set(c.holder) if c.holder else sa.ASSIGNEE.value_unset()
            )
        workflow.upsert_search_attributes(updates)
