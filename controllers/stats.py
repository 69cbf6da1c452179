"""Statistics over runs: the summary (with window and grouping), history buckets, error groups."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from auth import READ, requires
from controllers.protocol import error_responses, parse_timestamp, timestamp_query
from controllers.providers import provide_stats_repo
from dto.stats import PERCENTILE_NOTE, ErrorStats, MigrationStats, StatsHistory
from errors import DomainError
from repositories.stats import DAY, GROUP_KEYS, HOUR, StatsRepository, ceil_to, floor_to

MAX_HISTORY_BUCKETS = 1000
HISTORY_DEFAULT_BUCKETS = {"hour": 48, "day": 30}

Since = Annotated[str | None, timestamp_query("Only runs created at or after this instant (by `created_at`)")]
Until = Annotated[
    str | None,
    timestamp_query("Only runs created before this instant (by `created_at`); not before `since`"),
]
GroupBy = Annotated[
    str | None,
    QueryParameter(
        description=("Also return figures per group in `groups`: `status`, `record_type` or `status,record_type`"),
        max_length=100,
        pattern=r"^(status|record_type)(,(status|record_type))?$",
    ),
]
Interval = Annotated[
    Literal["hour", "day"],
    QueryParameter(description="Bucket width (UTC hours or days)"),
]
HistorySince = Annotated[
    str | None,
    timestamp_query(
        "Start of the first bucket, rounded down to the interval (default: 48 buckets before `until` for "
        "hour, 30 for day)"
    ),
]
HistoryUntil = Annotated[
    str | None,
    timestamp_query(
        "End of the last bucket, rounded up to the interval (default: the end of the current bucket); "
        f"not before `since`, and at most {MAX_HISTORY_BUCKETS} buckets after it"
    ),
]
ErrorLimit = Annotated[
    int, QueryParameter(description="Most fingerprints returned (most frequent first)", ge=1, le=500)
]


def _window(raw_since: str | None, raw_until: str | None) -> tuple[datetime | None, datetime | None]:
    since, until = parse_timestamp("since", raw_since), parse_timestamp("until", raw_until)
    if since is not None and until is not None and since > until:
        raise DomainError(f"since ({since.isoformat()}) must not be after until ({until.isoformat()})")
    return since, until


def _group_by(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    keys = tuple(dict.fromkeys(raw.split(",")))
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown:
        raise DomainError(f"group_by: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(GROUP_KEYS)}")
    return keys


def history_window(
    interval: str, raw_since: str | None, raw_until: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """The bucket-aligned [since, until) of a history request; 400 beyond MAX_HISTORY_BUCKETS."""
    step = HOUR if interval == "hour" else DAY
    since, until = _window(raw_since, raw_until)
    if until is not None:
        end = ceil_to(until, step)
    else:
        end = floor_to(now, step) + step
        if since is not None and since >= end:
            end = floor_to(since, step) + step
    start = floor_to(since, step) if since is not None else end - HISTORY_DEFAULT_BUCKETS[interval] * step
    if start >= end:
        start = end - step
    buckets = (end - start) // step
    if buckets > MAX_HISTORY_BUCKETS:
        raise DomainError(
            f"since/until span {buckets} buckets of one {interval}; at most {MAX_HISTORY_BUCKETS} per request"
        )
    return start, end


class StatsController(Controller):
    path = "/api/v1/migrations/stats"
    tags = ["Statistics"]
    dependencies = {"stats_repo": Provide(provide_stats_repo)}

    @get(
        "/",
        operation_id="GetMigrationStats",
        response_description=(
            "Counts, success rate and duration percentiles of the runs in the window, plus what is running and stuck "
            "now."
        ),
        **requires(READ),
        summary="Counts, success rate, duration percentiles, running and stuck runs",
        description=(
            "Runs created in the window (`since` inclusive, `until` exclusive; all runs without them) by status "
            "and record type, success rate, mean duration, duration p50/p90/p99/max overall and per record type, "
            "and with `group_by` the same per group. `recent_24h`, `last_24h`, `running_now` and `stuck` are "
            "about now and ignore the window. Figures include rows that engines wrote with SQL and are current "
            "as soon as a write commits. " + PERCENTILE_NOTE
        ),
        responses=error_responses(),
    )
    async def get_stats(
        self,
        stats_repo: NamedDependency[StatsRepository],
        since: Since = None,
        until: Until = None,
        group_by: GroupBy = None,
    ) -> MigrationStats:
        """Totals, success rate, duration percentiles, and what is running or stuck now."""
        window_since, window_until = _window(since, until)
        return await stats_repo.summary(window_since, window_until, _group_by(group_by))

    @get(
        "/history",
        operation_id="GetMigrationStatsHistory",
        response_description=(
            "One bucket per hour or day of the window, oldest first, with counts by status, success rate and duration "
            "percentiles."
        ),
        **requires(READ),
        summary="Runs per hour or day: counts by status, success rate, duration percentiles",
        description=(
            "Buckets of runs by `created_at` (UTC hours or days), empty buckets included, oldest first. "
            + PERCENTILE_NOTE
        ),
        responses=error_responses(),
    )
    async def get_history(
        self,
        stats_repo: NamedDependency[StatsRepository],
        interval: Interval = "hour",
        since: HistorySince = None,
        until: HistoryUntil = None,
    ) -> StatsHistory:
        """Time buckets with counts by status and duration percentiles, for charts."""
        start, end = history_window(interval, since, until, datetime.now(UTC))
        return await stats_repo.history(interval, start, end)

    @get(
        "/errors",
        operation_id="GetMigrationErrorGroups",
        response_description=(
            "Failed runs grouped by error fingerprint, most frequent first, with a few recent run ids per group."
        ),
        **requires(READ),
        summary="Failures grouped by normalised error message",
        description=(
            "Runs in status `failed` created in the window, grouped by a fingerprint of their error message "
            "(UUIDs, paths, quoted values with digits, hex ids and numbers replaced by placeholders), with "
            "count, first and last `created_at`, counts per record type and the 3 most recent run ids."
        ),
        responses=error_responses(),
    )
    async def get_errors(
        self,
        stats_repo: NamedDependency[StatsRepository],
        since: Since = None,
        until: Until = None,
        limit: ErrorLimit = 50,
    ) -> ErrorStats:
        """Error fingerprints of failed runs: how often, since when, for which record types."""
        window_since, window_until = _window(since, until)
        return await stats_repo.errors(window_since, window_until, limit)
