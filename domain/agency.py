"""Step 1, right agency: is a report ours, someone else's, or for a person to place?

The rules, in order (tables: ``domain/data/agencies.json`` and the Code-Point Open table
read by :mod:`domain.postcodes`):

1. A category with a national service goes there wherever it happened
   (``category_redirects``: fraud and cyber -> Report Fraud, animal welfare -> RSPCA),
   except that Report Fraud covers England, Wales and Northern Ireland only: fraud in
   Scotland goes to Police Scotland, in Jersey, Guernsey or the Isle of Man to their
   police (``fraud_by_force``); a place that may be in one of those and cannot be
   decided goes to a person.
2. Anything on the railway goes to British Transport Police (``railway``).
3. Otherwise the place decides: the postcode when there is one (its unit postcode in a
   sector split between force areas, else its sector; ``BT`` is the PSNI's), or else
   the map position (only when every postcode within 2 km lies in one force area).
   Another force's area -> redirect to that force, by name with its contact details;
   a place the data cannot decide, or does not know -> ``manual_area_check``. A report
   is never redirected on a guess.
4. A council matter (``council_categories``: noise, fly-tipping, abandoned vehicles)
   in Cambridgeshire -> that district's council (a person finds it when the district is
   not known); anywhere else in the UK -> a pointer to "your local council", naming
   the 2014 council area when the data has one.

Large-scale dumping (Environment Agency) cannot be told from small-scale fly-tipping by
the form; it goes to the council, which passes it on.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.postcodes import Place, PostcodeData, load_postcode_data
from domain.report import Report
from domain.tables import Table, load_table

__all__ = [
    "DISTRICTS",
    "Agency",
    "AgencyDecision",
    "AgencyTable",
    "CategoryRedirect",
    "District",
    "FraudByForce",
    "find_agency",
    "inside_cambridgeshire",
    "load_agency_table",
    "lookup_postcode",
    "right_agency",
]

District = Literal[
    "cambridge", "south-cambs", "east-cambs", "fenland", "huntingdonshire", "peterborough"
]
DISTRICTS: tuple[str, ...] = (
    "cambridge",
    "south-cambs",
    "east-cambs",
    "fenland",
    "huntingdonshire",
    "peterborough",
)


class Agency(Table):
    """Another organisation a report can be sent to, with how the reporter reaches it."""

    slug: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str = Field(min_length=1)
    contact_url: str = Field(pattern=r"^https://")
    contact_phone: str | None = None
    contact_email: str | None = None
    how_to_report: str = Field(min_length=1)


class CategoryRedirect(Table):
    """Where a kind of report goes, and the sentence that tells the reporter why."""

    agency: str
    reason: str = Field(min_length=1)


class FraudByForce(Table):
    """Where the national service of ``agency`` does not reach: these forces' areas."""

    agency: str
    forces: list[str]
    reason: str = Field(min_length=1)


class AgencyTable(Table):
    """Agencies and the redirect rules that name them (``domain/data/agencies.json``).

    Attributes:
        our_force: This force's slug in the postcode table.
        local_council: The agency that points a reporter to their own council.
        district_codes: 2014 GSS code of each of our councils -> its district.
    """

    agencies: list[Agency]
    category_redirects: dict[str, CategoryRedirect]
    railway: CategoryRedirect
    council_categories: list[str]
    councils: dict[District, str]
    our_force: str
    local_council: str
    district_codes: dict[str, District]
    fraud_by_force: FraudByForce

    @model_validator(mode="after")
    def _references_resolve(self) -> AgencyTable:
        slugs = [agency.slug for agency in self.agencies]
        if len(slugs) != len(set(slugs)):
            raise ValueError("agency slugs must be unique")
        named = [r.agency for r in self.category_redirects.values()]
        named += [self.railway.agency, *self.councils.values(), self.our_force]
        named += [self.local_council, self.fraud_by_force.agency, *self.fraud_by_force.forces]
        missing = sorted(set(named) - set(slugs))
        if missing:
            raise ValueError(f"unknown agencies: {', '.join(missing)}")
        if set(self.councils) != set(DISTRICTS):
            raise ValueError("councils must name one council per district")
        if set(self.district_codes.values()) != set(DISTRICTS):
            raise ValueError("district_codes must give a code for every district")
        return self

    def get(self, slug: str) -> Agency | None:
        """The agency with this slug, or None."""
        return next((agency for agency in self.agencies if agency.slug == slug), None)


class AgencyDecision(BaseModel):
    """Who deals with a report.

    Attributes:
        kind: ``ours``; ``redirect`` (to ``agency``); ``manual_area_check`` (a call
            handler decides the area; nothing is redirected automatically).
        agency: The agency to redirect to, only for ``redirect``.
        reason: One sentence, fit to show the call handler and, for a redirect, the
            reporter.
        district: Our district (``DISTRICTS``) when known, also for council redirects.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ours", "redirect", "manual_area_check"]
    agency: Agency | None
    reason: str
    district: District | None

    @model_validator(mode="after")
    def _agency_only_for_redirect(self) -> AgencyDecision:
        if (self.kind == "redirect") != (self.agency is not None):
            raise ValueError("agency is required for, and only for, a redirect")
        return self


@cache
def load_agency_table() -> AgencyTable:
    """The packaged agency table, read once."""
    return load_table("agencies.json", AgencyTable)


def find_agency(name: str, *, table: AgencyTable | None = None) -> Agency | None:
    """The agency whose slug or name is ``name`` (any case), or None."""
    table = table or load_agency_table()
    wanted = " ".join(name.split()).casefold()
    return next((a for a in table.agencies if wanted in (a.slug, a.name.casefold())), None)


def _redirect(
    slug: str, reason: str, district: District | None, table: AgencyTable
) -> AgencyDecision:
    agency = table.get(slug)
    if agency is None:  # a table edited by hand: never lose the report over it
        return _manual(f"{reason} No contact details are held for '{slug}'.")
    return AgencyDecision(kind="redirect", agency=agency, reason=reason, district=district)


def _manual(reason: str) -> AgencyDecision:
    return AgencyDecision(kind="manual_area_check", agency=None, reason=reason, district=None)


def lookup_postcode(postcode: str, *, data: PostcodeData | None = None) -> Place | None:
    """What the postcode table says about a full postcode (None: nothing known)."""
    return (data or load_postcode_data()).lookup(postcode)


def inside_cambridgeshire(
    latitude: float,
    longitude: float,
    *,
    data: PostcodeData | None = None,
    agencies: AgencyTable | None = None,
) -> bool:
    """True when the nearby postcodes put the position in Cambridgeshire beyond doubt.

    False means "not certainly ours": elsewhere, near a boundary, or far from postcodes.
    """
    place = (data or load_postcode_data()).at_position(latitude, longitude)
    return place is not None and place.force == (agencies or load_agency_table()).our_force


def _where(report: Report, data: PostcodeData) -> tuple[Place | None, str]:
    """The place of the incident and how it was found, for the reason sentence."""
    location = report.incident.location
    if location.postcode is not None:
        place = data.lookup(location.postcode)
        label = " ".join(location.postcode.upper().split())
        if place is not None and place.place:
            label = f"{label}, {place.place}"
        return place, f"postcode {label}"
    if location.latitude is None or location.longitude is None:
        return None, "no postcode and no map position"
    return data.at_position(location.latitude, location.longitude), "map position, no postcode"


def _by_place(
    report: Report, place: Place | None, where: str, agencies: AgencyTable
) -> AgencyDecision:
    """Rule 3: ours, another force's, or a person decides."""
    location = report.incident.location
    if place is None:
        if location.postcode is None and (location.latitude is None or location.longitude is None):
            return _manual("No postcode and no map position: the area must be checked by hand.")
        if location.postcode is None:
            return _manual("No postcode, and the map position is outside the postcode data.")
        return _manual(f"The force area of {where} is not known: check it by hand.")
    if place.force is None:
        return _manual(
            f"The force area cannot be decided ({where}: {place.basis}): check it by hand."
        )
    if place.force != agencies.our_force:
        force = agencies.get(place.force)
        name = force.name if force else place.force
        return _redirect(
            place.force,
            f"The incident is in the {name} area ({where}: {place.basis}).",
            None,
            agencies,
        )
    district = agencies.district_codes.get(place.authority.code) if place.authority else None
    named = f", {place.authority.name}" if place.authority else ""
    reason = f"The incident is in Cambridgeshire{named} ({where}: {place.basis})."
    return AgencyDecision(kind="ours", agency=None, reason=reason, district=district)


def _fraud_elsewhere(
    place: Place | None, where: str, agencies: AgencyTable
) -> AgencyDecision | None:
    """Rule 1's exception: fraud where Report Fraud does not reach; None when it does."""
    rule = agencies.fraud_by_force
    if place is None:
        return None
    if place.force is None:
        if set(place.forces) & set(rule.forces):
            return _manual(
                f"{rule.reason}, and the force area cannot be decided ({where}: "
                f"{place.basis}): check it by hand."
            )
        return None
    if place.force not in rule.forces:
        return None
    force = agencies.get(place.force)
    name = force.name if force else place.force
    reason = f"{rule.reason}; this is in the {name} area ({where}: {place.basis})."
    return _redirect(place.force, reason, None, agencies)


def _council(
    decision: AgencyDecision, place: Place | None, agencies: AgencyTable
) -> AgencyDecision:
    """Rule 4: a council matter, once the place is decided."""
    if decision.kind == "manual_area_check":
        return _manual(f"{decision.reason} It is a council matter: find the council.")
    if decision.kind == "ours":
        if decision.district is None:
            return _manual(
                f"{decision.reason} It is a council matter, but the district is unknown."
            )
        council = agencies.councils[decision.district]
        reason = f"{decision.reason} This is a matter for the local council."
        return _redirect(council, reason, decision.district, agencies)
    assert place is not None and place.force is not None  # a redirect by place
    if place.force in agencies.fraud_by_force.forces and place.force != "police-scotland":
        return _manual(
            f"{decision.reason} It is a council matter outside the UK: find who deals with it."
        )
    pointer = agencies.get(agencies.local_council)
    if pointer is None:
        return _manual(f"{decision.reason} It is a council matter: find the council.")
    area = f" for {place.authority.name}" if place.authority else ""
    reason = (
        f"{decision.reason} This is a matter for the local council{area} (council areas "
        "of 2014; some have since merged): find the council at gov.uk/find-local-council."
    )
    if place.authority:
        pointer = pointer.model_copy(update={"name": f"{pointer.name} ({place.authority.name})"})
    return AgencyDecision(kind="redirect", agency=pointer, reason=reason, district=None)


def right_agency(
    report: Report,
    *,
    agencies: AgencyTable | None = None,
    postcodes: PostcodeData | None = None,
) -> AgencyDecision:
    """Decide who deals with a report (rules in the module doc).

    Args:
        report: The submitted report.
        agencies: Agency table; the packaged one when None.
        postcodes: Postcode table; the packaged one when None.

    Returns:
        ``ours`` (with the district when known), ``redirect`` (with the agency), or
        ``manual_area_check`` when the area cannot be decided safely.
    """
    agencies = agencies or load_agency_table()
    data = postcodes or load_postcode_data()
    incident = report.incident
    place, where = _where(report, data)

    national = agencies.category_redirects.get(incident.category)
    if national is not None:
        if national.agency == agencies.fraud_by_force.agency:
            elsewhere = _fraud_elsewhere(place, where, agencies)
            if elsewhere is not None:
                return elsewhere
        return _redirect(national.agency, national.reason, None, agencies)
    if incident.location.on_railway:
        return _redirect(agencies.railway.agency, agencies.railway.reason, None, agencies)

    decision = _by_place(report, place, where, agencies)
    if incident.category not in agencies.council_categories:
        return decision
    return _council(decision, place, agencies)
