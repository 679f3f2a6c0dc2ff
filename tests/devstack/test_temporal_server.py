"""TemporalDevServer and the time-skipping environment: real servers from the wheels."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from whn.devstack.temporal_server import (
    SEARCH_ATTRIBUTES_CACHE_KEY,
    TemporalDevServer,
    TemporalDevServerError,
    free_port,
)


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


@activity.defn(name="eager_probe")
async def _eager_probe() -> int:
    return 1


@workflow.defn(name="EagerProbe", sandboxed=False)
class _EagerProbe:
    @workflow.run
    async def run(self) -> int:
        total = 0
        for _ in range(5):
            total += await workflow.execute_activity(
                _eager_probe, start_to_close_timeout=timedelta(seconds=10)
            )
        return total


async def test_dev_server_hands_activities_to_the_worker_eagerly() -> None:
    """The server's own count of activities it returned in a workflow task's answer."""
    server = TemporalDevServer(None, free_port(), None, metrics_port=free_port())
    await server.start()
    try:
        client = await Client.connect(server.address)
        # The SDK's default (disable_eager_activity_execution=False), as build_worker has it.
        async with Worker(
            client, task_queue="eager", workflows=[_EagerProbe], activities=[_eager_probe]
        ):
            assert (
                await client.execute_workflow(_EagerProbe.run, id="eager-probe", task_queue="eager")
                == 5
            )
        url = f"http://{server.host}:{server.metrics_port}/metrics"
        # The server's metrics reach /metrics on its reporting interval, not at once.
        for _ in range(50):
            metrics = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
            eager = [
                float(line.rsplit(b" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith(b"activity_eager_execution{") and b'taskqueue="eager"' in line
            ]
            if sum(eager) >= 1:
                break
            await asyncio.sleep(0.2)
        assert sum(eager) >= 1, "no activity was dispatched eagerly"
    finally:
        await server.stop()


_STAGE = SearchAttributeKey.for_keyword("CaseStage")
UPSERTS = 10


@workflow.defn(name="UpsertProbe", sandboxed=False)
class _UpsertProbe:
    @workflow.run
    async def run(self, n: int) -> None:
        for i in range(n):
            workflow.upsert_search_attributes([_STAGE.value_set(f"stage-{i}")])
            await workflow.sleep(0.001)  # one workflow task, and one visibility write, each


async def _persistence_requests(url: str) -> dict[str, float]:
    """The server's ``persistence_requests`` counters on ``/metrics``, by operation."""
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    counts: dict[str, float] = {}
    for line in text.decode().splitlines():
        if line.startswith("persistence_requests{"):
            operation = line.split('operation="', 1)[1].split('"', 1)[0]
            counts[operation] = counts.get(operation, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_dev_server_keeps_its_search_attribute_cache() -> None:
    args = TemporalDevServer(None, 7233, None).command()
    assert args[args.index(f"{SEARCH_ATTRIBUTES_CACHE_KEY}=false") - 1] == "--dynamic-config-value"


async def test_dev_server_answers_upserts_from_its_search_attribute_cache() -> None:
    """No read of the cluster's metadata per search attribute checked (the CLI's own
    default would read it from SQLite about five times per upsert); the attributes
    registered at start are in the cache, so the upserts are accepted and visible."""
    server = TemporalDevServer(None, free_port(), None, metrics_port=free_port())
    await server.start()
    try:
        client = await Client.connect(server.address)
        url = f"http://{server.host}:{server.metrics_port}/metrics"
        async with Worker(client, task_queue="upserts", workflows=[_UpsertProbe]):
            await client.execute_workflow(_UpsertProbe.run, 1, id="warm", task_queue="upserts")
            await asyncio.sleep(1.5)  # the warm-up's counts reported
            before = await _persistence_requests(url)
            handle = await client.start_workflow(
                _UpsertProbe.run, UPSERTS, id="upserts", task_queue="upserts"
            )
            await handle.result()
        # The server's metrics reach /metrics on its reporting interval: wait until this
        # run's writes are counted, so its reads are too.
        for _ in range(50):
            after = await _persistence_requests(url)
            writes = after.get("UpdateWorkflowExecution", 0) - before.get(
                "UpdateWorkflowExecution", 0
            )
            if writes >= UPSERTS:
                break
            await asyncio.sleep(0.2)
        assert writes >= UPSERTS, after
        reads = after.get("GetCurrentClusterMetadata", 0) - before.get(
            "GetCurrentClusterMetadata", 0
        )
        assert reads < UPSERTS, f"{reads:.0f} cluster metadata reads for {UPSERTS} upserts"
        described = await handle.describe()
        assert described.typed_search_attributes.get(_STAGE) == f"stage-{UPSERTS - 1}"
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
