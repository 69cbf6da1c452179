-- Uninstall: drops every object the service added to its schema (db/migrations/0001-0015, the
-- current objects and those of versions 1-8, in case an old install is uninstalled), and nothing
-- else. Never dropped: the engines' tables (migration_runs, workflow_states, workflow_checkpoints)
-- and their rows, their primary keys and foreign keys, and their own indexes
-- (migration_runs_status_idx, migration_runs_created_at_idx, migration_runs_file_path_idx,
-- migration_runs_record_type_idx, workflow_states_run_id_idx, workflow_checkpoints_run_id_idx).
-- The pg_trgm extension stays installed: other things in the database may use it.
--
-- Run by db/uninstall.py (`python -m db.uninstall [--dry-run]`) on a connection whose search_path
-- is the service's schema alone, statement by statement: DROP INDEX CONCURRENTLY outside any
-- transaction (engines keep writing meanwhile); every other statement in a transaction of its own
-- with a short lock_timeout, retried while an engine holds a lock. Every statement is idempotent
-- (IF EXISTS), so a run that stopped half-way is finished by running it again. Plain statements,
-- each ending its line with ';' (db/schema.py Migration.statements splits them so).

-- 1. The version table first: a service that starts after an uninstall stopped half-way finds no
--    version and reinstalls everything, instead of trusting a version whose triggers are gone.
DROP TABLE IF EXISTS migration_api_schema_versions;

-- 2. The triggers on the engines' tables: from here on an engine's statement runs none of the
--    service's code. Version 9's change log:
DROP TRIGGER IF EXISTS migration_api_log_insert ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_log_update ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_log_delete ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_log_truncate ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_log_insert ON workflow_states;
DROP TRIGGER IF EXISTS migration_api_log_update ON workflow_states;
DROP TRIGGER IF EXISTS migration_api_log_delete ON workflow_states;
DROP TRIGGER IF EXISTS migration_api_log_truncate ON workflow_states;
DROP TRIGGER IF EXISTS migration_api_log_insert ON workflow_checkpoints;
DROP TRIGGER IF EXISTS migration_api_log_update ON workflow_checkpoints;
DROP TRIGGER IF EXISTS migration_api_log_delete ON workflow_checkpoints;
DROP TRIGGER IF EXISTS migration_api_log_truncate ON workflow_checkpoints;
-- versions 5-8: roll-up triggers and change notices.
DROP TRIGGER IF EXISTS migration_api_runs_rollup_insert ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_runs_rollup_update ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_runs_rollup_delete ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_runs_rollup_truncate ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_notice_insert ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_notice_update ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_notice_delete ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_notice_truncate ON migration_runs;
DROP TRIGGER IF EXISTS migration_api_notice_insert ON workflow_states;
DROP TRIGGER IF EXISTS migration_api_notice_update ON workflow_states;
DROP TRIGGER IF EXISTS migration_api_notice_delete ON workflow_states;
DROP TRIGGER IF EXISTS migration_api_notice_truncate ON workflow_states;
DROP TRIGGER IF EXISTS migration_api_notice_insert ON workflow_checkpoints;
DROP TRIGGER IF EXISTS migration_api_notice_update ON workflow_checkpoints;
DROP TRIGGER IF EXISTS migration_api_notice_delete ON workflow_checkpoints;
DROP TRIGGER IF EXISTS migration_api_notice_truncate ON workflow_checkpoints;

-- 3. The indexes the service added to the engines' tables (before the functions some of them use).
--    Version 10's:
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_status_created_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_lower_file_path_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_file_name_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_api_runs_running_updated_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_api_runs_completed_at_status_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_api_runs_failed_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_api_runs_failed_duration_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_api_states_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_api_checkpoints_created_at_idx;
-- versions 1-8's (those 0010_indexes.sql drops):
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_created_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_record_type_created_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_updated_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_completed_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_total_duration_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_status_total_duration_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_runs_search_trgm_idx;
DROP INDEX CONCURRENTLY IF EXISTS migration_api_runs_failed_fingerprint_idx;
DROP INDEX CONCURRENTLY IF EXISTS workflow_states_run_id_step_order_idx;
DROP INDEX CONCURRENTLY IF EXISTS workflow_checkpoints_run_id_created_at_idx;

-- 4. The service's tables (their own indexes go with them). The change log and its sentinel:
DROP TABLE IF EXISTS migration_api_changes;
DROP TABLE IF EXISTS migration_api_log_alive;
DROP TABLE IF EXISTS migration_api_machinery;
DROP TABLE IF EXISTS migration_api_search_docs;
DROP TABLE IF EXISTS migration_api_idempotency_keys;
-- the change stream (versions 12 and 13):
DROP TABLE IF EXISTS migration_api_events;
DROP SEQUENCE IF EXISTS migration_api_event_ids;
-- the API keys (version 14):
DROP TABLE IF EXISTS migration_api_keys;
-- the runs' last step times (version 15):
DROP TABLE IF EXISTS migration_api_run_activity;
-- the roll-ups:
DROP TABLE IF EXISTS migration_api_run_counts_hour;
DROP TABLE IF EXISTS migration_api_run_counts_day;
DROP TABLE IF EXISTS migration_api_run_counts_total;
DROP TABLE IF EXISTS migration_api_duration_hist_hour;
DROP TABLE IF EXISTS migration_api_duration_hist_day;
DROP TABLE IF EXISTS migration_api_duration_hist_total;
DROP TABLE IF EXISTS migration_api_duration_hist_type;
DROP TABLE IF EXISTS migration_api_duration_hist_all;
DROP TABLE IF EXISTS migration_api_duration_bins_hour;
DROP TABLE IF EXISTS migration_api_duration_bins_day;
DROP TABLE IF EXISTS migration_api_error_counts_day;

-- 5. The functions. The log writers (versions 9 and 12) and the helpers of the read queries:
DROP FUNCTION IF EXISTS migration_api_log_runs_inserted();
DROP FUNCTION IF EXISTS migration_api_log_runs_updated();
DROP FUNCTION IF EXISTS migration_api_log_runs_deleted();
DROP FUNCTION IF EXISTS migration_api_log_steps_inserted();
DROP FUNCTION IF EXISTS migration_api_log_steps_updated();
DROP FUNCTION IF EXISTS migration_api_log_steps_deleted();
DROP FUNCTION IF EXISTS migration_api_log_truncated();
DROP FUNCTION IF EXISTS migration_api_log_run_inserted();
DROP FUNCTION IF EXISTS migration_api_log_run_updated();
DROP FUNCTION IF EXISTS migration_api_log_state_inserted();
DROP FUNCTION IF EXISTS migration_api_log_checkpoint_inserted();
DROP FUNCTION IF EXISTS migration_api_duration_bin(double precision);
DROP FUNCTION IF EXISTS migration_api_error_fingerprint(text);
DROP FUNCTION IF EXISTS migration_api_search_document(text, text, text, text, uuid);
DROP FUNCTION IF EXISTS migration_api_file_name(text);
-- versions 5-8's roll-up triggers and change notices:
DROP FUNCTION IF EXISTS migration_api_runs_rollup_insert();
DROP FUNCTION IF EXISTS migration_api_runs_rollup_update();
DROP FUNCTION IF EXISTS migration_api_runs_rollup_delete();
DROP FUNCTION IF EXISTS migration_api_runs_rollup_truncate();
DROP FUNCTION IF EXISTS migration_api_notice_new();
DROP FUNCTION IF EXISTS migration_api_notice_old();
DROP FUNCTION IF EXISTS migration_api_notice_changed();
DROP FUNCTION IF EXISTS migration_api_notice_all();
DROP FUNCTION IF EXISTS migration_api_send_run_notice(text);
