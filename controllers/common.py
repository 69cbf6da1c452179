"""Pieces every controller uses: dependency providers, path parsing, documented error responses."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter

from dto.common import ErrorResponse
from errors import DomainError
from repositories.checkpoints import CheckpointsRepository
from repositories.runs import RunsRepository
from repositories.states import StatesRepository
from repositories.stats import StatsRepository

RunIdPath = Annotated[
    str,
    PathParameter(
        description="The run's id, a UUID such as `3fa85f64-5717-4562-b3fc-2c963f66afa6`",
        format="uuid",
        examples=None,
    ),
]

_ERROR_TEXT = {
    400: "Bad request: a parameter or body field is invalid (named in `detail` / `extra`)",
    404: "Not found",
    409: "Conflict with the stored state (`detail` says which)",
    412: "Precondition failed: the run changed since the given `If-Match` ETag",
    413: "Request body too large",
    422: "The database refused the write (a constraint it carries); `detail` says which",
    503: "Database unavailable or too slow; nothing was changed",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the given error codes, always with 400 and 503."""
    return {
        code: ResponseSpec(data_container=ErrorResponse, description=_ERROR_TEXT[code], generate_examples=False)
        for code in sorted({400, 503, *codes})
    }


def parse_run_id(raw: str) -> uuid.UUID:
    """The path's run id as a UUID, or a 400 that names the parameter."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise DomainError(f"run_id must be a UUID, got {raw!r}") from None


async def provide_runs_repo(state: State) -> RunsRepository:
    return RunsRepository(state.pool)


async def provide_states_repo(state: State) -> StatesRepository:
    return StatesRepository(state.pool)


async def provide_checkpoints_repo(state: State) -> CheckpointsRepository:
    return CheckpointsRepository(state.pool)


async def provide_stats_repo(state: State) -> StatsRepository:
    return StatsRepository(state.pool)


def run_location(run_id: Any) -> str:
    return f"/api/v1/migrations/{run_id}"
