"""docs/deployment.md can be followed: every step of its three paths names the file it
uses, and every file, command option and variable it names exists."""

from __future__ import annotations

import re

import pytest

from deploy.composefile import ROOT, load_compose, read_env_file

DOC = (ROOT / "docs" / "deployment.md").read_text()
PATHS = ("## Path A: one host", "## Path B: a Kubernetes cluster", "## Path C: Temporal Cloud")
# Backticked repository paths: `deploy/...`, `docker-compose.yml`, `.env.example`, ...
_FILE = re.compile(
    r"`((?:deploy|docs|tests|examples|whn|secrets)/[\w./*-]+|docker-compose\.yml|\.env\.example|Dockerfile|Makefile)`"
)


def _section(heading: str) -> str:
    start = DOC.index(heading)
    end = DOC.find("\n## ", start + len(heading))
    return DOC[start : end if end != -1 else None]


def _steps(section: str) -> list[str]:
    return re.split(r"\n(?=\d+\. \*\*)", section)[1:]


@pytest.mark.parametrize("heading", PATHS)
def test_every_step_names_the_file_it_uses(heading):
    steps = _steps(_section(heading))
    assert len(steps) >= 5, heading
    for step in steps:
        title = step.split("\n", 1)[0]
        named = _FILE.findall(step) + re.findall(r"`(SECRETS_DIR[\w/.]*|\.env)`", step)
        assert named, f"{heading}: step without a file: {title}"


def test_every_file_the_doc_names_exists():
    for path in set(_FILE.findall(DOC)):
        if path.startswith("secrets/"):
            continue  # what deploy/gen-secrets.sh writes
        assert (ROOT / path.rstrip("/")).exists() or list(ROOT.glob(path)), path


def test_every_variable_the_doc_tells_you_to_set_is_in_env_example():
    env = read_env_file()
    for name in re.findall(r"`([A-Z][A-Z0-9_]+)=", DOC):
        if name.startswith(("WHN_", "TEMPORAL_", "SSL_", "OTEL_")) and name not in env:
            continue  # settings and the CLI's own variables, not .env entries
        assert name in env, name
    for name in ("SECRETS_DIR", "PUBLIC_HOST", "HTTPS_PORT", "UI_OIDC_ISSUER_URL"):
        assert f"`{name}`" in DOC and name in env


def test_the_doc_lists_every_service_and_every_secret():
    compose = load_compose()
    for name in compose["services"]:
        assert f"`{name}`" in DOC, name
    for secret in compose["secrets"].values():
        filename = secret["file"].rsplit("}/", 1)[1]
        assert f"`{filename}`" in DOC or f"`{filename}`, " in DOC or filename.split("/")[-1] in DOC
