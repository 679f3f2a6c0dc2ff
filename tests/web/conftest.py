"""whn-web on a real uvicorn server (loopback, a free port) against the suite's servers.

``serve(app)`` runs an application until the block ends; ``web`` is the app on the
session's dev server and PostgreSQL, with a worker on the test's task queue and an
httpx client holding a fresh intake key.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from starter.intake_keys import new_key, store_key
from tests.helpers import EXAMPLES
from tests.web.browser import browser  # noqa: F401 - the session's Chromium (test_track_browser)
from web.app import create_app
from whn.devstack.temporal_server import free_port
from worker import build_worker


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 until the block ends; its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "whn-web did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


def report(**changes: Any) -> dict[str, Any]:
    """The ordinary example as JSON, with a fresh submission id and ``a__b`` changes."""
    data = json.loads((EXAMPLES / "ordinary.json").read_text())
    data["submission_id"] = f"http-{uuid.uuid4()}"
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return data


@dataclass
class Web:
    http: httpx.AsyncClient
    url: str
    key: str
    name: str


async def new_intake_key(pool: Any, name: str | None = None) -> tuple[str, str]:
    name = name or f"intake-{uuid.uuid4().hex[:8]}"
    key = new_key()
    async with pool.acquire() as conn:
        await store_key(conn, name, key, created_by="supervisor-1")
    return name, key


@pytest.fixture
async def web(dev_client, db_pool, settings, task_queue) -> AsyncIterator[Web]:
    shipped = settings.model_copy(update={"workflow_sandbox": False, "task_queue": task_queue})
    app = create_app(shipped, client=dev_client, pool=db_pool)
    name, key = await new_intake_key(db_pool)
    async with (
        build_worker(dev_client, db_pool, shipped, task_queue=task_queue),
        serve(app) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http,
    ):
        yield Web(http, url, key, name)
