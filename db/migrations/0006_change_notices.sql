-- Version 6: change notices: the ids of the runs each statement touched, for the read cache (db/run_cache.py).
-- Released history, kept as it ran; never edited. Version 9 supersedes versions 1-8:
-- a database below version 9 is brought to it by 0009 alone (see db/migrations/README.md).
-- history

CREATE OR REPLACE FUNCTION migration_api_send_run_notice(ids TEXT) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF ids IS NOT NULL THEN
                PERFORM pg_notify('migration_api_runs', CASE WHEN length(ids) > 7900 THEN '*' ELSE ids END);
            END IF;
        END $$;

CREATE OR REPLACE FUNCTION migration_api_notice_new() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE ids TEXT;
        BEGIN
            EXECUTE format('SELECT string_agg(DISTINCT %I::text, '','') FROM new_rows', TG_ARGV[0]) INTO ids;
            PERFORM migration_api_send_run_notice(ids);
            RETURN NULL;
        END $$;

CREATE OR REPLACE FUNCTION migration_api_notice_old() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE ids TEXT;
        BEGIN
            EXECUTE format('SELECT string_agg(DISTINCT %I::text, '','') FROM old_rows', TG_ARGV[0]) INTO ids;
            PERFORM migration_api_send_run_notice(ids);
            RETURN NULL;
        END $$;

CREATE OR REPLACE FUNCTION migration_api_notice_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE ids TEXT;
        BEGIN
            EXECUTE format('SELECT string_agg(DISTINCT x::text, '','') FROM '
                           '(SELECT %1$I AS x FROM new_rows UNION SELECT %1$I FROM old_rows) AS touched',
                           TG_ARGV[0]) INTO ids;
            PERFORM migration_api_send_run_notice(ids);
            RETURN NULL;
        END $$;

CREATE OR REPLACE FUNCTION migration_api_notice_all() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('migration_api_runs', '*');
            RETURN NULL;
        END $$;

DROP TRIGGER IF EXISTS migration_api_notice_insert ON migration_runs;

CREATE TRIGGER migration_api_notice_insert AFTER INSERT ON migration_runs
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_new('id');

DROP TRIGGER IF EXISTS migration_api_notice_update ON migration_runs;

CREATE TRIGGER migration_api_notice_update AFTER UPDATE ON migration_runs
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_changed('id');

DROP TRIGGER IF EXISTS migration_api_notice_delete ON migration_runs;

CREATE TRIGGER migration_api_notice_delete AFTER DELETE ON migration_runs
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_old('id');

DROP TRIGGER IF EXISTS migration_api_notice_truncate ON migration_runs;

CREATE TRIGGER migration_api_notice_truncate AFTER TRUNCATE ON migration_runs
                FOR EACH STATEMENT EXECUTE FUNCTION migration_api_notice_all();

DROP TRIGGER IF EXISTS migration_api_notice_insert ON workflow_states;

CREATE TRIGGER migration_api_notice_insert AFTER INSERT ON workflow_states
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_new('run_id');

DROP TRIGGER IF EXISTS migration_api_notice_update ON workflow_states;

CREATE TRIGGER migration_api_notice_update AFTER UPDATE ON workflow_states
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_changed('run_id');

DROP TRIGGER IF EXISTS migration_api_notice_delete ON workflow_states;

CREATE TRIGGER migration_api_notice_delete AFTER DELETE ON workflow_states
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_old('run_id');

DROP TRIGGER IF EXISTS migration_api_notice_truncate ON workflow_states;

CREATE TRIGGER migration_api_notice_truncate AFTER TRUNCATE ON workflow_states
                FOR EACH STATEMENT EXECUTE FUNCTION migration_api_notice_all();

DROP TRIGGER IF EXISTS migration_api_notice_insert ON workflow_checkpoints;

CREATE TRIGGER migration_api_notice_insert AFTER INSERT ON workflow_checkpoints
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_new('run_id');

DROP TRIGGER IF EXISTS migration_api_notice_update ON workflow_checkpoints;

CREATE TRIGGER migration_api_notice_update AFTER UPDATE ON workflow_checkpoints
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_changed('run_id');

DROP TRIGGER IF EXISTS migration_api_notice_delete ON workflow_checkpoints;

CREATE TRIGGER migration_api_notice_delete AFTER DELETE ON workflow_checkpoints
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_old('run_id');

DROP TRIGGER IF EXISTS migration_api_notice_truncate ON workflow_checkpoints;

CREATE TRIGGER migration_api_notice_truncate AFTER TRUNCATE ON workflow_checkpoints
                FOR EACH STATEMENT EXECUTE FUNCTION migration_api_notice_all();
