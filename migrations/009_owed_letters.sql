-- Letters owed to a reporter who has no email (a phone or in-person report): kept here
-- for a person to post, read out or hand over, until `whn-admin letter-sent` records how
-- the letter reached them (workflows/owed.py). The queue lists the undelivered ones.
-- The rendered letter is personal data: sealed with AES-256-GCM under the payload keys
-- (whn/sealed.py), bound to its case and purpose; its outbox row keeps no plaintext body.
CREATE TABLE owed_letters (
    workflow_id   text NOT NULL REFERENCES cases (workflow_id),
    purpose       text NOT NULL,
    letter        text NOT NULL,
    meets         text,            -- the deadline the letter meets when it is delivered
    due_at        timestamptz,     -- that deadline's due time, as it was when owed
    ways          text[] NOT NULL, -- what the report gives: post (an address), phone
    owed_at       timestamptz NOT NULL,
    key_id        text NOT NULL,
    sealed        bytea NOT NULL,  -- subject and body, sealed
    delivered_at  timestamptz,
    delivered_how text CHECK (delivered_how IN ('post', 'phone', 'in-person')),
    delivered_by  text,
    PRIMARY KEY (workflow_id, purpose)
);
-- The queue's letters: the undelivered ones, what falls due first.
CREATE INDEX owed_letters_open_idx ON owed_letters (due_at, owed_at) WHERE delivered_at IS NULL;
