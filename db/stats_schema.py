"""Statistics roll-ups: tables kept exact by statement-level triggers on `migration_runs`.

Why roll-ups: whole-table statistics over a million runs take seconds; the roll-ups hold one row
per (hour, status, record_type) and per duration bin, so a statistic reads thousands of rows, not
millions. Triggers (not the API) maintain them, so rows written by engines with plain SQL count
the same as rows written through the API, and a figure is current as soon as the write commits.

Each trigger aggregates its statement's transition table(s) into a delta per group and upserts
it (`INSERT ... ON CONFLICT DO UPDATE SET n = t.n + excluded.n`), in key order. Rows an UPDATE
does not change in any rolled-up column cancel out and touch nothing, so heartbeat updates of
`updated_at` or `error_message` on a running run lock no roll-up row.

Contention: concurrent transactions that add runs of the same status and record type in the same
hour update the same roll-up rows, so the second waits for the first to commit (microseconds for
an autocommit INSERT; as long as the transaction for a long one). Two multi-statement transactions
that touch two groups in opposite orders can deadlock; PostgreSQL then aborts one of them, which
the engine retries as for any deadlock. We accept this: runs are written once per start and once
per finish, not per record.

`dur_max` only grows through upserts; when a statement removes a value that may have been the
maximum, the group's maximum is recomputed from the base rows of that hour (an index range of
one hour), and the day's from its hours.

Everything here is created in one migration, in one transaction: the triggers first (their
creation locks `migration_runs` against writes until commit), then the backfill from the
existing rows, so no write can fall between the two. The backfill empties the roll-ups first,
so running it again is harmless.

All names start with `migration_api_`.
"""

from __future__ import annotations

from typing import Final

# Duration histogram: bin k holds durations in [1.04**k, 1.04**(k+1)) seconds, so the bin's
# geometric middle 1.04**(k+0.5) is within 2 % of any duration in it. Durations are clamped to
# [0.001 s, 1e9 s] first (NaN counts as 1e9), so that any float an engine writes has a bin.
HIST_BASE: Final = 1.04
HIST_LN_BASE: Final = 0.039220713153281296  # ln(1.04)
HIST_MIN_SECONDS: Final = 0.001
HIST_MAX_SECONDS: Final = 1e9


def bin_sql(column: str) -> str:
    """The bin of `column` as SQL, identical to `migration_api_duration_bin` (usable without it)."""
    clamped = f"least(greatest({column}, {HIST_MIN_SECONDS}::float8), {HIST_MAX_SECONDS}::float8)"
    return f"floor(ln({clamped}) / {HIST_LN_BASE})::int"


def hour_sql(column: str) -> str:
    """The UTC hour `column` falls in (independent of the session's TimeZone)."""
    return f"(date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def day_sql(column: str) -> str:
    """The UTC day `column` falls in (independent of the session's TimeZone)."""
    return f"(date_trunc('day', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


# (pattern, replacement), applied in this order by `migration_api_error_fingerprint`. The patterns
# mean the same in PostgreSQL's regular expressions and in Python's `re` (the tests use both).
FINGERPRINT_STEPS: Final = (
    # UUIDs
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<id>"),
    # file paths: names joined by / or \\, with an optional drive letter
    (r"([A-Za-z]:)?([A-Za-z0-9_.~-]*[/\\])+[A-Za-z0-9_.~-]+", "<path>"),
    # quoted values with a digit in them (quoted field names stay: they tell errors apart)
    (r"'[^']*[0-9][^']*'", "<str>"),
    (r'"[^"]*[0-9][^"]*"', "<str>"),
    # hex ids: 8+ hex characters with a digit and a letter, not part of a longer word
    (r"(?<![0-9A-Za-z_])(0x)?(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}(?![0-9A-Za-z_])", "<hex>"),
    # numbers
    (r"[0-9]+([.,][0-9]+)*", "<n>"),
    (r"\s+", " "),
)
FINGERPRINT_MAX_CHARS: Final = 300


def fingerprint_sql(column: str) -> str:
    """The normalised error text of `column`, identical to `migration_api_error_fingerprint`:
    the FINGERPRINT_STEPS replacements, trimmed, cut at 300 characters; NULL becomes ''."""
    expr = column
    for pattern, replacement in FINGERPRINT_STEPS:
        expr = f"regexp_replace({expr}, {_literal(pattern)}, {_literal(replacement)}, 'g')"
    return f"coalesce(left(btrim({expr}), {FINGERPRINT_MAX_CHARS}), '')"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


ROLLUP_TABLES: Final = (
    "migration_api_run_counts_hour",
    "migration_api_run_counts_day",
    "migration_api_run_counts_total",
    "migration_api_duration_hist_hour",
    "migration_api_duration_hist_day",
    "migration_api_duration_hist_total",
    "migration_api_duration_hist_type",
    "migration_api_duration_hist_all",
    "migration_api_duration_bins_hour",
    "migration_api_duration_bins_day",
    "migration_api_error_counts_day",
)

_COUNTS_COLUMNS: Final = """
        status TEXT NOT NULL,
        record_type TEXT NOT NULL,
        n BIGINT NOT NULL,
        succeeded BIGINT NOT NULL,
        finished BIGINT NOT NULL,
        dur_n BIGINT NOT NULL,
        dur_sum NUMERIC NOT NULL,
        dur_max DOUBLE PRECISION"""

CREATE_TABLES: Final = (
    # Runs by the UTC hour / day of created_at: counts, successes, finished (success not null),
    # durations (count, exact sum as numeric so that + and - cancel exactly, max).
    f"""CREATE TABLE IF NOT EXISTS migration_api_run_counts_hour (
        bucket TIMESTAMPTZ NOT NULL,{_COUNTS_COLUMNS},
        PRIMARY KEY (bucket, status, record_type))""",
    f"""CREATE TABLE IF NOT EXISTS migration_api_run_counts_day (
        bucket TIMESTAMPTZ NOT NULL,{_COUNTS_COLUMNS},
        PRIMARY KEY (bucket, status, record_type))""",
    f"""CREATE TABLE IF NOT EXISTS migration_api_run_counts_total ({_COUNTS_COLUMNS},
        PRIMARY KEY (status, record_type))""",
    # Durations (total_duration not null) by log bin, per hour / day / all time.
    """CREATE TABLE IF NOT EXISTS migration_api_duration_hist_hour (
        bucket TIMESTAMPTZ NOT NULL, record_type TEXT NOT NULL, status TEXT NOT NULL,
        bin INTEGER NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (bucket, record_type, status, bin))""",
    """CREATE TABLE IF NOT EXISTS migration_api_duration_hist_day (
        bucket TIMESTAMPTZ NOT NULL, record_type TEXT NOT NULL, status TEXT NOT NULL,
        bin INTEGER NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (bucket, record_type, status, bin))""",
    """CREATE TABLE IF NOT EXISTS migration_api_duration_hist_total (
        record_type TEXT NOT NULL, status TEXT NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (record_type, status, bin))""",
    # All time per record type, and for all runs: what /stats without a window reads.
    """CREATE TABLE IF NOT EXISTS migration_api_duration_hist_type (
        record_type TEXT NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (record_type, bin))""",
    """CREATE TABLE IF NOT EXISTS migration_api_duration_hist_all (
        bin INTEGER NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (bin))""",
    # The same for every status and record type together: what the history charts read.
    """CREATE TABLE IF NOT EXISTS migration_api_duration_bins_hour (
        bucket TIMESTAMPTZ NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (bucket, bin))""",
    """CREATE TABLE IF NOT EXISTS migration_api_duration_bins_day (
        bucket TIMESTAMPTZ NOT NULL, bin INTEGER NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (bucket, bin))""",
    # Failed runs by UTC day of created_at, error fingerprint and record type.
    """CREATE TABLE IF NOT EXISTS migration_api_error_counts_day (
        bucket TIMESTAMPTZ NOT NULL, fingerprint TEXT NOT NULL, record_type TEXT NOT NULL,
        n BIGINT NOT NULL, first_seen TIMESTAMPTZ NOT NULL, last_seen TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (bucket, fingerprint, record_type))""",
)

CREATE_FUNCTIONS: Final = (
    f"""CREATE OR REPLACE FUNCTION migration_api_duration_bin(seconds DOUBLE PRECISION) RETURNS INTEGER
        LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
        AS $$ SELECT {bin_sql("seconds")} $$""",
    f"""CREATE OR REPLACE FUNCTION migration_api_error_fingerprint(message TEXT) RETURNS TEXT
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT {fingerprint_sql("message")} $$""",
)

# The delta of one statement: the rows it added (s = +1) and removed (s = -1). For an UPDATE
# only rows whose rolled-up columns changed take part, so heartbeats touch no roll-up row.
_D_COLS: Final = "created_at, status, record_type, total_duration, success, error_message"
_SAME_RUN: Final = (
    "n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type"
    " AND n.total_duration IS NOT DISTINCT FROM o.total_duration AND n.success IS NOT DISTINCT FROM o.success"
)
_SAME_ERROR: Final = (
    "n.id = o.id AND n.created_at = o.created_at AND n.status = o.status AND n.record_type = o.record_type"
    " AND n.error_message IS NOT DISTINCT FROM o.error_message"
)
_INSERT_DELTA: Final = f"SELECT {_D_COLS}, 1 AS s FROM new_rows"
_DELETE_DELTA: Final = f"SELECT {_D_COLS}, -1 AS s FROM old_rows"


def _update_delta(same: str) -> str:
    return (
        f"SELECT {_D_COLS}, -1 AS s FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE {same})"
        f" UNION ALL SELECT {_D_COLS}, 1 AS s FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE {same})"
    )


def _counts_upsert(table: str, bucket: str | None, delta: str) -> str:
    keys = ("bucket, " if bucket else "") + "status, record_type"
    group = "1, 2, 3" if bucket else "1, 2"
    return f"""
    WITH d AS ({delta})
    INSERT INTO {table} AS t ({keys}, n, succeeded, finished, dur_n, dur_sum, dur_max)
    SELECT {f"{bucket}, " if bucket else ""}status, record_type, sum(s),
           coalesce(sum(s) FILTER (WHERE success), 0),
           coalesce(sum(s) FILTER (WHERE success IS NOT NULL), 0),
           coalesce(sum(s) FILTER (WHERE total_duration IS NOT NULL), 0),
           coalesce(sum(s * total_duration::numeric), 0),
           max(total_duration) FILTER (WHERE s > 0)
      FROM d GROUP BY {group} ORDER BY {group}
    ON CONFLICT ({keys}) DO UPDATE
       SET n = t.n + excluded.n, succeeded = t.succeeded + excluded.succeeded,
           finished = t.finished + excluded.finished, dur_n = t.dur_n + excluded.dur_n,
           dur_sum = t.dur_sum + excluded.dur_sum, dur_max = greatest(t.dur_max, excluded.dur_max);"""


def _hist_upsert(table: str, keys: dict[str, str], delta: str) -> str:
    """Upsert the delta of a histogram keyed by `keys` (column: expression over the delta) and bin."""
    columns = [*keys, "bin"]
    values = [*keys.values(), bin_sql("total_duration")]
    group = ", ".join(str(i) for i in range(1, len(columns) + 1))
    return f"""
    WITH d AS ({delta})
    INSERT INTO {table} AS t ({", ".join(columns)}, n)
    SELECT {", ".join(values)}, sum(s)
      FROM d WHERE total_duration IS NOT NULL
     GROUP BY {group} HAVING sum(s) <> 0 ORDER BY {group}
    ON CONFLICT ({", ".join(columns)}) DO UPDATE SET n = t.n + excluded.n;"""


def _histograms() -> tuple[tuple[str, dict[str, str]], ...]:
    """Every histogram roll-up with its key columns (besides bin) as expressions over a delta row."""
    hour, day = hour_sql("created_at"), day_sql("created_at")
    split = {"record_type": "record_type", "status": "status"}
    return (
        ("migration_api_duration_hist_hour", {"bucket": hour, **split}),
        ("migration_api_duration_hist_day", {"bucket": day, **split}),
        ("migration_api_duration_hist_total", split),
        ("migration_api_duration_hist_type", {"record_type": "record_type"}),
        ("migration_api_duration_hist_all", {}),
        ("migration_api_duration_bins_hour", {"bucket": hour}),
        ("migration_api_duration_bins_day", {"bucket": day}),
    )


def _errors_upsert(delta: str) -> str:
    return f"""
    WITH d AS ({delta})
    INSERT INTO migration_api_error_counts_day AS t (bucket, fingerprint, record_type, n, first_seen, last_seen)
    SELECT {day_sql("created_at")}, migration_api_error_fingerprint(error_message), record_type, sum(s),
           coalesce(min(created_at) FILTER (WHERE s > 0), 'infinity'),
           coalesce(max(created_at) FILTER (WHERE s > 0), '-infinity')
      FROM d WHERE status = 'failed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, fingerprint, record_type) DO UPDATE
       SET n = t.n + excluded.n, first_seen = least(t.first_seen, excluded.first_seen),
           last_seen = greatest(t.last_seen, excluded.last_seen);"""


def _counts_cleanup(run_delta: str) -> str:
    """After the upserts: drop the count rows a statement emptied."""
    hour, day = hour_sql("created_at"), day_sql("created_at")
    return (
        "".join(
            f"""
    WITH d AS ({run_delta})
    DELETE FROM {table} t USING (SELECT DISTINCT {bucket} AS bucket, status, record_type FROM d WHERE s < 0) k
     WHERE t.bucket = k.bucket AND t.status = k.status AND t.record_type = k.record_type AND t.n = 0;"""
            for table, bucket in (("migration_api_run_counts_hour", hour), ("migration_api_run_counts_day", day))
        )
        + f"""
    WITH d AS ({run_delta})
    DELETE FROM migration_api_run_counts_total t USING (SELECT DISTINCT status, record_type FROM d WHERE s < 0) k
     WHERE t.status = k.status AND t.record_type = k.record_type AND t.n = 0;"""
    )


def _duration_cleanup(run_delta: str) -> str:
    """After the upserts: drop emptied histogram rows and recompute the maxima that a removed
    duration may have held (from the base rows of that one hour, or the day's hours)."""
    hour, day = hour_sql("created_at"), day_sql("created_at")
    hist_cleanup = "".join(
        f"""
    WITH d AS ({run_delta})
    DELETE FROM {table} t
     USING (SELECT DISTINCT {"".join(f"{expr} AS {col}, " for col, expr in keys.items())}
                            {bin_sql("total_duration")} AS bin
              FROM d WHERE s < 0 AND total_duration IS NOT NULL) k
     WHERE {"".join(f"t.{col} = k.{col} AND " for col in keys)}t.bin = k.bin AND t.n = 0;"""
        for table, keys in _histograms()
    )
    return f"""{hist_cleanup}
    WITH d AS ({run_delta})
    UPDATE migration_api_run_counts_hour t
       SET dur_max = (SELECT max(r.total_duration) FROM migration_runs r
                       WHERE r.created_at >= t.bucket AND r.created_at < t.bucket + interval '1 hour'
                         AND r.status = t.status AND r.record_type = t.record_type)
      FROM (SELECT {hour} AS bucket, status, record_type, max(total_duration) AS m
              FROM d WHERE s < 0 GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    WITH d AS ({run_delta})
    UPDATE migration_api_run_counts_day t
       SET dur_max = (SELECT max(h.dur_max) FROM migration_api_run_counts_hour h
                       WHERE h.bucket >= t.bucket AND h.bucket < t.bucket + interval '24 hours'
                         AND h.status = t.status AND h.record_type = t.record_type)
      FROM (SELECT {day} AS bucket, status, record_type, max(total_duration) AS m
              FROM d WHERE s < 0 GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;
    WITH d AS ({run_delta})
    UPDATE migration_api_run_counts_total t
       SET dur_max = (SELECT max(y.dur_max) FROM migration_api_run_counts_day y
                       WHERE y.status = t.status AND y.record_type = t.record_type)
      FROM (SELECT status, record_type, max(total_duration) AS m FROM d WHERE s < 0 GROUP BY 1, 2) x
     WHERE t.status = x.status AND t.record_type = x.record_type AND x.m >= t.dur_max;"""


def _error_cleanup(error_delta: str) -> str:
    """After the upserts: drop emptied error groups and recompute first/last seen that a removed
    failure may have held (from the base rows of that day)."""
    day = day_sql("created_at")
    return f"""
    WITH d AS ({error_delta})
    DELETE FROM migration_api_error_counts_day t
     USING (SELECT DISTINCT {day} AS bucket, migration_api_error_fingerprint(error_message) AS fingerprint, record_type
              FROM d WHERE s < 0 AND status = 'failed') k
     WHERE t.bucket = k.bucket AND t.fingerprint = k.fingerprint AND t.record_type = k.record_type AND t.n = 0;
    WITH d AS ({error_delta})
    UPDATE migration_api_error_counts_day t
       SET (first_seen, last_seen) = (
           SELECT min(r.created_at), max(r.created_at) FROM migration_runs r
            WHERE r.status = 'failed' AND migration_api_error_fingerprint(r.error_message) = t.fingerprint
              AND r.record_type = t.record_type
              AND r.created_at >= t.bucket AND r.created_at < t.bucket + interval '24 hours')
      FROM (SELECT {day} AS bucket, migration_api_error_fingerprint(error_message) AS fingerprint, record_type,
                   min(created_at) AS lo, max(created_at) AS hi
              FROM d WHERE s < 0 AND status = 'failed' GROUP BY 1, 2, 3) x
     WHERE t.bucket = x.bucket AND t.fingerprint = x.fingerprint AND t.record_type = x.record_type
       AND (x.lo <= t.first_seen OR x.hi >= t.last_seen);"""


def _when(condition: str, statements: str) -> str:
    return f"""
    IF {condition} THEN{statements}
    END IF;"""


def _any_row(tables: tuple[str, ...], condition: str) -> str:
    """Whether a row of the statement's transition tables meets `condition` (a cheap scan of the
    few rows a statement touched; it lets the trigger skip statements that would change nothing)."""
    return " OR ".join(f"EXISTS (SELECT 1 FROM {table} WHERE {condition})" for table in tables)


def _trigger_function(name: str, run_delta: str, error_delta: str, tables: tuple[str, ...]) -> str:
    """The body of one roll-up trigger. `tables` are its transition tables; a statement that
    removed rows ("old_rows") also cleans up after itself.

    Only what a statement can change is run: the duration statements when one of its rows has
    a duration, the error statements when one is a failure. A run that starts (no duration, not
    failed) costs the three count upserts; one that finishes without failing skips the error
    statements and, having had no duration before, the duration cleanup."""
    hour, day = hour_sql("created_at"), day_sql("created_at")
    removes = "old_rows" in tables
    with_duration = "total_duration IS NOT NULL"
    failed = "status = 'failed'"
    body = (
        _counts_upsert("migration_api_run_counts_hour", hour, run_delta)
        + _counts_upsert("migration_api_run_counts_day", day, run_delta)
        + _counts_upsert("migration_api_run_counts_total", None, run_delta)
        + _when(
            _any_row(tables, with_duration),
            "".join(_hist_upsert(table, keys, run_delta) for table, keys in _histograms()),
        )
        + _when(_any_row(tables, failed), _errors_upsert(error_delta))
    )
    if removes:
        body += (
            _counts_cleanup(run_delta)
            + _when(_any_row(("old_rows",), with_duration), _duration_cleanup(run_delta))
            + _when(_any_row(("old_rows",), failed), _error_cleanup(error_delta))
        )
    return f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN{body}
    RETURN NULL;
    END $fn$"""


CREATE_TRIGGER_FUNCTIONS: Final = (
    _trigger_function("migration_api_runs_rollup_insert", _INSERT_DELTA, _INSERT_DELTA, ("new_rows",)),
    _trigger_function(
        "migration_api_runs_rollup_update",
        _update_delta(_SAME_RUN),
        _update_delta(_SAME_ERROR),
        ("old_rows", "new_rows"),
    ),
    _trigger_function("migration_api_runs_rollup_delete", _DELETE_DELTA, _DELETE_DELTA, ("old_rows",)),
    "CREATE OR REPLACE FUNCTION migration_api_runs_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
    "    BEGIN\n"
    + "".join(f"    DELETE FROM {table};\n" for table in ROLLUP_TABLES)
    + "    RETURN NULL;\n    END $fn$",
)

# The backfill writes each roll-up in key order, so that a range of buckets is a range of pages.
# Creating a trigger takes a lock that keeps writers out until the migration commits, so the
# backfill below sees every row that the triggers will not.
CREATE_TRIGGERS: Final = (
    "DROP TRIGGER IF EXISTS migration_api_runs_rollup_insert ON migration_runs",
    """CREATE TRIGGER migration_api_runs_rollup_insert AFTER INSERT ON migration_runs
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION migration_api_runs_rollup_insert()""",
    "DROP TRIGGER IF EXISTS migration_api_runs_rollup_update ON migration_runs",
    """CREATE TRIGGER migration_api_runs_rollup_update AFTER UPDATE ON migration_runs
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION migration_api_runs_rollup_update()""",
    "DROP TRIGGER IF EXISTS migration_api_runs_rollup_delete ON migration_runs",
    """CREATE TRIGGER migration_api_runs_rollup_delete AFTER DELETE ON migration_runs
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION migration_api_runs_rollup_delete()""",
    "DROP TRIGGER IF EXISTS migration_api_runs_rollup_truncate ON migration_runs",
    """CREATE TRIGGER migration_api_runs_rollup_truncate AFTER TRUNCATE ON migration_runs
        FOR EACH STATEMENT EXECUTE FUNCTION migration_api_runs_rollup_truncate()""",
)

BACKFILL: Final = (
    f"TRUNCATE {', '.join(ROLLUP_TABLES)}",
    f"""INSERT INTO migration_api_run_counts_hour
            (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
        SELECT {hour_sql("created_at")}, status, record_type, count(*), count(*) FILTER (WHERE success),
               count(success), count(total_duration), coalesce(sum(total_duration::numeric), 0), max(total_duration)
          FROM migration_runs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    f"""INSERT INTO migration_api_run_counts_day
            (bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
        SELECT {day_sql("bucket")}, status, record_type, sum(n), sum(succeeded), sum(finished), sum(dur_n),
               sum(dur_sum), max(dur_max)
          FROM migration_api_run_counts_hour GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    """INSERT INTO migration_api_run_counts_total
            (status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max)
        SELECT status, record_type, sum(n), sum(succeeded), sum(finished), sum(dur_n), sum(dur_sum), max(dur_max)
          FROM migration_api_run_counts_day GROUP BY 1, 2 ORDER BY 1, 2""",
    f"""INSERT INTO migration_api_duration_hist_hour (bucket, record_type, status, bin, n)
        SELECT {hour_sql("created_at")}, record_type, status, {bin_sql("total_duration")}, count(*)
          FROM migration_runs WHERE total_duration IS NOT NULL GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
    f"""INSERT INTO migration_api_duration_hist_day (bucket, record_type, status, bin, n)
        SELECT {day_sql("bucket")}, record_type, status, bin, sum(n)
          FROM migration_api_duration_hist_hour GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
    """INSERT INTO migration_api_duration_hist_total (record_type, status, bin, n)
        SELECT record_type, status, bin, sum(n) FROM migration_api_duration_hist_day
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    """INSERT INTO migration_api_duration_hist_type (record_type, bin, n)
        SELECT record_type, bin, sum(n) FROM migration_api_duration_hist_total GROUP BY 1, 2 ORDER BY 1, 2""",
    """INSERT INTO migration_api_duration_hist_all (bin, n)
        SELECT bin, sum(n) FROM migration_api_duration_hist_total GROUP BY 1 ORDER BY 1""",
    """INSERT INTO migration_api_duration_bins_hour (bucket, bin, n)
        SELECT bucket, bin, sum(n) FROM migration_api_duration_hist_hour GROUP BY 1, 2 ORDER BY 1, 2""",
    """INSERT INTO migration_api_duration_bins_day (bucket, bin, n)
        SELECT bucket, bin, sum(n) FROM migration_api_duration_hist_day GROUP BY 1, 2 ORDER BY 1, 2""",
    f"""INSERT INTO migration_api_error_counts_day (bucket, fingerprint, record_type, n, first_seen, last_seen)
        SELECT {day_sql("created_at")}, migration_api_error_fingerprint(error_message), record_type, count(*),
               min(created_at), max(created_at)
          FROM migration_runs WHERE status = 'failed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    *(f"ANALYZE {table}" for table in ROLLUP_TABLES),
)

# Bounded scans for the "now" figures, the error examples and the window edges.
CREATE_INDEXES: Final = (
    """CREATE INDEX IF NOT EXISTS migration_api_runs_running_updated_at_idx
        ON migration_runs (updated_at) WHERE status = 'running'""",
    """CREATE INDEX IF NOT EXISTS migration_api_runs_completed_at_status_idx
        ON migration_runs (completed_at, status) WHERE completed_at IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS migration_api_runs_failed_created_at_idx
        ON migration_runs (created_at) WHERE status = 'failed'""",
    """CREATE INDEX IF NOT EXISTS migration_api_runs_failed_fingerprint_idx
        ON migration_runs (migration_api_error_fingerprint(error_message), created_at) WHERE status = 'failed'""",
    "CREATE INDEX IF NOT EXISTS migration_api_states_created_at_idx ON workflow_states (created_at)",
    "CREATE INDEX IF NOT EXISTS migration_api_checkpoints_created_at_idx ON workflow_checkpoints (created_at)",
)

STATS_ROLLUP_STATEMENTS: Final = (
    *CREATE_TABLES,
    *CREATE_FUNCTIONS,
    *CREATE_TRIGGER_FUNCTIONS,
    *CREATE_TRIGGERS,
    *BACKFILL,
    *CREATE_INDEXES,
)
