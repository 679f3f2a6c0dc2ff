"""The benchmark's own stack, in a temporary directory, on free ports.

PostgreSQL with ``fsync`` on (``fast=False``: the durability production pays for), the
Temporal dev server on a SQLite file in WAL mode, the mail sink, and one worker process
per workload.

Why the worker (and the mail sink) run as child processes rather than in this one:
this process is the load generator and the stopwatch. In-process, the worker's workflow
activations, the sink's SMTP parsing and the driver's timing would share one GIL and one
event loop, so every latency would include the others' queueing and the worker's RSS
could not be told apart from the driver's. As children they are measured the way
production runs them (``whn-worker`` is a process of its own), ``psutil`` reads each
one's RSS, and ``py-spy`` can attach to the worker alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from bench.worker import READY_LINE
from whn import db
from whn.codec import generate_key
from whn.devstack import _process
from whn.devstack.postgres import EmbeddedPostgres
from whn.devstack.temporal_server import TemporalDevServer, free_port
from whn.settings import Settings

log = logging.getLogger("bench.stack")

# The worker's environment beyond WHN_*, as its image runs it (docker-compose.yml,
# deploy/k8s, docs/deployment.md): glibc's malloc otherwise gives each of the SDK's
# threads an arena of its own, and a cached case's native memory spreads over them
# (bench.memory measures it both ways). Set here only if the caller's environment has not.
WORKER_ENV = {"MALLOC_ARENA_MAX": "2"}
DATABASE = "whn_bench"
INTEL_DATABASE = "whn_bench_intel"
ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """A ``bench.worker`` child on one task queue; stop it with ``stop()``."""

    def __init__(self, proc: subprocess.Popen[bytes], workload: str, task_queue: str) -> None:
        self.proc = proc
        self.workload = workload
        self.task_queue = task_queue

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_bytes(self) -> int:
        return rss_bytes(self.proc.pid)

    async def stop(self) -> None:
        code = await _process.terminate(self.proc, name=f"{self.workload} worker", grace=30)
        if code not in (0, -15):
            log.warning("%s worker exited with %s", self.workload, code)


class BenchStack:
    """Everything a benchmark run needs, started by ``start()`` and removed by ``stop()``."""

    def __init__(
        self,
        *,
        keep: bool = False,
        codec: bool = True,
        variant: str | None = None,
        cache: int | None = None,
        event_loop: str | None = None,
    ) -> None:
        """``cache``: every worker's ``WHN_MAX_CACHED_WORKFLOWS`` (None: the worker's
        default); a worker started with ``extra_env`` may set its own. ``event_loop``:
        every worker's ``WHN_EVENT_LOOP`` (``uvloop`` or ``asyncio``; None: the default)."""
        self.variant = variant
        self.cache = cache
        self.event_loop = event_loop
        # Production runs with payload encryption required (docker-compose.yml): so does
        # the benchmark, with a key of its own, unless asked for plaintext.
        self.codec_keys = f"bench:{generate_key()}" if codec else None
        self.dir = Path(tempfile.mkdtemp(prefix="whn-bench-"))
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.keep = keep
        self.postgres = EmbeddedPostgres(
            self.dir / "pg", free_port(), fast=False, log_file=self.logs / "postgres.log"
        )
        self.temporal = TemporalDevServer(
            self.dir / "temporal.db",
            free_port(),
            None,
            log_file=self.logs / "temporal.log",
            # Server tunings to try side by side (docs/deployment.md "The Temporal
            # server's runtime"); the Go runtime's own (GOGC ...) come from the environment.
            extra_args=shlex.split(os.environ.get("BENCH_TEMPORAL_ARGS", "")),
        )
        self.mail_dir = self.dir / "mail"
        self.smtp_port = free_port()
        self._sink: subprocess.Popen[bytes] | None = None
        self.dsn = ""
        self.intel_dsn = ""

    @property
    def settings(self) -> Settings:
        """What the worker processes read from the environment (every other value default)."""
        return Settings(
            _env_prefix="WHN_BENCH_IGNORED_",
            temporal_address=self.temporal.address,
            database_url=self.dsn,
            smtp_host="127.0.0.1",
            smtp_port=self.smtp_port,
            data_dir=self.dir,
            codec_keys=self.codec_keys,
            codec_required=self.codec_keys is not None,
            **({"max_cached_workflows": self.cache} if self.cache is not None else {}),
            **({"event_loop": self.event_loop} if self.event_loop is not None else {}),  # type: ignore[arg-type]
        )

    def env(self, task_queue: str) -> dict[str, str]:
        s = self.settings
        # Only what points at this stack: every other setting is the worker's default,
        # so the benchmark measures the configuration operations would run.
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("WHN_", "BENCH_"))}
        # --plaintext must say so: every client refuses to send plaintext otherwise.
        extra = (
            {"WHN_CODEC_KEYS": self.codec_keys}
            if self.codec_keys
            else {"WHN_CODEC_REQUIRED": "false"}
        )
        if self.variant:
            extra["BENCH_WORKER_VARIANT"] = self.variant
        if self.cache is not None:
            extra["WHN_MAX_CACHED_WORKFLOWS"] = str(self.cache)
        if self.event_loop is not None:
            extra["WHN_EVENT_LOOP"] = self.event_loop
        return {
            **WORKER_ENV,
            **keep,
            **extra,
            "WHN_TEMPORAL_ADDRESS": s.temporal_address,
            "WHN_DATABASE_URL": s.database_url,
            "WHN_SMTP_HOST": s.smtp_host,
            "WHN_SMTP_PORT": str(s.smtp_port),
            "WHN_TASK_QUEUE": task_queue,
            "WHN_DATA_DIR": str(self.dir),
        }

    async def start(self) -> None:
        await self.postgres.start()
        self.dsn = await db.ensure_database(self.postgres.dsn(), DATABASE)
        await db.migrate(self.dsn)
        await db.seed_demo_roster(self.dsn)
        self.intel_dsn = await db.ensure_database(self.postgres.dsn(), INTEL_DATABASE)
        self._start_sink()
        await self.temporal.start()
        log.info("stack up in %s", self.dir)

    def _start_sink(self) -> None:
        out = (self.logs / "mailsink.log").open("ab")
        self._sink = _process.spawn(
            [sys.executable, "-m", "bench.sink", str(self.mail_dir), str(self.smtp_port)],
            output=out,
            cwd=ROOT,
        )
        out.close()

    @property
    def sink_pid(self) -> int | None:
        return self._sink.pid if self._sink is not None else None

    def worker_env_shown(self) -> dict[str, str]:
        """The worker's environment beyond WHN_* (for the results: what the figures ran with)."""
        env = self.env("any")
        return {k: env[k] for k in WORKER_ENV}

    async def start_worker(
        self,
        workload: str,
        task_queue: str,
        *,
        extra_env: dict[str, str | None] | None = None,
        log_name: str | None = None,
    ) -> WorkerProcess:
        """Start a worker for ``workload`` (case, naive, floor) and wait until it polls.

        ``extra_env``: settings for this worker alone (the memory measure's cache size
        and ``BENCH_TRACEMALLOC``; None unsets one); every other one is the worker's default.
        ``log_name``: its log's name when it replaces a worker on the same queue (each
        worker's own log says when it polls; default the task queue).
        """
        env: dict[str, str] = {**self.env(task_queue)}
        for key, value in (extra_env or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        log_path = self.logs / f"worker-{log_name or task_queue}.log"
        out = log_path.open("ab")
        proc = _process.spawn(
            [sys.executable, "-m", "bench.worker", workload],
            output=out,
            env=env,
            cwd=ROOT,
        )
        out.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while READY_LINE not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or loop.time() > deadline:
                await _process.terminate(proc, name="worker")
                raise RuntimeError(f"{workload} worker did not start:\n{_process.tail(log_path)}")
            await asyncio.sleep(0.05)
        return WorkerProcess(proc, workload, task_queue)

    def pids(self, worker: WorkerProcess | None = None) -> dict[str, int]:
        """The processes whose CPU a workload spends: worker, server, PostgreSQL, mail sink."""
        pids = {"worker": worker.pid} if worker is not None else {}
        for name, proc in (
            ("temporal", self.temporal.process),
            ("postgres", self.postgres.process),
            ("sink", self._sink),
        ):
            if proc is not None:
                pids[name] = proc.pid
        return pids

    def server_rss_bytes(self) -> int:
        proc = self.temporal.process
        return rss_bytes(proc.pid) if proc else 0

    async def stop(self) -> None:
        if self._sink is not None:
            await _process.terminate(self._sink, name="mail sink", grace=5)
        for step in (self.temporal.stop, self.postgres.stop):
            try:
                await step()
            except Exception:  # one failure must not leave the other server running
                log.exception("could not stop a server")
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            log.warning("kept %s", self.dir)


def rss_bytes(pid: int) -> int:
    """Resident set of ``pid`` and its children (the Temporal CLI may fork the server)."""
    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        return 0
    return total
