-- (No semicolons in comments: the migration runner splits statements on them.)
-- Every list the console pages through is read in the order of an index (issue #22,
-- checked with EXPLAIN by store/console_plan_internal_test.go on SQLite and PostgreSQL).
--
-- The expirations list can keep test rehearsals in (its "test" box). With test as the
-- list indexes' first column after the state (0010), such a page found no index in its
-- order and sorted every expiration, or every expiration of the state. With test last,
-- one index serves both: a page with rehearsals walks it in order, a page without them
-- walks it skipping the few rehearsals on the index entries, before reading the rows.
-- Same columns, so the same index writes at every change of an expiration.
-- store.CountExpirations counts by state, with the rehearsals summed apart, so that it
-- reads expirations_state_list in its order too.
DROP INDEX expirations_list;
CREATE INDEX expirations_list ON expirations (updated_at, workflow_id, test);
DROP INDEX expirations_state_list;
CREATE INDEX expirations_state_list ON expirations (state, updated_at, workflow_id, test);

-- store.Runs lists the reconciliation runs newest first (by when each started): walked
-- in this index's order, not sorted.
CREATE INDEX reconciliation_runs_started ON reconciliation_runs (created_at, id);
-- The console's overview and the metrics read the run that completed last at every
-- load or scrape (store.LastCompletedRun): the newest entry of this index for the state.
CREATE INDEX reconciliation_runs_state ON reconciliation_runs (state, updated_at, cycle, id);

-- The audit page filters by action (a command's name, a few of them rare, such as
-- "registry import"): its entries newest first, as audit_log_actor does for an actor,
-- instead of walking the whole log back for a rare one. Operators' actions are few, so
-- the index costs little to keep.
CREATE INDEX audit_log_action ON audit_log (action, id);
