"""``CaseStore.begin`` and ``commit``: an allowed action's audit row goes with its commit.

With ``audit_with_commit`` (as the workflow asks since one-transaction actions), an
allowed actor is checked by one read and audited in the action's commit; a refusal is
audited at once, whatever else happens. Without it (a begin recorded before), begin
audits the allowed actor itself.
"""

from __future__ import annotations

import uuid

import pytest

from activities.store import CaseStore, NotAuthorisedError
from domain.effects import Authorise, Begin, Commit


async def _rows(db_pool, workflow_id: str) -> list[tuple[str, bool]]:
    rows = await db_pool.fetch(
        "SELECT actor, allowed FROM audit_log WHERE workflow_id = $1 ORDER BY id", workflow_id
    )
    return [(r["actor"], r["allowed"]) for r in rows]


def _authorise(actor: str) -> Authorise:
    return Authorise(workflow_id=f"case-{uuid.uuid4()}", actor=actor, action="request-details")


async def test_an_allowed_actor_is_audited_with_the_commit(db_pool):
    store = CaseStore(db_pool, force_code="TEST")
    allowed = _authorise("handler-1")
    begun = await store.begin(Begin(authorise=allowed, audit_with_commit=True))
    assert begun.staff.staff_id == "handler-1" and begun.audited is False
    assert await _rows(db_pool, allowed.workflow_id) == []  # nothing written yet
    await store.commit(Commit(workflow_id=allowed.workflow_id, audits=[allowed]))
    assert await _rows(db_pool, allowed.workflow_id) == [("handler-1", True)]


async def test_a_refusal_is_audited_at_once(db_pool):
    store = CaseStore(db_pool, force_code="TEST")
    for begin in (
        Begin(authorise=_authorise("nobody-4411"), audit_with_commit=True),
        Begin(authorise=_authorise("imu-1")),  # the wrong role, the old way
    ):
        with pytest.raises(NotAuthorisedError):
            await store.begin(begin)
        assert await _rows(db_pool, begin.authorise.workflow_id) == [
            (begin.authorise.actor, False)
        ]


async def test_without_audit_with_commit_begin_audits_the_allowed_actor(db_pool):
    store = CaseStore(db_pool, force_code="TEST")
    allowed = _authorise("handler-1")
    begun = await store.begin(Begin(authorise=allowed))
    assert begun.audited is True
    assert await _rows(db_pool, allowed.workflow_id) == [("handler-1", True)]
