-- Roll-ups: the statements that fold one batch of the change log into the roll-up tables, and
-- the rebuild from the base tables. Loaded by name (db/sqlfile.py); run by changelog/folder.py.
--
-- The roll-up tables (db/migrations/0009_change_log.sql) hold, per UTC hour / day / all time,
-- status and record type: runs, successes, finished, durations (count, exact numeric sum, max),
-- log-bucketed duration histograms (bin k = [1.04^k, 1.04^(k+1)) s, so a percentile read from
-- the bins is within 2 %) and failed runs per error fingerprint. NaN and infinite durations count
-- as "no duration": they are in no sum, maximum or histogram.
--
-- A fold reads `migration_api_fold_delta`: the batch's rows, +1 for a run's row as it now is and
-- -1 for the row it replaced (a heartbeat's pair cancels in the sums, touching no histogram), each
-- with its UTC `hour` and `day`, its duration `bin` (NULL without a finite duration) and, for a
-- failed run, its error `fingerprint` (NULL otherwise), computed once per row by
-- changelog/queries.sql `delta` with the expressions the rebuild below uses. It upserts the sums
-- in key order (two folds never run at once: the folder holds a lock), then deletes emptied rows
-- and recomputes the maxima and first/last-seen times that a removed row may have held, from the
-- base rows of that one hour or day.

-- name: fold

    -- The three run counts from one grouping of the delta: its exact numeric sum of durations,
    -- the costliest aggregate here, is taken once per row instead of three times.
    WITH g AS (
        SELECT hour, day, status, record_type, sum(s) AS n,
               coalesce(sum(s) FILTER (WHERE success), 0) AS succeeded,
               coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0) AS finished,
               coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0) AS dur_n,
               coalesce(sum(s * total_duration::numeric), 0) AS dur_sum,
               max(total_duration) FILTER (WHERE s > 0) AS dur_max
          FROM migration_api_fold_delta GROUP BY hour, day, status, record_type),
    hours AS (
        INSERT INTO migration_api_run_counts_hour AS t (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
        SELECT hour, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max
          FROM g ORDER BY 1, 2, 3
        ON CONFLICT (bucket, status, record_type) DO UPDATE
           SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
               finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
               dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max)),
    days AS (
        INSERT INTO migration_api_run_counts_day AS t (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
        SELECT day, status, record_type, sum(n), sum(succeeded), sum(finished), sum(dur_n), sum(dur_sum), max(dur_max)
          FROM g GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (bucket, status, record_type) DO UPDATE
           SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
               finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
               dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max))
    INSERT INTO migration_api_run_counts_total AS t (status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT status, record_type, sum(n), sum(succeeded), sum(finished), sum(dur_n), sum(dur_sum), max(dur_max)
      FROM g GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    INSERT INTO migration_api_duration_hist_hour AS t (bucket, record_type, status, bin, n)
    SELECT hour, record_type, status, bin, sum(s)
      FROM migration_api_fold_delta WHERE bin IS NOT NULL
     GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO migration_api_duration_hist_day AS t (bucket, record_type, status, bin, n)
    SELECT day, record_type, status, bin, sum(s)
      FROM migration_api_fold_delta WHERE bin IS NOT NULL
     GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO migration_api_duration_hist_total AS t (record_type, status, bin, n)
    SELECT record_type, status, bin, sum(s)
      FROM migration_api_fold_delta WHERE bin IS NOT NULL
     GROUP BY 1, 2, 3 HAVING sum(s) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO migration_api_duration_hist_type AS t (record_type, bin, n)
    SELECT record_type, bin, sum(s)
      FROM migration_api_fold_delta WHERE bin IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (record_type, bin) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO migration_api_duration_hist_all AS t (bin, n)
    SELECT bin, sum(s)
      FROM migration_api_fold_delta WHERE bin IS NOT NULL
     GROUP BY 1 HAVING sum(s) <> 0 ORDER BY 1
    ON CONFLICT (bin) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO migration_api_duration_bins_hour AS t (bucket, bin, n)
    SELECT hour, bin, sum(s)
      FROM migration_api_fold_delta WHERE bin IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (bucket, bin) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO migration_api_duration_bins_day AS t (bucket, bin, n)
    SELECT day, bin, sum(s)
      FROM migration_api_fold_delta WHERE bin IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (bucket, bin) DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO migration_api_error_counts_day AS t (bucket, fingerprint, record_type, n, first_seen, last_seen)
    SELECT day, fingerprint, record_type, sum(s),
           coalesce(min(created_at) FILTER (WHERE s > 0), 'infinity'),
           coalesce(max(created_at) FILTER (WHERE s > 0), '-infinity')
      FROM migration_api_fold_delta WHERE status = 'failed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, fingerprint, record_type) DO UPDATE
       SET n = t.n + excluded.n, first_seen = least(t.first_seen, excluded.first_seen),
           last_seen = greatest(t.last_seen, excluded.last_seen);
    DELETE FROM migration_api_run_counts_hour t USING (SELECT DISTINCT hour AS bucket, status, record_type FROM migration_api_fold_delta WHERE s < 0) k
     WHERE t.bucket = k.bucket AND t.status = k.status AND t.record_type = k.record_type AND t.n = 0;
    DELETE FROM migration_api_run_counts_day t USING (SELECT DISTINCT day AS bucket, status, record_type FROM migration_api_fold_delta WHERE s < 0) k
     WHERE t.bucket = k.bucket AND t.status = k.status AND t.record_type = k.record_type AND t.n = 0;
    DELETE FROM migration_api_run_counts_total t USING (SELECT DISTINCT status, record_type FROM migration_api_fold_delta WHERE s < 0) k
     WHERE t.status = k.status AND t.record_type = k.record_type AND t.n = 0;
    DELETE FROM migration_api_duration_hist_hour t
     USING (SELECT DISTINCT hour AS bucket, record_type, status, bin FROM migration_api_fold_delta WHERE s < 0 AND bin IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.record_type = k.record_type AND t.status = k.status AND t.bin = k.bin AND t.n = 0;
    DELETE FROM migration_api_duration_hist_day t
     USING (SELECT DISTINCT day AS bucket, record_type, status, bin FROM migration_api_fold_delta WHERE s < 0 AND bin IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.record_type = k.record_type AND t.status = k.status AND t.bin = k.bin AND t.n = 0;
    DELETE FROM migration_api_duration_hist_total t
     USING (SELECT DISTINCT record_type, status, bin FROM migration_api_fold_delta WHERE s < 0 AND bin IS NOT NULL) k
     WHERE t.record_type = k.record_type AND t.status = k.status AND t.bin = k.bin AND t.n = 0;
    DELETE FROM migration_api_duration_hist_type t
     USING (SELECT DISTINCT record_type, bin FROM migration_api_fold_delta WHERE s < 0 AND bin IS NOT NULL) k
     WHERE t.record_type = k.record_type AND t.bin = k.bin AND t.n = 0;
    DELETE FROM migration_api_duration_hist_all t
     USING (SELECT DISTINCT bin FROM migration_api_fold_delta WHERE s < 0 AND bin IS NOT NULL) k
     WHERE t.bin = k.bin AND t.n = 0;
    DELETE FROM migration_api_duration_bins_hour t
     USING (SELECT DISTINCT hour AS bucket, bin FROM migration_api_fold_delta WHERE s < 0 AND bin IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.bin = k.bin AND t.n = 0;
    DELETE FROM migration_api_duration_bins_day t
     USING (SELECT DISTINCT day AS bucket, bin FROM migration_api_fold_delta WHERE s < 0 AND bin IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.bin = k.bin AND t.n = 0;
    UPDATE migration_api_run_counts_hour t
       SET dur_max = (SELECT max(r.total_duration) FROM migration_runs r
                       WHERE r.total_duration > '-Infinity'::float8 AND r.total_duration < 'Infinity'::float8
                         AND r.created_at >= t.bucket AND r.created_at < t.bucket + interval '1 hour'
                         AND r.status = t.status AND r.record_type = t.record_type)
      FROM (SELECT hour AS bucket, status, record_type, max(total_duration) AS m
              FROM migration_api_fold_delta WHERE s < 0 GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    UPDATE migration_api_run_counts_day t
       SET dur_max = (SELECT max(h.dur_max) FROM migration_api_run_counts_hour h
                       WHERE h.bucket >= t.bucket AND h.bucket < t.bucket + interval '24 hours'
                         AND h.status = t.status AND h.record_type = t.record_type)
      FROM (SELECT day AS bucket, status, record_type, max(total_duration) AS m
              FROM migration_api_fold_delta WHERE s < 0 GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    UPDATE migration_api_run_counts_total t
       SET dur_max = (SELECT max(y.dur_max) FROM migration_api_run_counts_day y
                       WHERE y.status = t.status AND y.record_type = t.record_type)
      FROM (SELECT status, record_type, max(total_duration) AS m FROM migration_api_fold_delta WHERE s < 0 GROUP BY 1, 2) x
     WHERE t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    DELETE FROM migration_api_error_counts_day t
     USING (SELECT DISTINCT day AS bucket, fingerprint, record_type
              FROM migration_api_fold_delta WHERE s < 0 AND status = 'failed') k
     WHERE t.bucket = k.bucket AND t.fingerprint = k.fingerprint AND t.record_type = k.record_type AND t.n = 0;
    UPDATE migration_api_error_counts_day t
       SET (first_seen, last_seen) = (
           SELECT min(r.created_at), max(r.created_at) FROM migration_runs r
            WHERE r.status = 'failed' AND migration_api_error_fingerprint(r.error_message) = t.fingerprint
              AND r.record_type = t.record_type
              AND r.created_at >= t.bucket AND r.created_at < t.bucket + interval '24 hours')
      FROM (SELECT day AS bucket, fingerprint, record_type,
                   min(created_at) AS lo, max(created_at) AS hi
              FROM migration_api_fold_delta WHERE s < 0 AND status = 'failed' GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.fingerprint = x.fingerprint AND t.record_type = x.record_type
       AND (x.lo <= t.first_seen OR x.hi >= t.last_seen);

-- The run activity (db/migrations/0015_run_activity.sql): for every run of the batch, its newest
-- state or checkpoint time as the base rows hold it now (the engines' run_id indexes), kept only
-- while the run is running; a run that finished or went loses its row. Read committed: a step
-- committed after this statement's snapshot wrote a log row that the next fold takes.
DELETE FROM migration_api_run_activity a
 USING (SELECT DISTINCT run_id FROM migration_api_fold_batch WHERE run_id IS NOT NULL) b
 WHERE a.run_id = b.run_id
   AND NOT EXISTS (SELECT 1 FROM migration_runs r WHERE r.id = b.run_id AND r.status = 'running');
INSERT INTO migration_api_run_activity (run_id, last_step_at)
SELECT id, last_step_at
  FROM (SELECT r.id, greatest((SELECT max(created_at) FROM workflow_states WHERE run_id = r.id),
                              (SELECT max(created_at) FROM workflow_checkpoints WHERE run_id = r.id)) AS last_step_at
          FROM migration_runs r
         WHERE r.status = 'running'
           AND r.id IN (SELECT run_id FROM migration_api_fold_batch WHERE run_id IS NOT NULL)) x
 WHERE last_step_at IS NOT NULL
 ORDER BY id
    ON CONFLICT (run_id) DO UPDATE SET last_step_at = EXCLUDED.last_step_at;

-- name: rebuild
-- In one REPEATABLE READ transaction: the log rows this snapshot covers go, the roll-ups are
-- computed from the base rows of the same snapshot. Log rows committed later stay for the next
-- fold, so nothing is counted twice or missed. Engines are not blocked: the base tables are only
-- read.
DELETE FROM migration_api_changes;
DELETE FROM migration_api_run_counts_hour;
DELETE FROM migration_api_run_counts_day;
DELETE FROM migration_api_run_counts_total;
DELETE FROM migration_api_duration_hist_hour;
DELETE FROM migration_api_duration_hist_day;
DELETE FROM migration_api_duration_hist_total;
DELETE FROM migration_api_duration_hist_type;
DELETE FROM migration_api_duration_hist_all;
DELETE FROM migration_api_duration_bins_hour;
DELETE FROM migration_api_duration_bins_day;
DELETE FROM migration_api_error_counts_day;
DELETE FROM migration_api_run_activity;
CREATE TEMP VIEW migration_api_finite_runs AS
    SELECT created_at, status, record_type, success, error_message,
           CASE WHEN total_duration > '-Infinity'::float8 AND total_duration < 'Infinity'::float8
                THEN total_duration END AS total_duration
      FROM migration_runs;
INSERT INTO migration_api_run_counts_hour
            (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
        SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), status, record_type, count(*), count(*) FILTER (WHERE success),
               count(success), count(total_duration), coalesce(sum(total_duration::numeric), 0), max(total_duration)
          FROM migration_api_finite_runs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

INSERT INTO migration_api_run_counts_day
            (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
        SELECT (date_trunc('day', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), status, record_type, sum(n), sum(succeeded), sum(finished), sum(dur_n),
               sum(dur_sum), max(dur_max)
          FROM migration_api_run_counts_hour GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

INSERT INTO migration_api_run_counts_total
            (status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
        SELECT status, record_type, sum(n), sum(succeeded), sum(finished), sum(dur_n), sum(dur_sum), max(dur_max)
          FROM migration_api_run_counts_day GROUP BY 1, 2 ORDER BY 1, 2;

INSERT INTO migration_api_duration_hist_hour (bucket, record_type, status, bin, n)
        SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, count(*)
          FROM migration_api_finite_runs WHERE total_duration IS NOT NULL GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;

INSERT INTO migration_api_duration_hist_day (bucket, record_type, status, bin, n)
        SELECT (date_trunc('day', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), record_type, status, bin, sum(n)
          FROM migration_api_duration_hist_hour GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;

INSERT INTO migration_api_duration_hist_total (record_type, status, bin, n)
        SELECT record_type, status, bin, sum(n) FROM migration_api_duration_hist_day
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

INSERT INTO migration_api_duration_hist_type (record_type, bin, n)
        SELECT record_type, bin, sum(n) FROM migration_api_duration_hist_total GROUP BY 1, 2 ORDER BY 1, 2;

INSERT INTO migration_api_duration_hist_all (bin, n)
        SELECT bin, sum(n) FROM migration_api_duration_hist_total GROUP BY 1 ORDER BY 1;

INSERT INTO migration_api_duration_bins_hour (bucket, bin, n)
        SELECT bucket, bin, sum(n) FROM migration_api_duration_hist_hour GROUP BY 1, 2 ORDER BY 1, 2;

INSERT INTO migration_api_duration_bins_day (bucket, bin, n)
        SELECT bucket, bin, sum(n) FROM migration_api_duration_hist_day GROUP BY 1, 2 ORDER BY 1, 2;

INSERT INTO migration_api_error_counts_day (bucket, fingerprint, record_type, n, first_seen, last_seen)
        SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), migration_api_error_fingerprint(error_message), record_type, count(*),
               min(created_at), max(created_at)
          FROM migration_api_finite_runs WHERE status = 'failed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
DROP VIEW migration_api_finite_runs;
INSERT INTO migration_api_run_activity (run_id, last_step_at)
SELECT id, last_step_at
  FROM (SELECT r.id, greatest((SELECT max(created_at) FROM workflow_states WHERE run_id = r.id),
                              (SELECT max(created_at) FROM workflow_checkpoints WHERE run_id = r.id)) AS last_step_at
          FROM migration_runs r WHERE r.status = 'running') x
 WHERE last_step_at IS NOT NULL;
