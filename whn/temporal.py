"""The one Temporal client configuration: data converter, search attributes, connect_client."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from whn.settings import Settings

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
)

_CLI_TYPE = {
    "KEYWORD": "Keyword",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "INT": "Int",
    "TEXT": "Text",
    "FLOAT": "Double",
}


def search_attribute_cli_args() -> list[str]:
    """``--search-attribute Name=Type`` pairs for ``temporal server start-dev``."""
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        kind = key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")
        args += ["--search-attribute", f"{key.name}={_CLI_TYPE[kind]}"]
    return args


def data_converter() -> DataConverter:
    """The project's data converter, used by worker, starter, admin, replayer and tests."""
    return pydantic_data_converter


async def connect_client(settings: Settings) -> Client:
    """Connect to Temporal with the project's data converter."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(),
    )
