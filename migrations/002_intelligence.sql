-- The intelligence database: police.uk street-level crimes, and indexes on the case
-- store's entity fields so a case can be matched against the force's own cases.

-- Rows in the shape of police.uk's street-level CSV (Open Government Licence v3).
-- police.uk leaves Crime ID empty for anti-social behaviour, so the key is a surrogate;
-- a row with a Crime ID is unique by it, a row without one by content_key (a hash of its
-- fields and its ordinal among identical rows of its file), so a re-import adds nothing.
CREATE TABLE intel_crimes (
    id                    bigserial PRIMARY KEY,
    crime_id              text CHECK (crime_id <> ''),
    content_key           text,
    month                 date NOT NULL CHECK (extract(day FROM month) = 1),
    reported_by           text NOT NULL DEFAULT '',
    falls_within          text NOT NULL DEFAULT '',
    longitude             double precision CHECK (longitude BETWEEN -180 AND 180),
    latitude              double precision CHECK (latitude BETWEEN -90 AND 90),
    location              text NOT NULL DEFAULT '',
    lsoa_code             text NOT NULL DEFAULT '',
    lsoa_name             text NOT NULL DEFAULT '',
    crime_type            text NOT NULL,
    last_outcome_category text NOT NULL DEFAULT '',
    context               text NOT NULL DEFAULT '',
    source                text NOT NULL DEFAULT 'police.uk' CHECK (source IN ('police.uk', 'synthetic')),
    imported_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((crime_id IS NULL) <> (content_key IS NULL)),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);
CREATE UNIQUE INDEX intel_crimes_crime_id_key ON intel_crimes (crime_id) WHERE crime_id IS NOT NULL;
CREATE UNIQUE INDEX intel_crimes_content_key ON intel_crimes (content_key) WHERE content_key IS NOT NULL;

-- Radius and time-window search: month first (a window is a handful of months, passed
-- as a list), then a latitude range, with longitude, crime type and id in the index, so a
-- search reads the index alone (an index-only scan) and cuts the circle from the box.
-- Measured at 1,000,000 synthetic Cambridgeshire rows, 200 searches of 1 km and 90 days
-- either side around central Cambridge (the densest place), area query only:
--   this btree                                         p50  4.5 ms, p99   9.0 ms
--   GiST ll_to_earth(lat, lon) + btree (month)         p50 32   ms, p99  68   ms
--   GiST (ll_to_earth(lat, lon), month) (btree_gist)   p50 46   ms, p99 107   ms
-- GiST must visit the table for every candidate; this needs neither cube nor
-- earthdistance. bench/intel.py measures the whole search.
CREATE INDEX intel_crimes_area_idx ON intel_crimes (month, latitude, longitude)
    INCLUDE (crime_type, id) WHERE latitude IS NOT NULL;

-- Great-circle (haversine) distance in metres, on the mean Earth radius; the same as
-- domain.intel.distance_m. (Not STRICT, like the functions below: see there.)
CREATE FUNCTION intel_distance_m(
    lat1 double precision, lon1 double precision, lat2 double precision, lon2 double precision
) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 2 * 6371008.8 * asin(least(1.0, sqrt(
        sin(radians(lat2 - lat1) / 2) ^ 2
        + cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2)));

-- The keys the own-cases match compares, as functions so that the indexes below and the
-- queries in activities/intel.py are sure to use the same expression. None is STRICT:
-- PostgreSQL inlines a SQL function only if that cannot change its result, and a STRICT
-- one around nullif() or least() would run as a function call per row (5x slower here).
CREATE FUNCTION intel_name_key(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN nullif(lower(regexp_replace(btrim($1), '\s+', ' ', 'g')), '');

CREATE FUNCTION intel_email_key(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN nullif(lower(btrim($1)), '');

-- Digits only, and a UK number in international form (+44 / 0044) made national (0...).
CREATE FUNCTION intel_phone_key(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN nullif(regexp_replace(regexp_replace($1, '[^0-9]', '', 'g'), '^(00)?44', '0'), '');

CREATE FUNCTION intel_vrm_key(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN nullif(upper(regexp_replace($1, '\s', '', 'g')), '');

CREATE INDEX cases_intel_email_idx
    ON cases (intel_email_key(report -> 'reporter' ->> 'email'));
CREATE INDEX cases_intel_phone_idx
    ON cases (intel_phone_key(report -> 'reporter' ->> 'phone'));
CREATE INDEX cases_intel_suspect_idx
    ON cases (intel_name_key(report -> 'incident' -> 'suspect' ->> 'name'));
CREATE INDEX cases_intel_vrm_idx
    ON cases (intel_vrm_key(report -> 'incident' -> 'suspect' ->> 'vehicle_registration'));
