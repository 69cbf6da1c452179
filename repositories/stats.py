"""Aggregate reads over `migration_runs`."""

from __future__ import annotations

from typing import Final

from psycopg_pool import AsyncConnectionPool

from dto.stats import MigrationStats

SELECT_STATS_GROUPS: Final = """
    SELECT status, record_type, count(*) AS n,
           count(*) FILTER (WHERE created_at >= now() - interval '24 hours') AS recent,
           count(*) FILTER (WHERE success) AS succeeded,
           count(success) AS finished,
           coalesce(sum(total_duration), 0) AS duration_sum,
           count(total_duration) AS durations
      FROM migration_runs
     GROUP BY status, record_type"""


class StatsRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def summary(self) -> MigrationStats:
        async with self.pool.connection() as conn:
            cur = await conn.execute(SELECT_STATS_GROUPS)
            rows = await cur.fetchall()
        by_status: dict[str, int] = {}
        by_type: dict[str, int] = {}
        recent = succeeded = finished = durations = 0
        duration_sum = 0.0
        for status, record_type, n, n_recent, n_ok, n_finished, d_sum, n_dur in rows:
            by_status[status] = by_status.get(status, 0) + n
            by_type[record_type] = by_type.get(record_type, 0) + n
            recent += n_recent
            succeeded += n_ok
            finished += n_finished
            duration_sum += d_sum
            durations += n_dur
        return MigrationStats(
            total_migrations=sum(by_status.values()),
            status_breakdown=by_status,
            recent_24h=recent,
            record_type_breakdown=by_type,
            success_rate=round(succeeded / finished, 4) if finished else None,
            average_duration=round(duration_sum / durations, 3) if durations else None,
        )
