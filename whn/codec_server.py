"""``whn-codec-server``: the Temporal UI's remote codec, so an authorised operator reads cases.

The Temporal codec server protocol: ``POST /encode`` and ``POST /decode`` (also under any
prefix, e.g. ``/default/decode``) take and answer ``{"payloads": [...]}``, each payload in
protobuf JSON. ``POST /download`` is the UI's download of externally stored payloads: we
store none outside the history, so it answers as ``/decode`` does, as an attachment. The
keys are the project's (``WHN_CODEC_KEYS`` / ``WHN_CODEC_KEY_FILE``).

Who may call it:

- CORS is answered only for the Temporal UI's origin (``WHN_UI_URL``, or the comma-separated
  ``WHN_CODEC_ORIGINS``); a browser page from anywhere else gets no CORS headers and a 403.
  The preflight allows the headers the UI sends: ``Authorization``, ``Authorization-Extras``
  (the operator's ID token), ``Content-Type``, ``X-Namespace``, ``Caller-Type``.
- Every request needs ``Authorization: Bearer <token>``, anything else gets a 401. The token
  is either the shared ``WHN_CODEC_TOKEN`` (scripts, the Temporal CLI), or an operator's OIDC
  access token, which the UI sends when ``TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true`` (and only
  to an https endpoint): signed by a key of the issuer's JWKS, issued by
  ``WHN_CODEC_OIDC_ISSUER`` for ``WHN_CODEC_OIDC_AUDIENCE``, unexpired, and with one of
  ``WHN_CODEC_OIDC_ROLES`` in its ``WHN_CODEC_OIDC_CLAIM`` claim (else a 403).
- ``--ui-without-token`` (what ``whn-dev`` uses) also accepts requests without a token when
  they come from the UI's origin. Only allowed while listening on a loopback address:
  the Temporal dev server's built-in UI has no login, so it has no access token to send.
  The ``Origin`` header is a browser's promise, not a secret: in this mode any local
  process can decode. Never use it on a shared host.

It speaks plain HTTP: in production it sits behind the https reverse proxy
(``deploy/caddy/Caddyfile``) or an ingress. Responses are ``Cache-Control: no-store``;
payload contents and tokens are never logged.
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
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from whn.codec import CodecKeyError, EncryptionCodec

if TYPE_CHECKING:
    from whn.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY = 32 * 1024 * 1024  # a page of history: many payloads of up to 2 MB, base64
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# What the Temporal UI's codec calls carry (its data-encoder service and request helpers).
_ALLOWED_HEADERS = "Authorization, Authorization-Extras, Content-Type, X-Namespace, Caller-Type"
_OPERATIONS = ("encode", "decode", "download")
# Asymmetric signatures only: a symmetric one would need the issuer's secret here, and
# "none" is no signature at all.
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]


class CodecServerError(ValueError):
    """The codec server was configured in a way that would expose payloads."""


class TokenRefusedError(Exception):
    """An OIDC access token that does not admit its bearer (``status``: 401, 403 or 503)."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class OidcVerifier:
    """Checks the operators' OIDC access tokens against the issuer's published keys.

    Args:
        issuer: The ``iss`` every token must carry (the issuer URL as the browser sees it).
        audience: The ``aud`` every token must include (the codec server's client or API).
        jwks_url: Where the issuer publishes its keys; fetched on first use, then cached.
        claim: The claim holding roles or groups; a dotted path reaches into objects
            (``realm_access.roles``).
        roles: A token must carry at least one of these in ``claim``.
        leeway: Clock skew allowed on ``exp``/``nbf``/``iat``, in seconds.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str,
        claim: str,
        roles: frozenset[str],
        leeway: int = 30,
    ) -> None:
        if not roles:
            raise CodecServerError("WHN_CODEC_OIDC_ROLES names no role or group")
        self.issuer = issuer
        self.audience = audience
        self.claim = claim
        self.roles = roles
        self.leeway = leeway
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)

    def verify(self, token: str) -> str:
        """The token's subject if it admits its bearer; else raises TokenRefusedError."""
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            log.warning("cannot fetch the OIDC issuer's keys")
            raise TokenRefusedError(
                HTTPStatus.SERVICE_UNAVAILABLE, "the identity provider's keys are unavailable"
            ) from None
        except jwt.PyJWTError:
            raise TokenRefusedError(
                HTTPStatus.UNAUTHORIZED, "token not signed by the issuer"
            ) from None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefusedError(HTTPStatus.UNAUTHORIZED, "token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRefusedError(
                HTTPStatus.UNAUTHORIZED, "token not for this audience"
            ) from None
        except jwt.PyJWTError:
            raise TokenRefusedError(HTTPStatus.UNAUTHORIZED, "token not valid") from None
        if not self.roles & _claim_values(claims, self.claim):
            raise TokenRefusedError(HTTPStatus.FORBIDDEN, f"token has no allowed {self.claim}")
        return str(claims["sub"])


def _claim_values(claims: dict[str, Any], path: str) -> set[str]:
    node: Any = claims
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, str):
        return set(node.split())
    if isinstance(node, list):
        return {item for item in node if isinstance(item, str)}
    return set()


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
        oidc: Also accept operators' OIDC access tokens that this verifier admits.
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
        oidc: OidcVerifier | None = None,
    ) -> None:
        if ui_without_token and host not in LOOPBACK:
            raise CodecServerError(
                f"token-less UI access is only allowed on a loopback address, not {host}"
            )
        if not token and not ui_without_token and oidc is None:
            raise CodecServerError(
                "a bearer token is required: set WHN_CODEC_TOKEN (or WHN_CODEC_TOKEN_FILE)"
            )
        self.codec = codec
        self.host = host
        self.port = port
        self.token = token or None
        self.origins = origins
        self.ui_without_token = ui_without_token
        self.oidc = oidc
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
        ways = ["the shared bearer token"] if self.token else []
        if self.oidc is not None:
            ways.append(f"OIDC access tokens of {self.oidc.issuer}")
        if self.ui_without_token:
            ways.append("the UI origin without a token")
        how = ", ".join(ways)
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
        refused = self._refusal(origin)
        if refused is not None:
            status, reason = refused
            extra = {"WWW-Authenticate": 'Bearer realm="whn-codec"'}
            return self._reply(status, {"error": reason}, extra=extra)
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
        attachment = {"Content-Disposition": 'attachment; filename="payloads.json"'}
        self._reply(
            HTTPStatus.OK,
            {"payloads": [json_format.MessageToDict(p) for p in converted]},
            extra=attachment if operation == "download" else None,
        )

    def do_GET(self) -> None:
        if self.path == "/health":
            return self._reply(HTTPStatus.OK, {"status": "ok"})
        self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    # --- helpers --------------------------------------------------------------------

    def _operation(self) -> str | None:
        last = urlsplit(self.path).path.rstrip("/").rsplit("/", 1)[-1]
        return last if last in _OPERATIONS else None

    def _refusal(self, origin: str | None) -> tuple[HTTPStatus, str] | None:
        """None if the caller may use the codec, else the status and reason to answer."""
        config = self.server_config
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        given = given.strip()
        if scheme.lower() == "bearer" and given:
            if config.token and hmac.compare_digest(given.encode(), config.token.encode()):
                return None
            if config.oidc is not None and given.count(".") == 2:
                try:
                    subject = config.oidc.verify(given)
                except TokenRefusedError as err:
                    return err.status, str(err)
                log.info("codec access by OIDC subject %s", subject)
                return None
            return HTTPStatus.UNAUTHORIZED, "a valid bearer token is required"
        if config.ui_without_token and origin in config.origins:
            return None
        return HTTPStatus.UNAUTHORIZED, "a bearer token is required"

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
            # The UI's "include cross-origin credentials" option sends cookies along.
            self.send_header("Access-Control-Allow-Credentials", "true")
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
    from whn.settings import settings_or_exit
    from whn.temporal import NO_KEY, keyring

    settings = settings_or_exit("whn-codec-server")
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
            raise CodecKeyError(NO_KEY.format(dev_key=settings.dev_key_file()))
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
            oidc=oidc_verifier(settings),
        )
        server.bind()
    except CodecKeyError as err:  # as every client: a key problem is exit 1
        print(f"whn-codec-server: {err}", file=sys.stderr)
        sys.exit(1)
    except CodecServerError as err:
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


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The OIDC check ``WHN_CODEC_OIDC_*`` configure; None when no issuer is set."""
    if not settings.codec_oidc_issuer:
        return None
    if not settings.codec_oidc_audience:
        raise CodecServerError("WHN_CODEC_OIDC_ISSUER needs WHN_CODEC_OIDC_AUDIENCE")
    issuer = settings.codec_oidc_issuer
    jwks_url = settings.codec_oidc_jwks_url or discover_jwks_url(issuer)
    roles = frozenset(r.strip() for r in (settings.codec_oidc_roles or "").split(",") if r.strip())
    return OidcVerifier(
        issuer=issuer,
        audience=settings.codec_oidc_audience,
        jwks_url=jwks_url,
        claim=settings.codec_oidc_claim,
        roles=roles,
    )


def discover_jwks_url(issuer: str) -> str:
    """``jwks_uri`` from the issuer's OpenID discovery document."""
    import httpx

    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        return str(response.json()["jwks_uri"])
    except (httpx.HTTPError, ValueError, KeyError):
        raise CodecServerError(
            f"cannot read the OIDC discovery document {url}: set WHN_CODEC_OIDC_JWKS_URL"
        ) from None


def configured_origins(codec_origins: str | None, ui_url: str) -> frozenset[str]:
    """``WHN_CODEC_ORIGINS`` if set, else the UI's own origins."""
    if codec_origins:
        return frozenset(o.strip().rstrip("/") for o in codec_origins.split(",") if o.strip())
    return ui_origins(ui_url)


if __name__ == "__main__":
    main()
