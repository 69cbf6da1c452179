"""The dependency providers of the controllers: the settings, and each repository (and the
idempotency store) on the request's unit of work (`work`, db/unit_of_work.py).

They live apart from the controllers because more than one controller (and the dashboard) takes
the same repository. Providers that read the request itself stay with their routes:
`provide_run_listing` (controllers/run_queries.py) parses the list query, `provide_hub`
(controllers/events.py) refuses with 503 when there is no change stream.
"""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency

from config import Settings
from db.unit_of_work import UnitOfWork
from events import EventsRepository
from repositories.checkpoints import CheckpointsRepository
from repositories.idempotency import IdempotencyStore
from repositories.runs import RunsRepository
from repositories.states import StatesRepository
from repositories.stats import StatsRepository
from repositories.timeline import TimelineRepository


async def provide_settings(state: State) -> Settings:
    return state.settings  # type: ignore[no-any-return]


async def provide_runs_repo(work: NamedDependency[UnitOfWork]) -> RunsRepository:
    return RunsRepository(work)


async def provide_states_repo(work: NamedDependency[UnitOfWork]) -> StatesRepository:
    return StatesRepository(work)


async def provide_checkpoints_repo(work: NamedDependency[UnitOfWork]) -> CheckpointsRepository:
    return CheckpointsRepository(work)


async def provide_idempotency(state: State, work: NamedDependency[UnitOfWork]) -> IdempotencyStore:
    return IdempotencyStore(work, state.settings.idempotency_ttl_hours * 3600)


async def provide_stats_repo(state: State, work: NamedDependency[UnitOfWork]) -> StatsRepository:
    return StatsRepository(work, stuck_after_minutes=state.settings.stuck_after_minutes)


async def provide_timeline_repo(work: NamedDependency[UnitOfWork]) -> TimelineRepository:
    return TimelineRepository(work)


async def provide_events_repo(work: NamedDependency[UnitOfWork]) -> EventsRepository:
    return EventsRepository(work)
