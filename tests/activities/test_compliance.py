"""The report's query on cases written straight to the store: team filter, splits by team
and category, the period's edges in the force's time, and open against missed at as_of."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from activities.compliance import compliance_report
from activities.store import CaseStore
from domain.case import Deadline
from domain.effects import CaseChange, OpenCase
from tests.helpers import example
from whn import db


@pytest.fixture
async def pool(postgres_server) -> AsyncIterator[asyncpg.Pool]:  # type: ignore[no-untyped-def]
    dsn = await db.ensure_database(postgres_server.dsn(), f"whn_query_{uuid4().hex[:8]}")
    await db.migrate(dsn)
    p = await db.create_pool(dsn)
    yield p
    await p.close()


async def _case(
    store: CaseStore, received: datetime, team: str | None, category: str, met: timedelta | None
) -> None:
    report = example("ordinary")
    workflow_id = f"case-{uuid4()}"
    await store.open_case(
        OpenCase(
            workflow_id=workflow_id,
            receipt_code=f"WHN-{uuid4().hex[:8]}",
            submission_id=report.submission_id,
            report=report,
            received_at=received,
            stage="received",
            priority="grade-3",
            category=category,
        )
    )
    due = received + timedelta(hours=24)
    await store.record_change(
        CaseChange(
            workflow_id=workflow_id,
            event_key="00001.stage",
            at=received,
            actor="system",
            event="stage",
            fields={"team": team, "category": category},
            deadlines=[
                Deadline(
                    name="crime_recording_decision",
                    due_at=due,
                    met_at=received + met if met is not None else None,
                    missed=met is not None and met > timedelta(hours=24),
                    opened_at=received,
                )
            ],
        )
    )


async def test_team_filter_splits_period_edges_and_as_of(pool, settings):
    store = CaseStore(pool, force_code=settings.force_code)
    # 1 June 2026 00:00 in London is 31 May 23:00 UTC (summer time).
    start = datetime(2026, 5, 31, 23, tzinfo=UTC)
    await _case(store, start - timedelta(minutes=1), "cid", "burglary", timedelta(hours=1))  # May
    await _case(store, start, "cid", "burglary", timedelta(hours=2))  # on time
    await _case(store, start + timedelta(days=1), "cid", "vehicle-crime", timedelta(hours=30))
    await _case(store, start + timedelta(days=2), "cyber", "burglary", None)  # unmet
    await _case(store, start + timedelta(days=30, minutes=-1), None, "burglary", None)

    def figures(report, by=None, value=None):  # type: ignore[no-untyped-def]
        promises = (
            report.promises
            if by is None
            else next(s.promises for s in report.splits if (s.by, s.value) == (by, value))
        )
        (p,) = promises
        return (p.due, p.met_on_time, p.met_late, p.missed, p.open, p.on_time_rate)

    june = {"date_from": date(2026, 6, 1), "date_to": date(2026, 6, 30)}
    # As of 4 June: the cyber case's decision (due 3 June) is missed; the last case's
    # (received 30 June 23:59 London) is open.
    as_of = start + timedelta(days=4)
    report = await compliance_report(pool, **june, as_of=as_of, splits=("team", "category"))
    assert report.cases == 4
    assert figures(report) == (4, 1, 1, 1, 1, round(1 / 3, 4))
    assert figures(report, "team", "cid") == (2, 1, 1, 0, 0, 0.5)
    assert figures(report, "team", "cyber") == (1, 0, 0, 1, 0, 0.0)
    assert figures(report, "team", "unallocated") == (1, 0, 0, 0, 1, None)
    assert figures(report, "category", "burglary") == (3, 1, 0, 1, 1, 0.5)
    assert figures(report, "category", "vehicle-crime") == (1, 0, 1, 0, 0, 0.0)
    assert report.promises[0].median_seconds_to_meet == 16 * 3600  # 2 h and 30 h
    assert report.promises[0].p90_seconds_to_meet == round(2 * 3600 + 0.9 * 28 * 3600)

    # Before the cyber case fell due, it was open; one team only.
    early = await compliance_report(pool, **june, as_of=start + timedelta(days=2, hours=1))
    assert figures(early) == (4, 1, 1, 0, 2, 0.5)
    cid = await compliance_report(pool, **june, as_of=as_of, team="cid")
    assert (cid.cases, figures(cid)) == (2, (2, 1, 1, 0, 0, 0.5))
