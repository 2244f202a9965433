-- Every SmartHub push that passed authentication, as received, with what became of it.
-- The event ID is SmartHub's idempotency key: a re-delivered push is recognised here.
CREATE TABLE smarthub_events (
    event_id     TEXT PRIMARY KEY,
    received_at  TEXT NOT NULL,
    event_type   TEXT NOT NULL DEFAULT '',
    trigger_type TEXT NOT NULL DEFAULT '',
    g_iccid      TEXT NOT NULL DEFAULT '',
    package_code TEXT NOT NULL DEFAULT '',
    valid_thru   TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL,
    workflow_id  TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    raw          TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX smarthub_events_status ON smarthub_events (status);
