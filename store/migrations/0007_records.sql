-- (No semicolons in comments: the migration runner splits statements on them.)
-- The complete record (issue #21): every inbound call classified, and every operator
-- action audited.
--
-- deliveries: answer is what the sender was told (a KooGallery result code, an HTTP
-- status), outcome is what kooflow made of the call (store.Delivery's Outcome*
-- constants), and reason names the rule that ignored it or the kind of refusal.
ALTER TABLE deliveries RENAME COLUMN outcome TO answer;
ALTER TABLE deliveries ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN reason TEXT NOT NULL DEFAULT '';
-- Rows written by earlier releases are classified from what they kept: an expiry that
-- named its workflow was accepted, a KooGallery error code was a refusal (000005: the
-- store was unavailable), a successful expireInstance without a workflow was ignored by
-- the rule book, any other success was an accepted lifecycle call.
UPDATE deliveries SET outcome = CASE
    WHEN workflow_id <> '' THEN 'accepted'
    WHEN answer = '000005' THEN 'unavailable'
    WHEN answer IN ('000001', '000002', '000003', '000004') THEN 'refused'
    WHEN activity = 'expireInstance' THEN 'ignored'
    ELSE 'accepted' END;
CREATE INDEX deliveries_subject ON deliveries (subject, id);
CREATE INDEX deliveries_outcome ON deliveries (outcome, id);

-- Operator actions, append-only: who (actor, and the door they used), when, what
-- (action and its arguments with secrets removed), on which subjects, and the result.
CREATE TABLE audit_log (
    id       {{ID}},
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    via      TEXT NOT NULL,
    host     TEXT NOT NULL DEFAULT '',
    action   TEXT NOT NULL,
    args     TEXT NOT NULL DEFAULT '',
    subjects TEXT NOT NULL DEFAULT '',
    result   TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, id);

-- One row per subject an operator action touched, so an expiry's page finds its actions
-- by subject (an instance, a workflow ID, a SIM package, a cycle) with an index.
CREATE TABLE audit_subjects (
    audit_id BIGINT NOT NULL REFERENCES audit_log (id) ON DELETE CASCADE,
    subject  TEXT NOT NULL,
    PRIMARY KEY (subject, audit_id)
);

-- The expiry time of the last renewal KooGallery reported (refreshInstance): an expiry
-- reported while the registry has the instance running longer was overtaken by a renewal
-- only when KooGallery reported one, a registry date alone is a conflict for an operator.
-- Subscriptions renewed under earlier releases have the renewal's time as their expiry.
ALTER TABLE subscriptions ADD COLUMN renewed_until TEXT NOT NULL DEFAULT '';
UPDATE subscriptions SET renewed_until = expire_time
 WHERE id IN (SELECT subscription_id FROM subscription_events WHERE event = 'renewed');
