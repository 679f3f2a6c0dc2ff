"""whn.runner: a run gets copies of its memo, headers and last result, and reads them as before."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
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
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from whn.runner import (
    CompactHeaders,
    CompactSandboxedRunner,
    CompactUnsandboxedRunner,
    detached,
)

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


class _KeepsWhatItRuns(UnsandboxedWorkflowRunner):
    def __init__(self) -> None:
        super().__init__()
        self.kept: list[WorkflowInstanceDetails] = []

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        self.kept.append(det)
        return super().create_instance(det)


class Recording(CompactUnsandboxedRunner, _KeepsWhatItRuns):
    """The worker's runner, keeping what the SDK gave it and what it ran the case with."""

    def __init__(self) -> None:
        super().__init__()
        self.given: list[WorkflowInstanceDetails] = []

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        self.given.append(det)
        return super().create_instance(det)


class AddsHeader(client.Interceptor):
    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _AddsHeaderOut(next)


class _AddsHeaderOut(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        input.headers = {**input.headers, PROBE: Payload(data=b"from the client")}
        return await super().start_workflow(input)


class SeesHeaders(Interceptor):
    """Keeps the input headers each execute_workflow is given at its place in the chain."""

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


async def _run(env: WorkflowEnvironment, **worker: Any) -> list[str]:
    config = env.client.config()
    config["interceptors"] = [*config["interceptors"], AddsHeader()]
    probe_client = client.Client(**config)
    queue = f"runner-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[ReadsItsStart], **worker):
        result: list[str] = await probe_client.execute_workflow(
            ReadsItsStart.run,
            "case",
            id=f"runner-{uuid.uuid4()}",
            task_queue=queue,
            memo={"note": "kept"},
        )
    return result


async def test_a_run_reads_its_memo_headers_and_input_from_copies(
    time_env: WorkflowEnvironment,
) -> None:
    runner = Recording()
    before, after = SeesHeaders(), SeesHeaders()
    result = await _run(
        time_env, workflow_runner=runner, interceptors=[before, CompactHeaders(), after]
    )
    assert result == ["case", "kept", "from the client"]

    [given], [kept] = runner.given, runner.kept
    [original], [copied] = before.seen, after.seen
    assert type(copied) is dict and copied == dict(original)
    assert kept.info.raw_memo == given.info.raw_memo
    assert kept.info.headers == given.info.headers and PROBE in kept.info.headers
    assert kept.last_completion_result == given.last_completion_result
    # Copies: a change to the SDK's views does not reach what the run keeps.
    given.info.raw_memo["note"].data = b'"changed"'
    given.info.headers[PROBE].data = b"changed"
    given.last_completion_result.payloads.add().data = b"changed"
    assert kept.info.raw_memo["note"].data == b'"kept"'
    assert kept.info.headers[PROBE].data == b"from the client"
    assert len(kept.last_completion_result.payloads) == 0

    # The input's headers (views of the same job as info's): the rest of the chain is
    # given copies.
    assert original[PROBE].data == b"changed"
    assert copied[PROBE].data == b"from the client"


async def test_the_sandboxed_runner_gives_copies_and_runs_the_case_as_before(
    time_env: WorkflowEnvironment,
) -> None:
    runner = CompactSandboxedRunner()
    assert isinstance(runner, SandboxedWorkflowRunner)  # the SDK's debug mode asks
    result = await _run(time_env, workflow_runner=runner, interceptors=[CompactHeaders()])
    assert result == ["case", "kept", "from the client"]
