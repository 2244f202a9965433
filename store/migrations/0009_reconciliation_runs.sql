-- (No semicolons in comments: the migration runner splits statements on them.)
-- Every reconciliation run is kept (issue #22 item 6), not one row per billing cycle: a
-- re-run of a cycle (kooflow reconcile --force, a reset, the schedule after a failure) is
-- a row of its own, keyed by the cycle and Temporal's run ID, with the files it wrote.
-- SQLite cannot change a primary key in place, so the table is rebuilt.
-- Rows of earlier releases keep their values, their file paths among them (the files stay
-- where those releases wrote them), with an empty run ID. A run still in flight when this
-- migration runs takes its row over at its next save (store.SaveRun).
-- finished_at is when the run completed or failed, empty while it runs.
CREATE TABLE reconciliation_runs_0009 (
    id               {{ID}},
    cycle            TEXT NOT NULL,
    workflow_id      TEXT NOT NULL DEFAULT '',
    run_id           TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL,
    statement_path   TEXT NOT NULL DEFAULT '',
    statement_rows   INTEGER NOT NULL DEFAULT 0,
    statement_sha256 TEXT NOT NULL DEFAULT '',
    batch_no         TEXT NOT NULL DEFAULT '',
    report_path      TEXT NOT NULL DEFAULT '',
    counts           TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    finished_at      TEXT NOT NULL DEFAULT ''
);
INSERT INTO reconciliation_runs_0009 (cycle, workflow_id, run_id, state, statement_path, statement_rows, statement_sha256,
    batch_no, report_path, counts, error, created_at, updated_at, finished_at)
SELECT cycle, workflow_id, '', state, statement_path, statement_rows, statement_sha256, batch_no, report_path, counts, error,
    created_at, updated_at, CASE WHEN state IN ('completed', 'failed') THEN updated_at ELSE '' END
FROM reconciliation_runs ORDER BY created_at, cycle;
DROP TABLE reconciliation_runs;
ALTER TABLE reconciliation_runs_0009 RENAME TO reconciliation_runs;
CREATE UNIQUE INDEX reconciliation_runs_run ON reconciliation_runs (cycle, run_id);

-- The statement's status column is a subscription's status at the end of the cycle
-- (store.statusAtCycleEnd). Two small indexes hold only the status changes (frozen,
-- unfrozen, released), not the registry's whole history (a million imported events):
-- by time, to find the subscriptions changed after a cycle ended, and by subscription,
-- to read the last change of one of them before the end. Both cover their query.
CREATE INDEX subscription_events_status ON subscription_events (at, subscription_id, event) WHERE event IN ('frozen', 'unfrozen', 'released');
CREATE INDEX subscription_events_status_history ON subscription_events (subscription_id, id, at, event) WHERE event IN ('frozen', 'unfrozen', 'released');
