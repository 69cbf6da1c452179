"""A run's workflow step states and checkpoints: read them, and append them as an engine does."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypeVar, cast

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, PathParameter, QueryParameter

import run_rules
from auth import READ, WRITE, requires
from config import Settings
from controllers.protocol import (
    COMMIT_POSITION_HEADER,
    REPLAYED_RESPONSE_HEADER,
    IdempotencyKeyHeader,
    LateReport,
    RunIdPath,
    error_responses,
    next_link,
    parse_id,
    run_location,
    stored_response,
    write_scope,
)
from controllers.providers import (
    provide_checkpoints_repo,
    provide_idempotency,
    provide_runs_repo,
    provide_settings,
    provide_states_repo,
)
from dto.steps import (
    MAX_BATCH_ITEMS,
    CheckpointBatch,
    CheckpointCreate,
    CheckpointRead,
    StateBatch,
    StateCreate,
    StateRead,
)
from dto.validation import NUL_FREE_PATTERN
from errors import DomainError, NotFound, PayloadTooLarge, RunNotFound
from repositories.checkpoints import CheckpointsRepository
from repositories.idempotency import IdempotencyStore, StoredResponse, request_hash
from repositories.paging import DEFAULT_PAGE_ITEMS, MAX_PAGE_BYTES, MAX_PAGE_ITEMS, PageWindow
from repositories.runs import RunsRepository
from repositories.states import StatesRepository

ItemIdPath = Annotated[str, PathParameter(description="The item's id, a UUID", format="uuid")]
# The bounds are stated on the parameter: Litestar neither documents nor checks those of the type.
NameFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only checkpoints of this name (exact match)",
        min_length=1,
        max_length=100,
        pattern=NUL_FREE_PATTERN,
    ),
]
LOCATION_HEADER = ResponseHeader(
    name="Location", description="URL of the new item (of the run's list, for a batch)", documentation_only=True
)
APPEND_HEADERS = [LOCATION_HEADER, REPLAYED_RESPONSE_HEADER, COMMIT_POSITION_HEADER]
# Litestar documents a top-level array body without the bounds of its type; stated here.
BATCH_BODY = Body(media_type=RequestEncodingType.JSON, min_items=1, max_items=MAX_BATCH_ITEMS)
PAGE_LINK_HEADER = ResponseHeader(
    name="Link",
    description='`<URL>; rel="next"`: the next page (same query with `cursor`); absent on the last page',
    documentation_only=True,
)
PageLimit = Annotated[
    int,
    QueryParameter(
        description=f"Most items in this page (default {DEFAULT_PAGE_ITEMS:,}, at most {MAX_PAGE_ITEMS:,}); a page "
        f"also ends once it holds about {MAX_PAGE_BYTES // 1024 // 1024} MiB",
        ge=1,
        le=MAX_PAGE_ITEMS,
    ),
]
PageCursor = Annotated[
    str | None,
    QueryParameter(
        description='Where the page starts: the cursor from the previous page\'s `Link: <…>; rel="next"` '
        "(the id of its last item); without it, the first page",
        format="uuid",
    ),
]


class StepsController(Controller):
    path = "/api/v1/migrations/{run_id:str}"
    tags = ["States and checkpoints"]
    dependencies = {
        "runs_repo": Provide(provide_runs_repo),
        "states_repo": Provide(provide_states_repo),
        "checkpoints_repo": Provide(provide_checkpoints_repo),
        "idempotency": Provide(provide_idempotency),
        "settings": Provide(provide_settings),
    }

    @get(
        "/states",
        operation_id="ListRunStates",
        response_description=(
            "A page of the run's step states by `step_order` (an empty array when it has none); `Link` points at "
            "the next page when there is one."
        ),
        response_headers=[PAGE_LINK_HEADER],
        **requires(READ),
        summary="A run's step states, by step order",
        responses=error_responses(404),
    )
    async def list_states(
        self,
        request: Request[Any, Any, Any],
        states_repo: NamedDependency[StatesRepository],
        run_id: RunIdPath,
        limit: PageLimit = DEFAULT_PAGE_ITEMS,
        cursor: PageCursor = None,
    ) -> Response[list[StateRead]]:
        """The run's step states by `step_order`, a page at a time; `[]` when it has none.

        A page holds up to `limit` states and stops early once it holds about 16 MiB; when more
        follow, `Link: <…>; rel="next"` gives the URL of the next page.
        """
        page = await states_repo.page_encoded(parse_id(run_id), PageWindow(limit, _cursor(cursor)))
        if page is None:
            raise RunNotFound(run_id)
        body, following = page
        headers = {} if following is None else {"Link": next_link(request, str(following))}
        return cast("Response[list[StateRead]]", Response(body, media_type=MediaType.JSON, headers=headers))

    @get(
        "/states/latest",
        operation_id="GetLatestRunState",
        response_description=("The run's furthest step: the state with the highest `step_order`."),
        **requires(READ),
        summary="A run's furthest step state",
        responses=error_responses(404),
    )
    async def latest_state(
        self,
        runs_repo: NamedDependency[RunsRepository],
        states_repo: NamedDependency[StatesRepository],
        run_id: RunIdPath,
    ) -> StateRead:
        """The state with the highest `step_order` (the newest on ties); 404 when the run has none."""
        run_uuid = parse_id(run_id)
        state = await states_repo.latest(run_uuid)
        if state is None:
            raise await _missing(runs_repo, run_uuid, run_id, "step states")
        return state

    @get(
        "/states/{state_id:str}",
        operation_id="GetRunState",
        response_description=("The step state with its data."),
        **requires(READ),
        summary="One step state of a run",
        responses=error_responses(404),
    )
    async def get_state(
        self, states_repo: NamedDependency[StatesRepository], run_id: RunIdPath, state_id: ItemIdPath
    ) -> StateRead:
        """The state with this id, if it belongs to this run."""
        state = await states_repo.get(parse_id(run_id), parse_id(state_id, "state_id"))
        if state is None:
            raise NotFound(f"state {state_id} of migration run {run_id} not found")
        return state

    @post(
        "/states",
        operation_id="AppendRunState",
        response_description=(
            "The step state was stored with its `step_order`: it is returned with its URL in `Location`."
        ),
        **requires(WRITE),
        summary="Append a step state to a run",
        responses=error_responses(404, 409, 413, 422),
        response_headers=APPEND_HEADERS,
    )
    async def append_state(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        runs_repo: NamedDependency[RunsRepository],
        states_repo: NamedDependency[StatesRepository],
        idempotency: NamedDependency[IdempotencyStore],
        run_id: RunIdPath,
        data: JSONBody[StateCreate],
        late: LateReport = False,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[StateRead]:
        """Record one step's state; `step_order` defaults to the next free number (409 if taken).

        A finished run (completed, failed, cancelled) takes it only as a late report (`late=true`).
        """
        run_uuid = parse_id(run_id)
        _check_size(settings, len(await request.body()), "the state")

        async def insert() -> tuple[StateRead, str]:
            [state] = await states_repo.insert_many(run_uuid, await _number_steps(states_repo, run_uuid, [data]))
            return state, f"{run_location(run_uuid)}/states/{state.id}"

        append = _Append(run_uuid, late, "a step state", idempotency_key)
        return await append.run(request, runs_repo, idempotency, data, insert, StateRead)

    @post(
        "/states/batch",
        operation_id="AppendRunStates",
        response_description=(
            "All the step states were stored, in the order sent, with consecutive `step_order`s (none are stored if "
            "one is refused)."
        ),
        **requires(WRITE),
        summary="Append several step states at once (all or nothing)",
        responses=error_responses(404, 409, 413, 422),
        response_headers=APPEND_HEADERS,
    )
    async def append_states(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        runs_repo: NamedDependency[RunsRepository],
        states_repo: NamedDependency[StatesRepository],
        idempotency: NamedDependency[IdempotencyStore],
        run_id: RunIdPath,
        data: Annotated[StateBatch, BATCH_BODY],
        late: LateReport = False,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[list[StateRead]]:
        """Record 1 to 1000 states in one transaction, in the order sent; if one is refused, none is stored.

        States without `step_order` are numbered after the highest stored or sent one.
        """
        run_uuid = parse_id(run_id)
        _check_batch(settings, data, "state")

        async def insert() -> tuple[list[StateRead], str]:
            states = await states_repo.insert_many(run_uuid, await _number_steps(states_repo, run_uuid, data))
            return states, f"{run_location(run_uuid)}/states"

        append = _Append(run_uuid, late, "step states", idempotency_key)
        return await append.run(request, runs_repo, idempotency, data, insert, list[StateRead])

    @get(
        "/checkpoints",
        operation_id="ListRunCheckpoints",
        response_description=(
            "A page of the run's checkpoints, oldest first (an empty array when it has none); `Link` points at the "
            "next page when there is one."
        ),
        response_headers=[PAGE_LINK_HEADER],
        **requires(READ),
        summary="A run's checkpoints, oldest first",
        responses=error_responses(404),
    )
    async def list_checkpoints(
        self,
        request: Request[Any, Any, Any],
        checkpoints_repo: NamedDependency[CheckpointsRepository],
        run_id: RunIdPath,
        limit: PageLimit = DEFAULT_PAGE_ITEMS,
        cursor: PageCursor = None,
    ) -> Response[list[CheckpointRead]]:
        """The run's checkpoints by `created_at`, a page at a time (as for states); `[]` when it has none."""
        page = await checkpoints_repo.page(parse_id(run_id), PageWindow(limit, _cursor(cursor)))
        if page is None:
            raise RunNotFound(run_id)
        headers = {} if page.next_cursor is None else {"Link": next_link(request, str(page.next_cursor))}
        return Response(page.items, headers=headers)

    @get(
        "/checkpoints/latest",
        operation_id="GetLatestRunCheckpoint",
        response_description=(
            "The run's newest checkpoint (of the given `name`, when one is given): where to resume from."
        ),
        **requires(READ),
        summary="A run's newest checkpoint, optionally of one name",
        responses=error_responses(404),
    )
    async def latest_checkpoint(
        self,
        runs_repo: NamedDependency[RunsRepository],
        checkpoints_repo: NamedDependency[CheckpointsRepository],
        run_id: RunIdPath,
        name: NameFilter = None,
    ) -> CheckpointRead:
        """The newest checkpoint of the run, or the newest named `name`: where an engine resumes from."""
        run_uuid = parse_id(run_id)
        checkpoint = await checkpoints_repo.latest(run_uuid, name)
        if checkpoint is None:
            raise await _missing(runs_repo, run_uuid, run_id, "checkpoints" if name is None else f"checkpoint {name!r}")
        return checkpoint

    @get(
        "/checkpoints/{checkpoint_id:str}",
        operation_id="GetRunCheckpoint",
        response_description=("The checkpoint with its saved state."),
        **requires(READ),
        summary="One checkpoint of a run",
        responses=error_responses(404),
    )
    async def get_checkpoint(
        self,
        checkpoints_repo: NamedDependency[CheckpointsRepository],
        run_id: RunIdPath,
        checkpoint_id: ItemIdPath,
    ) -> CheckpointRead:
        """The checkpoint with this id, if it belongs to this run (by name: `.../checkpoints/latest?name=`)."""
        checkpoint = await checkpoints_repo.get(parse_id(run_id), parse_id(checkpoint_id, "checkpoint_id"))
        if checkpoint is None:
            raise NotFound(f"checkpoint {checkpoint_id} of migration run {run_id} not found")
        return checkpoint

    @post(
        "/checkpoints",
        operation_id="AppendRunCheckpoint",
        response_description=("The checkpoint was stored: it is returned with its URL in `Location`."),
        **requires(WRITE),
        summary="Append a checkpoint to a run",
        responses=error_responses(404, 409, 413, 422),
        response_headers=APPEND_HEADERS,
    )
    async def append_checkpoint(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        runs_repo: NamedDependency[RunsRepository],
        checkpoints_repo: NamedDependency[CheckpointsRepository],
        idempotency: NamedDependency[IdempotencyStore],
        run_id: RunIdPath,
        data: JSONBody[CheckpointCreate],
        late: LateReport = False,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[CheckpointRead]:
        """Record a checkpoint; a finished run takes it only as a late report (`late=true`)."""
        run_uuid = parse_id(run_id)
        _check_size(settings, len(await request.body()), "the checkpoint")

        async def insert() -> tuple[CheckpointRead, str]:
            [checkpoint] = await checkpoints_repo.insert_many(run_uuid, [data])
            return checkpoint, f"{run_location(run_uuid)}/checkpoints/{checkpoint.id}"

        append = _Append(run_uuid, late, "a checkpoint", idempotency_key)
        return await append.run(request, runs_repo, idempotency, data, insert, CheckpointRead)

    @post(
        "/checkpoints/batch",
        operation_id="AppendRunCheckpoints",
        response_description=(
            "All the checkpoints were stored, in the order sent (none are stored if one is refused)."
        ),
        **requires(WRITE),
        summary="Append several checkpoints at once (all or nothing)",
        responses=error_responses(404, 409, 413, 422),
        response_headers=APPEND_HEADERS,
    )
    async def append_checkpoints(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        runs_repo: NamedDependency[RunsRepository],
        checkpoints_repo: NamedDependency[CheckpointsRepository],
        idempotency: NamedDependency[IdempotencyStore],
        run_id: RunIdPath,
        data: Annotated[CheckpointBatch, BATCH_BODY],
        late: LateReport = False,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[list[CheckpointRead]]:
        """Record 1 to 1000 checkpoints in one transaction, in the order sent; all or nothing."""
        run_uuid = parse_id(run_id)
        _check_batch(settings, data, "checkpoint")

        async def insert() -> tuple[list[CheckpointRead], str]:
            checkpoints = await checkpoints_repo.insert_many(run_uuid, data)
            return checkpoints, f"{run_location(run_uuid)}/checkpoints"

        append = _Append(run_uuid, late, "checkpoints", idempotency_key)
        return await append.run(request, runs_repo, idempotency, data, insert, list[CheckpointRead])


B = TypeVar("B")


class _Append:
    """The one path of every state and checkpoint append: in one transaction, lock the run (404
    if none), apply run_rules.check_append, insert, and answer 201 with `Location`; at most once
    per `Idempotency-Key`."""

    __slots__ = ("key", "late", "run_id", "what")

    def __init__(self, run_id: uuid.UUID, late: bool, what: str, key: str | None) -> None:
        self.run_id, self.late, self.what, self.key = run_id, late, what, key

    async def run(
        self,
        request: Request[Any, Any, Any],
        runs_repo: RunsRepository,
        idempotency: IdempotencyStore,
        data: object,
        insert: Callable[[], Awaitable[tuple[B, str]]],
        body_type: type[B],
    ) -> Response[B]:
        async def action() -> StoredResponse[B]:
            locked = await runs_repo.lock(self.run_id)
            if locked is None:
                raise RunNotFound(self.run_id)
            run_rules.check_append(self.run_id, locked.run.status, self.late, self.what)
            body, location = await insert()
            return StoredResponse(201, body, {"Location": location})

        scope = write_scope(request)
        fingerprint = request_hash(scope, request.url.query, data)
        return stored_response(await idempotency.once(self.key, scope, fingerprint, action, body_type))


def _cursor(raw: str | None) -> uuid.UUID | None:
    return None if raw is None else parse_id(raw, "cursor")


async def _missing(runs_repo: RunsRepository, run_uuid: uuid.UUID, run_id: str, what: str) -> NotFound:
    if not await runs_repo.exists(run_uuid):
        return RunNotFound(run_id)
    return NotFound(f"migration run {run_id} has no {what}")


def _check_size(settings: Settings, size: int, what: str) -> None:
    limit = settings.max_state_bytes
    if size > limit:
        raise PayloadTooLarge(f"{what} is {size} bytes, over the limit of {limit} bytes per state (MAX_STATE_BYTES)")


def _check_batch(settings: Settings, items: Sequence[Any], what: str) -> None:
    # Checked here: Litestar does not apply msgspec's length bounds to a top-level array body.
    if not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise DomainError(f"a batch holds 1 to {MAX_BATCH_ITEMS} items, got {len(items)}")
    for i, item in enumerate(items):
        _check_size(settings, len(msgspec.json.encode(item)), f"{what} [{i}]")


async def _number_steps(
    states_repo: StatesRepository, run_uuid: uuid.UUID, states: Sequence[StateCreate]
) -> list[tuple[StateCreate, int]]:
    """Each state with its step_order (run_rules.number_steps), from what the run has stored."""
    given = run_rules.requested_step_orders(states)
    taken = await states_repo.taken_step_orders(run_uuid, given) if given else []
    highest = 0
    if len(given) < len(states) and not taken:
        highest = await states_repo.next_step_order(run_uuid) - 1
    return run_rules.number_steps(run_uuid, states, taken, highest)
