"""Query parameters shared by the list and search endpoints, and the paging headers they answer with."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, cast

from litestar import MediaType, Request, Response
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from controllers.protocol import next_link, parse_timestamp, timestamp_query
from db.replica import POSITION_HEADER, REPLICA_FAILURES, SERVED_BY_HEADER, Replica
from db.unit_of_work import UnitOfWork
from dto.runs import RunRead
from errors import DomainError
from repositories.run_queries import DEFAULT_SORT, SHORT_TERM_WINDOW, SORT_COLUMNS, QueryError, RunQuery, Sort
from repositories.runs import Page, RunsRepository

MAX_LIST_ITEMS = 20
SORT_KEYS = ", ".join(f"`{k}`" for k in SORT_COLUMNS)


class CountMode(StrEnum):
    NONE = "none"
    EXACT = "exact"
    ESTIMATED = "estimated"


def _many(raw: str | None, parameter: str, max_length: int) -> tuple[str, ...]:
    if raw is None:
        return ()
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
    if not values:
        raise DomainError(f"{parameter} must name at least one value")
    if len(values) > MAX_LIST_ITEMS:
        raise DomainError(f"{parameter} takes at most {MAX_LIST_ITEMS} comma-separated values")
    for value in values:
        if len(value) > max_length:
            raise DomainError(f"{parameter}: each value is at most {max_length} characters")
    return values


def _check_range(low: Any, high: Any, low_name: str, high_name: str) -> None:
    if low is not None and high is not None and low > high:
        raise DomainError(f"{low_name} must not be later/greater than {high_name}")


class RunListRequest:
    """One list or search request: its parsed query (`RunQuery`) and the repository that answers it.

    (The query provider takes the repository as a sub-dependency so that Litestar resolves the
    two one after the other; two independent dependencies would cost a task group per request.)
    """

    __slots__ = ("query", "repo")

    def __init__(self, repo: RunsRepository, query: RunQuery) -> None:
        self.repo = repo
        self.query = query


async def provide_run_listing(
    runs_repo: NamedDependency[RunsRepository],
    status: Annotated[
        str | None,
        QueryParameter(
            description=f"Only these statuses, comma-separated (exact match; at most {MAX_LIST_ITEMS} values "
            "of at most 50 characters)",
            max_length=1000,
        ),
    ] = None,
    record_type: Annotated[
        str | None,
        QueryParameter(
            description=f"Only these record types, comma-separated (exact match; at most {MAX_LIST_ITEMS} values "
            "of at most 100 characters)",
            max_length=2100,
        ),
    ] = None,
    file_path: Annotated[
        str | None,
        QueryParameter(description="Only runs whose file path contains this text (case-insensitive)", max_length=500),
    ] = None,
    success: Annotated[bool | None, QueryParameter(description="Only runs with this outcome")] = None,
    created_after: Annotated[str | None, timestamp_query("Created at or after this time")] = None,
    created_before: Annotated[str | None, timestamp_query("Created before this time")] = None,
    updated_after: Annotated[str | None, timestamp_query("Updated at or after this time")] = None,
    updated_before: Annotated[str | None, timestamp_query("Updated before this time")] = None,
    completed_after: Annotated[str | None, timestamp_query("Completed at or after this time")] = None,
    completed_before: Annotated[str | None, timestamp_query("Completed before this time")] = None,
    min_duration: Annotated[
        float | None, QueryParameter(description="total_duration at least this many seconds", ge=0)
    ] = None,
    max_duration: Annotated[
        float | None, QueryParameter(description="total_duration at most this many seconds", ge=0)
    ] = None,
    sort: Annotated[
        str | None,
        QueryParameter(
            description=f"Sort key, one of {SORT_KEYS}; prefix `-` for descending. Ties are broken by "
            f"`created_at` (for status and record_type) and the run id. Default `{DEFAULT_SORT}`.",
            max_length=20,
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(description="Page size", ge=1, le=500)] = 50,
    offset: Annotated[
        int, QueryParameter(description="Rows to skip (prefer `cursor` for deep pages)", ge=0, le=10_000_000)
    ] = 0,
    cursor: Annotated[
        str | None,
        QueryParameter(
            description='Opaque keyset cursor from the previous page\'s `Link: <…>; rel="next"` header: '
            "continues right after that page's last row, at any depth, without skips or repeats "
            "when runs are added meanwhile. Only valid with the same filters and sort.",
            max_length=2000,
        ),
    ] = None,
) -> RunListRequest:
    try:
        query = RunQuery(
            statuses=_many(status, "status", 50),
            record_types=_many(record_type, "record_type", 100),
            file_path=file_path,
            success=success,
            created_after=parse_timestamp("created_after", created_after),
            created_before=parse_timestamp("created_before", created_before),
            updated_after=parse_timestamp("updated_after", updated_after),
            updated_before=parse_timestamp("updated_before", updated_before),
            completed_after=parse_timestamp("completed_after", completed_after),
            completed_before=parse_timestamp("completed_before", completed_before),
            min_duration=min_duration,
            max_duration=max_duration,
            sort=Sort.parse(sort),
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
    except QueryError as exc:
        raise DomainError(str(exc)) from None
    _check_range(query.created_after, query.created_before, "created_after", "created_before")
    _check_range(query.updated_after, query.updated_before, "updated_after", "updated_before")
    _check_range(query.completed_after, query.completed_before, "completed_after", "completed_before")
    _check_range(min_duration, max_duration, "min_duration", "max_duration")
    return RunListRequest(runs_repo, query)


CountParam = Annotated[
    CountMode,
    QueryParameter(
        description="Also report how many runs match, in `X-Total-Count`: `exact` counts them (a scan of "
        "the matches), `estimated` takes the planner's estimate (instant, approximate); "
        "`X-Total-Count-Mode` says which. Default `none`.",
    ),
]

SEARCH_DESCRIPTION = (
    "Case-insensitive substring matched against file path, record type, status, error message and run id; "
    "`%`, `_` and `\\` match themselves. Results are ranked: exact matches of the run id, file path or "
    "file name first, then those that start with the term, then the rest, each tier in `sort` order. "
    f"Terms of 3+ characters use a trigram index; 1-2 character terms are matched against the "
    f"{SHORT_TERM_WINDOW:,} newest runs only (bounded cost)."
)

PAGING_HEADERS = [
    ResponseHeader(
        name="Link",
        description='`<URL>; rel="next"` with the cursor of the next page; absent on the last page',
        documentation_only=True,
    ),
    ResponseHeader(name="X-Total-Count", description="Matching runs, when `count` asks", documentation_only=True),
    ResponseHeader(
        name="X-Total-Count-Mode", description="`exact` or `estimated`, with X-Total-Count", documentation_only=True
    ),
    ResponseHeader(
        name="X-Served-By",
        description="With a read replica configured, on run lists: `replica` or `primary`, the server that answered",
        documentation_only=True,
    ),
]


async def page_response(
    request: Request[Any, Any, Any], listing: RunListRequest, count: CountMode, *, on_replica: bool = False
) -> Response[list[RunRead]]:
    """Fetch the page (and the count if asked) and answer with the paging headers.

    `on_replica`: the query reads only logged relations, so a read replica may answer it (db/replica.py)."""
    replica: Replica | None = request.app.state.replica if on_replica else None
    if replica is None:
        return await _page_response(request, listing.repo, listing.query, count, None)
    pool = await replica.read_pool(request.headers.get(POSITION_HEADER))
    if pool is not None:
        try:
            # Whole rows from the replica: the read cache follows the primary, which may be ahead.
            work = UnitOfWork(pool)
            try:
                response = await _page_response(request, RunsRepository(work), listing.query, count, "replica")
            finally:
                await work.close()
        except REPLICA_FAILURES as exc:
            replica.failed(exc)
        else:
            replica.reads += 1
            return response
    return await _page_response(request, listing.repo, listing.query, count, "primary")


async def _page_response(
    request: Request[Any, Any, Any], repo: RunsRepository, query: RunQuery, count: CountMode, served: str | None
) -> Response[list[RunRead]]:
    try:
        page: Page = await repo.page(query)
    except QueryError as exc:
        raise DomainError(str(exc)) from None
    headers: dict[str, str] = {} if served is None else {SERVED_BY_HEADER: served}
    if page.next_cursor is not None:
        headers["Link"] = next_link(request, page.next_cursor)
    if count is not CountMode.NONE:
        headers["X-Total-Count"] = str(await repo.count(query, exact=count is CountMode.EXACT))
        headers["X-Total-Count-Mode"] = count.value
    return cast("Response[list[RunRead]]", Response(page.body, media_type=MediaType.JSON, headers=headers))
