-- (No semicolons in comments: the migration runner splits statements on them.)
-- Admission control (issue #26): the relay hands Temporal at most a set number of
-- expiries at once, so it must count those Temporal is working on. An expiry in state
-- freezing or notifying is counted by its state. One the relay started whose workflow has
-- not written its first state yet is still accepted: started_at, stamped by the relay
-- when the start is done, tells it from one still waiting in the queue.
ALTER TABLE expirations ADD COLUMN started_at TEXT NOT NULL DEFAULT '';
-- Expiries accepted before this release whose start was delivered.
UPDATE expirations SET started_at = updated_at WHERE state = 'accepted' AND EXISTS (
    SELECT 1 FROM intake_intents i WHERE i.workflow_id = expirations.workflow_id AND i.kind = 'start' AND i.state = 'done');
-- Only the few started and still accepted are in it: the count reads them alone (its
-- columns make the index cover the count, so SQLite prefers it to the state list), even
-- with a month end's expiries waiting in the queue.
CREATE INDEX expirations_admitted ON expirations (state, started_at) WHERE state = 'accepted' AND started_at <> '';
