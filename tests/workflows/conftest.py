"""A case worker on the time-skipping test server, with real PostgreSQL and SMTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import Client

from domain.case import Timings
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


@pytest.fixture
async def client(time_env) -> Client:  # type: ignore[no-untyped-def]
    return time_env.client


@pytest.fixture
async def case_worker(time_env, db_pool, settings, task_queue) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """Runs a worker for the test and yields its task queue."""
    async with build_worker(time_env.client, db_pool, settings, task_queue=task_queue):
        yield task_queue
