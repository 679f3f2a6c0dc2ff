"""Step 1 triage: does a report need an emergency response, and how urgent is it?

A screening aid for THRIVE (domain.md), not a substitute for it: every report still
reaches a person. The grade is the most urgent that any indicator supports:

Grade 1 (emergency), escalated to the control room at once:
    ``threat-to-life``; ``violence-in-progress`` (in progress with injuries or weapons);
    ``weapons-seen`` or ``injuries`` when *recent*; ``serious-crime-in-progress`` (in
    progress and a category of ``serious_in_progress_categories``); a keyword group
    whose ``if_recent`` (or ``otherwise``) grade is 1, such as ``offender-at-scene:...``.
Grade 2 (priority):
    ``vulnerable-reporter``; ``under-18``; ``domestic-abuse`` (flag or category);
    ``hate-crime``; ``category:<slug>`` for ``priority_categories``; ``in-progress`` for
    any other in-progress report outside the resolution categories;
    ``evidence-at-risk`` (CCTV or a forensic opportunity and the incident ended within
    ``evidence_loss_hours``: forensic traces and many CCTV systems do not last);
    ``weapons-seen-earlier`` / ``injuries-earlier``; keyword groups graded 2.
Grade 4 (resolution without deployment):
    a category of ``resolution_categories`` (noise, anti-social behaviour, ...) with no
    grade 1 or 2 indicator; the indicator is ``resolution-category:<slug>``.
Grade 3 (scheduled): everything else, with no indicator.

*Recent* means in progress, or the incident's latest known time is at most
``recent_minutes`` before the report was received (or after it: clocks disagree).

Keyword groups exist because many online reports mention a knife or a fight from last
week: such a mention is grade 1 only when recent, and otherwise the group's
``otherwise`` grade (``weapon`` -> 2, ``violence`` -> none). Phrases that signal danger
now (``can't breathe``, ``he is still here``) are grade 1 whatever the times say.

Enhanced rights (Victims' Code) apply for ``enhanced_categories``, the domestic abuse
and hate crime flags, under-18 and vulnerable reporters, and for description phrases of
the most serious crimes (``enhanced_keyword_groups``). A persistently targeted victim
can only be recognised from the text, not from history: the case store is not read here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.phrases import find_phrases
from domain.report import Report, occurred_at
from domain.tables import Table, load_table
from domain.terms import Priority

__all__ = [
    "EnhancedKeywordGroup",
    "KeywordGroup",
    "Triage",
    "TriageTable",
    "enhanced_rights",
    "load_triage_table",
    "triage",
]

_SEVERITY = {
    Priority.EMERGENCY: 0,
    Priority.PRIORITY: 1,
    Priority.SCHEDULED: 2,
    Priority.RESOLUTION: 3,
}


class KeywordGroup(Table):
    """Description phrases that raise the grade.

    Attributes:
        indicator: Name of the group; a match is reported as ``<indicator>:<phrase>``.
        if_recent: Grade when the incident is recent (or in progress), or None.
        otherwise: Grade when it is not recent, or None to ignore the match then.
        phrases: Whole-word, case-insensitive phrases.
    """

    indicator: str = Field(min_length=1)
    if_recent: Priority | None
    otherwise: Priority | None
    phrases: list[str] = Field(min_length=1)


class EnhancedKeywordGroup(Table):
    """Description phrases that signal one of the most serious crimes."""

    reason: str = Field(min_length=1)
    phrases: list[str] = Field(min_length=1)


class TriageTable(Table):
    """What a force tunes in triage (``domain/data/triage.json``)."""

    recent_minutes: int = Field(ge=0)
    evidence_loss_hours: int = Field(ge=0)
    serious_in_progress_categories: list[str]
    priority_categories: list[str]
    resolution_categories: list[str]
    enhanced_categories: list[str]
    keyword_groups: list[KeywordGroup]
    exclusions: list[str] = Field(default_factory=list)
    negations: list[str] = Field(default_factory=list)
    negation_window: int = Field(default=3, ge=0, le=10)
    enhanced_keyword_groups: list[EnhancedKeywordGroup] = Field(default_factory=list)


class Triage(BaseModel):
    """The result of triage.

    Attributes:
        priority: National grade.
        emergency: True exactly when the grade is 1: escalate to the control room now.
        indicators: Why, most urgent first (empty for a plain grade 3).
        enhanced_rights: True when the Victims' Code enhanced rights apply.
        enhanced_reasons: Why they apply.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    priority: Priority
    emergency: bool
    indicators: list[str]
    enhanced_rights: bool
    enhanced_reasons: list[str]

    @model_validator(mode="after")
    def _consistent(self) -> Triage:
        if self.emergency != (self.priority is Priority.EMERGENCY):
            raise ValueError("emergency must be true exactly for grade 1")
        if self.enhanced_rights != bool(self.enhanced_reasons):
            raise ValueError("enhanced_rights must be true exactly when there are reasons")
        return self


@cache
def load_triage_table() -> TriageTable:
    """The packaged triage table, read once."""
    return load_table("triage.json", TriageTable)


def _is_recent(report: Report, received_at: datetime, minutes: int) -> bool:
    if report.incident.in_progress:
        return True
    return received_at - occurred_at(report) <= timedelta(minutes=minutes)


def _keywords(report: Report, table: TriageTable, phrases: list[str]) -> list[str]:
    return find_phrases(
        report.incident.description,
        phrases,
        exclusions=table.exclusions,
        negations=table.negations,
        negation_window=table.negation_window,
    )


def enhanced_rights(report: Report, *, table: TriageTable | None = None) -> list[str]:
    """Why the Victims' Code enhanced rights apply to this report (empty if they do not).

    Args:
        report: The submitted report.
        table: Triage table; the packaged one when None.

    Returns:
        Reasons such as ``sexual-offence``, ``domestic-abuse``, ``hate-crime``,
        ``under-18``, ``vulnerable``, ``kidnap``; no duplicates.
    """
    table = table or load_triage_table()
    incident = report.incident
    flags = incident.flags
    reasons: list[str] = []
    if incident.category in table.enhanced_categories:
        reasons.append(incident.category)
    if flags is not None and flags.domestic_abuse:
        reasons.append("domestic-abuse")
    if flags is not None and flags.hate_crime:
        reasons.append("hate-crime")
    if report.reporter.under_18:
        reasons.append("under-18")
    if report.reporter.vulnerable:
        reasons.append("vulnerable")
    for group in table.enhanced_keyword_groups:
        if _keywords(report, table, group.phrases):
            reasons.append(group.reason)
    return list(dict.fromkeys(reasons))


def triage(
    report: Report,
    *,
    received_at: datetime | None = None,
    table: TriageTable | None = None,
) -> Triage:
    """Grade a report and decide whether it is an emergency (rules in the module doc).

    Args:
        report: The submitted report.
        received_at: When the report arrived (timezone-aware), to judge how recent the
            incident is. Pass the case's receipt time; when None, the current time.
        table: Triage table; the packaged one when None.

    Returns:
        The grade, the indicators behind it and the enhanced-rights decision.
    """
    table = table or load_triage_table()
    now = received_at or datetime.now(UTC)
    incident = report.incident
    flags = incident.flags
    evidence = incident.evidence
    recent = _is_recent(report, now, table.recent_minutes)
    found: list[tuple[Priority, str]] = []

    def add(priority: Priority, indicator: str) -> None:
        found.append((priority, indicator))

    if incident.threat_to_life:
        add(Priority.EMERGENCY, "threat-to-life")
    if incident.in_progress and (incident.weapons_seen or incident.injuries):
        add(Priority.EMERGENCY, "violence-in-progress")
    for seen, name in ((incident.weapons_seen, "weapons-seen"), (incident.injuries, "injuries")):
        if seen and recent:
            add(Priority.EMERGENCY, name)
        elif seen:
            add(Priority.PRIORITY, f"{name}-earlier")
    if incident.in_progress:
        if incident.category in table.serious_in_progress_categories:
            add(Priority.EMERGENCY, "serious-crime-in-progress")
        elif incident.category not in table.resolution_categories:
            add(Priority.PRIORITY, "in-progress")
    for group in table.keyword_groups:
        grade = group.if_recent if recent else group.otherwise
        if grade is not None:
            for phrase in _keywords(report, table, group.phrases):
                add(grade, f"{group.indicator}:{phrase}")

    if report.reporter.vulnerable:
        add(Priority.PRIORITY, "vulnerable-reporter")
    if report.reporter.under_18:
        add(Priority.PRIORITY, "under-18")
    if incident.category == "domestic-abuse" or (flags is not None and flags.domestic_abuse):
        add(Priority.PRIORITY, "domestic-abuse")
    if flags is not None and flags.hate_crime:
        add(Priority.PRIORITY, "hate-crime")
    if incident.category in table.priority_categories:
        add(Priority.PRIORITY, f"category:{incident.category}")
    if (
        evidence is not None
        and (evidence.cctv or evidence.forensic_opportunity)
        and not incident.in_progress
        and now - occurred_at(report) <= timedelta(hours=table.evidence_loss_hours)
    ):
        add(Priority.PRIORITY, "evidence-at-risk")

    if not found and incident.category in table.resolution_categories:
        add(Priority.RESOLUTION, f"resolution-category:{incident.category}")

    found.sort(key=lambda item: _SEVERITY[item[0]])  # stable: table order within a grade
    priority = found[0][0] if found else Priority.SCHEDULED
    reasons = enhanced_rights(report, table=table)
    return Triage(
        priority=priority,
        emergency=priority is Priority.EMERGENCY,
        indicators=list(dict.fromkeys(indicator for _, indicator in found)),
        enhanced_rights=bool(reasons),
        enhanced_reasons=reasons,
    )
