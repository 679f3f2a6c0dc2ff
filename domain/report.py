"""The report an intake system submits: the schema of the contract, strict and bounded.

Anything outside these limits is refused, never truncated: a report is evidence.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{6,24}$")]
Postcode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        pattern=r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$",
    ),
]
VehicleRegistration = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z0-9 ]{2,10}$")
]

POLICE_UK_CATEGORIES: tuple[str, ...] = (
    "anti-social-behaviour",
    "bicycle-theft",
    "burglary",
    "criminal-damage-arson",
    "drugs",
    "other-theft",
    "possession-of-weapons",
    "public-order",
    "robbery",
    "shoplifting",
    "theft-from-the-person",
    "vehicle-crime",
    "violent-crime",
    "other-crime",
)
EXTRA_CATEGORIES: tuple[str, ...] = (
    "fraud",
    "cyber",
    "noise",
    "fly-tipping",
    "abandoned-vehicle",
    "animal-welfare",
    "sexual-offence",
    "domestic-abuse",
    "other",
)
Category = Literal[
    "anti-social-behaviour",
    "bicycle-theft",
    "burglary",
    "criminal-damage-arson",
    "drugs",
    "other-theft",
    "possession-of-weapons",
    "public-order",
    "robbery",
    "shoplifting",
    "theft-from-the-person",
    "vehicle-crime",
    "violent-crime",
    "other-crime",
    "fraud",
    "cyber",
    "noise",
    "fly-tipping",
    "abandoned-vehicle",
    "animal-welfare",
    "sexual-offence",
    "domestic-abuse",
    "other",
]


class Channel(StrEnum):
    ONLINE = "online"
    PHONE = "phone"
    IN_PERSON = "in_person"


class Relationship(StrEnum):
    VICTIM = "victim"
    WITNESS = "witness"
    THIRD_PARTY = "third_party"


# NUL: PostgreSQL cannot store it in text or jsonb, so a report holding one could never
# be recorded. Refused, like any other invalid input, naming the field. Other control
# characters are kept exactly as given (the report is evidence).
_CONTROL = re.compile(r"\x00")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValueError("NUL characters are not allowed")
        return value


class Reporter(_Strict):
    name: ShortText
    email: EmailStr | None = Field(default=None, max_length=254)
    phone: Phone | None = None
    # Where letters go when there is no email (a phone or in-person report): a letter
    # to the reporter is then owed, for a person to post (workflows.owed).
    postal_address: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
        | None
    ) = None
    relationship: Relationship
    under_18: bool = False
    vulnerable: bool = False
    consents_to_victim_support: bool = False


class Location(_Strict):
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    postcode: Postcode | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    on_railway: bool = False


class Suspect(_Strict):
    named: bool = False
    name: ShortText | None = None
    description: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2_000)] | None
    ) = None
    vehicle_registration: VehicleRegistration | None = None


class Evidence(_Strict):
    cctv: bool = False
    forensic_opportunity: bool = False
    property_serial_numbers: bool = False


class Flags(_Strict):
    domestic_abuse: bool = False
    hate_crime: bool = False


class Incident(_Strict):
    category: Category
    description: LongText
    occurred_from: AwareDatetime
    occurred_to: AwareDatetime | None = None
    in_progress: bool = False
    location: Location
    injuries: bool = False
    weapons_seen: bool = False
    threat_to_life: bool = False
    suspect: Suspect | None = None
    witnesses: int = Field(default=0, ge=0, le=1_000)
    evidence: Evidence | None = None
    flags: Flags | None = None

    @model_validator(mode="after")
    def _window_in_order(self) -> Incident:
        if self.occurred_to is not None and self.occurred_to < self.occurred_from:
            raise ValueError("occurred_to is before occurred_from")
        return self


class Report(_Strict):
    """One submission from a force's reporting form (see the contract for the schema)."""

    submission_id: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._:-]{8,100}$")
    ]
    channel: Channel
    reporter: Reporter
    incident: Incident
    # Phone and in-person reports: the member of staff taking the report gives the
    # reporter the receipt code there and then (the intake system shows it to them as
    # it submits), so the receipt promise is kept at intake, not by a letter.
    receipt_given_by_staff: bool = False

    @model_validator(mode="after")
    def _online_needs_email(self) -> Report:
        if self.channel is Channel.ONLINE and self.reporter.email is None:
            raise ValueError("reporter.email is required for online reports")
        if self.channel is Channel.ONLINE and self.receipt_given_by_staff:
            raise ValueError("receipt_given_by_staff is for phone and in-person reports only")
        return self


def occurred_at(report: Report) -> datetime:
    """The latest moment the incident is known to have happened."""
    return report.incident.occurred_to or report.incident.occurred_from
