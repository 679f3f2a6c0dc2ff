"""The promises report: cases driven through the paths on the time-skipping server, every
figure checked in JSON, CSV and the HTML page, and the projection rebuilt from the store.

The cases live in a database of their own, so the report's period holds exactly them:

- A (vulnerable victim, enhanced rights): recorded at once, closed by the IMU at once:
  every promise met on time, Right 6 by its letter.
- B: recorded 25 hours after receipt: the recording decision met late, the CRN on time.
- C: never touched for 49 hours: the recording decision and the CRN missed.
- D: received at the end: its promises still open.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.client import Client

from activities.projection import rebuild_deadlines
from activities.store import CaseStore
from domain.case import CaseView, ImuClose, RecordCrime, Stage
from domain.effects import OpenCase
from starter.intake import submit
from starter.report import backfill_from_temporal
from tests.helpers import example, skip_time, until, wait_stage, wait_view
from tests.workflows.conftest import FAST
from whn import db
from whn.temporal import register_search_attributes
from worker import build_worker
from workflows.case import CaseWorkflow

BIN = Path(sys.executable).parent
PROMISE_FIELDS = ("due", "met_on_time", "met_late", "missed", "open")


@pytest.fixture
async def report_dsn(postgres_server) -> str:  # type: ignore[no-untyped-def]
    """A fresh database: the report's period holds only this test's cases."""
    dsn = await db.ensure_database(postgres_server.dsn(), f"whn_report_{uuid4().hex[:8]}")
    await db.migrate(dsn)
    await db.seed_demo_roster(dsn)
    return dsn


@pytest.fixture
async def report_pool(report_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(report_dsn)
    yield pool
    await pool.close()


@pytest.fixture
async def client(time_env) -> Client:  # type: ignore[no-untyped-def]
    await register_search_attributes(time_env.client, "default")
    config = time_env.client.config()
    config["interceptors"] = []
    return Client(**config)


def _percentile(values: list[float], q: float) -> int | None:
    """PostgreSQL's percentile_cont, rounded half away from zero as round() does."""
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    value = xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
    return math.floor(value + 0.5)


def _expected(views: list[CaseView], as_of: datetime) -> dict[str, dict[str, object]]:
    """Every promise's figures, worked out here from the workflows' own deadlines."""
    out: dict[str, dict[str, object]] = {}
    met: dict[str, list[float]] = {}
    for view in views:
        for d in view.deadlines:
            name = re.sub(r"_[0-9]+$", "", d.name)
            figures = out.setdefault(name, dict.fromkeys(PROMISE_FIELDS, 0))
            figures["due"] += 1  # type: ignore[operator]
            if d.met_at is not None:
                figures["met_on_time" if d.met_at <= d.due_at else "met_late"] += 1  # type: ignore[operator]
                assert d.opened_at is not None
                met.setdefault(name, []).append((d.met_at - d.opened_at).total_seconds())
            elif d.missed or d.due_at <= as_of:
                figures["missed"] += 1  # type: ignore[operator]
            else:
                figures["open"] += 1  # type: ignore[operator]
    for name, figures in out.items():
        decided = figures["met_on_time"] + figures["met_late"] + figures["missed"]  # type: ignore[operator]
        figures["on_time_rate"] = round(figures["met_on_time"] / decided, 4) if decided else None  # type: ignore[operator]
        figures["median_seconds_to_meet"] = _percentile(met.get(name, []), 0.5)
        figures["p90_seconds_to_meet"] = _percentile(met.get(name, []), 0.9)
    return out


class _Figures(HTMLParser):
    """The figures of the page's tables: {table: {promise: {figure: text or data-value}}}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, dict[str, str]]] = {}
        self._table = ""
        self._cell: tuple[str, str] | None = None
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        if tag == "table":
            self._table = a["data-split"] or ""
            self.tables[self._table] = {}
        if tag == "td" and "data-figure" in a:
            promise, figure = a["data-promise"] or "", a["data-figure"] or ""
            row = self.tables[self._table].setdefault(promise, {})
            if "data-value" in a:
                row[figure] = a["data-value"] or ""
            else:
                self._cell = (promise, figure)

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            promise, figure = self._cell
            self.tables[self._table][promise][figure] = data
            self._cell = None


def _as_text(value: object) -> str:
    return "" if value is None else str(value)


async def _cli(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WHN_DATABASE_URL": dsn}
    env.pop("WHN_STAFF_ID", None)
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "whn-admin"), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


async def test_report_figures_in_every_format_and_the_projection_rebuilds(
    client, time_env, report_dsn, report_pool, settings, task_queue, tmp_path
):
    configured = settings.model_copy(update={"database_url": report_dsn})
    async with build_worker(client, report_pool, configured, task_queue=task_queue):

        async def case(**overrides):  # type: ignore[no-untyped-def]
            submitted = await submit(
                client, example("ordinary", **overrides), task_queue=task_queue, timings=FAST
            )
            handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
            await wait_stage(handle, Stage.AWAITING_REVIEW)
            return handle

        a = await case(reporter__vulnerable=True)
        b = await case()
        c = await case()
        await a.execute_update(
            CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
        )
        await wait_stage(a, Stage.WITH_IMU)
        await a.execute_update(
            CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason="no-witnesses")
        )
        await a.result()

        await skip_time(time_env, timedelta(hours=25))
        await wait_view(b, lambda v: v.overdue)
        await b.execute_update(
            CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="vehicle-crime")
        )
        await wait_view(b, lambda v: all(d.met_at for d in v.deadlines))
        await skip_time(time_env, timedelta(hours=24))
        await wait_view(c, lambda v: sum(d.missed for d in v.deadlines) == 2)
        d = await case()
        handles = (a, b, c, d)
        views = [await h.query(CaseWorkflow.view) for h in handles]
        as_of = await time_env.get_current_time()

        # The projection has caught up with every case's own deadlines (letters included).
        async def caught_up() -> bool:
            rows = await report_pool.fetch(
                "SELECT workflow_id, seq, met_at FROM case_deadlines ORDER BY workflow_id, seq"
            )
            want = sorted(
                (v.workflow_id, i, dl.met_at)
                for v in [await h.query(CaseWorkflow.view) for h in handles]
                for i, dl in enumerate(v.deadlines)
            )
            return [tuple(r) for r in rows] == want

        await until(caught_up, within=20, what="the projection matches the workflows")
        views = [await h.query(CaseWorkflow.view) for h in handles]

    assert views[0].enhanced_rights and not any(v.enhanced_rights for v in views[1:])
    expected = _expected(views, as_of)
    # The scenario does what it says: one recording decision of each kind.
    assert {k: expected["crime_recording_decision"][k] for k in PROMISE_FIELDS} == {
        "due": 4,
        "met_on_time": 1,
        "met_late": 1,
        "missed": 1,
        "open": 1,
    }
    assert expected["crn_or_explanation"]["missed"] == 1
    assert expected["right6_decision_explained"]["met_on_time"] == 1
    by_rights = {
        "yes": _expected(views[:1], as_of),
        "no": _expected(views[1:], as_of),
    }

    day = views[0].timeline[0].at.date()
    html_file, csv_file = tmp_path / "report.html", tmp_path / "report.csv"
    args = ["report", "--from", str(day - timedelta(days=1)), "--to", str(day + timedelta(days=5))]
    result = await _cli(
        *args,
        "--as-of",
        as_of.strftime("%Y-%m-%dT%H:%M:%S.%f%z"),
        "--by",
        "enhanced-rights",
        "--json",
        "--csv",
        str(csv_file),
        "--html",
        str(html_file),
        "--as",
        "supervisor-1",
        dsn=report_dsn,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    # JSON: the contract's shape, every figure of every promise, and the split.
    assert report["from"] == str(day - timedelta(days=1)) and report["to"] == str(
        day + timedelta(days=5)
    )
    assert report["cases"] == 4
    assert [p["name"] for p in report["promises"]][:3] == [
        "receipt",
        "crime_recording_decision",
        "crn_or_explanation",
    ]
    assert {
        p["name"]: {k: v for k, v in p.items() if k != "name"} for p in report["promises"]
    } == expected
    splits = {(s["by"], s["value"]): s["promises"] for s in report["splits"]}
    assert set(splits) == {("enhanced_rights", "yes"), ("enhanced_rights", "no")}
    for value, figures in by_rights.items():
        got = {
            p["name"]: {k: v for k, v in p.items() if k != "name"}
            for p in splits[("enhanced_rights", value)]
        }
        assert got == figures

    # The weekly trend: each promise's figures by the week (Monday, in the force's time)
    # its cases were received.
    london = ZoneInfo("Europe/London")
    weeks: dict[tuple[str, str], list[CaseView]] = {}
    for view in views:
        local = view.timeline[0].at.astimezone(london).date()
        monday = str(local - timedelta(days=local.weekday()))
        for name in {re.sub(r"_[0-9]+$", "", dl.name) for dl in view.deadlines}:
            weeks.setdefault((monday, name), []).append(view)
    want_weekly = {}
    for (monday, name), in_week in weeks.items():
        f = _expected(in_week, as_of)[name]
        decided = f["met_on_time"] + f["met_late"] + f["missed"]  # type: ignore[operator]
        want_weekly[(monday, name)] = (f["due"], decided, f["met_on_time"], f["on_time_rate"])
    assert {
        (w["week"], w["name"]): (w["due"], w["decided"], w["met_on_time"], w["on_time_rate"])
        for w in report["weekly"]
    } == want_weekly

    # CSV: one row per promise overall and per split value, the same figures.
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert len(rows) == len(expected) + sum(len(f) for f in by_rights.values())
    groups = {("all", "all"): expected} | {("enhanced_rights", v): f for v, f in by_rights.items()}
    for row in rows:
        figures = groups[(row["split"], row["value"])][row["name"]]
        assert {k: row[k] for k in figures} == {k: _as_text(v) for k, v in figures.items()}

    # HTML: two charts inline (no script, no network) and the same figures in its tables.
    page = html_file.read_text()
    assert not re.search(r"<script|<link|<img|(src|href)=[\"']?https?:", page)
    parsed = _Figures()
    parsed.feed(page)
    assert parsed.svgs >= 2
    tables = {"all": expected} | {f"enhanced_rights={v}": f for v, f in by_rights.items()}
    for key, figures in tables.items():
        table = parsed.tables[key]
        assert set(table) == set(figures)
        for name, want in figures.items():
            assert {k: table[name][k] for k in PROMISE_FIELDS} == {
                k: str(want[k]) for k in PROMISE_FIELDS
            }
            assert table[name]["on_time_rate"] == _as_text(want["on_time_rate"])
            assert table[name]["median_seconds_to_meet"] == _as_text(want["median_seconds_to_meet"])
            assert table[name]["p90_seconds_to_meet"] == _as_text(want["p90_seconds_to_meet"])

    # Lost projection: rebuilt from the case store, row for row.
    before = [
        tuple(r) for r in await report_pool.fetch("SELECT * FROM case_deadlines ORDER BY 1, 2")
    ]
    await report_pool.execute("DELETE FROM case_deadlines")
    assert await rebuild_deadlines(report_pool) == len(before)
    after = [
        tuple(r) for r in await report_pool.fetch("SELECT * FROM case_deadlines ORDER BY 1, 2")
    ]
    assert after == before

    # Only a supervisor may run it, and the refusal is audited.
    refused = await _cli(*args, "--as", "handler-1", dsn=report_dsn)
    assert refused.returncode == 2
    assert "report needs the role supervisor" in refused.stderr
    assert (
        await report_pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'report' AND NOT allowed"
        )
        == 1
    )


async def test_deadlines_the_store_never_had_are_asked_of_temporal(
    client, report_pool, settings, task_queue
):
    """Cases recorded before the projection existed: backfilled from their workflows."""
    async with build_worker(client, report_pool, settings, task_queue=task_queue):
        submitted = await submit(client, example("ordinary"), task_queue=task_queue, timings=FAST)
        handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
        await wait_stage(handle, Stage.AWAITING_REVIEW)
        query = "SELECT * FROM case_deadlines ORDER BY 1, 2"
        before = [tuple(r) for r in await until(lambda: report_pool.fetch(query))]
        await report_pool.execute("UPDATE cases SET deadlines = NULL, deadlines_event = NULL")
        await report_pool.execute("DELETE FROM case_deadlines")
        report = example("ordinary")
        await CaseStore(report_pool, force_code=settings.force_code).open_case(
            OpenCase(
                workflow_id="case-WHN-GONE-0000-00",
                receipt_code="WHN-GONE-0000-00",
                submission_id=report.submission_id,
                report=report,
                received_at=datetime.now(UTC),
                stage="closed",
                priority="grade-3",
                category="burglary",
            )
        )
        assert await backfill_from_temporal(client, report_pool) == (1, 1)
    assert await rebuild_deadlines(report_pool) == len(before)
    assert [tuple(r) for r in await report_pool.fetch(query)] == before


async def test_report_without_the_database_is_exit_1_and_one_line():
    result = await _cli(
        "report",
        "--from",
        "2026-06-01",
        "--to",
        "2026-06-30",
        "--as",
        "supervisor-1",
        dsn="postgresql://whn:x@127.0.0.1:9/whn",
    )
    assert result.returncode == 1
    assert result.stderr.startswith("whn-admin: PostgreSQL could not be reached")
    assert len(result.stderr.strip().splitlines()) == 1
