"""``whn-intel``: fill the intelligence database and search it.

Exit codes as the other CLIs: ``0`` done (an import with bad rows included: they are
reported); ``2`` rejected (a missing or unreadable file, a file that is not a police.uk
CSV, an invalid option); ``1`` PostgreSQL could not be reached, or its intelligence
tables are missing (the migrations not applied: ``whn-dev`` and the worker apply them).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar, get_args
from urllib.parse import urlsplit

import asyncpg
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from activities.intel import search
from domain.intel import ImportResult, IntelQuery, IntelSummary
from domain.report import Category
from starter.cli import emit, run
from starter.errors import RejectedError, UnavailableError
from whn import db
from whn.police_uk import PoliceUkFormatError, check_police_uk_file, import_police_uk
from whn.settings import Settings
from whn.synthetic_intel import generate_synthetic

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]
PROG = "whn-intel"
CATEGORIES: tuple[str, ...] = get_args(Category)
T = TypeVar("T")


def _where(dsn: str) -> str:
    """Host, port and database of a DSN, without its password."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


@contextlib.asynccontextmanager
async def _pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the case store; its failures become one-line errors with exit code 1."""
    where = _where(settings.database_url)
    try:
        pool = await db.create_pool(settings.database_url, max_size=2)
    except (OSError, TimeoutError, asyncpg.PostgresError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UnavailableError(f"PostgreSQL could not be reached at {where}: {reason}") from None
    try:
        yield pool
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError):
        raise UnavailableError(
            f"the intelligence tables are missing in {where}: apply the migrations"
            " (whn-dev and whn-worker apply them when they start)"
        ) from None
    except (ConnectionError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as err:
        raise UnavailableError(f"PostgreSQL at {where} went away: {err}") from None
    finally:
        await pool.close()


def _run_with_pool(program: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def main(settings: Settings) -> T:
        async with _pool(settings) as pool:
            return await program(pool)

    return run(main, prog=PROG)


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="police.uk street-level CSV files")],
    as_json: JsonOpt = False,
) -> None:
    """Import police.uk street-level crime CSVs; rows already held are skipped."""
    for path in files:
        try:
            check_police_uk_file(path)
        except PoliceUkFormatError as err:
            _reject(str(err))
        except OSError as err:
            _reject(f"cannot read {path}: {err.strerror or err}")

    console = Console(stderr=True)
    with Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result: ImportResult = _run_with_pool(lambda pool: import_police_uk(pool, files, progress))

    lines = [
        f"rows {result.rows:,}, imported {result.imported:,},"
        f" duplicates {result.skipped_duplicates:,}, bad {result.bad_rows:,}"
    ]
    if result.bad_examples:
        lines.append(f"bad rows (first {len(result.bad_examples)}):")
        lines += [f"  {example}" for example in result.bad_examples]
    emit(as_json, result.model_dump(), "\n".join(lines))


@app.command()
def generate(
    n: Annotated[int, typer.Argument(min=1, max=50_000_000, help="how many crimes to add")],
    seed: Annotated[int, typer.Option("--seed", help="fixes the random draws")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Add N synthetic police.uk-shaped crimes around Cambridgeshire (source 'synthetic')."""
    started = time.perf_counter()
    added = _run_with_pool(lambda pool: generate_synthetic(pool, n, seed=seed))
    seconds = round(time.perf_counter() - started, 2)
    emit(
        as_json,
        {"generated": added, "seed": seed, "seconds": seconds},
        f"generated {added:,} synthetic crimes in {seconds} s",
    )


@app.command("search")
def search_(
    date: Annotated[str, typer.Option("--date", help="when it happened: ISO date or date-time")],
    category: Annotated[str, typer.Option("--category", help="report category, e.g. burglary")],
    lat: Annotated[float | None, typer.Option("--lat", help="latitude of the incident")] = None,
    lon: Annotated[float | None, typer.Option("--lon", help="longitude of the incident")] = None,
    radius_m: Annotated[int, typer.Option("--radius-m", help="search radius, metres")] = 1000,
    window_days: Annotated[
        int, typer.Option("--window-days", help="days either side of the date")
    ] = 90,
    suspect_name: Annotated[str | None, typer.Option("--suspect-name")] = None,
    vehicle_registration: Annotated[str | None, typer.Option("--vehicle-registration")] = None,
    phone: Annotated[str | None, typer.Option("--phone")] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
    exclude_case: Annotated[
        str, typer.Option("--exclude-case", help="workflow id of a case not to match")
    ] = "",
    limit: Annotated[int, typer.Option("--limit", help="how many matches to list")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Crimes around a place and time, and our own cases sharing a suspect, vehicle, phone or email."""
    if (lat is None) != (lon is None):
        _reject("--lat and --lon go together")
    if category not in CATEGORIES:
        _reject(f"--category: unknown category {category!r} (one of {', '.join(CATEGORIES)})")
    try:
        query = IntelQuery(
            workflow_id=exclude_case,
            latitude=lat,
            longitude=lon,
            occurred_at=_parse_when(date),
            category=category,
            radius_m=radius_m,
            window_days=window_days,
            suspect_name=suspect_name,
            vehicle_registration=vehicle_registration,
            phone=phone,
            email=email,
            limit=limit,
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).replace("_", "-")
        where = {"latitude": "lat", "longitude": "lon"}.get(where, where)
        _reject(f"--{where}: {first['msg']}")
    summary = _run_with_pool(lambda pool: search(pool, query))
    emit(as_json, summary.model_dump(mode="json"), _search_text(summary))


def _parse_when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        _reject(f"--date: {text!r} is not an ISO date (YYYY-MM-DD) or date-time")
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _search_text(summary: IntelSummary) -> str:
    lines = [summary.summary]
    if summary.top_matches:
        lines += ["", f"{'kind':8} {'when':10} {'distance':>9}  {'type':28} {'why':22} reference"]
    for m in summary.top_matches:
        far = f"{m.distance_m:,.0f} m" if m.distance_m is not None else "-"
        when = f"{m.occurred:%Y-%m}" if m.kind == "area" else f"{m.occurred:%Y-%m-%d}"
        why = ", ".join(m.matched_on) or ("related type" if m.related else "")
        lines.append(
            f"{m.kind:8} {when:10} {far:>9}  {m.crime_type[:28]:28} {why:22} {m.reference or '-'}"
        )
    return "\n".join(lines)


def _reject(message: str) -> NoReturn:
    """One line on stderr naming what is wrong, and exit code 2."""
    typer.echo(f"{PROG}: {message}", err=True)
    raise typer.Exit(RejectedError.exit_code)


def main() -> None:
    """Entry point of the ``whn-intel`` console script."""
    app()


if __name__ == "__main__":
    main()
