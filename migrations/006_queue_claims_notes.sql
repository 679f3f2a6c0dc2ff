-- Staff work from a queue: what falls due, who holds a case, and what people wrote.

-- The projection the queue reads, kept by record_change like every other column:
--   due_at            the earliest open deadline staff owe the case (NULL: none)
--   claimed_by/until  who holds the case and until when (the claim lapses then)
--   touched_at        the last action a member of staff took on it
ALTER TABLE cases
    ADD COLUMN due_at        timestamptz,
    ADD COLUMN claimed_by    text,
    ADD COLUMN claimed_until timestamptz,
    ADD COLUMN touched_at    timestamptz;

-- A role's queue: per stage in the queue's order, so the first 50 are read, not sorted
-- (starter/casework.py). Only open cases are indexed;
-- bench/queue.py measures it at 50,000 open cases (README, Benchmarks).
CREATE INDEX cases_queue_idx ON cases (stage, priority, due_at, received_at, receipt_code)
    WHERE closed_at IS NULL;
CREATE INDEX cases_queue_team_idx ON cases (team, stage, priority, due_at, received_at, receipt_code)
    WHERE closed_at IS NULL AND team IS NOT NULL;
CREATE INDEX cases_claimed_idx ON cases (claimed_by) WHERE claimed_by IS NOT NULL;
-- The supervisor's view: open cases nobody has touched since a point in time.
CREATE INDEX cases_untouched_idx ON cases ((coalesce(touched_at, received_at)))
    WHERE closed_at IS NULL;

-- What people wrote on a case (details questions and replies, investigation notes,
-- closing notes), kept for the case's whole life and read by `whn-admin show --report`.
-- Personal data: each text is sealed with AES-256-GCM under the payload keys (whn/sealed.py),
-- bound to its case and event key, so a dump of this table holds no plaintext.
CREATE TABLE case_notes (
    workflow_id text NOT NULL REFERENCES cases (workflow_id),
    event_key   text NOT NULL,
    at          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN
                    ('details_question', 'details_reply', 'step_note', 'closing_note')),
    request     integer,          -- the details request a question or reply belongs to
    step        text,             -- the investigation step a note records
    actor       text NOT NULL,    -- who wrote it: a staff id, or 'reporter'
    key_id      text NOT NULL,
    sealed      bytea NOT NULL,
    PRIMARY KEY (workflow_id, event_key, kind)
);
