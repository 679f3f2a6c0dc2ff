"""``whn-dev`` as a user runs it: a subprocess, stopped with SIGTERM, started again.

The worker is a stand-in (a ``worker.py`` in the working directory, which ``python -m
worker`` finds first) that records its environment and checks, when told to stop, that
Temporal is still up: the real worker is tested with the workflows.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiosmtplib
import asyncpg
import httpx
import psutil
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from whn.devstack.main import READY_LINE
from whn.devstack.temporal_server import free_port

WHN_DEV = Path(sys.executable).parent / "whn-dev"

FAKE_WORKER = """
import json, os, signal, socket, sys, time
from pathlib import Path

out = Path(os.environ["FAKE_WORKER_OUT"])

def stop(signum, frame):
    host, port = os.environ["WHN_TEMPORAL_ADDRESS"].rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=2).close()
    out.with_suffix(".stopped").write_text("Temporal still up when the worker was stopped")
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
partial = out.with_suffix(".partial")
partial.write_text(json.dumps({k: v for k, v in os.environ.items() if k.startswith("WHN_")}))
partial.replace(out)
if os.environ.get("FAKE_WORKER_CRASH"):
    sys.exit(3)
while True:
    time.sleep(0.1)
"""


class DevRun:
    """One ``whn-dev`` process, its output in a file."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.output = cwd / f"whn-dev-{len(list(cwd.glob('whn-dev-*.log')))}.log"
        with self.output.open("wb") as out:
            # A session of its own, as a terminal would give it, for interrupt().
            self.proc = subprocess.Popen(
                [str(WHN_DEV)],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    async def ready(self, within: float = 60) -> list[psutil.Process]:
        """Wait for the ready line; every process whn-dev has started by then."""
        for _ in range(int(within * 10)):
            if READY_LINE in self.text():
                children: list[psutil.Process] = psutil.Process(self.proc.pid).children(
                    recursive=True
                )
                return children
            if self.proc.poll() is not None:
                pytest.fail(f"whn-dev exited {self.proc.returncode}:\n{self.text()}")
            await asyncio.sleep(0.1)
        pytest.fail(f"whn-dev not ready after {within} s:\n{self.text()}")

    async def exit_code(self, within: float = 60) -> int:
        for _ in range(int(within * 10)):
            if (code := self.proc.poll()) is not None:
                return code
            await asyncio.sleep(0.1)
        self.proc.kill()
        pytest.fail(f"whn-dev still running after {within} s:\n{self.text()}")

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await self.exit_code()

    async def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the whole foreground process group, as a terminal sends it."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return await self.exit_code()


async def _appears(path: Path, within: float = 10) -> str:
    """The text of ``path`` once it exists: the worker is started just before the banner."""
    for _ in range(int(within * 10)):
        try:
            return await asyncio.to_thread(path.read_text)
        except FileNotFoundError:
            await asyncio.sleep(0.1)
    pytest.fail(f"{path} not written within {within} s")


def _alive(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{p.pid} {p.cmdline()}")
        except psutil.NoSuchProcess:
            pass
    return alive


def _using(data_dir: Path) -> list[str]:
    """Processes whose command line names ``data_dir`` (PostgreSQL, Temporal)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        if str(data_dir) in cmdline and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{p.info['pid']} {cmdline}")
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "worker.py").write_text(FAKE_WORKER)
    return tmp_path


@pytest.fixture
def dev_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_")}
    return env | {
        "WHN_DATA_DIR": str(workdir / ".whn"),
        "WHN_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "WHN_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/whn",
        "WHN_SMTP_PORT": str(free_port()),
        "WHN_UI_URL": f"http://127.0.0.1:{free_port()}",
        "WHN_WEB_PORT": str(free_port()),
        "FAKE_WORKER_OUT": str(workdir / "worker.json"),
    }


async def test_runs_stops_cleanly_and_keeps_data_for_the_next_run(
    workdir: Path, dev_env: dict[str, str]
) -> None:
    data_dir = workdir / ".whn"
    first = DevRun(workdir, dev_env)
    children = await first.ready()
    try:
        worker_env = json.loads(await _appears(workdir / "worker.json"))
        assert worker_env["WHN_DATABASE_URL"] == dev_env["WHN_DATABASE_URL"]
        assert worker_env["WHN_DATA_DIR"] == str(data_dir)
        assert f"export WHN_TEMPORAL_ADDRESS={dev_env['WHN_TEMPORAL_ADDRESS']}" in first.text()

        conn = await asyncpg.connect(dev_env["WHN_DATABASE_URL"])
        assert await conn.fetchval("SELECT count(*) FROM staff") == 5
        await conn.execute("INSERT INTO staff VALUES ('kept-1', 'Kept', '{officer}')")
        await conn.close()

        client = await Client.connect(dev_env["WHN_TEMPORAL_ADDRESS"])
        await client.start_workflow("Nobody", id="kept", task_queue="no-worker")

        await aiosmtplib.send(
            "Subject: hello\r\n\r\nbody\r\n",
            sender="a@example.org",
            recipients=["b@example.org"],
            hostname="127.0.0.1",
            port=int(dev_env["WHN_SMTP_PORT"]),
        )
        assert len(list((data_dir / "mail").glob("*.eml"))) == 1

        ui = await asyncio.to_thread(urllib.request.urlopen, dev_env["WHN_UI_URL"], timeout=5)
        assert ui.status == 200
        ui.close()

        # whn-web, with the development intake key the banner exports.
        key = re.search(r"export WHN_INTAKE_KEY=(\S+)", first.text())
        assert key, first.text()
        web = f"http://127.0.0.1:{dev_env['WHN_WEB_PORT']}"
        async with httpx.AsyncClient(base_url=web) as http:
            assert (await http.get("/readyz")).status_code == 200
            unknown = "/api/v1/cases/WHN-0000-0000-00"
            assert (await http.get(unknown)).status_code == 401
            auth = {"Authorization": f"Bearer {key.group(1)}"}
            assert (await http.get(unknown, headers=auth)).status_code == 404
    finally:
        assert await first.stop() == 0, first.text()
    assert (workdir / "worker.stopped").exists(), "worker stopped before Temporal"
    assert _alive(children) == []
    assert _using(data_dir) == []

    (workdir / "worker.stopped").unlink()
    (workdir / "worker.json").unlink()
    second = DevRun(workdir, dev_env)
    children = await second.ready()
    try:
        await _appears(workdir / "worker.json")
        conn = await asyncpg.connect(dev_env["WHN_DATABASE_URL"])
        assert await conn.fetchval("SELECT name FROM staff WHERE staff_id = 'kept-1'") == "Kept"
        await conn.close()
        client = await Client.connect(dev_env["WHN_TEMPORAL_ADDRESS"])
        described = await client.get_workflow_handle("kept").describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
    finally:
        assert await second.interrupt() == 0, second.text()
    assert (workdir / "worker.stopped").exists(), "worker stopped before Temporal"
    assert _alive(children) == []
    assert _using(data_dir) == []


async def test_a_child_that_dies_stops_the_rest_and_fails(
    workdir: Path, dev_env: dict[str, str]
) -> None:
    run = DevRun(workdir, dev_env | {"FAKE_WORKER_CRASH": "1"})
    assert await run.exit_code() == 1, run.text()
    assert "worker exited unexpectedly (code 3)" in run.text()
    assert _using(workdir / ".whn") == []


async def test_a_killed_run_leaves_no_server_behind(workdir: Path, dev_env: dict[str, str]) -> None:
    first = DevRun(workdir, dev_env)
    children = await first.ready()
    first.proc.kill()  # no chance to stop anything: the children must notice by themselves
    await first.exit_code()
    for _ in range(100):
        if not _alive(children):
            break
        await asyncio.sleep(0.1)
    assert _alive(children) == []

    second = DevRun(workdir, dev_env)
    await second.ready()
    assert await second.stop() == 0, second.text()


async def test_a_server_that_cannot_start_fails_the_run(
    workdir: Path, dev_env: dict[str, str]
) -> None:
    port = int(dev_env["WHN_TEMPORAL_ADDRESS"].rsplit(":", 1)[1])
    with socket.create_server(("127.0.0.1", port)):
        run = DevRun(workdir, dev_env)
        assert await run.exit_code() == 1, run.text()
    assert f"could not start: port {port} on 127.0.0.1 is already in use" in run.text()
    assert "Traceback" not in run.text()
    assert _using(workdir / ".whn") == []
