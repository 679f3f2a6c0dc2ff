"""domain.assessment: solvability and vulnerability as decision support."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from domain.assessment import (
    Assessment,
    AssessmentTable,
    SolvabilityFactors,
    assess,
    load_assessment_table,
)
from domain.report import Report

MakeReport = Callable[..., Report]

ALL_EVIDENCE = {"cctv": True, "forensic_opportunity": True, "property_serial_numbers": True}

# (id, changes, factors present, score, band)
SOLVABILITY: list[tuple[str, dict[str, Any], list[str], int, str]] = [
    ("nothing", {}, [], 0, "low"),
    ("one witness", {"incident.witnesses": 1}, ["witnesses"], 15, "low"),
    ("named suspect", {"incident.suspect": {"named": True}}, ["suspect"], 30, "medium"),
    ("suspect's name only", {"incident.suspect": {"name": "Dan"}}, ["suspect"], 30, "medium"),
    (
        "described suspect",
        {"incident.suspect": {"description": "tall, red coat"}},
        ["suspect"],
        30,
        "medium",
    ),
    ("empty suspect", {"incident.suspect": {}}, [], 0, "low"),
    ("blank description", {"incident.suspect": {"description": ""}}, [], 0, "low"),
    (
        "vehicle registration only",
        {"incident.suspect": {"vehicle_registration": "AB12 CDE"}},
        ["vehicle_registration"],
        10,
        "low",
    ),
    ("CCTV", {"incident.evidence": {"cctv": True}}, ["cctv"], 20, "low"),
    (
        "forensics",
        {"incident.evidence": {"forensic_opportunity": True}},
        ["forensic_opportunity"],
        15,
        "low",
    ),
    (
        "serial numbers",
        {"incident.evidence": {"property_serial_numbers": True}},
        ["property_serial_numbers"],
        10,
        "low",
    ),
    ("empty evidence", {"incident.evidence": {}}, [], 0, "low"),
    (
        "CCTV and a witness: medium threshold",
        {"incident.evidence": {"cctv": True}, "incident.witnesses": 1},
        ["witnesses", "cctv"],
        35,
        "medium",
    ),
    (
        "suspect and CCTV: high threshold",
        {"incident.suspect": {"named": True}, "incident.evidence": {"cctv": True}},
        ["suspect", "cctv"],
        50,
        "high",
    ),
    (
        "the base report with its contract evidence",
        {
            "incident.witnesses": 1,
            "incident.evidence": {"cctv": True, "property_serial_numbers": True},
        },
        ["witnesses", "cctv", "property_serial_numbers"],
        45,
        "medium",
    ),
    (
        "everything",
        {
            "incident.witnesses": 12,
            "incident.evidence": ALL_EVIDENCE,
            "incident.suspect": {
                "named": True,
                "description": "neighbour",
                "vehicle_registration": "AB12CDE",
            },
        },
        [
            "suspect",
            "witnesses",
            "cctv",
            "forensic_opportunity",
            "property_serial_numbers",
            "vehicle_registration",
        ],
        100,
        "high",
    ),
]


@pytest.mark.parametrize(
    ("changes", "present", "score", "band"),
    [pytest.param(c, p, s, b, id=name) for name, c, p, s, b in SOLVABILITY],
)
def test_solvability(
    make_report: MakeReport, changes: dict[str, Any], present: list[str], score: int, band: str
) -> None:
    result = assess(make_report(changes))
    assert result.solvability.present() == present
    assert result.solvability_score == score
    assert result.solvability_band == band


VULNERABILITY: list[tuple[str, dict[str, Any], list[str], bool]] = [
    ("none", {}, [], False),
    ("vulnerable", {"reporter.vulnerable": True}, ["vulnerable"], True),
    ("under 18", {"reporter.under_18": True}, ["under-18"], True),
    ("sexual offence", {"incident.category": "sexual-offence"}, ["sexual-offence"], True),
    ("domestic abuse flag", {"incident.flags": {"domestic_abuse": True}}, ["domestic-abuse"], True),
    ("hate crime", {"incident.flags": {"hate_crime": True}}, ["hate-crime"], True),
    ("injuries", {"incident.injuries": True}, ["injuries"], False),
    ("threat to life", {"incident.threat_to_life": True}, ["threat-to-life"], False),
    ("kidnap in the text", {"incident.description": "He was kidnapped"}, ["kidnap"], True),
    (
        "several",
        {
            "incident.category": "domestic-abuse",
            "reporter.vulnerable": True,
            "incident.injuries": True,
            "incident.threat_to_life": True,
        },
        ["domestic-abuse", "vulnerable", "threat-to-life", "injuries"],
        True,
    ),
]


@pytest.mark.parametrize(
    ("changes", "factors", "enhanced"),
    [pytest.param(c, f, e, id=name) for name, c, f, e in VULNERABILITY],
)
def test_vulnerability(
    make_report: MakeReport, changes: dict[str, Any], factors: list[str], enhanced: bool
) -> None:
    result = assess(make_report(changes))
    assert result.vulnerability_factors == factors
    assert result.enhanced_rights is enhanced


@pytest.mark.parametrize(
    ("changes", "summary"),
    [
        ({}, "Solvability low (0/100): no solvability factors. No vulnerability shown."),
        (
            {"incident.witnesses": 2, "incident.evidence": {"cctv": True}},
            "Solvability medium (35/100): witnesses (2), CCTV. No vulnerability shown.",
        ),
        (
            {"incident.suspect": {"description": "tall"}, "reporter.under_18": True},
            "Solvability medium (30/100): suspect named or described. "
            "Vulnerability: under-18. Enhanced rights apply.",
        ),
        (
            {"incident.injuries": True},
            "Solvability low (0/100): no solvability factors. Vulnerability: injuries.",
        ),
    ],
)
def test_summary(make_report: MakeReport, changes: dict[str, Any], summary: str) -> None:
    assert assess(make_report(changes)).summary == summary


def test_weights_and_bands_come_from_the_table(make_report: MakeReport) -> None:
    table = AssessmentTable.model_validate(
        {
            "weights": {
                "suspect": 1,
                "witnesses": 1,
                "cctv": 1,
                "forensic_opportunity": 1,
                "property_serial_numbers": 0,
                "vehicle_registration": 0,
            },
            "bands": {"high": 75, "medium": 50},
        }
    )
    report = make_report({"incident.witnesses": 1, "incident.evidence": ALL_EVIDENCE})
    result = assess(report, table=table)
    assert result.solvability_score == 75
    assert result.solvability_band == "high"
    only_serials = make_report({"incident.evidence": {"property_serial_numbers": True}})
    assert assess(only_serials, table=table).solvability_score == 0


def test_packaged_weights_sum_to_100() -> None:
    assert sum(load_assessment_table().weights.values()) == 100


@pytest.mark.parametrize(
    "bad",
    [
        {"weights": {"suspect": 100}},
        {"weights": dict.fromkeys(SolvabilityFactors.model_fields, 0)},
        {"weights": {**dict.fromkeys(SolvabilityFactors.model_fields, 10), "suspect": -5}},
        {"weights": {**dict.fromkeys(SolvabilityFactors.model_fields, 10), "luck": 5}},
        {"bands": {"high": 20, "medium": 40}},
        {"bands": {"high": 120, "medium": 40}},
    ],
)
def test_invalid_tables_are_refused(bad: dict[str, Any]) -> None:
    data = load_assessment_table().model_dump(mode="json") | bad
    with pytest.raises(ValidationError):
        AssessmentTable.model_validate(data)


def test_assessment_is_frozen_and_serialisable(make_report: MakeReport) -> None:
    result = assess(make_report({"incident.witnesses": 1}))
    dumped = result.model_dump(mode="json")
    assert dumped["solvability"]["witnesses"] is True
    assert Assessment.model_validate(dumped) == result
    with pytest.raises(ValidationError):
        result.summary = "closed"  # type: ignore[misc]
