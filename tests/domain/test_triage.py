"""domain.triage: grades, emergency indicators and enhanced rights."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.case import Priority
from domain.report import Report
from domain.triage import (
    KeywordGroup,
    Triage,
    TriageTable,
    enhanced_rights,
    load_triage_table,
    triage,
)

MakeReport = Callable[..., Report]
DROP = "__drop__"  # removes a key in make_report (see conftest.py)

# The base report's incident ended at 07:00 on 28 Nov 2026; it arrives at 09:00.
RECEIVED = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
RECENT = {"incident.occurred_to": "2026-11-28T08:30:00Z"}  # 30 minutes before arrival
OLD = {"incident.occurred_from": "2026-11-20T10:00:00Z", "incident.occurred_to": DROP}

G1, G2, G3, G4 = Priority.EMERGENCY, Priority.PRIORITY, Priority.SCHEDULED, Priority.RESOLUTION


def desc(text: str, **extra: Any) -> dict[str, Any]:
    return {"incident.description": text, **extra}


GRADE_CASES: list[tuple[str, dict[str, Any], Priority, list[str]]] = [
    ("plain burglary", {}, G3, []),
    ("plain burglary, recent", RECENT, G3, []),
    ("threat to life, old", {"incident.threat_to_life": True, **OLD}, G1, ["threat-to-life"]),
    (
        "weapons seen in progress",
        {"incident.in_progress": True, "incident.weapons_seen": True},
        G1,
        ["violence-in-progress", "weapons-seen", "serious-crime-in-progress"],
    ),
    (
        "injuries in progress, minor category",
        {"incident.in_progress": True, "incident.injuries": True, "incident.category": "other"},
        G1,
        ["violence-in-progress", "injuries", "in-progress"],
    ),
    ("weapons seen recently", {"incident.weapons_seen": True, **RECENT}, G1, ["weapons-seen"]),
    ("weapons seen earlier", {"incident.weapons_seen": True}, G2, ["weapons-seen-earlier"]),
    ("injuries recently", {"incident.injuries": True, **RECENT}, G1, ["injuries"]),
    ("injuries earlier", {"incident.injuries": True, **OLD}, G2, ["injuries-earlier"]),
    (
        "burglary in progress",
        {"incident.in_progress": True},
        G1,
        ["serious-crime-in-progress"],
    ),
    (
        "robbery in progress",
        {"incident.in_progress": True, "incident.category": "robbery"},
        G1,
        ["serious-crime-in-progress"],
    ),
    (
        "shoplifting in progress",
        {"incident.in_progress": True, "incident.category": "shoplifting"},
        G2,
        ["in-progress"],
    ),
    (
        "noise in progress",
        {"incident.in_progress": True, "incident.category": "noise"},
        G4,
        ["resolution-category:noise"],
    ),
    ("noise", {"incident.category": "noise"}, G4, ["resolution-category:noise"]),
    ("fly-tipping", {"incident.category": "fly-tipping"}, G4, ["resolution-category:fly-tipping"]),
    (
        "abandoned vehicle",
        {"incident.category": "abandoned-vehicle"},
        G4,
        ["resolution-category:abandoned-vehicle"],
    ),
    (
        "anti-social behaviour",
        {"incident.category": "anti-social-behaviour"},
        G4,
        ["resolution-category:anti-social-behaviour"],
    ),
    (
        "noise aggravated by hate",
        {"incident.category": "noise", "incident.flags": {"hate_crime": True}},
        G2,
        ["hate-crime"],
    ),
    (
        "anti-social behaviour against a vulnerable person",
        {"incident.category": "anti-social-behaviour", "reporter.vulnerable": True},
        G2,
        ["vulnerable-reporter"],
    ),
    (
        "noise with a threat to life",
        {"incident.category": "noise", "incident.threat_to_life": True},
        G1,
        ["threat-to-life"],
    ),
    ("fraud stays scheduled", {"incident.category": "fraud"}, G3, []),
    ("vulnerable reporter", {"reporter.vulnerable": True}, G2, ["vulnerable-reporter"]),
    ("under 18", {"reporter.under_18": True}, G2, ["under-18"]),
    ("domestic abuse flag", {"incident.flags": {"domestic_abuse": True}}, G2, ["domestic-abuse"]),
    ("domestic abuse category", {"incident.category": "domestic-abuse"}, G2, ["domestic-abuse"]),
    (
        "domestic abuse category and flag",
        {"incident.category": "domestic-abuse", "incident.flags": {"domestic_abuse": True}},
        G2,
        ["domestic-abuse"],
    ),
    ("hate crime", {"incident.flags": {"hate_crime": True}}, G2, ["hate-crime"]),
    (
        "sexual offence",
        {"incident.category": "sexual-offence"},
        G2,
        ["category:sexual-offence"],
    ),
    ("flags all false", {"incident.flags": {}}, G3, []),
    ("CCTV within 24 hours", {"incident.evidence": {"cctv": True}}, G2, ["evidence-at-risk"]),
    (
        "forensics within 24 hours",
        {"incident.evidence": {"forensic_opportunity": True}},
        G2,
        ["evidence-at-risk"],
    ),
    ("CCTV a week ago", {"incident.evidence": {"cctv": True}, **OLD}, G3, []),
    (
        "serial numbers are not perishable",
        {"incident.evidence": {"property_serial_numbers": True}},
        G3,
        [],
    ),
    (
        "CCTV just over 24 hours",
        {
            "incident.evidence": {"cctv": True},
            "incident.occurred_from": "2026-11-27T08:00:00Z",
            "incident.occurred_to": "2026-11-27T08:59:59Z",
        },
        G3,
        [],
    ),
    (
        "CCTV exactly 24 hours",
        {
            "incident.evidence": {"cctv": True},
            "incident.occurred_from": "2026-11-27T08:00:00Z",
            "incident.occurred_to": "2026-11-27T09:00:00Z",
        },
        G2,
        ["evidence-at-risk"],
    ),
    (
        "incident time after arrival (clock skew) counts as recent",
        {"incident.weapons_seen": True, "incident.occurred_to": "2026-11-28T09:10:00Z"},
        G1,
        ["weapons-seen"],
    ),
    (
        "recent is measured from the end of the window",
        {
            "incident.weapons_seen": True,
            "incident.occurred_from": "2026-11-20T08:00:00Z",
            "incident.occurred_to": "2026-11-28T08:00:00Z",
        },
        G1,
        ["weapons-seen"],
    ),
    (
        "exactly 60 minutes is recent",
        {"incident.weapons_seen": True, "incident.occurred_to": "2026-11-28T08:00:00Z"},
        G1,
        ["weapons-seen"],
    ),
    (
        "61 minutes is not recent",
        {"incident.weapons_seen": True, "incident.occurred_to": "2026-11-28T07:59:00Z"},
        G2,
        ["weapons-seen-earlier"],
    ),
    # --- keyword screening of the description ---
    (
        "offender still here, old times",
        desc("Please come, he is still here", **OLD),
        G1,
        ["offender-at-scene:he is still here"],
    ),
    (
        "offender still here, curly apostrophe",
        desc("He\u2019s still here!"),
        G1,
        ["offender-at-scene:he's still here"],
    ),
    (
        "'No, he is still here' is not negated",
        desc("No, he is still here"),
        G1,
        ["offender-at-scene:he is still here"],
    ),
    (
        "can't breathe",
        desc("My dad can't breathe after the fight"),
        G1,
        ["danger-to-life:can't breathe"],
    ),
    (
        "can\u2019t breathe (curly)",
        desc("I CAN\u2019T BREATHE"),
        G1,
        ["danger-to-life:can't breathe"],
    ),
    (
        "going to kill me",
        desc("He said he is going to kill me", **OLD),
        G1,
        ["danger-to-life:going to kill me"],
    ),
    ("not in danger", desc("I am not in danger now, just reporting."), G3, []),
    ("knife, recent", desc("He threatened me with a knife", **RECENT), G1, ["weapon:knife"]),
    ("knife, old", desc("He threatened me with a knife"), G2, ["weapon:knife"]),
    ("no knife", desc("There was no knife involved."), G3, []),
    ("didn't see a weapon", desc("I didn't see a weapon"), G3, []),
    (
        "gun and stabbed",
        desc("A gun was shown and my friend was stabbed", **RECENT),
        G1,
        ["weapon:gun", "weapon:stabbed"],
    ),
    ("gunshots", desc("We heard gunshots", **RECENT), G1, ["weapon:gunshots"]),
    ("glue gun stolen", desc("They took my glue gun and drill"), G3, []),
    ("armed forces", desc("The victim is in the armed forces"), G3, []),
    ("fireplace", desc("They smashed the fireplace", **RECENT), G3, []),
    ("fire alarm", desc("The fire alarm went off when they broke in", **RECENT), G3, []),
    (
        "fire, recent",
        desc("They set fire to the bins", **RECENT),
        G1,
        ["fire:fire", "fire:set fire"],
    ),
    ("fire, old", desc("They set fire to the bins last month"), G3, []),
    ("fired from job", desc("He was fired and came back angry", **RECENT), G3, []),
    ("hitting me, recent", desc("He is hitting me", **RECENT), G1, ["violence:hitting me"]),
    ("hitting me, old", desc("He kept hitting me last year"), G3, []),
    ("rifled is not rifle", desc("Someone rifled through my car", **RECENT), G3, []),
    (
        "grade 1 indicators come before grade 2",
        {"reporter.vulnerable": True, "incident.threat_to_life": True},
        G1,
        ["threat-to-life", "vulnerable-reporter"],
    ),
    (
        "every matching group is listed",
        desc("He has a knife and he is still here", **{"reporter.under_18": True}),
        G1,
        ["offender-at-scene:he is still here", "weapon:knife", "under-18"],
    ),
]


@pytest.mark.parametrize(
    ("changes", "priority", "indicators"),
    [pytest.param(c, p, i, id=name) for name, c, p, i in GRADE_CASES],
)
def test_grade(
    make_report: MakeReport,
    changes: dict[str, Any],
    priority: Priority,
    indicators: list[str],
) -> None:
    result = triage(make_report(changes), received_at=RECEIVED)
    assert result.priority is priority
    assert result.emergency is (priority is Priority.EMERGENCY)
    assert result.indicators == indicators


ENHANCED_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("none", {}, []),
    ("sexual offence", {"incident.category": "sexual-offence"}, ["sexual-offence"]),
    ("domestic abuse category", {"incident.category": "domestic-abuse"}, ["domestic-abuse"]),
    ("domestic abuse flag", {"incident.flags": {"domestic_abuse": True}}, ["domestic-abuse"]),
    (
        "domestic abuse category and flag, once",
        {"incident.category": "domestic-abuse", "incident.flags": {"domestic_abuse": True}},
        ["domestic-abuse"],
    ),
    ("hate crime", {"incident.flags": {"hate_crime": True}}, ["hate-crime"]),
    ("under 18", {"reporter.under_18": True}, ["under-18"]),
    ("vulnerable", {"reporter.vulnerable": True}, ["vulnerable"]),
    ("kidnap", desc("My son was kidnapped"), ["kidnap"]),
    ("attempted murder", desc("He tried to kill me"), ["attempted-murder"]),
    ("trafficking", desc("She was trafficked here"), ["human-trafficking"]),
    ("not trafficked", desc("I was not trafficked"), []),
    ("false imprisonment", desc("He locked me in for hours"), ["false-imprisonment"]),
    ("stalking", desc("He has been stalking me for months"), ["persistently-targeted"]),
    ("terrorism", desc("Someone phoned in a bomb threat"), ["terrorism"]),
    ("bath bomb is not terrorism", desc("They stole a bath bomb"), []),
    (
        "several, in order",
        {
            "incident.category": "sexual-offence",
            "incident.flags": {"hate_crime": True, "domestic_abuse": True},
            "reporter.under_18": True,
            "reporter.vulnerable": True,
        },
        ["sexual-offence", "domestic-abuse", "hate-crime", "under-18", "vulnerable"],
    ),
    ("burglary of a vulnerable person", {"reporter.vulnerable": True}, ["vulnerable"]),
    ("fraud", {"incident.category": "fraud"}, []),
]


@pytest.mark.parametrize(
    ("changes", "reasons"), [pytest.param(c, r, id=name) for name, c, r in ENHANCED_CASES]
)
def test_enhanced_rights(
    make_report: MakeReport, changes: dict[str, Any], reasons: list[str]
) -> None:
    report = make_report(changes)
    result = triage(report, received_at=RECEIVED)
    assert result.enhanced_reasons == reasons
    assert result.enhanced_rights is bool(reasons)
    assert enhanced_rights(report) == reasons


def test_received_at_defaults_to_now(make_report: MakeReport) -> None:
    now = datetime.now(UTC)
    recent = (now - timedelta(minutes=5)).isoformat()
    report = make_report(
        {
            "incident.weapons_seen": True,
            "incident.occurred_from": recent,
            "incident.occurred_to": DROP,
        }
    )
    assert triage(report).priority is Priority.EMERGENCY


def test_a_force_can_pass_its_own_table(make_report: MakeReport) -> None:
    base = load_triage_table()
    table = base.model_copy(
        update={
            "keyword_groups": [
                KeywordGroup(
                    indicator="custom",
                    if_recent=None,
                    otherwise=Priority.EMERGENCY,
                    phrases=["shed"],
                )
            ],
            "resolution_categories": ["burglary"],
        }
    )
    assert triage(make_report(), received_at=RECEIVED, table=table).indicators == ["custom:shed"]
    plain = make_report({"incident.description": "Bicycles taken."})
    result = triage(plain, received_at=RECEIVED, table=table)
    assert result.priority is Priority.RESOLUTION
    assert triage(plain, received_at=RECEIVED).priority is Priority.SCHEDULED


def test_recent_window_comes_from_the_table(make_report: MakeReport) -> None:
    table = load_triage_table().model_copy(update={"recent_minutes": 180})
    report = make_report({"incident.weapons_seen": True})  # ended two hours before arrival
    assert triage(report, received_at=RECEIVED).priority is Priority.PRIORITY
    assert triage(report, received_at=RECEIVED, table=table).priority is Priority.EMERGENCY


def test_table_is_loaded_once() -> None:
    assert load_triage_table() is load_triage_table()


def test_packaged_table_is_sane() -> None:
    table = load_triage_table()
    assert table.recent_minutes == 60
    assert table.evidence_loss_hours == 24
    phrases = [p for g in table.keyword_groups for p in g.phrases]
    assert len(phrases) == len(set(phrases)), "a phrase is listed in two groups"
    assert all(p == p.strip() and p for p in phrases)


@pytest.mark.parametrize(
    "bad",
    [
        {"recent_minutes": -1},
        {"unknown_key": 1},
        {
            "keyword_groups": [
                {"indicator": "x", "if_recent": "grade-9", "otherwise": None, "phrases": ["a"]}
            ]
        },
        {
            "keyword_groups": [
                {"indicator": "x", "if_recent": None, "otherwise": None, "phrases": []}
            ]
        },
    ],
)
def test_invalid_tables_are_refused(bad: dict[str, Any]) -> None:
    data = load_triage_table().model_dump(mode="json") | bad
    with pytest.raises(ValidationError):
        TriageTable.model_validate(data)


@pytest.mark.parametrize(
    ("priority", "emergency", "enhanced", "reasons"),
    [
        (Priority.EMERGENCY, False, False, []),
        (Priority.PRIORITY, True, False, []),
        (Priority.SCHEDULED, False, True, []),
        (Priority.SCHEDULED, False, False, ["vulnerable"]),
    ],
)
def test_triage_model_is_consistent(
    priority: Priority, emergency: bool, enhanced: bool, reasons: list[str]
) -> None:
    with pytest.raises(ValidationError):
        Triage(
            priority=priority,
            emergency=emergency,
            indicators=[],
            enhanced_rights=enhanced,
            enhanced_reasons=reasons,
        )


def test_triage_is_frozen(make_report: MakeReport) -> None:
    result = triage(make_report(), received_at=RECEIVED)
    with pytest.raises(ValidationError):
        result.priority = Priority.EMERGENCY  # type: ignore[misc]
