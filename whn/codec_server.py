"""``whn-codec-server``: the Temporal UI's remote codec, so an authorised operator reads cases.

The Temporal codec server protocol: ``POST /encode`` and ``POST /decode`` (also under any
prefix, e.g. ``/default/decode``) take and answer ``{"payloads": [...]}``, each payload in
protobuf JSON. The keys are the project's (``WHN_CODEC_KEYS`` / ``WHN_CODEC_KEY_FILE``).

Who may call it:

- CORS is answered only for the Temporal UI's origin (``WHN_UI_URL``, or the comma-separated
  ``WHN_CODEC_ORIGINS``); a browser page from anywhere else gets no CORS headers and a 403.
- Every request needs ``Authorization: Bearer <WHN_CODEC_TOKEN>``; anything else gets a 401.
- ``--ui-without-token`` (what ``whn-dev`` uses) also accepts requests without a token when
  they come from the UI's origin. Only allowed while listening on a loopback address:
  the Temporal dev server's built-in UI has no login, so it has no access token to send
  (the UI's "pass access token" option forwards only the token of an OIDC login, and only
  to an https endpoint). The ``Origin`` header is a browser's promise, not a secret: in
  this mode any local process can decode. Never use it on a shared host.

Responses are ``Cache-Control: no-store``; payload contents are never logged.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from whn.codec import CodecKeyError, EncryptionCodec

log = logging.getLogger(__name__)

MAX_BODY = 32 * 1024 * 1024  # a page of history: many payloads of up to 2 MB, base64
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"


class CodecServerError(ValueError):
    """The codec server was configured in a way that would expose payloads."""


def ui_origins(ui_url: str) -> frozenset[str]:
    """The browser origins of the UI at ``ui_url``; a loopback UI under both of its names."""
    parts = urlsplit(ui_url)
    if not parts.scheme or not parts.hostname:
        raise CodecServerError(f"not a URL: {ui_url!r}")
    port = f":{parts.port}" if parts.port else ""
    hosts = {parts.hostname}
    if parts.hostname in {"127.0.0.1", "localhost"}:
        hosts = {"127.0.0.1", "localhost"}
    return frozenset(f"{parts.scheme}://{host}{port}" for host in hosts)


class CodecServer:
    """The codec endpoint on a background thread (``start``/``stop``), or in the foreground.

    Args:
        codec: The project's encryption codec.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one (see ``port`` after ``start``).
        token: The bearer token every request must carry.
        origins: Browser origins allowed by CORS (the Temporal UI's).
        ui_without_token: Also accept token-less requests from ``origins`` (loopback only).
    """

    def __init__(
        self,
        codec: EncryptionCodec,
        *,
        host: str = "127.0.0.1",
        port: int = 8081,
        token: str | None,
        origins: frozenset[str],
        ui_without_token: bool = False,
    ) -> None:
        if ui_without_token and host not in LOOPBACK:
            raise CodecServerError(
                f"token-less UI access is only allowed on a loopback address, not {host}"
            )
        if not token and not ui_without_token:
            raise CodecServerError("a bearer token is required: set WHN_CODEC_TOKEN")
        self.codec = codec
        self.host = host
        self.port = port
        self.token = token or None
        self.origins = origins
        self.ui_without_token = ui_without_token
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def bind(self) -> None:
        """Listen (raises OSError if the port is taken); ``port`` is then the real one."""
        handler = type("Handler", (_Handler,), {"server_config": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])

    def start(self) -> None:
        """Listen and serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="whn-codec-server", daemon=True
        )
        if self._httpd is None:
            self.bind()
        self._thread.start()
        self._serving.wait(timeout=5)

    def serve_forever(self) -> None:
        """Listen (if not yet) and serve until ``stop``."""
        if self._httpd is None:
            self.bind()
        assert self._httpd is not None
        how = (
            "UI origin without a token, or a bearer token"
            if self.ui_without_token
            else "a bearer token"
        )
        log.info("codec server on %s for %s (%s)", self.url, ", ".join(sorted(self.origins)), how)
        self._serving.set()
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call from any thread, and twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._serving.is_set():
            httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_config: CodecServer
    server_version = "whn-codec-server"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # --- routes ---------------------------------------------------------------------

    def do_OPTIONS(self) -> None:
        if self._operation() is None:
            return self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
        origin = self.headers.get("Origin")
        if origin not in self.server_config.origins:
            return self._reply(HTTPStatus.FORBIDDEN, {"error": "origin not allowed"})
        self._reply(HTTPStatus.NO_CONTENT, None)

    def do_POST(self) -> None:
        operation = self._operation()
        if operation is None:
            return self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server_config.origins:
            return self._reply(HTTPStatus.FORBIDDEN, {"error": "origin not allowed"})
        if not self._authorised(origin):
            return self._reply(
                HTTPStatus.UNAUTHORIZED,
                {"error": "a bearer token is required"},
                extra={"WWW-Authenticate": 'Bearer realm="whn-codec"'},
            )
        try:
            payloads = self._read_payloads()
        except _BadRequest as err:
            return self._reply(err.status, {"error": str(err)})
        codec = self.server_config.codec
        try:
            if operation == "encode":
                converted = codec.encode_sync(payloads)
            else:
                converted = codec.decode_sync(payloads)
        except CodecKeyError as err:
            return self._reply(HTTPStatus.BAD_REQUEST, {"error": str(err)})
        self._reply(
            HTTPStatus.OK,
            {"payloads": [json_format.MessageToDict(p) for p in converted]},
        )

    def do_GET(self) -> None:
        if self.path == "/health":
            return self._reply(HTTPStatus.OK, {"status": "ok"})
        self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    # --- helpers --------------------------------------------------------------------

    def _operation(self) -> str | None:
        last = urlsplit(self.path).path.rstrip("/").rsplit("/", 1)[-1]
        return last if last in ("encode", "decode") else None

    def _authorised(self, origin: str | None) -> bool:
        config = self.server_config
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        if config.token and scheme.lower() == "bearer" and given:
            return hmac.compare_digest(given.strip().encode(), config.token.encode())
        return config.ui_without_token and origin in config.origins

    def _read_payloads(self) -> list[Payload]:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required") from None
        if length < 0 or length > MAX_BODY:
            raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        body = self.rfile.read(length)
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "body is not JSON") from None
        items = data.get("payloads") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, 'expected {"payloads": [...]}')
        payloads = []
        for item in items:
            try:
                payloads.append(json_format.ParseDict(item, Payload(), ignore_unknown_fields=True))
            except (json_format.ParseError, TypeError, ValueError):
                raise _BadRequest(
                    HTTPStatus.BAD_REQUEST, "a payload is not protobuf JSON"
                ) from None
        return payloads

    def _reply(self, status: HTTPStatus, body: Any, *, extra: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        origin = self.headers.get("Origin")
        if origin is not None and origin in self.server_config.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", _ALLOWED_HEADERS)
            self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Vary", "Origin")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line and status only: bodies (payloads) are never logged.
        log.debug("%s %s", self.address_string(), format % args)


class _BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``whn-codec-server`` console script."""
    from whn.settings import get_settings
    from whn.temporal import keyring

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="whn-codec-server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=settings.codec_host, help="address to listen on")
    parser.add_argument("--port", type=int, default=settings.codec_port)
    parser.add_argument(
        "--origin",
        action="append",
        help="a Temporal UI origin allowed by CORS (repeat; default: from WHN_UI_URL)",
    )
    parser.add_argument(
        "--ui-without-token",
        action="store_true",
        help="also accept token-less requests from the UI origin (loopback only; dev)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        ring = keyring(settings)
        if ring is None:
            raise CodecKeyError("no keys: set WHN_CODEC_KEYS or WHN_CODEC_KEY_FILE")
        origins = frozenset(args.origin or []) or configured_origins(
            settings.codec_origins, settings.ui_url
        )
        server = CodecServer(
            EncryptionCodec(ring),
            host=args.host,
            port=args.port,
            token=settings.codec_token.get_secret_value() if settings.codec_token else None,
            origins=origins,
            ui_without_token=args.ui_without_token,
        )
        server.bind()
    except (CodecKeyError, CodecServerError) as err:
        print(f"whn-codec-server: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        print(
            f"whn-codec-server: cannot listen on {args.host}:{args.port}: {err.strerror}",
            file=sys.stderr,
        )
        sys.exit(1)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.stop).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    log.info("codec server stopped")


def configured_origins(codec_origins: str | None, ui_url: str) -> frozenset[str]:
    """``WHN_CODEC_ORIGINS`` if set, else the UI's own origins."""
    if codec_origins:
        return frozenset(o.strip().rstrip("/") for o in codec_origins.split(",") if o.strip())
    return ui_origins(ui_url)


if __name__ == "__main__":
    main()
