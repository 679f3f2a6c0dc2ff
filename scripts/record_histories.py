"""Record a workflow history for every path a case can take, for the replay test.

Runs each path on the time-skipping test server with a real worker, PostgreSQL and SMTP
sink (all started here, in a temporary directory, and stopped at the end), then writes
each case's history as JSON (the format the Temporal CLI and UI export) to
``tests/histories/<path>.json``. ``tests/test_replay.py`` replays every file there
against the current ``CaseWorkflow``, so a change that is not replay-safe fails CI.

Usage::

    python scripts/record_histories.py                 # record the missing ones
    python scripts/record_histories.py --only overdue_review --force
    python scripts/record_histories.py --suffix after-<patch-id>

Existing files are kept unless ``--force``: histories recorded by older workflow code
are what proves a change replay-safe (see docs/versioning.md). ``--suffix`` records a
second generation beside them (``<path>.<suffix>.json``).

Payloads are recorded encrypted (the developer's ``WHN_*`` environment is ignored) with
the committed TEST key ``tests/histories/replay-test-key.txt``, so replaying them runs the
codec's decrypt path; ``tests/test_replay.py`` uses the same key. Histories recorded
before that are plaintext, which the codec passes through on decode. ``--codec-keys``
records with other keys (id:BASE64,...), ``--plaintext`` without any.

Most paths run on the time-skipping server. ``LIVE_PATHS`` run on a dev server started
with a low ``limit.historyCount.suggestContinueAsNew``, so a case continues as new after a
few dozen events exactly as it would after thousands: whether Temporal suggested it is
part of the recorded history (each workflow task's start event), so these histories
replay on the unchanged workflow. A path whose case continued as new is written one file
per run: ``<path>.json`` for the first, ``<path>.run-<n>.json`` for the ones resumed
from carried state.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from domain.actions import Claim, LetterSent, Reassign, Release
from domain.case import (
    AckEmergency,
    Acknowledge,
    Allocate,
    CaseView,
    CloseCase,
    DetailsReply,
    ImuClose,
    ImuInvestigate,
    NotACrime,
    RecordCrime,
    RecordStep,
    Redirect,
    Reopen,
    RequestDetails,
    Stage,
    Timings,
)
from domain.report import Report
from domain.victims import RecordSuspectEvent, SetUpdates, SuspectEvent
from starter.intake import submit
from starter.reopen import reopen
from whn import db
from whn.devstack.mailsink import MailSink
from whn.devstack.postgres import EmbeddedPostgres
from whn.devstack.temporal_server import free_port, temporal_cli
from whn.settings import Settings
from whn.temporal import data_converter, register_search_attributes, search_attribute_cli_args
from worker import build_worker
from workflows.case import CaseWorkflow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
OUT = ROOT / "tests" / "histories"
TASK_QUEUE = "record-histories"
TIMINGS = Timings()  # the defaults: days and hours, skipped over by the test server
TEST_KEY = OUT / "replay-test-key.txt"
# The team whose system is down while histories are recorded (its hand-offs finally fail).
DOWN_TEAM = "economic-crime"
# Live paths: the dev server suggests continue-as-new past this many events.
SUGGEST_CONTINUE_AS_NEW = 150
LIVE_TIMINGS = Timings(update_interval=timedelta(seconds=2))

Handle = WorkflowHandle[Any, CaseView]
log = logging.getLogger("record_histories")


class Recorder:
    """Starts cases on the time-skipping server and drives them like staff would."""

    def __init__(self, env: WorkflowEnvironment, client: Client, dsn: str | None = None) -> None:
        self.env = env
        self.client = client
        self.dsn = dsn

    async def reopen(self, handle: Handle, actor: str) -> Handle:
        """``whn-admin reopen`` on the closed case: its new run's handle."""
        await handle.result()
        await reopen(
            self.client,
            handle.id.removeprefix("case-"),
            Reopen(actor=actor, reason="New information."),
            database_url=self.dsn,
        )
        return self.client.get_workflow_handle_for(CaseWorkflow.run, handle.id)

    async def start(
        self, path: str, example: str, timings: Timings = TIMINGS, **changes: Any
    ) -> Handle:
        report = Report.model_validate_json((EXAMPLES / f"{example}.json").read_text())
        report = report.model_copy(update={"submission_id": f"history-{path}", **changes})
        submitted = await submit(self.client, report, task_queue=TASK_QUEUE, timings=timings)
        if submitted.duplicate:
            raise SystemExit(f"{path}: case already started on this server")
        return self.client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)

    async def at(self, handle: Handle, stage: Stage, within: float = 30) -> CaseView:
        return await self.until(handle, lambda v: v.stage == stage, within=within)

    async def until(
        self, handle: Handle, ok: Callable[[CaseView], bool], within: float = 30
    ) -> CaseView:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            view = await handle.query(CaseWorkflow.view)
            if ok(view):
                return view
            if loop.time() > deadline:
                raise SystemExit(f"{handle.id}: stuck at {view.stage.value}")
            await asyncio.sleep(0.1)

    async def skip(self, duration: timedelta) -> None:
        """Move the server's clock, letting the timers it passes run their work."""
        request = SleepRequest()
        request.duration.FromTimedelta(duration)
        await self.env.client.test_service.unlock_time_skipping_with_sleep(
            request, timeout=timedelta(minutes=3)
        )


# --- the paths ---------------------------------------------------------------------------


async def investigated(r: Recorder, name: str = "investigated") -> Handle:
    """Ordinary report -> CRN -> investigation -> acknowledged -> a step -> closed."""
    h = await r.start(name, "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await _investigate(r, h)
    await h.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    await r.until(h, lambda v: v.intelligence is not None)
    await h.execute_update(
        CaseWorkflow.record_step,
        RecordStep(actor="officer-1", step="cctv", note="Footage from the corner shop."),
    )
    await h.execute_update(
        CaseWorkflow.close,
        CloseCase(actor="officer-1", outcome=18, note="No suspect identified."),
    )
    return h


async def details_reply(r: Recorder) -> Handle:
    """Details requested, the reporter replies, then the crime is recorded and closed."""
    h = await r.start("details_reply", "ordinary")
    await _asked_and_answered(r, h)
    await h.execute_update(
        CaseWorkflow.record_crime,
        RecordCrime(actor="handler-1", category="burglary", no_investigation=True, outcome=18),
    )
    return h


async def details_expiry(r: Recorder) -> Handle:
    """Details requested and never sent: reminder, lapse, back to review flagged."""
    h = await r.start("details_expiry", "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.request_details,
        RequestDetails(actor="handler-1", question="Which shed door was forced?"),
    )
    await r.skip(TIMINGS.details_expiry + timedelta(minutes=1))
    await r.until(h, lambda v: "details_not_received" in v.flags)
    await h.execute_update(
        CaseWorkflow.not_a_crime,
        NotACrime(actor="handler-1", advice="We could not proceed without the details."),
    )
    return h


async def not_a_crime(r: Recorder) -> Handle:
    h = await r.start("not_a_crime", "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.not_a_crime,
        NotACrime(
            actor="handler-1", advice="This is a civil matter.", agencies=["Citizens Advice"]
        ),
    )
    return h


async def redirected_fraud(r: Recorder) -> Handle:
    """Screening sends a fraud report to Action Fraud by itself."""
    h = await r.start("redirected_fraud", "fraud")
    await r.at(h, Stage.REDIRECTED)
    return h


async def redirected_by_handler(r: Recorder) -> Handle:
    h = await r.start("redirected_by_handler", "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.redirect,
        Redirect(actor="handler-1", agency="British Transport Police", reason="On the railway."),
    )
    return h


async def emergency(r: Recorder) -> Handle:
    """Grade 1: the control room misses the first deadline (re-alert), then confirms."""
    h = await r.start("emergency", "emergency")
    await r.at(h, Stage.EMERGENCY)
    await r.skip(TIMINGS.emergency_ack_deadline + timedelta(seconds=30))
    await r.until(h, lambda v: any(e.event == "escalated" for e in v.timeline))
    await h.execute_update(CaseWorkflow.ack_emergency, AckEmergency(actor="control-1"))
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="violent-crime")
    )
    await r.until(h, lambda v: v.assessment is not None)
    return h


async def imu_close(r: Recorder) -> Handle:
    h = await r.start("imu_close", "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await r.until(h, lambda v: v.assessment is not None)
    await h.execute_update(
        CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason="insufficient-evidence")
    )
    return h


async def no_investigation(r: Recorder) -> Handle:
    h = await r.start("no_investigation", "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.record_crime,
        RecordCrime(actor="handler-1", category="other-theft", no_investigation=True, outcome=18),
    )
    return h


async def overdue_review(r: Recorder) -> Handle:
    """Nobody decides in time: the review deadline passes, the supervisor is told."""
    h = await r.start("overdue_review", "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await r.skip(TIMINGS.review_deadline + timedelta(hours=1))
    await r.until(h, lambda v: v.overdue)
    await h.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="supervisor-1", category="burglary")
    )
    await r.until(h, lambda v: v.assessment is not None)
    return h


async def reallocated(r: Recorder) -> Handle:
    """The team misses its acknowledgement (escalated); a supervisor allocates the case to
    another team, whose officer acknowledges; a victim update falls due; closed."""
    h = await _handed_off(r, "reallocated")
    await r.skip(TIMINGS.ack_deadline + timedelta(hours=1))
    await r.until(h, lambda v: _missed(v, "team_acknowledgement"))
    await h.execute_update(CaseWorkflow.allocate, Allocate(actor="supervisor-1", team="cid"))
    await r.until(h, lambda v: _count(v, "handed_off") == 2)
    await h.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    await r.skip(TIMINGS.update_interval + timedelta(hours=1))
    await r.until(h, lambda v: v.victim_updates == 1)
    await h.execute_update(
        CaseWorkflow.close,
        CloseCase(actor="officer-1", outcome=14, note="The victim does not support action."),
    )
    return h


async def reopened(r: Recorder) -> Handle:
    """Not a crime, reopened on new information (the new run): recorded, no investigation."""
    h = await r.start("reopened", "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.not_a_crime, NotACrime(actor="handler-1", advice="A civil matter.")
    )
    h = await r.reopen(h, "handler-1")
    await h.execute_update(
        CaseWorkflow.record_crime,
        RecordCrime(actor="handler-1", category="burglary", no_investigation=True, outcome=18),
    )
    return h


async def reopened_investigation(r: Recorder) -> Handle:
    """A closed investigation reopened (the new run): investigated again, closed again."""
    h = await investigated(r, "reopened_investigation")
    h = await r.reopen(h, "supervisor-1")
    await h.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await h.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    await h.execute_update(
        CaseWorkflow.close, CloseCase(actor="officer-1", outcome=1, note="Charged.")
    )
    return h


async def handoff_failed(r: Recorder) -> Handle:
    """Allocated to a team whose system stays down: the hand-off is retried until it
    finally fails, the case is flagged and the supervisor told; it stays allocated."""
    h = await _handed_off(r, "handoff_failed")
    await h.execute_update(CaseWorkflow.allocate, Allocate(actor="supervisor-1", team=DOWN_TEAM))
    await r.skip(timedelta(hours=2))  # past every retry of HANDOFF_RETRY
    await r.until(h, lambda v: "handoff_failed" in v.flags, within=120)
    return h


async def continued_as_new(r: Recorder) -> Handle:
    """(Live.) A details request and reply, a crime recorded and investigated, then victim
    updates every two seconds until the case continues as new; the run resumed from the
    carried state sends the next update and is closed."""
    h = await r.start("continued_as_new", "ordinary", LIVE_TIMINGS)
    await _asked_and_answered(r, h)
    await _investigate(r, h)
    await h.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    resumed = await r.until(h, lambda v: v.runs >= 2, within=120)
    await r.until(h, lambda v: v.victim_updates > resumed.victim_updates, within=30)
    await h.execute_update(
        CaseWorkflow.close,
        CloseCase(actor="officer-1", outcome=18, note="No suspect identified."),
    )
    return h


async def _asked_and_answered(r: Recorder, h: Handle) -> None:
    """A handler asks the reporter a question; the reply brings the case back to review."""
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.request_details,
        RequestDetails(actor="handler-1", question="Which shed door was forced?"),
    )
    await h.signal(CaseWorkflow.details_reply, DetailsReply(text="The back door."))
    await r.at(h, Stage.AWAITING_REVIEW)


async def _investigate(r: Recorder, h: Handle) -> None:
    """A burglary recorded, assessed and sent for investigation by the IMU."""
    await h.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await r.until(h, lambda v: v.assessment is not None)
    await h.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))


async def _handed_off(r: Recorder, path: str) -> Handle:
    """An ordinary report recorded, investigated and handed off to its routed team."""
    h = await r.start(path, "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await _investigate(r, h)
    await r.until(h, lambda v: _count(v, "handed_off") == 1 and v.intelligence is not None)
    return h


async def claimed(r: Recorder) -> Handle:
    """Claims: a handler's claim lapses; claimed again, a supervisor reassigns it to
    themselves and records the crime (the claim ends with the stage); the IMU claims,
    releases and closes."""
    h = await r.start("claimed", "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(CaseWorkflow.claim, Claim(actor="handler-1"))
    await r.skip(TIMINGS.claim_timeout + timedelta(minutes=1))
    await r.until(h, lambda v: _count(v, "claim_lapsed") == 1)
    await h.execute_update(CaseWorkflow.claim, Claim(actor="handler-1"))
    await h.execute_update(CaseWorkflow.reassign, Reassign(actor="supervisor-1", to="supervisor-1"))
    await h.execute_update(
        CaseWorkflow.record_crime,
        RecordCrime(actor="supervisor-1", category="burglary", override_claim=True),
    )
    await r.until(h, lambda v: v.assessment is not None)
    await h.execute_update(CaseWorkflow.claim, Claim(actor="imu-1"))
    await h.execute_update(CaseWorkflow.release, Release(actor="imu-1"))
    await h.execute_update(
        CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason="insufficient-evidence")
    )
    return h


def _count(view: CaseView, event: str) -> int:
    return sum(1 for e in view.timeline if e.event == event)


def _missed(view: CaseView, deadline: str) -> bool:
    return any(d.name == deadline and d.missed for d in view.deadlines)


async def suspect_events(r: Recorder) -> Handle:
    """Investigating: updates agreed weekly, one sent, every Right 6 event, a VPS offer."""
    h = await r.start("suspect_events", "ordinary")
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await h.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await h.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    await h.execute_update(
        CaseWorkflow.set_updates, SetUpdates(actor="officer-1", every=timedelta(days=7))
    )
    await r.skip(timedelta(days=7, minutes=5))
    await r.until(h, lambda v: v.victim_updates == 1)
    for event in SuspectEvent:
        await h.execute_update(
            CaseWorkflow.suspect_event, RecordSuspectEvent(actor="officer-1", event=event)
        )
    await h.execute_update(
        CaseWorkflow.record_step, RecordStep(actor="officer-1", step="vps", note="In person.")
    )
    await h.execute_update(
        CaseWorkflow.close, CloseCase(actor="officer-1", outcome=1, note="Charged.")
    )
    return h


async def no_email(r: Recorder) -> Handle:
    """A phone report, no email: the call handler gave the receipt code on the call; the
    crime is recorded and closed, its CRN letter owed until a handler posts it."""
    h = await r.start("no_email", "phone")
    await r.at(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.record_crime,
        RecordCrime(actor="handler-1", category="burglary", no_investigation=True, outcome=18),
    )
    await r.until(h, lambda v: any(o.purpose == "crime-recorded" for o in v.owed_letters))
    await h.execute_update(CaseWorkflow.letter_sent, LetterSent(actor="handler-1", how="post"))
    return h


async def no_email_receipt_owed(r: Recorder) -> Handle:
    """A phone report, no email, the receipt not given on the call: owed, missed after its
    grace, then read out on the phone (met late); not a crime, the advice posted."""
    h = await r.start("no_email_receipt_owed", "phone", receipt_given_by_staff=False)
    await r.at(h, Stage.AWAITING_REVIEW)
    await r.skip(timedelta(minutes=10))
    await r.until(h, lambda v: _missed(v, "receipt"))
    await h.execute_update(
        CaseWorkflow.letter_sent, LetterSent(actor="handler-1", how="phone", letter="receipt")
    )
    await h.execute_update(
        CaseWorkflow.not_a_crime, NotACrime(actor="handler-1", advice="A civil matter.")
    )
    await r.until(h, lambda v: any(o.purpose == "not-a-crime" for o in v.owed_letters))
    await h.execute_update(
        CaseWorkflow.letter_sent, LetterSent(actor="handler-1", how="in-person")
    )
    return h


PATHS: dict[str, Callable[[Recorder], Awaitable[Handle]]] = {
    f.__name__: f
    for f in (
        investigated,
        details_reply,
        details_expiry,
        not_a_crime,
        redirected_fraud,
        redirected_by_handler,
        emergency,
        imu_close,
        no_investigation,
        overdue_review,
        reallocated,
        handoff_failed,
        continued_as_new,
        reopened,
        reopened_investigation,
        suspect_events,
        claimed,
        no_email,
        no_email_receipt_owed,
    )
}
LIVE_PATHS = {"continued_as_new"}


async def record(
    names: list[str], *, suffix: str | None, codec_keys: str | None, plaintext: bool
) -> list[Path]:
    with tempfile.TemporaryDirectory(prefix="whn-histories-") as tmp:
        work = Path(tmp)
        postgres = EmbeddedPostgres(work / "pg", free_port(), fast=True)
        sink = MailSink(work / "mail", port=free_port())
        await postgres.start()
        sink.start()
        try:
            dsn = await db.ensure_database(postgres.dsn(), "whn")
            await db.migrate(dsn)
            await db.seed_demo_roster(dsn)
            settings = Settings(
                _env_prefix="WHN_RECORD_HISTORIES_",  # nothing from the developer's WHN_*
                database_url=dsn,
                smtp_host=sink.host,
                smtp_port=sink.port,
                data_dir=work,
                codec_keys=codec_keys,
                codec_key_file=None if plaintext or codec_keys else TEST_KEY,
                # Nothing listens there: every hand-off to this team finally fails.
                team_webhooks={DOWN_TEAM: f"http://127.0.0.1:{free_port()}/cases"},
                codec_required=not plaintext,  # plaintext only when asked for
            )
            converter = data_converter(settings)
            written: list[Path] = []
            skipped = [n for n in names if n not in LIVE_PATHS]
            live = [n for n in names if n in LIVE_PATHS]
            if skipped:
                env = await WorkflowEnvironment.start_time_skipping(
                    test_server_existing_path=str(
                        Path(sys.executable).parent / "temporal-test-server"
                    ),
                    data_converter=converter,
                )
                try:
                    await register_search_attributes(env.client, "default")
                    written += await _record_on(env, settings, dsn, skipped, suffix)
                finally:
                    await env.shutdown()
            if live:
                env = await WorkflowEnvironment.start_local(
                    data_converter=converter,
                    dev_server_existing_path=str(temporal_cli()),
                    dev_server_extra_args=[
                        *search_attribute_cli_args(),
                        "--dynamic-config-value",
                        f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW}",
                    ],
                )
                try:
                    written += await _record_on(env, settings, dsn, live, suffix)
                finally:
                    await env.shutdown()
            return written
        finally:
            sink.stop()
            await postgres.stop()


async def _settled(handle: WorkflowHandle[Any, Any]) -> None:
    """Until the case has closed, or has nothing in flight (staff actions answer before
    their letters are sent, so a path's last answer can come before its last letter)."""
    quiet = 0
    for _ in range(600):
        desc = await handle.describe()
        raw = desc.raw_description
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return
        busy = bool(raw.pending_activities) or raw.HasField("pending_workflow_task")
        quiet = 0 if busy else quiet + 1
        if quiet >= 3:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{handle.id} still busy after 30 s")


async def _record_on(
    env: WorkflowEnvironment, settings: Settings, dsn: str, names: list[str], suffix: str | None
) -> list[Path]:
    pool = await db.create_pool(dsn)
    written = []
    try:
        async with build_worker(env.client, pool, settings, task_queue=TASK_QUEUE):
            recorder = Recorder(env, env.client, dsn)
            for name in names:
                handle = await PATHS[name](recorder)
                await _settled(handle)
                runs = await _runs(env.client, handle.id)
                for n, history in enumerate(runs, start=1):
                    stem = name if n == 1 else f"{name}.run-{n}"
                    path = OUT / (f"{stem}.{suffix}.json" if suffix else f"{stem}.json")
                    path.write_text(history.to_json() + "\n")
                    log.info(
                        "%s: %d events -> %s", stem, len(history.events), path.relative_to(ROOT)
                    )
                    written.append(path)
    finally:
        await pool.close()
    return written


async def _runs(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a case, first to last: back from the latest, through the run each
    one continued."""
    histories = [await client.get_workflow_handle(workflow_id).fetch_history()]
    while True:
        started = histories[0].events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return histories
        previous = client.get_workflow_handle(
            workflow_id, run_id=started.continued_execution_run_id
        )
        histories.insert(0, await previous.fetch_history())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(PATHS), help="just these paths")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--suffix", help="write <path>.<suffix>.json beside the existing ones")
    parser.add_argument("--codec-keys", help="record encrypted with these keys (id:BASE64,...)")
    parser.add_argument("--plaintext", action="store_true", help="record without encryption")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("whn", "temporalio", "mail", "aiosmtpd"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    OUT.mkdir(parents=True, exist_ok=True)
    names = []
    for name in args.only or list(PATHS):
        target = OUT / (f"{name}.{args.suffix}.json" if args.suffix else f"{name}.json")
        if target.exists() and not args.force:
            log.info("%s: kept (exists; --force to re-record)", target.relative_to(ROOT))
        else:
            names.append(name)
    if names:
        asyncio.run(
            record(names, suffix=args.suffix, codec_keys=args.codec_keys, plaintext=args.plaintext)
        )


if __name__ == "__main__":
    main()
