"""Synthetic intelligence data: police.uk-shaped crimes around Cambridgeshire, made up.

Not an activity: ``whn-intel generate`` and the benchmark fill ``intel_crimes`` with it
where there is no police.uk download (no internet at run time), loaded as the importer
loads (``whn.police_uk``: synchronous commit, then a vacuum).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

import asyncpg

from whn.police_uk import FLUSHED_COMMIT, vacuum_intel

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
        await conn.execute(FLUSHED_COMMIT)
        # setseed takes [-1, 1]: spread integer seeds over it deterministically.
        await conn.execute("SELECT setseed($1)", (seed * 7_919 % 2_000_001) / 1_000_000 - 1)
        status = await conn.execute(_GENERATE_SQL, *args)
    await vacuum_intel(pool)
    return int(status.split()[-1])
