"""``make lint-deploy`` and ``deploy/lint.py``: every profile, override stack and Kubernetes
manifest checked offline, and deliberately broken copies failed with their reasons.

Also the one-shot ``deploy/gen-secrets.sh``: the certificates it writes really do mutual
TLS (a real TLS server that requires a client certificate, and real clients), and
``deploy/bin/env-from-files.sh`` hands a secret file to an image that wants a variable.
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deploy.composefile import ROOT
from deploy.lint import STACKS, compose_problems, k8s_problems

PYTHON = sys.executable


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "deploy.lint", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_make_lint_runs_the_deploy_checks():
    makefile = (ROOT / "Makefile").read_text()
    lint_deploy = makefile.split("\nlint-deploy:", 1)[1].split("\n\n", 1)[0]
    assert "check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml" in lint_deploy
    assert "-m deploy.lint" in lint_deploy
    assert re.search(r"^lint: .*lint-deploy", makefile, re.MULTILINE)


def test_a_broken_copy_fails_the_command_with_exit_1(tmp_path):
    broken = _copy(
        tmp_path, ROOT / "deploy" / "k8s", "worker-pdb.yaml", "maxUnavailable", "maxUnavaliable"
    )
    result = lint("--k8s", str(broken))
    assert result.returncode == 1
    assert "worker-pdb.yaml: spec: Additional properties are not allowed ('maxUnavaliable'" in (
        result.stdout
    )
    assert "deploy lint: 1 problem(s)" in result.stderr


def test_the_shipped_files_pass():
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok ({len(STACKS)} compose stacks with every profile, 13 Kubernetes manifests)" in (
        result.stdout
    )
    assert set(STACKS) == {
        "bundled",
        "external-temporal",
        "temporal-cloud",
        "temporal-cloud-api-key",
    }


def _copy(tmp_path: Path, source: Path, name: str, old: str, new: str) -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target) if source.is_dir() else shutil.copy(source, target)
    edited = target / name if source.is_dir() else target
    text = edited.read_text()
    assert old in text, f"the edit no longer applies: {old!r}"
    edited.write_text(text.replace(old, new, 1))
    return target


K8S_BROKEN = [
    pytest.param(
        ("worker-deployment.yaml", "  replicas: 2\n", "  replica: 2\n"),
        "worker-deployment.yaml: spec: Additional properties are not allowed ('replica' was unexpected)",
        id="misspelt-field",
    ),
    pytest.param(
        ("codec-server-deployment.yaml", "containerPort: 8081", 'containerPort: "8081"'),
        "codec-server-deployment.yaml: spec/template/spec/containers/0/ports/0/containerPort:",
        id="port-not-an-integer",
    ),
    pytest.param(
        ("whn-web-deployment.yaml", "          readinessProbe:", "          startupProbe:"),
        "whn-web-deployment.yaml: container web has no readinessProbe",
        id="no-readiness-probe",
    ),
    pytest.param(
        ("codec-server-deployment.yaml", "  replicas: 2\n", "  replicas: 1\n"),
        "codec-server-deployment.yaml: a Deployment of ours runs at least two replicas",
        id="one-replica",
    ),
    pytest.param(
        (
            "codec-server-deployment.yaml",
            "            - name: WHN_CODEC_TOKEN_FILE\n              value: /run/secrets/whn/codec_token",
            "            - name: WHN_CODEC_TOKEN\n              value: hunter2",
        ),
        "codec-server-deployment.yaml: container codec-server sets the secret WHN_CODEC_TOKEN as a value",
        id="secret-as-a-value",
    ),
    pytest.param(
        (
            "worker-deployment.yaml",
            "              - key: codec_keys\n                path: codec_keys\n",
            "",
        ),
        "worker-deployment.yaml: container worker: WHN_CODEC_KEY_FILE names /run/secrets/whn/codec_keys, which it does not mount",
        id="secret-file-not-mounted",
    ),
    pytest.param(
        ("kustomization.yaml", "  - ingress.yaml\n", ""),
        "ingress.yaml: not listed in kustomization.yaml",
        id="manifest-not-applied",
    ),
]


@pytest.mark.parametrize(("edit", "reason"), K8S_BROKEN)
def test_a_broken_kubernetes_manifest_fails_lint(tmp_path, edit, reason):
    name, old, new = edit
    broken = _copy(tmp_path, ROOT / "deploy" / "k8s", name, old, new)
    problems = list(k8s_problems(broken))
    assert any(reason in problem for problem in problems), problems


COMPOSE_BROKEN = [
    pytest.param(
        (
            "compose",
            "external-temporal.yml",
            '  temporal-ui:\n    profiles: ["bundled-temporal"]\n',
            "",
        ),
        "external-temporal --profile (none): temporal-ui depends on temporal, which does not start here",
        id="override-leaves-a-bundled-service",
    ),
    pytest.param(
        (
            "compose",
            "temporal-cloud.yml",
            '  search-attributes:\n    profiles: ["bundled-temporal"]\n',
            "",
        ),
        "temporal-cloud --profile (none): Temporal Cloud registers search attributes with tcld",
        id="cloud-runs-search-attributes",
    ),
    pytest.param(
        (
            None,
            None,
            "        required: false  # only with --profile oidc; else the force's IdP must be up\n",
            "",
        ),
        "bundled --profile (none): temporal-ui depends on keycloak, which does not start here",
        id="dependency-on-an-inactive-profile",
    ),
    pytest.param(
        (
            None,
            None,
            "POSTGRES_PASSWORD_FILE: /run/secrets/case_db_password",
            "POSTGRES_PASSWORD: hunter2",
        ),
        "case-db sets the secret POSTGRES_PASSWORD as a value: use a *_FILE",
        id="password-as-environment",
    ),
    pytest.param(
        (None, None, "      - codec_keys\n      - codec_token\n", "      - codec_keys\n"),
        "codec-server: WHN_CODEC_TOKEN_FILE names /run/secrets/codec_token, a secret it does not mount",
        id="secret-file-not-mounted",
    ),
    pytest.param(
        (None, None, "      - https_key\n", "      - https_private_key\n"),
        "proxy uses the undeclared secret https_private_key",
        id="undeclared-secret",
    ),
    pytest.param(
        (None, None, "        condition: service_healthy\n", "        condition: healthy\n"),
        "bundled: services/temporal-schema/depends_on/temporal-db/condition: 'healthy' is not one of",
        id="schema-error",
    ),
]


@pytest.mark.parametrize(("edit", "reason"), COMPOSE_BROKEN)
def test_a_broken_compose_stack_fails_lint(tmp_path, edit, reason):
    where, name, old, new = edit
    compose, overrides = ROOT / "docker-compose.yml", ROOT / "deploy" / "compose"
    if where == "compose":
        overrides = _copy(tmp_path, overrides, name, old, new)
    else:
        compose = _copy(tmp_path, compose, "", old, new)
    problems = list(compose_problems(compose, overrides))
    assert any(reason in problem for problem in problems), problems


# --- The one-shot secrets and certificates ------------------------------------------------


@pytest.fixture(scope="module")
def secrets(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gen") / "secrets"
    script = str(ROOT / "deploy" / "gen-secrets.sh")
    first = subprocess.run(
        ["/bin/sh", script, str(folder), "cases.example"], capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    before = (folder / "codec_token").read_text()
    again = subprocess.run(["/bin/sh", script, str(folder)], capture_output=True, text=True)
    assert again.returncode == 0 and "kept" in again.stdout
    assert (folder / "codec_token").read_text() == before  # never overwritten
    return folder


def _mtls_server(tls: Path) -> tuple[socket.socket, threading.Thread, list[str]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls / "ca.pem"))
    context.load_cert_chain(tls / "server.pem", tls / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def serve() -> None:
        for _ in range(3):
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True) as tls_conn:
                    peer = tls_conn.getpeercert()
                    seen.append(dict(x[0] for x in peer["subject"])["commonName"])
                    tls_conn.sendall(b"ok")
            except (ssl.SSLError, OSError):
                seen.append("refused")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread, seen


def _connect(port: int, tls: Path, cert: str | None) -> bytes:
    context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    if cert:
        context.load_cert_chain(tls / f"{cert}.pem", tls / f"{cert}.key")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="temporal") as conn:
            return conn.recv(2)


def test_gen_secrets_certificates_do_mutual_tls_as_temporal_needs(secrets):
    """The frontend's certificate for the name the clients dial (temporal), accepting the
    worker's and the UI's client certificates and refusing a client without one."""
    tls = secrets / "tls"
    listener, thread, seen = _mtls_server(tls)
    port = listener.getsockname()[1]
    try:
        assert _connect(port, tls, "client") == b"ok"
        assert _connect(port, tls, "ui") == b"ok"
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            _connect(port, tls, None)
            _connect(port, tls, None)  # TLS 1.3 may report the refusal on first read
        thread.join(timeout=5)
    finally:
        listener.close()
    assert seen[:2] == ["whn-client", "temporal-ui"] and seen[2] == "refused"


def test_gen_secrets_writes_every_secret_once_and_the_https_name(secrets):
    for name in (
        "temporal_db_password",
        "case_db_password",
        "codec_token",
        "ui_oidc_client_secret",
        "keycloak_admin_password",
        "oidc_demo_operator_password",
    ):
        value = (secrets / name).read_text().strip()
        assert re.fullmatch(r"[A-Za-z0-9]{32,}", value), name  # safe inside a DSN
    from whn.codec import Keyring

    assert Keyring.from_file(secrets / "codec_keys")  # what WHN_CODEC_KEY_FILE reads
    https = ssl._ssl._test_decode_cert(str(secrets / "tls" / "https.pem"))  # type: ignore[attr-defined]
    assert ("DNS", "cases.example") in https["subjectAltName"]
    assert (secrets.stat().st_mode & 0o777) == 0o700
    assert ((secrets / "tls" / "ca.key").stat().st_mode & 0o077) == 0


def test_env_from_files_exports_a_secret_to_the_command_only(tmp_path):
    script = str(ROOT / "deploy" / "bin" / "env-from-files.sh")
    secret = tmp_path / "pw"
    secret.write_text("s3cret-value\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "ENV_FROM_FILES": "POSTGRES_PWD",
        "POSTGRES_PWD_FILE": str(secret),
    }
    shown = subprocess.run(
        ["/bin/sh", script, "/bin/sh", "-c", 'echo "$POSTGRES_PWD|${POSTGRES_PWD_FILE:-gone}"'],
        env=env,
        capture_output=True,
        text=True,
    )
    assert shown.stdout == "s3cret-value|gone\n", shown.stderr
    secret.write_text("")
    empty = subprocess.run(["/bin/sh", script, "true"], env=env, capture_output=True, text=True)
    assert empty.returncode == 2 and "missing or empty" in empty.stderr
    odd = env | {"ENV_FROM_FILES": "X;rm"}
    refused = subprocess.run(["/bin/sh", script, "true"], env=odd, capture_output=True, text=True)
    assert refused.returncode == 2 and "not a variable name" in refused.stderr


async def test_the_worker_as_configured_presents_its_certificate_to_the_frontend(secrets):
    """The worker's WHN_TEMPORAL_TLS_* from docker-compose.yml, through the real
    whn.temporal.tls_config and the SDK's TLS: the handshake completes with a server that
    requires our client certificate (there is no Temporal behind it, so the call after it
    fails)."""
    import asyncio

    from temporalio.client import Client

    from deploy.composefile import environment, interpolate, load_compose, read_env_file
    from whn.settings import Settings
    from whn.temporal import tls_config

    compose = interpolate(load_compose(), read_env_file() | {"SECRETS_DIR": str(secrets)})
    worker = environment(compose["services"]["worker"])
    files = {f"/run/secrets/{name}": s["file"] for name, s in compose["secrets"].items()}
    settings = Settings(
        temporal_tls_cert=files[worker["WHN_TEMPORAL_TLS_CERT"]],
        temporal_tls_key=files[worker["WHN_TEMPORAL_TLS_KEY"]],
        temporal_tls_ca=files[worker["WHN_TEMPORAL_TLS_CA"]],
    )
    tls = secrets / "tls"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls / "ca.pem"))
    context.load_cert_chain(tls / "server.pem", tls / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls_conn:
                seen.append(dict(x[0] for x in tls_conn.getpeercert()["subject"])["commonName"])
        except (ssl.SSLError, OSError) as err:
            seen.append(repr(err))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(
                Client.connect(f"127.0.0.1:{listener.getsockname()[1]}", tls=tls_config(settings)),
                timeout=20,
            )
        thread.join(timeout=5)
    finally:
        listener.close()
    assert seen == ["whn-client"]
