"""Security tests: the workflow fixtures (a recording time-skipping client, a case worker)."""

from __future__ import annotations

import uuid

import pytest

from starter.staff import add_staff, set_active
from tests.workflows.conftest import case_worker, client  # noqa: F401

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
