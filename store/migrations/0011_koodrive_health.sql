-- (No semicolons in comments: the migration runner splits statements on them.)
-- What the worker last saw of each KooDrive endpoint, for the console's overview (issue
-- #22): one row per endpoint path, written by the worker every few seconds and at once
-- when an endpoint starts or stops answering (store.RecordKooDriveCalls).
-- Times are the sortable UTC text of every table, '' for never.
-- last_outcome is the koodrive client's outcome of the newest call (success,
-- retryable_error, rejected, auth_failed). The last failure keeps its outcome, the HTTP
-- status (0: no answer), KooDrive's error code and message, never a credential.
-- unanswered_calls counts the calls KooDrive did not answer (retryable_error,
-- auth_failed) since the last it answered (success, rejected), the first of them made at
-- unanswered_since.
CREATE TABLE koodrive_health (
    endpoint             TEXT PRIMARY KEY,
    last_outcome         TEXT NOT NULL,
    last_call_at         TEXT NOT NULL,
    last_success_at      TEXT NOT NULL DEFAULT '',
    last_failure_at      TEXT NOT NULL DEFAULT '',
    last_failure_outcome TEXT NOT NULL DEFAULT '',
    last_failure_status  INTEGER NOT NULL DEFAULT 0,
    last_failure_code    TEXT NOT NULL DEFAULT '',
    last_failure_message TEXT NOT NULL DEFAULT '',
    unanswered_calls     BIGINT NOT NULL DEFAULT 0,
    unanswered_since     TEXT NOT NULL DEFAULT ''
);
