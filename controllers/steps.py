"""A run's workflow step states and checkpoints."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException

from controllers.common import (
    RunIdPath,
    error_responses,
    parse_run_id,
    provide_checkpoints_repo,
    provide_runs_repo,
    provide_states_repo,
)
from dto.steps import CheckpointRead, StateRead
from repositories.checkpoints import CheckpointsRepository
from repositories.runs import RunsRepository
from repositories.states import StatesRepository


class StepsController(Controller):
    path = "/api/v1/migrations/{run_id:str}"
    tags = ["States and checkpoints"]
    dependencies = {
        "runs_repo": Provide(provide_runs_repo),
        "states_repo": Provide(provide_states_repo),
        "checkpoints_repo": Provide(provide_checkpoints_repo),
    }

    @get(
        "/states",
        operation_id="ListRunStates",
        summary="A run's step states, by step order",
        responses=error_responses(404),
    )
    async def list_states(
        self,
        runs_repo: NamedDependency[RunsRepository],
        states_repo: NamedDependency[StatesRepository],
        run_id: RunIdPath,
    ) -> list[StateRead]:
        """Every recorded step state of the run, by `step_order`; `[]` when it has none."""
        rid = parse_run_id(run_id)
        states = await states_repo.list_for_run(rid)
        if not states and not await runs_repo.exists(rid):
            raise NotFoundException(detail=f"migration run {run_id} not found")
        return states

    @get(
        "/checkpoints",
        operation_id="ListRunCheckpoints",
        summary="A run's checkpoints, oldest first",
        responses=error_responses(404),
    )
    async def list_checkpoints(
        self,
        runs_repo: NamedDependency[RunsRepository],
        checkpoints_repo: NamedDependency[CheckpointsRepository],
        run_id: RunIdPath,
    ) -> list[CheckpointRead]:
        """Every checkpoint of the run, by `created_at`; `[]` when it has none."""
        rid = parse_run_id(run_id)
        checkpoints = await checkpoints_repo.list_for_run(rid)
        if not checkpoints and not await runs_repo.exists(rid):
            raise NotFoundException(detail=f"migration run {run_id} not found")
        return checkpoints
