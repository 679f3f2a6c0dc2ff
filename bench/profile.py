"""Where a worker's CPU goes: ``py-spy`` samples, grouped, for the results file.

``python -m bench.run --profile`` samples the worker with ``py-spy record --gil --format
raw`` (only the thread holding the GIL, so the samples are the worker's Python CPU) and
this module sums them by what the innermost frame belongs to (self time), and by a few
frames of interest anywhere on the stack (inclusive time).

    python -m bench.profile bench/results/profiles/worker-lifecycle.txt
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

# Self time: the first matching prefix of the innermost frame's file names its group.
_SELF_GROUPS: tuple[tuple[str, str], ...] = (
    ("temporalio/worker/workflow_sandbox", "SDK: workflow sandbox"),
    ("<frozen importlib", "SDK: workflow sandbox"),  # modules re-imported per workflow
    ("contextlib.py", "SDK: workflow sandbox"),  # its import hook, entered per activation
    ("temporalio/bridge/_visitor", "SDK: payload visitor"),
    ("temporalio/bridge", "SDK: core bridge (poll, complete, protobuf)"),
    ("temporalio/worker/_workflow_instance", "SDK: workflow instance"),
    ("temporalio/worker/_workflow", "SDK: workflow worker"),
    ("temporalio/worker/_activity", "SDK: activity worker"),
    ("temporalio/contrib/opentelemetry", "tracing (OpenTelemetry)"),
    ("opentelemetry", "tracing (OpenTelemetry)"),
    ("temporalio/contrib/pydantic", "pydantic conversion"),
    ("pydantic", "pydantic conversion"),
    ("temporalio/converter", "SDK: data converter"),
    ("temporalio", "SDK: other"),
    ("concurrent/futures", "activation thread pool"),
    ("threading.py", "activation thread pool"),
    ("asyncio", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
    ("asyncpg", "asyncpg"),
    ("email/", "email: building messages"),
    ("aiosmtplib", "email: SMTP client"),
    ("whn/codec", "payload encryption"),
    ("cryptography", "payload encryption"),
    ("workflows/", "our workflow code"),
    ("activities/", "our activities"),
    ("domain/", "our domain code"),
)

# Inclusive time: any frame on the stack matching these.
_INCLUSIVE: tuple[tuple[str, str], ...] = (
    ("_WorkflowWorker._handle_activation", "workflow activations (all)"),
    ("_Instance._create_instance", "sandbox: new workflow instance (module re-import)"),
    ("Importer.applied", "sandbox: import hook per activation"),
    ("encode_completion", "payload visitor: completions"),
    ("decode_activation", "payload visitor: activations"),
    ("_ActivityWorker._handle_start_activity_task", "activity tasks (local and remote)"),
    ("Mailer.notify", "activity: notify (email)"),
    ("CaseStore.", "activities: case store"),
    ("_apply_query_workflow", "queries"),
)


def summarise(path: Path) -> dict[str, Any]:
    """Self and inclusive shares (%) of the samples in a raw (collapsed) py-spy file."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[_self_group(frames[-1])] += n
        for needle, name in _INCLUSIVE:
            if any(needle in f for f in frames):
                inclusive[name] += n
    if total == 0:
        return {"samples": 0}

    def pct(c: Counter[str]) -> dict[str, float]:
        return {k: round(v * 100 / total, 1) for k, v in c.most_common()}

    return {"samples": total, "self_pct": pct(own), "inclusive_pct": pct(inclusive)}


def _self_group(frame: str) -> str:
    location = frame.partition(" (")[2]
    for prefix, group in _SELF_GROUPS:
        if location.startswith(prefix):
            return group
    return "other: " + location.split("/")[0].split(":")[0]


@contextlib.asynccontextmanager
async def profiled(pid: int, path: Path | None) -> AsyncIterator[None]:
    """Sample ``pid`` with ``py-spy record`` (collapsed stacks) while the block runs."""
    import asyncio

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if path is None or not Path(spy).exists():
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # --gil: only the thread holding the GIL, i.e. where the worker's Python CPU goes.
    # At 50 Hz the pauses cost the worker well under 1%.
    proc = await asyncio.create_subprocess_exec(
        *(spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50"),
        *("--gil", "--output", str(path)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)


def main() -> None:
    for name in sys.argv[1:]:
        print(json.dumps({name: summarise(Path(name))}, indent=2))


if __name__ == "__main__":
    main()
