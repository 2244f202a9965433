-- The console lists expirations by last change, newest or oldest first, in a state or
-- across all, test rehearsals apart (store.ListExpirations). These indexes give every
-- such page in index order (the workflow ID breaks ties, so pages never overlap): a page
-- of 50 of 100,000 expirations reads 50 rows instead of sorting them all.
-- (state, test, updated_at, workflow_id) also serves what (state) served (the state
-- gauges count by state and test), so that index goes.
CREATE INDEX expirations_state_list ON expirations (state, test, updated_at, workflow_id);
CREATE INDEX expirations_list ON expirations (test, updated_at, workflow_id);
DROP INDEX expirations_state;

-- The delivery log's outcome index (0007) cost every intake commit an index write for
-- lists that read the newest rows first anyway: a list filtered by outcome walks the
-- primary key back from the newest row, and the hour's counts use deliveries_received.
DROP INDEX deliveries_outcome;
