"""whn.runner: a run gets copies of its memo, headers and last result, and reads them as before."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from temporalio import client, workflow
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowInterceptorClassInput,
    WorkflowRunner,
)

from whn.runner import CompactHeaders, CompactRunner, detached

PROBE = "whn-probe"


@workflow.defn
class ReadsItsStart:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        header = workflow.info().headers.get(PROBE)
        return [
            name,
            workflow.memo_value("note", type_hint=str),
            header.data.decode() if header is not None else "",
        ]


class Recording(WorkflowRunner):
    """Keeps every det it is given, then hands it on."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner
        self.seen: list[WorkflowInstanceDetails] = []

    def prepare_workflow(self, defn: workflow._Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        self.seen.append(det)
        return self.inner.create_instance(det)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class AddsHeader(client.Interceptor):
    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _AddsHeaderOut(next)


class _AddsHeaderOut(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        input.headers = {**input.headers, PROBE: Payload(data=b"from the client")}
        return await super().start_workflow(input)


class SeesHeaders(Interceptor):
    """After CompactHeaders in the chain: what the rest of the chain is given."""

    def __init__(self) -> None:
        self.seen: list[Mapping[str, Payload]] = []

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        seen = self.seen

        class Inbound(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                seen.append(input.headers)
                return await self.next.execute_workflow(input)

        return Inbound


def test_a_detached_message_is_an_equal_copy_that_its_source_no_longer_reaches() -> None:
    parent = Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')
    copy = detached(parent)
    assert copy == parent and copy is not parent
    parent.data = b'"changed"'
    assert copy.data == b'"x"'


async def test_a_run_reads_its_memo_headers_and_input_from_copies(
    time_env: WorkflowEnvironment,
) -> None:
    compacted = Recording(UnsandboxedWorkflowRunner())  # what CompactRunner hands on
    outer = Recording(CompactRunner(compacted))  # what the SDK made, views included
    sees = SeesHeaders()
    config = time_env.client.config()
    config["interceptors"] = [*config["interceptors"], AddsHeader()]
    probe_client = client.Client(**config)
    queue = f"runner-{uuid.uuid4()}"
    async with Worker(
        time_env.client,
        task_queue=queue,
        workflows=[ReadsItsStart],
        workflow_runner=outer,
        interceptors=[CompactHeaders(), sees],
    ):
        result = await probe_client.execute_workflow(
            ReadsItsStart.run,
            "case",
            id=f"runner-{uuid.uuid4()}",
            task_queue=queue,
            memo={"note": "kept"},
        )
    assert result == ["case", "kept", "from the client"]

    [given], [kept] = outer.seen, compacted.seen
    assert kept.info.raw_memo == given.info.raw_memo
    assert kept.info.headers == given.info.headers and PROBE in kept.info.headers
    assert kept.last_completion_result == given.last_completion_result
    # Copies: a change to the SDK's views does not reach what the run keeps.
    given.info.raw_memo["note"].data = b'"changed"'
    given.info.headers[PROBE].data = b"changed"
    assert kept.info.raw_memo["note"].data == b'"kept"'
    assert kept.info.headers[PROBE].data == b"from the client"

    # The input's headers reach the rest of the chain as a plain dict of copies.
    [headers] = sees.seen
    assert type(headers) is dict
    assert headers[PROBE].data == b"from the client"
