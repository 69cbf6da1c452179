"""A run's timeline: its steps in order, each with its duration and the usual duration for its record type."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency, Provide

from auth import READ, requires
from controllers.protocol import RunIdPath, error_responses, parse_id
from controllers.providers import provide_timeline_repo
from dto.timeline import MEDIAN_NOTE, RunTimeline
from errors import RunNotFound
from repositories.timeline import TimelineRepository


class TimelineController(Controller):
    path = "/api/v1/migrations/{run_id:str}"
    tags = ["Statistics"]
    dependencies = {"timeline_repo": Provide(provide_timeline_repo)}

    @get(
        "/timeline",
        operation_id="GetMigrationRunTimeline",
        response_description=(
            "The run's steps in order, each with its duration next to the median of the same step in recent runs of "
            "its record type."
        ),
        **requires(READ),
        summary="A run's steps with their durations next to the usual ones",
        description=(
            "The run's step states by `step_order`; each step lasts until the next state (the last one until "
            "`completed_at`). " + MEDIAN_NOTE
        ),
        responses=error_responses(404),
    )
    async def get_timeline(self, timeline_repo: NamedDependency[TimelineRepository], run_id: RunIdPath) -> RunTimeline:
        """The run's steps in order, each with its duration and the median for its record type."""
        timeline = await timeline_repo.get(parse_id(run_id))
        if timeline is None:
            raise RunNotFound(run_id)
        return timeline
