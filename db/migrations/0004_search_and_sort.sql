-- Version 4: search and sort: trigram index over the searched fields, file-name and id prefixes, sort keys.
-- Released history, kept as it ran; never edited. Version 9 supersedes versions 1-8:
-- a database below version 9 is brought to it by 0009 alone (see db/migrations/README.md).
-- history

DO $$ BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'pg_trgm unavailable (%), search runs without a trigram index', SQLERRM;
    END $$;

CREATE OR REPLACE FUNCTION migration_api_search_document(
            file_path TEXT, record_type TEXT, status TEXT, error_message TEXT, id UUID)
        RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN file_path || chr(31) || record_type || chr(31) || status || chr(31)
               || coalesce(error_message, '') || chr(31) || id::text;

CREATE OR REPLACE FUNCTION migration_api_file_name(file_path TEXT)
        RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN lower(reverse(split_part(reverse(replace(file_path, '\', '/')), '/', 1)));

CREATE INDEX IF NOT EXISTS migration_runs_lower_file_path_idx
        ON migration_runs (lower(file_path) text_pattern_ops);

CREATE INDEX IF NOT EXISTS migration_runs_file_name_idx
        ON migration_runs (migration_api_file_name(file_path) text_pattern_ops);

DO $$ DECLARE trgm_schema TEXT; BEGIN
        SELECT extnamespace::regnamespace::text INTO trgm_schema FROM pg_extension WHERE extname = 'pg_trgm';
        IF trgm_schema IS NOT NULL THEN
            EXECUTE format('CREATE INDEX IF NOT EXISTS migration_runs_search_trgm_idx ON migration_runs '
                           'USING gin (migration_api_search_document(file_path, record_type, status, '
                           'error_message, id) %I.gin_trgm_ops)', trgm_schema);
        END IF;
    END $$;

ANALYZE migration_runs;

CREATE INDEX IF NOT EXISTS migration_runs_updated_at_id_idx ON migration_runs USING btree (updated_at, id);

CREATE INDEX IF NOT EXISTS migration_runs_completed_at_id_idx ON migration_runs USING btree (completed_at, id);

CREATE INDEX IF NOT EXISTS migration_runs_total_duration_id_idx ON migration_runs USING btree (total_duration, id);
