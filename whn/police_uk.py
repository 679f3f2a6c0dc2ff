"""The police.uk importer: street-level crime CSVs into the intelligence database.

Not an activity: ``whn-intel import`` and the benchmark fill ``intel_crimes`` with it
(``activities.intel`` searches it; ``whn.synthetic_intel`` fills it with made-up rows
of the same shape). Also the two rules every bulk load of that table follows:
``FLUSHED_COMMIT`` and ``vacuum_intel``.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from domain.intel import POLICE_UK_HEADER, ImportResult

Progress = Callable[[int, int], None]
"""Told ``(bytes_done, bytes_total)`` over all files as an import goes."""

_BATCH = 20_000
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_MAX_BAD_EXAMPLES = 10
_COLUMNS = (
    "crime_id",
    "content_key",
    "month",
    "reported_by",
    "falls_within",
    "longitude",
    "latitude",
    "location",
    "lsoa_code",
    "lsoa_name",
    "crime_type",
    "last_outcome_category",
    "context",
)


class PoliceUkFormatError(ValueError):
    """A file that is not a police.uk street-level crime CSV (its header is not theirs)."""

    def __init__(self, path: Path, found: list[str]) -> None:
        super().__init__(
            f"{path}: not a police.uk street-level CSV (header {','.join(found)[:120]!r},"
            f" expected {','.join(POLICE_UK_HEADER)!r})"
        )
        self.path = path


_IMPORT_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS intel_import (
    crime_id text, content_key text, month date, reported_by text, falls_within text,
    longitude float8, latitude float8, location text, lsoa_code text, lsoa_name text,
    crime_type text, last_outcome_category text, context text
)
"""


def check_police_uk_file(path: Path) -> None:
    """Raise ``OSError`` if ``path`` cannot be read, ``PoliceUkFormatError`` if not police.uk's."""
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        header = next(csv.reader(fh), [])
    if [h.strip() for h in header] != list(POLICE_UK_HEADER):
        raise PoliceUkFormatError(path, header)


async def import_police_uk(
    pool: asyncpg.Pool, paths: Sequence[Path | str], progress: Progress | None = None
) -> ImportResult:
    """Import police.uk street-level CSV files; a re-import of the same rows adds nothing.

    Rows are parsed and checked here, copied in batches into a temporary table and
    inserted from there, skipping rows already held. A bad row (a month not ``YYYY-MM``,
    a latitude or longitude that is not a number in range, a wrong number of columns, no
    crime type) is counted and described, and the import goes on.

    Raises:
        OSError: a file is missing or unreadable (checked before anything is imported).
        PoliceUkFormatError: a file's header is not police.uk's (likewise).
    """
    files = [Path(p) for p in paths]
    for path in files:
        check_police_uk_file(path)
    total = sum(p.stat().st_size for p in files)
    result = ImportResult()
    done = 0
    async with pool.acquire() as conn:
        await conn.execute(_IMPORT_TABLE)
        try:
            for path in files:
                read = [0]
                rows = _parse_file(path, read, result)
                while batch := await asyncio.to_thread(_take, rows, _BATCH):
                    result.imported += await _insert_batch(conn, batch)
                    if progress is not None:
                        progress(done + read[0], total)
                done += path.stat().st_size
        finally:
            await conn.execute("DROP TABLE IF EXISTS intel_import")
    result.skipped_duplicates = result.rows - result.bad_rows - result.imported
    if progress is not None:
        progress(total, total)
    await vacuum_intel(pool)
    return result


async def _insert_batch(
    conn: asyncpg.pool.PoolConnectionProxy, batch: list[tuple[Any, ...]]
) -> int:
    async with conn.transaction():
        await conn.execute(FLUSHED_COMMIT)
        await conn.execute("TRUNCATE intel_import")
        await conn.copy_records_to_table("intel_import", records=batch, columns=_COLUMNS)
        status = await conn.execute(
            f"INSERT INTO intel_crimes ({', '.join(_COLUMNS)}, source)"
            f" SELECT {', '.join(_COLUMNS)}, 'police.uk' FROM intel_import"
            " ON CONFLICT DO NOTHING"
        )
    return int(status.split()[-1])


def _take(rows: Iterator[tuple[Any, ...]], n: int) -> list[tuple[Any, ...]]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == n:
            break
    return batch


def _parse_file(path: Path, read: list[int], result: ImportResult) -> Iterator[tuple[Any, ...]]:
    """Good rows of ``path`` as records; bad ones counted in ``result``; bytes read in ``read``."""
    seen: Counter[str] = Counter()
    with path.open("rb") as fh:
        reader = csv.reader(_decoded_lines(fh, read))
        next(reader)  # the header, checked already
        for fields in reader:
            if not fields:
                continue  # a blank line, as at the end of some files
            result.rows += 1
            parsed = _parse_row(fields)
            if isinstance(parsed, str):
                result.bad_rows += 1
                if len(result.bad_examples) < _MAX_BAD_EXAMPLES:
                    result.bad_examples.append(f"{path.name}:{reader.line_num}: {parsed}")
                continue
            crime_id, *rest = parsed
            content_key = None
            if crime_id is None:
                # No Crime ID (anti-social behaviour): identical rows are distinct incidents,
                # so the key is the content plus which of the identical rows this is.
                digest = hashlib.sha256("\x1f".join(f.strip() for f in fields).encode()).hexdigest()
                seen[digest] += 1
                content_key = f"{digest}:{seen[digest]}"
            yield (crime_id, content_key, *rest)


def _decoded_lines(fh: Any, read: list[int]) -> Iterator[str]:
    first = True
    for raw in fh:
        read[0] += len(raw)
        line = raw.decode("utf-8", errors="replace")
        if first:
            line, first = line.removeprefix("\ufeff"), False
        yield line


def _parse_row(fields: list[str]) -> tuple[Any, ...] | str:
    """The row's values in ``_COLUMNS`` order without content_key, or why it is bad."""
    if len(fields) != len(POLICE_UK_HEADER):
        return f"wrong column count ({len(fields)}, expected {len(POLICE_UK_HEADER)})"
    (
        crime_id,
        month_text,
        reported_by,
        falls_within,
        lon_text,
        lat_text,
        location,
        lsoa_code,
        lsoa_name,
        crime_type,
        outcome,
        context,
    ) = (f.strip() for f in fields)
    month = _month(month_text)
    if month is None:
        return f"bad month {month_text[:20]!r} (expected YYYY-MM)"
    if not crime_type:
        return "no crime type"
    if lat_text == "" and lon_text == "":
        lat = lon = None  # police.uk publishes some crimes with no location
    else:
        lat, lon = _number(lat_text, 90), _number(lon_text, 180)
        if lat is None:
            return f"bad latitude {lat_text[:20]!r}"
        if lon is None:
            return f"bad longitude {lon_text[:20]!r}"
    return (
        crime_id or None,
        month,
        reported_by,
        falls_within,
        lon,
        lat,
        location,
        lsoa_code,
        lsoa_name,
        crime_type,
        outcome,
        context,
    )


def _month(text: str) -> date | None:
    found = _MONTH.fullmatch(text)
    if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1900:
        return None
    return date(int(found[1]), int(found[2]), 1)


def _number(text: str, limit: float) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and -limit <= value <= limit else None


# VACUUM cannot mark a page all-visible while the commit that filled it is not yet on
# disk, which with synchronous_commit off (the test and dev servers) is a while after it
# returns; so the loads commit synchronously, and the VACUUM after them takes effect.
FLUSHED_COMMIT = "SET LOCAL synchronous_commit = on"


async def vacuum_intel(pool: asyncpg.Pool) -> None:
    """After a bulk load: marks the new pages all-visible, so searches stay index-only
    scans, and refreshes the planner's statistics (only pages changed since the last
    vacuum are read)."""
    async with pool.acquire() as conn:
        await conn.execute("VACUUM (ANALYZE) intel_crimes")
