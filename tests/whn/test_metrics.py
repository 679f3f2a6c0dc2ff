"""Worker metrics: the Temporal SDK's metrics on a Prometheus endpoint when a port is set."""

from __future__ import annotations

import asyncio
import urllib.request

from temporalio.client import Client

from domain.case import Stage
from starter.intake import submit
from tests.helpers import example, wait_stage
from whn.devstack.temporal_server import free_port
from whn.telemetry import runtime_for
from whn.temporal import data_converter
from worker import build_worker
from workflows.case import CaseWorkflow


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


async def test_worker_metrics_are_scraped_from_prometheus(
    dev_server, db_pool, settings, task_queue
):
    port = free_port()
    configured = settings.model_copy(update={"metrics_port": port})
    runtime = runtime_for(configured)
    assert runtime is not None
    assert runtime_for(settings) is None  # off unless a port is configured
    client = await Client.connect(
        dev_server.address,
        namespace=dev_server.namespace,
        runtime=runtime,
        data_converter=data_converter(),
    )
    async with build_worker(client, db_pool, configured, task_queue=task_queue):
        submitted = await submit(client, example("ordinary"), task_queue=task_queue)
        handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
        await wait_stage(handle, Stage.AWAITING_REVIEW)
        text = await asyncio.to_thread(_scrape, port)
    assert "temporal_workflow_task_execution_latency" in text or "workflow_task" in text
    assert f'task_queue="{task_queue}"' in text
