"""The runs resource: list, search, read, create, update, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, cast

from litestar import Controller, MediaType, Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter

import lifecycle
import run_rules
from auth import ADMIN, READ, WRITE, requires
from controllers.cached_runs import CachedRunAnswer
from controllers.protocol import (
    COMMIT_POSITION_HEADER,
    ETAG_HEADER,
    NOT_MODIFIED,
    REPLAYED_RESPONSE_HEADER,
    ForceDelete,
    IdempotencyKeyHeader,
    IfMatchHeader,
    IfNoneMatchHeader,
    RunIdPath,
    error_responses,
    etag_matches,
    parse_id,
    require_if_match,
    run_etag,
    run_location,
    stored_response,
    write_scope,
)
from controllers.providers import provide_idempotency, provide_runs_repo
from controllers.run_queries import (
    PAGING_HEADERS,
    SEARCH_DESCRIPTION,
    CountMode,
    CountParam,
    RunListRequest,
    page_response,
    provide_run_listing,
)
from dto.runs import CancelRequest, RunCreate, RunRead, RunUpdate
from errors import DomainError, RunNotFound
from repositories.idempotency import IdempotencyStore, StoredResponse, request_hash
from repositories.runs import LockedRun, RunsRepository

SearchTerm = Annotated[str | None, QueryParameter(description=SEARCH_DESCRIPTION, min_length=1, max_length=200)]


class RunsController(Controller):
    path = "/api/v1/migrations"
    tags = ["Runs"]
    dependencies = {"runs_repo": Provide(provide_runs_repo), "idempotency": Provide(provide_idempotency)}

    @get(
        "/",
        operation_id="ListMigrationRuns",
        response_description=(
            "One page of runs in `sort` order (an empty array when nothing matches); `Link` points at the next page, "
            "`X-Total-Count` holds the count when asked for."
        ),
        **requires(READ),
        summary="List runs: filters, sort, cursor pages",
        responses=error_responses(),
        response_headers=PAGING_HEADERS,
        dependencies={"listing": Provide(provide_run_listing)},
    )
    async def list_runs(
        self,
        request: Request[Any, Any, Any],
        listing: NamedDependency[RunListRequest],
        count: CountParam = CountMode.NONE,
    ) -> Response[list[RunRead]]:
        """Runs in `sort` order (default newest first, ties by id), filtered; a JSON array of runs."""
        return await page_response(request, listing, count, on_replica=True)

    @get(
        "/search",
        operation_id="SearchMigrationRuns",
        response_description=(
            "One page of matching runs, best matches first (exact, then prefix, then substring), each tier in `sort` "
            "order; an empty array when nothing matches."
        ),
        **requires(READ),
        summary="Search runs by text and filters, ranked",
        responses=error_responses(),
        response_headers=PAGING_HEADERS,
        dependencies={"listing": Provide(provide_run_listing)},
    )
    async def search_runs(
        self,
        request: Request[Any, Any, Any],
        listing: NamedDependency[RunListRequest],
        q: SearchTerm = None,
        count: CountParam = CountMode.NONE,
    ) -> Response[list[RunRead]]:
        """Runs matching `q` and/or the list filters (at least one is required), best matches first."""
        if q is None and listing.query.is_unfiltered():
            raise DomainError("give a search term `q` or at least one filter (status, record_type, file_path, ...)")
        if q is not None and any(ord(ch) < 32 for ch in q):
            raise DomainError("q must not contain control characters")
        listing.query.q = q
        return await page_response(request, listing, count)

    @get(
        "/{run_id:str}",
        operation_id="GetMigrationRun",
        response_description=("The run with all ten stored fields, and its version in `ETag`."),
        **requires(READ),
        summary="Get one run",
        responses={**error_responses(404), 304: NOT_MODIFIED},
        response_headers=[ETAG_HEADER],
        middleware=[CachedRunAnswer],
    )
    async def get_run(
        self,
        runs_repo: NamedDependency[RunsRepository],
        run_id: RunIdPath,
        if_none_match: IfNoneMatchHeader = None,
    ) -> Response[RunRead]:
        """The run with this id, with its `ETag`; 304 when `If-None-Match` names it."""
        found = await runs_repo.get_encoded(parse_id(run_id))
        if found is None:
            raise RunNotFound(run_id)
        body, tag = found
        if if_none_match is not None and etag_matches(if_none_match, tag):
            return cast("Response[RunRead]", Response(b"", status_code=304, headers={"ETag": tag}))
        return cast("Response[RunRead]", Response(body, media_type=MediaType.JSON, headers={"ETag": tag}))

    @post(
        "/",
        operation_id="CreateMigrationRun",
        response_description=(
            "The run was created: the stored run, with its URL in `Location` and its version in `ETag` (the same "
            "response again for a replayed `Idempotency-Key`)."
        ),
        **requires(WRITE),
        summary="Create a run",
        responses=error_responses(409, 413, 422),
        response_headers=[
            ResponseHeader(name="Location", description="URL of the new run", documentation_only=True),
            ETAG_HEADER,
            REPLAYED_RESPONSE_HEADER,
            COMMIT_POSITION_HEADER,
        ],
    )
    async def create_run(
        self,
        request: Request[Any, Any, Any],
        runs_repo: NamedDependency[RunsRepository],
        idempotency: NamedDependency[IdempotencyStore],
        data: JSONBody[RunCreate],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[RunRead]:
        """Store a new run; 201 with its URL in `Location`. Honours `Idempotency-Key`."""
        columns = lifecycle.plan_create(data.columns(), datetime.now(UTC))

        async def create() -> StoredResponse[RunRead]:
            run = await runs_repo.create(columns)
            return StoredResponse(201, run, {"Location": run_location(run.id), "ETag": run_etag(run)})

        scope = write_scope(request)
        fingerprint = request_hash(scope, request.url.query, data)
        return stored_response(await idempotency.once(idempotency_key, scope, fingerprint, create, RunRead))

    @patch(
        "/{run_id:str}",
        operation_id="UpdateMigrationRun",
        response_description=(
            "The run as stored after the change (only the fields sent were written, `updated_at` set by the server), "
            "with its new `ETag`."
        ),
        **requires(WRITE),
        summary="Update some fields of a run",
        responses=error_responses(404, 409, 412, 413, 422),
        response_headers=[ETAG_HEADER, COMMIT_POSITION_HEADER],
    )
    async def update_run(
        self,
        runs_repo: NamedDependency[RunsRepository],
        run_id: RunIdPath,
        data: JSONBody[RunUpdate],
        if_match: IfMatchHeader = None,
    ) -> Response[RunRead]:
        """Change only the fields sent; a `status` change follows the lifecycle (409 otherwise)."""
        async with runs_repo.locked(parse_id(run_id)) as locked:
            current = _found(locked, run_id)
            require_if_match(if_match, current.run)
            changes = lifecycle.plan_update(current.run.status, current.run.created_at, data.changes(), current.now)
            run = await current.update(changes) if changes else current.run
        return Response(run, headers={"ETag": run_etag(run)})

    @post(
        "/{run_id:str}/cancel",
        operation_id="CancelMigrationRun",
        response_description=(
            "The run as stored after the cancel (status `cancelled`, the reason in `error_message`), with its new "
            "`ETag`; also for a run that was already cancelled."
        ),
        **requires(WRITE),
        summary="Cancel a run",
        status_code=200,
        responses=error_responses(404, 409, 412, 422),
        response_headers=[ETAG_HEADER, COMMIT_POSITION_HEADER],
    )
    async def cancel_run(
        self,
        runs_repo: NamedDependency[RunsRepository],
        run_id: RunIdPath,
        data: JSONBody[CancelRequest | None] = None,
        if_match: IfMatchHeader = None,
    ) -> Response[RunRead]:
        """Move the run to 'cancelled' (an optional `reason` goes to `error_message`); a no-op if it already is."""
        async with runs_repo.locked(parse_id(run_id)) as locked:
            current = _found(locked, run_id)
            require_if_match(if_match, current.run)
            run = current.run
            if run.status != lifecycle.CANCELLED:
                changes: dict[str, Any] = {"status": lifecycle.CANCELLED}
                if data is not None and data.reason is not None:
                    changes["error_message"] = data.reason
                run = await current.update(lifecycle.plan_update(run.status, run.created_at, changes, current.now))
        return Response(run, headers={"ETag": run_etag(run)})

    @delete(
        "/{run_id:str}",
        operation_id="DeleteMigrationRun",
        response_description=("The run, its step states and its checkpoints were deleted together; no body."),
        **requires(ADMIN),
        summary="Delete a run with its states and checkpoints",
        responses=error_responses(404, 409, 412),
    )
    async def delete_run(
        self,
        runs_repo: NamedDependency[RunsRepository],
        run_id: RunIdPath,
        force: ForceDelete = False,
        if_match: IfMatchHeader = None,
    ) -> None:
        """Delete the run, its states and its checkpoints in one transaction; 204.

        A running or paused run is deleted only with `force=true` (409 otherwise).
        """
        async with runs_repo.locked(parse_id(run_id)) as locked:
            current = _found(locked, run_id)
            require_if_match(if_match, current.run)
            run_rules.check_delete(run_id, current.run.status, force)
            await current.delete()


def _found(locked: LockedRun | None, run_id: str) -> LockedRun:
    if locked is None:
        raise RunNotFound(run_id)
    return locked
