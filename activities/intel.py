"""The intelligence database: search it for a case, fill it from police.uk or synthetically.

``IntelligenceSearch.search_intelligence`` is the activity a case runs; ``search``,
``import_police_uk`` and ``generate_synthetic`` are the same operations for
``whn-intel`` and the benchmark. The table and its indexes are in
``migrations/002_intelligence.sql``.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio import activity

from domain.intel import (
    POLICE_UK_HEADER,
    ImportResult,
    IntelMatch,
    IntelQuery,
    IntelSummary,
    bounding_box,
    categories_related,
    distance_m,
    rank_matches,
    related_crime_types,
    summarise,
    window_months,
)

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


class IntelligenceSearch:
    """The search activity; one instance per worker, sharing the worker's pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def search_intelligence(self, query: IntelQuery) -> IntelSummary:
        """Crimes around the incident and our own cases sharing its details; read-only."""
        return await search(self._pool, query)


# --- search -------------------------------------------------------------------------

# The index intel_crimes_area_idx holds every column this reads but the last join, so
# the box is an index-only scan per month; the circle is cut from the box here.
_AREA_SQL = """
WITH inside AS MATERIALIZED (
    SELECT id, crime_type, crime_type = ANY($7::text[]) AS related, distance_m
    FROM (
        SELECT id, crime_type, intel_distance_m($1, $2, latitude, longitude) AS distance_m
        FROM intel_crimes
        WHERE latitude IS NOT NULL
          AND month = ANY($3::date[])
          AND latitude BETWEEN $1 - $4 AND $1 + $4
          AND longitude BETWEEN $2 - $5 AND $2 + $5
    ) box
    WHERE distance_m <= $6
)
SELECT
    (SELECT coalesce(jsonb_object_agg(crime_type, n), '{}'::jsonb)
       FROM (SELECT crime_type, count(*) AS n FROM inside GROUP BY crime_type) t) AS by_type,
    (SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]'::jsonb)
       FROM (SELECT c.crime_id, c.month, c.crime_type, c.location, c.last_outcome_category,
                    i.distance_m, i.related
               FROM (SELECT * FROM inside ORDER BY related DESC, distance_m, id LIMIT $8) i
               JOIN intel_crimes c ON c.id = i.id) t) AS top
"""

# intel_*_key() are the expressions of the cases_intel_* indexes; a key that is NULL
# (no value given) matches nothing.
_OWN_CASES_SQL = """
WITH keys AS (
    SELECT intel_name_key($2) AS name, intel_vrm_key($3) AS vrm,
           intel_phone_key($4) AS phone, intel_email_key($5) AS email
), matched AS (
    SELECT c.*, array_remove(ARRAY[
        CASE WHEN intel_name_key(c.report -> 'incident' -> 'suspect' ->> 'name') = k.name
             THEN 'suspect_name' END,
        CASE WHEN intel_vrm_key(c.report -> 'incident' -> 'suspect' ->> 'vehicle_registration')
                  = k.vrm THEN 'vehicle_registration' END,
        CASE WHEN intel_phone_key(c.report -> 'reporter' ->> 'phone') = k.phone
             THEN 'phone' END,
        CASE WHEN intel_email_key(c.report -> 'reporter' ->> 'email') = k.email
             THEN 'email' END], NULL) AS matched_on
    FROM cases c, keys k
    WHERE c.workflow_id <> $1
      AND (intel_name_key(c.report -> 'incident' -> 'suspect' ->> 'name') = k.name
        OR intel_vrm_key(c.report -> 'incident' -> 'suspect' ->> 'vehicle_registration') = k.vrm
        OR intel_phone_key(c.report -> 'reporter' ->> 'phone') = k.phone
        OR intel_email_key(c.report -> 'reporter' ->> 'email') = k.email)
)
SELECT coalesce(crime_reference, receipt_code) AS reference, category, matched_on,
       coalesce((report -> 'incident' ->> 'occurred_from')::timestamptz, received_at)
           AS occurred_from,
       (report -> 'incident' -> 'location' ->> 'latitude')::float8 AS latitude,
       (report -> 'incident' -> 'location' ->> 'longitude')::float8 AS longitude,
       count(*) OVER () AS total
FROM matched
ORDER BY cardinality(matched_on) DESC, received_at DESC
LIMIT $6
"""


async def search(pool: asyncpg.Pool, query: IntelQuery) -> IntelSummary:
    """Crimes within ``radius_m`` and the time window of the incident, and our own cases
    (other than this one) that share a suspect name, vehicle registration, phone or email.
    """
    related = related_crime_types(query.category)
    months = window_months(query.occurred_at, query.window_days)
    by_type: dict[str, int] = {}
    area: list[IntelMatch] = []
    async with pool.acquire() as conn:
        if query.latitude is not None and query.longitude is not None:
            dlat, dlon = bounding_box(query.latitude, query.longitude, query.radius_m)
            row = await conn.fetchrow(
                _AREA_SQL,
                query.latitude,
                query.longitude,
                months,
                dlat,
                dlon,
                float(query.radius_m),
                sorted(related),
                query.limit,
            )
            assert row is not None
            by_type = dict(row["by_type"])
            area = [_area_match(item) for item in row["top"]]
        own_rows = await conn.fetch(
            _OWN_CASES_SQL,
            query.workflow_id,
            query.suspect_name,
            query.vehicle_registration,
            query.phone,
            query.email,
            query.limit,
        )
    own = [_own_match(query, r) for r in own_rows]
    own_total = own_rows[0]["total"] if own_rows else 0
    related_count = sum(n for t, n in by_type.items() if t in related)
    top = rank_matches(area, own, query.limit)
    return IntelSummary(
        area_count=sum(by_type.values()),
        related_count=related_count,
        own_case_matches=own_total,
        top_matches=top,
        summary=summarise(query, by_type, related_count, own_total, top),
        radius_m=query.radius_m,
        window_days=query.window_days,
        by_type=by_type,
        months=months if query.has_location else [],
    )


def _area_match(item: dict[str, Any]) -> IntelMatch:
    return IntelMatch(
        kind="area",
        reference=item["crime_id"] or "",
        crime_type=item["crime_type"],
        occurred=date.fromisoformat(item["month"]),
        distance_m=round(item["distance_m"], 1),
        related=item["related"],
        location=item["location"] or None,
        outcome=item["last_outcome_category"] or None,
    )


def _own_match(query: IntelQuery, row: asyncpg.Record) -> IntelMatch:
    far: float | None = None
    if query.has_location and row["latitude"] is not None and row["longitude"] is not None:
        assert query.latitude is not None and query.longitude is not None
        far = round(
            distance_m(query.latitude, query.longitude, row["latitude"], row["longitude"]), 1
        )
    return IntelMatch(
        kind="own_case",
        reference=row["reference"],
        crime_type=row["category"],
        occurred=row["occurred_from"].astimezone(UTC).date(),
        distance_m=far,
        matched_on=row["matched_on"],
        related=categories_related(query.category, row["category"]),
    )


# --- import -------------------------------------------------------------------------


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
    await _vacuum(pool)
    return result


async def _insert_batch(
    conn: asyncpg.pool.PoolConnectionProxy, batch: list[tuple[Any, ...]]
) -> int:
    async with conn.transaction():
        await conn.execute(_FLUSHED_COMMIT)
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
_FLUSHED_COMMIT = "SET LOCAL synchronous_commit = on"


async def _vacuum(pool: asyncpg.Pool) -> None:
    # Marks the new pages all-visible, so searches stay index-only scans, and refreshes
    # the planner's statistics. Only pages changed since the last vacuum are read.
    async with pool.acquire() as conn:
        await conn.execute("VACUUM (ANALYZE) intel_crimes")


# --- synthetic data -----------------------------------------------------------------

# (town, district, latitude, longitude, spread in km, share of crime): the county's towns
# roughly by their share of its recorded crime; "rural" scatters the rest across it.
SYNTHETIC_TOWNS: tuple[tuple[str, str, float, float, float, int], ...] = (
    ("Cambridge", "Cambridge", 52.2053, 0.1218, 2.2, 30),
    ("Peterborough", "Peterborough", 52.5695, -0.2405, 2.6, 31),
    ("Huntingdon", "Huntingdonshire", 52.3312, -0.1826, 1.2, 7),
    ("Ely", "East Cambridgeshire", 52.3995, 0.2624, 1.0, 5),
    ("Wisbech", "Fenland", 52.6661, 0.1594, 1.1, 7),
    ("March", "Fenland", 52.5510, 0.0880, 1.0, 4),
    ("St Neots", "Huntingdonshire", 52.2280, -0.2700, 1.2, 6),
    ("St Ives", "Huntingdonshire", 52.3229, -0.0731, 1.0, 4),
    ("rural", "South Cambridgeshire", 52.3000, 0.0500, 14.0, 6),
)
# Roughly the national police.uk mix, per thousand.
_TYPE_MIX: tuple[tuple[str, int], ...] = (
    ("Violence and sexual offences", 320),
    ("Anti-social behaviour", 165),
    ("Other theft", 80),
    ("Shoplifting", 80),
    ("Criminal damage and arson", 80),
    ("Public order", 80),
    ("Vehicle crime", 60),
    ("Burglary", 45),
    ("Drugs", 25),
    ("Other crime", 20),
    ("Bicycle theft", 15),
    ("Theft from the person", 12),
    ("Robbery", 10),
    ("Possession of weapons", 8),
)
_OUTCOMES: tuple[tuple[str, int], ...] = (
    ("Investigation complete; no suspect identified", 9),
    ("Unable to prosecute suspect", 6),
    ("Under investigation", 2),
    ("Awaiting court outcome", 1),
    ("Local resolution", 1),
    ("Offender given a caution", 1),
    ("Court result unavailable", 1),
    ("Further investigation is not in the public interest", 1),
    ("Action to be taken by another organisation", 1),
    ("Status update unavailable", 1),
)
_PLACES: tuple[str, ...] = (
    "High Street",
    "Station Road",
    "Church Street",
    "Mill Road",
    "London Road",
    "Park Lane",
    "Victoria Road",
    "Queen Street",
    "Bridge Street",
    "Market Street",
    "New Road",
    "The Green",
    "Church Lane",
    "School Lane",
    "Newmarket Road",
    "Hills Road",
    "Broadway",
    "Lincoln Road",
    "Cromwell Road",
    "St John's Road",
    "Manor Road",
    "Green Lane",
    "Parking Area",
    "Supermarket",
    "Petrol Station",
    "Shopping Area",
    "Nightclub",
    "Sports/Recreation Area",
    "Further/Higher Educational Building",
    "Hospital",
    "Police Station",
    "Pedestrian Subway",
    "Conference/Exhibition Centre",
    "Theatre/Concert Hall",
)
_KM_PER_DEGREE = 111.2

# Every value is drawn by PostgreSQL per row of generate_series; width_bucket picks a town,
# a crime type and an outcome by weight. OFFSET 0 keeps each subquery a subquery, so each
# random() is drawn once per row however often its column is used. Crime IDs look like
# police.uk's (64 hex digits) and, made from the row's id, never collide.
_GENERATE_SQL = """
INSERT INTO intel_crimes (id, crime_id, content_key, month, reported_by, falls_within,
    longitude, latitude, location, lsoa_code, lsoa_name, crime_type, last_outcome_category,
    context, source)
SELECT
    id,
    CASE WHEN crime_type <> 'Anti-social behaviour'
         THEN encode(sha256(convert_to('synthetic:' || id, 'UTF8')), 'hex') END,
    CASE WHEN crime_type = 'Anti-social behaviour' THEN 'synthetic:' || id END,
    month, $3, $3, lon, lat,
    'On or near ' || ($4::text[])[1 + floor(u_place * cardinality($4::text[]))::int],
    'E01' || lpad((abs(cy * 7919 + cx * 104729) % 1000000)::text, 6, '0'),
    district || ' ' || lpad((1 + abs(cy * 31 + cx) % 90)::text, 3, '0')
             || chr(65 + abs(cy + cx * 3) % 5),
    crime_type,
    CASE WHEN crime_type = 'Anti-social behaviour' THEN ''
         ELSE ($14::text[])[width_bucket(u_outcome, $13::float8[])] END,
    '', 'synthetic'
FROM (
    SELECT nextval('intel_crimes_id_seq') AS id, placed.*,
           floor(lat * 90)::int AS cy, floor(lon * 90)::int AS cx
    FROM (
        SELECT ($2::date - make_interval(months => floor(u_month * 36)::int))::date AS month,
               ($10::text[])[town] AS district, ($12::text[])[kind] AS crime_type,
               round((($6::float8[])[town] + n_lat * ($8::float8[])[town]) * 1e6) / 1e6 AS lat,
               round((($7::float8[])[town] + n_lon * ($9::float8[])[town]) * 1e6) / 1e6 AS lon,
               u_place, u_outcome
        FROM (
            SELECT width_bucket(random(), $5::float8[]) AS town,
                   width_bucket(random(), $11::float8[]) AS kind,
                   random_normal() AS n_lat, random_normal() AS n_lon,
                   random() AS u_month, random() AS u_place, random() AS u_outcome
            FROM generate_series(1, $1::bigint)
            OFFSET 0
        ) draw
    ) placed
    OFFSET 0
) crime
"""


def _lower_bounds(weights: Sequence[int]) -> list[float]:
    """Lower bounds in [0, 1) of buckets as wide as ``weights``, for ``width_bucket``."""
    total, bounds, acc = sum(weights), [], 0
    for weight in weights:
        bounds.append(acc / total)
        acc += weight
    return bounds


async def generate_synthetic(
    pool: asyncpg.Pool,
    n: int,
    seed: int = 0,
    *,
    last_month: date | None = None,
    force: str = "Cambridgeshire Constabulary",
) -> int:
    """Add ``n`` synthetic police.uk-shaped crimes around Cambridgeshire; the number added.

    Towns weighted by their share of the county's crime with their spread around the
    centre, the police.uk crime type mix, months over the three years to ``last_month``
    (by default last month), all drawn by PostgreSQL itself (a million rows take seconds).
    ``seed`` fixes the draws; every call adds new rows (source ``synthetic``).
    """
    if n <= 0:
        return 0
    if last_month is None:
        last_month = (date.today().replace(day=1) - timedelta(days=1)).replace(day=1)
    args = (
        n,
        last_month.replace(day=1),
        force,
        list(_PLACES),
        _lower_bounds([t[5] for t in SYNTHETIC_TOWNS]),
        [t[2] for t in SYNTHETIC_TOWNS],
        [t[3] for t in SYNTHETIC_TOWNS],
        [t[4] / _KM_PER_DEGREE for t in SYNTHETIC_TOWNS],
        [t[4] / (_KM_PER_DEGREE * math.cos(math.radians(t[2]))) for t in SYNTHETIC_TOWNS],
        [t[1] for t in SYNTHETIC_TOWNS],
        _lower_bounds([w for _, w in _TYPE_MIX]),
        [t for t, _ in _TYPE_MIX],
        _lower_bounds([w for _, w in _OUTCOMES]),
        [o for o, _ in _OUTCOMES],
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_FLUSHED_COMMIT)
        # setseed takes [-1, 1]: spread integer seeds over it deterministically.
        await conn.execute("SELECT setseed($1)", (seed * 7_919 % 2_000_001) / 1_000_000 - 1)
        status = await conn.execute(_GENERATE_SQL, *args)
    await _vacuum(pool)
    return int(status.split()[-1])
