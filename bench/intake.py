"""Submissions per second through each intake edge, side by side (``--only intake``).

The same reports (fresh ``submission_id`` each) through:

- the Python function: ``starter.intake.submit`` on one connected client;
- HTTP: ``POST /api/v1/reports`` to ``whn-web`` running as its own process (uvicorn),
  from an httpx client holding a keep-alive connection pool;
- the CLI: ``whn-intake submit -`` as one process per report (what a shell-script
  intake does: the process start and the Temporal connection count for each report).

Each edge runs ``concurrency`` submissions at once (the CLI fewer: each is a process on
a 2-core machine). A submission ends at its receipt code (the case started in Temporal);
no worker runs meanwhile, so the edge alone is measured, not the lifecycle behind it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.stack import BenchStack
from bench.stats import summary
from domain.report import Report
from starter import intake
from starter.intake_keys import new_key, store_key
from whn.db import create_pool
from whn.devstack import _process
from whn.devstack.temporal_server import free_port

log = logging.getLogger("bench.intake")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ordinary.json"
BIN = Path(sys.executable).parent


def _body(label: str) -> bytes:
    data = json.loads(EXAMPLE.read_text())
    data["submission_id"] = f"bench-{label}-{uuid.uuid4()}"
    return json.dumps(data).encode()


async def _timed(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    """Run ``one(i)`` for i < n, ``concurrency`` at a time; rate and latency."""
    latencies: list[float] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                await one(i)
                latencies.append((time.perf_counter() - started) * 1000)
            except Exception as err:  # counted and sampled, never fatal to the run
                failures.append(f"{type(err).__name__}: {err}"[:200])

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    return {
        "submissions": n,
        "concurrency": concurrency,
        "elapsed_s": round(elapsed, 2),
        "per_s": round(len(latencies) / elapsed, 1),
        "ms": summary(latencies),
        "failures": len(failures),
        "failure_samples": failures[:3],
    }


async def _function(client: Client, task_queue: str, n: int, c: int) -> dict[str, Any]:
    async def one(i: int) -> None:
        report = Report.model_validate_json(_body(f"fn-{i}"))
        await intake.submit(client, report, task_queue=task_queue)

    return await _timed(n, c, one)


async def _http(stack: BenchStack, task_queue: str, n: int, c: int) -> dict[str, Any]:
    key = new_key()
    pool = await create_pool(stack.dsn, max_size=1)
    try:
        async with pool.acquire() as conn:
            await store_key(conn, "bench", key, created_by="bench")
    finally:
        await pool.close()
    port = free_port()
    log_path = stack.logs / "whn-web.log"
    with log_path.open("ab") as out:
        proc = _process.spawn(
            [str(BIN / "whn-web")],
            output=out,
            env={**stack.env(task_queue), "WHN_WEB_PORT": str(port)},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(
            base_url=url, headers=headers, limits=limits, timeout=60
        ) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"whn-web exited:\n{_process.tail(log_path)}")
                await asyncio.sleep(0.1)

            async def one(i: int) -> None:
                answer = await http.post("/api/v1/reports", content=_body(f"http-{i}"))
                if answer.status_code != 201:
                    raise RuntimeError(f"{answer.status_code} {answer.text[:100]}")

            for i in range(5):  # warm: connections, the app's client
                await one(-1 - i)
            return await _timed(n, c, one)
    finally:
        await _process.terminate(proc, name="whn-web", grace=30)


async def _cli(stack: BenchStack, task_queue: str, n: int, c: int) -> dict[str, Any]:
    env = {**os.environ, **stack.env(task_queue)}

    async def one(i: int) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "whn-intake"),
            "submit",
            "-",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        _, err = await proc.communicate(_body(f"cli-{i}"))
        if proc.returncode != 0:
            raise RuntimeError(err.decode(errors="replace").strip()[:200])

    return await _timed(n, c, one)


async def bench_intake(
    stack: BenchStack, client: Client, *, n: int, concurrency: int, cli_n: int
) -> dict[str, Any]:
    """The three edges, one after another, on task queues no worker polls."""
    tag = uuid.uuid4().hex[:6]
    function = await _function(client, f"bench-intake-fn-{tag}", n, concurrency)
    log.info("intake function: %s", function)
    http = await _http(stack, f"bench-intake-http-{tag}", n, concurrency)
    log.info("intake http: %s", http)
    cli = await _cli(stack, f"bench-intake-cli-{tag}", cli_n, min(4, concurrency))
    log.info("intake cli: %s", cli)
    return {"function": function, "http": http, "cli": cli}
