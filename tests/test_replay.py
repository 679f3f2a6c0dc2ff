"""Replay every recorded history against today's CaseWorkflow (see docs/versioning.md).

Each file in tests/histories/ is a case run by an earlier version of the workflow
(``scripts/record_histories.py``). Open cases will be replayed by the next worker
deployment exactly like this, so a change that makes any of them fail here would get
stuck cases in production: add ``workflow.patched`` or move the logic to an activity.

The histories recorded since the replay test covered the codec are encrypted with the
committed TEST key ``tests/histories/replay-test-key.txt``: they replay through the same
converter as the worker's, decrypting every payload. Which paths must have a history is
not a list kept here: it is read from the process itself (every stage, every staff
action and signal of ``CaseWorkflow``, every wait of ``Timings`` falling due, every
``workflow.patched`` id, a continue-as-new and a run resumed from the carried state, an
activity that finally fails), so a new action, timer or patch without a recorded history
fails ``test_every_part_of_the_process_has_a_recorded_history``.

Every history is replayed in full, in the sandbox, by one ``Replayer`` built once for the
module (``replayed``), as one worker replays the cases it loads: each case still gets a
sandbox of its own (the workflow modules re-imported for it), and each file keeps a test
of its own that fails with that file's name and replay error. Building a replayer per
file cost about as much again as the replays; each file is parsed once (``_history``).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType, RetryState
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

import workflows
from domain.case import CaseInput, CaseView, Stage, Timings
from whn.codec import CodecKeyError, EncryptionCodec, generate_key
from whn.settings import Settings
from whn.temporal import data_converter
from workflows.base import BUNDLES, PATCH_BUNDLE_2026_12
from workflows.case import CaseWorkflow

HERE = Path(__file__).parent / "histories"
HISTORIES = sorted(HERE.glob("*.json"))
TEST_KEY = HERE / "replay-test-key.txt"
ENCRYPTED = b"binary/encrypted"


@cache
def _converter(key_file: Path | None = TEST_KEY) -> DataConverter:
    """The project's converter with the histories' test key (plaintext passes through)."""
    return data_converter(
        Settings(_env_prefix="WHN_REPLAY_", codec_keys=None, codec_key_file=key_file)  # type: ignore[call-arg]
    )


# What the timer of each wait of Timings is called when it falls due (the label its
# TimerStarted event carries). A new field of Timings needs its label here, and a
# recorded history in which it fires.
TIMER_LABELS: dict[str, tuple[str, ...]] = {
    "review_deadline": ("Deadline: crime recording decision",),
    "crn_deadline": ("Deadline: crn or explanation",),
    "details_reminder": ("Remind the reporter",),
    "details_expiry": ("Deadline: details reply", "Details request lapses"),
    "emergency_ack_deadline": ("Deadline: emergency acknowledgement", "Re-alert the control room"),
    "ack_deadline": ("Deadline: team acknowledgement",),
    "update_interval": ("Victim update due",),
    "claim_timeout": ("Claim lapses",),
}


@dataclass
class Facts:
    """What one recorded history shows of the process."""

    events: list[str] = field(default_factory=list)  # event types, workflow tasks aside
    stages: set[str] = field(default_factory=set)
    updates: set[str] = field(default_factory=set)
    signals: set[str] = field(default_factory=set)
    fired: set[str] = field(default_factory=set)  # labels of the timers that fired
    patches: set[str] = field(default_factory=set)
    limited: set[str] = field(default_factory=set)  # activities with a maximum of attempts
    finally_failed: set[str] = field(default_factory=set)
    continued_as_new: bool = False
    resumed: bool = False
    encrypted: bool = False


@cache
def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def _decode(payloads: Sequence[Payload], hint: type) -> Any:
    """One payload of a history, through the codec (with the test key) and converter."""
    converter = _converter()
    codec = converter.payload_codec
    plain = codec.decode_sync(list(payloads)) if isinstance(codec, EncryptionCodec) else payloads
    [value] = converter.payload_converter.from_payloads(list(plain), [hint])
    return value


@cache
def _facts_of(path: Path) -> Facts:
    facts = Facts()
    timers: dict[str, str] = {}
    scheduled: dict[int, str] = {}
    for e in _history(path).events:
        t = e.event_type
        if t not in _TASK_EVENTS:
            facts.events.append(EventType.Name(t))
        facts.encrypted |= _any_encrypted(e)
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            inp = _decode(e.workflow_execution_started_event_attributes.input.payloads, CaseInput)
            facts.resumed = inp.state is not None
        elif t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes
            if "CaseStage" in fields.indexed_fields:
                facts.stages.add(json.loads(fields.indexed_fields["CaseStage"].data))
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = e.workflow_execution_update_accepted_event_attributes
            facts.updates.add(attrs.accepted_request.input.name)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            facts.signals.add(e.workflow_execution_signaled_event_attributes.signal_name)
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            label = _decode([e.user_metadata.summary], str)
            timers[e.timer_started_event_attributes.timer_id] = label.split(" at ")[0]
        elif t == EventType.EVENT_TYPE_TIMER_FIRED:
            facts.fired.add(timers[e.timer_fired_event_attributes.timer_id])
        elif t == EventType.EVENT_TYPE_MARKER_RECORDED:
            attrs = e.marker_recorded_event_attributes
            if attrs.marker_name == "core_patch":
                data = _decode(attrs.details["patch-data"].payloads, dict)
                facts.patches.add(data["id"])
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = e.activity_task_scheduled_event_attributes
            scheduled[e.event_id] = attrs.activity_type.name
            if attrs.retry_policy.maximum_attempts > 0:
                facts.limited.add(attrs.activity_type.name)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            attrs = e.activity_task_failed_event_attributes
            if attrs.retry_state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED:
                facts.finally_failed.add(scheduled[attrs.scheduled_event_id])
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            facts.continued_as_new = True
    return facts


_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
}


def _any_encrypted(event: HistoryEvent) -> bool:
    """Whether any payload of an event is sealed by the codec (its encoding metadata)."""
    return ENCRYPTED in event.SerializeToString()


def _patch_ids() -> set[str]:
    """Every workflow.patched id the workflow code defines (constants named PATCH_*)."""
    ids = set()
    for mod in pkgutil.iter_modules(workflows.__path__):
        module = importlib.import_module(f"workflows.{mod.name}")
        ids |= {v for k, v in vars(module).items() if k.startswith("PATCH_")}
    return ids


def _taken(facts: Facts) -> set[str]:
    """The patches a history's case took: by their own markers, or by a bundle's."""
    bundled = {patch for bundle, ids in BUNDLES if bundle in facts.patches for patch in ids}
    return facts.patches | bundled


def _missing() -> dict[str, set[str]]:
    """Each part of the process that no recorded history shows."""
    facts = [_facts_of(p) for p in HISTORIES]
    seen = Facts()
    for f in facts:
        seen.stages |= f.stages
        seen.updates |= f.updates
        seen.signals |= f.signals
        seen.fired |= f.fired
        seen.patches |= _taken(f)
        seen.limited |= f.limited
        seen.finally_failed |= f.finally_failed
    defn = workflow._Definition.must_from_class(CaseWorkflow)
    missing = {
        "stage": {s.value for s in Stage} - seen.stages,
        "staff action": {n for n in defn.updates if n} - seen.updates,
        "signal": {n for n in defn.signals if n} - seen.signals,
        "timing without a timer label here": set(Timings.model_fields) - set(TIMER_LABELS),
        "timing falling due": {
            name
            for name, labels in TIMER_LABELS.items()
            if not any(fired.startswith(labels) for fired in seen.fired)
        },
        "patch": _patch_ids() - seen.patches,
        "activity finally failing": seen.limited - seen.finally_failed,
        "continue-as-new": set() if any(f.continued_as_new for f in facts) else {"none"},
        "run resumed from carried state": set() if any(f.resumed for f in facts) else {"none"},
        "encrypted history": set() if any(f.encrypted for f in facts) else {"none"},
    }
    return {what: names for what, names in missing.items() if names}


def test_every_part_of_the_process_has_a_recorded_history() -> None:
    assert _missing() == {}, "record them: scripts/record_histories.py (docs/versioning.md)"


def test_a_part_of_the_process_without_a_history_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: one history fewer, one timing more, and it says what."""
    kept = [p for p in HISTORIES if not p.name.startswith("handoff_failed")]
    monkeypatch.setattr(f"{__name__}.HISTORIES", kept)
    monkeypatch.setitem(TIMER_LABELS, "new_wait", ("A wait nobody recorded",))
    missing = _missing()
    assert missing["activity finally failing"] == {"hand_off"}
    assert missing["timing falling due"] == {"new_wait"}


def test_a_patch_changes_the_sequence_wherever_its_marker_is() -> None:
    """Where a history carries a patch's marker, the code behind the patch ran: its
    events differ from the same path recorded before the patch (``<path>.json``). A
    variant without the marker never reached the patched call (no details reply on that
    path, say), so it has nothing to differ in."""
    for patch in _patch_ids():
        compared = 0
        for path in HISTORIES:
            stem, _, variant = path.stem.partition(".")
            base = HERE / f"{stem}.json"
            if variant and base.exists() and patch in _taken(_facts_of(path)):
                if patch not in _taken(_facts_of(base)):
                    assert _facts_of(path).events != _facts_of(base).events, path.name
                    compared += 1
        assert compared, f"no history recorded before {patch} to compare with"


def test_every_patch_of_a_bundle_is_a_patch_of_the_workflow() -> None:
    for bundle, ids in BUNDLES:
        assert bundle in _patch_ids()
        assert ids <= _patch_ids(), f"{bundle}: {ids - _patch_ids()} are not PATCH_* ids"


BUNDLED = sorted(HERE.glob(f"*.{PATCH_BUNDLE_2026_12}.json"))
# A case from before the bundle: one marker per patch it took.
UNBUNDLED = HERE / "investigated.one-transaction-actions.json"


def _markers(path: Path) -> list[str]:
    return [
        _decode(e.marker_recorded_event_attributes.details["patch-data"].payloads, dict)["id"]
        for e in _history(path).events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]


def test_a_bundled_case_has_one_marker_and_replays_as_an_old_one_does(
    replayed: dict[Path, Exception | None],
) -> None:
    """A new case takes every patch with the bundle's one marker; a case recorded before
    the bundle keeps its own markers; both replay on the current workflow (in
    ``replayed``, with every other history)."""
    assert BUNDLED, "record them: scripts/record_histories.py --suffix bundle-2026-12"
    for path in BUNDLED:
        assert _markers(path) == [PATCH_BUNDLE_2026_12], path.name
    assert len(_markers(UNBUNDLED)) > 1 and PATCH_BUNDLE_2026_12 not in _markers(UNBUNDLED)
    assert {path: replayed[path] for path in [*BUNDLED, UNBUNDLED]} == dict.fromkeys(
        [*BUNDLED, UNBUNDLED]
    )


def test_a_new_case_takes_the_newest_bundle_with_one_marker() -> None:
    """The newest bundle (bundle-2026-12-actions: search-records added) is the one marker
    of the cases recorded with it; they replay in test_history_replays_on_the_current_workflow."""
    newest, ids = BUNDLES[0]
    recorded = sorted(HERE.glob(f"*.{newest}.json"))
    assert recorded, f"record them: scripts/record_histories.py --suffix {newest}"
    assert ids > BUNDLES[1][1]  # the one before and more
    for path in recorded:
        assert _markers(path) == [newest], path.name


def _after_update(path: Path, update: str) -> list[str]:
    """The events from ``update`` accepted to the next update accepted (task events aside)."""
    events: list[str] = []
    for e in _history(path).events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            name = e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            if events:
                break
            if name != update:
                continue
        if events or e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            if e.event_type not in _TASK_EVENTS:
                events.append(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_"))
    return events


def test_a_bundled_case_keeps_its_due_timer_while_the_time_is_unchanged() -> None:
    """keep-due-timer: a step recorded in an investigation changes no due time; before
    the patch the case cancelled its timer and started the same one again, now it keeps
    it."""
    before = _after_update(UNBUNDLED, "record_step")
    after = _after_update(HERE / f"investigated.{PATCH_BUNDLE_2026_12}.json", "record_step")
    assert {"TIMER_CANCELED", "TIMER_STARTED"} <= set(before)
    assert after and not {"TIMER_CANCELED", "TIMER_STARTED"} & set(after)


@workflow.defn(name="CaseWorkflow", sandboxed=False)
class _Unsandboxed(CaseWorkflow):
    """The workflow outside the sandbox, so that it sees a patched ``workflows.base``."""

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseView:
        return await super().run(inp)


async def test_a_worker_from_before_the_bundle_cannot_replay_a_bundled_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rolling deploy: a worker deployed before the bundle (no bundles: every patch
    asked by itself, the keep-due-timer one never taken) fails a bundled case's workflow
    task (a new worker then takes it), and still replays the cases from before."""
    monkeypatch.setattr("workflows.base.BUNDLES", ())
    replayer = Replayer(workflows=[_Unsandboxed], data_converter=_converter())
    # One replayer for all, as in test_history_replays_on_the_current_workflow: each
    # failure is told apart by its file, one case's failure stops no other case's replay.
    replays = await _replay_each(replayer, [*BUNDLED, UNBUNDLED])
    assert {path for path, failure in replays.items() if failure} == set(BUNDLED)
    assert replays[UNBUNDLED] is None


async def test_encrypted_histories_replay_only_with_their_key() -> None:
    """The codec's decrypt path runs: under another key an encrypted history can be
    neither read nor replayed."""
    encrypted = [p for p in HISTORIES if _facts_of(p).encrypted]
    started = _history(encrypted[0]).events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata["encoding"] == ENCRYPTED
    other = data_converter(
        Settings(_env_prefix="WHN_REPLAY_", codec_keys=f"other:{generate_key()}")  # type: ignore[call-arg]
    )
    with pytest.raises(CodecKeyError):
        await other.decode(started.input.payloads, [CaseInput])
    replayer = Replayer(workflows=[CaseWorkflow], data_converter=other)
    results = await replayer.replay_workflows(_iterate(encrypted), raise_on_replay_failure=False)
    assert len(results.replay_failures) == len(encrypted)  # keyed by run id
    assert all("CodecKeyError" in str(e) for e in results.replay_failures.values())


async def _replay_each(replayer: Replayer, paths: list[Path]) -> dict[Path, Exception | None]:
    """Each history replayed by the one replayer: its failure, or None, by its file."""
    by_id = {_history(path).workflow_id: path for path in paths}
    replays: dict[Path, Exception | None] = {}
    async with replayer.workflow_replay_iterator(_iterate(paths)) as results:
        async for result in results:
            replays[by_id[result.history.workflow_id]] = result.replay_failure
    return replays


@pytest.fixture(scope="module")
async def replayed() -> dict[Path, Exception | None]:
    """Every history replayed once on today's CaseWorkflow in the sandbox."""
    replayer = Replayer(workflows=[CaseWorkflow], data_converter=_converter())
    return await _replay_each(replayer, HISTORIES)


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_history_replays_on_the_current_workflow(
    path: Path, replayed: dict[Path, Exception | None]
) -> None:
    assert path in replayed, f"{path.name} was not replayed"
    failure = replayed[path]
    if failure is not None:
        raise AssertionError(f"{path.name} does not replay: {failure}") from failure


# The replay test must be able to fail: the same workflow with one change that is not
# replay-safe (a memo upsert before anything else) fails on every history;
# the same change behind workflow.patched replays them all. (Not a timer: a run resumed
# from carried state starts with a timer of its own, and replay does not compare timer
# durations, so a timer first goes unnoticed there.) (Unsandboxed: the sandbox would re-import
# this test module, which it has no need to.)


@workflow.defn(name="CaseWorkflow", sandboxed=False)
class _UnguardedChange(CaseWorkflow):
    @workflow.run
    async def run(self, inp: CaseInput) -> CaseView:
        workflow.upsert_memo({"replay-test": 1})
        return await super().run(inp)


@workflow.defn(name="CaseWorkflow", sandboxed=False)
class _PatchedChange(CaseWorkflow):
    @workflow.run
    async def run(self, inp: CaseInput) -> CaseView:
        if workflow.patched("replay-test-example"):
            workflow.upsert_memo({"replay-test": 1})
        return await super().run(inp)


async def test_an_unguarded_change_fails_replay() -> None:
    replayer = Replayer(workflows=[_UnguardedChange], data_converter=_converter())
    for path in HISTORIES:
        with pytest.raises(NondeterminismError):
            await replayer.replay_workflow(_history(path))


async def test_the_same_change_behind_patched_replays() -> None:
    replayer = Replayer(workflows=[_PatchedChange], data_converter=_converter())
    results = await replayer.replay_workflows(_iterate(HISTORIES), raise_on_replay_failure=False)
    assert results.replay_failures == {}


async def _iterate(paths: list[Path]):  # type: ignore[no-untyped-def]
    for path in paths:
        yield _history(path)
