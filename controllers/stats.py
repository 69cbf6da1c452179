"""Statistics over all runs."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency, Provide

from controllers.common import error_responses, provide_stats_repo
from dto.stats import MigrationStats
from repositories.stats import StatsRepository


class StatsController(Controller):
    path = "/api/v1/migrations/stats"
    tags = ["Statistics"]
    dependencies = {"stats_repo": Provide(provide_stats_repo)}

    @get(
        "/", operation_id="GetMigrationStats", summary="Counts, success rate and durations", responses=error_responses()
    )
    async def get_stats(self, stats_repo: NamedDependency[StatsRepository]) -> MigrationStats:
        """Totals by status and record type, runs created in the last 24 h, success rate, mean duration."""
        return await stats_repo.summary()
