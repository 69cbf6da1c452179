-- Version 5: statistics roll-ups kept by triggers on migration_runs, error fingerprints, indexes for the now-figures.
-- Released history, kept as it ran; never edited. Version 9 supersedes versions 1-8:
-- a database below version 9 is brought to it by 0009 alone (see db/migrations/README.md).
-- history

CREATE TABLE IF NOT EXISTS migration_api_run_counts_hour (
        bucket TIMESTAMPTZ NOT NULL,
        status TEXT NOT NULL,
        record_type TEXT NOT NULL,
        n BIGINT NOT NULL,
        succeeded BIGINT NOT NULL,
        finished BIGINT NOT NULL,
        dur_n BIGINT NOT NULL,
        dur_sum NUMERIC NOT NULL,
        dur_max DOUBLE PRECISION,
        PRIMARY KEY (bucket, status, record_type));

CREATE TABLE IF NOT EXISTS migration_api_run_counts_day (
        bucket TIMESTAMPTZ NOT NULL,
        status TEXT NOT NULL,
        record_type TEXT NOT NULL,
        n BIGINT NOT NULL,
        succeeded BIGINT NOT NULL,
        finished BIGINT NOT NULL,
        dur_n BIGINT NOT NULL,
        dur_sum NUMERIC NOT NULL,
        dur_max DOUBLE PRECISION,
        PRIMARY KEY (bucket, status, record_type));

CREATE TABLE IF NOT EXISTS migration_api_run_counts_total (
        status TEXT NOT NULL,
        record_type TEXT NOT NULL,
        n BIGINT NOT NULL,
        succeeded BIGINT NOT NULL,
        finished BIGINT NOT NULL,
        dur_n BIGINT NOT NULL,
        dur_sum NUMERIC NOT NULL,
        dur_max DOUBLE PRECISION,
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

CREATE OR REPLACE FUNCTION migration_api_duration_bin(seconds DOUBLE PRECISION) RETURNS INTEGER
        LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
        AS $$ SELECT floor(ln(least(greatest(seconds, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int $$;

CREATE OR REPLACE FUNCTION migration_api_error_fingerprint(message TEXT) RETURNS TEXT
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT coalesce(left(btrim(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(message, '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g'), '([A-Za-z]:)?([A-Za-z0-9_.~-]*[/\\])+[A-Za-z0-9_.~-]+', '<path>', 'g'), '''[^'']*[0-9][^'']*''', '<str>', 'g'), '"[^"]*[0-9][^"]*"', '<str>', 'g'), '(?<![0-9A-Za-z_])(0x)?(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}(?![0-9A-Za-z_])', '<hex>', 'g'), '[0-9]+([.,][0-9]+)*', '<n>', 'g'), '\s+', ' ', 'g')), 300), '') $$;

CREATE OR REPLACE FUNCTION migration_api_runs_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_run_counts_hour AS t (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_run_counts_day AS t (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_run_counts_total AS t (status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_duration_hist_hour AS t (bucket, record_type, status, bin, n)
    SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_duration_hist_day AS t (bucket, record_type, status, bin, n)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_duration_hist_total AS t (record_type, status, bin, n)
    SELECT record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2, 3 HAVING sum(s) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_duration_hist_type AS t (record_type, bin, n)
    SELECT record_type, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (record_type, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_duration_hist_all AS t (bin, n)
    SELECT floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1 HAVING sum(s) <> 0 ORDER BY 1
    ON CONFLICT (bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_duration_bins_hour AS t (bucket, bin, n)
    SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (bucket, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_duration_bins_day AS t (bucket, bin, n)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (bucket, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows)
    INSERT INTO migration_api_error_counts_day AS t (bucket, fingerprint, record_type, n, first_seen, last_seen)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), migration_api_error_fingerprint(error_message), record_type, sum(s),
           coalesce(min(created_at) FILTER (WHERE s > 0), 'infinity'),
           coalesce(max(created_at) FILTER (WHERE s > 0), '-infinity')
      FROM d WHERE status = 'failed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, fingerprint, record_type) DO UPDATE
       SET n = t.n + excluded.n, first_seen = least(t.first_seen, excluded.first_seen),
           last_seen = greatest(t.last_seen, excluded.last_seen);
    RETURN NULL;
    END $fn$;

CREATE OR REPLACE FUNCTION migration_api_runs_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_run_counts_hour AS t (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_run_counts_day AS t (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_run_counts_total AS t (status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_duration_hist_hour AS t (bucket, record_type, status, bin, n)
    SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_duration_hist_day AS t (bucket, record_type, status, bin, n)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_duration_hist_total AS t (record_type, status, bin, n)
    SELECT record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2, 3 HAVING sum(s) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_duration_hist_type AS t (record_type, bin, n)
    SELECT record_type, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (record_type, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_duration_hist_all AS t (bin, n)
    SELECT floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1 HAVING sum(s) <> 0 ORDER BY 1
    ON CONFLICT (bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_duration_bins_hour AS t (bucket, bin, n)
    SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (bucket, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    INSERT INTO migration_api_duration_bins_day AS t (bucket, bin, n)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (bucket, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.error_message IS NOT DISTINCT FROM o.error_message) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.error_message IS NOT DISTINCT FROM o.error_message))
    INSERT INTO migration_api_error_counts_day AS t (bucket, fingerprint, record_type, n, first_seen, last_seen)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), migration_api_error_fingerprint(error_message), record_type, sum(s),
           coalesce(min(created_at) FILTER (WHERE s > 0), 'infinity'),
           coalesce(max(created_at) FILTER (WHERE s > 0), '-infinity')
      FROM d WHERE status = 'failed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, fingerprint, record_type) DO UPDATE
       SET n = t.n + excluded.n, first_seen = least(t.first_seen, excluded.first_seen),
           last_seen = greatest(t.last_seen, excluded.last_seen);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_run_counts_hour t USING (SELECT DISTINCT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, status, record_type FROM d WHERE s < 0) k
     WHERE t.bucket = k.bucket AND t.status = k.status AND t.record_type = k.record_type AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_run_counts_day t USING (SELECT DISTINCT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, status, record_type FROM d WHERE s < 0) k
     WHERE t.bucket = k.bucket AND t.status = k.status AND t.record_type = k.record_type AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_run_counts_total t USING (SELECT DISTINCT status, record_type FROM d WHERE s < 0) k
     WHERE t.status = k.status AND t.record_type = k.record_type AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_duration_hist_hour t
     USING (SELECT DISTINCT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, record_type AS record_type, status AS status, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.record_type = k.record_type AND t.status = k.status AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_duration_hist_day t
     USING (SELECT DISTINCT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, record_type AS record_type, status AS status, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.record_type = k.record_type AND t.status = k.status AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_duration_hist_total t
     USING (SELECT DISTINCT record_type AS record_type, status AS status, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.record_type = k.record_type AND t.status = k.status AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_duration_hist_type t
     USING (SELECT DISTINCT record_type AS record_type, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.record_type = k.record_type AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_duration_hist_all t
     USING (SELECT DISTINCT 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_duration_bins_hour t
     USING (SELECT DISTINCT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    DELETE FROM migration_api_duration_bins_day t
     USING (SELECT DISTINCT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.error_message IS NOT DISTINCT FROM o.error_message) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.error_message IS NOT DISTINCT FROM o.error_message))
    DELETE FROM migration_api_error_counts_day t
     USING (SELECT DISTINCT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, migration_api_error_fingerprint(error_message) AS fingerprint, record_type
              FROM d WHERE s < 0 AND status = 'failed') k
     WHERE t.bucket = k.bucket AND t.fingerprint = k.fingerprint AND t.record_type = k.record_type AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    UPDATE migration_api_run_counts_hour t
       SET dur_max = (SELECT max(r.total_duration) FROM migration_runs r
                       WHERE r.created_at >= t.bucket AND r.created_at < t.bucket + interval '1 hour'
                         AND r.status = t.status AND r.record_type = t.record_type)
      FROM (SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, status, record_type, max(total_duration) AS m
              FROM d WHERE s < 0 GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    UPDATE migration_api_run_counts_day t
       SET dur_max = (SELECT max(h.dur_max) FROM migration_api_run_counts_hour h
                       WHERE h.bucket >= t.bucket AND h.bucket < t.bucket + interval '24 hours'
                         AND h.status = t.status AND h.record_type = t.record_type)
      FROM (SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, status, record_type, max(total_duration) AS m
              FROM d WHERE s < 0 GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success))
    UPDATE migration_api_run_counts_total t
       SET dur_max = (SELECT max(y.dur_max) FROM migration_api_run_counts_day y
                       WHERE y.status = t.status AND y.record_type = t.record_type)
      FROM (SELECT status, record_type, max(total_duration) AS m FROM d WHERE s < 0 GROUP BY 1, 2) x
     WHERE t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.error_message IS NOT DISTINCT FROM o.error_message) UNION ALL SELECT created_at, status, record_type, total_duration, success, error_message, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type AND n.error_message IS NOT DISTINCT FROM o.error_message))
    UPDATE migration_api_error_counts_day t
       SET (first_seen, last_seen) = (
           SELECT min(r.created_at), max(r.created_at) FROM migration_runs r
            WHERE r.status = 'failed' AND migration_api_error_fingerprint(r.error_message) = t.fingerprint
              AND r.record_type = t.record_type
              AND r.created_at >= t.bucket AND r.created_at < t.bucket + interval '24 hours')
      FROM (SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, migration_api_error_fingerprint(error_message) AS fingerprint, record_type,
                   min(created_at) AS lo, max(created_at) AS hi
              FROM d WHERE s < 0 AND status = 'failed' GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.fingerprint = x.fingerprint AND t.record_type = x.record_type
       AND (x.lo <= t.first_seen OR x.hi >= t.last_seen);
    RETURN NULL;
    END $fn$;

CREATE OR REPLACE FUNCTION migration_api_runs_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_run_counts_hour AS t (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_run_counts_day AS t (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_run_counts_total AS t (status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (status, record_type) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_duration_hist_hour AS t (bucket, record_type, status, bin, n)
    SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_duration_hist_day AS t (bucket, record_type, status, bin, n)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_duration_hist_total AS t (record_type, status, bin, n)
    SELECT record_type, status, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2, 3 HAVING sum(s) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (record_type, status, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_duration_hist_type AS t (record_type, bin, n)
    SELECT record_type, floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (record_type, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_duration_hist_all AS t (bin, n)
    SELECT floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1 HAVING sum(s) <> 0 ORDER BY 1
    ON CONFLICT (bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_duration_bins_hour AS t (bucket, bin, n)
    SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (bucket, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_duration_bins_day AS t (bucket, bin, n)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY 1, 2 HAVING sum(s) <> 0 ORDER BY 1, 2
    ON CONFLICT (bucket, bin) DO UPDATE SET n = t.n + excluded.n;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    INSERT INTO migration_api_error_counts_day AS t (bucket, fingerprint, record_type, n, first_seen, last_seen)
    SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), migration_api_error_fingerprint(error_message), record_type, sum(s),
           coalesce(min(created_at) FILTER (WHERE s > 0), 'infinity'),
           coalesce(max(created_at) FILTER (WHERE s > 0), '-infinity')
      FROM d WHERE status = 'failed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, fingerprint, record_type) DO UPDATE
       SET n = t.n + excluded.n, first_seen = least(t.first_seen, excluded.first_seen),
           last_seen = greatest(t.last_seen, excluded.last_seen);
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_run_counts_hour t USING (SELECT DISTINCT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, status, record_type FROM d WHERE s < 0) k
     WHERE t.bucket = k.bucket AND t.status = k.status AND t.record_type = k.record_type AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_run_counts_day t USING (SELECT DISTINCT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, status, record_type FROM d WHERE s < 0) k
     WHERE t.bucket = k.bucket AND t.status = k.status AND t.record_type = k.record_type AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_run_counts_total t USING (SELECT DISTINCT status, record_type FROM d WHERE s < 0) k
     WHERE t.status = k.status AND t.record_type = k.record_type AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_duration_hist_hour t
     USING (SELECT DISTINCT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, record_type AS record_type, status AS status, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.record_type = k.record_type AND t.status = k.status AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_duration_hist_day t
     USING (SELECT DISTINCT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, record_type AS record_type, status AS status, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.record_type = k.record_type AND t.status = k.status AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_duration_hist_total t
     USING (SELECT DISTINCT record_type AS record_type, status AS status, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.record_type = k.record_type AND t.status = k.status AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_duration_hist_type t
     USING (SELECT DISTINCT record_type AS record_type, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.record_type = k.record_type AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_duration_hist_all t
     USING (SELECT DISTINCT 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_duration_bins_hour t
     USING (SELECT DISTINCT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_duration_bins_day t
     USING (SELECT DISTINCT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, 
                            floor(ln(least(greatest(total_duration, 0.001::float8), 1000000000.0::float8)) / 0.039220713153281295)::int AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE t.bucket = k.bucket AND t.bin = k.bin AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    DELETE FROM migration_api_error_counts_day t
     USING (SELECT DISTINCT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, migration_api_error_fingerprint(error_message) AS fingerprint, record_type
              FROM d WHERE s < 0 AND status = 'failed') k
     WHERE t.bucket = k.bucket AND t.fingerprint = k.fingerprint AND t.record_type = k.record_type AND t.n = 0;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    UPDATE migration_api_run_counts_hour t
       SET dur_max = (SELECT max(r.total_duration) FROM migration_runs r
                       WHERE r.created_at >= t.bucket AND r.created_at < t.bucket + interval '1 hour'
                         AND r.status = t.status AND r.record_type = t.record_type)
      FROM (SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, status, record_type, max(total_duration) AS m
              FROM d WHERE s < 0 GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    UPDATE migration_api_run_counts_day t
       SET dur_max = (SELECT max(h.dur_max) FROM migration_api_run_counts_hour h
                       WHERE h.bucket >= t.bucket AND h.bucket < t.bucket + interval '24 hours'
                         AND h.status = t.status AND h.record_type = t.record_type)
      FROM (SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, status, record_type, max(total_duration) AS m
              FROM d WHERE s < 0 GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    UPDATE migration_api_run_counts_total t
       SET dur_max = (SELECT max(y.dur_max) FROM migration_api_run_counts_day y
                       WHERE y.status = t.status AND y.record_type = t.record_type)
      FROM (SELECT status, record_type, max(total_duration) AS m FROM d WHERE s < 0 GROUP BY 1, 2) x
     WHERE t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    WITH d AS (SELECT created_at, status, record_type, total_duration, success, error_message, -1 AS s FROM old_rows)
    UPDATE migration_api_error_counts_day t
       SET (first_seen, last_seen) = (
           SELECT min(r.created_at), max(r.created_at) FROM migration_runs r
            WHERE r.status = 'failed' AND migration_api_error_fingerprint(r.error_message) = t.fingerprint
              AND r.record_type = t.record_type
              AND r.created_at >= t.bucket AND r.created_at < t.bucket + interval '24 hours')
      FROM (SELECT (date_trunc('day', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS bucket, migration_api_error_fingerprint(error_message) AS fingerprint, record_type,
                   min(created_at) AS lo, max(created_at) AS hi
              FROM d WHERE s < 0 AND status = 'failed' GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.fingerprint = x.fingerprint AND t.record_type = x.record_type
       AND (x.lo <= t.first_seen OR x.hi >= t.last_seen);
    RETURN NULL;
    END $fn$;

CREATE OR REPLACE FUNCTION migration_api_runs_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
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
    RETURN NULL;
    END $fn$;

DROP TRIGGER IF EXISTS migration_api_runs_rollup_insert ON migration_runs;

CREATE TRIGGER migration_api_runs_rollup_insert AFTER INSERT ON migration_runs
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION migration_api_runs_rollup_insert();

DROP TRIGGER IF EXISTS migration_api_runs_rollup_update ON migration_runs;

CREATE TRIGGER migration_api_runs_rollup_update AFTER UPDATE ON migration_runs
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION migration_api_runs_rollup_update();

DROP TRIGGER IF EXISTS migration_api_runs_rollup_delete ON migration_runs;

CREATE TRIGGER migration_api_runs_rollup_delete AFTER DELETE ON migration_runs
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION migration_api_runs_rollup_delete();

DROP TRIGGER IF EXISTS migration_api_runs_rollup_truncate ON migration_runs;

CREATE TRIGGER migration_api_runs_rollup_truncate AFTER TRUNCATE ON migration_runs
        FOR EACH STATEMENT EXECUTE FUNCTION migration_api_runs_rollup_truncate();

TRUNCATE migration_api_run_counts_hour, migration_api_run_counts_day, migration_api_run_counts_total, migration_api_duration_hist_hour, migration_api_duration_hist_day, migration_api_duration_hist_total, migration_api_duration_hist_type, migration_api_duration_hist_all, migration_api_duration_bins_hour, migration_api_duration_bins_day, migration_api_error_counts_day;

INSERT INTO migration_api_run_counts_hour
            (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
        SELECT (date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), status, record_type, count(*), count(*) FILTER (WHERE success),
               count(success), count(total_duration), coalesce(sum(total_duration::numeric), 0), max(total_duration)
          FROM migration_runs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

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
          FROM migration_runs WHERE total_duration IS NOT NULL GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;

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
          FROM migration_runs WHERE status = 'failed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

ANALYZE migration_api_run_counts_hour;

ANALYZE migration_api_run_counts_day;

ANALYZE migration_api_run_counts_total;

ANALYZE migration_api_duration_hist_hour;

ANALYZE migration_api_duration_hist_day;

ANALYZE migration_api_duration_hist_total;

ANALYZE migration_api_duration_hist_type;

ANALYZE migration_api_duration_hist_all;

ANALYZE migration_api_duration_bins_hour;

ANALYZE migration_api_duration_bins_day;

ANALYZE migration_api_error_counts_day;

CREATE INDEX IF NOT EXISTS migration_api_runs_running_updated_at_idx
        ON migration_runs (updated_at) WHERE status = 'running';

CREATE INDEX IF NOT EXISTS migration_api_runs_completed_at_status_idx
        ON migration_runs (completed_at, status) WHERE completed_at IS NOT NULL;

CREATE INDEX IF NOT EXISTS migration_api_runs_failed_created_at_idx
        ON migration_runs (created_at) WHERE status = 'failed';

CREATE INDEX IF NOT EXISTS migration_api_runs_failed_fingerprint_idx
        ON migration_runs (migration_api_error_fingerprint(error_message), created_at) WHERE status = 'failed';

CREATE INDEX IF NOT EXISTS migration_api_states_created_at_idx ON workflow_states (created_at);

CREATE INDEX IF NOT EXISTS migration_api_checkpoints_created_at_idx ON workflow_checkpoints (created_at);
