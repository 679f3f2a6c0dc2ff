"""domain.agency: national services, railway, force areas, councils, manual checks."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from domain.agency import (
    DISTRICTS,
    AgencyDecision,
    AgencyTable,
    PostcodeArea,
    PostcodeTable,
    find_agency,
    inside_cambridgeshire,
    load_agency_table,
    load_postcode_table,
    lookup_postcode,
    right_agency,
)
from domain.report import Report

MakeReport = Callable[..., Report]
DROP = "__drop__"  # removes a key in make_report (see conftest.py)
NO_COORDS = {"incident.location.latitude": DROP, "incident.location.longitude": DROP}


def at(postcode: str, category: str = "burglary", *, railway: bool = False) -> dict[str, Any]:
    return {
        "incident.location.postcode": postcode,
        "incident.category": category,
        "incident.location.on_railway": railway,
        **NO_COORDS,
    }


def point(lat: float, lon: float, category: str = "burglary") -> dict[str, Any]:
    return {
        "incident.location.postcode": DROP,
        "incident.location.latitude": lat,
        "incident.location.longitude": lon,
        "incident.category": category,
    }


# (id, changes, kind, agency slug, district)
CASES: list[tuple[str, dict[str, Any], str, str | None, str | None]] = [
    ("base report: Mill Road", {}, "ours", None, "cambridge"),
    ("CB2", at("CB2 0QQ"), "ours", None, "cambridge"),
    ("postcode without space", at("CB12AD"), "ours", None, "cambridge"),
    ("Ely", at("CB7 4DL"), "ours", None, "east-cambs"),
    ("Sawston", at("CB22 3HJ"), "ours", None, "south-cambs"),
    ("Cambourne", at("CB23 6EA"), "ours", None, "south-cambs"),
    ("Peterborough", at("PE1 1HF"), "ours", None, "peterborough"),
    ("March", at("PE15 8NQ"), "ours", None, "fenland"),
    ("Wisbech", at("PE13 1AA"), "ours", None, "fenland"),
    ("St Neots", at("PE19 1AA"), "ours", None, "huntingdonshire"),
    ("Huntingdon", at("PE29 3TN"), "ours", None, "huntingdonshire"),
    ("CB25 spans two districts", at("CB25 9AA"), "ours", None, None),
    ("PE7 spans three districts", at("PE7 1AA"), "ours", None, None),
    # national services, wherever it happened
    ("fraud", {"incident.category": "fraud"}, "redirect", "report-fraud", None),
    ("cyber", {"incident.category": "cyber"}, "redirect", "report-fraud", None),
    ("fraud in Suffolk", at("CB9 8AA", "fraud"), "redirect", "report-fraud", None),
    ("fraud with no location", at("CB8 0AA", "fraud"), "redirect", "report-fraud", None),
    ("animal welfare", {"incident.category": "animal-welfare"}, "redirect", "rspca", None),
    ("animal welfare, ambiguous area", at("PE8 4AA", "animal-welfare"), "redirect", "rspca", None),
    # railway
    (
        "on the railway",
        {"incident.location.on_railway": True},
        "redirect",
        "british-transport-police",
        None,
    ),
    (
        "railway in Essex",
        at("CB11 3AA", railway=True),
        "redirect",
        "british-transport-police",
        None,
    ),
    (
        "railway, ambiguous area",
        at("CB8 7AA", railway=True),
        "redirect",
        "british-transport-police",
        None,
    ),
    (
        "fraud on a train is still fraud",
        {"incident.category": "fraud", "incident.location.on_railway": True},
        "redirect",
        "report-fraud",
        None,
    ),
    # other forces
    ("Haverhill", at("CB9 7AA"), "redirect", "suffolk-constabulary", None),
    ("Saffron Walden CB10", at("CB10 1AA"), "redirect", "essex-police", None),
    ("Saffron Walden CB11", at("CB11 4AA"), "redirect", "essex-police", None),
    ("Bourne", at("PE10 9AA"), "redirect", "lincolnshire-police", None),
    ("Spalding", at("PE11 1AA"), "redirect", "lincolnshire-police", None),
    ("Holbeach", at("PE12 7AA"), "redirect", "lincolnshire-police", None),
    ("Boston", at("PE21 8AA"), "redirect", "lincolnshire-police", None),
    ("King's Lynn", at("PE30 1AA"), "redirect", "norfolk-constabulary", None),
    ("Downham Market", at("PE38 9AA"), "redirect", "norfolk-constabulary", None),
    ("Stevenage", at("SG1 1AA"), "redirect", "hertfordshire-constabulary", None),
    ("Biggleswade", at("SG18 0AA"), "redirect", "bedfordshire-police", None),
    ("Bedford", at("MK40 1AA"), "redirect", "bedfordshire-police", None),
    ("Luton", at("LU1 2AA"), "redirect", "bedfordshire-police", None),
    ("Bury St Edmunds", at("IP33 1AA"), "redirect", "suffolk-constabulary", None),
    # never redirect on a guess
    ("Newmarket CB8", at("CB8 8AA"), "manual_area_check", None, None),
    ("Oundle PE8", at("PE8 4AA"), "manual_area_check", None, None),
    ("Stamford PE9", at("PE9 2AA"), "manual_area_check", None, None),
    ("Deepings PE6", at("PE6 8AA"), "manual_area_check", None, None),
    ("Outwell PE14", at("PE14 8AA"), "manual_area_check", None, None),
    ("Royston SG8", at("SG8 7AA"), "manual_area_check", None, None),
    ("Sandy SG19", at("SG19 1AA"), "manual_area_check", None, None),
    ("Brandon IP27", at("IP27 0AA"), "manual_area_check", None, None),
    ("Westminster: not in the table", at("SW1A 1AA"), "manual_area_check", None, None),
    ("retired district PE17", at("PE17 1AA"), "manual_area_check", None, None),
    ("CB99 does not exist", at("CB99 9ZZ"), "manual_area_check", None, None),
    # councils
    (
        "noise, Cambridge",
        {"incident.category": "noise"},
        "redirect",
        "cambridge-city-council",
        "cambridge",
    ),
    (
        "fly-tipping, South Cambs",
        at("CB24 4AA", "fly-tipping"),
        "redirect",
        "south-cambridgeshire-district-council",
        "south-cambs",
    ),
    (
        "abandoned vehicle, East Cambs",
        at("CB6 1AA", "abandoned-vehicle"),
        "redirect",
        "east-cambridgeshire-district-council",
        "east-cambs",
    ),
    ("noise, Fenland", at("PE16 6AA", "noise"), "redirect", "fenland-district-council", "fenland"),
    (
        "noise, Huntingdonshire",
        at("PE27 5AA", "noise"),
        "redirect",
        "huntingdonshire-district-council",
        "huntingdonshire",
    ),
    (
        "fly-tipping, Peterborough",
        at("PE4 6AA", "fly-tipping"),
        "redirect",
        "peterborough-city-council",
        "peterborough",
    ),
    ("noise, district unknown", at("CB25 9AA", "noise"), "manual_area_check", None, None),
    ("noise, ambiguous area", at("CB8 8AA", "noise"), "manual_area_check", None, None),
    ("noise, another force's area", at("CB9 7AA", "noise"), "manual_area_check", None, None),
    (
        "anti-social behaviour stays ours",
        at("CB4 1AA", "anti-social-behaviour"),
        "ours",
        None,
        "cambridge",
    ),
    # no postcode: the map position decides only when clearly inside
    ("map: Mill Road", point(52.1999, 0.1381), "ours", None, None),
    ("map: Ely", point(52.3990, 0.2620), "ours", None, None),
    ("map: Huntingdon", point(52.3310, -0.1820), "ours", None, None),
    ("map: Peterborough", point(52.5730, -0.2430), "ours", None, None),
    ("map: March", point(52.5510, 0.0880), "ours", None, None),
    ("map: Newmarket", point(52.2450, 0.4050), "manual_area_check", None, None),
    ("map: Haverhill", point(52.0800, 0.4400), "manual_area_check", None, None),
    ("map: Royston", point(52.0480, -0.0200), "manual_area_check", None, None),
    ("map: Stamford", point(52.6530, -0.4800), "manual_area_check", None, None),
    ("map: Wisbech, near the border", point(52.6650, 0.1600), "manual_area_check", None, None),
    ("map: London", point(51.5072, -0.1276), "manual_area_check", None, None),
    (
        "map: noise inside, council unknown",
        point(52.1999, 0.1381, "noise"),
        "manual_area_check",
        None,
        None,
    ),
    (
        "no postcode, no map position",
        {"incident.location.postcode": DROP, **NO_COORDS},
        "manual_area_check",
        None,
        None,
    ),
    (
        "no postcode, latitude only",
        {"incident.location.postcode": DROP, "incident.location.longitude": DROP},
        "manual_area_check",
        None,
        None,
    ),
    (
        "postcode beats the map position",
        {"incident.location.postcode": "CB9 7AA"},
        "redirect",
        "suffolk-constabulary",
        None,
    ),
]


@pytest.mark.parametrize(
    ("changes", "kind", "agency", "district"),
    [pytest.param(c, k, a, d, id=name) for name, c, k, a, d in CASES],
)
def test_right_agency(
    make_report: MakeReport,
    changes: dict[str, Any],
    kind: str,
    agency: str | None,
    district: str | None,
) -> None:
    decision = right_agency(make_report(changes))
    assert decision.kind == kind
    assert (decision.agency.slug if decision.agency else None) == agency
    assert decision.district == district
    assert decision.reason.endswith(".")


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"incident.category": "fraud"}, "Report Fraud"),
        ({"incident.category": "fraud"}, "4 December 2025"),
        ({"incident.location.on_railway": True}, "British Transport Police"),
        (at("CB9 7AA"), "Suffolk Constabulary area"),
        (at("CB9 7AA"), "Haverhill"),
        (at("CB8 8AA"), "more than one force"),
        (at("CB8 8AA"), "Newmarket"),
        (at("SW1A 1AA"), "SW1A"),
        (at("CB25 9AA", "noise"), "district is unknown"),
        (at("CB9 7AA", "noise"), "find the council"),
        ({}, "CB1, Cambridge"),
        ({"incident.category": "noise"}, "local council"),
        (point(52.2, 0.13), "map position"),
    ],
)
def test_reasons_say_why(make_report: MakeReport, changes: dict[str, Any], fragment: str) -> None:
    assert fragment in right_agency(make_report(changes)).reason


def test_redirect_carries_contact_details(make_report: MakeReport) -> None:
    decision = right_agency(make_report({"incident.category": "fraud"}))
    assert decision.agency is not None
    assert decision.agency.name == "Report Fraud"
    assert decision.agency.contact_phone == "0300 123 2040"
    assert "reportfraud.police.uk" in decision.agency.contact_url


@pytest.mark.parametrize(
    ("postcode", "outward", "status"),
    [
        ("CB1 2AD", "CB1", "ours"),
        ("cb1 2ad", "CB1", "ours"),
        ("CB12AD", "CB1", "ours"),
        ("  CB10   1AA ", "CB10", "other"),
        ("PE9 2AA", "PE9", "ambiguous"),
        ("SW1A 1AA", "SW1A", None),
        ("CB1", "CB1", None),
        ("", "", None),
    ],
)
def test_lookup_postcode(postcode: str, outward: str, status: str | None) -> None:
    found, area = lookup_postcode(postcode)
    assert found == outward
    assert (area.status if area else None) == status


def test_sectors_override_districts(make_report: MakeReport) -> None:
    base = load_postcode_table()
    table = base.model_copy(
        update={"sectors": {"PE9 3": PostcodeArea(status="ours", district="peterborough")}}
    )
    barnack = make_report(at("PE9 3AA"))
    stamford = make_report(at("PE9 2AA"))
    assert right_agency(barnack, postcodes=table).district == "peterborough"
    assert right_agency(stamford, postcodes=table).kind == "manual_area_check"
    assert right_agency(barnack).kind == "manual_area_check"


def test_sector_keys_are_normalised() -> None:
    table = PostcodeTable.model_validate(
        {
            "districts": {"cb1": {"status": "ours", "district": "cambridge"}},
            "sectors": {"pe9  3": {"status": "ours", "district": "peterborough"}},
            "inner_polygon": [[0, 0], [1, 0], [0, 1]],
        }
    )
    assert set(table.sectors) == {"PE9 3"}
    assert set(table.districts) == {"CB1"}


def test_a_force_without_contact_details_goes_to_a_person(make_report: MakeReport) -> None:
    table = load_postcode_table().model_copy(
        update={"districts": {"LE15": PostcodeArea(status="other", force="leicestershire-police")}}
    )
    decision = right_agency(make_report(at("LE15 6AA")), postcodes=table)
    assert decision.kind == "manual_area_check"
    assert "leicestershire-police" in decision.reason


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (52.2053, 0.1218, True),  # Cambridge centre
        (52.4, 0.26, True),  # Ely
        (52.33, -0.18, True),  # Huntingdon
        (52.2450, 0.4050, False),  # Newmarket
        (52.0800, 0.4400, False),  # Haverhill
        (52.65, -0.48, False),  # Stamford
        (52.7540, 0.3950, False),  # King's Lynn
        (51.5072, -0.1276, False),  # London
        (0.0, 0.0, False),
    ],
)
def test_inside_cambridgeshire(lat: float, lon: float, inside: bool) -> None:
    assert inside_cambridgeshire(lat, lon) is inside


def test_inside_uses_the_given_polygon() -> None:
    square = load_postcode_table().model_copy(
        update={"inner_polygon": [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]}
    )
    assert inside_cambridgeshire(0.5, 0.5, table=square)
    assert not inside_cambridgeshire(52.2, 0.12, table=square)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("rspca", "rspca"),
        ("RSPCA", "rspca"),
        ("Report Fraud", "report-fraud"),
        ("report  fraud", "report-fraud"),
        ("british-transport-police", "british-transport-police"),
        ("Suffolk Constabulary", "suffolk-constabulary"),
        ("Action Fraud", None),
        ("", None),
    ],
)
def test_find_agency(name: str, slug: str | None) -> None:
    found = find_agency(name)
    assert (found.slug if found else None) == slug


def test_packaged_tables_fit_together() -> None:
    agencies = load_agency_table()
    postcodes = load_postcode_table()
    slugs = {agency.slug for agency in agencies.agencies}
    for outward, area in {**postcodes.districts, **postcodes.sectors}.items():
        assert re.fullmatch(r"[A-Z]{1,2}[0-9][0-9A-Z]?( [0-9])?", outward), outward
        if area.force is not None:
            assert area.force in slugs, outward
        if area.status == "ambiguous":
            assert area.note, f"{outward}: say which places straddle"
    assert set(agencies.councils) == set(DISTRICTS)
    for agency in agencies.agencies:
        assert agency.contact_phone, agency.slug
        assert agency.how_to_report.endswith("."), agency.slug


@pytest.mark.parametrize(
    ("outward", "district"),
    [(f"CB{n}", "cambridge") for n in range(1, 6)]
    + [(f"PE{n}", "peterborough") for n in range(1, 6)]
    + [("CB6", "east-cambs"), ("CB7", "east-cambs"), ("PE15", "fenland"), ("PE16", "fenland")]
    + [(f"CB{n}", "south-cambs") for n in range(21, 25)]
    + [(f"PE{n}", "huntingdonshire") for n in (19, 26, 27, 28, 29)],
)
def test_our_districts(outward: str, district: str) -> None:
    area = load_postcode_table().districts[outward]
    assert (area.status, area.district) == ("ours", district)


@pytest.mark.parametrize(
    "bad",
    [
        {"agencies": []},
        {"councils": {"cambridge": "cambridge-city-council"}},
        {"railway": {"agency": "nobody", "reason": "x"}},
        {"extra": 1},
    ],
)
def test_invalid_agency_tables_are_refused(bad: dict[str, Any]) -> None:
    data = load_agency_table().model_dump(mode="json") | bad
    with pytest.raises(ValidationError):
        AgencyTable.model_validate(data)


def test_duplicate_agency_slugs_are_refused() -> None:
    data = load_agency_table().model_dump(mode="json")
    data["agencies"].append(data["agencies"][0])
    with pytest.raises(ValidationError, match="unique"):
        AgencyTable.model_validate(data)


@pytest.mark.parametrize(
    "area",
    [
        {"status": "other"},
        {"status": "ours", "force": "essex-police"},
        {"status": "ambiguous", "district": "cambridge"},
        {"status": "other", "force": "essex-police", "district": "cambridge"},
        {"status": "ours", "district": "ely"},
        {"status": "maybe"},
    ],
)
def test_invalid_postcode_areas_are_refused(area: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PostcodeArea.model_validate(area)


@pytest.mark.parametrize(
    ("kind", "with_agency"),
    [("redirect", False), ("ours", True), ("manual_area_check", True)],
)
def test_decision_agency_only_for_redirect(kind: str, with_agency: bool) -> None:
    agency = load_agency_table().agencies[0] if with_agency else None
    with pytest.raises(ValidationError):
        AgencyDecision.model_validate(
            {"kind": kind, "agency": agency, "reason": "x", "district": None}
        )
