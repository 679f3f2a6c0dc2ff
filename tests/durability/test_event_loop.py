"""The worker process's event loop (WHN_EVENT_LOOP): the loop it says it runs on is the
one it runs on, a case goes through it (the SDK's Rust core, asyncpg, SMTP, tracing), and
SIGTERM still drains. Real ``python -m worker`` processes against the real test stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.case import Stage
from tests.durability.conftest import Workers
from tests.durability.test_faults import _assert_once, _submit
from tests.helpers import wait_stage


def _maps_uvloop(pid: int) -> bool:
    """Whether uvloop's extension module is loaded in the process (its memory map)."""
    return "uvloop/loop." in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
async def test_the_worker_runs_on_the_loop_it_is_given(
    event_loop: str, workers: Workers, task_queue, temporal_client, db_pool, mail_sink
) -> None:
    # Spans to stdout (the log), written by the tracer's thread and flushed at the stop.
    worker = await workers.start(env={"WHN_EVENT_LOOP": event_loop, "WHN_OTEL_EXPORTER": "console"})
    # The ready line names the running loop's class's package, read inside the loop.
    assert f"(event loop: {event_loop})" in worker.output(), worker.output()
    assert _maps_uvloop(worker.proc.pid) is (event_loop == "uvloop")

    (handle,) = await _submit(temporal_client, task_queue, 1)
    await wait_stage(handle, Stage.AWAITING_REVIEW, timeout=60)
    await _assert_once(db_pool, mail_sink, [handle], {"receipt"})

    code = await worker.terminate(within=25)
    assert code == 0, worker.output()
    assert "draining in-flight work" in worker.output()
    assert "worker stopped" in worker.output()
    # Spans were recorded in the worker and exported at its stop.
    assert '"trace_id": "0x' in worker.output()
