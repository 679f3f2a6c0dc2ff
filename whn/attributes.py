"""Search attributes of a case: what operators filter on in the Temporal UI.

None of them may hold personal data: only stages, references, categories, teams, flags
and staff ids (never a reporter's).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
RECEIPT_CODE = SearchAttributeKey.for_keyword("ReceiptCode")
CRIME_REFERENCE = SearchAttributeKey.for_keyword("CrimeReference")
INVESTIGATION_REFERENCE = SearchAttributeKey.for_keyword("InvestigationReference")
CRIME_CATEGORY = SearchAttributeKey.for_keyword("CrimeCategory")
TEAM = SearchAttributeKey.for_keyword("Team")
PRIORITY = SearchAttributeKey.for_keyword("Priority")
OVERDUE = SearchAttributeKey.for_bool("Overdue")
ENHANCED_RIGHTS = SearchAttributeKey.for_bool("EnhancedRights")
REPORTED_AT = SearchAttributeKey.for_datetime("ReportedAt")
# The staff id of whoever holds the case (whn-admin claim); unset when nobody does.
ASSIGNEE = SearchAttributeKey.for_keyword("Assignee")

SEARCH_ATTRIBUTES = (
    CASE_STAGE,
    RECEIPT_CODE,
    CRIME_REFERENCE,
    INVESTIGATION_REFERENCE,
    CRIME_CATEGORY,
    TEAM,
    PRIORITY,
    OVERDUE,
    ENHANCED_RIGHTS,
    REPORTED_AT,
    ASSIGNEE,
)
