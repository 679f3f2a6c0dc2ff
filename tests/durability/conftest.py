"""Real processes for the fault tests: a dev server on a database file, worker processes.

PostgreSQL and the SMTP sink are the session's (``postgres_server``, ``mail_sink``), which
a test may stop and start on the same port. The Temporal dev server here is this
package's own, persisted to a file, so a test can stop it and start it again on the same
history. Workers are ``python -m worker`` processes, configured as operations would
configure them (``WHN_*``), which a test kills, terminates and replaces.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from starter.errors import UnavailableError
from whn.devstack import _process
from whn.devstack.mailsink import MailSink
from whn.devstack.temporal_server import TemporalDevServer, free_port
from whn.temporal import data_converter

ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: waits out a long outage on purpose (still part of `make test`)"
    )


@pytest.fixture(scope="module")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TemporalDevServer]:
    """A headless dev server persisted to a file: it can stop and start on the same history."""
    directory = tmp_path_factory.mktemp("temporal")
    server = TemporalDevServer(
        directory / "t.db", free_port(), None, log_file=directory / "server.log"
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def temporal_client(temporal: TemporalDevServer) -> Client:
    """A client of ``temporal``; it reconnects by itself after the server restarts."""
    return await Client.connect(
        temporal.address, namespace=temporal.namespace, data_converter=data_converter()
    )


class WorkerProcess:
    """One ``python -m worker`` process and its log."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    async def ready(self, within: float = 60) -> None:
        """Wait until the worker says it polls its task queue."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while "worker polling task queue" not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            if loop.time() > deadline:
                raise AssertionError(f"worker not ready after {within} s:\n{self.output()}")
            await asyncio.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def kill(self) -> None:
        """SIGKILL: no drain, no goodbye, as when a machine dies."""
        self.proc.send_signal(signal.SIGKILL)
        await _process.wait_exit(self.proc, 10)

    async def terminate(self, within: float) -> int | None:
        """SIGTERM and wait up to ``within`` seconds; the exit code, or None if still running."""
        self.proc.send_signal(signal.SIGTERM)
        return await _process.wait_exit(self.proc, within)


class Workers:
    """Starts worker processes for one test's task queue; kills any left at the end."""

    def __init__(
        self,
        temporal: TemporalDevServer,
        dsn: str,
        mail_sink: MailSink,
        task_queue: str,
        logs: Path,
    ) -> None:
        self._env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "WHN_TEMPORAL_ADDRESS": temporal.address,
            "WHN_TEMPORAL_NAMESPACE": temporal.namespace,
            "WHN_DATABASE_URL": dsn,
            "WHN_SMTP_HOST": mail_sink.host,
            "WHN_SMTP_PORT": str(mail_sink.port),
            "WHN_TASK_QUEUE": task_queue,
            "WHN_DATA_DIR": str(logs),
        }
        self._logs = logs
        self.started: list[WorkerProcess] = []

    async def start(
        self, *, smtp_port: int | None = None, env: dict[str, str] | None = None
    ) -> WorkerProcess:
        """Start a worker (optionally on another SMTP port, with more environment) and
        wait until it polls."""
        env = {**self._env, **(env or {})}
        if smtp_port is not None:
            env["WHN_SMTP_PORT"] = str(smtp_port)
        log = self._logs / f"worker-{len(self.started) + 1}.log"
        with log.open("ab") as output:
            proc = _process.spawn(
                [sys.executable, "-m", "worker"], output=output, env=env, cwd=ROOT
            )
        worker = WorkerProcess(proc, log)
        self.started.append(worker)
        await worker.ready()
        return worker

    async def stop_all(self) -> None:
        for worker in self.started:
            if worker.proc.poll() is None:
                await worker.kill()


@pytest.fixture
async def workers(
    temporal: TemporalDevServer, pg_dsn: str, mail_sink: MailSink, task_queue: str, tmp_path: Path
) -> AsyncIterator[Workers]:
    found = Workers(temporal, pg_dsn, mail_sink, task_queue, tmp_path)
    yield found
    await found.stop_all()


async def retrying(call: Callable[[], Awaitable[T]], *, within: float = 120) -> T:
    """What a well-behaved caller does while Temporal restarts: try again, same request."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await call()
        except (RPCError, RPCTimeoutOrCancelledError, UnavailableError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)
