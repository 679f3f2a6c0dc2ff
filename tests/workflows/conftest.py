"""A case worker on a time-skipping test server, with real PostgreSQL and SMTP.

Each test has a test server of its own (see ``time_env``): its clock is global and a task
left outstanding by one test would freeze it for the next.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import Client

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


@pytest.fixture
async def client(time_env) -> Client:  # type: ignore[no-untyped-def]
    """The test's own time-skipping server's client, our search attributes registered.

    Without the environment's automatic time skipping: tests move the clock themselves
    (``tests.helpers.skip_time``), so waiting on a result never jumps a deadline.
    """
    await register_search_attributes(time_env.client, "default")
    config = time_env.client.config()
    config["interceptors"] = []
    return Client(**config)


@pytest.fixture
async def case_worker(client, db_pool, settings, task_queue) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """Runs a worker for the test and yields its task queue."""
    async with build_worker(client, db_pool, settings, task_queue=task_queue):
        yield task_queue
