"""Retried updates and retried activities record nothing twice (time-skipping server).

A duplicated ``details_reply`` signal is covered in tests/workflows/test_step2.py; here
are the update side and activities that fail *after* their write.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.mail import Mailer
from activities.store import CaseStore
from domain.case import RecordCrime, RequestDetails, Stage
from domain.effects import Begin, Begun, Decide, IssueReference, Notified, Notify
from domain.references import parse_crime_reference
from starter.intake import submit
from tests.durability.ledger import counter, ledger
from tests.helpers import example, until, wait_stage, wait_view
from tests.workflows import conftest as workflow_fixtures
from tests.workflows.conftest import FAST
from worker import build_worker
from workflows.case import CaseWorkflow

# The time-skipping client (which terminates each test's open cases) and its case worker.
client = workflow_fixtures.client
case_worker = workflow_fixtures.case_worker

_PER_CASE = {
    "events": "SELECT count(*) FROM case_events WHERE workflow_id = $1",
    "emails": "SELECT count(*) FROM notifications WHERE workflow_id = $1",
    "references": "SELECT count(*) FROM case_references WHERE workflow_id = $1",
    "authorisations": "SELECT count(*) FROM audit_log WHERE workflow_id = $1",
}


async def _recorded(pool: Any, workflow_id: str) -> dict[str, int]:
    return {name: await pool.fetchval(sql, workflow_id) for name, sql in _PER_CASE.items()}


async def _count_events(pool: Any, workflow_id: str, want: int) -> bool:
    got = await pool.fetchval(
        "SELECT count(*) FROM case_events WHERE workflow_id = $1", workflow_id
    )
    return bool(got == want)


async def _in_review(client, task_queue):  # type: ignore[no-untyped-def]
    submitted = await submit(client, example("ordinary"), task_queue=task_queue, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    return handle


async def test_update_retried_with_its_id_answers_once_and_records_once(
    client, case_worker, db_pool, time_env
):
    handle = await _in_review(client, case_worker)
    year = (await time_env.get_current_time()).year
    before = await counter(db_pool, "crime", year)
    action = RecordCrime(actor="handler-1", category="burglary")

    first = await handle.execute_update(CaseWorkflow.record_crime, action, id="fixed-id")
    # The CRN and referral letters follow the answer, each recorded once it has gone.
    view = await wait_view(
        handle,
        lambda v: (
            v.assessment is not None and sum(e.event == "letter_sent" for e in v.timeline) == 2
        ),
    )
    await until(
        lambda: _count_events(db_pool, handle.id, len(view.timeline)), what="letters recorded"
    )

    async def settled() -> bool:
        # Nothing of the first execution still on its way (a letter in flight would land
        # after the count below and look like a second execution's work).
        return not (await handle.describe()).raw_description.pending_activities

    await until(settled, what="no activity of the case still pending")
    view = await handle.query(CaseWorkflow.view)
    await until(
        lambda: _count_events(db_pool, handle.id, len(view.timeline)), what="events recorded"
    )
    recorded = await _recorded(db_pool, handle.id)
    again = await handle.execute_update(CaseWorkflow.record_crime, action, id="fixed-id")

    assert again == first  # the first execution's answer, not a second execution
    assert await _recorded(db_pool, handle.id) == recorded
    assert await counter(db_pool, "crime", year) == before + 1
    assert parse_crime_reference(first.reference or "").sequence == before + 1

    # The same action under a new id is a new request: refused before it reaches history.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(CaseWorkflow.record_crime, action, id="another-id")
    assert "not allowed while the case is with_imu" in str(refused.value.cause)
    assert await _recorded(db_pool, handle.id) == recorded


class _FailAfterWrite:
    """The real activities, but the first attempt of each fails once its write is done."""

    def __init__(self, store: CaseStore, mailer: Mailer) -> None:
        self._store = store
        self._mailer = mailer
        self.attempts: Counter[str] = Counter()

    def _fail_first(self, key: str) -> None:
        self.attempts[key] += 1
        if activity.info().attempt == 1:
            raise ApplicationError(f"{key}: answer lost after the write", type="LostAnswer")

    @activity.defn(name="issue_reference")
    async def issue_reference(self, request: IssueReference) -> str:
        reference = await self._store.issue_reference(request)
        self._fail_first(f"reference:{request.kind}")
        return reference

    @activity.defn(name="begin")
    async def begin(self, request: Begin) -> Begun:
        # A staff action's start issues its reference (patch one-transaction-actions).
        begun = await self._store.begin(request)
        if request.reference is not None:
            self._fail_first(f"reference:{request.reference.kind}")
        return begun

    @activity.defn(name="decide")
    async def decide(self, request: Decide) -> None:
        # A staff action decided first (patch begin-in-commit): the refusal's answer
        # lost after its audit row was written too.
        try:
            await self._store.decide(request)
        except ApplicationError as refusal:
            self.attempts[f"refused:{request.authorise.action}"] += 1
            if activity.info().attempt == 1:
                raise ApplicationError("refusal lost after the write", type="LostAnswer") from None
            raise refusal
        self._fail_first(f"decided:{request.authorise.action}")

    @activity.defn(name="notify")
    async def notify(self, request: Notify) -> Notified:
        sent = await self._mailer.notify(request)
        self._fail_first(f"email:{request.purpose}")
        return sent

    @activity.defn(name="notify_all")
    async def notify_all(self, requests: list[Notify]) -> list[Notified | None]:
        sent = await self._mailer.notify_all(requests)
        self._fail_first("emails:" + ",".join(r.purpose for r in requests))
        return sent


def _worker_with(client, db_pool, settings, task_queue, flaky: _FailAfterWrite) -> Worker:  # type: ignore[no-untyped-def]
    """build_worker's worker, with issue_reference, begin, decide and the mail activities swapped
    for ``flaky``'s."""
    with pytest.MonkeyPatch.context() as patch:
        # Capture build_worker's arguments: a second real Worker on one task queue and
        # client is refused by the SDK, even one never run.
        patch.setattr("worker.Worker", lambda client, **options: options)
        options: dict[str, Any] = build_worker(client, db_pool, settings, task_queue=task_queue)  # type: ignore[assignment]
    swapped = {
        "issue_reference": flaky.issue_reference,
        "begin": flaky.begin,
        "decide": flaky.decide,
        "notify": flaky.notify,
        "notify_all": flaky.notify_all,
    }
    activities = [a for a in options["activities"] if a.__name__ not in swapped]
    assert len(activities) == len(options["activities"]) - len(swapped)
    return Worker(client, **{**options, "activities": [*activities, *swapped.values()]})


async def test_activities_retried_after_their_write_send_one_email_and_issue_one_crn(
    client, db_pool, settings, task_queue, mail_sink, time_env
):
    flaky = _FailAfterWrite(
        CaseStore(db_pool, force_code=settings.force_code), Mailer(db_pool, settings)
    )
    async with _worker_with(client, db_pool, settings, task_queue, flaky):
        handle = await _in_review(client, task_queue)
        year = (await time_env.get_current_time()).year
        before = await counter(db_pool, "crime", year)
        result = await handle.execute_update(
            CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
        )
        await wait_view(handle, lambda v: v.assessment is not None)
        # The letters follow the answer (retried after their lost answers): the deadlines
        # they meet are met once they have gone.
        await wait_view(
            handle,
            lambda v: all(
                d.met
                for d in v.deadlines
                if d.name in ("crn_or_explanation", "victim_support_referral")
            ),
        )

        history = await handle.fetch_history()

    purposes = {"receipt", "crime-recorded", "victim-support-referral"}
    # Patch letters-local: the receipt went by a local activity whose answer was lost,
    # then by the activity (twice: its first attempt's answer lost too); the action's
    # two letters went in one activity, its first answer lost.
    assert [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ] == ["notify", "notify_all"]
    assert flaky.attempts == {
        "reference:crime": 2,
        "email:receipt": 3,
        "emails:crime-recorded,victim-support-referral": 2,
    }
    assert await counter(db_pool, "crime", year) == before + 1
    book = await ledger(db_pool, mail_sink, [handle.id])
    assert book.twice() == {}
    assert book.references == {(handle.id, "crime"): 1}
    assert book.reference_of[(handle.id, "crime")] == result.reference
    assert book.emails == {(handle.id, p): 1 for p in purposes}
    assert set(book.outbox) == {(handle.id, p) for p in purposes}


async def test_an_action_decided_first_retried_after_its_write_is_audited_once(
    client, db_pool, settings, task_queue, mail_sink
):
    """``CaseStore.decide`` retried after its transaction committed (its answer lost):
    the retry follows the answer first written, by the action's key. A refusal has one
    audit row (not one per attempt); an allowed action one row, its events once."""
    flaky = _FailAfterWrite(
        CaseStore(db_pool, force_code=settings.force_code), Mailer(db_pool, settings)
    )
    async with _worker_with(client, db_pool, settings, task_queue, flaky):
        handle = await _in_review(client, task_queue)
        question = RequestDetails(actor="imu-1", question="Which door was forced?")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(CaseWorkflow.request_details, question)
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == "NotAuthorised"
        allowed = question.model_copy(update={"actor": "handler-1"})
        await handle.execute_update(CaseWorkflow.request_details, allowed)
        await wait_view(handle, lambda v: v.stage == Stage.AWAITING_DETAILS)
        await mail_sink.await_for(
            lambda m: m["X-WHN-Case"] == handle.id and m["X-WHN-Purpose"] == "details-request-1"
        )
        view = await handle.query(CaseWorkflow.view)

    decided = {k: n for k, n in flaky.attempts.items() if not k.startswith("email")}
    assert decided == {"refused:request-details": 2, "decided:request-details": 2}
    rows = await db_pool.fetch(
        """SELECT actor, allowed, action_key FROM audit_log
           WHERE workflow_id = $1 AND action = 'request-details' ORDER BY id""",
        handle.id,
    )
    assert [(r["actor"], r["allowed"]) for r in rows] == [("imu-1", False), ("handler-1", True)]
    assert len({r["action_key"] for r in rows}) == 2
    events = await db_pool.fetch(
        "SELECT event FROM case_events WHERE workflow_id = $1", handle.id
    )
    assert [r["event"] for r in events].count("stage:awaiting_details") == 1
    assert len(events) == len(view.timeline)
    book = await ledger(db_pool, mail_sink, [handle.id])
    assert book.twice() == {}
