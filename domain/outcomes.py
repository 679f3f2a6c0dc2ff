"""Home Office outcome types, and the outcome an IMU closure is recorded with.

Every closed crime carries one of the 22 outcome types of the Home Office Crime
Recording Rules (:data:`OUTCOME_TYPES`). An IMU closure (step 3) maps to one of them:

======================  ==========  ==========  =============================================
Reason                  Suspect     Suspect     Why
                        identified  not ident.
======================  ==========  ==========  =============================================
insufficient-evidence   15          18          the victim supports action; the evidence does
                                                not. With a named suspect that is outcome 15
                                                (evidential difficulties); without one, the
                                                crime was investigated as far as reasonably
                                                possible: 18
no-witnesses            15          18          a missing witness is an evidential difficulty
                                                of the same kind; the victim still supports
witnesses-unwilling     15          18          witnesses (not the victim) will not come
                                                forward: evidential difficulties, victim
                                                supports
victim-no-statement     16          14          the victim does not support action: 16 with a
                                                named suspect, 14 without
======================  ==========  ==========  =============================================

14 is the only "suspect not identified" outcome that records a victim not supporting
action, and 18 the one for a finished investigation with no suspect; 15 and 16 both
need an identified suspect and differ by whether the victim supports action.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "IMU_CLOSE_OUTCOMES",
    "OUTCOME_TYPES",
    "imu_close_outcome",
    "is_outcome_type",
    "outcome_name",
]

OUTCOME_TYPES: Mapping[int, str] = MappingProxyType(
    {
        1: "Charged/summonsed",
        2: "Caution - youth",
        3: "Caution - adult",
        4: "Taken into consideration",
        5: "Offender died",
        6: "Penalty notice for disorder",
        7: "Cannabis/khat warning",
        8: "Community resolution",
        9: "Prosecution not in the public interest (CPS)",
        10: "Formal action not in the public interest (police)",
        11: "Prosecution prevented - suspect under the age of criminal responsibility",
        12: "Prosecution prevented - suspect too ill to prosecute",
        13: "Prosecution prevented - victim or key witness dead or too ill to give evidence",
        14: "Evidential difficulties - suspect not identified; victim does not support action",
        15: "Evidential difficulties - suspect identified; victim supports action",
        16: "Evidential difficulties - suspect identified; victim does not support action",
        17: "Prosecution time limit expired",
        18: "Investigation complete - no suspect identified",
        19: "National Fraud Intelligence Bureau filed - no reasonable line of enquiry",
        20: "Further action to be taken by another body or agency",
        21: "Further investigation not in the public interest (police)",
        22: "Diversionary, educational or intervention activity; no further action",
    }
)
"""Home Office outcome type number -> name (domain.md)."""

IMU_CLOSE_OUTCOMES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "insufficient-evidence": (15, 18),
        "no-witnesses": (15, 18),
        "witnesses-unwilling": (15, 18),
        "victim-no-statement": (16, 14),
    }
)
"""IMU close reason -> (outcome if a suspect is identified, outcome if not); see above."""


def is_outcome_type(number: int) -> bool:
    """True for a Home Office outcome type number (1 to 22)."""
    return number in OUTCOME_TYPES


def outcome_name(number: int) -> str:
    """The name of an outcome type.

    Raises:
        ValueError: ``number`` is not an outcome type.
    """
    try:
        return OUTCOME_TYPES[number]
    except KeyError:
        raise ValueError(f"{number} is not a Home Office outcome type (1-22)") from None


def imu_close_outcome(
    reason: str,
    suspect_identified: bool,
    *,
    table: Mapping[str, tuple[int, int]] | None = None,
) -> int:
    """The outcome type an IMU closure is recorded with (mapping in the module doc).

    Args:
        reason: One of the IMU close reasons (``domain.case.ImuCloseReason``).
        suspect_identified: A named suspect has been identified.
        table: Reason -> (identified, not identified); ``IMU_CLOSE_OUTCOMES`` when None.

    Returns:
        An outcome type number, 1 to 22.

    Raises:
        ValueError: ``reason`` is not a close reason of the table.
    """
    mapping = IMU_CLOSE_OUTCOMES if table is None else table
    try:
        identified, unidentified = mapping[reason]
    except KeyError:
        known = ", ".join(mapping)
        raise ValueError(f"unknown IMU close reason {reason!r}; one of {known}") from None
    return identified if suspect_identified else unidentified
