"""The runs resource: list, search, read, create, update, delete."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, QueryParameter

from controllers.common import (
    RunIdPath,
    error_responses,
    parse_run_id,
    provide_runs_repo,
    run_location,
)
from dto.runs import RunCreate, RunRead, RunUpdate
from errors import DomainError
from repositories.runs import RunFilters, RunsRepository

RecordTypeFilter = Annotated[
    str | None, QueryParameter(description="Only runs of this record type (exact match)", max_length=100)
]
FilePathFilter = Annotated[
    str | None,
    QueryParameter(description="Only runs whose file path contains this text (case-insensitive)", max_length=500),
]
StatusFilter = Annotated[
    str | None, QueryParameter(description="Only runs in this status (exact match)", max_length=50)
]
Limit = Annotated[int, QueryParameter(description="Page size", ge=1, le=500)]
Offset = Annotated[int, QueryParameter(description="Rows to skip", ge=0, le=10_000_000)]
SearchTerm = Annotated[
    str | None,
    QueryParameter(
        description=(
            "Case-insensitive substring matched against file path, record type, status, error message "
            "and run id; `%`, `_` and `\\` match themselves"
        ),
        min_length=1,
        max_length=200,
    ),
]


class RunsController(Controller):
    path = "/api/v1/migrations"
    tags = ["Runs"]
    dependencies = {"runs_repo": Provide(provide_runs_repo)}

    @get(
        "/",
        operation_id="ListMigrationRuns",
        summary="List runs, newest first",
        responses=error_responses(),
    )
    async def list_runs(
        self,
        runs_repo: NamedDependency[RunsRepository],
        record_type: RecordTypeFilter = None,
        file_path: FilePathFilter = None,
        status: StatusFilter = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[RunRead]:
        """Runs newest first (ties broken by id), optionally filtered."""
        filters = RunFilters(record_type=record_type, file_path=file_path, status=status)
        return await runs_repo.list(filters, limit=limit, offset=offset)

    @get(
        "/search",
        operation_id="SearchMigrationRuns",
        summary="Search runs by text and filters",
        responses=error_responses(),
    )
    async def search_runs(
        self,
        runs_repo: NamedDependency[RunsRepository],
        q: SearchTerm = None,
        record_type: RecordTypeFilter = None,
        file_path: FilePathFilter = None,
        status: StatusFilter = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[RunRead]:
        """Runs matching `q` and/or the list filters, newest first. At least one is required."""
        if q is None and record_type is None and file_path is None and status is None:
            raise DomainError("give a search term `q` or at least one filter: record_type, file_path, status")
        filters = RunFilters(record_type=record_type, file_path=file_path, status=status, q=q)
        return await runs_repo.list(filters, limit=limit, offset=offset)

    @get(
        "/{run_id:str}",
        operation_id="GetMigrationRun",
        summary="Get one run",
        responses=error_responses(404),
    )
    async def get_run(self, runs_repo: NamedDependency[RunsRepository], run_id: RunIdPath) -> RunRead:
        """The run with this id."""
        run = await runs_repo.get(parse_run_id(run_id))
        if run is None:
            raise NotFoundException(detail=f"migration run {run_id} not found")
        return run

    @post(
        "/",
        operation_id="CreateMigrationRun",
        summary="Create a run",
        responses=error_responses(409, 422),
        response_headers=[ResponseHeader(name="Location", description="URL of the new run", documentation_only=True)],
    )
    async def create_run(
        self, runs_repo: NamedDependency[RunsRepository], data: JSONBody[RunCreate]
    ) -> Response[RunRead]:
        """Store a new run; 201 with its URL in `Location`."""
        run = await runs_repo.create(data, {})
        return Response(run, status_code=201, headers={"Location": run_location(run.id)})

    @patch(
        "/{run_id:str}",
        operation_id="UpdateMigrationRun",
        summary="Update some fields of a run",
        responses=error_responses(404, 409, 422),
    )
    async def update_run(
        self, runs_repo: NamedDependency[RunsRepository], run_id: RunIdPath, data: JSONBody[RunUpdate]
    ) -> RunRead:
        """Change only the fields sent; `updated_at` is set by the server."""
        rid = parse_run_id(run_id)
        changes = data.changes()
        run = await runs_repo.update(rid, changes) if changes else await runs_repo.get(rid)
        if run is None:
            raise NotFoundException(detail=f"migration run {run_id} not found")
        return run

    @delete(
        "/{run_id:str}",
        operation_id="DeleteMigrationRun",
        summary="Delete a run with its states and checkpoints",
        responses=error_responses(404, 409),
    )
    async def delete_run(self, runs_repo: NamedDependency[RunsRepository], run_id: RunIdPath) -> None:
        """Delete the run, its states and its checkpoints in one transaction; 204."""
        if not await runs_repo.delete(parse_run_id(run_id)):
            raise NotFoundException(detail=f"migration run {run_id} not found")
