"""The embedded stack of ``whn-dev``: PostgreSQL, the mail sink, Temporal and a worker.

Everything lives under ``Settings.data_dir`` (``.whn`` by default)::

    pg/            PostgreSQL data (the case store)
    temporal.db    Temporal's SQLite store (workflows, history, search attributes)
    mail/          every email sent, one .eml file each
    logs/          postgres.log, temporal.log

so a second start finds the cases of the first.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from whn import db
from whn.devstack import _process
from whn.devstack.mailsink import MailSink
from whn.devstack.postgres import EmbeddedPostgres
from whn.devstack.temporal_server import TemporalDevServer
from whn.settings import Settings

log = logging.getLogger(__name__)

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


class DevStack:
    """The servers of the dev stack, started in dependency order and stopped in reverse.

    Args:
        settings: Where each server listens comes from the addresses in here
            (``database_url``, ``temporal_address``, ``smtp_host``/``smtp_port``,
            ``ui_url``), so the worker and the CLIs find them with the same settings.
        worker: Also run the worker (``python -m worker``) as a child process.
    """

    def __init__(self, settings: Settings, *, worker: bool = True) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.absolute()
        self.logs_dir = self.data_dir / "logs"
        database = urlsplit(settings.database_url)
        temporal_host, _, temporal_port = settings.temporal_address.rpartition(":")
        for what, host in [
            ("database_url", database.hostname),
            ("temporal_address", temporal_host),
        ]:
            if (host or "") not in _LOCAL_HOSTS:
                log.warning("%s points at %s, but whn-dev serves on 127.0.0.1", what, host)
        self.postgres = EmbeddedPostgres(
            self.data_dir / "pg",
            port=database.port or 5432,
            log_file=self.logs_dir / "postgres.log",
        )
        self.database = database.path.lstrip("/") or "postgres"
        self.mail = MailSink(self.data_dir / "mail", settings.smtp_host, settings.smtp_port)
        self.temporal = TemporalDevServer(
            self.data_dir / "temporal.db",
            port=int(temporal_port),
            ui_port=urlsplit(settings.ui_url).port or 8233,
            namespace=settings.temporal_namespace,
            log_file=self.logs_dir / "temporal.log",
        )
        self.run_worker = worker
        self.worker: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """The ``WHN_*`` variables that point a process at this stack."""
        s = self.settings
        return {
            "WHN_TEMPORAL_ADDRESS": s.temporal_address,
            "WHN_TEMPORAL_NAMESPACE": s.temporal_namespace,
            "WHN_TASK_QUEUE": s.task_queue,
            "WHN_DATABASE_URL": s.database_url,
            "WHN_SMTP_HOST": s.smtp_host,
            "WHN_SMTP_PORT": str(s.smtp_port),
            "WHN_MAIL_FROM": s.mail_from,
            "WHN_DATA_DIR": str(self.data_dir),
            "WHN_UI_URL": self.temporal.ui_url or s.ui_url,
        }

    async def start(self) -> None:
        """Start every server, then the worker; each waits until it is ready.

        If cancelled or failing part-way, what did start is left for ``stop()``.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self.postgres.start()
        await db.ensure_database(self.postgres.dsn(), self.database)
        applied = await db.migrate(self.settings.database_url)
        log.info("database %s ready (%d migrations applied now)", self.database, len(applied))
        await db.seed_demo_roster(self.settings.database_url)
        self.mail.start()
        await self.temporal.start()
        if self.run_worker:
            self._start_worker()

    def _start_worker(self) -> None:
        spec = importlib.util.find_spec("worker")
        if spec is None or (spec.origin and not Path(spec.origin).exists()):
            log.warning("no worker module (worker.py) found: running without a worker")
            return
        # The worker's output goes to this terminal; its own logging says who it is.
        self.worker = _process.spawn(
            [sys.executable, "-m", "worker"],
            output=None,
            env=os.environ | self.env(),
        )
        log.info("worker started (pid %d)", self.worker.pid)

    def exited(self) -> tuple[str, int] | None:
        """The name and exit code of a child that has stopped, if any has."""
        children = [
            ("worker", self.worker),
            ("Temporal", self.temporal.process),
            ("PostgreSQL", self.postgres.process),
        ]
        for name, proc in children:
            if proc is not None and (code := proc.poll()) is not None:
                return name, code
        return None

    async def stop(self) -> None:
        """Stop the worker (letting in-flight work finish), Temporal, PostgreSQL, then mail."""
        worker, self.worker = self.worker, None
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("worker", lambda: _stop_worker(worker)),
            ("Temporal", self.temporal.stop),
            ("PostgreSQL", self.postgres.stop),
        ]
        for name, step in steps:
            try:
                await step()
            except Exception:  # one failure must not leave the other servers running
                log.exception("could not stop %s", name)
        self.mail.stop()


async def _stop_worker(worker: subprocess.Popen[bytes] | None) -> None:
    if worker is None:
        return
    # The worker's own graceful shutdown allows 20 s for in-flight activities.
    code = await _process.terminate(worker, name="worker", sig=signal.SIGTERM, grace=30)
    log.info("worker stopped (exit code %d)", code)
