"""``whn-codec-server``: the UI's remote codec, its bearer token and its CORS rules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from whn.codec import EncryptionCodec, Keyring, generate_key
from whn.codec_server import (
    CodecServer,
    CodecServerError,
    OidcVerifier,
    TokenRefusedError,
    ui_origins,
)
from whn.devstack.temporal_server import free_port

UI = "http://127.0.0.1:8233"
TOKEN = "test-token-0123456789"
SECRET = "Karen Smith, karen@example.org"


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec(Keyring.parse(f"k1:{generate_key()}"))


def _serve(codec: EncryptionCodec, **options) -> Iterator[CodecServer]:
    server = CodecServer(codec, port=0, origins=ui_origins(UI), **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(codec) -> Iterator[CodecServer]:
    yield from _serve(codec, token=TOKEN)


@pytest.fixture
def dev_server(codec) -> Iterator[CodecServer]:
    yield from _serve(codec, token=TOKEN, ui_without_token=True)


def _sealed(codec: EncryptionCodec) -> dict:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(SECRET).encode())
    return json_format.MessageToDict(codec.encode_sync([plain])[0])


def _post(server: CodecServer, path: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=5)


def _texts(response: httpx.Response) -> list[str]:
    payloads = [json_format.ParseDict(p, Payload()) for p in response.json()["payloads"]]
    return [json.loads(p.data) for p in payloads]


def test_decode_with_the_token(server, codec):
    response = _post(
        server, "/decode", {"payloads": [_sealed(codec)]}, Authorization=f"Bearer {TOKEN}"
    )
    assert response.status_code == 200
    assert _texts(response) == [SECRET]
    assert response.headers["Cache-Control"] == "no-store"


def test_encode_then_decode_round_trip_under_a_namespace_prefix(server):
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')
    body = {"payloads": [json_format.MessageToDict(plain)]}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    encoded = _post(server, "/default/encode", body, **auth)
    assert encoded.status_code == 200
    [sealed] = encoded.json()["payloads"]
    assert "hello" not in json.dumps(sealed)
    decoded = _post(server, "/default/decode", {"payloads": [sealed]}, **auth)
    assert _texts(decoded) == ["hello"]


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"bearer{TOKEN}"]
)
def test_without_the_right_token_401_and_nothing_decoded(server, codec, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = _post(server, "/decode", {"payloads": [_sealed(codec)]}, **headers)
    assert response.status_code == 401
    assert "Karen" not in response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_preflight_answers_the_ui_origin_only(server):
    ok = httpx.options(
        f"{server.url}/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
        },
    )
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == UI
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    allowed = ok.headers["Access-Control-Allow-Headers"].lower()
    assert {"content-type", "x-namespace", "authorization"} <= {
        h.strip() for h in allowed.split(",")
    }
    # The same UI under its other loopback name is the same UI.
    twin = httpx.options(f"{server.url}/decode", headers={"Origin": "http://localhost:8233"})
    assert twin.status_code == 204

    for origin in ("http://evil.example", "http://127.0.0.1:9999", "null"):
        refused = httpx.options(f"{server.url}/decode", headers={"Origin": origin})
        assert refused.status_code == 403
        assert "Access-Control-Allow-Origin" not in refused.headers


def test_a_page_from_another_origin_is_refused_even_with_the_token(server, codec):
    response = _post(
        server,
        "/decode",
        {"payloads": [_sealed(codec)]},
        Authorization=f"Bearer {TOKEN}",
        Origin="http://evil.example",
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_dev_mode_lets_the_ui_origin_in_without_a_token_and_nobody_else(dev_server, codec):
    body = {"payloads": [_sealed(codec)]}
    from_ui = _post(dev_server, "/decode", body, Origin=UI)
    assert from_ui.status_code == 200 and _texts(from_ui) == [SECRET]
    assert from_ui.headers["Access-Control-Allow-Origin"] == UI
    assert _post(dev_server, "/decode", body).status_code == 401  # no origin, no token
    assert _post(dev_server, "/decode", body, Origin="http://evil.example").status_code == 403
    with_token = _post(dev_server, "/decode", body, Authorization=f"Bearer {TOKEN}")
    assert with_token.status_code == 200


def test_dev_mode_is_refused_off_loopback_and_no_token_is_refused(codec):
    with pytest.raises(CodecServerError, match="loopback"):
        CodecServer(
            codec, host="0.0.0.0", token=TOKEN, origins=ui_origins(UI), ui_without_token=True
        )
    with pytest.raises(CodecServerError, match="token"):
        CodecServer(codec, token=None, origins=ui_origins(UI))


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b'{"payloads": "nope"}', 400),
        (b'{"payloads": [{"data": 12}]}', 400),
        (b"[]", 400),
    ],
)
def test_malformed_requests_get_a_clear_400(server, body, status):
    response = httpx.post(
        f"{server.url}/decode",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == status
    assert "error" in response.json()


def test_a_payload_under_an_unknown_key_is_a_400_naming_the_key(server):
    stranger = EncryptionCodec(Keyring.parse(f"other:{generate_key()}"))
    response = _post(
        server, "/decode", {"payloads": [_sealed(stranger)]}, Authorization=f"Bearer {TOKEN}"
    )
    assert response.status_code == 400 and "'other'" in response.json()["error"]


def test_unknown_paths_are_404(server):
    assert httpx.get(f"{server.url}/decode").status_code == 404
    assert _post(server, "/elsewhere", {}, Authorization=f"Bearer {TOKEN}").status_code == 404
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}


def test_the_console_script_needs_a_token_then_serves_until_sigterm(tmp_path: Path):
    program = str(Path(sys.executable).parent / "whn-codec-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_CODEC")}
    env["WHN_CODEC_KEYS"] = f"k1:{generate_key()}"
    refused = subprocess.run([program], env=env, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "WHN_CODEC_TOKEN" in refused.stderr
    assert "Traceback" not in refused.stderr

    port = free_port()
    env |= {"WHN_CODEC_TOKEN": TOKEN, "WHN_UI_URL": UI}
    proc = subprocess.Popen(
        [program, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        for _ in range(100):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("whn-codec-server did not start")
        assert health.status_code == 200
        denied = httpx.post(f"http://127.0.0.1:{port}/decode", json={"payloads": []})
        assert denied.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert TOKEN not in err and env["WHN_CODEC_KEYS"] not in err


# --- The UI's OIDC access tokens ----------------------------------------------------------

AUDIENCE = "whn-codec"
GROUP = "whn-operators"
# The headers the Temporal UI's codec calls carry with "pass access token" on.
UI_HEADERS = "authorization,authorization-extras,content-type,x-namespace"


class _Issuer:
    """A test OIDC issuer: an RSA key, its JWKS and discovery document over real HTTP."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/realms/whn/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/certs"}
                elif self.path == "/realms/whn/certs":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    body = {"keys": [jwk | {"kid": issuer.kid, "use": "sig", "alg": "RS256"}]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/realms/whn"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, *, key: object = None, algorithm: str = "RS256", **overrides: object) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": [AUDIENCE, "account"],
            "sub": "operator-7",
            "iat": now,
            "exp": now + 300,
            "groups": [GROUP, "other"],
        } | overrides
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or self.key, algorithm=algorithm, headers={"kid": self.kid})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[_Issuer]:
    test_issuer = _Issuer()
    yield test_issuer
    test_issuer.close()


@pytest.fixture
def oidc_server(codec, issuer) -> Iterator[CodecServer]:
    verifier = OidcVerifier(
        issuer=issuer.url,
        audience=AUDIENCE,
        jwks_url=issuer.url + "/certs",
        claim="groups",
        roles=frozenset({GROUP}),
    )
    yield from _serve(codec, token=TOKEN, oidc=verifier)


def _other_key() -> object:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


REFUSED_TOKENS = [
    pytest.param({"exp": int(time.time()) - 120}, 401, "expired", id="expired"),
    pytest.param({"aud": "someone-else"}, 401, "audience", id="wrong-audience"),
    pytest.param({"iss": "https://evil.example/realms/whn"}, 401, "not valid", id="wrong-issuer"),
    pytest.param({"groups": ["other"]}, 403, "groups", id="not-an-operator"),
    pytest.param({"groups": None}, 403, "groups", id="no-groups-claim"),
    pytest.param({"exp": None}, 401, "not valid", id="no-expiry"),
    pytest.param(
        {"key": "signed-with-a-shared-secret-of-32-bytes", "algorithm": "HS256"},
        401,
        "",
        id="hs256",
    ),
    pytest.param({"key": "other-key"}, 401, "not valid", id="signed-by-another-key"),
]


@pytest.mark.parametrize(("overrides", "status", "reason"), REFUSED_TOKENS)
def test_an_oidc_token_that_does_not_admit_is_refused(
    oidc_server, codec, issuer, overrides, status, reason
):
    if overrides.get("key") == "other-key":
        overrides = overrides | {"key": _other_key()}
    token = issuer.token(**overrides)
    response = _post(
        oidc_server, "/decode", {"payloads": [_sealed(codec)]}, Authorization=f"Bearer {token}"
    )
    assert response.status_code == status, response.text
    assert reason in response.json()["error"]
    assert "Karen" not in response.text


def test_a_claim_path_reaches_keycloak_realm_roles(codec, issuer):
    verifier = OidcVerifier(
        issuer=issuer.url,
        audience=AUDIENCE,
        jwks_url=issuer.url + "/certs",
        claim="realm_access.roles",
        roles=frozenset({"codec-reader"}),
    )
    assert verifier.verify(issuer.token(realm_access={"roles": ["codec-reader"]})) == "operator-7"
    with pytest.raises(TokenRefusedError):
        verifier.verify(issuer.token(realm_access={"roles": ["other"]}))


def _shipped_environment(tmp_path: Path) -> tuple[dict[str, str], str]:
    """The codec-server service's environment in docker-compose.yml (with .env.example),
    its secret files written under tmp_path; and the payload key."""
    from deploy.composefile import environment, interpolate, load_compose, read_env_file

    compose = interpolate(load_compose(), read_env_file() | {"SECRETS_DIR": str(tmp_path)})
    service = compose["services"]["codec-server"]
    key = generate_key()
    contents = {"codec_keys": f"k1:{key}\n", "codec_token": TOKEN + "\n"}
    env = environment(service)
    for name, value in env.items():
        if value.startswith("/run/secrets/"):
            secret = value.removeprefix("/run/secrets/")
            assert secret in service["secrets"], f"{name}: {secret} is not mounted"
            path = tmp_path / secret
            path.write_text(contents[secret])
            env[name] = str(path)
    return env, key


def test_the_server_as_shipped_decodes_for_an_operator_of_the_issuer(tmp_path, issuer, codec):
    """``whn-codec-server`` with the environment docker-compose.yml gives it (secrets as
    files, its audience, claim and group, the UI's public origin), only the issuer swapped
    for the test issuer, found through its discovery document; then the UI's calls as the
    UI makes them."""
    program = str(Path(sys.executable).parent / "whn-codec-server")
    shipped, key = _shipped_environment(tmp_path)
    assert (shipped["WHN_CODEC_OIDC_AUDIENCE"], shipped["WHN_CODEC_OIDC_ROLES"]) == (
        AUDIENCE,
        GROUP,
    )
    assert shipped["WHN_CODEC_OIDC_CLAIM"] == "groups"
    ui = shipped["WHN_UI_URL"]
    assert ui.startswith("https://")
    del shipped["WHN_CODEC_OIDC_JWKS_URL"]  # the test issuer's, from its discovery document
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_")}
    env |= shipped | {"WHN_CODEC_OIDC_ISSUER": issuer.url}
    port = free_port()
    proc = subprocess.Popen(
        [program, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    sealed = json_format.MessageToDict(
        EncryptionCodec(Keyring.parse(f"k1:{key}")).encode_sync(
            [Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(SECRET).encode())]
        )[0]
    )
    try:
        _wait_for(f"{base}/health")
        preflight = httpx.options(
            f"{base}/default/decode",
            headers={
                "Origin": ui,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": UI_HEADERS,
            },
        )
        assert preflight.status_code == 204
        allowed = {
            h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert set(UI_HEADERS.split(",")) <= allowed
        assert preflight.headers["Access-Control-Allow-Origin"] == ui
        assert preflight.headers["Access-Control-Allow-Credentials"] == "true"

        ui_call = {
            "Origin": ui,
            "Authorization": f"Bearer {issuer.token()}",
            "Authorization-Extras": issuer.token(aud="temporal-ui"),  # the ID token
            "X-Namespace": "default",
        }
        decoded = httpx.post(f"{base}/default/decode", json={"payloads": [sealed]}, headers=ui_call)
        assert decoded.status_code == 200, decoded.text
        assert _texts(decoded) == [SECRET]
        assert decoded.headers["Access-Control-Allow-Origin"] == ui

        download = httpx.post(
            f"{base}/default/download", json={"payloads": [sealed]}, headers=ui_call
        )
        assert download.status_code == 200 and _texts(download) == [SECRET]
        assert download.headers["Content-Disposition"].startswith("attachment")

        expired = ui_call | {"Authorization": f"Bearer {issuer.token(exp=int(time.time()) - 60)}"}
        assert (
            httpx.post(
                f"{base}/default/decode", json={"payloads": [sealed]}, headers=expired
            ).status_code
            == 401
        )
        elsewhere = ui_call | {"Authorization": f"Bearer {issuer.token(aud='another-app')}"}
        assert (
            httpx.post(
                f"{base}/default/decode", json={"payloads": [sealed]}, headers=elsewhere
            ).status_code
            == 401
        )
        outsider = ui_call | {"Authorization": f"Bearer {issuer.token(groups=['visitors'])}"}
        refused = httpx.post(
            f"{base}/default/decode", json={"payloads": [sealed]}, headers=outsider
        )
        assert refused.status_code == 403 and "Karen" not in refused.text

        script = httpx.post(
            f"{base}/decode",
            json={"payloads": [sealed]},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert script.status_code == 200 and _texts(script) == [SECRET]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "OIDC access tokens of " + issuer.url in err
    assert TOKEN not in err and key not in err and "Karen" not in err


def test_the_console_script_refuses_an_issuer_without_an_audience(tmp_path, issuer):
    program = str(Path(sys.executable).parent / "whn-codec-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_")}
    env |= {"WHN_CODEC_KEYS": f"k1:{generate_key()}", "WHN_CODEC_OIDC_ISSUER": issuer.url}
    refused = subprocess.run([program], env=env, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "WHN_CODEC_OIDC_AUDIENCE" in refused.stderr
    assert "Traceback" not in refused.stderr


def _wait_for(url: str) -> None:
    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer")
