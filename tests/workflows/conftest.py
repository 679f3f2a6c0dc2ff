"""A case worker on the time-skipping test server, with real PostgreSQL and SMTP.

The time-skipping server only moves its clock when no workflow task is outstanding, so a
case left open by one test (its worker gone) would freeze time for every later test. The
``client`` here records every case it starts, and each test's open cases are terminated
when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.service import RPCError

from domain.case import Timings
from whn.temporal import register_search_attributes
from worker import build_worker

FAST = Timings(
    review_deadline=timedelta(hours=24),
    crn_deadline=timedelta(hours=48),
    details_reminder=timedelta(days=3),
    details_expiry=timedelta(days=14),
    emergency_ack_deadline=timedelta(minutes=5),
    ack_deadline=timedelta(hours=24),
    update_interval=timedelta(days=28),
)

_started: list[str] = []


class _Recorder(Interceptor):
    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _RecordingOutbound(next)


class _RecordingOutbound(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        _started.append(input.id)
        return await super().start_workflow(input)


@pytest.fixture(scope="session")
async def client(time_env) -> Client:  # type: ignore[no-untyped-def]
    """The time-skipping server's client, recording starts; search attributes registered."""
    await register_search_attributes(time_env.client, "default")
    config = time_env.client.config()
    config["interceptors"] = [_Recorder()]
    return Client(**config)


@pytest.fixture(autouse=True)
async def _terminate_open_cases(client: Client) -> AsyncIterator[None]:
    _started.clear()
    yield
    for workflow_id in set(_started):
        try:
            await client.get_workflow_handle(workflow_id).terminate("test finished")
        except RPCError:
            pass  # already closed


@pytest.fixture
async def case_worker(client, db_pool, settings, task_queue) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """Runs a worker for the test and yields its task queue."""
    async with build_worker(client, db_pool, settings, task_queue=task_queue):
        yield task_queue
