"""domain.references: crime and investigation references, and telling references apart."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.case import receipt_code_for
from domain.references import (
    CrimeReference,
    InvestigationReference,
    ReferenceFormatError,
    format_crime_reference,
    format_investigation_reference,
    normalise_reference,
    parse_crime_reference,
    parse_investigation_reference,
    reference_kind,
)


@pytest.mark.parametrize(
    ("force", "sequence", "year", "expected"),
    [
        ("35", 42, 2026, "35/00042/26"),
        ("35", 42, 26, "35/00042/26"),
        ("35", 1, 2027, "35/00001/27"),
        ("35", 99_999, 2026, "35/99999/26"),
        ("35", 123_456, 2026, "35/123456/26"),
        ("1", 5, 2030, "1/00005/30"),
        ("123", 5, 2100, "123/00005/00"),
        ("35", 5475, 2021, "35/05475/21"),
        ("35", 7, 2009, "35/00007/09"),
    ],
)
def test_format_crime_reference(force: str, sequence: int, year: int, expected: str) -> None:
    assert format_crime_reference(force, sequence, year) == expected


@pytest.mark.parametrize(
    ("force", "sequence", "year"),
    [
        ("", 1, 2026),
        ("3a", 1, 2026),
        ("1234", 1, 2026),
        ("35", 0, 2026),
        ("35", -1, 2026),
        ("35", 1_000_000_000, 2026),
        ("35", 1, -1),
    ],
)
def test_format_crime_reference_refuses(force: str, sequence: int, year: int) -> None:
    with pytest.raises(ValueError):
        format_crime_reference(force, sequence, year)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("35/00042/26", CrimeReference(force_code="35", sequence=42, year=2026)),
        ("35/5475/21", CrimeReference(force_code="35", sequence=5475, year=2021)),
        (" 35/5475/21 ", CrimeReference(force_code="35", sequence=5475, year=2021)),
        ("1/1/00", CrimeReference(force_code="1", sequence=1, year=2000)),
    ],
)
def test_parse_crime_reference(ref: str, expected: CrimeReference) -> None:
    assert parse_crime_reference(ref) == expected


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "35/00042",
        "35/00042/2026",
        "35-00042-26",
        "CC-27012021-0401",
        "35/00000/26",
        "ab/00042/26",
        "35//26",
        "WHN-7K3M-Q9TD-X2",
        "INV-26-000123",
    ],
)
def test_parse_crime_reference_refuses(ref: str) -> None:
    with pytest.raises(ReferenceFormatError) as info:
        parse_crime_reference(ref)
    assert info.value.reference == ref
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("sequence", "year", "expected"),
    [
        (123, 2026, "INV-26-000123"),
        (123, 26, "INV-26-000123"),
        (1, 2027, "INV-27-000001"),
        (999_999, 2026, "INV-26-999999"),
        (1_234_567, 2026, "INV-26-1234567"),
    ],
)
def test_format_investigation_reference(sequence: int, year: int, expected: str) -> None:
    assert format_investigation_reference(sequence, year) == expected


@pytest.mark.parametrize(("sequence", "year"), [(0, 2026), (-5, 2026), (1, -2026)])
def test_format_investigation_reference_refuses(sequence: int, year: int) -> None:
    with pytest.raises(ValueError):
        format_investigation_reference(sequence, year)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("INV-26-000123", InvestigationReference(sequence=123, year=2026)),
        ("inv-26-000123", InvestigationReference(sequence=123, year=2026)),
        ("INV-27-1234567", InvestigationReference(sequence=1_234_567, year=2027)),
    ],
)
def test_parse_investigation_reference(ref: str, expected: InvestigationReference) -> None:
    assert parse_investigation_reference(ref) == expected


@pytest.mark.parametrize(
    "ref", ["", "INV-26-123", "INV-2026-000123", "INV-26-000000", "35/00042/26", "INV26000123"]
)
def test_parse_investigation_reference_refuses(ref: str) -> None:
    with pytest.raises(ReferenceFormatError):
        parse_investigation_reference(ref)


RECEIPT = receipt_code_for("0b7e2a3c-6c1e-4b5e-9c55-3f1f2f6f9a10")


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        (RECEIPT, "receipt"),
        (RECEIPT.lower(), "receipt"),
        (f"  {RECEIPT}\n", "receipt"),
        ("WHN-0000-0000-00", "receipt"),
        ("WHN-ZZZZ-ZZZZ-ZZ", "receipt"),
        ("WHN-7K3M-Q9TO-X2", "receipt"),  # O read as 0
        ("WHN-7K3M-Q9TI-X2", "receipt"),  # I read as 1
        ("WHN-7K3M-Q9TL-X2", "receipt"),  # L read as 1
        ("WHN-7K3M-Q9TU-X2", None),  # U is not Crockford
        ("WHN-7K3M-Q9TD-X", None),
        ("WHN-7K3M-Q9TD-X23", None),
        ("WHN-7K3MQ9TDX2", None),
        ("ABC-7K3M-Q9TD-X2", None),
        ("35/00042/26", "crime"),
        ("35/5475/21", "crime"),
        ("35/00000/26", None),
        ("INV-26-000123", "investigation"),
        ("inv-26-000123", "investigation"),
        ("INV-26-000000", None),
        ("CC-27012021-0401", None),  # an incident number is not a crime reference
        ("", None),
        ("hello", None),
    ],
)
def test_reference_kind(ref: str, kind: str | None) -> None:
    assert reference_kind(ref) == kind


@pytest.mark.parametrize(
    ("ref", "normal"),
    [
        ("whn-7k3m-q9to-x2", "WHN-7K3M-Q9T0-X2"),
        (" whn-ilo0-1111-22 ", "WHN-1100-1111-22"),
        ("inv-26-000123", "INV-26-000123"),
        ("35/00042/26", "35/00042/26"),
        ("INVOICE", "INVOICE"),  # look-alikes are only replaced in receipt codes
    ],
)
def test_normalise_reference(ref: str, normal: str) -> None:
    assert normalise_reference(ref) == normal


@given(st.text(min_size=8, max_size=40, alphabet="abcdef0123456789-"))
def test_every_receipt_code_is_recognised(submission_id: str) -> None:
    assert reference_kind(receipt_code_for(submission_id)) == "receipt"


@given(
    force=st.from_regex(r"[0-9]{1,3}", fullmatch=True),
    sequence=st.integers(1, 999_999_999),
    year=st.integers(2000, 2099),
)
def test_crime_reference_round_trip(force: str, sequence: int, year: int) -> None:
    ref = format_crime_reference(force, sequence, year)
    assert reference_kind(ref) == "crime"
    assert parse_crime_reference(ref) == CrimeReference(
        force_code=force, sequence=sequence, year=year
    )


@given(sequence=st.integers(1, 999_999_999), year=st.integers(2000, 2099))
def test_investigation_reference_round_trip(sequence: int, year: int) -> None:
    ref = format_investigation_reference(sequence, year)
    assert reference_kind(ref) == "investigation"
    assert parse_investigation_reference(ref) == InvestigationReference(
        sequence=sequence, year=year
    )
