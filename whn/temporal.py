"""The one Temporal client configuration: data converter, search attributes, connect_client."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from whn.settings import Settings
from workflows.attributes import SEARCH_ATTRIBUTES

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


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    """Names of the project's search attributes not registered on ``namespace``."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    have = set(response.custom_attributes)
    return [key.name for key in SEARCH_ATTRIBUTES if key.name not in have]


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the project's search attributes that ``namespace`` lacks; return their names."""
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.service import RPCError, RPCStatusCode

    try:
        missing = set(await missing_search_attributes(client, namespace))
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server
            raise
        missing = {key.name for key in SEARCH_ATTRIBUTES}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    key.name: key.indexed_value_type  # type: ignore[misc]
                    for key in SEARCH_ATTRIBUTES
                    if key.name in missing
                },
            )
        )
    return sorted(missing)
