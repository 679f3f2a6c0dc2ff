"""``create_app``: the whn-web application, its state, routers, middleware and errors.

State (``app.state``), what the dependencies in ``web.deps`` hand to route functions:

    settings  the Settings it was built with (read once, by the caller)
    client    the Temporal client (the project's converter: fails closed without a key)
    pool      an asyncpg pool on the case store

Either may be given (tests, an embedding process); what is not given the lifespan
makes and closes. Both are made so that the app starts while Temporal or PostgreSQL is
still down (a lazy client, a pool with no idle connection): requests get 503 and
``/readyz`` says which until they are up. A router joins in ``ROUTERS``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from temporalio.client import Client
from temporalio.service import RetryConfig

from domain.report import Report
from starter.intake import MAX_REPORT_BYTES
from web import api, errors, health, track
from web.middleware import BodyLimit, Edge, Restore
from whn.db import create_pool
from whn.settings import Settings
from whn.temporal import connect_client, data_converter, ensure_encrypted

log = logging.getLogger("whn.web")

STATIC = Path(__file__).parent / "static"

# Every audience's router, in the order they are matched.
ROUTERS: tuple[APIRouter, ...] = (api.router, track.router, health.router)

# While Temporal is unreachable a request retries for about 4 s, then gets its 503.
CALL_RETRY = RetryConfig(max_elapsed_time_millis=4_000)

# The largest valid report with a margin (the CLI's limit): a body over it is 413.
BODY_LIMIT = MAX_REPORT_BYTES


def create_app(
    settings: Settings,
    *,
    client: Client | None = None,
    pool: asyncpg.Pool | None = None,
    tracer_provider: Any = None,
) -> FastAPI:
    """The application. Refuses (CodecKeyError) at once if it would write plaintext."""
    if client is None:
        data_converter(settings)  # no key: refuse now, not on the first request
    else:
        ensure_encrypted(client.data_converter, required=settings.codec_required)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned_pool = app.state.pool is None
        if app.state.client is None:
            app.state.client = await connect_client(settings, lazy=True, retry=CALL_RETRY)
        if owned_pool:
            app.state.pool = await create_pool(
                settings.database_url, min_size=0, max_size=settings.db_pool_size
            )
        log.info(
            "whn-web ready: Temporal %s, task queue %s",
            settings.temporal_address,
            settings.task_queue,
        )
        try:
            yield
        finally:
            if owned_pool:
                await app.state.pool.close()
            log.info("whn-web stopped")

    app = FastAPI(
        title="What Happens Next",
        summary="Intake API for crime reports, and the reporter's page",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.client = client
    app.state.pool = pool
    for router in ROUTERS:
        app.include_router(router)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    errors.install(app, retry_after=settings.web_retry_after)
    # add_middleware puts each outside the ones before it: BodyLimit is innermost.
    app.add_middleware(BodyLimit, limit=BODY_LIMIT)
    app.add_middleware(Restore)
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls="/healthz,/readyz",
        tracer_provider=tracer_provider,
        exclude_spans=["receive", "send"],
    )
    app.add_middleware(Edge, routes=app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the report schema the Report model's, as whn-intake gives it."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        report = Report.model_json_schema(ref_template="#/components/schemas/{model}")
        nested = report.pop("$defs", {})
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(nested)
        schemas["Report"] = report
        document["components"]["securitySchemes"] = {
            "IntakeKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "whn-admin intake-key add",
            }
        }
        document["security"] = [{"IntakeKey": []}]
        app.openapi_schema = document
    return app.openapi_schema
