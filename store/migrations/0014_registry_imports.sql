-- (No semicolons in comments: the migration runner splits statements on them.)
-- Where the registry came from (issue #26). One row per registry import that changed
-- the registry: when, who, through which door, from which file, and what it did. A
-- subscription an import created names it in imported_by, and an update an import made
-- names it in its history event's import_id: the subscription's history shows "imported"
-- from these, with the operator and the file, instead of one history row per imported
-- subscription (a million rows, and a third of the import's time, for a million-row file).
-- Subscriptions imported before this release keep their "imported" history rows and have
-- no imported_by.
CREATE TABLE registry_imports (
    id        {{ID}},
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL DEFAULT '',
    via       TEXT NOT NULL DEFAULT '',
    source    TEXT NOT NULL DEFAULT '',
    inserted  BIGINT NOT NULL DEFAULT 0,
    updated   BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0
);
-- No foreign keys: both columns are written only in the transaction that writes the
-- import's row, and a key checked row by row would cost a million-row import seconds.
ALTER TABLE subscriptions ADD COLUMN imported_by BIGINT;
ALTER TABLE subscription_events ADD COLUMN import_id BIGINT
