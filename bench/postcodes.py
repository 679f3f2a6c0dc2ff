"""The postcode table's cost and coverage: size, load time, memory, lookup time, shares.

    python -m bench.postcodes            # all of Great Britain (about 1.7 million postcodes)
    python -m bench.postcodes --quick    # the CB, PE and SG areas only

Measures, in a fresh process, the packaged table ``domain/data/postcode_areas.json.gz``:
its size on disk, the time to load it and the memory it holds (tracemalloc), the time of
one postcode look-up and of one map-position look-up, and ``right_agency`` per report.
Then runs every unit postcode of Code-Point Open (``../shared/data/codepoint-open-2014``)
through the look-up, and through the table this project used before (the 91-district
``domain/data/postcodes.json`` of commit 849e18a, read with ``git show``), counting for
the CB/PE/SG areas and for Great Britain the share decided automatically, the share left
to a person, and the postcodes decided wrongly (against each postcode's county or
unitary authority: ours or not, and for the new table the force itself). Writes ``bench/results/postcodes.json``.
"""

from __future__ import annotations

import argparse
import csv
import gc
import gzip
import importlib.util
import json
import subprocess
import time
import tracemalloc
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

from whn.shared_data import shared_data

ROOT = Path(__file__).resolve().parent.parent
_SHARED_DATA = shared_data()
CODEPOINT = _SHARED_DATA / "codepoint-open-2014" / "csv"
RESULTS = ROOT / "bench" / "results" / "postcodes.json"
OLD_TABLE = "849e18a:domain/data/postcodes.json"
OURS = {"E10000003", "E06000031"}  # Cambridgeshire county, Peterborough


Row = tuple[str, bool, int, int, int, str | None]


def _force_of() -> Any:
    """The build script's county/UA -> force mapping (it is the table's definition)."""
    spec = importlib.util.spec_from_file_location(
        "build", ROOT / "scripts" / "build_postcode_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.force_of


def _rows(areas: list[str]) -> list[Row]:
    """(postcode, ours, quality, easting, northing, force or None without a council)."""
    force_of = _force_of()
    rows = []
    for area in areas:
        with gzip.open(CODEPOINT / f"{area}.csv.gz", "rt", newline="") as handle:
            for r in csv.reader(handle):
                force = force_of(r[7], r[8]) if r[8] else None
                rows.append((r[0], (r[7] or r[8]) in OURS, int(r[1]), int(r[2]), int(r[3]), force))
    return rows


def _old_lookup(table: dict[str, Any], postcode: str) -> str | None:
    """The old rule: sector, then district; ours/other decided, ambiguous/absent a person."""
    compact = postcode.replace(" ", "")
    outward, inward = compact[:-3], compact[-3:]
    area = table["sectors"].get(f"{outward} {inward[0]}") or table["districts"].get(outward)
    return None if area is None or area["status"] == "ambiguous" else area["status"]


def _shares(rows: list[Row], old: dict[str, Any]) -> dict[str, Any]:
    from domain.postcodes import load_postcode_data

    data = load_postcode_data()
    ours = "cambridgeshire-constabulary"
    new, before = Counter[str](), Counter[str]()
    for postcode, is_ours, _q, _e, _n, force in rows:
        place = data.lookup(postcode)
        if place is None or place.force is None:
            new["person"] += 1
        elif (place.force == ours) != is_ours or (force and place.force != force):
            new["wrong"] += 1  # ours or not, or (after) not the right other force
        else:
            new["automatic"] += 1
        status = _old_lookup(old, postcode)
        if status is None:
            before["person"] += 1
        elif (status == "ours") != is_ours:
            before["wrong"] += 1
        else:
            before["automatic"] += 1
    total = len(rows)

    def shares(counts: Counter[str]) -> dict[str, Any]:
        return {
            "postcodes": total,
            "automatic": counts["automatic"] + counts["wrong"],
            "person": counts["person"],
            "wrong": counts["wrong"],
            "automatic_share": round((counts["automatic"] + counts["wrong"]) / total, 4),
            "person_share": round(counts["person"] / total, 4),
        }

    return {"before": shares(before), "after": shares(new)}


def _positions(rows: list[Row]) -> dict[str, Any]:
    """Map positions at every well-placed postcode: decided, left to a person, wrong."""
    from domain.postcodes import load_postcode_data

    data = load_postcode_data()
    counts = Counter[str]()
    for _pc, _ours, quality, east, north, force in rows:
        if quality > 40 or force is None:
            continue
        place = data.at_grid(east, north)
        if place is None or place.force is None:
            counts["person"] += 1
        elif place.force != force:
            counts["wrong"] += 1
        else:
            counts["automatic"] += 1
    total = sum(counts.values())
    return {**counts, "automatic_share": round(counts["automatic"] / total, 4)}


def _timings() -> dict[str, Any]:
    raw = files("domain").joinpath("data", "postcode_areas.json.gz").read_bytes()
    from domain.postcodes import PostcodeData

    loads = []
    for _ in range(5):
        started = time.perf_counter()
        PostcodeData(json.loads(gzip.decompress(raw)))
        loads.append(time.perf_counter() - started)
    gc.collect()
    tracemalloc.start()
    from domain.postcodes import load_postcode_data

    data = load_postcode_data()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    from domain.agency import right_agency
    from domain.report import Report
    from tests.domain.conftest import build_report

    samples = ["CB1 2AD", "SG8 5FJ", "NR1 1QH", "EH1 1AD", "SG8 7AF", "BT1 5GS", "PE8 6JJ"]
    n = 20_000
    started = time.perf_counter()
    for i in range(n):
        data.lookup(samples[i % len(samples)])
    lookup_us = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for i in range(n):
        data.at_position(52.2 + (i % 50) * 0.01, 0.1 + (i % 30) * 0.01)
    position_us = (time.perf_counter() - started) / n * 1e6
    reports: list[Report] = [build_report({"incident.location.postcode": pc}) for pc in samples]
    started = time.perf_counter()
    for i in range(n):
        right_agency(reports[i % len(reports)])
    rule_us = (time.perf_counter() - started) / n * 1e6
    return {
        "file_bytes": len(raw),
        "json_bytes": len(gzip.decompress(raw)),
        "load_ms": round(min(loads) * 1000, 1),
        "memory_held_bytes": held,
        "memory_peak_bytes": peak,
        "postcode_lookup_us": round(lookup_us, 2),
        "position_lookup_us": round(position_us, 2),
        "right_agency_us": round(rule_us, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CB, PE and SG areas only")
    args = parser.parse_args()
    result: dict[str, Any] = {"table": _timings()}
    old = json.loads(subprocess.check_output(["git", "show", OLD_TABLE], cwd=ROOT))
    near = _rows(["cb", "pe", "sg"])
    result["cb_pe_sg"] = _shares(near, old)
    result["cb_pe_sg"]["map_positions"] = _positions(near)
    if not args.quick:
        areas = sorted(p.name.removesuffix(".csv.gz") for p in CODEPOINT.glob("*.csv.gz"))
        everywhere = _rows(areas)
        result["great_britain"] = _shares(everywhere, old)
        result["great_britain"]["map_positions"] = _positions(everywhere)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
