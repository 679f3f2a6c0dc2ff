"""Replay every recorded history against today's CaseWorkflow (see docs/versioning.md).

Each file in tests/histories/ is a case run by an earlier version of the workflow
(``scripts/record_histories.py``). Open cases will be replayed by the next worker
deployment exactly like this, so a change that makes any of them fail here would get
stuck cases in production: add ``workflow.patched`` or move the logic to an activity.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from domain.case import CaseInput, CaseView
from whn.temporal import data_converter
from workflows.case import CaseWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))

# Every path of the process has a history (scripts/record_histories.py PATHS).
PATHS = {
    "investigated",
    "details_reply",
    "details_expiry",
    "not_a_crime",
    "redirected_fraud",
    "redirected_by_handler",
    "emergency",
    "imu_close",
    "no_investigation",
    "overdue_review",
}


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def test_every_path_has_a_recorded_history() -> None:
    assert PATHS <= {p.name.split(".")[0] for p in HISTORIES}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays_on_the_current_workflow(path: Path) -> None:
    replayer = Replayer(workflows=[CaseWorkflow], data_converter=data_converter())
    await replayer.replay_workflow(_history(path))


# The replay test must be able to fail: the same workflow with one change that is not
# replay-safe (a timer before anything else) fails on every history; the same change
# behind workflow.patched replays them all. (Unsandboxed: the sandbox would re-import
# this test module, which it has no need to.)


@workflow.defn(name="CaseWorkflow", sandboxed=False)
class _UnguardedChange(CaseWorkflow):
    @workflow.run
    async def run(self, inp: CaseInput) -> CaseView:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(inp)


@workflow.defn(name="CaseWorkflow", sandboxed=False)
class _PatchedChange(CaseWorkflow):
    @workflow.run
    async def run(self, inp: CaseInput) -> CaseView:
        if workflow.patched("replay-test-example"):
            await workflow.sleep(timedelta(seconds=1))
        return await super().run(inp)


async def test_an_unguarded_change_fails_replay() -> None:
    replayer = Replayer(workflows=[_UnguardedChange], data_converter=data_converter())
    for path in HISTORIES:
        with pytest.raises(NondeterminismError):
            await replayer.replay_workflow(_history(path))


async def test_the_same_change_behind_patched_replays() -> None:
    replayer = Replayer(workflows=[_PatchedChange], data_converter=data_converter())
    results = await replayer.replay_workflows(_iterate(HISTORIES), raise_on_replay_failure=False)
    assert results.replay_failures == {}


async def _iterate(paths: list[Path]):  # type: ignore[no-untyped-def]
    for path in paths:
        yield _history(path)
