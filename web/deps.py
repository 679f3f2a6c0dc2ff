"""Dependencies of the route functions: settings, the Temporal client, the pool, the caller.

Everything comes from ``app.state`` (set by ``web.app.create_app`` and its lifespan), so
a route names what it needs by type: ``settings: SettingsDep``, ``client: ClientDep``,
``pool: PoolDep``, ``source: IntakeSystem`` (the intake system its key belongs to).
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from starlette.exceptions import HTTPException
from temporalio.client import Client

from starter.errors import UnavailableError
from starter.intake_keys import authenticate
from web.errors import DB_DOWN
from whn.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client, Depends(get_client)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="whn-intake"'}


async def intake_system(request: Request, pool: PoolDep) -> str:
    """The intake system whose key is the request's bearer token; 401 for anything else.

    Looked up on every request, so a revoked key is refused from its next request on.
    """
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(401, "an intake key is required: Authorization: Bearer KEY", _CHALLENGE)
    try:
        name = await authenticate(pool, key.strip())
    except DB_DOWN as err:
        raise UnavailableError(f"PostgreSQL could not be reached: {err}") from None
    if name is None:
        raise HTTPException(401, "the intake key is not valid (unknown or revoked)", _CHALLENGE)
    request.state.intake_system = name  # for the access log
    return name


IntakeSystem = Annotated[str, Depends(intake_system)]
