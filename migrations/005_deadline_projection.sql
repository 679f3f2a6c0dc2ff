-- The compliance projection: one row per case per deadline, kept by the activity that
-- records case changes (activities/projection.py), for the promises report and metrics.

-- The case's deadlines as the workflow last recorded them: what the projection is
-- rebuilt from if it is lost (rebuild_deadlines).
ALTER TABLE cases ADD COLUMN deadlines jsonb;
-- The number of the case event that carried them: a change recorded out of order (two
-- local activities of one workflow task) never puts older deadlines over newer ones.
ALTER TABLE cases ADD COLUMN deadlines_event integer;

CREATE TABLE case_deadlines (
    workflow_id     text NOT NULL REFERENCES cases (workflow_id),
    -- Position in the case's list of deadlines: a name can recur (a team's
    -- acknowledgement after a reallocation, a second details request).
    seq             integer NOT NULL,
    name            text NOT NULL,
    -- The promise the deadline belongs to: its name without a trailing request number
    -- (details_reply_2 -> details_reply), so the report counts like with like.
    promise         text NOT NULL,
    opened_at       timestamptz,
    due_at          timestamptz NOT NULL,
    met_at          timestamptz,
    missed          boolean NOT NULL,
    -- As of the last change recorded: met_on_time, met_late, missed or open. The report
    -- decides open against missed at its own time (a closed case records nothing more).
    state           text NOT NULL,
    received_at     timestamptz NOT NULL,
    team            text,
    category        text NOT NULL,
    enhanced_rights boolean NOT NULL,
    PRIMARY KEY (workflow_id, seq)
);
CREATE INDEX case_deadlines_received_idx ON case_deadlines (received_at, promise);
CREATE INDEX case_deadlines_open_idx ON case_deadlines (due_at) WHERE met_at IS NULL;
