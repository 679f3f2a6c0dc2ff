"""Security tests: the workflow fixtures (a recording time-skipping client, a case worker)."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from starter.staff import add_staff, set_active
from tests.workflows.conftest import _Recorder, _terminate_open_cases, case_worker  # noqa: F401
from whn.temporal import register_search_attributes


@pytest.fixture(scope="session")
async def client(time_env) -> Client:  # type: ignore[no-untyped-def]
    """As tests.workflows' ``client`` (same recorder, so open cases are terminated).

    A fixture imported into a second conftest is a second session fixture: the search
    attributes may already be registered by the first.
    """
    try:
        await register_search_attributes(time_env.client, "default")
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    config = time_env.client.config()
    config["interceptors"] = [_Recorder()]
    return Client(**config)


PERSONAL = {
    "name": "Zebedee Quillfeather",
    "email": "zq.private-7781@example.org",
    "phone": "+44 7700 900781",
    "description": "Quillfeather shed marker Q7781: two bicycles taken overnight.",
}


@pytest.fixture(scope="session")
async def disabled_staff(pg_dsn: str) -> str:
    """A person with every role, added and then disabled by a supervisor."""
    staff_id = f"gone-{uuid.uuid4().hex[:8]}"
    await add_staff(
        pg_dsn,
        actor="supervisor-1",
        staff_id=staff_id,
        name="Former member",
        roles=["control_room", "call_handler", "imu", "officer", "supervisor"],
    )
    await set_active(pg_dsn, actor="supervisor-1", staff_id=staff_id, active=False)
    return staff_id
