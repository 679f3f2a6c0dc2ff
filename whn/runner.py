"""What a cached case keeps of the activation that started it: copies, not views.

The SDK decodes each activation into one protobuf arena (upb), and a view into a
message (a sub-message, a map or a repeated field) keeps its whole arena alive. A run
holds four such views for its whole life: its memo and headers in ``workflow.info()``,
its last completion result, and the headers of its ``ExecuteWorkflowInput`` (a fifth,
its last failure, on a retried run). So every
cached case kept the whole first activation: the report's payload, encrypted and then
decoded in place, the search attributes and every map in it (``heaptrack`` on 1,000
parked cases, 2026-12-02: 28 MiB of 113 MiB live in upb arenas, about 20 KiB a case;
docs/deployment.md "What a cached case holds").

The worker's runners (``CompactUnsandboxedRunner``, ``CompactSandboxedRunner``:
subclasses of the SDK's own, so its checks of a runner's kind still hold, the debugger's
among them) give each new run copies of the first three and of its last failure, each
copy in a small arena of its own;
``CompactHeaders``, the first of the worker's workflow interceptors, does the same for
the input's headers before the workflow reads them (the one before it, the client's
``TracingInterceptor``, passes the same input on and keeps nothing of its headers).
Both change only where the values live, never what they are, so they are invisible to
workflow code and to replay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowInterceptorClassInput,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

M = TypeVar("M", bound=Message)


def detached(message: M) -> M:
    """A copy of ``message`` in an arena of its own (a view keeps its parent's alive)."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def detached_payloads(payloads: Mapping[str, Payload]) -> dict[str, Payload]:
    return {key: detached(value) for key, value in payloads.items()}


class CompactUnsandboxedRunner(UnsandboxedWorkflowRunner):
    """The SDK's runner without the sandbox, each run given copies (``compact_details``)."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return super().create_instance(compact_details(det))


@dataclass(frozen=True)
class CompactSandboxedRunner(SandboxedWorkflowRunner):
    """The SDK's sandboxed runner, each run given copies (``compact_details``)."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return super().create_instance(compact_details(det))


def compact_details(det: WorkflowInstanceDetails) -> WorkflowInstanceDetails:
    info = dataclasses.replace(
        det.info,
        headers=detached_payloads(det.info.headers),
        raw_memo=detached_payloads(det.info.raw_memo),
    )
    return dataclasses.replace(
        det,
        info=info,
        last_completion_result=detached(det.last_completion_result),
        last_failure=None if det.last_failure is None else detached(det.last_failure),
    )


class CompactHeaders(Interceptor):
    """Copies a run's input headers out of its first activation."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _CompactInbound


class _CompactInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        # The same object is the SDK's own (its _workflow_input) and every outer
        # interceptor's: replaced in place, none of them keeps the view.
        input.headers = detached_payloads(input.headers)
        return await self.next.execute_workflow(input)
