"""TemporalDevServer and the time-skipping environment: real servers from the wheels."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from whn.devstack.temporal_server import TemporalDevServer, TemporalDevServerError, free_port


async def _custom_attributes(client: Client) -> dict[str, int]:
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return dict(response.custom_attributes)


async def test_dev_server_serves_with_our_search_attributes(dev_client: Client) -> None:
    info = await dev_client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert info.server_version
    attributes = await _custom_attributes(dev_client)
    assert attributes["CaseStage"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert attributes["Overdue"] == IndexedValueType.INDEXED_VALUE_TYPE_BOOL


async def test_dev_server_restart_keeps_workflows_and_attributes(tmp_path: Path) -> None:
    server = TemporalDevServer(tmp_path / "temporal.db", free_port(), None)
    await server.start()
    try:
        client = await Client.connect(server.address)
        # No worker polls this queue: the workflow simply stays open.
        await client.start_workflow("Nobody", id="kept", task_queue="no-worker")
        await server.stop()
        assert not server.running

        await server.start()  # registers the search attributes again on the same file
        client = await Client.connect(server.address)
        described = await client.get_workflow_handle("kept").describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        assert "CaseStage" in await _custom_attributes(client)
    finally:
        await server.stop()


async def test_time_skipping_environment_skips_time(time_env: WorkflowEnvironment) -> None:
    before = await time_env.get_current_time()
    await time_env.sleep(timedelta(days=3))
    assert await time_env.get_current_time() - before >= timedelta(days=3)


async def test_refuses_a_port_already_taken() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        server = TemporalDevServer(None, free_port(), taken.getsockname()[1])
        with pytest.raises(TemporalDevServerError, match="already in use"):
            await server.start()
