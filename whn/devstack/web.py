"""whn-web in the dev stack: a development intake key, and the server as a child process.

The key is kept in ``data_dir/intake-key`` (owner-only), its hash registered as the
intake system ``dev`` (``whn-admin intake-key list`` shows it), so ``whn-dev`` can print
``export WHN_INTAKE_KEY=...`` on every start; one revoked by a supervisor is replaced.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import asyncpg
import httpx

from whn.devstack import _process

log = logging.getLogger(__name__)

DEV_INTAKE_SYSTEM = "dev"


async def dev_intake_key(database_url: str, data_dir: Path) -> str:
    """The development intake key: the one kept under ``data_dir`` while it is active."""
    from starter.intake_keys import key_hash, new_key, store_key

    path = data_dir / "intake-key"
    key = path.read_text().strip() if path.exists() else ""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            row = (
                await conn.fetchrow(
                    "SELECT revoked_at FROM intake_keys WHERE key_hash = $1", key_hash(key)
                )
                if key
                else None
            )
            if row is not None and row["revoked_at"] is None:
                return key
            key = new_key()
            await store_key(conn, DEV_INTAKE_SYSTEM, key, created_by="whn-dev")
            await conn.execute(
                "INSERT INTO audit_log (actor, action, workflow_id, allowed, reason)"
                " VALUES ('whn-dev', 'intake-key-add', NULL, true, $1)",
                f"{DEV_INTAKE_SYSTEM}: development key",
            )
    finally:
        await conn.close()
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    log.info("registered a development intake key (kept in %s)", path)
    return key


def web_port(port: int, *, chosen: bool) -> int:
    """``port``, or a free one when it is taken and was not asked for (``WHN_WEB_PORT``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return port
        except OSError as err:
            if err.errno != errno.EADDRINUSE or chosen:
                raise OSError(err.errno, f"whn-web port {port}: {err.strerror}") from None
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    log.warning("port %d is taken: whn-web uses %d instead (WHN_WEB_PORT)", port, free)
    return free


def start_web(env: Mapping[str, str], port: int) -> subprocess.Popen[bytes]:
    """``whn-web`` as a child process on 127.0.0.1:``port``; its output to this terminal."""
    proc = _process.spawn(
        [sys.executable, "-m", "web.main"], output=None, env={**env, "WHN_WEB_PORT": str(port)}
    )
    log.info("whn-web started (pid %d) on http://127.0.0.1:%d", proc.pid, port)
    return proc


async def wait_web(proc: subprocess.Popen[bytes], port: int, within: float = 30) -> None:
    """Until whn-web answers /healthz (or has exited, which the stack's watch reports)."""
    async with httpx.AsyncClient(timeout=1) as http:
        for _ in range(int(within * 10)):
            if proc.poll() is not None:
                return
            try:
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    log.warning("whn-web did not answer within %.0f s", within)


async def stop_web(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    # whn-web lets requests in flight finish for up to 20 s (web.main).
    code = await _process.terminate(proc, name="whn-web", sig=signal.SIGTERM, grace=30)
    log.info("whn-web stopped (exit code %d)", code)
