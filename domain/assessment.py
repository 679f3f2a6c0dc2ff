"""Step 3 screening support: solvability and vulnerability, as the IMU weighs them.

Decision *support*: the assessment lists what the report offers an investigation and
what makes the victim vulnerable, with a score to sort a queue by. It never closes or
opens an investigation; the IMU officer decides, and may well investigate a low score
(a vulnerable victim, a serious offence) or close a high one.

Solvability factors (domain.md), read from the report only:

========================  =========================================================
Factor                    Present when
========================  =========================================================
suspect                   the suspect is named, or has a name or a description
witnesses                 at least one witness
cctv                      the reporter says there is CCTV or video
forensic_opportunity      the reporter says there is a forensic opportunity
property_serial_numbers   stolen property has serial numbers (traceable)
vehicle_registration      the suspect's vehicle registration is known
========================  =========================================================

The score is the weighted share of factors present, 0-100 (weights and band thresholds
in ``domain/data/assessment.json``). Vulnerability factors are the enhanced-rights
reasons of triage (vulnerable, under 18, sexual offence, domestic abuse, hate crime,
the most serious crimes) plus injuries and a threat to life. Repeat victimisation is
not knowable from one report; the intelligence search is where it shows.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.report import Report
from domain.tables import Table, load_table
from domain.triage import TriageTable, enhanced_rights

__all__ = [
    "Assessment",
    "AssessmentTable",
    "Band",
    "Bands",
    "SolvabilityFactors",
    "assess",
    "load_assessment_table",
]

Band = Literal["low", "medium", "high"]

_LABELS = {
    "suspect": "suspect named or described",
    "witnesses": "witnesses",
    "cctv": "CCTV",
    "forensic_opportunity": "forensic opportunity",
    "property_serial_numbers": "serial numbers",
    "vehicle_registration": "vehicle registration",
}


class SolvabilityFactors(BaseModel):
    """Which solvability factors the report offers (see the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suspect: bool
    witnesses: bool
    cctv: bool
    forensic_opportunity: bool
    property_serial_numbers: bool
    vehicle_registration: bool

    def present(self) -> list[str]:
        """Names of the factors present, in table order."""
        return [name for name, value in self.model_dump().items() if value]


class Bands(Table):
    """Lowest score of each band above ``low``."""

    high: int = Field(ge=0, le=100)
    medium: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        if self.medium > self.high:
            raise ValueError("medium must not be above high")
        return self


class AssessmentTable(Table):
    """Factor weights and band thresholds (``domain/data/assessment.json``)."""

    weights: dict[str, int]
    bands: Bands

    @model_validator(mode="after")
    def _every_factor_weighted(self) -> AssessmentTable:
        if set(self.weights) != set(SolvabilityFactors.model_fields):
            raise ValueError(f"weights must name exactly: {', '.join(_LABELS)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("weights must not be negative and must not all be zero")
        return self


class Assessment(BaseModel):
    """Decision support for the IMU: what the report offers and who is vulnerable.

    Attributes:
        solvability: Each factor, present or not.
        solvability_score: Weighted share of the factors present, 0-100.
        solvability_band: ``low``, ``medium`` or ``high``.
        vulnerability_factors: Why the victim may be vulnerable; empty if nothing shows.
        enhanced_rights: The Victims' Code enhanced rights apply.
        summary: One line for a queue or a case page.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    solvability: SolvabilityFactors
    solvability_score: int = Field(ge=0, le=100)
    solvability_band: Band
    vulnerability_factors: list[str]
    enhanced_rights: bool
    summary: str


@cache
def load_assessment_table() -> AssessmentTable:
    """The packaged assessment table, read once."""
    return load_table("assessment.json", AssessmentTable)


def _factors(report: Report) -> SolvabilityFactors:
    incident = report.incident
    suspect, evidence = incident.suspect, incident.evidence
    return SolvabilityFactors(
        suspect=suspect is not None
        and (suspect.named or bool(suspect.name) or bool(suspect.description)),
        witnesses=incident.witnesses > 0,
        cctv=evidence is not None and evidence.cctv,
        forensic_opportunity=evidence is not None and evidence.forensic_opportunity,
        property_serial_numbers=evidence is not None and evidence.property_serial_numbers,
        vehicle_registration=suspect is not None and suspect.vehicle_registration is not None,
    )


def assess(
    report: Report,
    *,
    table: AssessmentTable | None = None,
    triage_table: TriageTable | None = None,
) -> Assessment:
    """Assess a report's solvability and the victim's vulnerability.

    Args:
        report: The submitted report.
        table: Weights and bands; the packaged ones when None.
        triage_table: Triage table for the enhanced-rights reasons; packaged when None.

    Returns:
        The assessment; a support for the IMU's decision, not the decision.
    """
    table = table or load_assessment_table()
    factors = _factors(report)
    present = factors.present()
    total = sum(table.weights.values())
    score = round(100 * sum(table.weights[name] for name in present) / total)
    band: Band = (
        "high" if score >= table.bands.high else "medium" if score >= table.bands.medium else "low"
    )
    enhanced = enhanced_rights(report, table=triage_table)
    vulnerability = list(enhanced)
    if report.incident.threat_to_life:
        vulnerability.append("threat-to-life")
    if report.incident.injuries:
        vulnerability.append("injuries")

    labels = [_LABELS[name] for name in present]
    if factors.witnesses:
        labels[present.index("witnesses")] = f"witnesses ({report.incident.witnesses})"
    listed = ", ".join(labels) or "no solvability factors"
    summary = f"Solvability {band} ({score}/100): {listed}."
    summary += (
        f" Vulnerability: {', '.join(vulnerability)}."
        if vulnerability
        else " No vulnerability shown."
    )
    if enhanced:
        summary += " Enhanced rights apply."
    return Assessment(
        solvability=factors,
        solvability_score=score,
        solvability_band=band,
        vulnerability_factors=vulnerability,
        enhanced_rights=bool(enhanced),
        summary=summary,
    )
