"""whn-web as operations see it: 503 when a system is down, health, logs, traces, privacy,
and refusing to start without a payload key."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.case import case_workflow_id
from tests.web.conftest import new_intake_key, report, serve
from web.app import create_app
from whn.codec import CodecKeyError
from whn.devstack.temporal_server import TemporalDevServer, free_port
from whn.settings import Settings
from worker import build_worker

PERSONAL = ("Karen Smith", "karen@example.org", "+44 7700 900123", "12 Mill Road", "bicycles")


async def test_temporal_stopped_is_503_with_retry_after_and_nothing_started(db_pool, settings):
    temporal = TemporalDevServer(None, free_port(), None)
    await temporal.start()
    app = create_app(
        settings.model_copy(update={"temporal_address": temporal.address}), pool=db_pool
    )
    name, key = await new_intake_key(db_pool)
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with (
            serve(app) as url,
            httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http,
        ):
            assert (await http.post("/api/v1/reports", json=report())).status_code == 201
            assert (await http.get("/readyz")).json()["temporal"] == "ok"
            await temporal.stop()
            body = report()
            started = time.monotonic()
            answer = await http.post("/api/v1/reports", json=body)
            assert time.monotonic() - started < 8  # the app's client gives up in ~4 s
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["retry-after"]) > 0
            assert "Temporal" in answer.json()["error"]
            assert "\n" not in answer.json()["error"]
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["temporal"].startswith("down")
            assert (await http.get("/healthz")).status_code == 200
            # Nothing half-done: no source recorded for a case that never started.
            assert not await db_pool.fetchval(
                "SELECT count(*) FROM case_sources WHERE submission_id = $1",
                body["submission_id"],
            )
    finally:
        await temporal.stop()


async def test_postgres_unreachable_is_503_and_readyz_says_so(dev_client, settings):
    nowhere = settings.model_copy(
        update={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/whn"}
    )
    app = create_app(nowhere, client=dev_client)  # its own pool, on a port nobody serves
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.post(
            "/api/v1/reports", json=report(), headers={"Authorization": "Bearer whn_ik_x"}
        )
        assert answer.status_code == 503 and "PostgreSQL" in answer.json()["error"]
        assert "retry-after" in answer.headers
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["postgres"].startswith("down") and ready.json()["temporal"] == "ok"


async def test_an_http_case_is_one_trace_and_no_personal_data_in_history_logs_or_spans(
    dev_server, dev_client, db_pool, settings, task_queue, caplog
):
    # A tracer provider of this test's own (the process-wide one is another test's).
    mine = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mine))
    config = dev_client.config()
    config["interceptors"] = [TracingInterceptor(provider.get_tracer("test"))]
    traced = Client(**config)
    shipped = settings.model_copy(update={"workflow_sandbox": False, "task_queue": task_queue})
    app = create_app(shipped, client=traced, pool=db_pool, tracer_provider=provider)
    name, key = await new_intake_key(db_pool)
    body = report()
    with caplog.at_level(logging.INFO, logger="whn.web.access"):
        async with (
            build_worker(traced, db_pool, shipped, task_queue=task_queue),
            serve(app) as url,
            httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http,
        ):
            created = await http.post(
                "/api/v1/reports", json=body, headers={"X-Request-ID": "req-12345678"}
            )
            assert created.status_code == 201
            assert created.headers["x-request-id"] == "req-12345678"
            code = created.json()["receipt_code"]
            assert (await http.get(f"/api/v1/cases/{code}")).status_code == 200
            provider.force_flush()

    # The raw history, read without the codec, holds none of the reporter's data.
    plain = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=pydantic_data_converter
    )
    history = await plain.get_workflow_handle(case_workflow_id(code)).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    for secret in PERSONAL:
        assert secret.encode() not in raw, secret

    # One access line per request: route templates, never the reference, key or body.
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "whn.web.access"]
    assert [(x["method"], x["route"], x["status"]) for x in lines] == [
        ("POST", "/api/v1/reports", 201),
        ("GET", "/api/v1/cases/{ref}", 200),
    ]
    assert lines[0]["request_id"] == "req-12345678" and lines[0]["intake_system"] == name
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (*PERSONAL, code, key):
        assert secret not in logged, secret

    # The request's server span is the root of the case's trace.
    spans = mine.get_finished_spans()
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /api/v1/reports"]
    assert server.parent is None
    assert (server.attributes or {}).get("whn.request_id") == "req-12345678"
    assert format(server.context.trace_id, "032x") == lines[0]["trace_id"]
    (start,) = [s for s in spans if s.name == "StartWorkflow:CaseWorkflow"]
    assert start.context.trace_id == server.context.trace_id
    assert start.parent is not None
    in_trace = {s.name for s in spans if s.context.trace_id == server.context.trace_id}
    assert "RunActivity:notify" in in_trace  # Step 1's opening (patch receipt-opens-case)
    for span in spans:
        if span.kind != SpanKind.SERVER or not span.name.startswith(("GET ", "POST ")):
            continue  # the HTTP requests' spans (Temporal's carry the workflow id)
        attributes = json.dumps(dict(span.attributes or {}), default=str)
        for secret in (*PERSONAL, code, key, "127.0.0.1:"):
            if secret == "127.0.0.1:" and '"http.host"' in attributes:
                continue  # our own listening address, not the client's
            assert secret not in attributes, (span.name, secret)
        assert not {"client.address", "http.client_ip", "net.peer.ip"} & set(span.attributes or {})


def test_without_a_key_the_app_and_whn_web_refuse_to_start(settings, tmp_path: Path):
    unset = Settings(_env_prefix="WHN_UNSET_", data_dir=tmp_path)
    with pytest.raises(CodecKeyError, match="WHN_CODEC_KEYS or WHN_CODEC_KEY_FILE"):
        create_app(unset)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_")}
    env |= {"WHN_DATA_DIR": str(tmp_path), "WHN_WEB_PORT": str(free_port())}
    refused = subprocess.run(
        [str(Path(sys.executable).parent / "whn-web")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1, refused.stderr
    lines = [ln for ln in refused.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and "WHN_CODEC_KEYS" in lines[0] and "Traceback" not in refused.stderr


async def test_the_app_refuses_a_client_that_would_write_plaintext(dev_server, settings):
    plain = await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=pydantic_data_converter
    )
    with pytest.raises(CodecKeyError, match="does not encrypt"):
        create_app(settings, client=plain)


async def test_whn_web_drains_a_request_in_flight_on_sigterm(db_pool, pg_dsn, settings):
    """SIGTERM during a request: it is answered, then the process exits 0."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # never answered; closed at the end

    hung = await asyncio.start_server(hold, "127.0.0.1", 0)
    name, key = await new_intake_key(db_pool)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_")}
    env |= {
        "WHN_CODEC_KEYS": os.environ["WHN_CODEC_KEYS"],
        "WHN_DATABASE_URL": pg_dsn,
        # A "Temporal" that accepts and never answers: the submission waits its
        # WHN_WEB_REQUEST_TIMEOUT, in flight when the signal comes, then gets its 503.
        "WHN_TEMPORAL_ADDRESS": f"127.0.0.1:{hung.sockets[0].getsockname()[1]}",
        "WHN_WEB_REQUEST_TIMEOUT": "4",
        "WHN_WEB_PORT": str(port),
        "WHN_DATA_DIR": str(settings.data_dir),
    }
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "whn-web"), env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    output = asyncio.create_task(proc.stderr.read())
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            for _ in range(200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            in_flight = asyncio.create_task(http.post("/api/v1/reports", json=report()))
            await asyncio.sleep(1)
            proc.send_signal(signal.SIGTERM)
            answer = await in_flight
        assert answer.status_code == 503 and "did not answer" in answer.json()["error"]
        await asyncio.wait_for(proc.wait(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for writer in held:
            writer.close()
        hung.close()
    err = (await output).decode(errors="replace")
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    access = [
        json.loads(line.split(": ", 1)[1]) for line in err.splitlines() if "whn.web.access" in line
    ]
    assert [(a["route"], a["status"]) for a in access][-1] == ("/api/v1/reports", 503)
    assert key not in err
