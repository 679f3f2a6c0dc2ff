"""Soak: many cases through the common paths while workers and servers fail underneath.

``make soak`` (``python -m bench.soak``) starts a stack of its own in a temporary
directory: PostgreSQL with fsync on, the Temporal dev server on a SQLite file (WAL), the
SMTP sink and ``--workers`` worker processes, all with payload encryption on. It then

1. submits ``--cases`` reports concurrently, resubmitting ``--resubmit`` of them with
   the same ``submission_id`` (some at once, some a little later);
2. drives each case down one of the common paths, as staff and reporters would:
   ``record`` (record-crime: with_imu), ``details`` (request-details then the
   reporter's reply: awaiting_review), ``not_a_crime`` (closed as not_a_crime) and
   ``investigate`` (record-crime, imu-investigate, acknowledge, close: closed),
   ``reopen`` (not-a-crime, then ``whn-admin reopen`` and record-crime in the new run:
   with_imu) and ``suspect`` (investigated, updates agreed, Right 6 events arrested and
   charged, closed), with timings shrunk to seconds so deadlines, reminders and
   escalations fire meanwhile;
3. injects faults in rotation until the driving is done and each kind has happened
   at least once: a worker SIGKILLed (and a new one started), PostgreSQL stopped for
   ``--outage`` seconds, the SMTP sink stopped as long, the Temporal server restarted;
4. waits for quiescence (every case at its path's final stage, the outbox empty, the
   sink still) and checks the case store, the sink and Temporal against each other.

Callers behave as a real intake system and admin tool should: a submission or staff
action that fails because a server is away is retried as it is, with the same
submission id and the same update id.

It prints one line, and exits 1 unless every count after ``faults`` is 0::

    soak: submissions=1100 cases=1000 faults=9 lost=0 duplicated_cases=0 duplicated_emails=0 duplicated_references=0 (612 s)

``lost``: submissions whose case is missing from Temporal or PostgreSQL, or is not at
its path's final stage in both. ``duplicated_cases``: cases beyond one per submission
id, in either, or a resubmission answered with another receipt code.
``duplicated_emails``: (case, purpose) pairs (``X-WHN-Case``, ``X-WHN-Purpose``; one
Message-ID each) found more than once in the sink. ``duplicated_references``:
references issued twice to a case or to two cases, or differing between Temporal and
PostgreSQL. Other problems (a letter its path must have sent missing from the sink,
``LETTERS``; a letter stuck in the outbox; a gap in a reference counter) are listed on
stderr and also fail the run.

One file on purpose: it is a script to read top to bottom, not a library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError

from domain.case import (
    Acknowledge,
    CloseCase,
    DetailsReply,
    ImuInvestigate,
    NotACrime,
    RecordCrime,
    Reopen,
    RequestDetails,
    Stage,
    Timings,
)
from domain.report import Report
from domain.victims import RecordSuspectEvent, SetUpdates, SuspectEvent
from starter.errors import RejectedError, UnavailableError
from starter.intake import submit
from starter.reopen import reopen
from whn import attributes as sa
from whn import db
from whn.codec import generate_key
from whn.devstack import _process
from whn.devstack.mailsink import MailSink
from whn.devstack.postgres import EmbeddedPostgres
from whn.devstack.temporal_server import TemporalDevServer, free_port
from whn.settings import Settings
from whn.temporal import data_converter
from workflows.case import CaseWorkflow

log = logging.getLogger("soak")
ROOT = Path(__file__).resolve().parent.parent
TASK_QUEUE = "soak"
T = TypeVar("T")

# Deadlines in seconds rather than days: timers fire while the faults happen.
TIMINGS = Timings(
    review_deadline=timedelta(minutes=2),
    crn_deadline=timedelta(minutes=4),
    details_reminder=timedelta(seconds=20),
    details_expiry=timedelta(minutes=2),
    emergency_ack_deadline=timedelta(minutes=1),
    ack_deadline=timedelta(minutes=1),
    update_interval=timedelta(minutes=1),
)
FINAL = {
    "record": Stage.WITH_IMU,
    "details": Stage.AWAITING_REVIEW,
    "not_a_crime": Stage.NOT_A_CRIME,
    "investigate": Stage.CLOSED,
    "reopen": Stage.WITH_IMU,
    "suspect": Stage.CLOSED,
}
# Runs each path leaves in Temporal: a reopening is a second run under the same id.
RUNS = {"reopen": 2}
# The letters each path must have sent by the end (staff actions answer before their
# letters go, so a stage alone does not say a case's letters are out).
LETTERS = {
    "record": {"receipt", "crime-recorded"},
    "details": {"receipt", "details-request-1", "details-received-1"},
    "not_a_crime": {"receipt", "not-a-crime"},
    "investigate": {"receipt", "crime-recorded", "investigation-opened", "case-closed"},
    # A reopened case's letters carry the reopening's number (the outbox sends once per
    # case and purpose).
    "reopen": {"receipt", "not-a-crime", "reopened-r1", "crime-recorded-r1"},
    "suspect": {
        "receipt",
        "crime-recorded",
        "investigation-opened",
        "updates-agreed-1",
        "suspect-arrested-1",
        "suspect-charged-2",
        "case-closed",
    },
}
SHARES = (
    ("record", 0.6),
    ("details", 0.1),
    ("not_a_crime", 0.1),
    ("investigate", 0.1),
    ("reopen", 0.05),
    ("suspect", 0.05),
)
# A case that makes no progress for this long is reported (as lost) rather than waited for.
STUCK_AFTER = 300.0


@dataclass
class Case:
    """One submission id, the path it is driven down, and what the calls answered."""

    report: Report
    path: str
    resubmit: bool
    workflow_id: str = ""
    receipt_codes: set[str] = field(default_factory=set)
    submissions: int = 0
    problem: str | None = None


# --- the stack ---------------------------------------------------------------------------


class Stack:
    """PostgreSQL, Temporal, the sink and worker processes, in one temporary directory."""

    def __init__(self, workers: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="whn-soak-"))
        self.postgres = EmbeddedPostgres(self.dir / "pg", free_port(), fast=False)
        self.temporal = TemporalDevServer(
            self.dir / "temporal.db", free_port(), None, log_file=self.dir / "temporal.log"
        )
        self.sink = MailSink(self.dir / "mail", port=free_port())
        self.codec_keys = f"soak-1:{generate_key()}"
        self.n_workers = workers
        self.workers: list[subprocess.Popen[bytes]] = []
        self.dsn = ""
        self._started = 0

    async def start(self) -> None:
        await self.postgres.start()
        self.dsn = await db.ensure_database(self.postgres.dsn(), "whn")
        await db.migrate(self.dsn)
        await db.seed_demo_roster(self.dsn)
        self.sink.start()
        await self.temporal.start()
        for _ in range(self.n_workers):
            await self.start_worker()

    def settings(self) -> Settings:
        return Settings(
            _env_prefix="WHN_SOAK_IGNORED_",
            temporal_address=self.temporal.address,
            database_url=self.dsn,
            codec_keys=self.codec_keys,
        )

    async def start_worker(self) -> None:
        self._started += 1
        log_path = self.dir / f"worker-{self._started}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_")}
        env |= {
            "PYTHONUNBUFFERED": "1",
            "WHN_TEMPORAL_ADDRESS": self.temporal.address,
            "WHN_DATABASE_URL": self.dsn,
            "WHN_SMTP_HOST": self.sink.host,
            "WHN_SMTP_PORT": str(self.sink.port),
            "WHN_TASK_QUEUE": TASK_QUEUE,
            "WHN_DATA_DIR": str(self.dir),
            "WHN_CODEC_KEYS": self.codec_keys,
        }
        with log_path.open("ab") as out:
            proc = _process.spawn([sys.executable, "-m", "worker"], output=out, env=env, cwd=ROOT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while "worker polling task queue" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or loop.time() > deadline:
                raise RuntimeError(f"worker did not start:\n{_process.tail(log_path)}")
            await asyncio.sleep(0.1)
        self.workers.append(proc)

    # The faults, each undone before it returns.

    async def kill_worker(self, outage: float) -> str:
        victim = self.workers.pop(0)
        victim.send_signal(signal.SIGKILL)
        await _process.wait_exit(victim, 10)
        await self.start_worker()
        return f"worker pid {victim.pid} SIGKILLed, another started"

    async def stop_postgres(self, outage: float) -> str:
        await self.postgres.stop()
        await asyncio.sleep(outage)
        await self.postgres.start()
        return f"PostgreSQL stopped for {outage:.0f} s"

    async def stop_smtp(self, outage: float) -> str:
        self.sink.stop()
        await asyncio.sleep(outage)
        self.sink.start()
        return f"SMTP stopped for {outage:.0f} s"

    async def restart_temporal(self, outage: float) -> str:
        await self.temporal.stop()
        await asyncio.sleep(min(outage, 3))
        await self.temporal.start()
        return "Temporal restarted"

    async def stop(self, *, keep: bool) -> None:
        for proc in self.workers:
            await _process.terminate(proc, name="worker", grace=25)
        self.sink.stop()
        for step in (self.temporal.stop, self.postgres.stop):
            try:
                await step()
            except Exception:
                log.exception("could not stop a server")
        if keep:
            print(f"soak: kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- callers that retry as they should ------------------------------------------------------


async def retrying(call: Callable[[], Awaitable[T]], *, within: float = STUCK_AFTER) -> T:
    """Try again, with the same request, while a server is away."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = 0.2
    while True:
        try:
            return await call()
        except (RPCError, RPCTimeoutOrCancelledError, UnavailableError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 3)


class Board:
    """Every case's stage from the case store, read for all cases at once."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.stages: dict[str, str] = {}
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Board:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    async def _poll(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
                try:
                    while True:
                        rows = await conn.fetch("SELECT workflow_id, stage FROM cases")
                        self.stages = {r["workflow_id"]: r["stage"] for r in rows}
                        async with self._changed:
                            self._changed.notify_all()
                        await asyncio.sleep(0.5)
                finally:
                    await conn.close(timeout=2)
            except Exception:  # PostgreSQL is away: the last stages stand
                await asyncio.sleep(1)

    async def at(self, workflow_id: str, stage: Stage) -> None:
        await self.until(lambda: self.stages.get(workflow_id) == stage.value)

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(predicate)


class Driver:
    """Submits the cases and acts on them like intake, staff and reporters."""

    def __init__(self, client: Client, board: Board, rng: random.Random, dsn: str) -> None:
        self.dsn = dsn
        self.client = client
        self.board = board
        self.rng = rng
        self.submit_slots = asyncio.Semaphore(32)
        self.action_slots = asyncio.Semaphore(64)
        self.refused = 0  # actions refused for the stage and asked again

    async def submit_once(self, case: Case) -> None:
        async with self.submit_slots:
            done = await retrying(
                lambda: submit(self.client, case.report, task_queue=TASK_QUEUE, timings=TIMINGS)
            )
        case.submissions += 1
        case.receipt_codes.add(done.receipt_code)
        case.workflow_id = done.workflow_id

    async def run(self, case: Case) -> None:
        try:
            if case.resubmit and self.rng.random() < 0.5:
                await asyncio.gather(self.submit_once(case), self.submit_once(case))
            else:
                await self.submit_once(case)
                if case.resubmit:
                    await asyncio.sleep(self.rng.uniform(0, 5))
                    await self.submit_once(case)
            await self.drive(case)
        except Exception as err:  # counted as lost below if the case did not get there
            case.problem = f"{type(err).__name__}: {err}"

    async def act(self, case: Case, update: Any, action: Any, name: str) -> Any:
        """One staff action: retried with its update id while Temporal is away, and
        asked again (a new request) while the case is not yet at the stage for it."""
        handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(case.workflow_id)
        for attempt in range(1, 31):
            update_id = f"{name}-{case.workflow_id}-{attempt}"
            try:
                async with self.action_slots:
                    return await retrying(
                        partial(handle.execute_update, update, action, id=update_id)
                    )
            except WorkflowUpdateFailedError as err:
                # The case store can be ahead of the workflow: a worker killed after its
                # local activities wrote the stage, before Temporal recorded the task.
                # The next worker re-runs them; until then the stage check refuses,
                # exactly as it would refuse a call handler.
                if getattr(err.cause, "type", None) != "WrongStage":
                    raise
                self.refused += 1
                await asyncio.sleep(2)
        raise RuntimeError(f"{name} refused 30 times: the case never reached its stage")

    async def reopen(self, case: Case) -> None:
        """``whn-admin reopen`` once the closed run has finished, asked again while a
        server is away; a refusal naming the stage it reopens to means an earlier try
        got through (its answer was lost to the fault)."""
        code = case.workflow_id.removeprefix("case-")
        action = Reopen(actor="handler-1", reason="New information.")
        # A closed run sends its letters before it finishes; one held by a killed worker
        # waits out its 3-minute send timeout first.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STUCK_AFTER
        while loop.time() < deadline:
            try:
                async with self.action_slots:
                    await retrying(lambda: reopen(self.client, code, action, database_url=self.dsn))
                return
            except RejectedError as err:
                if "while the case is awaiting_review" in str(err):
                    return
                if "closing" not in str(err):
                    raise
                self.refused += 1
                await asyncio.sleep(2)
        raise RuntimeError(f"reopen refused for {STUCK_AFTER:.0f} s: the closed run never finished")

    async def drive(self, case: Case) -> None:
        await asyncio.wait_for(self.board.at(case.workflow_id, Stage.AWAITING_REVIEW), STUCK_AFTER)
        if case.path == "reopen":
            await self.act(
                case,
                CaseWorkflow.not_a_crime,
                NotACrime(actor="handler-1", advice="A civil matter."),
                "not-a-crime",
            )
            await self.reopen(case)
            await self.act(
                case,
                CaseWorkflow.record_crime,
                RecordCrime(actor="handler-1", category="burglary"),
                "record-crime-r1",
            )
        elif case.path == "not_a_crime":
            await self.act(
                case,
                CaseWorkflow.not_a_crime,
                NotACrime(
                    actor="handler-1", advice="A civil matter.", agencies=["Citizens Advice"]
                ),
                "not-a-crime",
            )
        elif case.path == "details":
            await self.act(
                case,
                CaseWorkflow.request_details,
                RequestDetails(actor="handler-1", question="Which door was forced?"),
                "request-details",
            )
            await asyncio.sleep(self.rng.uniform(0, 30))  # some after the reminder
            handle = self.client.get_workflow_handle(case.workflow_id)
            await retrying(
                lambda: handle.signal(
                    CaseWorkflow.details_reply, DetailsReply(text="The back door.")
                )
            )
        else:
            await self.act(
                case,
                CaseWorkflow.record_crime,
                RecordCrime(actor="handler-1", category="burglary"),
                "record-crime",
            )
        if case.path in ("investigate", "suspect"):
            await self.act(
                case, CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"), "imu-investigate"
            )
            await self.act(
                case,
                CaseWorkflow.acknowledge,
                Acknowledge(actor="officer-1", officer="officer-1"),
                "acknowledge",
            )
        if case.path == "suspect":
            await self.act(
                case,
                CaseWorkflow.set_updates,
                SetUpdates(actor="officer-1", every=timedelta(days=14)),
                "set-updates",
            )
            for event in (SuspectEvent.ARRESTED, SuspectEvent.CHARGED):
                await self.act(
                    case,
                    CaseWorkflow.suspect_event,
                    RecordSuspectEvent(actor="officer-1", event=event, note="Soak."),
                    f"suspect-{event.value}",
                )
        if case.path in ("investigate", "suspect"):
            await self.act(
                case,
                CaseWorkflow.close,
                CloseCase(actor="officer-1", outcome=18, note="No further lines of enquiry."),
                "close",
            )


async def inject_faults(
    stack: Stack, driving: asyncio.Task[Any], *, every: float, outage: float
) -> int:
    """Each kind of fault in turn, every ``every`` seconds, until driving is over."""
    kinds = [stack.kill_worker, stack.stop_postgres, stack.stop_smtp, stack.restart_temporal]
    injected = 0
    await asyncio.wait([driving], timeout=every / 2)
    while not driving.done() or injected < len(kinds):
        what = await kinds[injected % len(kinds)](outage)
        injected += 1
        log.info("fault %d: %s", injected, what)
        await asyncio.wait([driving], timeout=every)
    return injected


# --- quiescence and the cross-check --------------------------------------------------------


async def quiesce(
    cases: list[Case], board: Board, pool: asyncpg.Pool, sink: MailSink, timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def settled() -> bool:
        return all(
            board.stages.get(c.workflow_id) == FINAL[c.path].value for c in cases if c.workflow_id
        )

    try:
        await asyncio.wait_for(board.until(settled), timeout)
    except TimeoutError:
        return  # the cross-check says which cases did not get there
    last = -1
    while loop.time() < deadline:
        unsent = await pool.fetchval(
            "SELECT count(*) FROM notifications WHERE sent_at IS NULL AND recipient <> ''"
        )
        count = len(sink.paths())
        if unsent == 0 and count == last and not missing_letters(cases, sink):
            return
        last = count
        await asyncio.sleep(3)


def missing_letters(cases: list[Case], sink: MailSink) -> list[str]:
    """Each case's expected letters (``LETTERS``) that are not in the sink."""
    sent = {(h["X-WHN-Case"], h["X-WHN-Purpose"]) for h in sink_headers(sink)}
    return [
        f"{c.workflow_id}: no {purpose} email in the sink"
        for c in cases
        if c.workflow_id
        for purpose in sorted(LETTERS[c.path])
        if (c.workflow_id, purpose) not in sent
    ]


def sink_headers(sink: MailSink) -> list[Any]:
    parser = BytesHeaderParser(policy=default_policy)
    found = []
    for path in sink.paths():
        with path.open("rb") as f:
            found.append(parser.parse(f))
    return found


async def temporal_cases(client: Client) -> dict[str, list[Any]]:
    runs: dict[str, list[Any]] = {}
    async for execution in client.list_workflows("WorkflowType = 'CaseWorkflow'"):
        runs.setdefault(execution.id, []).append(execution)
    for executions in runs.values():  # the newest run (a reopened case's) first
        executions.sort(key=lambda e: e.start_time, reverse=True)
    return runs


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    duplicated_cases: list[str] = field(default_factory=list)
    duplicated_emails: list[str] = field(default_factory=list)
    duplicated_references: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


async def cross_check(
    cases: list[Case], client: Client, pool: asyncpg.Pool, sink: MailSink
) -> tuple[Findings, int]:
    """What is wrong, and how many cases Temporal holds."""
    found = Findings()
    stored = {r["submission_id"]: r for r in await pool.fetch("SELECT * FROM cases")}
    runs: dict[str, list[Any]] = {}
    for _ in range(10):  # visibility is eventually consistent: let it catch up
        runs = await temporal_cases(client)
        if all(
            c.workflow_id in runs and _stage(runs[c.workflow_id][0]) == FINAL[c.path].value
            for c in cases
        ):
            break
        await asyncio.sleep(3)

    submission_ids = {c.report.submission_id for c in cases}
    for case in cases:
        row = stored.get(case.report.submission_id)
        run = runs.get(case.workflow_id, [None])[0]
        want = FINAL[case.path].value
        if row is None or run is None or row["stage"] != want or _stage(run) != want:
            found.lost.append(
                f"{case.report.submission_id} ({case.path}): store "
                f"{row['stage'] if row else 'missing'}, Temporal "
                f"{_stage(run) if run else 'missing'}, want {want}; {case.problem or ''}"
            )
        if len(case.receipt_codes) > 1:
            found.duplicated_cases.append(f"{case.report.submission_id}: {case.receipt_codes}")
    for submission_id in stored.keys() - submission_ids:
        found.duplicated_cases.append(f"store has an unexpected case for {submission_id}")
    expected_runs = {c.workflow_id: RUNS.get(c.path, 1) for c in cases}
    for workflow_id, executions in runs.items():
        if len(executions) != expected_runs.get(workflow_id):
            found.duplicated_cases.append(f"Temporal: {workflow_id} x{len(executions)}")

    # One email per (case, purpose); its Message-ID is fixed by the outbox row, so a
    # second file with the same Message-ID is the same (case, purpose) again.
    emails: Counter[tuple[str, str]] = Counter()
    for headers in sink_headers(sink):
        emails[(headers["X-WHN-Case"], headers["X-WHN-Purpose"])] += 1
    found.duplicated_emails += [f"{k} x{n}" for k, n in emails.items() if n > 1]
    found.other += missing_letters(cases, sink)
    unsent = await pool.fetch(
        "SELECT workflow_id, purpose, attempts, last_error FROM notifications"
        " WHERE sent_at IS NULL AND recipient <> ''"
    )
    found.other += [f"outbox: {dict(r)} never sent" for r in unsent]

    references = await pool.fetch("SELECT reference, workflow_id, kind FROM case_references")
    per_case = Counter((r["workflow_id"], r["kind"]) for r in references)
    found.duplicated_references += [f"{k} x{n}" for k, n in per_case.items() if n > 1]
    by_workflow = {row["workflow_id"]: row for row in stored.values()}
    for workflow_id, executions in runs.items():
        row = by_workflow.get(workflow_id)
        crn = executions[0].typed_search_attributes.get(sa.CRIME_REFERENCE)
        if row is not None and crn != row["crime_reference"]:
            found.duplicated_references.append(
                f"{workflow_id}: Temporal has {crn}, the store {row['crime_reference']}"
            )
    for counter in await pool.fetch("SELECT kind, year, value FROM reference_counters"):
        issued = sum(1 for r in references if r["kind"] == counter["kind"])
        if counter["value"] != issued:
            found.other.append(f"counter {dict(counter)}: {issued} references issued (a gap)")
    return found, len(runs)


def _stage(execution: Any) -> str | None:
    stage: str | None = execution.typed_search_attributes.get(sa.CASE_STAGE)
    return stage


# --- main ------------------------------------------------------------------------------------


def plan(n: int, resubmit: float, rng: random.Random) -> list[Case]:
    template = json.loads((ROOT / "examples" / "ordinary.json").read_text())
    cases = []
    for i in range(n):
        template["submission_id"] = f"soak-{uuid.UUID(int=rng.getrandbits(128))}"
        path = rng.choices([p for p, _ in SHARES], [w for _, w in SHARES])[0]
        cases.append(
            Case(
                report=Report.model_validate_json(json.dumps(template)),
                path=path,
                resubmit=i < round(n * resubmit),
            )
        )
    rng.shuffle(cases)
    return cases


async def soak(args: argparse.Namespace) -> int:
    started = time.monotonic()
    rng = random.Random(args.seed)
    cases = plan(args.cases, args.resubmit, rng)
    stack = Stack(args.workers)
    try:
        await stack.start()
        log.info("stack up in %s (%.0f s)", stack.dir, time.monotonic() - started)
        client = await Client.connect(
            stack.temporal.address,
            data_converter=data_converter(stack.settings()),
            # The SDK warns on every retried call while Temporal restarts; stdout is
            # kept for the summary line.
            runtime=Runtime(
                telemetry=TelemetryConfig(
                    logging=LoggingConfig(
                        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")
                    )
                )
            ),
        )
        async with Board(stack.dsn) as board:
            driver = Driver(client, board, rng, stack.dsn)
            driving = asyncio.create_task(_drive_all(driver, cases))
            faults = await inject_faults(stack, driving, every=args.fault_every, outage=args.outage)
            await driving
            log.info(
                "driven in %.0f s (%d actions refused for the stage after a crash and asked"
                " again); waiting for quiescence",
                time.monotonic() - started,
                driver.refused,
            )
            pool = await db.create_pool(stack.dsn)  # after the faults: no reconnection noise
            await quiesce(cases, board, pool, stack.sink, args.settle)
        findings, n_cases = await cross_check(cases, client, pool, stack.sink)
        await pool.close()
    finally:
        await stack.stop(keep=args.keep)

    for kind, items in vars(findings).items():
        for item in items[:20]:
            print(f"soak: {kind}: {item}", file=sys.stderr)
        if len(items) > 20:
            print(f"soak: {kind}: ... {len(items) - 20} more", file=sys.stderr)
    elapsed = time.monotonic() - started
    submissions = sum(c.submissions for c in cases)
    print(
        f"soak: submissions={submissions} cases={n_cases} "
        f"faults={faults} lost={len(findings.lost)} "
        f"duplicated_cases={len(findings.duplicated_cases)} "
        f"duplicated_emails={len(findings.duplicated_emails)} "
        f"duplicated_references={len(findings.duplicated_references)} ({elapsed:.0f} s)"
    )
    return 1 if any(vars(findings).values()) else 0


async def _drive_all(driver: Driver, cases: list[Case]) -> None:
    await asyncio.gather(*(driver.run(c) for c in cases))


def main() -> None:
    parser = argparse.ArgumentParser(description="Soak the system with faults injected.")
    parser.add_argument("--cases", type=int, default=1000, help="distinct reports (1000)")
    parser.add_argument("--quick", action="store_true", help="100 cases")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--resubmit", type=float, default=0.1, help="share resubmitted (0.1)")
    parser.add_argument("--fault-every", type=float, default=30, help="seconds between faults")
    parser.add_argument("--outage", type=float, default=10, help="seconds a server stays down")
    parser.add_argument("--settle", type=float, default=300, help="seconds to wait for quiescence")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the stack's directory")
    args = parser.parse_args()
    if args.quick:
        args.cases = 100
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("whn", "temporalio", "mail.log", "aiosmtpd"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
