"""What the two CLIs share: connecting, running a coroutine, and turning errors into exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from temporalio.client import Client

from starter.errors import PayloadKeyError, UnavailableError, WhnError
from starter.refs import close_lookups
from whn.codec import CodecKeyError
from whn.settings import Settings, SettingsError, get_settings
from whn.telemetry import setup_tracing, shutdown_tracing
from whn.temporal import connect_client

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]
AsOpt = Annotated[
    str | None, typer.Option("--as", help="your staff id (or WHN_STAFF_ID)", show_default=False)
]


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
    settings = settings_for(prog)

    async def closing() -> T:
        try:
            return await program(settings)
        finally:
            await close_lookups()

    try:
        return asyncio.run(closing())
    except WhnError as err:
        typer.echo(f"{prog}: {err}", err=True)
        raise typer.Exit(err.exit_code) from None
    except CodecKeyError as err:
        typer.echo(f"{prog}: {err}", err=True)
        raise typer.Exit(PayloadKeyError.exit_code) from None


def run_with_client(call: Callable[[Client, Settings], Awaitable[T]], *, prog: str) -> T:
    """Run ``call(client, settings)`` on a connected client (``client_for``), as ``run``."""

    async def program(settings: Settings) -> T:
        return await call(await client_for(settings), settings)

    return run(program, prog=prog)


def settings_for(prog: str) -> Settings:
    """The settings (read once per process); a malformed one is a line and exit 1."""
    try:
        return get_settings()
    except SettingsError as err:
        typer.echo(f"{prog}: configuration: {err}", err=True)
        raise typer.Exit(1) from None


def staff_actor(actor: str | None) -> str:
    """Who acts in a ``whn-admin`` command: ``--as``, else ``WHN_STAFF_ID``; exit 2 without."""
    who = actor or settings_for("whn-admin").staff_id
    if not who:
        typer.echo("whn-admin: --as STAFF_ID (or WHN_STAFF_ID) is required", err=True)
        raise typer.Exit(2)
    return who


def run_as(actor: str | None, operation: Callable[..., Awaitable[T]], **options: Any) -> T:
    """Run ``operation(database_url, actor=who, **options)`` for a ``whn-admin`` command
    over the case store: ``who`` from ``--as`` (``staff_actor``), errors as for ``run``."""
    who = staff_actor(actor)

    async def program(settings: Settings) -> T:
        return await operation(settings.database_url, actor=who, **options)

    return run(program, prog="whn-admin")


def emit_rows(
    as_json: bool, key: str, rows: Sequence[M], line: Callable[[M], str], empty: str
) -> None:
    """A list command's answer: ``{key: [...]}`` with ``--json``, else a line a row."""
    emit(
        as_json,
        {key: [r.model_dump(mode="json") for r in rows]},
        "\n".join(line(r) for r in rows) or empty,
    )


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
