-- Version 9: engines first. The engines' statements pay only for appending the ids (and, for runs,
-- the rolled-up columns) of the rows they touch to an unlogged change log; the service folds that
-- log into its roll-ups, search documents and caches later, in batches, with its own rights.
-- baseline: a database at any earlier version (or none) is brought to version 9 by this file
-- alone; every statement here is idempotent. Runs in one transaction with a short lock_timeout
-- (db/migrate.py retries it), so an engine's write never waits long behind it.

-- The engines' tables, for a database where no engine has created them yet (the embedded default).
CREATE TABLE IF NOT EXISTS migration_runs (
    id UUID PRIMARY KEY,
    file_path VARCHAR(500) NOT NULL,
    record_type VARCHAR(100) NOT NULL,
    status VARCHAR(50) NOT NULL DEFAULT 'running',
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    completed_at TIMESTAMPTZ,
    total_duration DOUBLE PRECISION,
    success BOOLEAN,
    error_message TEXT);

CREATE TABLE IF NOT EXISTS workflow_states (
    id UUID PRIMARY KEY,
    run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE,
    step_name VARCHAR(100) NOT NULL,
    state_data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    step_order INTEGER NOT NULL,
    metadata JSONB);

CREATE TABLE IF NOT EXISTS workflow_checkpoints (
    id UUID PRIMARY KEY,
    run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE,
    checkpoint_name VARCHAR(100) NOT NULL,
    state_data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    metadata JSONB);

-- Idempotency keys: the first response to each keyed POST, until it expires (as in version 3).
CREATE TABLE IF NOT EXISTS migration_api_idempotency_keys (
    key TEXT NOT NULL,
    scope TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    response_body BYTEA NOT NULL,
    headers JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key, scope));

CREATE INDEX IF NOT EXISTS migration_api_idempotency_keys_expires_at_idx
    ON migration_api_idempotency_keys USING btree (expires_at);

-- ---------------------------------------------------------------------------------------------
-- Helpers of the read queries (immutable, so usable in indexes). Durations: bin k holds
-- [1.04^k, 1.04^(k+1)) seconds after clamping to [0.001 s, 1e9 s]; NaN and infinities have none.
CREATE OR REPLACE FUNCTION migration_api_duration_bin(seconds DOUBLE PRECISION) RETURNS INTEGER
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
    AS $$ SELECT floor(ln(least(greatest(seconds, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int $$;

CREATE OR REPLACE FUNCTION migration_api_error_fingerprint(message TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(left(btrim(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(message, '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g'), '([A-Za-z]:)?([A-Za-z0-9_.~-]*[/\\])+[A-Za-z0-9_.~-]+', '<path>', 'g'), '''[^'']*[0-9][^'']*''', '<str>', 'g'), '"[^"]*[0-9][^"]*"', '<str>', 'g'), '(?<![0-9A-Za-z_])(0x)?(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}(?![0-9A-Za-z_])', '<hex>', 'g'), '[0-9]+([.,][0-9]+)*', '<n>', 'g'), '\s+', ' ', 'g')), 300), '') $$;

CREATE OR REPLACE FUNCTION migration_api_search_document(
        file_path TEXT, record_type TEXT, status TEXT, error_message TEXT, id UUID)
    RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN file_path || chr(31) || record_type || chr(31) || status || chr(31)
           || coalesce(error_message, '') || chr(31) || id::text;

CREATE OR REPLACE FUNCTION migration_api_file_name(file_path TEXT)
    RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN lower(reverse(split_part(reverse(replace(file_path, '\', '/')), '/', 1)));

-- ---------------------------------------------------------------------------------------------
-- The change log. UNLOGGED and without an index: an append costs an engine's statement a few
-- microseconds and no WAL. A crash of the server empties it; the service notices (the sentinel
-- row of migration_api_log_alive is gone with it) and rebuilds what it derives from the log.
-- run_id NULL marks a TRUNCATE. s: +1 the run's new row, -1 its old row, 0 a step or checkpoint
-- of the run (nothing to roll up, only caches to refresh).
CREATE UNLOGGED TABLE IF NOT EXISTS migration_api_changes (
    run_id UUID,
    s SMALLINT NOT NULL,
    created_at TIMESTAMPTZ,
    status TEXT,
    record_type TEXT,
    total_duration DOUBLE PRECISION,
    success BOOLEAN,
    error_message TEXT,
    logged_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp());

CREATE UNLOGGED TABLE IF NOT EXISTS migration_api_log_alive (alive BOOLEAN PRIMARY KEY);

-- What the service derives from the log and whether it is current. One row.
CREATE TABLE IF NOT EXISTS migration_api_machinery (
    id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    rollups_ready BOOLEAN NOT NULL DEFAULT false,
    search_ready BOOLEAN NOT NULL DEFAULT false,
    rebuilt_at TIMESTAMPTZ,
    note TEXT);
INSERT INTO migration_api_machinery (id) VALUES (true) ON CONFLICT (id) DO NOTHING;
-- Whatever version brought the database here, the derived data is rebuilt from the base tables.
UPDATE migration_api_machinery SET rollups_ready = false, search_ready = false,
       note = 'schema version 9 installed: rebuilding roll-ups and search documents';

-- The search documents of the runs, with a trigram index (pg_trgm, where it may be created):
-- kept by the service from the log, so that engines' writes pay for no GIN index.
CREATE TABLE IF NOT EXISTS migration_api_search_docs (
    id UUID PRIMARY KEY,
    doc TEXT NOT NULL);

DO $$ BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg_trgm unavailable (%), search runs without a trigram index', SQLERRM;
END $$;

DO $$ DECLARE trgm_schema TEXT; BEGIN
    SELECT extnamespace::regnamespace::text INTO trgm_schema FROM pg_extension WHERE extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS migration_api_search_docs_trgm_idx '
                       'ON migration_api_search_docs USING gin (doc %I.gin_trgm_ops)', trgm_schema);
    END IF;
END $$;

-- Roll-ups (as in version 5): runs by UTC hour / day of created_at, duration histograms, error
-- groups. Kept by the service (rollups/fold.sql); an engine's statement never touches them.
CREATE TABLE IF NOT EXISTS migration_api_run_counts_hour (
    bucket TIMESTAMPTZ NOT NULL, status TEXT NOT NULL, record_type TEXT NOT NULL,
    n BIGINT NOT NULL, succeeded BIGINT NOT NULL, finished BIGINT NOT NULL,
    dur_n BIGINT NOT NULL, dur_sum NUMERIC NOT NULL, dur_max DOUBLE PRECISION,
    PRIMARY KEY (bucket, status, record_type));
CREATE TABLE IF NOT EXISTS migration_api_run_counts_day (
    bucket TIMESTAMPTZ NOT NULL, status TEXT NOT NULL, record_type TEXT NOT NULL,
    n BIGINT NOT NULL, succeeded BIGINT NOT NULL, finished BIGINT NOT NULL,
    dur_n BIGINT NOT NULL, dur_sum NUMERIC NOT NULL, dur_max DOUBLE PRECISION,
    PRIMARY KEY (bucket, status, record_type));
CREATE TABLE IF NOT EXISTS migration_api_run_counts_total (
    status TEXT NOT NULL, record_type TEXT NOT NULL,
    n BIGINT NOT NULL, succeeded BIGINT NOT NULL, finished BIGINT NOT NULL,
    dur_n BIGINT NOT NULL, dur_sum NUMERIC NOT NULL, dur_max DOUBLE PRECISION,
    PRIMARY KEY (status, record_type));
CREATE TABLE IF NOT EXISTS migration_api_duration_hist_hour (
    bucket TIMESTAMPTZ NOT NULL, record_type TEXT NOT NULL, status TEXT NOT NULL,
    bin INTEGER NOT NULL, n BIGINT NOT NULL,
    PRIMARY KEY (bucket, record_type, status, bin));
CREATE TABLE IF NOT EXISTS migration_api_duration_hist_day (
    bucket TIMESTAMPTZ NOT NULL, record_type TEXT NOT NULL, status TEXT NOT NULL,
    bin INTEGER NOT NULL, n BIGINT NOT NULL,
    PRIMARY KEY (bucket, record_type, status, bin));
CREATE TABLE IF NOT EXISTS migration_api_duration_hist_total (
    record_type TEXT NOT NULL, status TEXT NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL,
    PRIMARY KEY (record_type, status, bin));
CREATE TABLE IF NOT EXISTS migration_api_duration_hist_type (
    record_type TEXT NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (record_type, bin));
CREATE TABLE IF NOT EXISTS migration_api_duration_hist_all (
    bin INTEGER NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (bin));
CREATE TABLE IF NOT EXISTS migration_api_duration_bins_hour (
    bucket TIMESTAMPTZ NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL,
    PRIMARY KEY (bucket, bin));
CREATE TABLE IF NOT EXISTS migration_api_duration_bins_day (
    bucket TIMESTAMPTZ NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL,
    PRIMARY KEY (bucket, bin));
CREATE TABLE IF NOT EXISTS migration_api_error_counts_day (
    bucket TIMESTAMPTZ NOT NULL, fingerprint TEXT NOT NULL, record_type TEXT NOT NULL,
    n BIGINT NOT NULL, first_seen TIMESTAMPTZ NOT NULL, last_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (bucket, fingerprint, record_type));

-- ---------------------------------------------------------------------------------------------
-- The log's writers. They run in the engines' statements, so:
-- - SECURITY DEFINER: they run with the service's rights; an engine role needs no grant on any
--   service object.
-- - Whatever the engine's search_path: every name in them is schema-qualified (this schema for the
--   log, pg_catalog for functions and operators; the transition tables are the trigger's own), so
--   no object of another schema can stand in. (A `SET search_path` clause would do the same, but
--   it makes every call save, set and restore the setting: about 15 us per engine statement.)
-- - No error into the engine's statement: a missing log is a warning, and the service, finding its
--   log or sentinel gone, rebuilds from the base tables. The insert copies the engine's own values
--   into columns of the same types, so it has nothing else to fail on. No EXCEPTION block: it would
--   open a subtransaction with an XID of its own in every engine statement.
-- The schema's name is written into the bodies once, here.
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
    INSERT INTO %s (run_id, s, created_at, status, record_type, total_duration, success, error_message)
    SELECT id, 1, created_at, status, record_type, total_duration, success,
           CASE WHEN status OPERATOR(pg_catalog.=) 'failed' THEN error_message END
      FROM new_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_runs_updated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, created_at, status, record_type, total_duration, success, error_message)
    SELECT id, -1, created_at, status, record_type, total_duration, success,
           CASE WHEN status OPERATOR(pg_catalog.=) 'failed' THEN error_message END
      FROM old_rows
    UNION ALL
    SELECT id, 1, created_at, status, record_type, total_duration, success,
           CASE WHEN status OPERATOR(pg_catalog.=) 'failed' THEN error_message END
      FROM new_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_runs_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s, created_at, status, record_type, total_duration, success, error_message)
    SELECT id, -1, created_at, status, record_type, total_duration, success,
           CASE WHEN status OPERATOR(pg_catalog.=) 'failed' THEN error_message END
      FROM old_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    -- Steps: only which runs they belong to (their cached lists).
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_steps_inserted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s) SELECT run_id, 0 FROM new_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_steps_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s) SELECT run_id, 0 FROM old_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_steps_updated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s) SELECT run_id, 0 FROM old_rows UNION ALL SELECT run_id, 0 FROM new_rows;
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);

    -- TRUNCATE of any engine table: one marker row; the service rebuilds everything.
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %I.migration_api_log_truncated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN%s
    INSERT INTO %s (run_id, s) VALUES (NULL, 0);
    RETURN NULL;
END $body$$f$, current_schema(), guard, log);
END $install$;

-- ---------------------------------------------------------------------------------------------
-- The engine tables are locked from here to the commit: the triggers come last, so that those locks
-- are held for milliseconds. Version 5-8's machinery goes first: its roll-up and notice triggers ran
-- in every engine statement.
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
DROP FUNCTION IF EXISTS migration_api_runs_rollup_insert();
DROP FUNCTION IF EXISTS migration_api_runs_rollup_update();
DROP FUNCTION IF EXISTS migration_api_runs_rollup_delete();
DROP FUNCTION IF EXISTS migration_api_runs_rollup_truncate();
DROP FUNCTION IF EXISTS migration_api_notice_new();
DROP FUNCTION IF EXISTS migration_api_notice_old();
DROP FUNCTION IF EXISTS migration_api_notice_changed();
DROP FUNCTION IF EXISTS migration_api_notice_all();
DROP FUNCTION IF EXISTS migration_api_send_run_notice(text);

-- Statement-level triggers: one short INSERT per engine statement, whatever it touched.
CREATE OR REPLACE TRIGGER migration_api_log_insert AFTER INSERT ON migration_runs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION migration_api_log_runs_inserted();
CREATE OR REPLACE TRIGGER migration_api_log_update AFTER UPDATE ON migration_runs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION migration_api_log_runs_updated();
CREATE OR REPLACE TRIGGER migration_api_log_delete AFTER DELETE ON migration_runs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION migration_api_log_runs_deleted();
CREATE OR REPLACE TRIGGER migration_api_log_truncate AFTER TRUNCATE ON migration_runs
    FOR EACH STATEMENT EXECUTE FUNCTION migration_api_log_truncated();

CREATE OR REPLACE TRIGGER migration_api_log_insert AFTER INSERT ON workflow_states
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION migration_api_log_steps_inserted();
CREATE OR REPLACE TRIGGER migration_api_log_update AFTER UPDATE ON workflow_states
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION migration_api_log_steps_updated();
CREATE OR REPLACE TRIGGER migration_api_log_delete AFTER DELETE ON workflow_states
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION migration_api_log_steps_deleted();
CREATE OR REPLACE TRIGGER migration_api_log_truncate AFTER TRUNCATE ON workflow_states
    FOR EACH STATEMENT EXECUTE FUNCTION migration_api_log_truncated();

-- No trigger on workflow_checkpoints: nothing the service derives (roll-ups, search documents, the
-- read cache) depends on checkpoints, and each trigger costs every engine statement on the table.
DROP TRIGGER IF EXISTS migration_api_log_insert ON workflow_checkpoints;
DROP TRIGGER IF EXISTS migration_api_log_update ON workflow_checkpoints;
DROP TRIGGER IF EXISTS migration_api_log_delete ON workflow_checkpoints;
DROP TRIGGER IF EXISTS migration_api_log_truncate ON workflow_checkpoints;
