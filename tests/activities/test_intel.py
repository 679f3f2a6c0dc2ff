"""The intelligence database on a real PostgreSQL: police.uk import, search, own cases.

The sample's crimes lie around latitude 10, longitude 10, where no other test puts any,
and every case inserted here has values of its own, so the shared database's other
rows never change an answer.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.intel import IntelligenceSearch, search
from domain.effects import CaseChange, CaseNote, Commit, SearchRecord
from domain.intel import (
    ImportResult,
    IntelQuery,
    IntelSummary,
    distance_m,
    related_crime_types,
    window_months,
)
from domain.report import Report
from whn import db
from whn.police_uk import PoliceUkFormatError, import_police_uk
from whn.synthetic_intel import generate_synthetic

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "police_uk_sample.csv"
HERE = (10.0, 10.0)
WHEN = datetime(2024, 6, 15, 12, tzinfo=UTC)
INSIDE = 10  # sample rows within 1,000 m and 90 days of HERE / WHEN (rows 1-10)
GOOD_ROWS, BAD_ROWS = 24, 6


@pytest.fixture(scope="module")
async def imported(pg_dsn: str) -> ImportResult:
    """The sample imported once for the module (the first import into this database)."""
    pool = await db.create_pool(pg_dsn)
    try:
        return await import_police_uk(pool, [SAMPLE])
    finally:
        await pool.close()


def query(**changes: Any) -> IntelQuery:
    fields: dict[str, Any] = {
        "workflow_id": f"test-intel-{uuid.uuid4()}",
        "latitude": HERE[0],
        "longitude": HERE[1],
        "occurred_at": WHEN,
        "category": "burglary",
    }
    return IntelQuery(**(fields | changes))


# --- import ---------------------------------------------------------------------------


async def test_import_counts_rows_good_and_bad(imported: ImportResult) -> None:
    assert imported.rows == GOOD_ROWS + BAD_ROWS
    assert imported.bad_rows == BAD_ROWS
    assert imported.imported == GOOD_ROWS
    assert imported.skipped_duplicates == 0
    reasons = "\n".join(imported.bad_examples)
    assert len(imported.bad_examples) == BAD_ROWS
    assert "police_uk_sample.csv:7: bad month '2024-13'" in reasons
    assert "bad month 'June 2024'" in reasons
    assert "bad latitude 'ten'" in reasons
    assert "bad longitude '200.000000'" in reasons
    assert "wrong column count (11, expected 12)" in reasons
    assert "wrong column count (13, expected 12)" in reasons


async def test_import_keeps_rows_as_police_uk_gives_them(
    imported: ImportResult, db_pool: asyncpg.Pool
) -> None:
    rows = await db_pool.fetch(
        "SELECT * FROM intel_crimes WHERE falls_within = 'Test Constabulary' ORDER BY id"
    )
    assert len(rows) == GOOD_ROWS
    first = rows[0]
    assert first["month"] == date(2024, 6, 1)
    assert first["crime_type"] == "Burglary"
    assert first["source"] == "police.uk"
    assert first["latitude"] == pytest.approx(10.000899)
    quoted = [r for r in rows if r["location"] == "On or near Mill Road, North"]
    assert len(quoted) == 1
    # Two identical anti-social behaviour rows (no Crime ID) are two incidents.
    asb = [r for r in rows if r["crime_id"] is None and r["location"] == "On or near Parking Area"]
    assert len(asb) == 2
    assert next(r for r in rows if r["location"] == "No Location")["latitude"] is None


async def test_reimport_adds_nothing(imported: ImportResult, db_pool: asyncpg.Pool) -> None:
    progress: list[tuple[int, int]] = []
    again = await import_police_uk(db_pool, [SAMPLE], lambda d, t: progress.append((d, t)))
    assert (again.rows, again.imported, again.skipped_duplicates, again.bad_rows) == (
        GOOD_ROWS + BAD_ROWS,
        0,
        GOOD_ROWS,
        BAD_ROWS,
    )
    size = SAMPLE.stat().st_size
    assert progress[-1] == (size, size)
    held = await db_pool.fetchval(
        "SELECT count(*) FROM intel_crimes WHERE falls_within = 'Test Constabulary'"
    )
    assert held == GOOD_ROWS


async def test_import_refuses_a_file_that_is_not_police_uk(
    db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("id,when,what\n1,2024-06,Burglary\n")
    with pytest.raises(PoliceUkFormatError):
        await import_police_uk(db_pool, [SAMPLE, other])
    with pytest.raises(FileNotFoundError):
        await import_police_uk(db_pool, [tmp_path / "missing.csv"])


# --- search around the incident ----------------------------------------------------------


async def test_search_counts_crimes_inside_radius_and_window(
    imported: ImportResult, db_pool: asyncpg.Pool
) -> None:
    result = await search(db_pool, query())
    assert result.area_count == INSIDE
    assert result.related_count == 3
    assert result.by_type["Burglary"] == 3
    assert result.by_type["Anti-social behaviour"] == 2
    assert result.months == [date(2024, m, 1) for m in range(3, 10)]
    assert result.own_case_matches == 0


async def test_related_types_first_then_nearest(
    imported: ImportResult, db_pool: asyncpg.Pool
) -> None:
    result = await search(db_pool, query())
    top = result.top_matches
    assert len(top) == INSIDE
    assert [(m.crime_type, round(m.distance_m or 0, -1)) for m in top[:4]] == [
        ("Burglary", 100),
        ("Burglary", 500),
        ("Burglary", 900),
        ("Vehicle crime", 50),  # the nearest crime of all, but not a related type
    ]
    assert [m.related for m in top] == [True] * 3 + [False] * 7
    unrelated = [m.distance_m or 0 for m in top[3:]]
    assert unrelated == sorted(unrelated)
    assert top[0].occurred == date(2024, 6, 1)
    assert top[0].reference and len(top[0].reference) == 64
    assert top[1].location == "On or near Mill Road, North"
    assert top[0].outcome == "Investigation complete; no suspect identified"


async def test_radius_and_window_bound_the_search(
    imported: ImportResult, db_pool: asyncpg.Pool
) -> None:
    wider = await search(db_pool, query(radius_m=2000))
    # 1,200 m north, and 800 m north and east (1,131 m: in the box, not the 1 km circle)
    assert wider.area_count == INSIDE + 2
    assert (await search(db_pool, query(radius_m=6000))).area_count == INSIDE + 3
    narrow = await search(db_pool, query(radius_m=150))
    assert sorted(m.crime_type for m in narrow.top_matches) == ["Burglary", "Vehicle crime"]
    # 30 days either side of 15 June: May, June and July only.
    month = await search(db_pool, query(window_days=30))
    assert month.area_count == 6
    assert {m.occurred.month for m in month.top_matches} == {5, 6, 7}
    # A year on, nothing in range: the 2023 burglary is outside this window too.
    later = await search(db_pool, query(occurred_at=datetime(2025, 6, 15, tzinfo=UTC)))
    assert later.area_count == 0
    assert "No crimes recorded within 1,000 m" in later.summary
    year_before = await search(db_pool, query(occurred_at=datetime(2023, 6, 15, tzinfo=UTC)))
    assert year_before.area_count == 1


async def test_search_without_location_skips_the_area(
    imported: ImportResult, db_pool: asyncpg.Pool
) -> None:
    result = await search(db_pool, query(latitude=None, longitude=None))
    assert (result.area_count, result.top_matches, result.months) == (0, [], [])
    assert result.summary.startswith("No location given")


async def test_summary_has_types_distances_and_months(
    imported: ImportResult, db_pool: asyncpg.Pool
) -> None:
    result = await search(db_pool, query())
    assert result.summary.startswith(
        "10 crimes recorded within 1,000 m in the 90 days either side of the incident;"
        " 3 of related types (Burglary)."
    )
    assert "Nearest related: Burglary 100 m (2024-06), Burglary 500 m (2024-05)" in result.summary
    assert "Test Road" not in result.summary  # no places, only distances


async def test_activity_runs_in_an_activity_environment(
    imported: ImportResult, db_pool: asyncpg.Pool
) -> None:
    activities = IntelligenceSearch(db_pool)
    result = await ActivityEnvironment().run(activities.search_intelligence, query())
    assert result.area_count == INSIDE


# --- our own cases ------------------------------------------------------------------------


def _report(
    *,
    name: str = "A Reporter",
    email: str | None = None,
    phone: str | None = None,
    suspect: str | None = None,
    vrm: str | None = None,
    category: str = "burglary",
    lat: float | None = None,
    lon: float | None = None,
) -> dict[str, Any]:
    return {
        "submission_id": f"test-{uuid.uuid4()}",
        "channel": "phone",
        "reporter": {"name": name, "email": email, "phone": phone, "relationship": "victim"},
        "incident": {
            "category": category,
            "description": "test",
            "occurred_from": "2024-05-02T10:00:00+00:00",
            "location": {"address": "somewhere", "latitude": lat, "longitude": lon},
            "suspect": {"named": suspect is not None, "name": suspect, "vehicle_registration": vrm},
        },
    }


async def _insert_case(pool: asyncpg.Pool, report: dict[str, Any], crn: str | None = None) -> str:
    workflow_id = f"test-intel-{uuid.uuid4()}"
    await pool.execute(
        "INSERT INTO cases (workflow_id, receipt_code, submission_id, stage, priority, category,"
        " crime_reference, report, received_at)"
        " VALUES ($1, $2, $3, 'with_imu', 'grade-3', $4, $5, $6, now())",
        workflow_id,
        f"T-{uuid.uuid4().hex[:12].upper()}",
        report["submission_id"],
        report["incident"]["category"],
        crn,
        report,
    )
    return workflow_id


@pytest.fixture
async def people() -> dict[str, str]:
    """Details of one imaginary suspect and victim that no other test uses."""
    tag = uuid.uuid4().hex
    letters = "".join(chr(65 + int(c, 16) % 26) for c in tag[:5])
    digits = str(int(tag[5:15], 16))[-9:].rjust(9, "1")
    return {
        "suspect": f"Jon O'Reilly-{tag[:8]}",
        "vrm": f"{letters[:2]}24 {letters[2:]}",
        "phone": f"+44 7{digits}",
        "email": f"Victim.{tag[:10]}@Example.org",
    }


async def test_own_cases_match_on_each_detail_however_written(
    db_pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    p = people
    this = await _insert_case(
        db_pool,
        _report(suspect=p["suspect"], vrm=p["vrm"], phone=p["phone"], email=p["email"]),
    )
    national = "0" + p["phone"].removeprefix("+44 ")
    by_name = _report(suspect="  " + p["suspect"].upper().replace(" ", "   ") + " ", lat=10.001, lon=10.0)
    by_vrm = _report(vrm=p["vrm"].replace(" ", "").lower(), category="vehicle-crime")
    by_phone = _report(phone=f"({national[:5]}) {national[5:8]}-{national[8:]}")
    by_email = _report(email=p["email"].lower(), category="other-theft")
    by_two = _report(suspect=p["suspect"].lower(), vrm=p["vrm"])
    unrelated = _report(suspect="Somebody Else", vrm="ZZ99 ZZZ", phone="07000 000000")
    wf = {}
    for label, report in [
        ("name", by_name),
        ("vrm", by_vrm),
        ("phone", by_phone),
        ("email", by_email),
        ("two", by_two),
        ("none", unrelated),
    ]:
        wf[label] = await _insert_case(db_pool, report, crn=f"35/{uuid.uuid4().hex[:6]}/24")
    refs = {
        label: await db_pool.fetchval("SELECT crime_reference FROM cases WHERE workflow_id = $1", w)
        for label, w in wf.items()
    }

    result = await search(
        db_pool,
        query(
            workflow_id=this,
            suspect_name=p["suspect"],
            vehicle_registration=p["vrm"],
            phone=p["phone"],
            email=p["email"],
            latitude=None,
            longitude=None,
        ),
    )
    assert result.own_case_matches == 5
    own = {m.reference: m for m in result.top_matches if m.kind == "own_case"}
    assert set(own) == {refs[k] for k in ("name", "vrm", "phone", "email", "two")}
    assert own[refs["name"]].matched_on == ["suspect_name"]
    assert own[refs["vrm"]].matched_on == ["vehicle_registration"]
    assert own[refs["phone"]].matched_on == ["phone"]
    assert own[refs["email"]].matched_on == ["email"]
    assert result.top_matches[0].reference == refs["two"]  # the most shared details first
    assert result.top_matches[0].matched_on == ["suspect_name", "vehicle_registration"]
    assert own[refs["name"]].related and not own[refs["vrm"]].related
    assert own[refs["name"]].occurred == date(2024, 5, 2)
    # The summary names references and the kinds of detail, never the details.
    assert f"{refs['two']} (suspect name, vehicle registration)" in result.summary
    for value in p.values():
        assert value.lower() not in result.summary.lower()
    assert "Reilly" not in result.summary


async def test_the_case_itself_is_not_a_match(
    db_pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    this = await _insert_case(db_pool, _report(suspect=people["suspect"], email=people["email"]))
    alone = await search(
        db_pool, query(workflow_id=this, suspect_name=people["suspect"], email=people["email"])
    )
    assert alone.own_case_matches == 0
    # Seen from another case, it matches.
    other = await search(db_pool, query(suspect_name=people["suspect"]))
    assert other.own_case_matches == 1
    assert other.top_matches[0].kind == "own_case"
    assert other.top_matches[0].reference.startswith("T-")  # no CRN yet: the receipt code


async def test_own_cases_come_before_the_area_and_share_the_limit(
    imported: ImportResult, db_pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    await _insert_case(db_pool, _report(vrm=people["vrm"], lat=10.0, lon=10.002))
    result = await search(db_pool, query(vehicle_registration=people["vrm"], limit=3))
    assert [m.kind for m in result.top_matches] == ["own_case", "area", "area"]
    assert result.top_matches[0].distance_m == pytest.approx(
        distance_m(10.0, 10.0, 10.0, 10.002), abs=0.1
    )
    assert result.area_count == INSIDE  # counts are not limited


# --- synthetic data and pure rules ----------------------------------------------------------


async def test_generate_synthetic_makes_cambridgeshire_rows(db_pool: asyncpg.Pool) -> None:
    before = await db_pool.fetchval("SELECT coalesce(max(id), 0) FROM intel_crimes")
    added = await generate_synthetic(db_pool, 2_000, seed=7, last_month=date(2025, 12, 1))
    assert added == 2_000
    stats = await db_pool.fetchrow(
        "SELECT count(*) AS n, min(month) AS first, max(month) AS last,"
        " count(DISTINCT crime_type) AS types, count(*) FILTER (WHERE crime_id IS NULL) AS asb,"
        " bool_and(falls_within = 'Cambridgeshire Constabulary') AS cambs,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY latitude) AS mid_lat,"
        " count(*) FILTER (WHERE lsoa_name LIKE 'Cambridge %') AS cambridge"
        " FROM intel_crimes WHERE id > $1 AND source = 'synthetic'",
        before,
    )
    assert stats["n"] == 2_000
    assert stats["first"] >= date(2023, 1, 1) and stats["last"] == date(2025, 12, 1)
    assert stats["types"] == 14 and stats["cambs"]
    assert 200 < stats["asb"] < 500  # about 16.5 % anti-social behaviour, with no Crime ID
    assert 52.0 < stats["mid_lat"] < 52.8
    assert 400 < stats["cambridge"] < 800  # about 30 % in Cambridge


def test_related_crime_types() -> None:
    assert related_crime_types("burglary") == {"Burglary"}
    assert related_crime_types("bicycle-theft") == {"Bicycle theft", "Other theft"}
    assert related_crime_types("vehicle-crime") == {"Vehicle crime"}
    assert related_crime_types("violent-crime") == {"Violence and sexual offences"}
    assert "Violence and sexual offences" in related_crime_types("domestic-abuse")
    assert related_crime_types("sexual-offence") == {"Violence and sexual offences"}
    assert related_crime_types("other") == set()
    assert related_crime_types("no-such-category") == set()


def test_window_months_overlap() -> None:
    assert window_months(WHEN, 0) == [date(2024, 6, 1)]
    assert window_months(datetime(2024, 1, 10, tzinfo=UTC), 15) == [
        date(2023, 12, 1),
        date(2024, 1, 1),
    ]


def test_query_for_a_report() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "ordinary.json"
    report = Report.model_validate_json(example.read_text())
    q = IntelQuery.for_report("wf-1", report, radius_m=500)
    assert q.category == report.incident.category
    assert q.latitude == report.incident.location.latitude
    assert q.email == report.reporter.email and q.radius_m == 500


# --- the search that records its outcome (patch search-records) ---------------------------


def _recorded(workflow_id: str, number: int, *, before: CaseChange | None = None) -> SearchRecord:
    """The workflow's request: its step:intelligence event numbered, the answer to fill."""
    at = datetime.now(UTC)
    change = CaseChange(
        workflow_id=workflow_id,
        event_key=f"{number:05d}.step:intelligence",
        at=at,
        actor="system",
        event="step:intelligence",
        fields={"overdue": False, "flags": []},
        deadlines=[],
    )
    commit = None if before is None else Commit(workflow_id=workflow_id, changes=[before])
    return SearchRecord(
        query=query(workflow_id=workflow_id, email=None), change=change, commit=commit
    )


async def test_search_and_record_writes_its_outcome_once_even_retried_after_commit(
    db_pool: asyncpg.Pool, people: dict[str, str]
) -> None:
    """An attempt retried after the first committed (the worker lost before the answer
    reached the case) writes nothing twice, and answers with what the store holds, not
    a second search that now finds more."""
    this = await _insert_case(db_pool, _report(email=people["email"]))
    handed_off = CaseChange(
        workflow_id=this,
        event_key="00007.handed_off",
        at=datetime.now(UTC),
        actor="system",
        event="handed_off",
        detail={"team": "lpt-cambridge"},
        fields={"overdue": False, "flags": []},
    )
    request = _recorded(this, 8, before=handed_off)
    request = request.model_copy(
        update={"query": request.query.model_copy(update={"email": people["email"]})}
    )
    activities = IntelligenceSearch(db_pool)
    first = await ActivityEnvironment().run(activities.search_and_record, request)
    assert first.own_case_matches == 0
    # Another case sharing the email arrives: a fresh search would now find it.
    await _insert_case(db_pool, _report(email=people["email"]), crn="35/retry/24")
    assert (await search(db_pool, request.query)).own_case_matches == 1
    again = await ActivityEnvironment().run(activities.search_and_record, request)
    assert again == first
    events = await db_pool.fetch(
        "SELECT event_key, detail FROM case_events WHERE workflow_id = $1 ORDER BY id", this
    )
    assert [e["event_key"] for e in events] == ["00007.handed_off", "00008.step:intelligence"]
    assert events[1]["detail"] == {"summary": first.summary}
    stored = await db_pool.fetchval("SELECT intelligence FROM cases WHERE workflow_id = $1", this)
    assert IntelSummary.model_validate(stored) == first


async def test_search_and_record_attempts_at_once_record_one_outcome(
    imported: ImportResult, db_pool: asyncpg.Pool
) -> None:
    """A local activity timed out while still running, and its retry: both answer the
    one outcome the store holds (the case row's lock orders them)."""
    this = await _insert_case(db_pool, _report(lat=HERE[0], lon=HERE[1]))
    request = _recorded(this, 3)
    activities = IntelligenceSearch(db_pool)
    answers = await asyncio.gather(
        *(ActivityEnvironment().run(activities.search_and_record, request) for _ in range(3))
    )
    assert answers[0].area_count == INSIDE and answers.count(answers[0]) == 3
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM case_events WHERE workflow_id = $1 AND event = $2",
            this,
            "step:intelligence",
        )
        == 1
    )


async def test_search_and_record_refuses_a_commit_with_notes(db_pool: asyncpg.Pool) -> None:
    """Notes are sealed with the case store's key, which the search does not hold."""
    this = await _insert_case(db_pool, _report())
    noted = CaseChange(
        workflow_id=this,
        event_key="00002.step:scene",
        at=datetime.now(UTC),
        actor="officer-1",
        event="step:scene",
        notes=[CaseNote(kind="step_note", text="seen", step="scene")],
    )
    with pytest.raises(ValueError, match="notes"):
        await ActivityEnvironment().run(
            IntelligenceSearch(db_pool).search_and_record, _recorded(this, 3, before=noted)
        )
    written = await db_pool.fetchval("SELECT count(*) FROM case_events WHERE workflow_id = $1", this)
    assert written == 0
