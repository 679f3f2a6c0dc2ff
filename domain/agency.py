"""Step 1, right agency: is a report ours, someone else's, or for a person to place?

The rules, in order (the tables are ``domain/data/agencies.json`` and ``postcodes.json``):

1. A category with a national service goes there wherever it happened
   (``category_redirects``: fraud and cyber -> Report Fraud, animal welfare -> RSPCA).
2. Anything on the railway goes to British Transport Police (``railway``).
3. Otherwise the place decides. The postcode's sector (``PE9 3``) or district (``PE9``)
   is looked up: *other* -> redirect to that force; *ambiguous* or not in the table ->
   ``manual_area_check``. Without a postcode, coordinates count only when they fall
   inside a deliberately small outline of the county (-> ours, district unknown);
   anything else -> ``manual_area_check``. A report is never redirected on a guess.
4. Ours, and a council matter (``council_categories``: noise, fly-tipping, abandoned
   vehicles) -> that district's council; if the district is not known -> a person
   finds the council. A council matter in another force's area also goes to a person:
   the table holds only Cambridgeshire's councils.

Large-scale dumping (Environment Agency) cannot be told from small-scale fly-tipping by
the form; it goes to the council, which passes it on.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.report import Report
from domain.tables import Table, load_table

__all__ = [
    "DISTRICTS",
    "Agency",
    "AgencyDecision",
    "AgencyTable",
    "CategoryRedirect",
    "District",
    "PostcodeArea",
    "PostcodeTable",
    "find_agency",
    "inside_cambridgeshire",
    "load_agency_table",
    "load_postcode_table",
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
_DISTRICT_NAMES = {
    "cambridge": "Cambridge",
    "south-cambs": "South Cambridgeshire",
    "east-cambs": "East Cambridgeshire",
    "fenland": "Fenland",
    "huntingdonshire": "Huntingdonshire",
    "peterborough": "Peterborough",
}


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


class AgencyTable(Table):
    """Agencies and the redirect rules that name them (``domain/data/agencies.json``)."""

    agencies: list[Agency]
    category_redirects: dict[str, CategoryRedirect]
    railway: CategoryRedirect
    council_categories: list[str]
    councils: dict[District, str]

    @model_validator(mode="after")
    def _references_resolve(self) -> AgencyTable:
        slugs = [agency.slug for agency in self.agencies]
        if len(slugs) != len(set(slugs)):
            raise ValueError("agency slugs must be unique")
        named = [r.agency for r in self.category_redirects.values()]
        named += [self.railway.agency, *self.councils.values()]
        missing = sorted(set(named) - set(slugs))
        if missing:
            raise ValueError(f"unknown agencies: {', '.join(missing)}")
        if set(self.councils) != set(DISTRICTS):
            raise ValueError("councils must name one council per district")
        return self

    def get(self, slug: str) -> Agency | None:
        """The agency with this slug, or None."""
        return next((agency for agency in self.agencies if agency.slug == slug), None)


class PostcodeArea(Table):
    """What a postcode district or sector says about the force area.

    Attributes:
        status: ``ours``; ``other`` (another force: ``force`` names its agency slug);
            ``ambiguous`` (substantial parts in more than one force).
        district: Our district when ``ours`` and it lies in one district, else None.
        force: The other force's agency slug when ``other``.
        note: Places, for the person who reads the decision.
    """

    status: Literal["ours", "other", "ambiguous"]
    district: District | None = None
    force: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _fields_match_status(self) -> PostcodeArea:
        if (self.status == "other") != (self.force is not None):
            raise ValueError("force is required for, and only for, status 'other'")
        if self.district is not None and self.status != "ours":
            raise ValueError("district is only for status 'ours'")
        return self


class PostcodeTable(Table):
    """Postcode areas and the county outline (``domain/data/postcodes.json``)."""

    comment: str = ""
    sectors: dict[str, PostcodeArea] = Field(default_factory=dict)
    districts: dict[str, PostcodeArea]
    inner_polygon: list[tuple[float, float]] = Field(min_length=3)

    @field_validator("sectors", "districts")
    @classmethod
    def _normalise_keys(cls, value: dict[str, PostcodeArea]) -> dict[str, PostcodeArea]:
        return {" ".join(key.upper().split()): area for key, area in value.items()}


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


@cache
def load_postcode_table() -> PostcodeTable:
    """The packaged postcode table, read once."""
    return load_table("postcodes.json", PostcodeTable)


def find_agency(name: str, *, table: AgencyTable | None = None) -> Agency | None:
    """The agency whose slug or name is ``name`` (any case), or None."""
    table = table or load_agency_table()
    wanted = " ".join(name.split()).casefold()
    return next((a for a in table.agencies if wanted in (a.slug, a.name.casefold())), None)


def _outward_and_sector(postcode: str) -> tuple[str, str] | None:
    compact = "".join(postcode.split()).upper()
    if not 5 <= len(compact) <= 7:
        return None
    outward, inward = compact[:-3], compact[-3:]
    return outward, f"{outward} {inward[0]}"


def lookup_postcode(
    postcode: str, *, table: PostcodeTable | None = None
) -> tuple[str, PostcodeArea | None]:
    """Look a full postcode up, sector first, then district.

    Args:
        postcode: A full UK postcode, with or without the space (``CB1 2AD``).
        table: Postcode table; the packaged one when None.

    Returns:
        The outward code (``CB1``) and its area, or None when the table does not know
        it (or the postcode is malformed: the outward code is then the input).
    """
    table = table or load_postcode_table()
    parts = _outward_and_sector(postcode)
    if parts is None:
        return postcode, None
    outward, sector = parts
    return outward, table.sectors.get(sector) or table.districts.get(outward)


def inside_cambridgeshire(
    latitude: float, longitude: float, *, table: PostcodeTable | None = None
) -> bool:
    """True when the point is inside the table's inner outline of the county.

    The outline lies well inside the border, so True is certain and False only means
    "not clearly inside". Ray casting on longitude/latitude, fine at county scale.
    """
    polygon = (table or load_postcode_table()).inner_polygon
    inside = False
    x, y = longitude, latitude
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _redirect(
    slug: str, reason: str, district: District | None, table: AgencyTable
) -> AgencyDecision:
    agency = table.get(slug)
    if agency is None:  # a table edited by hand: never lose the report over it
        return _manual(f"{reason} No contact details are held for '{slug}'.")
    return AgencyDecision(kind="redirect", agency=agency, reason=reason, district=district)


def _manual(reason: str) -> AgencyDecision:
    return AgencyDecision(kind="manual_area_check", agency=None, reason=reason, district=None)


def _by_place(report: Report, agencies: AgencyTable, postcodes: PostcodeTable) -> AgencyDecision:
    """Rule 3: ours, another force's, or a person decides, from postcode or position."""
    location = report.incident.location
    if location.postcode is not None:
        outward, area = lookup_postcode(location.postcode, table=postcodes)
        where = f"postcode district {outward}" + (f" ({area.note})" if area and area.note else "")
        if area is None:
            return _manual(f"The force area of {where} is not known: check it by hand.")
        if area.status == "ambiguous":
            return _manual(f"The {where} spans more than one force area: check it by hand.")
        if area.force is not None:  # status "other"
            force = agencies.get(area.force)
            name = force.name if force else area.force
            if report.incident.category in agencies.council_categories:
                return _manual(f"A council matter in the {name} area ({where}): find the council.")
            return _redirect(
                area.force, f"The incident is in the {name} area ({where}).", None, agencies
            )
        district = area.district
        if district is not None:
            where = f"{where}, {_DISTRICT_NAMES[district]}"
        reason = f"The incident is in Cambridgeshire ({where})."
        return AgencyDecision(kind="ours", agency=None, reason=reason, district=district)
    if location.latitude is None or location.longitude is None:
        return _manual("No postcode and no map position: the area must be checked by hand.")
    if not inside_cambridgeshire(location.latitude, location.longitude, table=postcodes):
        return _manual("No postcode, and the map position is not clearly in Cambridgeshire.")
    reason = "The incident is in Cambridgeshire (map position; no postcode)."
    return AgencyDecision(kind="ours", agency=None, reason=reason, district=None)


def right_agency(
    report: Report,
    *,
    agencies: AgencyTable | None = None,
    postcodes: PostcodeTable | None = None,
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
    postcodes = postcodes or load_postcode_table()
    incident = report.incident

    national = agencies.category_redirects.get(incident.category)
    if national is not None:
        return _redirect(national.agency, national.reason, None, agencies)
    if incident.location.on_railway:
        return _redirect(agencies.railway.agency, agencies.railway.reason, None, agencies)

    decision = _by_place(report, agencies, postcodes)
    if decision.kind != "ours" or incident.category not in agencies.council_categories:
        return decision
    if decision.district is None:
        return _manual(f"{decision.reason} It is a council matter, but the district is unknown.")
    council = agencies.councils[decision.district]
    reason = f"{decision.reason} This is a matter for the local council."
    return _redirect(council, reason, decision.district, agencies)
