-- Version 13: the change stream's log writers (the columns they fill came in version 12).
-- Idempotent (the baseline and every later version are reapplied to repair damage); runs in one
-- transaction with a short lock_timeout, retried (db/migrate.py). Creating functions locks no
-- table; the triggers on the engines' tables come last, so those locks are held for milliseconds.
-- The log's writers, with the kind of change (the rules of version 9 hold: SECURITY DEFINER,
-- every name qualified, a missing log is a warning, no EXCEPTION block). Inserts and updates of
-- runs, inserts of states and checkpoints are row-level triggers: an engine writes one row per
-- statement, and a statement-level trigger with a transition table pays for that table (a
-- tuplestore and a query over it) on every one. Measured with pgbench on the engines' 5-statement
-- cycle at 16 connections (PostgreSQL 15, CPU per cycle from /proc): the log's triggers cost 0.137
-- ms per cycle statement-level, 0.081 ms row-level (docs/performance.md). Deletes, truncates and
-- the rare update of states stay statement-level (a cleanup deletes many rows at once).
DO $install$
DECLARE
    log TEXT := format('%I.migration_api_changes', current_schema());
    guard TEXT;
BEGIN
    guard := format($g$
    IF pg_catalog.to_regclass(%L) IS NULL THEN
        RAISE WARNING 'migration-api: change not logged (its log table %s is missing); the service will rebuild';
        RETURN NULL;
    END IF;$g$, log, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_run_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, kind, created_at, status, record_type, total_duration, success, error_message)
    VALUES (NEW.id, 1, 'run_created', NEW.created_at, NEW.status, NEW.record_type, NEW.total_duration, NEW.success,
            CASE WHEN NEW.status OPERATOR(pg_catalog.=) 'failed' THEN NEW.error_message END);
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_run_updated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, kind, created_at, status, record_type, total_duration, success, error_message)
    VALUES (OLD.id, -1, 'run_updated', OLD.created_at, OLD.status, OLD.record_type, OLD.total_duration, OLD.success,
            CASE WHEN OLD.status OPERATOR(pg_catalog.=) 'failed' THEN OLD.error_message END),
           (NEW.id, 1, 'run_updated', NEW.created_at, NEW.status, NEW.record_type, NEW.total_duration, NEW.success,
            CASE WHEN NEW.status OPERATOR(pg_catalog.=) 'failed' THEN NEW.error_message END);
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_state_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, kind, name, step_order)
    VALUES (NEW.run_id, 0, 'state_appended', NEW.step_name, NEW.step_order);
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_checkpoint_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, kind, name) VALUES (NEW.run_id, 0, 'checkpoint_appended', NEW.checkpoint_name);
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_runs_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, kind, created_at, status, record_type, total_duration, success, error_message)
    SELECT id, -1, 'run_deleted', created_at, status, record_type, total_duration, success,
           CASE WHEN status OPERATOR(pg_catalog.=) 'failed' THEN error_message END
      FROM old_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);
END $install$;

-- The trigger names of version 9 (the folder counts them to notice one dropped by hand).
CREATE OR REPLACE TRIGGER migration_api_log_insert AFTER INSERT ON migration_runs
    FOR EACH ROW EXECUTE FUNCTION migration_api_log_run_inserted();
CREATE OR REPLACE TRIGGER migration_api_log_update AFTER UPDATE ON migration_runs
    FOR EACH ROW EXECUTE FUNCTION migration_api_log_run_updated();
CREATE OR REPLACE TRIGGER migration_api_log_insert AFTER INSERT ON workflow_states
    FOR EACH ROW EXECUTE FUNCTION migration_api_log_state_inserted();
CREATE OR REPLACE TRIGGER migration_api_log_insert AFTER INSERT ON workflow_checkpoints
    FOR EACH ROW EXECUTE FUNCTION migration_api_log_checkpoint_inserted();
-- Version 9's statement-level writers of those three are no longer called.
DROP FUNCTION IF EXISTS migration_api_log_runs_inserted();
DROP FUNCTION IF EXISTS migration_api_log_runs_updated();
DROP FUNCTION IF EXISTS migration_api_log_steps_inserted();
