"""Child processes of the dev stack: how they are started, watched and stopped.

Every server runs in its own process group, so a Ctrl-C at the terminal reaches only the
parent, which then stops the children in order (worker first, PostgreSQL near the end).
On Linux each child also asks the kernel for a signal when its parent dies, so a parent
killed with SIGKILL does not leave servers running on the dev ports.

Also here: what running a server as another user (PostgreSQL under root) needs.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _death_signal_hook(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks for ``sig`` when the parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def hook() -> None:
        # Runs in the child after it has dropped privileges (if any): a change of
        # credentials would otherwise clear the setting.
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook


def spawn(
    args: Sequence[str | os.PathLike[str]],
    *,
    output: IO[bytes] | int | None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    death_signal: signal.Signals = signal.SIGTERM,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, with stdout and stderr sent to ``output``.

    Must be called from the main thread: the kernel's parent-death signal follows the
    thread that forked the child, not the process.
    """
    log.debug("starting %s", " ".join(map(str, args)))
    return subprocess.Popen(
        [os.fspath(a) for a in args],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        user=user,
        group=_primary_group(user) if user else None,
        extra_groups=[] if user else None,
        process_group=0,
        preexec_fn=_death_signal_hook(death_signal),
    )


def _primary_group(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


async def wait_exit(proc: subprocess.Popen[bytes], within: float) -> int | None:
    """Wait up to ``within`` seconds without blocking the event loop; the exit code or None."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    # A Popen has nothing to await, and asyncio's own subprocesses are bound to one loop.
    while (code := proc.poll()) is None and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return code


async def terminate(
    proc: subprocess.Popen[bytes],
    *,
    name: str,
    sig: signal.Signals = signal.SIGTERM,
    grace: float = 15.0,
) -> int:
    """Send ``sig``, give it ``grace`` seconds to exit, then SIGKILL; return the exit code."""
    if proc.poll() is None:
        log.debug("sending %s to %s (pid %d)", sig.name, name, proc.pid)
        _signal(proc, sig)
        if await wait_exit(proc, grace) is None:
            log.warning("%s did not stop within %.0f s; killing it", name, grace)
            _signal(proc, signal.SIGKILL)
            await wait_exit(proc, 5.0)
    code = proc.wait()
    log.debug("%s exited with %s", name, code)
    return code


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def listening(host: str, port: int) -> bool:
    """Whether something already accepts TCP connections on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def ensure_system_user(name: str) -> tuple[int, int]:
    """Create system user ``name`` if missing (we are root); its uid and gid."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def allow_traversal(path: Path) -> None:
    """Let every user list and enter each parent directory of ``path``."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
        if wanted != mode:
            parent.chmod(wanted)


def allow_read_tree(root: Path) -> None:
    """Let every user read everything under ``root`` (and enter its directories)."""
    for directory, _, files in os.walk(root):
        for path in [Path(directory), *(Path(directory, f) for f in files)]:
            mode = path.stat().st_mode
            wanted = mode | stat.S_IRGRP | stat.S_IROTH
            if path.is_dir() or mode & stat.S_IXUSR:
                wanted |= stat.S_IXGRP | stat.S_IXOTH
            if wanted != mode:
                path.chmod(wanted)
