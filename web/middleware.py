"""What wraps every request: a request id, the access log, tracing, and the body limit.

Outermost first::

    Edge          request id (X-Request-ID), one access-log line per request; hands the
                  tracing layer a scope with the route *template* for a path, no query,
                  no client address and no headers but Host and Content-Type, so no
                  reference, token or address reaches a span
    OpenTelemetry the server span (opentelemetry-instrumentation-asgi): the Temporal
                  client's spans (start workflow, signal) are its children, so an HTTP
                  submission is the root of its case's trace
    Restore       puts the real scope back for the application
    BodyLimit     413 before a byte is parsed: by Content-Length, or counting the stream

The access log is JSON, one line: request id, method, route template, status, duration,
bytes in, the intake system (a name, never the key) and the trace id. Never a body, a
query string, a path parameter, a header or an address.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any

from opentelemetry import trace
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("whn.web.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_KEEP_HEADERS = {b"host", b"content-type", b"content-length"}
_ORIGINAL = "whn.original_scope"


def flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route with a path, routers included by ``include_router`` opened up.

    (A router's own ``prefix`` is part of its routes' paths; one given to
    ``include_router`` is not, so routers here carry theirs themselves.)
    """
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from flat_routes(included.routes)
        elif getattr(route, "path", None) is not None:
            yield route


def route_template(routes: Iterable[Any], scope: Scope) -> str:
    """The path pattern the request matches (``/api/v1/cases/{ref}``), or ``(unmatched)``."""
    partial = None  # the path matches, the method does not (a 405)
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            path = str(route.path)
            return f"{path}/{{path}}" if isinstance(route, Mount) else path
        if match == Match.PARTIAL and partial is None:
            partial = str(route.path)
    return partial or "(unmatched)"


class Edge:
    """Request id and access log; the sanitised scope for the tracing layer inside it."""

    def __init__(self, app: ASGIApp, *, routes: Any) -> None:
        self.app = app
        self._app_routes = routes
        self._routes: list[Any] | None = None

    @property
    def routes(self) -> list[Any]:
        if self._routes is None:  # every router is included by the first request
            self._routes = list(flat_routes(self._app_routes.routes))
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        route = route_template(self.routes, scope)
        status = 500
        started = time.perf_counter()
        scope.setdefault("state", {})
        scope["state"]["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        clean = {
            **scope,
            "path": route,
            "raw_path": route.encode(),
            "query_string": b"",
            "client": None,
            "headers": [(k, v) for k, v in scope.get("headers") or [] if k in _KEEP_HEADERS],
            _ORIGINAL: scope,
        }
        try:
            await self.app(clean, receive, send_with_id)
        finally:
            state: MutableMapping[str, Any] = scope.get("state") or {}
            access_log.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "method": scope.get("method"),
                        "route": route,
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                        "bytes_in": int(headers.get(b"content-length", b"0") or 0),
                        "intake_system": state.get("intake_system"),
                        "trace_id": state.get("trace_id"),
                    }
                )
            )


class Restore:
    """Inside the tracing layer: the application gets the request's real scope back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        original = scope.get(_ORIGINAL)
        if original is None:
            await self.app(scope, receive, send)
            return
        span = trace.get_current_span()
        context = span.get_span_context()
        state = original.setdefault("state", {})
        if context.is_valid:
            state["trace_id"] = format(context.trace_id, "032x")
            span.set_attribute("whn.request_id", state.get("request_id", ""))
        await self.app(original, receive, send)


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413, before anything parses it."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            if length.isdigit() and int(length) <= self.drain:
                await self._discard(receive)
            await self._too_large(send)
            return
        # Read it all (bounded), then hand it on: a chunked body over the limit is
        # refused once it passes it, and the application never sees a byte.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                if message.get("more_body"):
                    await self._discard(receive, size)
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @property
    def drain(self) -> int:
        """Up to this many bytes of a refused body are read and dropped, so that a client
        still sending gets its 413 rather than a reset connection; past it, a reset."""
        return 4 * self.limit

    async def _discard(self, receive: Receive, size: int = 0) -> None:
        while size <= self.drain:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                return

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"error": f"request body over the limit of {self.limit} bytes"})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
