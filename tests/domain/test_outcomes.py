"""domain.outcomes: Home Office outcome types and the IMU closure mapping."""

from __future__ import annotations

from typing import get_args

import pytest

from domain.case import ImuCloseReason
from domain.outcomes import (
    IMU_CLOSE_OUTCOMES,
    OUTCOME_TYPES,
    imu_close_outcome,
    is_outcome_type,
    outcome_name,
)


def test_there_are_22_outcome_types() -> None:
    assert sorted(OUTCOME_TYPES) == list(range(1, 23))
    assert all(name and name == name.strip() for name in OUTCOME_TYPES.values())
    assert len(set(OUTCOME_TYPES.values())) == 22


@pytest.mark.parametrize(
    ("number", "fragment"),
    [
        (1, "Charged"),
        (2, "youth"),
        (3, "adult"),
        (8, "Community resolution"),
        (14, "suspect not identified; victim does not support"),
        (15, "suspect identified; victim supports"),
        (16, "suspect identified; victim does not support"),
        (18, "no suspect identified"),
        (19, "National Fraud Intelligence Bureau"),
        (20, "another body"),
        (22, "Diversionary"),
    ],
)
def test_outcome_name(number: int, fragment: str) -> None:
    assert fragment in outcome_name(number)


@pytest.mark.parametrize("number", [0, 23, -1, 100])
def test_unknown_outcome(number: int) -> None:
    assert not is_outcome_type(number)
    with pytest.raises(ValueError, match="1-22"):
        outcome_name(number)


@pytest.mark.parametrize("number", range(1, 23))
def test_known_outcome(number: int) -> None:
    assert is_outcome_type(number)


def test_mapping_covers_exactly_the_contract_reasons() -> None:
    assert set(IMU_CLOSE_OUTCOMES) == set(get_args(ImuCloseReason))


@pytest.mark.parametrize(
    ("reason", "identified", "outcome"),
    [
        ("insufficient-evidence", True, 15),
        ("insufficient-evidence", False, 18),
        ("no-witnesses", True, 15),
        ("no-witnesses", False, 18),
        ("witnesses-unwilling", True, 15),
        ("witnesses-unwilling", False, 18),
        ("victim-no-statement", True, 16),
        ("victim-no-statement", False, 14),
    ],
)
def test_imu_close_outcome(reason: str, identified: bool, outcome: int) -> None:
    assert imu_close_outcome(reason, identified) == outcome
    assert is_outcome_type(outcome)


@pytest.mark.parametrize(("identified", "needs_suspect"), [(True, {15, 16}), (False, {14, 18})])
def test_outcomes_agree_with_suspect_identification(
    identified: bool, needs_suspect: set[int]
) -> None:
    assert {imu_close_outcome(r, identified) for r in IMU_CLOSE_OUTCOMES} == needs_suspect


@pytest.mark.parametrize("reason", ["", "no-evidence", "Insufficient-Evidence", "closed"])
def test_unknown_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="unknown IMU close reason"):
        imu_close_outcome(reason, True)


def test_own_table() -> None:
    table = {"insufficient-evidence": (21, 18)}
    assert imu_close_outcome("insufficient-evidence", True, table=table) == 21
    with pytest.raises(ValueError):
        imu_close_outcome("no-witnesses", True, table=table)


def test_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        OUTCOME_TYPES[23] = "new"  # type: ignore[index]
    with pytest.raises(TypeError):
        IMU_CLOSE_OUTCOMES["x"] = (1, 1)  # type: ignore[index]
