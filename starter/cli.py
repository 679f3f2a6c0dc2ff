"""What the two CLIs share: connecting, running a coroutine, and turning errors into exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from temporalio.client import Client

from starter.errors import PayloadKeyError, UnavailableError, WhnError
from whn.codec import CodecKeyError
from whn.settings import Settings, SettingsError, get_settings
from whn.telemetry import setup_tracing, shutdown_tracing
from whn.temporal import connect_client

T = TypeVar("T")


async def client_for(settings: Settings) -> Client:
    setup_tracing(settings, service_name=Path(sys.argv[0]).name or "whn-cli")
    try:
        return await asyncio.wait_for(connect_client(settings), timeout=10)
    except CodecKeyError as err:  # no key, or a malformed one: nothing is sent
        raise PayloadKeyError(str(err)) from None
    except (RuntimeError, OSError, TimeoutError) as err:
        raise UnavailableError(
            f"Temporal could not be reached at {settings.temporal_address}: {str(err).splitlines()[0]}"
        ) from None


def run(program: Callable[[Settings], Awaitable[T]], *, prog: str) -> T:
    """Run ``program``; a WhnError becomes one line on stderr and its exit code.

    So do a malformed setting and a payload key error (exit 1), wherever they arise.
    """
    try:
        return asyncio.run(program(settings_for(prog)))
    except WhnError as err:
        typer.echo(f"{prog}: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
    except CodecKeyError as err:
        typer.echo(f"{prog}: {err}", err=True)
        raise typer.Exit(PayloadKeyError.exit_code) from None


def settings_for(prog: str) -> Settings:
    """The settings (read once per process); a malformed one is a line and exit 1."""
    try:
        return get_settings()
    except SettingsError as err:
        typer.echo(f"{prog}: configuration: {err}", err=True)
        raise typer.Exit(1) from None


def emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        typer.echo(text)


def main_of(app: typer.Typer) -> None:
    """Run a CLI and leave with its exit code without interpreter finalisation.

    The Temporal client's native runtime keeps threads that can crash the interpreter
    while it finalises (SIGABRT in ``PyGILState_Release``), turning a finished command's
    exit 0 into 134. Everything is flushed first; there is nothing else to clean up.
    """
    code: int = 0
    try:
        app()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    shutdown_tracing()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
