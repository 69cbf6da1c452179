-- The change log's reader: what changelog/folder.py runs. Loaded by name (db/sqlfile.py).
-- The log (migration_api_changes) and its triggers are created by db/migrations/0009_change_log.sql.

-- name: create_temp_tables
-- The folder's own connection keeps these for its life; each fold empties them at commit.
CREATE TEMP TABLE IF NOT EXISTS migration_api_fold_batch (
    run_id UUID, s SMALLINT, created_at TIMESTAMPTZ, status TEXT, record_type TEXT,
    total_duration DOUBLE PRECISION, success BOOLEAN, error_message TEXT,
    logged_at TIMESTAMPTZ, kind TEXT, name TEXT, step_order INTEGER) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS migration_api_fold_delta (
    created_at TIMESTAMPTZ, status TEXT, record_type TEXT, total_duration DOUBLE PRECISION,
    success BOOLEAN, s INTEGER, hour TIMESTAMPTZ, day TIMESTAMPTZ, bin INTEGER, fingerprint TEXT)
    ON COMMIT DELETE ROWS;

-- name: state
-- Once per cycle: what is derived and current, whether the log survived (its sentinel row is
-- gone after a crash of the server emptied the unlogged tables), whether anything waits, and how
-- many of the service's own tables and of its 9 log triggers are missing or disabled (dropped by
-- hand: the folder repairs).
SELECT m.rollups_ready, m.search_ready, m.note,
       EXISTS (SELECT 1 FROM migration_api_log_alive),
       EXISTS (SELECT 1 FROM migration_api_changes),
       (SELECT count(*) FROM unnest(ARRAY[
            'migration_api_run_counts_hour', 'migration_api_run_counts_day', 'migration_api_run_counts_total',
            'migration_api_duration_hist_hour', 'migration_api_duration_hist_day',
            'migration_api_duration_hist_total', 'migration_api_duration_hist_type',
            'migration_api_duration_hist_all', 'migration_api_duration_bins_hour',
            'migration_api_duration_bins_day', 'migration_api_error_counts_day',
            'migration_api_search_docs', 'migration_api_events', 'migration_api_run_activity']) AS t (name)
         WHERE to_regclass(t.name) IS NULL)
     + 9 - (SELECT count(*) FROM pg_trigger
              WHERE tgrelid IN (to_regclass('migration_runs'), to_regclass('workflow_states'),
                                to_regclass('workflow_checkpoints'))
                AND tgname LIKE 'migration\_api\_log\_%' AND tgenabled <> 'D') AS missing
  FROM migration_api_machinery m;

-- name: take_batch
-- Move up to %(limit)s log rows, the oldest first, into this transaction's batch.
WITH moved AS (
    DELETE FROM migration_api_changes
     WHERE ctid = ANY (ARRAY (SELECT ctid FROM migration_api_changes ORDER BY logged_at LIMIT %(limit)s))
    RETURNING run_id, s, created_at, status, record_type, total_duration, success, error_message,
              logged_at, kind, name, step_order)
INSERT INTO migration_api_fold_batch (run_id, s, created_at, status, record_type, total_duration, success,
                                      error_message, logged_at, kind, name, step_order)
SELECT run_id, s, created_at, status, record_type, total_duration, success, error_message,
       logged_at, kind, name, step_order FROM moved;

-- name: vacuum_log
-- The log's deleted rows made free space again, so that engines' appends reuse its pages rather
-- than extend it (sixteen engine connections queue on a relation's extension lock) and a fold's
-- scan of it stays short. The service does not leave this to autovacuum: a server may run without
-- it (this machine's PostgreSQL 15 does), and where it runs it looks once a minute, while sixteen
-- engine connections append some 450,000 rows a minute. No truncation of the file's empty end:
-- PostgreSQL would try for up to 5 s to take an exclusive lock that engines' appends hold off
-- (measured: a fold stalled 5 s under 16 engine connections); the free pages are reused instead.
VACUUM (TRUNCATE false) migration_api_changes;

-- name: batch_summary
-- How many rows, whether a TRUNCATE is among them, and the runs to drop from caches.
SELECT count(*), coalesce(bool_or(run_id IS NULL), false),
       coalesce(array_agg(DISTINCT run_id) FILTER (WHERE run_id IS NOT NULL), '{}')
  FROM migration_api_fold_batch;

-- name: delta
-- The batch as roll-up deltas, row by row (non-finite durations count as none). A run's old and
-- new row are not cancelled against each other even when equal: a maximum that a fold read from
-- the base rows before the change was folded must still see its value removed, or it would stay.
-- Each row's UTC hour and day, duration bin (NULL without a duration) and, for a failed run, error
-- fingerprint are computed here, once (the expressions of rollups/__init__.py and of the rebuild):
-- the roll-up statements group by them some thirty times.
INSERT INTO migration_api_fold_delta (created_at, status, record_type, total_duration, success, s,
                                      hour, day, bin, fingerprint)
SELECT created_at, status, record_type, total_duration, success, s,
       (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
       (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
       CASE WHEN total_duration IS NOT NULL
            THEN floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int END,
       CASE WHEN status = 'failed' THEN migration_api_error_fingerprint(error_message) END
  FROM (SELECT created_at, status, record_type,
               CASE WHEN total_duration > '-Infinity'::float8 AND total_duration < 'Infinity'::float8
                    THEN total_duration END AS total_duration,
               success, error_message, s
          FROM migration_api_fold_batch
         WHERE s <> 0 AND run_id IS NOT NULL) b;

-- name: refresh_search_docs
-- The search documents of the batch's runs, as they are now: a deleted run loses its document, a
-- changed document is rewritten, an unchanged one (a heartbeat, a duration) is left alone, so its
-- trigram index entries are not made again.
DELETE FROM migration_api_search_docs d
 USING (SELECT DISTINCT run_id FROM migration_api_fold_batch WHERE s <> 0) b
 WHERE d.id = b.run_id AND NOT EXISTS (SELECT 1 FROM migration_runs r WHERE r.id = b.run_id);
INSERT INTO migration_api_search_docs AS d (id, doc)
SELECT r.id, migration_api_search_document(r.file_path, r.record_type, r.status, r.error_message, r.id)
  FROM migration_runs r
 WHERE r.id IN (SELECT run_id FROM migration_api_fold_batch WHERE s <> 0)
 ORDER BY r.id
    ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc WHERE d.doc IS DISTINCT FROM EXCLUDED.doc;

-- name: rebuild_search_docs
-- Every run's document, in the rebuild's snapshot; the trigram index is built after the rows.
TRUNCATE migration_api_search_docs;
DROP INDEX IF EXISTS migration_api_search_docs_trgm_idx;
INSERT INTO migration_api_search_docs (id, doc)
SELECT id, migration_api_search_document(file_path, record_type, status, error_message, id) FROM migration_runs;
DO $$ DECLARE trgm_schema TEXT; BEGIN
    SELECT extnamespace::regnamespace::text INTO trgm_schema FROM pg_extension WHERE extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS migration_api_search_docs_trgm_idx '
                       'ON migration_api_search_docs USING gin (doc %I.gin_trgm_ops)', trgm_schema);
    END IF;
END $$;

-- name: mark_stale
UPDATE migration_api_machinery SET rollups_ready = false, search_ready = false, note = %(note)s;

-- name: mark_ready
DELETE FROM migration_api_log_alive;
INSERT INTO migration_api_log_alive (alive) VALUES (true);
UPDATE migration_api_machinery SET rollups_ready = true, search_ready = true, rebuilt_at = now(), note = NULL;

-- name: notify
-- The runs whose cached copies every process of this schema's service drops: `schema:id,id,...`
-- (`schema:*`: all of them).
SELECT pg_notify('migration_api_runs', %(ids)s);
