"""Run statistics on the wire. The first six keys of MigrationStats are what existing dashboards read."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

PERCENTILE_NOTE = (
    "Percentiles come from a log-bucketed histogram (bins 4 % wide): each is the middle of the bin that "
    "holds the nearest-rank percentile, so it is within 2 % of the exact value (and never above `max`)."
)


class DurationStats(msgspec.Struct):
    """Durations (`total_duration`, seconds) of the runs that have one: a NaN or infinite value an
    engine stored counts as none. `PERCENTILE_NOTE` applies."""

    count: Annotated[int, msgspec.Meta(ge=0, description="Runs with a finite duration")]
    p50: Annotated[float | None, msgspec.Meta(description="Median seconds (within 2 %); null without durations")]
    p90: Annotated[float | None, msgspec.Meta(description="90th percentile, seconds (within 2 %)")]
    p99: Annotated[float | None, msgspec.Meta(description="99th percentile, seconds (within 2 %)")]
    max: Annotated[float | None, msgspec.Meta(description="Longest duration, seconds (exact)")]


class Last24h(msgspec.Struct):
    """Activity in the 24 hours before the request, whatever the window."""

    started: Annotated[int, msgspec.Meta(ge=0, description="Runs created in the last 24 h (= `recent_24h`)")]
    finished: Annotated[int, msgspec.Meta(ge=0, description="Runs whose `completed_at` is in the last 24 h")]
    failed: Annotated[int, msgspec.Meta(ge=0, description="Of those, runs in status `failed`")]


class StatsGroup(msgspec.Struct):
    """Figures of one group of `group_by` (the key not grouped by is null)."""

    status: Annotated[str | None, msgspec.Meta(description="The group's status (null if not grouped by status)")]
    record_type: Annotated[str | None, msgspec.Meta(description="The group's record type (null if not grouped by it)")]
    total: Annotated[int, msgspec.Meta(ge=0, description="Runs in the group")]
    succeeded: Annotated[int, msgspec.Meta(ge=0, description="Runs with `success` true")]
    finished: Annotated[int, msgspec.Meta(ge=0, description="Runs with `success` set (true or false)")]
    success_rate: Annotated[float | None, msgspec.Meta(description="succeeded / finished, 4 decimals")]
    average_duration: Annotated[float | None, msgspec.Meta(description="Mean of the finite `total_duration`s, seconds")]
    duration: DurationStats


class MigrationStats(msgspec.Struct):
    """Statistics over the runs created in the window (all runs without `since`/`until`), plus figures
    about now (`recent_24h`, `last_24h`, `running_now`, `stuck`) that do not depend on the window."""

    total_migrations: Annotated[int, msgspec.Meta(ge=0, description="Runs in the window")]
    status_breakdown: Annotated[dict[str, int], msgspec.Meta(description="Runs in the window by status")]
    recent_24h: Annotated[int, msgspec.Meta(ge=0, description="Runs created in the last 24 h (not windowed)")]
    record_type_breakdown: Annotated[dict[str, int], msgspec.Meta(description="Runs in the window by record type")]
    success_rate: Annotated[
        float | None,
        msgspec.Meta(description="Runs with `success` true / runs with `success` set, in the window; 4 decimals"),
    ] = msgspec.field(default=None)
    average_duration: Annotated[
        float | None,
        msgspec.Meta(description="Mean of the finite `total_duration`s in the window, seconds; 3 decimals"),
    ] = None
    since: Annotated[datetime | None, msgspec.Meta(description="Start of the window (inclusive), as given")] = None
    until: Annotated[datetime | None, msgspec.Meta(description="End of the window (exclusive), as given")] = None
    duration: Annotated[
        DurationStats | None, msgspec.Meta(description="Duration percentiles and max over the window")
    ] = None
    duration_by_record_type: Annotated[
        dict[str, DurationStats], msgspec.Meta(description="The same per record type")
    ] = msgspec.field(default_factory=dict)
    last_24h: Last24h | None = None
    running_now: Annotated[int, msgspec.Meta(ge=0, description="Runs in status `running` now")] = 0
    stuck: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            description=(
                "Running runs with no sign of life for `stuck_after_minutes`: no state, no checkpoint "
                "and no update of the run row (`updated_at`) in that time"
            ),
        ),
    ] = 0
    stuck_after_minutes: Annotated[
        float, msgspec.Meta(description="The threshold for `stuck` (setting STUCK_AFTER_MINUTES)")
    ] = 30.0
    groups: Annotated[
        list[StatsGroup] | None, msgspec.Meta(description="Per group of `group_by`, largest first; null without it")
    ] = None


class HistoryBucket(msgspec.Struct):
    """Runs created in one hour or day (UTC)."""

    start: Annotated[datetime, msgspec.Meta(description="Start of the bucket (inclusive)")]
    end: Annotated[datetime, msgspec.Meta(description="End of the bucket (exclusive)")]
    total: Annotated[int, msgspec.Meta(ge=0, description="Runs created in the bucket")]
    by_status: Annotated[dict[str, int], msgspec.Meta(description="Those runs by their current status")]
    succeeded: Annotated[int, msgspec.Meta(ge=0, description="Runs with `success` true")]
    finished: Annotated[int, msgspec.Meta(ge=0, description="Runs with `success` set")]
    success_rate: Annotated[float | None, msgspec.Meta(description="succeeded / finished, 4 decimals")]
    duration: DurationStats


class StatsHistory(msgspec.Struct):
    """Time buckets from `since` to `until` (both rounded out to whole buckets), empty buckets included."""

    interval: Annotated[str, msgspec.Meta(description="`hour` or `day` (UTC)")]
    since: Annotated[datetime, msgspec.Meta(description="Start of the first bucket")]
    until: Annotated[datetime, msgspec.Meta(description="End of the last bucket")]
    buckets: list[HistoryBucket]


class ErrorGroup(msgspec.Struct):
    """Failed runs whose error messages differ only in ids, numbers, paths and quoted values."""

    fingerprint: Annotated[
        str,
        msgspec.Meta(
            description=(
                "The error message with UUIDs as <id>, paths as <path>, quoted values containing a digit as "
                "<str>, hex ids as <hex>, numbers as <n> ('' when the run has no message)"
            )
        ),
    ]
    count: Annotated[int, msgspec.Meta(ge=1, description="Failed runs with this fingerprint in the window")]
    first_seen: Annotated[datetime, msgspec.Meta(description="`created_at` of the earliest of them")]
    last_seen: Annotated[datetime, msgspec.Meta(description="`created_at` of the latest of them")]
    record_types: Annotated[dict[str, int], msgspec.Meta(description="How many of them per record type")]
    example_run_ids: Annotated[list[uuid.UUID], msgspec.Meta(description="Up to 3 of them, most recent first")]
    example_message: Annotated[str | None, msgspec.Meta(description="The error message of the most recent one")]


class ErrorStats(msgspec.Struct):
    """Failures (runs in status `failed`) created in the window, grouped by error fingerprint."""

    since: Annotated[datetime | None, msgspec.Meta(description="Start of the window (inclusive), as given")]
    until: Annotated[datetime | None, msgspec.Meta(description="End of the window (exclusive), as given")]
    total_failed: Annotated[int, msgspec.Meta(ge=0, description="Failed runs in the window")]
    fingerprints: Annotated[int, msgspec.Meta(ge=0, description="Distinct fingerprints in the window")]
    groups: Annotated[list[ErrorGroup], msgspec.Meta(description="Most frequent first, at most `limit`")]
