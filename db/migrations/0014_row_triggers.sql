-- Version 14: the log's writers for single-row statements become row-level triggers. An engine
-- writes one row per statement; a statement-level trigger with a transition table pays for that
-- table (a tuplestore per statement, a query over it) on every one. Measured with pgbench on the
-- engines' 5-statement cycle at 16 connections (PostgreSQL 15, CPU per cycle): the log's triggers
-- cost 0.137 ms per cycle statement-level, 0.081 ms row-level (docs/performance.md).
-- INSERT and UPDATE of runs, INSERT of states and checkpoints are row-level now; DELETE,
-- TRUNCATE and the rare UPDATE of states stay statement-level (a cleanup deletes many rows at once).
-- The rules of versions 9 and 12 hold: SECURITY DEFINER, every name qualified, a missing log is a
-- warning, no EXCEPTION block. Idempotent; one transaction with a short lock_timeout, retried.
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
END $install$;

-- Same trigger names as before (the folder counts them to notice one dropped by hand).
CREATE OR REPLACE TRIGGER migration_api_log_insert AFTER INSERT ON migration_runs
    FOR EACH ROW EXECUTE FUNCTION migration_api_log_run_inserted();
CREATE OR REPLACE TRIGGER migration_api_log_update AFTER UPDATE ON migration_runs
    FOR EACH ROW EXECUTE FUNCTION migration_api_log_run_updated();
CREATE OR REPLACE TRIGGER migration_api_log_insert AFTER INSERT ON workflow_states
    FOR EACH ROW EXECUTE FUNCTION migration_api_log_state_inserted();
CREATE OR REPLACE TRIGGER migration_api_log_insert AFTER INSERT ON workflow_checkpoints
    FOR EACH ROW EXECUTE FUNCTION migration_api_log_checkpoint_inserted();
-- Versions 9 and 12's statement-level writers of those four are no longer called.
DROP FUNCTION IF EXISTS migration_api_log_runs_inserted();
DROP FUNCTION IF EXISTS migration_api_log_runs_updated();
DROP FUNCTION IF EXISTS migration_api_log_steps_inserted();
DROP FUNCTION IF EXISTS migration_api_log_checkpoints_inserted();
