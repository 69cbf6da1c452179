"""Aggregate reads over `migration_runs`: summary, history, error groups.

Two sources give the same answers. With the roll-ups of rollups/ (kept exact by the change-log folder,
changelog/) a statistic reads the day and hour roll-ups for the whole days and hours of the window
and the base rows only for the partial hours at its edges. Without them (a database user that
may not create tables or triggers) the same figures are computed from `migration_runs` alone:
correct, but a full scan at a million runs. Durations are binned the same way in both, so the
percentiles agree to the bit.

Windows select runs by `created_at`: `since` inclusive, `until` exclusive. The "now" figures
(last 24 h, running, stuck) ignore the window.

The repository reads on the request's connection (db/unit_of_work.py), in autocommit mode: a
dashboard page that asks for the summary, two histories and the error groups takes one pooled
connection, not four.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from changelog import derived_current
from db.unit_of_work import UnitOfWork
from dto.stats import (
    DurationStats,
    ErrorGroup,
    ErrorStats,
    HistoryBucket,
    Last24h,
    MigrationStats,
    StatsGroup,
    StatsHistory,
)
from rollups import HIST_BASE, bin_sql, day_sql, fingerprint_sql, hour_sql

HOUR: Final = timedelta(hours=1)
DAY: Final = timedelta(days=1)
# Stand-ins for "no bound": day-aligned, and far outside any run's created_at.
LOW: Final = datetime(1, 1, 1, tzinfo=UTC)
HIGH: Final = datetime(9999, 12, 31, tzinfo=UTC)
GROUP_KEYS: Final = ("status", "record_type")
# A duration is a finite `total_duration`: engines may write NaN or ±Infinity, which count as no
# duration (in PostgreSQL NaN sorts above Infinity, so this excludes it too). Negative and huge
# finite ones count as they are.
HAS_DURATION: Final = "total_duration > '-Infinity'::float8 AND total_duration < 'Infinity'::float8"
# One row per (status, record_type): n, succeeded, finished, dur_n, dur_sum, dur_max.
_COUNT_AGGREGATES: Final = f"""count(*), count(*) FILTER (WHERE success), count(success),
           count(*) FILTER (WHERE {HAS_DURATION}),
           coalesce(sum(total_duration::numeric) FILTER (WHERE {HAS_DURATION}), 0),
           max(total_duration) FILTER (WHERE {HAS_DURATION})"""
SELECT_COUNTS_ROLLUP: Final = f"""
    SELECT status, record_type, sum(n)::bigint, sum(succeeded)::bigint, sum(finished)::bigint,
           sum(dur_n)::bigint, sum(dur_sum)::float8, max(dur_max)
      FROM (SELECT status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max
              FROM migration_api_run_counts_day
             WHERE bucket >= %(day_lo)s AND bucket < %(day_hi)s
            UNION ALL
            SELECT status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max
              FROM migration_api_run_counts_hour
             WHERE (bucket >= %(hour1_lo)s AND bucket < %(hour1_hi)s)
                OR (bucket >= %(hour2_lo)s AND bucket < %(hour2_hi)s)
            UNION ALL
            SELECT status, record_type, {_COUNT_AGGREGATES}
              FROM migration_runs
             WHERE (created_at >= %(base1_lo)s AND created_at < %(base1_hi)s)
                OR (created_at >= %(base2_lo)s AND created_at < %(base2_hi)s)
             GROUP BY 1, 2) parts
     GROUP BY status, record_type
    HAVING sum(n) > 0"""
# The window of the base-table statistics; without `since` and `until` there is none, so that they
# count every run as the all-time roll-up does (created_at 'infinity' included).
BASE_WINDOW: Final = "created_at >= %(lo)s AND created_at < %(hi)s"


def _counts_base(window: str) -> str:
    return f"""
    SELECT status, record_type, {_COUNT_AGGREGATES}
      FROM migration_runs
     WHERE {window}
     GROUP BY status, record_type"""


SELECT_COUNTS_BASE: Final = _counts_base(BASE_WINDOW)
SELECT_COUNTS_BASE_ALL: Final = _counts_base("true")


# One row per (status, record_type): its duration bins and the runs in each, as two arrays (a few
# rows to parse instead of thousands).
def _by_level(bins_sql: str) -> str:
    """A (status, record_type, bin, n) histogram as sorted bin/count arrays at every level at once:
    level 3 = all runs, 2 = per record type, 1 = per status, 0 = per (status, record_type); see
    GROUPING(). A bin repeats within an array when several groups hold it, which nearest-rank
    percentiles over the cumulative counts do not mind; the service merges nothing itself."""
    return f"""
    SELECT GROUPING(status, record_type), status, record_type,
           array_agg(bin ORDER BY bin), array_agg(n::bigint ORDER BY bin)
      FROM ({bins_sql}) b (status, record_type, bin, n)
     GROUP BY GROUPING SETS ((), (record_type), (status), (status, record_type))"""


# All time, ready-made: the histogram of all runs (record_type NULL) and one per record type, bins sorted.
SELECT_HISTOGRAMS_TOTAL: Final = """
    SELECT NULL::text, array_agg(bin ORDER BY bin), array_agg(n ORDER BY bin)
      FROM migration_api_duration_hist_all WHERE n > 0
    HAVING count(*) > 0
    UNION ALL
    SELECT record_type, array_agg(bin ORDER BY bin), array_agg(n ORDER BY bin)
      FROM migration_api_duration_hist_type WHERE n > 0 GROUP BY record_type"""

# The rows: (status, record_type, duration bin, runs in it).
_SELECT_BINS_TOTAL_ROWS: Final = """
    SELECT status, record_type, bin, n FROM migration_api_duration_hist_total WHERE n > 0"""
SELECT_BINS_TOTAL: Final = _by_level(_SELECT_BINS_TOTAL_ROWS)
_SELECT_BINS_ROLLUP_ROWS: Final = f"""
    SELECT status, record_type, bin, sum(n)::bigint
      FROM (SELECT status, record_type, bin, n
              FROM migration_api_duration_hist_day
             WHERE bucket >= %(day_lo)s AND bucket < %(day_hi)s
            UNION ALL
            SELECT status, record_type, bin, n
              FROM migration_api_duration_hist_hour
             WHERE (bucket >= %(hour1_lo)s AND bucket < %(hour1_hi)s)
                OR (bucket >= %(hour2_lo)s AND bucket < %(hour2_hi)s)
            UNION ALL
            SELECT status, record_type, {bin_sql("total_duration")}, count(*)
              FROM migration_runs
             WHERE {HAS_DURATION}
               AND ((created_at >= %(base1_lo)s AND created_at < %(base1_hi)s)
                 OR (created_at >= %(base2_lo)s AND created_at < %(base2_hi)s))
             GROUP BY 1, 2, 3) parts
     GROUP BY 1, 2, 3
    HAVING sum(n) > 0"""
SELECT_BINS_ROLLUP: Final = _by_level(_SELECT_BINS_ROLLUP_ROWS)


def _bins_base(window: str) -> str:
    return _by_level(f"""
    SELECT status, record_type, {bin_sql("total_duration")}, count(*)
      FROM migration_runs
     WHERE {HAS_DURATION} AND {window}
     GROUP BY 1, 2, 3""")


SELECT_BINS_BASE: Final = _bins_base(BASE_WINDOW)
SELECT_BINS_BASE_ALL: Final = _bins_base("true")

# The "now" figures: bounded index scans (created_at, completed_at, the running partial index).
# Stuck = running minus running with activity (an update, a state or a checkpoint within
# stuck_after). From the base tables, each running run's steps are probed through the engines'
# run_id indexes; with the roll-ups, the runs' last step times come from the folder's
# migration_api_run_activity (db/migrations/0015_run_activity.sql) plus the steps still in the
# log, so the figure stays exact between folds.
_ALIVE_BASE: Final = """
           (SELECT count(*) FROM migration_runs r
             WHERE r.status = 'running'
               AND (r.updated_at >= now() - %(stuck_after)s
                    OR EXISTS (SELECT 1 FROM workflow_states s
                                WHERE s.run_id = r.id AND s.created_at >= now() - %(stuck_after)s)
                    OR EXISTS (SELECT 1 FROM workflow_checkpoints c
                                WHERE c.run_id = r.id AND c.created_at >= now() - %(stuck_after)s)))"""
_ALIVE_ROLLUP: Final = """
           (SELECT count(*) FROM (
                SELECT id FROM migration_runs WHERE status = 'running' AND updated_at >= now() - %(stuck_after)s
                UNION
                SELECT id FROM migration_runs
                 WHERE status = 'running'
                   AND id = ANY(ARRAY(
                       SELECT run_id FROM migration_api_run_activity WHERE last_step_at >= now() - %(stuck_after)s
                       UNION ALL
                       SELECT l.run_id FROM migration_api_changes l
                        WHERE l.s = 0 AND l.run_id IS NOT NULL
                          AND (EXISTS (SELECT 1 FROM workflow_states s
                                        WHERE s.run_id = l.run_id AND s.created_at >= now() - %(stuck_after)s)
                               OR EXISTS (SELECT 1 FROM workflow_checkpoints c
                                           WHERE c.run_id = l.run_id
                                             AND c.created_at >= now() - %(stuck_after)s))))) alive)"""
_FINISHED_24H: Final = """
           (SELECT count(*) FROM migration_runs WHERE completed_at >= now() - interval '24 hours'),
           (SELECT count(*) FROM migration_runs
             WHERE completed_at >= now() - interval '24 hours' AND status = 'failed'),"""
SELECT_NOW_BASE: Final = f"""
    SELECT (SELECT count(*) FROM migration_runs WHERE created_at >= now() - interval '24 hours'),{_FINISHED_24H}
           (SELECT count(*) FROM migration_runs WHERE status = 'running'),{_ALIVE_BASE}"""
# With the roll-ups: created in the last 24 h = whole hours from the hour roll-up + the rest of the
# first hour from the base rows; running = from the all-time roll-up.
_RECENT_HOUR: Final = "(" + hour_sql("(now() - interval '24 hours')") + " + interval '1 hour')"
_NOW_ROLLUP_COLUMNS: Final = f"""
           (SELECT coalesce(sum(n), 0)::bigint FROM migration_api_run_counts_hour WHERE bucket >= {_RECENT_HOUR})
         + (SELECT count(*) FROM migration_runs
             WHERE created_at >= now() - interval '24 hours' AND created_at < {_RECENT_HOUR}),{_FINISHED_24H}
           (SELECT coalesce(sum(n), 0)::bigint FROM migration_api_run_counts_total
             WHERE status = 'running'),{_ALIVE_ROLLUP}"""
SELECT_NOW_ROLLUP: Final = "SELECT " + _NOW_ROLLUP_COLUMNS
# /stats without a window in one statement: the all-time counts and histograms as JSON (decoded in C
# by msgspec), then the "now" figures.
SELECT_SUMMARY_TOTAL: Final = (
    """
    SELECT (SELECT json_agg(json_build_array(status, record_type, n, succeeded, finished, dur_n,
                                             dur_sum::float8, dur_max))
              FROM migration_api_run_counts_total WHERE n > 0),
           (SELECT json_agg(json_build_array(record_type, bins, ns)) FROM ("""
    + SELECT_HISTOGRAMS_TOTAL
    + """) h (record_type, bins, ns)),"""
    + _NOW_ROLLUP_COLUMNS
)

# History: per bucket and status / per bucket and bin.
_HISTORY_COUNT_COLUMNS: Final = (
    "sum(n)::bigint, sum(succeeded)::bigint, sum(finished)::bigint, sum(dur_n)::bigint, max(dur_max)"
)
SELECT_HISTORY_COUNTS_HOUR: Final = f"""
    SELECT bucket, status, {_HISTORY_COUNT_COLUMNS}
      FROM migration_api_run_counts_hour WHERE bucket >= %(lo)s AND bucket < %(hi)s
     GROUP BY 1, 2 HAVING sum(n) > 0"""
SELECT_HISTORY_COUNTS_DAY: Final = f"""
    SELECT bucket, status, {_HISTORY_COUNT_COLUMNS}
      FROM migration_api_run_counts_day WHERE bucket >= %(lo)s AND bucket < %(hi)s
     GROUP BY 1, 2 HAVING sum(n) > 0"""
# Per bucket: the first bins whose running count reaches rank ceil(p * count) for p = 0.5, 0.9, 0.99,
# over the rows (bucket, bin, n) of `src` (sums in float8: exact below 2**53, and fast). A few rows
# per bucket come back instead of every bin: parsing thousands of rows costs more than the query.
_HISTORY_PERCENTILES: Final = """,
    ranked AS (
        SELECT bucket, bin, sum(n::float8) OVER (PARTITION BY bucket ORDER BY bin) AS seen,
               sum(n::float8) OVER (PARTITION BY bucket) AS total
          FROM src)
    SELECT bucket, min(bin) FILTER (WHERE seen >= ceil(0.5 * total - 1e-9)),
           min(bin) FILTER (WHERE seen >= ceil(0.9 * total - 1e-9)),
           min(bin) FILTER (WHERE seen >= ceil(0.99 * total - 1e-9))
      FROM ranked GROUP BY bucket"""
SELECT_HISTORY_BINS_HOUR: Final = (
    """
    WITH src AS (SELECT bucket, bin, n FROM migration_api_duration_bins_hour
                  WHERE bucket >= %(lo)s AND bucket < %(hi)s AND n > 0)"""
    + _HISTORY_PERCENTILES
)
SELECT_HISTORY_BINS_DAY: Final = (
    """
    WITH src AS (SELECT bucket, bin, n FROM migration_api_duration_bins_day
                  WHERE bucket >= %(lo)s AND bucket < %(hi)s AND n > 0)"""
    + _HISTORY_PERCENTILES
)


def _history_base_counts(bucket: str) -> str:
    return f"""
    SELECT {bucket}, status, count(*), count(*) FILTER (WHERE success), count(success),
           count(*) FILTER (WHERE {HAS_DURATION}), max(total_duration) FILTER (WHERE {HAS_DURATION})
      FROM migration_runs WHERE created_at >= %(lo)s AND created_at < %(hi)s
     GROUP BY 1, 2"""


def _history_base_bins(bucket: str) -> str:
    return (
        f"""
    WITH src AS (
        SELECT {bucket} AS bucket, {bin_sql("total_duration")} AS bin, count(*) AS n
          FROM migration_runs WHERE {HAS_DURATION} AND created_at >= %(lo)s AND created_at < %(hi)s
         GROUP BY 1, 2)"""
        + _HISTORY_PERCENTILES
    )


SELECT_HISTORY_COUNTS_HOUR_BASE: Final = _history_base_counts(hour_sql("created_at"))
SELECT_HISTORY_COUNTS_DAY_BASE: Final = _history_base_counts(day_sql("created_at"))
SELECT_HISTORY_BINS_HOUR_BASE: Final = _history_base_bins(hour_sql("created_at"))
SELECT_HISTORY_BINS_DAY_BASE: Final = _history_base_bins(day_sql("created_at"))

# Error groups: fingerprint, count, first/last seen, {record_type: n}, distinct fingerprints,
# failed runs, the 3 most recent run ids and the latest message.
_ERROR_GROUPS_TAIL: Final = """
    by_type AS (
        SELECT fingerprint, record_type, sum(n) AS n, min(first_seen) AS first_seen, max(last_seen) AS last_seen
          FROM parts GROUP BY 1, 2),
    grouped AS (
        SELECT fingerprint, sum(n)::bigint AS n, min(first_seen) AS first_seen, max(last_seen) AS last_seen,
               jsonb_object_agg(record_type, n) AS record_types,
               count(*) OVER () AS fingerprints, sum(sum(n)) OVER ()::bigint AS total_failed
          FROM by_type GROUP BY fingerprint
         ORDER BY 2 DESC, 1 LIMIT %(limit)s)"""
SELECT_ERRORS_ROLLUP: Final = f"""
    WITH parts AS (
        SELECT fingerprint, record_type, n, first_seen, last_seen
          FROM migration_api_error_counts_day WHERE bucket >= %(day_lo)s AND bucket < %(day_hi)s
        UNION ALL
        SELECT migration_api_error_fingerprint(error_message), record_type, count(*), min(created_at), max(created_at)
          FROM migration_runs
         WHERE status = 'failed'
           AND ((created_at >= %(edge1_lo)s AND created_at < %(edge1_hi)s)
             OR (created_at >= %(edge2_lo)s AND created_at < %(edge2_hi)s))
         GROUP BY 1, 2),
    {_ERROR_GROUPS_TAIL}
    SELECT g.fingerprint, g.n, g.first_seen, g.last_seen, g.record_types, g.fingerprints, g.total_failed,
           e.ids, e.message
      FROM grouped g
     CROSS JOIN LATERAL (
           SELECT array_agg(x.id ORDER BY x.created_at DESC, x.id DESC) AS ids,
                  (array_agg(x.error_message ORDER BY x.created_at DESC, x.id DESC))[1] AS message
             FROM (SELECT r.id, r.created_at, r.error_message FROM migration_runs r
                    WHERE r.status = 'failed' AND migration_api_error_fingerprint(r.error_message) = g.fingerprint
                      AND r.created_at >= %(lo)s AND r.created_at < %(hi)s
                    ORDER BY r.created_at DESC LIMIT 3) x) e
     ORDER BY g.n DESC, g.fingerprint"""
SELECT_ERRORS_BASE: Final = f"""
    WITH failed AS MATERIALIZED (
        SELECT id, created_at, record_type, error_message, {fingerprint_sql("error_message")} AS fingerprint
          FROM migration_runs WHERE status = 'failed' AND created_at >= %(lo)s AND created_at < %(hi)s),
    parts AS (
        SELECT fingerprint, record_type, count(*) AS n, min(created_at) AS first_seen, max(created_at) AS last_seen
          FROM failed GROUP BY 1, 2),
    {_ERROR_GROUPS_TAIL},
    ranked AS (
        SELECT fingerprint, id, created_at, error_message,
               row_number() OVER (PARTITION BY fingerprint ORDER BY created_at DESC, id DESC) AS rn
          FROM failed)
    SELECT g.fingerprint, g.n, g.first_seen, g.last_seen, g.record_types, g.fingerprints, g.total_failed,
           (SELECT array_agg(k.id ORDER BY k.rn) FROM ranked k WHERE k.fingerprint = g.fingerprint AND k.rn <= 3),
           (SELECT k.error_message FROM ranked k WHERE k.fingerprint = g.fingerprint AND k.rn = 1)
      FROM grouped g
     ORDER BY g.n DESC, g.fingerprint"""


# --- windows ---------------------------------------------------------------------------------


def floor_to(ts: datetime, step: timedelta) -> datetime:
    """The start of the UTC hour or day (`step`) that holds `ts`."""
    ts = ts.astimezone(UTC)
    if step == DAY:
        return ts.replace(hour=0, minute=0, second=0, microsecond=0)
    return ts.replace(minute=0, second=0, microsecond=0)


def ceil_to(ts: datetime, step: timedelta) -> datetime:
    """`ts` if it starts an hour or day (`step`), else the start of the next one."""
    floor = floor_to(ts, step)
    return floor if floor == ts else floor + step


@dataclass(frozen=True)
class Segments:
    """A window [since, until) cut into whole days, whole hours at both ends, and the partial hours
    at both ends (read from the base rows). Empty parts are (x, x)."""

    days: tuple[datetime, datetime]
    hours: tuple[tuple[datetime, datetime], tuple[datetime, datetime]]
    base: tuple[tuple[datetime, datetime], tuple[datetime, datetime]]

    def params(self) -> dict[str, datetime]:
        (h1, h2), (b1, b2) = self.hours, self.base
        return {
            "day_lo": self.days[0],
            "day_hi": self.days[1],
            "hour1_lo": h1[0],
            "hour1_hi": h1[1],
            "hour2_lo": h2[0],
            "hour2_hi": h2[1],
            "base1_lo": b1[0],
            "base1_hi": b1[1],
            "base2_lo": b2[0],
            "base2_hi": b2[1],
        }


def split_window(since: datetime, until: datetime) -> Segments:
    """Cut [since, until) into the parts each roll-up can answer exactly."""
    hour_lo, hour_hi = ceil_to(since, HOUR), floor_to(until, HOUR)
    if hour_lo >= hour_hi:  # no whole hour inside: all from the base rows
        return Segments((LOW, LOW), ((LOW, LOW), (LOW, LOW)), ((since, until), (LOW, LOW)))
    base = ((since, hour_lo), (hour_hi, until))
    day_lo, day_hi = ceil_to(hour_lo, DAY), floor_to(hour_hi, DAY)
    if day_lo >= day_hi:
        return Segments((LOW, LOW), ((hour_lo, hour_hi), (LOW, LOW)), base)
    return Segments((day_lo, day_hi), ((hour_lo, day_lo), (day_hi, hour_hi)), base)


def split_window_by_day(since: datetime, until: datetime) -> tuple[tuple[datetime, datetime], dict[str, datetime]]:
    """Whole days of [since, until) and the two partial days (as SQL parameters `edge*`)."""
    day_lo, day_hi = ceil_to(since, DAY), floor_to(until, DAY)
    if day_lo >= day_hi:
        return (LOW, LOW), {"edge1_lo": since, "edge1_hi": until, "edge2_lo": LOW, "edge2_hi": LOW}
    return (day_lo, day_hi), {"edge1_lo": since, "edge1_hi": day_lo, "edge2_lo": day_hi, "edge2_hi": until}


# --- percentiles -----------------------------------------------------------------------------


def finite(value: Any) -> float | None:
    """A duration figure as a finite float, else None: what SQL skipped (NaN, ±Infinity) must not
    come back through a roll-up row either (where JSON even carries it as the text "NaN")."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def bin_middle(bin_no: int) -> float:
    """The geometric middle of a duration bin: within 2 % of every duration in the bin."""
    return float(HIST_BASE ** (bin_no + 0.5))


def duration_stats(bins: Counter[int], count: int, maximum: float | None) -> DurationStats:
    """Nearest-rank percentiles from a histogram: the middle of the bin holding rank ceil(p * count)."""
    total = sum(bins.values())
    if total == 0:
        return DurationStats(count=count, p50=None, p90=None, p99=None, max=maximum)
    ordered = sorted(bins.items())
    ranks = [max(1, math.ceil(p * total - 1e-9)) for p in (0.5, 0.9, 0.99)]
    found: list[int] = []
    seen = 0
    for bin_no, n in ordered:
        seen += n
        while len(found) < len(ranks) and seen >= ranks[len(found)]:
            found.append(bin_no)
    return percentiles_from_bins(tuple(found), count, maximum)


def percentile_bins(bins: list[int], counts: list[int]) -> tuple[int, ...]:
    """The bins holding the nearest-rank p50, p90 and p99 of a histogram sorted by bin."""
    seen = list(accumulate(counts))
    total = seen[-1]
    return tuple(bins[bisect_left(seen, max(1, math.ceil(p * total - 1e-9)))] for p in (0.5, 0.9, 0.99))


def percentiles_from_bins(bins: tuple[int | None, ...], count: int, maximum: float | None) -> DurationStats:
    """DurationStats from the bins of p50, p90 and p99 (middle of the bin, never above the exact max)."""
    if len(bins) < 3 or bins[0] is None:
        return DurationStats(count=count, p50=None, p90=None, p99=None, max=maximum)
    maximum = finite(maximum)
    values = [bin_middle(b if b is not None else 0) for b in bins]
    p50, p90, p99 = (round(min(v, maximum) if maximum is not None else v, 3) for v in values)
    return DurationStats(count=count, p50=p50, p90=p90, p99=p99, max=maximum)


@dataclass
class _Totals:
    n: int = 0
    succeeded: int = 0
    finished: int = 0
    dur_n: int = 0
    dur_sum: float = 0.0
    dur_max: float | None = None
    bins: Counter[int] = field(default_factory=Counter)
    # The bins of p50, p90 and p99 when SQL found them (history), instead of `bins`.
    percentile_bins: tuple[int | None, ...] | None = None

    def add(self, n: int, succeeded: int, finished: int, dur_n: int, dur_sum: float, dur_max: float | None) -> None:
        self.n += n
        self.succeeded += succeeded
        self.finished += finished
        self.dur_n += dur_n
        self.dur_sum += float(dur_sum)
        dur_max = finite(dur_max)
        if dur_max is not None and (self.dur_max is None or dur_max > self.dur_max):
            self.dur_max = dur_max

    @property
    def success_rate(self) -> float | None:
        return round(self.succeeded / self.finished, 4) if self.finished else None

    @property
    def average_duration(self) -> float | None:
        # None rather than NaN or Infinity, e.g. for finite durations whose sum overflows a float
        return finite(round(self.dur_sum / self.dur_n, 3)) if self.dur_n else None

    def duration(self) -> DurationStats:
        if self.percentile_bins is not None:
            return percentiles_from_bins(self.percentile_bins, self.dur_n, self.dur_max)
        return duration_stats(self.bins, self.dur_n, self.dur_max)


def _totals(groups: dict[Any, _Totals], key: Any) -> _Totals:
    found = groups.get(key)
    if found is None:
        found = groups[key] = _Totals()
    return found


# --- the repository --------------------------------------------------------------------------


def rollups_present(pool: AsyncConnectionPool) -> bool:
    """Whether the roll-ups are built and being kept (changelog/): they include the service's own
    writes at once and engines' direct writes within the fold interval. Without a folder, or
    while it rebuilds, statistics come from the base tables."""
    return derived_current(pool)


# The UTC days that hold runs (day buckets of the counts roll-up; an emptied bucket only widens it).
SELECT_DATA_DAYS: Final = """
    SELECT min(bucket), max(bucket), EXISTS (SELECT FROM migration_api_run_counts_day)
      FROM migration_api_run_counts_day"""


async def _window_covers_all(conn: AsyncConnection[Any], lo: datetime, hi: datetime) -> bool:
    """Whether [lo, hi) holds every run, so that the all-time roll-ups answer it exactly (a window
    of many months would otherwise merge tens of thousands of day-histogram rows)."""
    row = await (await conn.execute(SELECT_DATA_DAYS)).fetchone()
    if row is None or not row[2]:
        return True
    first_day, last_day, _ = row
    if first_day is None or last_day is None:
        return False  # a day Python cannot hold (created_at 'infinity', say): no window holds it
    return bool(lo <= first_day and hi - last_day >= DAY)


class StatsRepository:
    def __init__(self, work: UnitOfWork, *, stuck_after_minutes: float = 30.0) -> None:
        self.work = work
        self.stuck_after = timedelta(minutes=stuck_after_minutes)

    async def summary(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        group_by: tuple[str, ...] = (),
    ) -> MigrationStats:
        """Everything of /stats; see the module doc for the window and the sources."""
        lo, hi = since or LOW, until or HIGH
        now_row: Sequence[Any] | None = None
        counts: Sequence[Sequence[Any]]
        histograms: Sequence[Sequence[Any]]
        conn = await self.work.connection()
        if rollups_present(self.work.pool):
            now_sql = SELECT_NOW_ROLLUP
            if (since is None and until is None) or await _window_covers_all(conn, lo, hi):
                row = await (await conn.execute(SELECT_SUMMARY_TOTAL, {"stuck_after": self.stuck_after})).fetchone()
                assert row is not None
                counts, histograms, now_row = row[0] or [], row[1] or [], row[2:]
                bins = await (await conn.execute(SELECT_BINS_TOTAL)).fetchall() if group_by else []
            else:
                segments = split_window(lo, hi).params()
                histograms = []
                counts = await (await conn.execute(SELECT_COUNTS_ROLLUP, segments)).fetchall()
                bins = await (await conn.execute(SELECT_BINS_ROLLUP, segments)).fetchall()
        else:
            now_sql = SELECT_NOW_BASE
            histograms = []
            window = {"lo": lo, "hi": hi}
            unbounded = since is None and until is None
            counts_sql, bins_sql = (
                (SELECT_COUNTS_BASE_ALL, SELECT_BINS_BASE_ALL) if unbounded else (SELECT_COUNTS_BASE, SELECT_BINS_BASE)
            )
            counts = await (await conn.execute(counts_sql, window)).fetchall()
            bins = await (await conn.execute(bins_sql, window)).fetchall()
        if now_row is None:
            now_row = await (await conn.execute(now_sql, {"stuck_after": self.stuck_after})).fetchone()
        assert now_row is not None
        started, finished_24h, failed_24h, running, alive = now_row

        overall = _Totals()
        by_status: dict[str, _Totals] = {}
        by_type: dict[str, _Totals] = {}
        keyed: dict[tuple[str | None, str | None], _Totals] = {}
        group_status, group_type = "status" in group_by, "record_type" in group_by
        for status, record_type, n, ok, finished, dur_n, dur_sum, dur_max in counts:
            for totals in (
                overall,
                _totals(by_status, status),
                _totals(by_type, record_type),
                *(
                    (_totals(keyed, (status if group_status else None, record_type if group_type else None)),)
                    if group_by
                    else ()
                ),
            ):
                totals.add(n, ok, finished, dur_n, dur_sum, dur_max)
        for record_type, bin_nos, ns in histograms:
            target = overall if record_type is None else _totals(by_type, record_type)
            target.percentile_bins = percentile_bins(bin_nos, ns)
        # GROUPING() of the level that matches group_by (see _by_level)
        group_level = 2 * (not group_status) + (not group_type) if group_by else None
        for level, status, record_type, bin_nos, ns in bins:
            if not bin_nos:
                continue  # the grand-total row of an empty window
            found = percentile_bins(bin_nos, ns)
            if not histograms and level == 3:
                overall.percentile_bins = found
            elif not histograms and level == 2:
                _totals(by_type, record_type).percentile_bins = found
            if level == group_level:
                _totals(keyed, (status, record_type)).percentile_bins = found
        groups: list[StatsGroup] | None = None
        if group_by:
            groups = [
                StatsGroup(
                    status=status,
                    record_type=record_type,
                    total=g.n,
                    succeeded=g.succeeded,
                    finished=g.finished,
                    success_rate=g.success_rate,
                    average_duration=g.average_duration,
                    duration=g.duration(),
                )
                for (status, record_type), g in sorted(
                    keyed.items(), key=lambda kv: (-kv[1].n, kv[0][0] or "", kv[0][1] or "")
                )
            ]
        return MigrationStats(
            total_migrations=overall.n,
            status_breakdown={s: g.n for s, g in by_status.items() if g.n},
            recent_24h=started,
            record_type_breakdown={t: g.n for t, g in by_type.items() if g.n},
            success_rate=overall.success_rate,
            average_duration=overall.average_duration,
            since=since,
            until=until,
            duration=overall.duration(),
            duration_by_record_type={t: g.duration() for t, g in sorted(by_type.items())},
            last_24h=Last24h(started=started, finished=finished_24h, failed=failed_24h),
            running_now=running,
            stuck=max(0, running - alive),
            stuck_after_minutes=self.stuck_after.total_seconds() / 60,
            groups=groups,
        )

    async def history(self, interval: str, since: datetime, until: datetime) -> StatsHistory:
        """Buckets of `interval` from `since` to `until` (both already on bucket boundaries)."""
        step = HOUR if interval == "hour" else DAY
        window = {"lo": since, "hi": until}
        conn = await self.work.connection()
        if rollups_present(self.work.pool):
            counts_sql = SELECT_HISTORY_COUNTS_HOUR if step == HOUR else SELECT_HISTORY_COUNTS_DAY
            bins_sql = SELECT_HISTORY_BINS_HOUR if step == HOUR else SELECT_HISTORY_BINS_DAY
        else:
            counts_sql = SELECT_HISTORY_COUNTS_HOUR_BASE if step == HOUR else SELECT_HISTORY_COUNTS_DAY_BASE
            bins_sql = SELECT_HISTORY_BINS_HOUR_BASE if step == HOUR else SELECT_HISTORY_BINS_DAY_BASE
        counts = await (await conn.execute(counts_sql, window)).fetchall()
        bins = await (await conn.execute(bins_sql, window)).fetchall()
        totals: dict[datetime, _Totals] = {}
        by_status: dict[datetime, dict[str, int]] = {}
        for bucket, status, n, ok, finished, dur_n, dur_max in counts:
            _totals(totals, bucket).add(n, ok, finished, dur_n, 0.0, dur_max)
            by_status.setdefault(bucket, {})[status] = n
        for bucket, *percentile_bins in bins:
            _totals(totals, bucket).percentile_bins = tuple(percentile_bins)
        buckets = []
        start = since
        while start < until:
            t = totals.get(start, _Totals())
            buckets.append(
                HistoryBucket(
                    start=start,
                    end=start + step,
                    total=t.n,
                    by_status=dict(sorted(by_status.get(start, {}).items())),
                    succeeded=t.succeeded,
                    finished=t.finished,
                    success_rate=t.success_rate,
                    duration=t.duration(),
                )
            )
            start += step
        return StatsHistory(interval=interval, since=since, until=until, buckets=buckets)

    async def errors(self, since: datetime | None, until: datetime | None, limit: int) -> ErrorStats:
        """Failed runs in the window grouped by error fingerprint, most frequent first."""
        lo, hi = since or LOW, until or HIGH
        conn = await self.work.connection()
        if rollups_present(self.work.pool):
            (day_lo, day_hi), edges = split_window_by_day(lo, hi)
            params: dict[str, Any] = {"day_lo": day_lo, "day_hi": day_hi, **edges}
            query = SELECT_ERRORS_ROLLUP
        else:
            params, query = {}, SELECT_ERRORS_BASE
        params.update(lo=lo, hi=hi, limit=limit)
        rows = await (await conn.execute(query, params)).fetchall()
        groups = [
            ErrorGroup(
                fingerprint=fingerprint,
                count=n,
                first_seen=first_seen,
                last_seen=last_seen,
                record_types={t: int(c) for t, c in sorted(record_types.items())},
                example_run_ids=list(ids or []),
                example_message=message,
            )
            for fingerprint, n, first_seen, last_seen, record_types, _, _, ids, message in rows
        ]
        fingerprints = rows[0][5] if rows else 0
        total_failed = rows[0][6] if rows else 0
        return ErrorStats(since=since, until=until, total_failed=total_failed, fingerprints=fingerprints, groups=groups)
