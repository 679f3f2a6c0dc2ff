"""``/healthz`` (the process answers) and ``/readyz`` (Temporal and PostgreSQL reachable)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from web.deps import ClientDep, PoolDep

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT = 3.0


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Temporal and PostgreSQL are reachable")
async def readyz(client: ClientDep, pool: PoolDep) -> JSONResponse:
    async def temporal() -> None:
        await client.workflow_service.get_system_info(GetSystemInfoRequest())

    async def postgres() -> None:
        await pool.fetchval("SELECT 1")

    checks = {"temporal": temporal, "postgres": postgres}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), timeout=_CHECK_TIMEOUT)
            results[name] = "ok"
        except Exception as err:  # any failure means not ready; say which, briefly
            results[name] = f"down: {type(err).__name__}"
    ready = all(v == "ok" for v in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **results}, status_code=200 if ready else 503
    )
