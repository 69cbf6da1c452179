-- Version 10: the indexes the service adds to the engines' tables, built and dropped CONCURRENTLY
-- so that engines keep writing meanwhile. Each one serves a read measured in docs/performance.md
-- ("Indexes"), and each costs every engine INSERT and finishing UPDATE an index entry, so the
-- list is short; versions 1-8's other indexes are dropped.
-- no-transaction: each statement runs on its own (CONCURRENTLY cannot run in a transaction);
-- db/migrate.py retries one that meets a lock and drops the invalid index a failed build leaves.

-- The engines' own indexes (schema.sql names them so), for a database the service created.
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_runs_status_idx ON migration_runs USING btree (status);
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_runs_created_at_idx ON migration_runs USING btree (created_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_runs_file_path_idx ON migration_runs USING btree (file_path);
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_runs_record_type_idx ON migration_runs USING btree (record_type);
CREATE INDEX CONCURRENTLY IF NOT EXISTS workflow_states_run_id_idx ON workflow_states USING btree (run_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS workflow_checkpoints_run_id_idx ON workflow_checkpoints USING btree (run_id);

-- Search: exact and prefix matches of the file path and of the file name.
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_runs_lower_file_path_idx
    ON migration_runs USING btree (lower(file_path) text_pattern_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_runs_file_name_idx
    ON migration_runs USING btree (migration_api_file_name(file_path) text_pattern_ops);
-- Statistics "now": running and stuck runs (partial: a run leaves it when it finishes).
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_api_runs_running_updated_at_idx
    ON migration_runs USING btree (updated_at) WHERE status = 'running';
-- Statistics "now": finished in the last 24 hours.
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_api_runs_completed_at_status_idx
    ON migration_runs USING btree (completed_at, status) WHERE completed_at IS NOT NULL;
-- Error groups' example runs, and failed runs slowest first (partial: only failed runs pay).
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_api_runs_failed_created_at_idx
    ON migration_runs USING btree (created_at) WHERE status = 'failed';
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_api_runs_failed_duration_idx
    ON migration_runs USING btree (total_duration, id) WHERE status = 'failed';
-- Statistics "now": runs with a step or checkpoint in the last STUCK_AFTER_MINUTES.
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_api_states_created_at_idx
    ON workflow_states USING btree (created_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS migration_api_checkpoints_created_at_idx
    ON workflow_checkpoints USING btree (created_at);

-- Versions 1-8's indexes that no measured read needs any more.
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_created_at_id_idx;
-- Lists by status walk the engines' created_at index (a common status) or read the engines' status
-- index and sort (a rare one): about 0.2-7 ms at 1,000,000 runs, deep cursors included.
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_status_created_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_record_type_created_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_updated_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_completed_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_total_duration_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_status_total_duration_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_search_trgm_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_api_runs_failed_fingerprint_idx;
DROP INDEX CONCURRENTLY IF EXISTS workflow_states_run_id_step_order_idx;
DROP INDEX CONCURRENTLY IF EXISTS workflow_checkpoints_run_id_created_at_idx;

ANALYZE migration_runs;
