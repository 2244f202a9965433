-- The intake outbox. Every accepted expiry (a start) and every stop that a renewal,
-- unfreeze or release asks for is committed here together with the answer to the sender,
-- and delivered to Temporal later by the relay: in order of arrival, strictly so per
-- subject, with the same workflow ID and policies as a direct start.
-- kind is start or stop. state is pending, done or cancelled. available_at is when the
-- intent may next be claimed (a relay's lease, or a backoff after a failed delivery).
CREATE TABLE intake_intents (
    id           {{ID}},
    kind         TEXT NOT NULL,
    source       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    workflow_id  TEXT NOT NULL DEFAULT '',
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL,
    outcome      TEXT NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    available_at TEXT NOT NULL,
    lease_owner  TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX intake_intents_start ON intake_intents (workflow_id) WHERE kind = 'start';
CREATE INDEX intake_intents_state ON intake_intents (state, id);
CREATE INDEX intake_intents_subject ON intake_intents (subject, state, id);
