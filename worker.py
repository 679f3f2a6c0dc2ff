"""The worker: Settings -> pool -> client -> Worker. Run as ``whn-worker`` or ``python worker.py``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.compliance import Summaries, publish_live_counts
from activities.handoff import TeamHandoff
from activities.intel import IntelligenceSearch
from activities.mail import Mailer
from activities.owed import OwedLetters
from activities.rules import (
    assess_report,
    imu_outcome,
    name_outcome,
    route_case,
    screen_report,
    working_days_after,
)
from activities.store import CaseStore
from whn.codec import CodecKeyError
from whn.db import create_pool
from whn.runner import CompactHeaders, CompactSandboxedRunner, CompactUnsandboxedRunner
from whn.settings import Settings, SettingsError, get_settings
from whn.telemetry import runtime_for, setup_tracing, shutdown_tracing
from whn.temporal import connect_client, ensure_encrypted, keyring, missing_search_attributes
from workflows.case import CaseWorkflow
from workflows.summary import SupervisorSummaryWorkflow

log = logging.getLogger("whn.worker")


def build_worker(
    client: Client, pool: asyncpg.Pool, settings: Settings, *, task_queue: str | None = None
) -> Worker:
    """A worker for the case workflow and every activity it calls.

    Refused (CodecKeyError) if ``client`` would write plaintext and encryption is required.
    """
    ensure_encrypted(client.data_converter, required=settings.codec_required)
    store = CaseStore(pool, force_code=settings.force_code, keyring=keyring(settings))
    mailer = Mailer(pool, settings)
    owed = OwedLetters(pool, keyring=keyring(settings))
    handoff = TeamHandoff(pool, settings)
    intel = IntelligenceSearch(pool)
    summaries = Summaries(pool)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[CaseWorkflow, SupervisorSummaryWorkflow],
        activities=[
            store.open_case,
            store.record_change,
            store.commit,
            store.begin,
            store.decide,
            store.open_and_screen,
            store.issue_reference,
            store.authorise,
            store.check_staff,
            store.record_referral,
            store.raise_control_room_alert,
            mailer.notify,
            mailer.notify_all,
            owed.owe_letter,
            owed.letter_delivered,
            handoff.hand_off,
            handoff.mark_acknowledged,
            intel.search_intelligence,
            intel.search_and_record,
            summaries.daily_summary,
            screen_report,
            working_days_after,
            assess_report,
            route_case,
            imu_outcome,
            name_outcome,
        ],
        max_cached_workflows=settings.max_cached_workflows,
        # Each cached case keeps copies, not its first activation (whn.runner).
        workflow_runner=(
            CompactSandboxedRunner() if settings.workflow_sandbox else CompactUnsandboxedRunner()
        ),
        unsandboxed_workflow_runner=CompactUnsandboxedRunner(),
        interceptors=[CompactHeaders()],
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


async def run(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then let in-flight activities finish."""
    setup_tracing(settings, service_name="whn-worker")
    runtime = runtime_for(settings)
    client = await connect_client(settings, runtime=runtime)
    missing = await missing_search_attributes(client, settings.temporal_namespace)
    if missing:
        raise SystemExit(
            f"search attributes missing on namespace {settings.temporal_namespace!r}: "
            + ", ".join(missing)
            + " (run: whn-admin setup-search-attributes)"
        )
    pool = await create_pool(settings.database_url, max_size=settings.db_pool_size)
    worker = build_worker(client, pool, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling task queue %s on %s (event loop: %s)",
        settings.task_queue,
        settings.temporal_address,
        event_loop_name(loop),
    )
    # Cases by stage and overdue deadlines, beside the SDK's metrics (the dashboard's).
    gauges = (
        asyncio.create_task(publish_live_counts(pool, runtime.metric_meter)) if runtime else None
    )
    async with worker:
        await stop.wait()
        if gauges is not None:
            gauges.cancel()
        log.info("shutting down: draining in-flight work")
    await Mailer.close_all()  # QUIT on the kept SMTP connections
    await pool.close()
    shutdown_tracing()
    log.info("worker stopped")


def event_loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: the package of the loop's class (what the worker runs on)."""
    return type(loop).__module__.partition(".")[0]


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The worker's event loop (``WHN_EVENT_LOOP``): uvloop's, or None for the standard one
    (the default).

    uvloop (libuv) does the loop's own work (ready callbacks, the selector, timers and
    the wake-ups the SDK's Rust core sends by ``call_soon_threadsafe``) in C; measured in
    docs/deployment.md. Where it cannot be imported the standard loop runs, with a warning.
    """
    if settings.event_loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        log.warning("WHN_EVENT_LOOP=uvloop but uvloop is not installed: the standard loop runs")
        return None
    return uvloop.new_event_loop


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    code = 0
    try:
        settings = get_settings()
        with asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
            runner.run(run(settings))
    except SettingsError as err:
        print(f"whn-worker: configuration: {err}", file=sys.stderr)
        code = 1
    except (OSError, asyncpg.PostgresError, RuntimeError, CodecKeyError) as err:
        print(f"whn-worker: cannot start: {str(err).splitlines()[0]}", file=sys.stderr)
        code = 1
    except SystemExit as done:
        if done.code not in (None, 0):
            print(f"whn-worker: {done.code}", file=sys.stderr)
            code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalisation: the Temporal runtime's threads can crash it (see
    # starter.cli.main_of), which would turn a clean drain into a failed exit.
    os._exit(code)


if __name__ == "__main__":
    main()
