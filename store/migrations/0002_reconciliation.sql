-- One row per billing cycle's reconciliation run and where it stands.
CREATE TABLE reconciliation_runs (
    cycle            TEXT PRIMARY KEY,
    workflow_id      TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL,
    statement_path   TEXT NOT NULL DEFAULT '',
    statement_rows   INTEGER NOT NULL DEFAULT 0,
    statement_sha256 TEXT NOT NULL DEFAULT '',
    batch_no         TEXT NOT NULL DEFAULT '',
    report_path      TEXT NOT NULL DEFAULT '',
    counts           TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

-- Every statement KooDrive accepted: a statement with the same content is never uploaded twice.
CREATE TABLE reconciliation_batches (
    cycle            TEXT NOT NULL,
    statement_sha256 TEXT NOT NULL,
    batch_no         TEXT NOT NULL,
    uploaded_at      TEXT NOT NULL,
    PRIMARY KEY (cycle, statement_sha256)
);

-- Every discrepancy KooDrive reported, with its raw JSON (unknown fields kept).
CREATE TABLE discrepancies (
    batch_no           TEXT NOT NULL,
    record_key         TEXT NOT NULL,
    cycle              TEXT NOT NULL,
    seq                INTEGER NOT NULL,
    diff_type          TEXT NOT NULL,
    carrier_order_id   TEXT NOT NULL DEFAULT '',
    kd_order_id        TEXT NOT NULL DEFAULT '',
    carrier_user_id    TEXT NOT NULL DEFAULT '',
    carrier_order_time TEXT NOT NULL DEFAULT '',
    kd_user_id         TEXT NOT NULL DEFAULT '',
    user_status        TEXT NOT NULL DEFAULT '',
    raw                TEXT NOT NULL,
    PRIMARY KEY (batch_no, record_key)
);
CREATE INDEX discrepancies_batch_seq ON discrepancies (batch_no, seq);
