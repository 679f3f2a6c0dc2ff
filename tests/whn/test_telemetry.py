"""One case action is one trace, from the admin call through the workflow to SQL."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from domain.case import RecordCrime, Stage
from starter.intake import submit
from tests.helpers import example, wait_stage
from whn.telemetry import setup_tracing, tracing_interceptor
from worker import build_worker
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_record_crime_is_one_trace_reaching_the_database(
    dev_client, db_pool, settings, task_queue
):
    exporter = InMemorySpanExporter()
    provider = setup_tracing(settings, service_name="test", exporter=exporter)
    assert provider is not None
    config = dev_client.config()
    config["interceptors"] = [tracing_interceptor()]
    client = Client(**config)
    async with build_worker(client, db_pool, settings, task_queue=task_queue):
        submitted = await submit(client, example("ordinary"), task_queue=task_queue)
        handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
        await wait_stage(handle, Stage.AWAITING_REVIEW)
        await handle.execute_update(
            CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
        )
        provider.force_flush()
    spans = exporter.get_finished_spans()
    by_name: dict[str, list] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)

    # The intake action: one trace from the submit through the workflow to SQL.
    (start,) = by_name["StartWorkflow:CaseWorkflow"]
    assert start.parent is None
    case_trace = start.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == case_trace]
    names = {s.name for s in in_trace}
    # Step 1's one local activity before its commit opens, screens and sends the receipt
    # (patch receipt-opens-case).
    assert {"RunWorkflow:CaseWorkflow", "RunActivity:notify", "RunActivity:commit"} <= names
    assert any((s.attributes or {}).get("db.system") == "postgresql" for s in in_trace)

    # The staff action: Temporal's interceptor links the handler to the caller's span
    # (it does not parent it), and the handler's activities and queries follow it.
    (update,) = by_name["StartWorkflowUpdate:record_crime"]
    (handled,) = by_name["HandleUpdate:record_crime"]
    assert [link.context.span_id for link in handled.links] == [update.context.span_id]
    # The action's one opening local activity authorises and issues the reference
    # (patch one-transaction-actions).
    issued = by_name["RunActivity:begin"]
    assert issued and all(s.context.trace_id == handled.context.trace_id for s in issued)
    sql_under_issue = [
        s
        for s in spans
        if s.parent is not None
        and any(s.parent.span_id == i.context.span_id for i in issued)
        and (s.attributes or {}).get("db.system") == "postgresql"
    ]
    assert sql_under_issue, "the reference number's SQL is a child of its activity span"

    # No personal data in span attributes.
    report = example("ordinary")
    text = repr([dict(s.attributes or {}) for s in spans])
    for secret in (report.reporter.name, report.reporter.email, report.incident.description):
        assert secret not in text
