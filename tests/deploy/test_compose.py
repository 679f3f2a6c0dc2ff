"""docker-compose.yml, checked offline: the Compose Specification schema, then what the
schema cannot see (start order, pinned images, healthchecks, settings, .env.example).

The schema is the Compose Specification's own JSON schema as vendored by
check-jsonschema (``vendor.compose-spec``); ``make lint-deploy`` runs the same check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from tests.deploy.composefile import (
    COMPOSE_FILE,
    ROOT,
    InterpolationError,
    compose_spec_schema,
    environment,
    interpolate,
    load_compose,
    load_stack,
    long_running,
    read_env_file,
    variables,
)
from whn.settings import _FILE_SECRETS, Settings
from whn.temporal import search_attribute_cli_args

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"

# Services built from our Dockerfile, and what the contract's configuration section names.
OURS = ("worker", "migrate", "codec-server", "admin", "intake")
OVERRIDES = sorted((ROOT / "deploy" / "compose").glob("*.yml"))
CONTRACT_SETTINGS = {
    "WHN_TEMPORAL_ADDRESS",
    "WHN_TEMPORAL_NAMESPACE",
    "WHN_TASK_QUEUE",
    "WHN_DATABASE_URL",
    "WHN_SMTP_HOST",
    "WHN_SMTP_PORT",
    "WHN_MAIL_FROM",
    "WHN_DATA_DIR",
}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file()


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory) -> Path:
    """What ``deploy/gen-secrets.sh`` writes, the folder SECRETS_DIR names."""
    folder = tmp_path_factory.mktemp("deploy") / "secrets"
    result = subprocess.run(
        ["/bin/sh", str(ROOT / "deploy" / "gen-secrets.sh"), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], env_example: dict[str, str], secrets_dir) -> dict[str, Any]:
    """The file as Compose runs it with ``.env.example`` as its ``.env``, SECRETS_DIR set."""
    resolved: dict[str, Any] = interpolate(raw, env_example | {"SECRETS_DIR": str(secrets_dir)})
    return resolved


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


def schema_errors(document: Any) -> list[str]:
    """Each schema error, as its most specific cause (as check-jsonschema's "best match")."""
    validator = jsonschema.Draft202012Validator(compose_spec_schema())
    errors = []
    for error in validator.iter_errors(document):
        best = jsonschema.exceptions.best_match([error])
        errors.append(f"{'/'.join(map(str, best.absolute_path)) or '(top)'}: {best.message}")
    return errors


def run_check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- The schema ---------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification(raw, compose):
    assert schema_errors(raw) == []
    assert schema_errors(compose) == []  # and after interpolation, as Compose validates it


def test_check_jsonschema_accepts_the_compose_file():
    result = run_check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


BROKEN = [
    pytest.param(
        ("\nservices:\n", "\nservics:\n"),
        "$",
        "'servics' does not match any of the regexes: '^x-'",
        id="misspelt-top-level-key",
    ),
    pytest.param(
        ("condition: service_completed_successfully", "condition: service_finished"),
        "$.services.temporal.depends_on['temporal-schema'].condition",
        "'service_finished' is not one of ['service_started', 'service_healthy',"
        " 'service_completed_successfully']",
        id="unknown-depends-on-condition",
    ),
    pytest.param(
        ("      interval: 5s\n", "      interval: 5\n"),
        "$.services['temporal-db'].healthcheck.interval",
        "5 is not of type 'string'",
        id="healthcheck-interval-not-a-duration",
    ),
    pytest.param(
        ("    deploy:\n      replicas: 2\n", "    deploy:\n      replica: 2\n"),
        "$.services.worker.deploy",
        "'replica' does not match any of the regexes: '^x-'",
        id="misspelt-deploy-key",
    ),
]


@pytest.mark.parametrize(("edit", "where", "reason"), BROKEN)
def test_a_broken_compose_file_is_rejected_with_the_reason(tmp_path, edit, where, reason):
    old, new = edit
    text = COMPOSE_FILE.read_text()
    assert old in text, f"the edit no longer applies: {old!r}"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))

    result = run_check_jsonschema(broken)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Schema validation errors were encountered" in output
    assert f"{where}: {reason}" in output, output
    # The in-process validator agrees.
    assert any(reason in error for error in schema_errors(load_compose(broken)))


# --- What the schema cannot see -------------------------------------------------------------


def test_every_depends_on_target_exists_with_a_condition_it_can_meet(services):
    for name, svc in services.items():
        for target, how in (svc.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on missing service {target}"
            assert target != name
            condition = how["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name}: {target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not a one-shot"


def test_start_order_has_no_cycle(services):
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name in order:
            return
        for target in services[name].get("depends_on") or {}:
            visit(target, (*path, name))
        order.append(name)

    for name in services:
        visit(name, ())
    assert order.index("temporal-schema") < order.index("temporal")
    assert order.index("search-attributes") < order.index("worker")
    assert order.index("migrate") < order.index("worker")


def test_one_shot_setup_services_gate_the_worker(services):
    needs = services["worker"]["depends_on"]
    for one_shot in ("migrate", "search-attributes"):
        assert needs[one_shot]["condition"] == "service_completed_successfully"
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    assert "whn.migrate" in services["migrate"]["entrypoint"]
    assert (ROOT / "whn" / "migrate.py").is_file()


@pytest.mark.parametrize("kind", ["raw", "resolved"])
def test_every_image_is_pinned_to_a_version(raw, compose, kind):
    document = raw if kind == "raw" else compose
    for name, svc in document["services"].items():
        image = svc.get("image")
        assert image, f"{name} has no image (a built service still needs a tag)"
        if kind == "raw" and "${" in image:
            continue  # checked once resolved
        assert "@sha256:" in image or re.search(r":[^/]+$", image), f"{name}: {image} untagged"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and "latest" not in tag, f"{name}: {image}"
        if "build" not in svc:  # third-party: an exact release, not a moving major tag
            assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not an exact version"


def test_every_long_running_service_has_a_healthcheck(services):
    for name, svc in long_running(services).items():
        check = svc.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable")
        assert check["test"][0] in ("CMD", "CMD-SHELL")


def test_the_worker_runs_two_replicas_that_can_coexist(services):
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "container_name" not in worker  # a fixed name allows only one container
    assert "ports" not in worker  # two replicas cannot publish the same host port
    grace = int(worker["stop_grace_period"].removesuffix("s"))
    assert grace > 20, "the worker's graceful shutdown takes up to 20 s"


def test_stateful_services_keep_data_in_declared_named_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, svc in services.items():
        for volume in svc.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
                assert volume.endswith(":ro"), f"{name}: bind mount {source} should be read-only"
                continue
            assert source in declared, f"{name} uses undeclared volume {source}"
            used.add(source)
    for name in ("temporal-db", "case-db"):
        assert any(v.endswith(":/var/lib/postgresql/data") for v in services[name]["volumes"]), (
            f"{name} keeps its data outside a named volume"
        )
    assert used == declared, f"declared but unused: {declared - used}"


def test_mounted_scripts_and_dynamic_config_exist(services):
    for name in ("temporal-schema", "temporal-namespace", "search-attributes"):
        script = services[name]["entrypoint"][-1]
        assert script.startswith("/deploy/")
        assert (ROOT / "deploy" / "temporal" / script.removeprefix("/deploy/")).is_file()
    config = environment(services["temporal"])["DYNAMIC_CONFIG_FILE_PATH"]
    assert (ROOT / "deploy" / "temporal" / "dynamicconfig" / Path(config).name).is_file()


def test_search_attributes_service_registers_exactly_those_of_the_code(services):
    assert services["search-attributes"]["command"] == search_attribute_cli_args()[1::2]


def test_our_services_get_every_setting_they_need(services):
    for name in ("worker", "admin", "intake"):
        env = environment(services[name])
        assert CONTRACT_SETTINGS | {"WHN_CODEC_KEY_FILE", "WHN_DATABASE_PASSWORD_FILE"} <= set(env)
        assert urlsplit(env["WHN_DATABASE_URL"]).password is None, "the password is a file"
        # Every address points at another service of this file, never at localhost.
        hosts = {
            "WHN_TEMPORAL_ADDRESS": env["WHN_TEMPORAL_ADDRESS"].rsplit(":", 1)[0],
            "WHN_DATABASE_URL": urlsplit(env["WHN_DATABASE_URL"]).hostname,
            "WHN_SMTP_HOST": env["WHN_SMTP_HOST"],
        }
        for setting, host in hosts.items():
            assert host in services, f"{name}: {setting} points at {host}, not a service"
    assert "WHN_DATABASE_URL" in environment(services["migrate"])
    codec = environment(services["codec-server"])
    assert {"WHN_CODEC_KEY_FILE", "WHN_CODEC_TOKEN_FILE", "WHN_UI_URL", "WHN_CODEC_HOST"} <= set(
        codec
    )
    assert codec["WHN_CODEC_HOST"] == "0.0.0.0"  # reachable from outside its container


def test_every_whn_variable_is_a_setting_and_parses(compose, services, monkeypatch):
    """Each WHN_* is a setting (or WHN_<secret>_FILE), and the values parse with the secret
    files where the service mounts them: every /run/secrets/NAME is a secret it lists."""
    fields = {f"WHN_{field.upper()}" for field in Settings.model_fields}
    fields |= {f"WHN_{field.upper()}_FILE" for field in _FILE_SECRETS}
    for name in OURS:
        env = environment(services[name])
        unknown = {key for key in env if key.startswith("WHN_")} - fields
        assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"
        mounted = {
            f"/run/secrets/{secret}": compose["secrets"][secret]["file"]
            for secret in services[name].get("secrets") or []
        }
        for key in [k for k in os.environ if k.startswith("WHN_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if value.startswith("/run/secrets/"):
                assert value in mounted, f"{name}: {key} names {value}, which it does not mount"
                value = mounted[value]
            monkeypatch.setenv(key, value)
        settings = Settings()  # the values parse (durations, ports, booleans), files read
        if "WHN_DATABASE_PASSWORD_FILE" in env:
            assert urlsplit(settings.database_url).password


def test_env_example_covers_every_variable_and_only_those(raw, env_example):
    documents = [raw, *(load_compose(path) for path in OVERRIDES)]
    used = {name for document in documents for name, _ in variables(document)}
    assert used <= set(env_example), f"missing from .env.example: {sorted(used - set(env_example))}"
    assert set(env_example) <= used, f"unused in compose: {sorted(set(env_example) - used)}"
    required = {name for document in documents for name, op in variables(document) if op == ":?"}
    assert required == {"SECRETS_DIR"}
    assert env_example["SECRETS_DIR"] == ""  # empty: nothing starts until it is set


def test_the_stack_refuses_to_start_until_the_secrets_are_set(raw, env_example):
    """``cp .env.example .env && docker compose up`` stops at interpolation."""
    with pytest.raises(InterpolationError, match="SECRETS_DIR"):
        interpolate(raw, env_example)
    for path in OVERRIDES:
        if "SECRETS_DIR" in path.read_text():
            with pytest.raises(InterpolationError, match="SECRETS_DIR"):
                interpolate(load_stack(COMPOSE_FILE, path), env_example)


def test_every_secret_is_a_file_that_gen_secrets_writes(compose, secrets_dir):
    declared = compose["secrets"]
    for name, secret in declared.items():
        assert set(secret) == {"file"}, f"{name}: a file, not an environment variable"
        path = Path(secret["file"])
        assert path.is_file() and path.read_text().strip(), f"{name}: {path} not written"
        assert secrets_dir in path.parents
    assert (secrets_dir.stat().st_mode & 0o077) == 0, "the secrets folder is the owner's only"
    used = {s for svc in compose["services"].values() for s in svc.get("secrets") or []}
    assert used == set(declared), f"declared but unused: {set(declared) - used}"


def test_no_password_key_or_token_is_an_environment_value(services):
    secret = re.compile(r"(PASSWORD|PWD|SECRET|TOKEN|API_KEY|CODEC_KEYS)$")
    for name, svc in services.items():
        for key, value in environment(svc).items():
            if secret.search(key):
                assert value in ("", "true", "false"), f"{name}: {key} is a value"


def test_the_ui_decodes_through_the_https_proxy_with_the_operators_token(services):
    """The UI passes the operator's access token only to an https codec endpoint: the
    proxy's /codec, which Caddy hands to the codec server; the codec server checks the
    tokens of the issuer the UI signs in with, and answers CORS for the UI's origin."""
    ui, codec, proxy = (environment(services[n]) for n in ("temporal-ui", "codec-server", "proxy"))
    assert ui["TEMPORAL_AUTH_ENABLED"] == "true"
    assert ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true"
    endpoint = urlsplit(ui["TEMPORAL_CODEC_ENDPOINT"])
    public = urlsplit(codec["WHN_UI_URL"])
    assert endpoint.scheme == "https" and endpoint.netloc == public.netloc
    assert endpoint.path == "/codec"
    assert public.port == _published_port(services["proxy"], int(proxy["HTTPS_PORT"]))
    assert urlsplit(ui["TEMPORAL_AUTH_CALLBACK_URL"]).netloc == public.netloc
    caddyfile = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text()
    assert re.search(r"handle_path /codec/\* \{\s*reverse_proxy codec-server:8081", caddyfile)
    assert "https://{$PUBLIC_HOST}:{$HTTPS_PORT}" in caddyfile
    assert codec["WHN_CODEC_OIDC_ISSUER"] == ui["TEMPORAL_AUTH_ISSUER_URL"]
    assert codec["WHN_CODEC_OIDC_AUDIENCE"] and codec["WHN_CODEC_OIDC_ROLES"]
    assert ui["TEMPORAL_ADDRESS"].split(":")[0] in services


def test_the_bundled_keycloak_issues_what_the_ui_and_codec_server_expect(services):
    realm = json.loads((ROOT / "deploy" / "keycloak" / "whn-realm.json").read_text())
    ui, codec = environment(services["temporal-ui"]), environment(services["codec-server"])
    keycloak = environment(services["keycloak"])
    assert ui["TEMPORAL_AUTH_ISSUER_URL"] == f"{keycloak['KC_HOSTNAME']}/realms/{realm['realm']}"
    [client] = [c for c in realm["clients"] if c["clientId"] == ui["TEMPORAL_AUTH_CLIENT_ID"]]
    assert client["secret"] == "${WHN_UI_OIDC_CLIENT_SECRET}"  # from the secret file
    mappers = {m["protocolMapper"]: m["config"] for m in client["protocolMappers"]}
    assert (
        mappers["oidc-audience-mapper"]["included.custom.audience"]
        == codec["WHN_CODEC_OIDC_AUDIENCE"]
    )
    assert mappers["oidc-group-membership-mapper"]["claim.name"] == codec["WHN_CODEC_OIDC_CLAIM"]
    assert codec["WHN_CODEC_OIDC_ROLES"] in {g["name"] for g in realm["groups"]}
    assert any(f"/{codec['WHN_CODEC_OIDC_ROLES']}" in u["groups"] for u in realm["users"])
    assert codec["WHN_CODEC_OIDC_JWKS_URL"].startswith(ui["TEMPORAL_AUTH_PROVIDER_URL"])


def test_the_temporal_frontend_requires_client_certificates(services):
    server = environment(services["temporal"])
    assert server["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    assert server["TEMPORAL_TLS_CLIENT1_CA_CERT"] == "/run/secrets/temporal_ca"
    for name in ("worker", "admin", "intake"):
        env = environment(services[name])
        assert env["WHN_TEMPORAL_TLS_CERT"] == "/run/secrets/temporal_client_cert", name
        assert env["WHN_TEMPORAL_TLS_CA"] == "/run/secrets/temporal_ca", name
    for name in ("temporal-namespace", "search-attributes"):
        env = environment(services[name])
        assert env["TEMPORAL_TLS_CLIENT_CERT_PATH"] == "/run/secrets/temporal_client_cert"
    assert (
        environment(services["temporal-ui"])["TEMPORAL_TLS_CERT"] == "/run/secrets/temporal_ui_cert"
    )


BIND_ADDRESSES = ("BIND_ADDRESS", "TEMPORAL_BIND_ADDRESS", "HTTPS_BIND_ADDRESS")


def test_published_ports_are_bound_to_a_configurable_loopback_address(raw, env_example):
    for name, svc in raw["services"].items():
        for port in svc.get("ports") or []:
            assert any(str(port).startswith(f"${{{v}:-127.0.0.1}}:") for v in BIND_ADDRESSES), (
                f"{name}: {port}"
            )
    assert all(env_example[v] == "127.0.0.1" for v in BIND_ADDRESSES)


def _published_port(service: dict[str, Any], container_port: int) -> int:
    for spec in service.get("ports") or []:
        parts = str(spec).split(":")
        if int(parts[-1]) == container_port:
            return int(parts[-2])
    raise AssertionError(f"port {container_port} is not published")


def test_every_temporal_connection_setting_reaches_every_client_of_temporal(services):
    """Address, namespace, TLS pair, CA and API key: all of them, to every service of ours
    that connects, so an override or .env can point them all elsewhere at once."""
    names = {f"WHN_{f.upper()}" for f in Settings.model_fields if f.startswith("temporal_")}
    assert {"WHN_TEMPORAL_TLS_CERT", "WHN_TEMPORAL_API_KEY"} <= names
    for name in ("worker", "admin", "intake"):
        env = environment(services[name])
        for setting in names:
            assert setting in env or f"{setting}_FILE" in env, f"{name}: {setting}"


def test_every_placeholder_of_the_realm_file_is_in_keycloaks_environment(services):
    """Keycloak resolves ${NAME} in an imported realm file from its environment: each
    one is a variable of the service, or a secret env-from-files.sh exports from a file."""
    realm = (ROOT / "deploy" / "keycloak" / "whn-realm.json").read_text()
    env = environment(services["keycloak"])
    exported = set(env["ENV_FROM_FILES"].split())
    for name in set(re.findall(r"\$\{([A-Z_]+)\}", realm)):
        assert name in env or (name in exported and f"{name}_FILE" in env), name
    for name in exported:
        assert env[f"{name}_FILE"].removeprefix("/run/secrets/") in services["keycloak"]["secrets"]


def test_whn_web_is_served_over_https_on_its_own_origin(services):
    """The Temporal UI uses /api/v1 itself, so whn-web gets the proxy's second site."""
    caddyfile = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text()
    site = caddyfile.split("https://{$PUBLIC_HOST}:{$WEB_HTTPS_PORT} {", 1)[1]
    assert "reverse_proxy whn-web:8000" in site.split("\n}", 1)[0]
    proxy = environment(services["proxy"])
    assert _published_port(services["proxy"], int(proxy["WEB_HTTPS_PORT"]))
    assert environment(services["whn-web"])["WHN_WEB_PORT"] == "8000"


def test_letters_link_to_whn_web_over_https_where_the_proxy_serves_it(services):
    """The worker writes the reporter's /track links into letters and whn-web marks its
    cookies Secure by WHN_PUBLIC_URL: both get the proxy's https site for whn-web (unset,
    they would be http://localhost:8000, a link no reporter can open)."""
    proxy = environment(services["proxy"])
    expected = f"https://{proxy['PUBLIC_HOST']}:{proxy['WEB_HTTPS_PORT']}"
    for name in ("worker", "whn-web"):
        assert environment(services[name]).get("WHN_PUBLIC_URL") == expected, name


def test_whn_web_is_reached_only_through_the_proxy_and_sees_each_reporters_address(services):
    """/track locks out per client address: behind the proxy every request comes from the
    proxy's, so one client's failures (or everyone's typos) would lock out every reporter.
    whn-web takes the address from the X-Forwarded-For the proxy sets (Caddy replaces a
    client's own), which only holds if nothing else reaches whn-web: no port on the host."""
    web = services["whn-web"]
    assert environment(web).get("FORWARDED_ALLOW_IPS") == "*"
    assert not web.get("ports"), "a published port would let a client forge X-Forwarded-For"
    caddyfile = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text()
    assert "trusted_proxies" not in caddyfile  # Caddy keeps no client's X-Forwarded-For
