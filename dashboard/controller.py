"""The dashboard pages: server-rendered HTML over the same repositories as the JSON API.

Every figure on a page comes from the repository call that answers the matching API request
(`/stats`, `/stats/history`, `/stats/errors`, the list and search, `/timeline`, `/checkpoints`),
so the page and the API agree. The pages work with JavaScript off; static/dashboard.js then keeps
them current from the event stream (`GET /api/v1/events`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from litestar.response import Template

from auth import READ, requires
from controllers.protocol import RunIdPath, parse_id
from controllers.providers import (
    provide_checkpoints_repo,
    provide_runs_repo,
    provide_states_repo,
    provide_stats_repo,
    provide_timeline_repo,
)
from controllers.run_queries import RunListRequest, provide_run_listing
from controllers.stats import history_window
from dashboard.charts import STATUS_ORDER, Chart, history_chart, status_rank
from dto.runs import RunRead
from dto.stats import ErrorStats, MigrationStats
from errors import DomainError
from repositories.checkpoints import CheckpointsRepository
from repositories.paging import PageWindow
from repositories.run_queries import QueryError
from repositories.runs import RunsRepository
from repositories.states import StatesRepository
from repositories.stats import StatsRepository
from repositories.timeline import TimelineRepository

PAGE_SIZE: Final = 50
ERROR_GROUPS: Final = 10
HOURS: Final = 24
DAYS: Final = 30
_RUNS = msgspec.json.Decoder(list[RunRead])

FilterText = Annotated[str | None, QueryParameter(max_length=200)]


@dataclass(frozen=True)
class StatusCount:
    status: str
    count: int
    share: float


@dataclass(frozen=True)
class Overview:
    stats: MigrationStats
    statuses: list[StatusCount]
    hourly: Chart
    hourly_since: datetime
    daily: Chart
    daily_since: datetime
    errors: ErrorStats
    generated_at: datetime


async def load_overview(stats_repo: StatsRepository) -> Overview:
    """Totals, the two history charts and the error groups, as the statistics endpoints give them."""
    now = datetime.now(UTC)
    stats = await stats_repo.summary(None, None, ())
    hour_start, hour_end = history_window("hour", (now - timedelta(hours=HOURS - 1)).isoformat(), None, now)
    day_start, day_end = history_window("day", (now - timedelta(days=DAYS - 1)).isoformat(), None, now)
    hourly = await stats_repo.history("hour", hour_start, hour_end)
    daily = await stats_repo.history("day", day_start, day_end)
    errors = await stats_repo.errors(day_start, None, ERROR_GROUPS)
    total = max(stats.total_migrations, 1)
    statuses = [
        StatusCount(status, count, count / total)
        for status, count in sorted(stats.status_breakdown.items(), key=lambda kv: (status_rank(kv[0]), kv[0]))
    ]
    return Overview(
        stats=stats,
        statuses=statuses,
        hourly=history_chart(hourly, label_every=6),
        hourly_since=hour_start,
        daily=history_chart(daily, label_every=7),
        daily_since=day_start,
        errors=errors,
        generated_at=now,
    )


@dataclass(frozen=True)
class RunTable:
    runs: list[RunRead]
    status: str
    record_type: str
    q: str
    error: str | None
    next_url: str | None


def _blank_to_none(value: str | None) -> str | None:
    # A plain GET form sends every field, the unused ones empty.
    return (value.strip() or None) if value is not None else None


async def load_runs(
    runs_repo: RunsRepository, status: str | None, record_type: str | None, q: str | None, cursor: str | None
) -> RunTable:
    """The newest runs, filtered as `GET /api/v1/migrations` (or `/search` with `q`) would filter them."""
    status, record_type, q, cursor = map(_blank_to_none, (status, record_type, q, cursor))
    shown = RunTable([], status or "", record_type or "", q or "", None, None)
    try:
        if q is not None and any(ord(ch) < 32 for ch in q):
            raise DomainError("q must not contain control characters")
        # The list endpoint's own parsing and checks (a plain function under Litestar's DI).
        listing: RunListRequest = await provide_run_listing(
            runs_repo, status=status, record_type=record_type, limit=PAGE_SIZE, cursor=cursor
        )
        listing.query.q = q
        page = await runs_repo.page(listing.query)
    except (DomainError, QueryError) as exc:
        return replace(shown, error=str(exc))
    next_url = None
    if page.next_cursor is not None:
        params = {"status": status, "record_type": record_type, "q": q, "cursor": page.next_cursor}
        next_url = "/dashboard?" + urlencode({k: v for k, v in params.items() if v is not None})
    return replace(shown, runs=_RUNS.decode(page.body), next_url=next_url)


class DashboardController(Controller):
    path = "/dashboard"
    include_in_schema = False
    dependencies = {
        "stats_repo": Provide(provide_stats_repo),
        "runs_repo": Provide(provide_runs_repo),
    }

    @get("/", **requires(READ))
    async def index(
        self,
        stats_repo: NamedDependency[StatsRepository],
        runs_repo: NamedDependency[RunsRepository],
        status: FilterText = None,
        record_type: FilterText = None,
        q: FilterText = None,
        cursor: Annotated[str | None, QueryParameter(max_length=2000)] = None,
    ) -> Template:
        """The overview and the newest runs, with filters."""
        overview = await load_overview(stats_repo)
        table = await load_runs(runs_repo, status, record_type, q, cursor)
        statuses = sorted({*STATUS_ORDER, *overview.stats.status_breakdown}, key=lambda s: (status_rank(s), s))
        return Template(
            template_name="index.html",
            context={
                "overview": overview,
                "table": table,
                "status_options": statuses,
                "record_type_options": sorted(overview.stats.record_type_breakdown),
                "first_page": cursor is None or not cursor.strip(),
                "page_size": PAGE_SIZE,
            },
        )

    @get("/overview", **requires(READ))
    async def overview(self, stats_repo: NamedDependency[StatsRepository]) -> Template:
        """The overview alone (totals, charts, error groups): what the page's script swaps in on changes."""
        return Template(template_name="overview.html", context={"overview": await load_overview(stats_repo)})

    @get(
        "/runs/{run_id:str}",
        **requires(READ),
        dependencies={
            "timeline_repo": Provide(provide_timeline_repo),
            "states_repo": Provide(provide_states_repo),
            "checkpoints_repo": Provide(provide_checkpoints_repo),
        },
    )
    async def run_page(
        self,
        runs_repo: NamedDependency[RunsRepository],
        timeline_repo: NamedDependency[TimelineRepository],
        states_repo: NamedDependency[StatesRepository],
        checkpoints_repo: NamedDependency[CheckpointsRepository],
        run_id: RunIdPath,
    ) -> Template:
        """One run: its fields, step timeline (with the usual durations) and checkpoints."""
        try:
            key = parse_id(run_id)
        except DomainError as exc:
            return _missing(400, "Not a run id", str(exc), run_id)
        run = await runs_repo.get(key)
        timeline = await timeline_repo.get(key)
        if run is None or timeline is None:
            return _missing(404, "No such run", f"migration run {run_id} not found (it may have been deleted)", run_id)
        # The first page of each (1,000 by default), as GET .../states and .../checkpoints serve it.
        state_page = await states_repo.page(key, PageWindow())
        checkpoint_page = await checkpoints_repo.page(key, PageWindow())
        states = state_page.items if state_page is not None else []
        checkpoints = checkpoint_page.items if checkpoint_page is not None else []
        longest = max(
            (v for s in timeline.steps for v in (s.duration_seconds, s.median_seconds) if v is not None and v > 0),
            default=0.0,
        )
        return Template(
            template_name="run.html",
            context={
                "run": run,
                "timeline": timeline,
                "state_data": {s.step_order: s.state_data for s in states},
                "checkpoints": checkpoints,
                "longest": longest,
            },
        )


def _missing(status_code: int, heading: str, detail: str, run_id: str) -> Template:
    """An HTML error page a browser user can go on from (the API's errors stay JSON)."""
    context = {"heading": heading, "detail": detail, "query": run_id[:200]}
    return Template(template_name="missing.html", context=context, status_code=status_code)


def pretty_json(value: Any, limit: int = 2000) -> str:
    """Indented JSON for a <pre>, cut at `limit` characters."""
    text = msgspec.json.format(msgspec.json.encode(value), indent=2).decode()
    return text if len(text) <= limit else text[:limit] + "\n…"


def short_id(value: uuid.UUID | str) -> str:
    return str(value)[:8]
