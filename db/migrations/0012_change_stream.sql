-- Version 12: the change stream (events/). The change log also says what happened (kind) and,
-- for a step, its name and order; a trigger on workflow_checkpoints logs appended checkpoints; the
-- folder turns each batch into numbered events, kept for a retention period, which the service
-- streams (GET /api/v1/events) and pages (GET /api/v1/changes).
-- Idempotent (the baseline and every later version are reapplied to repair damage); runs in one
-- transaction with a short lock_timeout, retried (db/migrate.py).

ALTER TABLE migration_api_changes
    ADD COLUMN IF NOT EXISTS kind TEXT,
    ADD COLUMN IF NOT EXISTS name TEXT,
    ADD COLUMN IF NOT EXISTS step_order INTEGER;

-- Event ids: a logged sequence, so that an id is never handed out twice, even after a crash
-- empties the (unlogged) events table; a client resuming from an id the service no longer holds
-- is told to reload (events/).
CREATE SEQUENCE IF NOT EXISTS migration_api_event_ids;

-- The events, newest last. Unlogged, like everything derived from the change log: a crash of the
-- server empties it, the folder rebuilds and records a `reset` event.
CREATE UNLOGGED TABLE IF NOT EXISTS migration_api_events (
    id BIGINT PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    run_id UUID,
    kind TEXT NOT NULL,
    status TEXT,
    record_type TEXT,
    name TEXT,
    step_order INTEGER);
-- Only the primary key: every read goes by id (a run's own stream resumes by walking the ids
-- after the client's, pruning walks the oldest ids), and each index would cost every fold.

-- Events up to this id may be missing (pruned, or lost with a rebuild): a client resuming from
-- below it is told to reload.
ALTER TABLE migration_api_machinery ADD COLUMN IF NOT EXISTS events_floor BIGINT NOT NULL DEFAULT 0;

-- The log's writers, as in version 9 (see its notes: SECURITY DEFINER, every name qualified, no
-- error into the engine's statement, no EXCEPTION block), now with the kind of change.
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
CREATE OR REPLACE FUNCTION %I.migration_api_log_runs_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, kind, created_at, status, record_type, total_duration, success, error_message)
    SELECT id, 1, 'run_created', created_at, status, record_type, total_duration, success,
           CASE WHEN status OPERATOR(pg_catalog.=) 'failed' THEN error_message END
      FROM new_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_runs_updated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, kind, created_at, status, record_type, total_duration, success, error_message)
    SELECT id, -1, 'run_updated', created_at, status, record_type, total_duration, success,
           CASE WHEN status OPERATOR(pg_catalog.=) 'failed' THEN error_message END
      FROM old_rows
    UNION ALL
    SELECT id, 1, 'run_updated', created_at, status, record_type, total_duration, success,
           CASE WHEN status OPERATOR(pg_catalog.=) 'failed' THEN error_message END
      FROM new_rows;
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

    -- Steps: the run they belong to (its cached list) and, when appended, their name and order.
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_steps_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, kind, name, step_order)
    SELECT run_id, 0, 'state_appended', step_name, step_order FROM new_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    -- Checkpoints: appended ones only (no cache or roll-up depends on them).
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_checkpoints_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, kind, name)
    SELECT run_id, 0, 'checkpoint_appended', checkpoint_name FROM new_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);
END $install$;

CREATE OR REPLACE TRIGGER migration_api_log_insert AFTER INSERT ON workflow_checkpoints
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION migration_api_log_checkpoints_inserted();
