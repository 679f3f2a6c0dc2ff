"""domain.postcodes and the rules over real data: every unit postcode of CB, PE and SG.

Reads Ordnance Survey Code-Point Open from ``../shared/data/codepoint-open-2014/`` (the
project's real data, beside the checkout; see its README) at test time, and holds each
postcode's own county and district codes against what the rules decide.
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from domain.agency import right_agency
from domain.postcodes import load_postcode_data, osgb36_to_bng, wgs84_to_bng
from domain.report import Report
from tests.domain.conftest import BASE
from whn.shared_data import shared_data

ROOT = Path(__file__).resolve().parents[2]
_SHARED_DATA = shared_data()
CODEPOINT = _SHARED_DATA / "codepoint-open-2014"

# The police force areas of the counties and unitary authorities of these three postcode
# areas, written out here independently of the build script's table.
FORCE_OF_COUNTY_OR_UA = {
    "E10000003": "cambridgeshire-constabulary",  # Cambridgeshire
    "E06000031": "cambridgeshire-constabulary",  # Peterborough
    "E10000012": "essex-police",
    "E10000015": "hertfordshire-constabulary",
    "E10000019": "lincolnshire-police",
    "E10000020": "norfolk-constabulary",
    "E10000021": "northamptonshire-police",
    "E10000029": "suffolk-constabulary",
    "E06000017": "leicestershire-police",  # Rutland
    "E06000055": "bedfordshire-police",  # Bedford
    "E06000056": "bedfordshire-police",  # Central Bedfordshire
}
OUR_DISTRICTS = {
    "E07000008": "cambridge",
    "E07000009": "east-cambs",
    "E07000010": "fenland",
    "E07000011": "huntingdonshire",
    "E07000012": "south-cambs",
    "E06000031": "peterborough",
}
Row = tuple[str, int, int, int, str, str]


def _read(area: str) -> list[Row]:
    path = CODEPOINT / "csv" / f"{area}.csv.gz"
    with gzip.open(path, "rt", encoding="ascii", newline="") as handle:
        return [(r[0], int(r[1]), int(r[2]), int(r[3]), r[7], r[8]) for r in csv.reader(handle)]


@pytest.fixture(scope="module")
def units() -> list[Row]:
    rows = [row for area in ("cb", "pe", "sg") for row in _read(area)]
    assert len(rows) == 47_602  # the metadata.txt counts: CB 10,250, PE 25,730, SG 11,622
    return rows


def test_every_cb_pe_sg_postcode_is_decided_rightly(units: list[Row]) -> None:
    """No Cambridgeshire postcode redirected, no other force's kept, none to a person."""
    base = dict(
        BASE, incident=dict(BASE["incident"], location={"address": "x", "postcode": "CB1 2AD"})
    )
    report = Report.model_validate_json(json.dumps(base))
    location = report.incident.location
    outcome: Counter[str] = Counter()
    wrong: list[str] = []
    started = time.perf_counter()
    for postcode, _q, _e, _n, county, district in units:
        here = location.model_copy(update={"postcode": postcode})
        incident = report.incident.model_copy(update={"location": here})
        decision = right_agency(report.model_copy(update={"incident": incident}))
        expected = FORCE_OF_COUNTY_OR_UA[county or district]
        outcome[decision.kind] += 1
        if decision.kind == "ours":
            if expected != "cambridgeshire-constabulary" or (
                decision.district != OUR_DISTRICTS[district]
            ):
                wrong.append(f"{postcode}: ours/{decision.district}, is {county} {district}")
        elif decision.kind == "redirect":
            assert decision.agency is not None
            if decision.agency.slug != expected:
                wrong.append(f"{postcode}: to {decision.agency.slug}, is {expected}")
    elapsed = time.perf_counter() - started
    assert wrong == []
    # every postcode of the 2014 data is decided; a person sees only what it lacks
    assert outcome["manual_area_check"] == 0, outcome
    assert outcome["ours"] + outcome["redirect"] == 47_602
    print(f"\n47,602 CB/PE/SG postcodes: {dict(outcome)} in {elapsed:.1f} s")


def test_map_positions_never_contradict_the_postcodes_there(units: list[Row]) -> None:
    """At every well-placed CB/PE/SG postcode, a position decision is that postcode's."""
    data = load_postcode_data()
    decided = total = 0
    for postcode, quality, east, north, county, district in units:
        if quality > 40:  # no or estimated coordinates
            continue
        total += 1
        place = data.at_grid(east, north)
        assert place is not None
        if place.force is None:
            continue
        decided += 1
        assert place.force == FORCE_OF_COUNTY_OR_UA[county or district], postcode
        if place.authority is not None:
            assert place.authority.code == district, postcode
    assert 0.5 < decided / total < 1.0  # most decided, and some left near the boundaries


@pytest.mark.parametrize(
    ("latitude", "longitude", "force"),
    [
        (52.2053, 0.1218, "cambridgeshire-constabulary"),  # Cambridge, Market Square
        (52.6309, 1.2974, "norfolk-constabulary"),  # Norwich
        (55.9533, -3.1883, "police-scotland"),  # Edinburgh
        (51.4545, -2.5879, "avon-and-somerset-constabulary"),  # Bristol
        (52.0480, -0.0200, None),  # Royston, on the Cambridgeshire boundary
        (53.0, 2.5, None),  # the North Sea
    ],
)
def test_map_positions(latitude: float, longitude: float, force: str | None) -> None:
    place = load_postcode_data().at_position(latitude, longitude)
    assert (place.force if place else None) == force


def test_national_grid_projection_matches_ordnance_surveys_worked_example() -> None:
    """OS, "A guide to coordinate systems in Great Britain", annex C: 52°39'27.2531"N,
    1°43'4.5177"E (OSGB36) is E 651409.903, N 313177.270."""
    east, north = osgb36_to_bng(52 + 39 / 60 + 27.2531 / 3600, 1 + 43 / 60 + 4.5177 / 3600)
    assert abs(east - 651409.903) < 0.01 and abs(north - 313177.270) < 0.01


@pytest.mark.parametrize(
    ("latitude", "longitude", "east", "north"),
    [
        (51.477928, -0.001545, 538879.645, 177334.454),  # Greenwich
        (52.20447, 0.11651, 544729.657, 258360.083),  # Cambridge
        (55.9533, -3.1883, 325897.218, 674001.202),  # Edinburgh
        (57.0, -6.0, 157180.488, 796987.706),  # Skye
        (50.1, -5.5, 149802.183, 28080.323),  # Penzance
    ],
)
def test_wgs84_to_national_grid(
    latitude: float, longitude: float, east: float, north: float
) -> None:
    """Against PROJ's EPSG:4326 -> EPSG:27700 (the same Helmert shift, computed once with
    pyproj 3 and written here): the datum shift (about 100 m) is applied, to the millimetre."""
    got_east, got_north = wgs84_to_bng(latitude, longitude)
    assert abs(got_east - east) < 0.01 and abs(got_north - north) < 0.01


def test_the_table_keeps_its_licence() -> None:
    data = load_postcode_data()
    for words in ("Ordnance Survey", "Royal Mail", "National Statistics", "Crown copyright"):
        assert words in data.licence
    assert data.threshold == 1.0


def test_the_committed_table_is_what_the_script_builds(tmp_path: Path) -> None:
    """The table is derived, not edited: rebuilding it from the data gives the same bytes."""
    pytest.importorskip("xlrd")
    out = tmp_path / "postcode_areas.json.gz"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_postcode_table.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    committed = ROOT / "domain" / "data" / "postcode_areas.json.gz"
    assert out.read_bytes() == committed.read_bytes()
