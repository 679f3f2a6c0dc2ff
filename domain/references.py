"""The three references a reporter can hold, and telling them apart.

========================  ====================  =========================================
Kind                      Example               Format
========================  ====================  =========================================
receipt code              ``WHN-7K3M-Q9TD-X2``  ``WHN-`` and 10 Crockford base32 symbols
                                                in groups of 4, 4, 2 (``receipt_code_for``)
crime reference (CRN)     ``35/00042/26``       force code / sequence (at least 5 digits,
                                                zero-padded) / two-digit year
investigation reference   ``INV-26-000123``     ``INV-`` two-digit year ``-`` sequence (at
                                                least 6 digits, zero-padded)
========================  ====================  =========================================

The CRN follows the force's own shape (Cambridgeshire has used ``35/5475/21``), so
parsing also accepts unpadded sequences. The investigation reference is deliberately
unlike both others (letters first, dashes, year before sequence) so nobody confuses it
with a CRN read over the phone. Receipt codes are matched after normalising: any case,
and the Crockford look-alikes ``O`` -> ``0`` and ``I``/``L`` -> ``1``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CrimeReference",
    "InvestigationReference",
    "ReferenceFormatError",
    "format_crime_reference",
    "format_investigation_reference",
    "normalise_reference",
    "parse_crime_reference",
    "parse_investigation_reference",
    "reference_kind",
]

ReferenceKind = Literal["receipt", "crime", "investigation"]

_CROCKFORD = "0-9A-HJKMNP-TV-Z"
_RECEIPT = re.compile(rf"^WHN-[{_CROCKFORD}]{{4}}-[{_CROCKFORD}]{{4}}-[{_CROCKFORD}]{{2}}$")
_CRIME = re.compile(r"^(?P<force>[0-9]{1,3})/(?P<seq>[0-9]{1,9})/(?P<year>[0-9]{2})$")
_INVESTIGATION = re.compile(r"^INV-(?P<year>[0-9]{2})-(?P<seq>[0-9]{6,9})$")
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


class ReferenceFormatError(ValueError):
    """A reference does not have the expected format.

    Attributes:
        reference: The text that was refused.
    """

    def __init__(self, reference: str, expected: str) -> None:
        super().__init__(f"{reference!r} is not a {expected}")
        self.reference = reference


class CrimeReference(BaseModel):
    """A parsed crime reference number; ``year`` is the full year (``2026``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    force_code: str
    sequence: int = Field(ge=1)
    year: int


class InvestigationReference(BaseModel):
    """A parsed investigation reference; ``year`` is the full year (``2026``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sequence: int = Field(ge=1)
    year: int


def _two_digit_year(year: int) -> int:
    if year < 0:
        raise ValueError("year must not be negative")
    return year % 100


def format_crime_reference(force_code: str, sequence: int, year: int) -> str:
    """Build a CRN such as ``35/00042/26``.

    Args:
        force_code: The force's numeric code, 1 to 3 digits (Cambridgeshire: ``"35"``).
        sequence: The force's crime sequence number for the year, from 1.
        year: The year of recording, four digits (``2026``) or two (``26``).

    Raises:
        ValueError: A part is out of range.
    """
    if not re.fullmatch(r"[0-9]{1,3}", force_code):
        raise ValueError("force_code must be 1 to 3 digits")
    if not 1 <= sequence <= 999_999_999:
        raise ValueError("sequence must be between 1 and 999999999")
    return f"{force_code}/{sequence:05d}/{_two_digit_year(year):02d}"


def parse_crime_reference(ref: str) -> CrimeReference:
    """Split a CRN into its parts; accepts unpadded sequences (``35/5475/21``).

    Raises:
        ReferenceFormatError: ``ref`` is not a crime reference.
    """
    match = _CRIME.fullmatch(ref.strip())
    if match is None or int(match["seq"]) == 0:
        raise ReferenceFormatError(ref, "crime reference number (e.g. 35/00042/26)")
    return CrimeReference(
        force_code=match["force"], sequence=int(match["seq"]), year=2000 + int(match["year"])
    )


def format_investigation_reference(sequence: int, year: int) -> str:
    """Build an investigation reference such as ``INV-26-000123``.

    Args:
        sequence: The investigation sequence number for the year, from 1.
        year: The year the investigation began, four digits or two.

    Raises:
        ValueError: A part is out of range.
    """
    if not 1 <= sequence <= 999_999_999:
        raise ValueError("sequence must be between 1 and 999999999")
    return f"INV-{_two_digit_year(year):02d}-{sequence:06d}"


def parse_investigation_reference(ref: str) -> InvestigationReference:
    """Split an investigation reference into its parts.

    Raises:
        ReferenceFormatError: ``ref`` is not an investigation reference.
    """
    match = _INVESTIGATION.fullmatch(ref.strip().upper())
    if match is None or int(match["seq"]) == 0:
        raise ReferenceFormatError(ref, "investigation reference (e.g. INV-26-000123)")
    return InvestigationReference(sequence=int(match["seq"]), year=2000 + int(match["year"]))


def normalise_reference(ref: str) -> str:
    """The canonical spelling of a reference typed or read out by a person.

    Strips surrounding space and upper-cases it; after ``WHN-`` the Crockford look-alikes
    are replaced, so ``whn-7k3m-q9to-x2`` becomes ``WHN-7K3M-Q9T0-X2``.
    """
    text = ref.strip().upper()
    if text.startswith("WHN-"):
        return "WHN-" + text[4:].translate(_LOOKALIKES)
    return text


def reference_kind(ref: str) -> ReferenceKind | None:
    """Which kind of reference ``ref`` is, or None if it is none of them.

    Looks at the format only; it does not say whether such a case exists.
    """
    text = normalise_reference(ref)
    if _RECEIPT.fullmatch(text):
        return "receipt"
    match = _CRIME.fullmatch(text)
    if match is not None and int(match["seq"]) > 0:
        return "crime"
    match = _INVESTIGATION.fullmatch(text)
    if match is not None and int(match["seq"]) > 0:
        return "investigation"
    return None
