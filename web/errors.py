"""Errors as HTTP answers: the CLIs' one-line reasons in ``{"error": reason}``.

RejectedError    422 (invalid input)        NotFoundError     404
ConflictError    409                        UnavailableError  503 + Retry-After
PayloadKeyError  503 (the server's payload keys; logged)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from starter.errors import (
    ConflictError,
    NotFoundError,
    PayloadKeyError,
    RejectedError,
    UnavailableError,
    WhnError,
)

log = logging.getLogger("whn.web")

# Transport failures of PostgreSQL that reach a route: the system is down, not the request.
DB_DOWN = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


class ErrorBody(BaseModel):
    """The body of every refusal: one line, the same reason the CLIs print."""

    error: str


def error(status: int, reason: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


def status_of(err: WhnError) -> int:
    if isinstance(err, NotFoundError):
        return 404
    if isinstance(err, ConflictError):
        return 409
    if isinstance(err, RejectedError):
        return 422
    return 503


def install(app: FastAPI, *, retry_after: int) -> None:
    """Register the handlers that turn errors into one-line JSON bodies."""
    later = {"Retry-After": str(retry_after)}

    async def whn_error(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, WhnError)
        status = status_of(err)
        if isinstance(err, PayloadKeyError):
            log.error("payload keys: %s", err)
        return error(status, str(err), later if isinstance(err, UnavailableError) else None)

    async def db_down(request: Request, err: Exception) -> JSONResponse:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return error(503, f"PostgreSQL could not be reached: {reason}", later)

    async def bad_request(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p not in ("path", "body", "query"))
        return error(422, f"{where or 'request'}: {first['msg']}")

    async def http_error(request: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, HTTPException)
        return error(err.status_code, str(err.detail), err.headers)

    async def runtime_error(request: Request, err: Exception) -> JSONResponse:
        # A lazy Temporal client that has never reached its server raises this.
        if "connect" in str(err).lower():
            return error(503, f"Temporal could not be reached: {str(err).splitlines()[0]}", later)
        log.exception("unexpected error in %s %s", request.method, request.scope.get("route"))
        return error(500, "internal error")

    app.add_exception_handler(WhnError, whn_error)
    for kind in DB_DOWN:
        app.add_exception_handler(kind, db_down)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RuntimeError, runtime_error)
