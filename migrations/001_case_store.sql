-- The case store: a projection of each case workflow plus what must outlive it.

CREATE TABLE cases (
    workflow_id             text PRIMARY KEY,
    receipt_code            text NOT NULL UNIQUE,
    submission_id           text NOT NULL UNIQUE,
    stage                   text NOT NULL,
    priority                text NOT NULL,
    category                text NOT NULL,
    crime_reference         text UNIQUE,
    investigation_reference text UNIQUE,
    team                    text,
    officer                 text,
    outcome                 smallint,
    redirected_to           text,
    overdue                 boolean NOT NULL DEFAULT false,
    enhanced_rights         boolean NOT NULL DEFAULT false,
    flags                   text[] NOT NULL DEFAULT '{}',
    report                  jsonb NOT NULL,
    assessment              jsonb,
    intelligence            jsonb,
    received_at             timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    closed_at               timestamptz
);
CREATE INDEX cases_stage_idx ON cases (stage);
CREATE INDEX cases_received_idx ON cases (received_at DESC);

-- Append-only: who did what to a case, and when. event_key makes a retried write a no-op.
CREATE TABLE case_events (
    id          bigserial PRIMARY KEY,
    workflow_id text NOT NULL REFERENCES cases (workflow_id),
    event_key   text NOT NULL,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    event       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    UNIQUE (workflow_id, event_key)
);

CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_events is append-only';
END $$;
CREATE TRIGGER case_events_no_update BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_events_append_only();

-- Every email: written once per (case, purpose), sent at most once, kept as a record.
CREATE TABLE notifications (
    id          bigserial PRIMARY KEY,
    workflow_id text NOT NULL,
    purpose     text NOT NULL,
    recipient   text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    message_id  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    sent_at     timestamptz,
    UNIQUE (workflow_id, purpose)
);
CREATE INDEX notifications_unsent_idx ON notifications (created_at) WHERE sent_at IS NULL;

-- Reference numbers: a counter row per (kind, year), taken under a row lock in the same
-- transaction as the reference it issues, so a rolled-back attempt leaves no gap and a
-- retried one gets the reference already issued to the case.
CREATE TABLE reference_counters (
    kind  text NOT NULL,
    year  smallint NOT NULL,
    value integer NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, year)
);
CREATE TABLE case_references (
    reference   text PRIMARY KEY,
    workflow_id text NOT NULL REFERENCES cases (workflow_id),
    kind        text NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_id, kind)
);

-- Hand-offs to other bodies (redirected reports, victim support referrals).
CREATE TABLE referrals (
    workflow_id text NOT NULL REFERENCES cases (workflow_id),
    kind        text NOT NULL,
    agency      text NOT NULL,
    due_at      timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, kind)
);

-- Control-room alerts for emergency escalations.
CREATE TABLE control_room_alerts (
    workflow_id text NOT NULL REFERENCES cases (workflow_id),
    attempt     integer NOT NULL,
    raised_at   timestamptz NOT NULL DEFAULT now(),
    indicators  text[] NOT NULL,
    PRIMARY KEY (workflow_id, attempt)
);

-- The staff roster and the audit of every staff action, allowed or refused.
CREATE TABLE staff (
    staff_id   text PRIMARY KEY,
    name       text NOT NULL,
    roles      text[] NOT NULL,
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    workflow_id text,
    allowed     boolean NOT NULL,
    reason      text
);
