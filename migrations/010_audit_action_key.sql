-- A staff action's authorisation row, keyed by the action (its workflow run and update
-- id: patch begin-in-commit, workflows/acting.py): written once however often the local
-- activity that writes it is retried, and a retry follows the answer first written.
-- Rows written before it (and every row not of a case's staff action) have no key.
ALTER TABLE audit_log ADD COLUMN action_key text;
CREATE UNIQUE INDEX audit_log_action_key_idx ON audit_log (workflow_id, action_key)
    WHERE action_key IS NOT NULL;
