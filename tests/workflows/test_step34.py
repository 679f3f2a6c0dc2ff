"""Steps 3 and 4 on the time-skipping server with real PostgreSQL, SMTP and a team system."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from domain.case import (
    Acknowledge,
    Allocate,
    CloseCase,
    ImuClose,
    ImuInvestigate,
    RecordCrime,
    RecordStep,
    Stage,
)
from domain.intel import IntelSummary
from starter.intake import submit
from tests.helpers import example, skip_time, until, wait_stage, wait_view
from tests.workflows.conftest import FAST
from worker import build_worker
from workflows.base import CaseBase
from workflows.case import CaseWorkflow
from workflows.investigation import PATCH_SEARCH_RECORDS


async def _case_with_imu(client, task_queue, *, timings=FAST, name="ordinary", **overrides):
    submitted = await submit(
        client, example(name, **overrides), task_queue=task_queue, timings=timings
    )
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await wait_view(handle, lambda v: v.assessment is not None)
    return submitted, handle


async def _investigating(handle):
    opened = await handle.execute_update(
        CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1")
    )
    await handle.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    return opened


async def test_assessment_is_recorded_when_the_case_reaches_the_imu(client, case_worker, db_pool):
    submitted, handle = await _case_with_imu(client, case_worker)
    view = await handle.query(CaseWorkflow.view)
    assert view.stage == Stage.WITH_IMU
    assert view.assessment is not None
    assert view.assessment.solvability.cctv is True
    assert view.assessment.summary
    stored = await db_pool.fetchval(
        "SELECT assessment FROM cases WHERE workflow_id = $1", submitted.workflow_id
    )
    assert stored == view.assessment.model_dump(mode="json")
    # Patch begin-prepares: worked out by record-crime's begin (with the Victim Support
    # referral's due date), recorded by its commit: no local activity of its own.
    history = await handle.fetch_history()
    local = [
        json.loads(m.details["data"].payloads[0].data)["activity_type"]
        for e in history.events
        if (m := e.marker_recorded_event_attributes).marker_name == "core_local_activity"
    ]
    assert local[:4] == ["notify", "commit", "begin", "commit"], local  # then the letters'
    assert not {"assess_report", "working_days_after"} & set(local), local
    referral = next(d for d in view.deadlines if d.name == "victim_support_referral")
    # Two working days from the action's start (its begin, a moment before the deadline opens).
    assert (
        timedelta(days=2, seconds=-10) <= referral.due_at - referral.opened_at <= timedelta(days=6)
    )
    rows = await db_pool.fetch(
        "SELECT event FROM case_events WHERE workflow_id = $1 ORDER BY id", submitted.workflow_id
    )
    events = [r["event"] for r in rows]
    recorded = events.index("crime_recorded")
    assert events[recorded : recorded + 3] == ["crime_recorded", "stage:with_imu", "assessed"]


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        ("insufficient-evidence", 18),
        ("no-witnesses", 18),
        ("witnesses-unwilling", 18),
        ("victim-no-statement", 14),
    ],
)
async def test_imu_closure_reasons(client, case_worker, mail_sink, reason, outcome):
    submitted, handle = await _case_with_imu(client, case_worker)
    result = await handle.execute_update(
        CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason=reason)
    )
    assert result.stage == Stage.CLOSED_BY_IMU
    view = await handle.result()
    assert view.outcome == outcome
    right6 = next(d for d in view.deadlines if d.name == "right6_decision_explained")
    assert right6.met is True
    assert right6.due_at - right6.met_at >= timedelta(days=4)  # 5 working days
    mail = await mail_sink.await_for(
        lambda m: (
            "no further investigation" in m["Subject"] and view.crime_reference in m["Subject"]
        )
    )
    assert f"Home Office outcome {outcome}" in mail.get_content()
    assert "new information" in mail.get_content()


async def test_imu_closure_with_identified_suspect_and_enhanced_rights(client, case_worker):
    suspect = {"named": True, "name": "A Person", "description": None, "vehicle_registration": None}
    reporter = json.loads(example("ordinary").reporter.model_dump_json())
    reporter["under_18"] = True
    submitted, handle = await _case_with_imu(
        client, case_worker, incident__suspect=suspect, reporter=reporter
    )
    await handle.execute_update(
        CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason="victim-no-statement")
    )
    view = await handle.result()
    assert view.outcome == 16 and view.enhanced_rights is True
    right6 = next(d for d in view.deadlines if d.name == "right6_decision_explained")
    assert right6.due_at - right6.met_at <= timedelta(days=4)  # 1 working day (+ a weekend)


@pytest.mark.parametrize("outcome", [1, 3, 8, 14, 18, 20])
async def test_investigation_through_to_outcome(client, case_worker, mail_sink, db_pool, outcome):
    submitted, handle = await _case_with_imu(client, case_worker)
    opened = await _investigating(handle)
    ref = opened.reference
    assert ref and re.match(r"^INV-\d{2}-\d{6}$", ref)
    await mail_sink.await_for(
        lambda m: ref in m["Subject"] and "investigation reference" in m["Subject"]
    )
    view = await wait_view(handle, lambda v: v.intelligence is not None)
    assert view.stage == Stage.INVESTIGATING and view.team == "lpt-cambridge"
    assert view.tasks["intelligence"] is not None
    if outcome == 1:  # patch intel-local: the search is a local activity, no activity events
        history = await handle.fetch_history()
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert "hand_off" in scheduled and "search_intelligence" not in scheduled
        local = [
            json.loads(m.details["data"].payloads[0].data)["activity_type"]
            for e in history.events
            if (m := e.marker_recorded_event_attributes).marker_name == "core_local_activity"
        ]
        # search-records: the search's local activity records its outcome itself
        assert "search_and_record" in local and "search_intelligence" not in local
        # acknowledged-in-commit: the queue entry taken goes with a commit (checked below)
        assert "mark_acknowledged" not in local and "commit" in local
    for step in ("witnesses", "scene", "cctv", "forensics"):
        await handle.execute_update(
            CaseWorkflow.record_step, RecordStep(actor="officer-1", step=step, note=f"{step} done")
        )
    await handle.execute_update(
        CaseWorkflow.close, CloseCase(actor="officer-1", outcome=outcome, note="Thank you.")
    )
    view = await handle.result()
    assert (view.stage, view.outcome) == (Stage.CLOSED, outcome)
    assert all(view.tasks.values())
    mail = await mail_sink.await_for(
        lambda m: "has been closed" in m["Subject"] and view.crime_reference in m["Subject"]
    )
    assert f"Home Office outcome {outcome}" in mail.get_content()
    queued = await db_pool.fetchrow(
        "SELECT team, acknowledged_by FROM team_queue WHERE workflow_id = $1", submitted.workflow_id
    )
    assert dict(queued) == {"team": "lpt-cambridge", "acknowledged_by": "officer-1"}


async def test_close_answers_before_its_letter_and_the_case_waits_for_it(
    client, case_worker, mail_sink, db_pool
):
    """The closing letter follows the recorded decision: with the mail server down,
    ``close`` answers at once and the decision is in the case store, but the case stays
    open until its letter is sent; once the server is back the letter goes, once, and the
    case ends."""
    submitted, handle = await _case_with_imu(client, case_worker)
    await _investigating(handle)
    await wait_view(handle, lambda v: v.intelligence is not None)
    for step in ("witnesses", "scene", "cctv", "forensics"):
        await handle.execute_update(
            CaseWorkflow.record_step, RecordStep(actor="officer-1", step=step, note="done")
        )
    wid = submitted.workflow_id
    mail_sink.stop()
    try:
        result = await handle.execute_update(
            CaseWorkflow.close, CloseCase(actor="officer-1", outcome=1, note="Charged.")
        )
        assert result.stage == Stage.CLOSED
        assert "on its way" in result.detail
        stored = await db_pool.fetchval("SELECT stage FROM cases WHERE workflow_id = $1", wid)
        assert stored == "closed"

        async def tried() -> Any:
            row = await db_pool.fetchrow(
                """SELECT attempts, sent_at FROM notifications
                   WHERE workflow_id = $1 AND purpose = 'case-closed'""",
                wid,
            )
            return row if row is not None and row["attempts"] >= 1 else None

        failed = await until(tried, within=30, what="the closing letter tried")
        assert failed["sent_at"] is None
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        mail_sink.start()
    view = await handle.result()
    assert view.stage == Stage.CLOSED
    sent = await db_pool.fetchrow(
        "SELECT sent_at FROM notifications WHERE workflow_id = $1 AND purpose = 'case-closed'", wid
    )
    assert sent["sent_at"] is not None
    await mail_sink.await_for(
        lambda m: "has been closed" in m["Subject"] and view.crime_reference in m["Subject"]
    )
    closing = [
        m
        for m in mail_sink.messages()
        if "has been closed" in m["Subject"] and view.crime_reference in m["Subject"]
    ]
    assert len(closing) == 1


class TeamSystem:
    """A real HTTP server standing in for a team's case system: fails ``failures`` times."""

    def __init__(self, failures: int, status: int = 503) -> None:
        self.failures = failures
        self.status = status
        self.requests: list[dict] = []
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
        body = json.loads(await reader.readexactly(length))
        self.requests.append(body)
        code = self.status if len(self.requests) <= self.failures else 200
        writer.write(
            f"HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/cases"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def team_worker(client, db_pool, settings, task_queue):
    """A worker whose settings point lpt-cambridge at a TeamSystem given by the test."""

    async def start(url: str) -> AsyncIterator[str]:
        configured = settings.model_copy(update={"team_webhooks": {"lpt-cambridge": url}})
        return build_worker(client, db_pool, configured, task_queue=task_queue)

    return start


async def test_team_system_fails_a_few_times_then_accepts(
    client, team_worker, task_queue, time_env
):
    team = TeamSystem(failures=2)
    async with team as url, await team_worker(url):
        _, handle = await _case_with_imu(client, task_queue)
        await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
        view = await wait_view(
            handle, lambda v: any(e.event == "handed_off" for e in v.timeline), timeout=30
        )
    assert len(team.requests) == 3
    assert "handoff_failed" not in view.flags
    assert team.requests[0]["team"] == "lpt-cambridge"
    assert "reporter" not in json.dumps(team.requests[0])  # no personal data in the hand-off


async def test_team_system_refuses_for_good_case_flagged_and_supervisor_alerted(
    client, team_worker, task_queue, mail_sink, db_pool
):
    team = TeamSystem(failures=1_000, status=422)
    async with team as url, await team_worker(url):
        submitted, handle = await _case_with_imu(client, task_queue)
        await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
        view = await wait_view(handle, lambda v: "handoff_failed" in v.flags)
        assert view.stage == Stage.ALLOCATED and view.team == "lpt-cambridge"
        await mail_sink.await_for(
            lambda m: (
                m["To"] == "duty-supervisor@cambs.police.example"
                and "hand-off to lpt-cambridge failed" in m["Subject"]
            )
        )
        # Not lost: on the team's queue in our own database, and a supervisor can move it.
        assert (
            await db_pool.fetchval(
                "SELECT count(*) FROM team_queue WHERE workflow_id = $1", submitted.workflow_id
            )
            == 1
        )
        moved = await handle.execute_update(
            CaseWorkflow.allocate, Allocate(actor="supervisor-1", team="cid")
        )
        assert moved.stage == Stage.ALLOCATED
        view = await wait_view(
            handle, lambda v: v.team == "cid" and "handoff_failed" not in v.flags
        )


async def test_team_system_down_until_retries_run_out(client, team_worker, task_queue, time_env):
    team = TeamSystem(failures=1_000, status=503)
    async with team as url, await team_worker(url):
        _, handle = await _case_with_imu(client, task_queue)
        await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
        for _ in range(12):
            await skip_time(time_env, timedelta(minutes=15))
        view = await wait_view(handle, lambda v: "handoff_failed" in v.flags, timeout=60)
    assert len(team.requests) == 10  # the bounded schedule
    assert view.stage == Stage.ALLOCATED


async def test_ack_deadline_missed_then_reallocated(client, case_worker, mail_sink, time_env):
    submitted, handle = await _case_with_imu(client, case_worker)
    await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await skip_time(time_env, FAST.ack_deadline + timedelta(minutes=1))
    view = await wait_view(handle, lambda v: v.overdue)
    assert next(d for d in view.deadlines if d.name == "team_acknowledgement").met is False
    await mail_sink.await_for(
        lambda m: "team_acknowledgement" in m["Subject"] and submitted.receipt_code in m["Subject"]
    )
    await handle.execute_update(CaseWorkflow.allocate, Allocate(actor="supervisor-1", team="cid"))
    view = await handle.query(CaseWorkflow.view)
    assert view.team == "cid" and not view.overdue
    pending = [d for d in view.deadlines if d.name == "team_acknowledgement" and d.met is None]
    assert len(pending) == 1
    await handle.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="dc-42")
    )
    view = await handle.query(CaseWorkflow.view)
    assert (view.stage, view.officer) == (Stage.INVESTIGATING, "dc-42")


async def test_hundreds_of_update_cycles_stay_bounded_across_continue_as_new(
    client, case_worker, time_env, db_pool
):
    timings = FAST.model_copy(update={"update_interval": timedelta(hours=1)})
    submitted, handle = await _case_with_imu(client, case_worker, timings=timings)
    await _investigating(handle)
    await handle.execute_update(
        CaseWorkflow.record_step, RecordStep(actor="officer-1", step="scene", note="assessed")
    )
    before = await handle.query(CaseWorkflow.view)
    cycles = 300
    for _ in range(cycles // 2):  # in short steps: each skip waits for the work it sets off
        await skip_time(time_env, timedelta(hours=2))
    await skip_time(time_env, timedelta(minutes=30))
    view = await wait_view(handle, lambda v: v.victim_updates >= cycles, timeout=240)
    assert view.runs >= 2, "expected at least one continue-as-new"
    assert view.crime_reference == before.crime_reference
    assert view.investigation_reference == before.investigation_reference
    assert view.tasks["scene"] == before.tasks["scene"]
    assert view.stage == Stage.INVESTIGATING
    history = await client.get_workflow_handle_for(
        CaseWorkflow.run, submitted.workflow_id
    ).fetch_history()
    assert len(history.events) < 2_500
    sent = await db_pool.fetchval(
        "SELECT count(*) FROM notifications WHERE workflow_id = $1 AND purpose LIKE 'victim-update-%'",
        submitted.workflow_id,
    )
    assert sent == view.victim_updates  # one email per cycle, none twice across runs


def _local_activities(history: Any) -> list[str]:
    return [
        json.loads(m.details["data"].payloads[0].data)["activity_type"]
        for e in history.events
        if (m := e.marker_recorded_event_attributes).marker_name == "core_local_activity"
    ]


async def _searched(client, db_pool, settings, task_queue) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A case to the intelligence search, unsandboxed (so a test may patch the
    workflow's modules); what it then shows, holds in the store and ran. The team's
    system refuses the first hand-off, so the allocation's letters are done before the
    hand-off and the search after it: the local activities run in one order."""
    team = TeamSystem(failures=1)
    async with team as url:
        configured = settings.model_copy(
            update={"workflow_sandbox": False, "team_webhooks": {"lpt-cambridge": url}}
        )
        async with build_worker(client, db_pool, configured, task_queue=task_queue):
            submitted, handle = await _case_with_imu(client, task_queue)
            await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
            view = await wait_view(handle, lambda v: v.intelligence is not None, timeout=30)
            wid = submitted.workflow_id
            await until(
                lambda: db_pool.fetchval(
                    "SELECT intelligence IS NOT NULL FROM cases WHERE workflow_id = $1", wid
                ),
                what="the search's outcome in the store",
            )
            history = await handle.fetch_history()
            await handle.terminate("test done")
    assert len(team.requests) == 2
    events = await db_pool.fetch(
        "SELECT event_key, detail FROM case_events WHERE workflow_id = $1 ORDER BY id", wid
    )
    return {
        "view": view,
        "local": _local_activities(history),
        "events": events,
        "stored": await db_pool.fetchval(
            "SELECT intelligence FROM cases WHERE workflow_id = $1", wid
        ),
        "deadlines": await db_pool.fetch(
            "SELECT name, state FROM case_deadlines WHERE workflow_id = $1 ORDER BY seq", wid
        ),
    }


async def test_the_search_records_its_outcome_as_its_commit_did(
    client, db_pool, settings, task_queue, monkeypatch
):
    """search-records: the search's local activity writes its step:intelligence event
    (and what the case kept before it), so no commit follows it; the case and the store
    end as they did on the path before the patch (the search, then a commit)."""
    new = await _searched(client, db_pool, settings, task_queue)
    asked = CaseBase._patched

    def before_the_patch(self: CaseBase, patch: str) -> bool:
        return patch != PATCH_SEARCH_RECORDS and asked(self, patch)

    monkeypatch.setattr(CaseBase, "_patched", before_the_patch)
    old = await _searched(client, db_pool, settings, f"{task_queue}-old")

    # The search and the commit after it (what the hand-off changed, and the search's
    # outcome), one local activity now.
    # Before it, an action may be decided first or begun then committed, as the timing of
    # its letters lets it (begin-in-commit): compare from the search on.
    searched = old["local"].index("search_intelligence")
    assert old["local"][searched + 1] == "commit"
    assert "search_intelligence" not in new["local"]
    recorded = new["local"].index("search_and_record")
    assert new["local"][recorded + 1 :] == old["local"][searched + 2 :]
    assert [e["event_key"].split(".", 1)[-1] for e in new["events"]][-2:] == [
        "handed_off",
        "step:intelligence",
    ]
    for path in (new, old):
        view = path["view"]
        assert view.intelligence is not None
        assert IntelSummary.model_validate(path["stored"]) == view.intelligence
        (recorded,) = [e for e in path["events"] if e["event_key"].endswith(".step:intelligence")]
        assert recorded["detail"] == {"summary": view.intelligence.summary}
        assert (
            view.tasks["intelligence"]
            == next(t.at for t in view.timeline if t.event == "step:intelligence").isoformat()
        )
    a, b = new["view"], old["view"]
    assert [(t.event, t.actor) for t in a.timeline] == [(t.event, t.actor) for t in b.timeline]
    assert [(d.name, d.met_at is not None, d.missed) for d in a.deadlines] == [
        (d.name, d.met_at is not None, d.missed) for d in b.deadlines
    ]
    assert (a.stage, a.flags, a.overdue, sorted(a.tasks)) == (
        b.stage,
        b.flags,
        b.overdue,
        sorted(b.tasks),
    )
    assert [e["event_key"] for e in new["events"]] == [e["event_key"] for e in old["events"]]
    assert [tuple(r) for r in new["deadlines"]] == [tuple(r) for r in old["deadlines"]]
