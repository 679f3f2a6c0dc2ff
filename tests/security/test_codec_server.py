"""``whn-codec-server``: the UI's remote codec, its bearer token and its CORS rules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from whn.codec import EncryptionCodec, Keyring, generate_key
from whn.codec_server import CodecServer, CodecServerError, ui_origins
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
