"""The CLIs as subprocesses against a real dev server, PostgreSQL, SMTP and a worker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from worker import build_worker

BIN = Path(sys.executable).parent


@dataclass
class Cli:
    env: dict[str, str]
    cwd: Path | None = None

    async def __call__(
        self, *args: str, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        program, *rest = args
        proc = await asyncio.create_subprocess_exec(
            str(BIN / program),
            *rest,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
        assert proc.returncode is not None
        return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())

    async def json(self, *args: str) -> dict:
        result = await self(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
async def cli(
    dev_server, dev_client, pg_dsn, mail_sink, db_pool, settings, task_queue
) -> AsyncIterator[Cli]:
    env = {
        **os.environ,
        "WHN_TEMPORAL_ADDRESS": dev_server.address,
        "WHN_DATABASE_URL": pg_dsn,
        "WHN_SMTP_HOST": settings.smtp_host,
        "WHN_SMTP_PORT": str(settings.smtp_port),
        "WHN_TASK_QUEUE": task_queue,
        "WHN_DATA_DIR": str(settings.data_dir),
    }
    env.pop("WHN_STAFF_ID", None)
    # The worker as shipped (no workflow sandbox), where the other tests run the sandbox.
    shipped = settings.model_copy(update={"workflow_sandbox": False})
    async with build_worker(dev_client, db_pool, shipped, task_queue=task_queue):
        yield Cli(env)
