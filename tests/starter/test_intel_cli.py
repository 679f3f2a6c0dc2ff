"""``whn-intel`` as a subprocess against the test PostgreSQL: exit codes and output.

Each test writes its own police.uk CSV with fresh Crime IDs around latitude -10,
longitude -10 (a place no other test uses), so the shared database never changes its
counts.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from domain.intel import POLICE_UK_HEADER
from whn import db
from whn.devstack.postgres import EmbeddedPostgres
from whn.devstack.temporal_server import free_port

PLACE = (-10.0, -10.0)


def whn_intel(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WHN_DATABASE_URL": dsn}
    return subprocess.run(
        [sys.executable, "-m", "starter.intel_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def write_csv(path: Path, *, bad: bool = True) -> list[str]:
    """Three burglaries at PLACE in June 2024 (fresh Crime IDs) and, if ``bad``, a bad row."""
    ids = [uuid.uuid4().hex * 2 for _ in range(3)]
    lon, lat = f"{PLACE[1]:.6f}", f"{PLACE[0]:.6f}"
    rows = [
        [cid, "2024-06", "Test", "Test", lon, lat, "On or near Elm Road", "E0", "T 1", "Burglary", "", ""]
        for cid in ids
    ]
    if bad:
        rows.append([uuid.uuid4().hex, "2024-6", "Test", "Test", lon, lat, "x", "", "", "Burglary", "", ""])
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(POLICE_UK_HEADER)
        writer.writerows(rows)
    return ids


def test_import_reports_counts_and_bad_rows(pg_dsn: str, tmp_path: Path) -> None:
    sample = tmp_path / "2024-06-test-street.csv"
    write_csv(sample)
    first = whn_intel(pg_dsn, "import", str(sample))
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "rows 4, imported 3, duplicates 0, bad 1"
    assert lines[1] == "bad rows (first 1):"
    assert "2024-06-test-street.csv:5: bad month '2024-6'" in lines[2]

    again = whn_intel(pg_dsn, "import", str(sample), "--json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert (result["rows"], result["imported"], result["skipped_duplicates"], result["bad_rows"]) == (
        4,
        0,
        3,
        1,
    )


def test_import_rejects_missing_and_foreign_files(pg_dsn: str, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    ids = write_csv(good, bad=False)
    missing = whn_intel(pg_dsn, "import", str(good), str(tmp_path / "nope.csv"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"whn-intel: cannot read {tmp_path / 'nope.csv'}: No such file or directory"

    foreign = tmp_path / "foreign.csv"
    foreign.write_text("Crime ID,Month,Where\n1,2024-06,here\n")
    rejected = whn_intel(pg_dsn, "import", str(foreign))
    assert rejected.returncode == 2
    assert len(rejected.stderr.strip().splitlines()) == 1
    assert "not a police.uk street-level CSV" in rejected.stderr

    # Nothing was imported from the good file named beside them.
    search = whn_intel(
        pg_dsn, "search", "--lat", "-10", "--lon", "-10", "--date", "2024-06-10",
        "--category", "burglary", "--radius-m", "100", "--limit", "100", "--json",
    )
    assert search.returncode == 0, search.stderr
    assert not {m["reference"] for m in json.loads(search.stdout)["top_matches"]} & set(ids)


def test_search_prints_summary_and_json(pg_dsn: str, tmp_path: Path) -> None:
    sample = tmp_path / "s.csv"
    ids = write_csv(sample, bad=False)
    assert whn_intel(pg_dsn, "import", str(sample)).returncode == 0
    args = ["search", "--lat", "-10", "--lon", "-10", "--date", "2024-06-10", "--category", "burglary"]

    as_json = whn_intel(pg_dsn, *args, "--radius-m", "50", "--limit", "100", "--json")
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert set(ids) <= {m["reference"] for m in result["top_matches"]}
    assert result["related_count"] == result["area_count"] >= 3
    assert result["radius_m"] == 50 and result["window_days"] == 90

    text = whn_intel(pg_dsn, *args, "--window-days", "10", "--limit", "100")
    assert text.returncode == 0, text.stderr
    assert "crimes recorded within 1,000 m in the 10 days either side" in text.stdout
    listed = [line for line in text.stdout.splitlines() if line.endswith(ids[0])]
    assert listed and listed[0].startswith("area     2024-06")
    assert "Burglary" in listed[0] and "related type" in listed[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--category", "burglar"], "--category: unknown category 'burglar'"),
        (["--date", "10/06/2024"], "--date: '10/06/2024' is not an ISO date"),
        (["--lat", "95"], "--lat: Input should be less than or equal to 90"),
        (["--radius-m", "0"], "--radius-m: Input should be greater than or equal to 1"),
    ],
)
def test_search_rejects_bad_options(pg_dsn: str, args: list[str], message: str) -> None:
    base = {"--lat": "-10", "--lon": "-10", "--date": "2024-06-10", "--category": "burglary"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = whn_intel(pg_dsn, "search", *[x for kv in base.items() for x in kv])
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"whn-intel: {message}")


def test_generate_adds_rows(pg_dsn: str) -> None:
    result = whn_intel(pg_dsn, "generate", "500", "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["generated"] == 500


def test_unreachable_postgres_is_one_line_and_exit_1(tmp_path: Path) -> None:
    sample = tmp_path / "s.csv"
    write_csv(sample)
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/whn"
    for args in (["import", str(sample)], ["generate", "10"]):
        result = whn_intel(dsn, *args)
        assert result.returncode == 1
        assert result.stderr.startswith("whn-intel: PostgreSQL could not be reached at 127.0.0.1:")
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


async def test_missing_tables_are_named(postgres_server: EmbeddedPostgres) -> None:
    bare = await db.ensure_database(postgres_server.dsn(), "whn_intel_unmigrated")
    result = whn_intel(bare, "generate", "10")
    assert result.returncode == 1
    assert "the intelligence tables are missing" in result.stderr
    assert "apply the migrations" in result.stderr
