"""Step 4 allocation: which team a case goes to (table: ``domain/data/routing.json``).

Rules are tried in order and the first that matches wins. A rule matches when the
category is one of its ``categories`` (or it lists none) and every one of its ``flags``
is set. The packaged order:

==============  ==============================================================
Team            When
==============  ==============================================================
child-abuse     under 18 and a sexual offence, violence or domestic abuse; or
                under 18 and the domestic abuse flag (a child's safeguarding
                comes first, so these rules come first)
rit             sexual offence
domestic-abuse  category domestic-abuse, or the domestic abuse flag on any offence
cyber           cyber
economic-crime  fraud (the rare one the force keeps rather than redirects)
cid             violent crime, robbery, possession of weapons
lpt-<district>  everything else: burglary, vehicle crime, thefts, criminal
                damage, drugs, public order, anti-social behaviour, other
==============  ==============================================================

A child who is the victim of a property crime (a stolen bicycle) stays with the local
policing team: the child abuse unit is for abuse, not for every victim under 18.
Hate crime has no team of its own: it stays with the team of the offence, and the flag
is kept on the case for the enhanced rights and supervision.

When the district is unknown (a postcode district split between two of our districts,
or a map position without postcode), the case goes to ``unknown_district_team``:
``lpt-cambridge`` by default, because volume crime belongs to a local policing team, not
to CID's serious-crime queue, and the team's supervisor moves it (``allocate``) to the
right district within the acknowledgement deadline.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, field_validator, model_validator

from domain.agency import DISTRICTS, District
from domain.tables import Table, load_table
from domain.terms import check_team

__all__ = ["RoutingRule", "RoutingTable", "load_routing_table", "route_team"]

Flag = Literal["domestic_abuse", "hate_crime", "under_18"]


class RoutingRule(Table):
    """One line of the routing table.

    Attributes:
        team: A team slug of the contract (``domain.case.TEAMS``).
        categories: Categories it applies to; empty means any.
        flags: Flags that must all be set; empty means none needed.
        why: The reason, for people reading the table.
    """

    team: str
    categories: list[str] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    why: str = ""

    @field_validator("team")
    @classmethod
    def _team_known(cls, team: str) -> str:
        return check_team(team)

    @model_validator(mode="after")
    def _not_catch_all(self) -> RoutingRule:
        if not self.categories and not self.flags:
            raise ValueError("a rule needs categories or flags: the local team is the fallback")
        return self


class RoutingTable(Table):
    """Ordered rules, the local teams, and the team for an unknown district."""

    rules: list[RoutingRule]
    local_teams: dict[District, str]
    unknown_district_team: str

    @model_validator(mode="after")
    def _teams_known(self) -> RoutingTable:
        for team in [*self.local_teams.values(), self.unknown_district_team]:
            check_team(team)
        if set(self.local_teams) != set(DISTRICTS):
            raise ValueError("local_teams must name one team per district")
        return self


@cache
def load_routing_table() -> RoutingTable:
    """The packaged routing table, read once."""
    return load_table("routing.json", RoutingTable)


def route_team(
    category: str,
    *,
    domestic_abuse: bool,
    hate_crime: bool,
    under_18: bool,
    district: str | None,
    table: RoutingTable | None = None,
) -> str:
    """The team a case is allocated to (rules in the module doc).

    Args:
        category: The recorded category slug (the call handler's, else the report's).
        domestic_abuse: The domestic abuse flag.
        hate_crime: The hate crime flag.
        under_18: The victim is a child.
        district: Our district slug (``domain.agency.DISTRICTS``), or None if unknown;
            a slug outside that list counts as unknown.
        table: Routing table; the packaged one when None.

    Returns:
        A team slug from ``domain.case.TEAMS``.
    """
    table = table or load_routing_table()
    flags = {"domestic_abuse": domestic_abuse, "hate_crime": hate_crime, "under_18": under_18}
    for rule in table.rules:
        if (not rule.categories or category in rule.categories) and all(
            flags[flag] for flag in rule.flags
        ):
            return rule.team
    for known, team in table.local_teams.items():
        if known == district:
            return team
    return table.unknown_district_team
