"""The intelligence search: its query, its answer, and the pure rules that rank matches.

Two halves make the picture (domain.md, "Intelligence database"): crimes police.uk
published near the incident and around its time, and the force's own cases that share a
suspect name, vehicle registration, phone number or email address with this one.

A summary is written into the case and read by staff; it names crime types, distances,
months and reference numbers, never a name, address, phone number or email address.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.report import Report, occurred_at

POLICE_UK_HEADER: tuple[str, ...] = (
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Crime type",
    "Last outcome category",
    "Context",
)
"""The columns of a police.uk street-level crime CSV, in order."""

CRIME_TYPES: tuple[str, ...] = (
    "Anti-social behaviour",
    "Bicycle theft",
    "Burglary",
    "Criminal damage and arson",
    "Drugs",
    "Other theft",
    "Possession of weapons",
    "Public order",
    "Robbery",
    "Shoplifting",
    "Theft from the person",
    "Vehicle crime",
    "Violence and sexual offences",
    "Other crime",
)
"""The "Crime type" values of police.uk street-level data."""

# Our report categories (police.uk slugs and the contract's extras) to the police.uk crime
# types an investigator would look at first. police.uk publishes no fraud or cyber crime
# (those go to Action Fraud), and stalking, harassment and most domestic abuse offences
# are counted under "Violence and sexual offences"; the nearest buckets stand in for them.
_RELATED: dict[str, frozenset[str]] = {
    "anti-social-behaviour": frozenset({"Anti-social behaviour", "Public order"}),
    "bicycle-theft": frozenset({"Bicycle theft", "Other theft"}),
    "burglary": frozenset({"Burglary"}),
    "criminal-damage-arson": frozenset({"Criminal damage and arson"}),
    "drugs": frozenset({"Drugs", "Possession of weapons"}),
    "other-theft": frozenset({"Other theft", "Bicycle theft", "Theft from the person"}),
    "possession-of-weapons": frozenset({"Possession of weapons", "Robbery", "Drugs"}),
    "public-order": frozenset({"Public order", "Anti-social behaviour"}),
    "robbery": frozenset({"Robbery", "Theft from the person", "Possession of weapons"}),
    "shoplifting": frozenset({"Shoplifting"}),
    "theft-from-the-person": frozenset({"Theft from the person", "Robbery"}),
    "vehicle-crime": frozenset({"Vehicle crime"}),
    "violent-crime": frozenset({"Violence and sexual offences"}),
    "other-crime": frozenset({"Other crime"}),
    "fraud": frozenset({"Other crime"}),
    "cyber": frozenset({"Other crime"}),
    "noise": frozenset({"Anti-social behaviour"}),
    "fly-tipping": frozenset({"Anti-social behaviour"}),
    "abandoned-vehicle": frozenset({"Anti-social behaviour", "Vehicle crime"}),
    "animal-welfare": frozenset({"Other crime"}),
    "sexual-offence": frozenset({"Violence and sexual offences"}),
    "domestic-abuse": frozenset(
        {"Violence and sexual offences", "Criminal damage and arson", "Public order"}
    ),
    "other": frozenset(),
}

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius; the same figure as ``intel_distance_m`` in the migration."""


def related_crime_types(category: str) -> set[str]:
    """The police.uk crime types related to one of our report categories (empty if none)."""
    return set(_RELATED.get(category, frozenset()))


def categories_related(a: str, b: str) -> bool:
    """Whether two of our report categories are the same or share a related crime type."""
    return a == b or bool(_RELATED.get(a, frozenset()) & _RELATED.get(b, frozenset()))


class IntelQuery(BaseModel):
    """What to search for around one case.

    The time window is ``window_days`` either side of ``occurred_at``: a series of crimes
    runs both ways from the one reported. police.uk gives only the month of a crime, so
    a month counts if any of its days falls inside the window. Without a location only
    the own-cases match runs.
    """

    model_config = ConfigDict(frozen=True)

    workflow_id: str = Field(description="the case searched for; never matched with itself")
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    occurred_at: AwareDatetime
    category: str
    radius_m: int = Field(default=1000, ge=1, le=50_000)
    window_days: int = Field(default=90, ge=0, le=3_650)
    suspect_name: str | None = None
    vehicle_registration: str | None = None
    phone: str | None = None
    email: str | None = None
    limit: int = Field(default=10, ge=1, le=100)

    @property
    def has_location(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @classmethod
    def for_report(cls, workflow_id: str, report: Report, **options: int) -> IntelQuery:
        """The query for a case's report; ``options`` set ``radius_m``, ``window_days``, ``limit``."""
        incident = report.incident
        suspect = incident.suspect
        return cls(
            workflow_id=workflow_id,
            latitude=incident.location.latitude,
            longitude=incident.location.longitude,
            occurred_at=occurred_at(report),
            category=incident.category,
            suspect_name=suspect.name if suspect else None,
            vehicle_registration=suspect.vehicle_registration if suspect else None,
            phone=report.reporter.phone,
            email=report.reporter.email,
            **options,
        )


MatchKind = Literal["area", "own_case"]
MatchedOn = Literal["suspect_name", "vehicle_registration", "phone", "email"]


class IntelMatch(BaseModel):
    """One crime near the incident, or one of the force's own cases sharing its details.

    ``reference`` is the police.uk Crime ID (empty for anti-social behaviour, which has
    none) or our crime reference (the receipt code while none is issued).
    ``occurred`` is the first day of the month for police.uk crimes, which give no more,
    and the incident date for our own cases.
    """

    model_config = ConfigDict(frozen=True)

    kind: MatchKind
    reference: str
    crime_type: str
    occurred: date
    distance_m: float | None = None
    matched_on: list[MatchedOn] = Field(default_factory=list)
    related: bool = False
    location: str | None = Field(default=None, description="police.uk's anonymised place")
    outcome: str | None = Field(default=None, description="police.uk's last outcome category")


class IntelSummary(BaseModel):
    """The answer of one search: counts, the best matches, and a sentence for staff."""

    model_config = ConfigDict(frozen=True)

    area_count: int
    related_count: int
    own_case_matches: int
    top_matches: list[IntelMatch]
    summary: str
    radius_m: int
    window_days: int
    by_type: dict[str, int] = Field(
        default_factory=dict, description="crimes in the area by police.uk crime type"
    )
    months: list[date] = Field(default_factory=list, description="police.uk months searched")


class ImportResult(BaseModel):
    """What an import of police.uk CSV files did.

    ``rows`` counts data rows read; each is imported, a duplicate of a row already held,
    or bad (and then described, up to a few, in ``bad_examples``).
    """

    rows: int = 0
    imported: int = 0
    skipped_duplicates: int = 0
    bad_rows: int = 0
    bad_examples: list[str] = Field(default_factory=list)


# --- pure rules ---------------------------------------------------------------------


def window_months(at: datetime, window_days: int) -> list[date]:
    """The first days of the police.uk months overlapping ``window_days`` either side of ``at``."""
    first = _month_start((at - timedelta(days=window_days)).date())
    last = _month_start((at + timedelta(days=window_days)).date())
    months = []
    while first <= last:
        months.append(first)
        first = _month_start(first + timedelta(days=32))
    return months


def _month_start(day: date) -> date:
    return day.replace(day=1)


def bounding_box(latitude: float, longitude: float, radius_m: float) -> tuple[float, float]:
    """Half-height and half-width in degrees of a box that holds the circle ``radius_m``.

    The box does not wrap at the antimeridian, which no force in England and Wales needs.
    """
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    # Widen towards the poles, and give up narrowing where the circle reaches one.
    cos_lat = math.cos(math.radians(min(abs(latitude) + dlat, 90.0)))
    dlon = 180.0 if cos_lat < 1e-9 else min(180.0, dlat / cos_lat)
    return dlat, dlon


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def area_rank(match: IntelMatch) -> tuple[bool, float, str]:
    """Sort key of crimes in the area: related crime types first, then the nearest."""
    far = match.distance_m if match.distance_m is not None else math.inf
    return (not match.related, far, match.reference)


def own_case_rank(match: IntelMatch) -> tuple[int, bool, int, str]:
    """Sort key of our own cases: more shared details first, related, then the newest."""
    return (-len(match.matched_on), not match.related, -match.occurred.toordinal(), match.reference)


def rank_matches(
    area: Iterable[IntelMatch], own: Iterable[IntelMatch], limit: int
) -> list[IntelMatch]:
    """Our own cases sharing details first (the strongest leads), then crimes in the area."""
    ranked = sorted(own, key=own_case_rank) + sorted(area, key=area_rank)
    return ranked[:limit]


_MATCHED_ON_WORDS: dict[str, str] = {
    "suspect_name": "suspect name",
    "vehicle_registration": "vehicle registration",
    "phone": "phone",
    "email": "email",
}


def summarise(
    query: IntelQuery,
    by_type: Mapping[str, int],
    related_count: int,
    own_case_matches: int,
    top: list[IntelMatch],
) -> str:
    """A few sentences for staff, free of personal data by construction.

    Only crime types, counts, distances, months, references and the names of the kinds
    of detail that matched go in; the values themselves never do.
    """
    parts: list[str] = []
    area_count = sum(by_type.values())
    if not query.has_location:
        parts.append("No location given: crimes in the area not searched.")
    elif area_count == 0:
        parts.append(
            f"No crimes recorded within {query.radius_m:,} m in the {query.window_days} days"
            " either side of the incident."
        )
    else:
        related = sorted(related_crime_types(query.category))
        of_related = (
            f"; {related_count:,} of related types ({', '.join(related)})" if related else ""
        )
        parts.append(
            f"{area_count:,} crime{'s' if area_count != 1 else ''} recorded within"
            f" {query.radius_m:,} m in the {query.window_days} days either side of the"
            f" incident{of_related}."
        )
        nearest = [m for m in top if m.kind == "area"][:3]
        if nearest:
            listed = ", ".join(
                f"{m.crime_type} {m.distance_m or 0:,.0f} m ({m.occurred:%Y-%m})" for m in nearest
            )
            parts.append(f"Nearest{' related' if nearest[0].related else ''}: {listed}.")
        common = sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        parts.append("Most common: " + ", ".join(f"{t} {n:,}" for t, n in common) + ".")
    if own_case_matches == 0:
        parts.append("No other case of ours shares a suspect, vehicle, phone or email.")
    else:
        own = [m for m in top if m.kind == "own_case"]
        listed = "; ".join(
            f"{m.reference} ({', '.join(_MATCHED_ON_WORDS[k] for k in m.matched_on)})" for m in own
        )
        more = own_case_matches - len(own)
        parts.append(
            f"{own_case_matches} other case{'s' if own_case_matches != 1 else ''} of ours"
            f" share{'s' if own_case_matches == 1 else ''} details: {listed}"
            + (f"; and {more} more" if more > 0 else "")
            + "."
        )
    return " ".join(parts)
