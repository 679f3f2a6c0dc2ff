"""Shared test helpers: example reports with fresh submission ids, and waiting on a case."""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from domain.case import CaseView, Stage
from domain.report import Report
from workflows.case import CaseWorkflow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str, **overrides: Any) -> Report:
    """An example report with a fresh submission id (and top-level incident overrides)."""
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    data["submission_id"] = f"test-{uuid.uuid4()}"
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            data[section][field] = value
        else:
            data[section] = value
    return Report.model_validate_json(json.dumps(data))


async def wait_view(
    handle: WorkflowHandle[Any, Any],
    predicate: Callable[[CaseView], bool],
    *,
    timeout: float = 20,
) -> CaseView:
    """Poll the case's view until ``predicate`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: CaseView | None = None
    while True:
        try:
            last = await handle.query(CaseWorkflow.view)
            if predicate(last):
                return last
        except Exception:  # not started yet
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached; last view: {last}")
        await asyncio.sleep(0.1)


async def wait_stage(
    handle: WorkflowHandle[Any, Any], stage: Stage, timeout: float = 20
) -> CaseView:
    return await wait_view(handle, lambda v: v.stage == stage, timeout=timeout)


async def skip_time(time_env: Any, duration: timedelta) -> None:
    """Move the time-skipping server's clock, allowing time for the work it sets off.

    ``WorkflowEnvironment.sleep`` uses the client's default RPC deadline, which a loaded
    machine can outlast while the skipped-over timers run their activities.
    """
    from temporalio.api.testservice.v1 import SleepRequest

    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    await time_env.client.test_service.unlock_time_skipping_with_sleep(
        request, timeout=timedelta(minutes=3)
    )


async def until(check: Callable[[], Any], *, within: float = 60, what: str = "") -> Any:
    """Poll ``check`` (plain or async) until it returns something truthy; that value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {within} s: {what or check}")
        await asyncio.sleep(0.2)
