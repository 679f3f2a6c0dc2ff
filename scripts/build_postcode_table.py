"""Build ``domain/data/postcode_areas.json.gz`` from Ordnance Survey Code-Point Open (2014).

Reads every unit postcode of Great Britain from ``../shared/data/codepoint-open-2014/``
(one gzipped CSV per postcode area, columns in ``Code-Point_Open_Column_Headers.csv``,
names of the GSS codes in ``Codelist.xls``) and writes the table the right-agency rules
load (``domain/postcodes.py`` reads it):

- every local authority of 2014 (district, unitary, metropolitan or London borough,
  Scottish council area, Welsh principal area) with its name and police force area;
- every postcode sector (``SG8 5``) with the authorities of its postcodes and how many
  postcodes each holds: a sector is decided only when all its postcodes agree
  (``THRESHOLD`` = 1.0, a documented choice: no postcode of the data is ever decided
  against it);
- for a sector whose postcodes do not all lie in one police force area, or which
  touches Cambridgeshire and spans two of its councils, every unit postcode of it and
  its authority: a unit not in the 2014 data in such a sector goes to a person;
- whole postcode areas outside the data: ``BT`` (the PSNI), ``JE``, ``GY``, ``IM``;
- a 1 km grid of Great Britain (British National Grid) holding, per square, the force
  and the authority of its postcodes (or "more than one"), for reports with a map
  position and no postcode.

Police force areas are not in the data: they follow counties and unitary authorities in
England and Wales (``FORCE_OF`` below, keyed by GSS code), London is the Metropolitan
Police but for the City (``E09000001``), and Scotland is Police Scotland. The licence
attribution is written into the table.

Run: ``.venv/bin/python scripts/build_postcode_table.py`` (needs ``xlrd``, in the dev
extra). It fails if a code in the data has no force, so a new edition cannot slip one.
"""

from __future__ import annotations

import argparse
import base64
import csv
import gzip
import json
import re
import sys
import zlib
from array import array
from collections import Counter, defaultdict
from pathlib import Path

from whn.shared_data import shared_data

ROOT = Path(__file__).resolve().parent.parent
_SHARED_DATA = shared_data()
SOURCE = _SHARED_DATA / "codepoint-open-2014"
TARGET = ROOT / "domain" / "data" / "postcode_areas.json.gz"
THRESHOLD = 1.0
CELL = 1000  # metres
WIDTH, HEIGHT = 700, 1250  # cells: eastings 0-700 km, northings 0-1,250 km
CAMBRIDGESHIRE = "cambridgeshire-constabulary"

# Counties (E10) and unitary authorities (E06) of 2014 -> police force area.
FORCE_OF: dict[str, str] = {
    "E10000002": "thames-valley-police",  # Buckinghamshire
    "E10000003": CAMBRIDGESHIRE,
    "E10000006": "cumbria-constabulary",
    "E10000007": "derbyshire-constabulary",
    "E10000008": "devon-and-cornwall-police",  # Devon
    "E10000009": "dorset-police",
    "E10000011": "sussex-police",  # East Sussex
    "E10000012": "essex-police",
    "E10000013": "gloucestershire-constabulary",
    "E10000014": "hampshire-and-isle-of-wight-constabulary",
    "E10000015": "hertfordshire-constabulary",
    "E10000016": "kent-police",
    "E10000017": "lancashire-constabulary",
    "E10000018": "leicestershire-police",
    "E10000019": "lincolnshire-police",
    "E10000020": "norfolk-constabulary",
    "E10000021": "northamptonshire-police",
    "E10000023": "north-yorkshire-police",
    "E10000024": "nottinghamshire-police",
    "E10000025": "thames-valley-police",  # Oxfordshire
    "E10000027": "avon-and-somerset-constabulary",  # Somerset
    "E10000028": "staffordshire-police",
    "E10000029": "suffolk-constabulary",
    "E10000030": "surrey-police",
    "E10000031": "warwickshire-police",
    "E10000032": "sussex-police",  # West Sussex
    "E10000034": "west-mercia-police",  # Worcestershire
    "E06000001": "cleveland-police",  # Hartlepool
    "E06000002": "cleveland-police",  # Middlesbrough
    "E06000003": "cleveland-police",  # Redcar and Cleveland
    "E06000004": "cleveland-police",  # Stockton-on-Tees
    "E06000005": "durham-constabulary",  # Darlington
    "E06000006": "cheshire-constabulary",  # Halton
    "E06000007": "cheshire-constabulary",  # Warrington
    "E06000008": "lancashire-constabulary",  # Blackburn with Darwen
    "E06000009": "lancashire-constabulary",  # Blackpool
    "E06000010": "humberside-police",  # Kingston upon Hull
    "E06000011": "humberside-police",  # East Riding of Yorkshire
    "E06000012": "humberside-police",  # North East Lincolnshire
    "E06000013": "humberside-police",  # North Lincolnshire
    "E06000014": "north-yorkshire-police",  # York
    "E06000015": "derbyshire-constabulary",  # Derby
    "E06000016": "leicestershire-police",  # Leicester
    "E06000017": "leicestershire-police",  # Rutland
    "E06000018": "nottinghamshire-police",  # Nottingham
    "E06000019": "west-mercia-police",  # Herefordshire
    "E06000020": "west-mercia-police",  # Telford and Wrekin
    "E06000021": "staffordshire-police",  # Stoke-on-Trent
    "E06000022": "avon-and-somerset-constabulary",  # Bath and North East Somerset
    "E06000023": "avon-and-somerset-constabulary",  # Bristol
    "E06000024": "avon-and-somerset-constabulary",  # North Somerset
    "E06000025": "avon-and-somerset-constabulary",  # South Gloucestershire
    "E06000026": "devon-and-cornwall-police",  # Plymouth
    "E06000027": "devon-and-cornwall-police",  # Torbay
    "E06000028": "dorset-police",  # Bournemouth
    "E06000029": "dorset-police",  # Poole
    "E06000030": "wiltshire-police",  # Swindon
    "E06000031": CAMBRIDGESHIRE,  # Peterborough
    "E06000032": "bedfordshire-police",  # Luton
    "E06000033": "essex-police",  # Southend-on-Sea
    "E06000034": "essex-police",  # Thurrock
    "E06000035": "kent-police",  # Medway
    "E06000036": "thames-valley-police",  # Bracknell Forest
    "E06000037": "thames-valley-police",  # West Berkshire
    "E06000038": "thames-valley-police",  # Reading
    "E06000039": "thames-valley-police",  # Slough
    "E06000040": "thames-valley-police",  # Windsor and Maidenhead
    "E06000041": "thames-valley-police",  # Wokingham
    "E06000042": "thames-valley-police",  # Milton Keynes
    "E06000043": "sussex-police",  # Brighton and Hove
    "E06000044": "hampshire-and-isle-of-wight-constabulary",  # Portsmouth
    "E06000045": "hampshire-and-isle-of-wight-constabulary",  # Southampton
    "E06000046": "hampshire-and-isle-of-wight-constabulary",  # Isle of Wight
    "E06000047": "durham-constabulary",  # County Durham
    "E06000049": "cheshire-constabulary",  # Cheshire East
    "E06000050": "cheshire-constabulary",  # Cheshire West and Chester
    "E06000051": "west-mercia-police",  # Shropshire
    "E06000052": "devon-and-cornwall-police",  # Cornwall
    "E06000053": "devon-and-cornwall-police",  # Isles of Scilly
    "E06000054": "wiltshire-police",  # Wiltshire
    "E06000055": "bedfordshire-police",  # Bedford
    "E06000056": "bedfordshire-police",  # Central Bedfordshire
    "E06000057": "northumbria-police",  # Northumberland
}
# Metropolitan boroughs (E08), by number -> force.
_METROPOLITAN = {
    "greater-manchester-police": range(1, 11),
    "merseyside-police": range(11, 16),
    "south-yorkshire-police": range(16, 20),
    "northumbria-police": [21, 22, 23, 24, 37],
    "west-midlands-police": range(25, 32),
    "west-yorkshire-police": range(32, 37),
}
# Welsh principal areas (W06), by number -> force.
_WALES = {
    "north-wales-police": range(1, 7),
    "dyfed-powys-police": [8, 9, 10, 23],
    "south-wales-police": [11, 12, 13, 14, 15, 16, 24],
    "gwent-police": [18, 19, 20, 21, 22],
}
for _force, _numbers in _METROPOLITAN.items():
    FORCE_OF.update({f"E08{n:06d}": _force for n in _numbers})
for _force, _numbers in _WALES.items():
    FORCE_OF.update({f"W06{n:06d}": _force for n in _numbers})

# Postcode areas the data does not cover, each wholly one force's.
WHOLE_AREAS = {
    "BT": "police-service-of-northern-ireland",
    "JE": "states-of-jersey-police",
    "GY": "guernsey-police",
    "IM": "isle-of-man-constabulary",
}

LICENCE = (
    "Derived from Ordnance Survey Code-Point Open, August 2014 (version 2014.3.0), under "
    "the OS OpenData licence (www.ordnancesurvey.co.uk/opendata/licence). Contains "
    "Ordnance Survey data (c) Crown copyright and database right 2014. Contains Royal "
    "Mail data (c) Royal Mail copyright and database right 2014. Contains National "
    "Statistics data (c) Crown copyright and database right 2014. Police force areas "
    "and the BT, JE, GY and IM areas are this project's mapping, not Ordnance Survey's."
)


def force_of(county: str, district: str) -> str:
    """The police force area of a postcode, from its county and district codes."""
    if district.startswith("S12"):
        return "police-scotland"
    if district == "E09000001":
        return "city-of-london-police"
    if district.startswith("E09"):
        return "metropolitan-police"
    key = county or district
    if key not in FORCE_OF:
        raise SystemExit(f"no police force area for county {county!r} district {district!r}")
    return FORCE_OF[key]


def code_names(codelist: Path, sheets: tuple[str, ...]) -> dict[str, str]:
    """GSS code -> plain name, from these sheets of ``Codelist.xls``."""
    import xlrd  # the dev extra; only this script needs it

    book = xlrd.open_workbook(str(codelist))
    names: dict[str, str] = {}
    for sheet in sheets:
        rows = book.sheet_by_name(sheet)
        for i in range(rows.nrows):
            name, code = (str(v).strip() for v in rows.row_values(i)[:2])
            if code:
                names[code] = _plain(name)
    return names


def _plain(name: str) -> str:
    """``Norwich District (B)`` -> ``Norwich``; ``Caerdydd - Cardiff`` -> ``Cardiff``."""
    name = re.sub(r"\s*\((B)\)$", "", name)
    name = re.sub(r" (District|London Boro|Ward|ED)$", "", name)
    if " - " in name:
        name = name.split(" - ", 1)[1]
    if name == "City and County of the City of London":
        return "City of London"
    return name[:1].upper() + name[1:]


def read_postcodes(source: Path) -> list[tuple[str, int, int, int, str, str, str]]:
    """(postcode, quality, easting, northing, county, district, ward) of every unit."""
    rows = []
    for path in sorted((source / "csv").glob("*.csv.gz")):
        with gzip.open(path, "rt", encoding="ascii", newline="") as handle:
            for pc, quality, east, north, _cy, _rha, _ha, county, district, ward in csv.reader(
                handle
            ):
                rows.append((pc, int(quality), int(east), int(north), county, district, ward))
    return rows


def sector_of(postcode: str) -> tuple[str, str]:
    """``"CB101AA"`` -> (``"CB10 1"``, ``"AA"``); ``"CB1 0AH"`` -> (``"CB1 0"``, ``"AH"``)."""
    outward, inward = postcode[:-3].strip(), postcode[-3:]
    return f"{outward} {inward[0]}", inward[1:]


def build(source: Path) -> tuple[dict[str, object], dict[str, int]]:
    names = code_names(source / "Codelist.xls", ("DIS", "UTA", "MTD", "LBO"))
    ward_names = code_names(source / "Codelist.xls", ("DIW", "LBW", "MTW", "UTW", "UTE"))
    rows = read_postcodes(source)

    authorities: dict[str, tuple[str, str]] = {}  # code -> (name, force)
    for _pc, _q, _e, _n, county, district, _w in rows:
        if district and district not in authorities:
            authorities[district] = (names.get(district, district), force_of(county, district))
    forces = sorted({force for _name, force in authorities.values()} | set(WHOLE_AREAS.values()))
    force_index = {slug: i for i, slug in enumerate(forces)}
    codes = sorted(authorities)
    index = {code: i for i, code in enumerate(codes)}

    by_sector: dict[str, Counter[int]] = defaultdict(Counter)
    units: dict[str, list[tuple[str, int]]] = defaultdict(list)
    wards: dict[str, Counter[str]] = defaultdict(Counter)
    force_cells: dict[int, set[int]] = defaultdict(set)
    authority_cells: dict[int, set[int]] = defaultdict(set)
    skipped = 0
    for pc, quality, east, north, _county, district, ward in rows:
        if not district:  # 92 postcodes without an authority (and without coordinates)
            skipped += 1
            continue
        sector, unit = sector_of(pc)
        authority = index[district]
        by_sector[sector][authority] += 1
        units[sector].append((unit, authority))
        wards[sector][ward_names.get(ward, "")] += 1
        if quality <= 40 and 0 <= east < WIDTH * CELL and 0 <= north < HEIGHT * CELL:
            cell = (north // CELL) * WIDTH + east // CELL
            authority_cells[cell].add(authority)
            force_cells[cell].add(force_index[authorities[district][1]])

    def force_at(authority: int) -> str:
        return authorities[codes[authority]][1]

    places = sorted({w.most_common(1)[0][0] for w in wards.values()} - {""})
    place_index = {name: i for i, name in enumerate(places)}
    sectors: dict[str, str] = {}
    unit_table: dict[str, str] = {}
    stats = Counter[str]()
    for sector in sorted(by_sector):
        split = by_sector[sector].most_common()
        total = sum(count for _a, count in split)
        place = place_index.get(wards[sector].most_common(1)[0][0])
        sectors[sector] = " ".join(f"{a}:{count}" for a, count in split) + (
            f" w{place}" if place is not None else ""
        )
        one_force = len({force_at(a) for a, _c in split}) == 1
        one_authority = split[0][1] / total >= THRESHOLD
        ours = any(force_at(a) == CAMBRIDGESHIRE for a, _c in split)
        stats["sectors"] += 1
        stats["postcodes"] += total
        if one_authority:
            continue
        if one_force and not ours:
            stats["force decided, council split"] += 1
            continue
        # Units in the order of the split, so each one's authority is a one-digit index.
        position = {a: i for i, (a, _c) in enumerate(split)}
        if len(position) > 10:
            raise SystemExit(f"{sector}: more than 10 authorities")
        unit_table[sector] = "".join(f"{unit}{position[a]}" for unit, a in sorted(units[sector]))
        stats["sectors with units"] += 1
        stats["units"] += total
    stats["skipped (no authority)"] = skipped

    def raster(cells: dict[int, set[int]], typecode: str, mixed: int) -> str:
        grid = array(typecode, bytes(WIDTH * HEIGHT * array(typecode).itemsize))
        for cell, values in cells.items():
            grid[cell] = next(iter(values)) + 1 if len(values) == 1 else mixed
        if sys.byteorder != "little":
            grid.byteswap()
        return base64.b64encode(zlib.compress(grid.tobytes(), 9)).decode("ascii")

    table: dict[str, object] = {
        "licence": LICENCE,
        "source": (
            f"OS Code-Point Open 2014.3.0: {len(rows):,} unit postcodes "
            f"({skipped} without an authority left out), built by "
            "scripts/build_postcode_table.py"
        ),
        "threshold": THRESHOLD,
        "forces": forces,
        "authorities": [[code, *authorities[code]] for code in codes],
        "places": places,
        "whole_areas": WHOLE_AREAS,
        "sectors": sectors,
        "units": unit_table,
        "grid": {
            "cell_m": CELL,
            "width": WIDTH,
            "height": HEIGHT,
            "clearance_cells": 2,
            "forces_u8": raster(force_cells, "B", 255),
            "authorities_u16le": raster(authority_cells, "H", 65535),
        },
    }
    return table, dict(stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=TARGET)
    args = parser.parse_args()
    table, stats = build(args.source)
    text = json.dumps(table, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    # gzip without a name or time in its header: the same data gives the same bytes
    args.out.write_bytes(gzip.compress((text + "\n").encode("utf-8"), 9, mtime=0))
    for key, value in stats.items():
        print(f"{key}: {value:,}")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
