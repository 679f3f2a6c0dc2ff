"""Where one admin action's time goes: ``python -m bench.adminpath [--cases N]``.

On an idle bench stack (``bench.stack``: PostgreSQL with fsync, the dev server, a worker
process as shipped, with its spans written to its log by the console exporter), ``N``
cases are parked in review, then ``request-details`` is sent to each, one after another,
through ``starter.admin.act`` as ``whn-admin`` sends it, each part timed:

- client side: the reference's resolution (``starter.refs``), the supervisor lookup,
  the update's round trip (codec and interceptors included), from the driver's clock;
- server side, from each case's history (``bench.history.update_breakdown``);
- worker side, from the worker's spans: each local activity (``begin``, ``commit``)
  as its activity span saw it, and the SQL inside them.

Then, interleaved (one of each in turn, so a busy machine weighs on both alike), what
issue 20's admin changes replaced against what they do now:

- ``client_ab``: what ``act`` asks before it sends, the old way (describe, then a new
  connection for the supervisor lookup) against ``starter.admin.prepare`` (the lookup
  on the pool, asked while the case is described);
- ``store_ab``: the case store's side of one action, the old way (``begin`` audits in
  a transaction of its own, then ``commit``) against one transaction (``begin`` one
  read; the audit row with the commit).

Prints one JSON object of medians (and p90s); nothing is written under bench/results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import statistics
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

import asyncpg
from temporalio.client import Client

import starter.admin as admin
import starter.refs as refs
from activities.store import CaseStore
from bench.history import update_breakdown
from bench.lifecycle import example_report, staff_actions
from bench.parked import STAGE_SQL
from bench.run import BENCH_TIMINGS
from bench.stack import BenchStack
from domain.actions import StaffAction
from domain.effects import Authorise, Begin, CaseChange, CaseNote, Commit
from starter.intake import submit
from whn import db
from whn.temporal import connect_client, keyring
from workflows.acting import update_for

log = logging.getLogger("bench.adminpath")


class _Timed:
    """Wraps an async function, keeping how long each call took (ms)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.ms: list[float] = []

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await self.fn(*args, **kwargs)
        finally:
            self.ms.append((time.perf_counter() - t0) * 1000)


def _stats(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {}
    ms = sorted(ms)
    return {
        "p50": round(statistics.median(ms), 2),
        "p90": round(ms[int(0.9 * (len(ms) - 1))], 2),
        "n": len(ms),
    }


def _spans(log_text: str) -> list[dict[str, Any]]:
    """The console exporter's JSON spans out of a worker log."""
    spans = []
    decoder = json.JSONDecoder()
    for match in re.finditer(r'^\{\s*\n\s*"name"', log_text, re.M):
        try:
            span, _ = decoder.raw_decode(log_text, match.start())
        except json.JSONDecodeError:
            continue
        spans.append(span)
    return spans


def _ms(span: dict[str, Any]) -> float:
    start = datetime.fromisoformat(span["start_time"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(span["end_time"].replace("Z", "+00:00"))
    return (end - start).total_seconds() * 1000


def _worker_parts(spans: list[dict[str, Any]], workflow_ids: set[str]) -> dict[str, Any]:
    by_id = {s["context"]["span_id"]: s for s in spans}
    out: dict[str, list[float]] = defaultdict(list)
    sql: dict[str, list[float]] = defaultdict(list)
    for span in spans:
        attrs = span.get("attributes") or {}
        if span["name"].startswith("RunActivity:") and attrs.get("temporalWorkflowID") in (
            workflow_ids
        ):
            out[span["name"]].append(_ms(span))
    for span in spans:
        parent = by_id.get(span.get("parent_id") or "")
        if parent is None or not parent["name"].startswith("RunActivity:"):
            continue
        if (parent.get("attributes") or {}).get("temporalWorkflowID") not in workflow_ids:
            continue
        sql[f"{parent['name']} > {span['name'][:40]}"].append(_ms(span))
    return {
        "activities": {k: _stats(v) for k, v in sorted(out.items())},
        "sql": {k: _stats(v) for k, v in sorted(sql.items())},
    }


async def _park(client: Client, stack: BenchStack, queue: str, n: int) -> list[str]:
    template = example_report()
    ids = []
    for i in range(n):
        report = template.model_copy(update={"submission_id": f"adminpath-{i}"})
        done = await submit(client, report, task_queue=queue, timings=BENCH_TIMINGS)
        ids.append(done.workflow_id)
    pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=2)
    try:
        for _ in range(600):
            if await pool.fetchval(STAGE_SQL, ids) >= n:
                break
            await asyncio.sleep(0.2)
    finally:
        await pool.close()
    return ids


async def _old_prepare(client: Client, code: str, action: StaffAction, dsn: str) -> str:
    """What ``act`` asked before it sent, until issue 20: one after the other, a new
    connection for the lookup."""
    workflow_id = await refs.resolve_workflow_id(client, code, database_url=dsn)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.fetchval(
            "SELECT active AND 'supervisor' = ANY(roles) FROM staff WHERE staff_id = $1",
            action.actor,
        )
    finally:
        await conn.close()
    return workflow_id


async def client_ab(client: Client, dsn: str, ids: list[str], rounds: int) -> dict[str, Any]:
    action = staff_actions(example_report())["request_details"]
    old: list[float] = []
    new: list[float] = []
    for i in range(rounds):
        code = ids[i % len(ids)].removeprefix("case-")
        for name, out in (("old", old), ("new", new)) if i % 2 else (("new", new), ("old", old)):
            t0 = time.perf_counter()
            if name == "old":
                await _old_prepare(client, code, action, dsn)
            else:
                await admin.prepare(client, code, action, database_url=dsn)
            out.append((time.perf_counter() - t0) * 1000)
    await refs.close_lookups()
    return {"old_ms": _stats(old), "new_ms": _stats(new)}


async def store_ab(stack: BenchStack, ids: list[str], rounds: int) -> dict[str, Any]:
    pool = await db.create_pool(stack.dsn, max_size=2)
    store = CaseStore(pool, force_code="BENCH", keyring=keyring(stack.settings))
    old: list[float] = []
    new: list[float] = []
    try:
        for i in range(rounds):
            workflow_id = ids[i % len(ids)]
            for one_transaction in (i % 2 == 0, i % 2 == 1):
                allowed = Authorise(
                    workflow_id=workflow_id, actor="handler-1", action="request-details"
                )
                change = CaseChange(
                    workflow_id=workflow_id,
                    event_key=f"{90000 + 2 * i + one_transaction:05d}.probe",
                    at=datetime.now().astimezone(),
                    actor="handler-1",
                    event="probe",
                    notes=[CaseNote(kind="details_question", text="Which?", request=1)],
                )
                t0 = time.perf_counter()
                if one_transaction:
                    await store.begin(Begin(authorise=allowed, audit_with_commit=True))
                    await store.commit(
                        Commit(workflow_id=workflow_id, changes=[change], audits=[allowed])
                    )
                else:
                    await store.begin(Begin(authorise=allowed))
                    await store.commit(Commit(workflow_id=workflow_id, changes=[change]))
                (new if one_transaction else old).append((time.perf_counter() - t0) * 1000)
    finally:
        await pool.close()
    return {"old_ms": _stats(old), "new_ms": _stats(new)}


async def probe(cases: int, rounds: int) -> dict[str, Any]:
    stack = BenchStack()
    await stack.start()
    worker = None
    try:
        worker = await stack.start_worker(
            "case", "bench-adminpath", extra_env={"WHN_OTEL_EXPORTER": "console"}
        )
        client = await connect_client(stack.settings)
        ids = await _park(client, stack, worker.task_queue, cases + 5)
        await asyncio.sleep(2)
        action = staff_actions(example_report())["request_details"]
        describe = _Timed(refs.describe_case)
        resolve = _Timed(refs.resolve_workflow_id)
        supervisor = _Timed(admin._is_supervisor)
        update_ms: list[float] = []
        real_describe, real_resolve = refs.describe_case, refs.resolve_workflow_id
        real_supervisor = admin._is_supervisor
        refs.describe_case = describe  # type: ignore[assignment]
        admin.resolve_workflow_id = resolve  # type: ignore[attr-defined]
        admin._is_supervisor = supervisor  # type: ignore[assignment]
        total_ms: list[float] = []
        timed: dict[str, float] = {}
        try:
            for workflow_id in ids[:5]:  # warm-up: connections, imports, caches
                code = workflow_id.removeprefix("case-")
                await admin.act(client, code, action, database_url=stack.dsn)
            for workflow_id in ids[5:]:
                code = workflow_id.removeprefix("case-")
                handle = client.get_workflow_handle(workflow_id)
                real = handle.execute_update
                t_update = 0.0

                async def timed_update(*a: Any, _real: Any = real, **kw: Any) -> Any:
                    nonlocal t_update
                    t0 = time.perf_counter()
                    try:
                        return await _real(*a, **kw)
                    finally:
                        t_update = (time.perf_counter() - t0) * 1000

                orig_get = client.get_workflow_handle
                client.get_workflow_handle = (  # type: ignore[method-assign]
                    lambda _id, *a, _h=handle, **kw: _h
                )
                handle.execute_update = timed_update  # type: ignore[method-assign]
                t0 = time.perf_counter()
                try:
                    await admin.act(client, code, action, database_url=stack.dsn)
                finally:
                    client.get_workflow_handle = orig_get  # type: ignore[method-assign]
                total_ms.append((time.perf_counter() - t0) * 1000)
                update_ms.append(t_update)
                timed[workflow_id] = t_update
        finally:
            refs.describe_case = real_describe  # type: ignore[assignment]
            admin.resolve_workflow_id = real_resolve  # type: ignore[attr-defined]
            admin._is_supervisor = real_supervisor  # type: ignore[assignment]
        # The bare update, as bench.parked times it, on the same (now cached) cases.
        bare: list[float] = []
        again = staff_actions(example_report())["request_details"]
        for workflow_id in ids[5:]:
            handle = client.get_workflow_handle(workflow_id)
            t0 = time.perf_counter()
            await handle.execute_update(update_for(type(again)), again)
            bare.append((time.perf_counter() - t0) * 1000)
        server: dict[str, list[float]] = defaultdict(list)
        for workflow_id, ms in timed.items():
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            split = update_breakdown(history, "request_details")
            if split is None:
                continue
            split["client_and_rpc"] = ms - split["server_total"]
            for part, value in split.items():
                server[part].append(value)
        await asyncio.sleep(6)  # the batch span processor's schedule (5 s)
        await worker.stop()
        spans = _spans((stack.logs / f"worker-{worker.task_queue}.log").read_text())
        worker = None
        ab = {
            "client_ab": await client_ab(client, stack.dsn, ids, rounds),
            "store_ab": await store_ab(stack, ids, rounds),
        }
        return {
            **ab,
            "cases": cases,
            "act_total_ms": _stats(total_ms),
            "client": {
                "resolve_and_describe_ms": _stats(resolve.ms),
                "describe_ms": _stats(describe.ms),
                "supervisor_lookup_ms": _stats(supervisor.ms),
                "update_rpc_ms": _stats(update_ms),
                "second_update_same_case_ms": _stats(bare),
            },
            "server_from_history_ms": {k: _stats(v) for k, v in server.items()},
            "worker_spans_ms": _worker_parts(spans, set(timed)),
        }
    finally:
        if worker is not None:
            await worker.stop()
        await stack.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=60, help="cases acted on, one each")
    p.add_argument("--rounds", type=int, default=200, help="interleaved pairs of each A/B")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(probe(args.cases, args.rounds)), indent=2))


if __name__ == "__main__":
    main()
