-- Keys for intake systems calling the HTTP API (whn-web). Only a SHA-256 of each key is
-- kept (keys are 256-bit random, so a plain hash cannot be searched); `prefix` is its
-- first characters, to tell keys apart in `whn-admin intake-key list`. A key is revoked
-- by setting revoked_at, checked on every request, so revocation takes effect at once.
CREATE TABLE intake_keys (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    revoked_at   timestamptz,
    revoked_by   text,
    last_used_at timestamptz
);
CREATE INDEX intake_keys_name_idx ON intake_keys (name);

-- Which intake system handed us each report (the channel's source), written by the HTTP
-- edge before it starts the case; a resubmission keeps the first.
CREATE TABLE case_sources (
    submission_id text PRIMARY KEY,
    workflow_id   text NOT NULL,
    receipt_code  text NOT NULL,
    channel       text NOT NULL,
    source        text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_sources_workflow_idx ON case_sources (workflow_id);
