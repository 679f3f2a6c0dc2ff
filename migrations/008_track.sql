-- The reporter's page (/track, web/track.py).

-- Failed sign-ins, per receipt code and per client, each under a keyed digest
-- (whn.tracklink.TrackSigner.blind) so the table holds neither codes nor addresses.
-- Counted within a window; past the limit the key is locked until locked_until.
CREATE TABLE track_attempts (
    key          text PRIMARY KEY,
    failures     integer NOT NULL DEFAULT 0,
    first_at     timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz
);

-- What a reporter adds on the page (more information, a request to look at a closed case
-- again) is a note of the case like a details reply: sealed, read by show --report.
ALTER TABLE case_notes DROP CONSTRAINT case_notes_kind_check;
ALTER TABLE case_notes ADD CONSTRAINT case_notes_kind_check CHECK (kind IN
    ('details_question', 'details_reply', 'step_note', 'closing_note',
     'reporter_information'));
