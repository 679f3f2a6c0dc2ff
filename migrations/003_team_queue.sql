-- Teams' work queues: a case handed to a team waits here until an officer acknowledges it.
CREATE TABLE team_queue (
    workflow_id             text NOT NULL REFERENCES cases (workflow_id),
    team                    text NOT NULL,
    attempt_key             text NOT NULL,
    investigation_reference text NOT NULL,
    crime_reference         text,
    category                text NOT NULL,
    priority                text NOT NULL,
    queued_at               timestamptz NOT NULL DEFAULT now(),
    delivered_at            timestamptz,
    acknowledged_at         timestamptz,
    acknowledged_by         text,
    PRIMARY KEY (workflow_id, attempt_key)
);
CREATE INDEX team_queue_open_idx ON team_queue (team, queued_at) WHERE acknowledged_at IS NULL;
