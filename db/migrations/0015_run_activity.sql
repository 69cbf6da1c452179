-- Version 15: the runs' last step time is kept by the service instead of by two indexes on the
-- engines' step tables. Statistics' "stuck" figure needs, for each running run, whether it had a
-- state or checkpoint in the last STUCK_AFTER_MINUTES; version 10 answered it with btree indexes
-- on workflow_states(created_at) and workflow_checkpoints(created_at). Every engine cycle paid
-- three entries into them, all on the rightmost page of a timestamp index, which sixteen engine
-- connections contend for: dropping them took the engines' 5-statement cycle at 16 connections
-- from 0.77x to 0.90x of the bare schema with the service's objects alone (bench/engine_writes.py,
-- docs/performance.md). The folder now keeps migration_api_run_activity from the change log
-- (rollups/queries.sql, fold and rebuild): one row per running run with a step or checkpoint,
-- holding the newest created_at of its states and checkpoints, read from the base rows through
-- the engines' own run_id indexes.
-- no-transaction: DROP INDEX CONCURRENTLY cannot run in a transaction; db/migrate.py runs each
-- statement on its own with a short lock_timeout, retried. Idempotent: the baseline and every
-- later version are reapplied to repair damage.

-- Unlogged, like every table derived from the log: a crash empties it, and the folder rebuilds.
CREATE UNLOGGED TABLE IF NOT EXISTS migration_api_run_activity (run_id UUID PRIMARY KEY, last_step_at TIMESTAMPTZ NOT NULL);
CREATE INDEX IF NOT EXISTS migration_api_run_activity_last_step_at_idx ON migration_api_run_activity (last_step_at);
-- The table starts empty: the folder rebuilds the derived data (reads use the base tables meanwhile).
UPDATE migration_api_machinery SET rollups_ready = false, search_ready = false, note = 'schema version 15 installed: rebuilding roll-ups and run activity';
DROP INDEX CONCURRENTLY IF EXISTS migration_api_states_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_api_checkpoints_created_at_idx;
