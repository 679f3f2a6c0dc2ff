"""The embedded stack of ``whn-dev``: PostgreSQL, the mail sink, Temporal and a worker.

Everything lives under ``Settings.data_dir`` (``.whn`` by default)::

    pg/            PostgreSQL data (the case store)
    temporal.db    Temporal's SQLite store (workflows, history, search attributes)
    mail/          every email sent, one .eml file each
    logs/          postgres.log, temporal.log
    codec-keys.json  the payload encryption key, generated unless WHN_CODEC_KEYS/_KEY_FILE
    codec-token    the codec server's bearer token, generated unless WHN_CODEC_TOKEN
    intake-key     the development intake key for whn-web (whn.devstack.web)

so a second start finds the cases of the first (and can still decrypt them).

With the Web UI on, a codec server (``whn.codec_server``) runs inside ``whn-dev`` on
127.0.0.1 (``WHN_CODEC_PORT``, default 8081) and the UI is started with it as its codec
endpoint, so payloads are encrypted in Temporal and shown decrypted in the UI. The dev
server's built-in UI has no login and so no token to send: the codec server accepts
token-less requests from the UI's origin, on loopback only (see ``whn.codec_server``).
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import logging
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from whn import db
from whn.codec import CodecKeyError, EncryptionCodec, Keyring, write_key_file
from whn.codec_server import CodecServer, ui_origins
from whn.devstack import _process
from whn.devstack.mailsink import MailSink
from whn.devstack.postgres import EmbeddedPostgres
from whn.devstack.temporal_server import TemporalDevServer
from whn.devstack.web import dev_intake_key, start_web, stop_web, wait_web, web_port
from whn.settings import Settings
from whn.temporal import NO_KEY, keyring

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
        self.codec_server: CodecServer | None = None
        self.generated_key_file: Path | None = None
        self.token_file: Path | None = None
        self.web: subprocess.Popen[bytes] | None = None
        self.web_port = settings.web_port
        self.intake_key: str | None = None

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
            # The reporter's page the letters link to (/track on whn-web).
            "WHN_PUBLIC_URL": s.public_url
            if "public_url" in s.model_fields_set
            else f"http://127.0.0.1:{self.web_port}",
        } | ({"WHN_CODEC_KEY_FILE": str(s.codec_key_file.absolute())} if s.codec_key_file else {})

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
        ring = self._codec_keys()
        if self.temporal.ui_url is not None:
            self._start_codec_server(ring)
        await self.temporal.start()
        # whn-web's port first: the worker's letters link to its /track (WHN_PUBLIC_URL).
        self.web_port = web_port(self.web_port, chosen="web_port" in self.settings.model_fields_set)
        if self.run_worker:
            self._start_worker()
        self.intake_key = await dev_intake_key(self.settings.database_url, self.data_dir)
        self.web = start_web(dict(os.environ) | self.env(), self.web_port)
        await wait_web(self.web, self.web_port)

    def _codec_keys(self) -> Keyring:
        """The configured payload keys, or the dev key under data_dir (made on first start).

        A second shell in this directory finds that key with nothing set
        (``Settings.payload_key_file``); the banner's exports name it all the same.
        """
        s = self.settings
        if s.codec_key_file is None and not (s.codec_keys and s.codec_keys.get_secret_value()):
            path = self.data_dir / "codec-keys.json"
            if not path.exists():
                write_key_file(path)
                self.generated_key_file = path
                log.info("generated a development payload key in %s", path)
            self.settings = s.model_copy(update={"codec_key_file": path})
        ring = keyring(self.settings)
        if ring is None:
            raise CodecKeyError(NO_KEY.format(dev_key=self.data_dir / "codec-keys.json"))
        return ring

    def _codec_token(self) -> str:
        if self.settings.codec_token is not None:
            return self.settings.codec_token.get_secret_value()
        path = self.data_dir / "codec-token"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
        self.token_file = path
        return path.read_text().strip()

    def _start_codec_server(self, ring: Keyring) -> None:
        """The UI's codec endpoint, in this process; a busy default port gives way to a free one."""
        assert self.temporal.ui_url is not None
        server = CodecServer(
            EncryptionCodec(ring),
            host="127.0.0.1",
            port=self.settings.codec_port,
            token=self._codec_token(),
            origins=ui_origins(self.temporal.ui_url),
            ui_without_token=True,
        )
        try:
            server.bind()
        except OSError as err:
            if err.errno != errno.EADDRINUSE or "codec_port" in self.settings.model_fields_set:
                raise OSError(
                    err.errno, f"codec server port {self.settings.codec_port}: {err.strerror}"
                ) from None
            log.warning(
                "port %d is taken: the codec server uses a free port instead (WHN_CODEC_PORT)",
                self.settings.codec_port,
            )
            server.port = 0
            server.bind()
        server.start()
        self.codec_server = server
        self.temporal.codec_endpoint = server.url

    def _start_worker(self) -> None:
        spec = importlib.util.find_spec("worker")
        if spec is None or (spec.origin and not Path(spec.origin).exists()):
            log.warning("no worker module (worker.py) found: running without a worker")
            return
        # The worker's output goes to this terminal; its own logging says who it is.
        # Worker metrics on Prometheus at 9464 unless the developer chose another port
        # (an empty WHN_METRICS_PORT turns them off).
        env = dict(os.environ) | self.env()
        port = env.setdefault("WHN_METRICS_PORT", "9464")
        if not port:
            del env["WHN_METRICS_PORT"]
        self.worker = _process.spawn([sys.executable, "-m", "worker"], output=None, env=env)
        log.info(
            "worker started (pid %d); metrics %s",
            self.worker.pid,
            f"on http://127.0.0.1:{port}/metrics" if port else "off",
        )

    def exited(self) -> tuple[str, int] | None:
        """The name and exit code of a child that has stopped, if any has."""
        children = [
            ("worker", self.worker),
            ("whn-web", self.web),
            ("Temporal", self.temporal.process),
            ("PostgreSQL", self.postgres.process),
        ]
        for name, proc in children:
            if proc is not None and (code := proc.poll()) is not None:
                return name, code
        return None

    async def stop(self) -> None:
        """Stop whn-web and the worker (letting in-flight work finish), Temporal, the codec
        server, PostgreSQL, then mail."""
        worker, self.worker = self.worker, None
        web, self.web = self.web, None
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("whn-web", lambda: stop_web(web)),
            ("worker", lambda: _stop_worker(worker)),
            ("Temporal", self.temporal.stop),
            ("codec server", self._stop_codec_server),
            ("PostgreSQL", self.postgres.stop),
        ]
        for name, step in steps:
            try:
                await step()
            except Exception:  # one failure must not leave the other servers running
                log.exception("could not stop %s", name)
        self.mail.stop()

    async def _stop_codec_server(self) -> None:
        server, self.codec_server = self.codec_server, None
        if server is not None:
            await asyncio.to_thread(server.stop)


async def _stop_worker(worker: subprocess.Popen[bytes] | None) -> None:
    if worker is None:
        return
    # The worker's own graceful shutdown allows 20 s for in-flight activities.
    code = await _process.terminate(worker, name="worker", sig=signal.SIGTERM, grace=30)
    log.info("worker stopped (exit code %d)", code)
