"""domain.routing: which team a case is allocated to."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.agency import DISTRICTS
from domain.case import TEAMS
from domain.report import EXTRA_CATEGORIES, POLICE_UK_CATEGORIES
from domain.routing import RoutingRule, RoutingTable, load_routing_table, route_team

NO_FLAGS = {"domestic_abuse": False, "hate_crime": False, "under_18": False}

# (category, flags set, district, team)
CASES: list[tuple[str, set[str], str | None, str]] = [
    ("sexual-offence", set(), "cambridge", "rit"),
    ("sexual-offence", set(), None, "rit"),
    ("sexual-offence", {"hate_crime"}, "fenland", "rit"),
    ("sexual-offence", {"domestic_abuse"}, "fenland", "rit"),  # RIT before the DA unit
    ("sexual-offence", {"under_18"}, "fenland", "child-abuse"),
    ("domestic-abuse", set(), "peterborough", "domestic-abuse"),
    ("domestic-abuse", {"domestic_abuse"}, None, "domestic-abuse"),
    ("domestic-abuse", {"under_18"}, None, "child-abuse"),
    ("burglary", {"domestic_abuse"}, "cambridge", "domestic-abuse"),
    ("violent-crime", {"domestic_abuse"}, "cambridge", "domestic-abuse"),
    ("criminal-damage-arson", {"domestic_abuse"}, "fenland", "domestic-abuse"),
    ("criminal-damage-arson", {"domestic_abuse", "under_18"}, "fenland", "child-abuse"),
    ("violent-crime", {"under_18"}, "cambridge", "child-abuse"),
    ("violent-crime", {"under_18", "hate_crime"}, "cambridge", "child-abuse"),
    ("bicycle-theft", {"under_18"}, "cambridge", "lpt-cambridge"),  # property crime: LPT
    ("robbery", {"under_18"}, "cambridge", "cid"),
    ("cyber", set(), "cambridge", "cyber"),
    ("cyber", {"under_18"}, None, "cyber"),
    ("fraud", set(), "east-cambs", "economic-crime"),
    ("violent-crime", set(), "cambridge", "cid"),
    ("violent-crime", {"hate_crime"}, "cambridge", "cid"),
    ("robbery", set(), "peterborough", "cid"),
    ("possession-of-weapons", set(), None, "cid"),
    ("burglary", set(), "cambridge", "lpt-cambridge"),
    ("burglary", set(), "south-cambs", "lpt-south-cambs"),
    ("vehicle-crime", set(), "east-cambs", "lpt-east-cambs"),
    ("shoplifting", set(), "fenland", "lpt-fenland"),
    ("other-theft", set(), "huntingdonshire", "lpt-huntingdonshire"),
    ("theft-from-the-person", set(), "peterborough", "lpt-peterborough"),
    ("bicycle-theft", set(), "peterborough", "lpt-peterborough"),
    ("criminal-damage-arson", set(), "fenland", "lpt-fenland"),
    ("drugs", set(), "cambridge", "lpt-cambridge"),
    ("public-order", {"hate_crime"}, "fenland", "lpt-fenland"),
    ("anti-social-behaviour", set(), "east-cambs", "lpt-east-cambs"),
    ("other-crime", set(), "huntingdonshire", "lpt-huntingdonshire"),
    ("other", set(), "south-cambs", "lpt-south-cambs"),
    ("noise", set(), "cambridge", "lpt-cambridge"),
    ("burglary", set(), None, "lpt-cambridge"),  # unknown district: documented default
    ("burglary", set(), "suffolk", "lpt-cambridge"),  # not one of ours: unknown
    ("burglary", set(), "", "lpt-cambridge"),
    ("not-a-category", set(), "fenland", "lpt-fenland"),
]


@pytest.mark.parametrize(
    ("category", "flags", "district", "team"),
    [
        pytest.param(c, f, d, t, id=f"{c}-{'+'.join(sorted(f)) or 'none'}-{d}")
        for c, f, d, t in CASES
    ],
)
def test_route_team(category: str, flags: set[str], district: str | None, team: str) -> None:
    chosen = route_team(
        category,
        domestic_abuse="domestic_abuse" in flags,
        hate_crime="hate_crime" in flags,
        under_18="under_18" in flags,
        district=district,
    )
    assert chosen == team


@pytest.mark.parametrize("category", POLICE_UK_CATEGORIES + EXTRA_CATEGORIES)
@pytest.mark.parametrize("district", [*DISTRICTS, None])
def test_every_category_and_district_gets_a_contract_team(
    category: str, district: str | None
) -> None:
    for under_18 in (False, True):
        for domestic_abuse in (False, True):
            team = route_team(
                category,
                domestic_abuse=domestic_abuse,
                hate_crime=False,
                under_18=under_18,
                district=district,
            )
            assert team in TEAMS


def test_a_force_can_pass_its_own_table() -> None:
    table = load_routing_table().model_copy(
        update={
            "rules": [RoutingRule(team="cid", categories=[], flags=["hate_crime"])],
            "unknown_district_team": "cid",
        }
    )
    assert route_team("burglary", district=None, table=table, **NO_FLAGS) == "cid"
    assert (
        route_team(
            "shoplifting",
            domestic_abuse=False,
            hate_crime=True,
            under_18=False,
            district="fenland",
            table=table,
        )
        == "cid"
    )
    assert route_team("sexual-offence", district="fenland", table=table, **NO_FLAGS) == (
        "lpt-fenland"
    )


def test_table_is_loaded_once() -> None:
    assert load_routing_table() is load_routing_table()


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown_district_team": "traffic"},
        {"local_teams": {"cambridge": "lpt-cambridge"}},
        {"local_teams": {d: "lpt-nowhere" for d in DISTRICTS}},
        {"rules": [{"team": "traffic", "categories": ["burglary"]}]},
        {"rules": [{"team": "cid"}]},  # catch-all rules would hide the local teams
        {"rules": [{"team": "cid", "flags": ["repeat_victim"]}]},
        {"extra": True},
    ],
)
def test_invalid_tables_are_refused(bad: dict[str, Any]) -> None:
    data = load_routing_table().model_dump(mode="json") | bad
    with pytest.raises(ValidationError):
        RoutingTable.model_validate(data)
