"""``python -m deploy.lint``: the deployment files, checked offline (``make lint-deploy``).

Compose: ``docker-compose.yml`` under every profile it has, alone and with each override
stack of ``deploy/compose/`` (``STACKS``), merged as ``docker compose -f ... -f ...``
merges them and interpolated with ``.env.example`` as the ``.env`` (plus a SECRETS_DIR,
which it leaves empty on purpose), then

- validated against the Compose Specification's JSON schema (vendored by check-jsonschema);
- checked for what a schema cannot see: every ``depends_on`` target of a service that
  starts also starts (or is ``required: false``), every secret, volume and bind mount a
  service names exists, no secret travels as a plain environment variable, and the
  override stacks start none of the bundled Temporal services.

Kubernetes: every manifest of ``deploy/k8s/kustomization.yaml`` against the Kubernetes
1.37 JSON schema of its kind, vendored in ``deploy/k8s/schemas/`` (strict: an unknown or
misspelt field fails), plus probes and at least two replicas on every Deployment, and
secrets only as mounted files.

Prints one line per problem and exits 1 if there is any; ``--compose FILE`` and
``--k8s DIR`` check other copies (the tests break copies on purpose).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from deploy.composefile import (
    ROOT,
    InterpolationError,
    active,
    compose_spec_schema,
    interpolate,
    load_stack,
    load_yaml,
    read_env_file,
)

OVERRIDES = ROOT / "deploy" / "compose"
K8S = ROOT / "deploy" / "k8s"
K8S_SCHEMAS = K8S / "schemas" / "v1.37.0-strict"

# Override stacks, each on top of docker-compose.yml, in the order they are given to -f.
STACKS: dict[str, tuple[str, ...]] = {
    "bundled": (),
    "external-temporal": ("external-temporal.yml",),
    "temporal-cloud": ("external-temporal.yml", "temporal-cloud.yml"),
    "temporal-cloud-api-key": (
        "external-temporal.yml",
        "temporal-cloud.yml",
        "temporal-cloud-api-key.yml",
    ),
}
BUNDLED_TEMPORAL = frozenset(
    {"temporal-db", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui"}
)
# Environment variables that may hold a secret: a compose file or manifest that sets one
# to a value (rather than naming a file) fails.
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_KEY|CODEC_KEYS)$")


def compose_problems(compose_file: Path, overrides: Path = OVERRIDES) -> Iterator[str]:
    """Every problem of the compose file under each profile and override stack."""
    env = read_env_file() | {"SECRETS_DIR": "./secrets"}
    for stack, files in STACKS.items():
        paths = [compose_file, *(overrides / name for name in files)]
        try:
            document = interpolate(load_stack(*paths), env)
        except (InterpolationError, ValueError, OSError) as err:
            yield f"{stack}: {err}"
            continue
        yield from (f"{stack}: {problem}" for problem in _schema_problems(document))
        services: dict[str, Any] = document.get("services") or {}
        profiles = sorted({p for svc in services.values() for p in svc.get("profiles") or []})
        for chosen in _profile_sets([p for p in profiles if p != "bundled-temporal"]):
            where = f"{stack} --profile {','.join(chosen) or '(none)'}"
            running = active(services, frozenset(chosen))
            for problem in _service_problems(document, running):
                yield f"{where}: {problem}"
            if stack != "bundled" and BUNDLED_TEMPORAL & set(running):
                yield f"{where}: starts {sorted(BUNDLED_TEMPORAL & set(running))}"
            if stack.startswith("temporal-cloud") and "search-attributes" in running:
                yield f"{where}: Temporal Cloud registers search attributes with tcld"


def _profile_sets(profiles: list[str]) -> Iterator[tuple[str, ...]]:
    yield ()
    yield from ((p,) for p in profiles)
    if len(profiles) > 1:
        yield tuple(profiles)


@cache
def _compose_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(compose_spec_schema())


def _schema_problems(document: Any) -> Iterator[str]:
    validator = _compose_validator()
    for error in validator.iter_errors(document):
        best = jsonschema.exceptions.best_match([error])
        yield f"{'/'.join(map(str, best.absolute_path)) or '(top)'}: {best.message}"


def _service_problems(document: dict[str, Any], running: dict[str, Any]) -> Iterator[str]:
    services = document.get("services") or {}
    secrets = set(document.get("secrets") or {})
    volumes = set(document.get("volumes") or {})
    for name, svc in running.items():
        for target, how in _depends_on(svc):
            if target not in services:
                yield f"{name} depends on {target}, which is not a service"
            elif target not in running and how.get("required", True):
                yield f"{name} depends on {target}, which does not start here"
        for secret in svc.get("secrets") or []:
            source = secret if isinstance(secret, str) else secret.get("source")
            if source not in secrets:
                yield f"{name} uses the undeclared secret {source}"
        for volume in svc.get("volumes") or []:
            source = (volume if isinstance(volume, str) else volume.get("source", "")).split(":")[0]
            if source.startswith((".", "/")):
                if not (ROOT / source).exists():
                    yield f"{name} mounts {source}, which does not exist"
            elif source and source not in volumes:
                yield f"{name} uses the undeclared volume {source}"
        environment = svc.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        mounted = {
            secret if isinstance(secret, str) else secret.get("target") or secret.get("source")
            for secret in svc.get("secrets") or []
        }
        for variable, value in environment.items():
            if _SECRET_NAME.search(variable) and str(value) not in ("None", "", "true", "false"):
                yield f"{name} sets the secret {variable} as a value: use a *_FILE"
            if isinstance(value, str) and value.startswith("/run/secrets/"):
                if value.removeprefix("/run/secrets/") not in mounted:
                    yield f"{name}: {variable} names {value}, a secret it does not mount"


def _depends_on(svc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    needs = svc.get("depends_on") or {}
    if isinstance(needs, list):
        needs = {target: {} for target in needs}
    yield from needs.items()


# --- Kubernetes -------------------------------------------------------------------------


def k8s_problems(directory: Path = K8S) -> Iterator[str]:
    """Every problem of the manifests that ``directory/kustomization.yaml`` lists."""
    kustomization = load_yaml((directory / "kustomization.yaml").read_text())
    manifests: list[tuple[str, Any]] = []
    for name in kustomization.get("resources") or []:
        path = directory / name
        if not path.is_file():
            yield f"{name}: listed in kustomization.yaml but missing"
            continue
        manifests.extend((name, document) for document in _documents(path))
    config_maps = {
        (document.get("metadata") or {}).get("name"): document.get("data") or {}
        for _, document in manifests
        if isinstance(document, dict) and document.get("kind") == "ConfigMap"
    }
    for name, document in manifests:
        yield from (f"{name}: {problem}" for problem in _manifest_problems(document))
        yield from (
            f"{name}: {problem}" for problem in _secret_file_problems(document, config_maps)
        )
    listed = set(kustomization.get("resources") or [])
    for path in sorted(directory.glob("*.yaml")):
        if path.name != "kustomization.yaml" and path.name not in listed:
            yield f"{path.name}: not listed in kustomization.yaml"


def _documents(path: Path) -> Iterator[Any]:
    for text in re.split(r"^---\s*$", path.read_text(), flags=re.MULTILINE):
        document = load_yaml(text) if text.strip() else None
        if document is not None:
            yield document


@cache
def _k8s_schema(kind: str, api_version: str) -> dict[str, Any] | None:
    group, _, version = api_version.rpartition("/")
    stem = "-".join(filter(None, [kind.lower(), group.split(".")[0], version]))
    path = K8S_SCHEMAS / f"{stem}.json"
    if not path.is_file():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _manifest_problems(document: Any) -> Iterator[str]:
    if not isinstance(document, dict):
        yield "not a mapping"
        return
    kind, api_version = document.get("kind", ""), document.get("apiVersion", "")
    schema = _k8s_schema(str(kind), str(api_version))
    if schema is None:
        yield f"no vendored schema for {api_version} {kind} (deploy/k8s/vendor_schemas.py)"
        return
    validator = jsonschema.Draft202012Validator(schema)
    for error in validator.iter_errors(document):
        best = jsonschema.exceptions.best_match([error])
        yield f"{'/'.join(map(str, best.absolute_path)) or '(top)'}: {best.message}"
    if kind == "Deployment":
        spec = document.get("spec") or {}
        if (spec.get("replicas") or 1) < 2:
            yield "a Deployment of ours runs at least two replicas"
    pod = _pod_spec(document)
    for container in (pod or {}).get("containers") or []:
        cname = container.get("name")
        if kind == "Deployment":
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    yield f"container {cname} has no {probe}"
        for env in container.get("env") or []:
            if _SECRET_NAME.search(env.get("name", "")) and "value" in env:
                yield f"container {cname} sets the secret {env['name']} as a value"
    if kind == "ConfigMap":
        for key in document.get("data") or {}:
            if _SECRET_NAME.search(key):
                yield f"the ConfigMap holds {key}: secrets belong in a Secret, as files"


def _secret_file_problems(document: Any, config_maps: dict[str, dict[str, str]]) -> Iterator[str]:
    """Every /run/secrets/DIR/FILE a container is told about is a file it mounts."""
    pod = _pod_spec(document) if isinstance(document, dict) else None
    if pod is None:
        return
    files: dict[str, set[str] | None] = {}  # volume name -> the files it holds (None: all)
    for volume in pod.get("volumes") or []:
        if "secret" in volume:
            items = volume["secret"].get("items")
            files[volume["name"]] = {item["path"] for item in items} if items else None
    for container in pod.get("containers") or []:
        values = {env["name"]: env.get("value") for env in container.get("env") or []}
        for source in container.get("envFrom") or []:
            config_map = (source.get("configMapRef") or {}).get("name")
            values = config_maps.get(config_map, {}) | values
        mounts = {
            m["mountPath"].rstrip("/"): m["name"]
            for m in container.get("volumeMounts") or []
            if m["name"] in files
        }
        for variable, value in values.items():
            if not (isinstance(value, str) and value.startswith("/run/secrets/")):
                continue
            folder, _, filename = value.rpartition("/")
            volume = mounts.get(folder)
            held = files.get(volume) if volume else set()
            if volume is None or (held is not None and filename not in held):
                yield f"container {container.get('name')}: {variable} names {value}, which it does not mount"


def _pod_spec(document: dict[str, Any]) -> dict[str, Any] | None:
    template = (document.get("spec") or {}).get("template")
    if isinstance(template, dict):
        spec = template.get("spec")
        return spec if isinstance(spec, dict) else None
    return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.lint", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--compose", type=Path, default=ROOT / "docker-compose.yml")
    parser.add_argument("--overrides", type=Path, default=OVERRIDES)
    parser.add_argument("--k8s", type=Path, default=K8S)
    args = parser.parse_args(argv)
    problems = [*compose_problems(args.compose, args.overrides), *k8s_problems(args.k8s)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"deploy lint: {len(problems)} problem(s)", file=sys.stderr)
        sys.exit(1)
    stacks, manifests = (
        len(STACKS),
        len(load_yaml((args.k8s / "kustomization.yaml").read_text())["resources"]),
    )
    print(
        f"deploy lint: ok ({stacks} compose stacks with every profile, {manifests} Kubernetes manifests)"
    )


if __name__ == "__main__":
    main()
