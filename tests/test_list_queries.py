"""List and search: every filter, sort and cursor checked against a brute-force computation in Python."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient
from polyfactory import Use
from polyfactory.factories.msgspec_factory import MsgspecFactory

from app import create_app
from config import Settings
from dto.runs import RunRead
from tests.helpers import FoldedClient, eventually

API = "/api/v1/migrations"
BASE = datetime(2026, 3, 1, tzinfo=UTC)
STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
TYPES = ("disability", "absence", "group_policy", "employee", "claim")
rng = random.Random(7)


class StoredRunFactory(MsgspecFactory[RunRead]):
    __check_model__ = False
    __random_seed__ = 7
    id = Use(uuid.uuid4)
    file_path = Use(lambda: f"data/{rng.choice(TYPES)}/batch_{rng.randint(1, 40)}.csv")
    record_type = Use(lambda: rng.choice(TYPES))
    status = Use(lambda: rng.choice(STATUSES))
    # whole minutes, many of them shared, so that ties are common and the id tiebreak matters
    created_at = Use(lambda: BASE + timedelta(minutes=rng.randint(0, 120)))
    updated_at = Use(lambda: BASE + timedelta(minutes=rng.randint(120, 240)))
    completed_at = None
    total_duration = None
    success = None
    error_message = None


def stored(value: datetime | None) -> datetime:
    """A time the factory always sets (RunRead's times are nullable: engines may store 'infinity')."""
    assert value is not None
    return value


def make_runs(n: int) -> list[RunRead]:
    runs = []
    for _ in range(n):
        run = StoredRunFactory.build()
        if run.status in {"completed", "failed", "cancelled"}:
            run.total_duration = float(rng.choice([5, 10, 10, 30, 60.5, 120]))
            run.completed_at = stored(run.created_at) + timedelta(seconds=run.total_duration)
            run.success = run.status == "completed"
            if run.status == "failed":
                run.error_message = rng.choice(["Timeout after 300s", "HTTP 503 from target", "bad row 7"])
        runs.append(run)
    return runs


def store(db: psycopg.Connection[Any], runs: list[RunRead]) -> None:
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO migration_runs (id, file_path, record_type, status, created_at, updated_at, completed_at, "
            "total_duration, success, error_message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    r.id,
                    r.file_path,
                    r.record_type,
                    r.status,
                    r.created_at,
                    r.updated_at,
                    r.completed_at,
                    r.total_duration,
                    r.success,
                    r.error_message,
                )
                for r in runs
            ],
        )


@pytest.fixture(params=["cache", "no-cache"])
def client(
    request: pytest.FixtureRequest, settings: Settings, db: psycopg.Connection[Any]
) -> Iterator[TestClient[Any]]:
    """Every test here runs on both read paths: pages assembled from the run cache (key rows, then
    cached bodies) and whole rows in one statement (`RUN_CACHE_BYTES=0`)."""
    cached = request.param == "cache"
    app_settings = settings if cached else msgspec.structs.replace(settings, run_cache_bytes=0)
    with FoldedClient(app=create_app(app_settings)) as test_client:
        test_client.engine_db = db
        cache = test_client.app.state.run_cache
        assert eventually(lambda: (cache is not None and cache.enabled) is cached)
        yield test_client


@pytest.fixture
def runs(db: psycopg.Connection[Any]) -> list[RunRead]:
    stored = make_runs(240)
    store(db, stored)
    return stored


SORTS = {
    "created_at": ("created_at", "id"),
    "updated_at": ("updated_at", "id"),
    "completed_at": ("completed_at", "id"),
    "total_duration": ("total_duration", "id"),
    "status": ("status", "created_at", "id"),
    "record_type": ("record_type", "created_at", "id"),
}


def brute_sort(rows: list[RunRead], sort: str) -> list[RunRead]:
    """PostgreSQL's order: NULLs last ascending, first descending; all keys in one direction."""
    desc = sort.startswith("-")
    cols = SORTS[sort.lstrip("-")]

    def key(r: RunRead) -> tuple[Any, ...]:
        parts: list[Any] = []
        for c in cols:
            v = getattr(r, c)
            parts.append((1, 0) if v is None else (0, str(v) if c == "id" else v))
        return tuple(parts)

    return sorted(rows, key=key, reverse=desc)


def ids(rows: list[RunRead] | list[dict[str, Any]]) -> list[str]:
    return [str(r.id) if isinstance(r, RunRead) else r["id"] for r in rows]


def walk(client: TestClient[Any], path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Every page, following the Link header's cursor."""
    response = client.get(path, params=params)
    while True:
        assert response.status_code == 200, response.text
        yield response.json()
        link = response.headers.get("link")
        if link is None:
            return
        url = link[link.index("<") + 1 : link.index(">")]
        assert link.endswith('rel="next"')
        response = client.get(url)


@pytest.mark.parametrize("sort", [*SORTS, *(f"-{s}" for s in SORTS)])
def test_every_sort_matches_brute_force_over_cursor_pages(
    client: TestClient[Any], runs: list[RunRead], sort: str
) -> None:
    expected = ids(brute_sort(runs, sort))
    pages = list(walk(client, API, {"sort": sort, "limit": 37}))
    assert [len(p) for p in pages[:-1]] == [37] * (len(pages) - 1)
    assert [i for p in pages for i in ids(p)] == expected
    first = client.get(API, params={"sort": sort, "limit": 50, "offset": 50}).json()
    assert ids(first) == expected[50:100]


FILTERS: list[tuple[dict[str, Any], Callable[[RunRead], bool]]] = [
    ({"status": "failed"}, lambda r: r.status == "failed"),
    ({"status": "failed,paused"}, lambda r: r.status in {"failed", "paused"}),
    ({"record_type": "claim,absence"}, lambda r: r.record_type in {"claim", "absence"}),
    ({"file_path": "BATCH_1"}, lambda r: "batch_1" in r.file_path),
    ({"success": "true"}, lambda r: r.success is True),
    ({"success": "false"}, lambda r: r.success is False),
    (
        {"created_after": (BASE + timedelta(minutes=30)).isoformat(), "created_before": "2026-03-01T01:00:00Z"},
        lambda r: BASE + timedelta(minutes=30) <= stored(r.created_at) < BASE + timedelta(minutes=60),
    ),
    # a time without an offset is UTC
    ({"created_after": "2026-03-01T01:30:00"}, lambda r: stored(r.created_at) >= BASE + timedelta(minutes=90)),
    (
        {"updated_after": "2026-03-01T03:00:00Z", "updated_before": "2026-03-01T03:10:00+00:00"},
        lambda r: BASE + timedelta(hours=3) <= stored(r.updated_at) < BASE + timedelta(hours=3, minutes=10),
    ),
    (
        {"completed_after": "2026-03-01T01:00:00Z", "completed_before": "2026-03-01T01:30:00Z"},
        lambda r: (
            r.completed_at is not None
            and BASE + timedelta(hours=1) <= r.completed_at < BASE + timedelta(hours=1, minutes=30)
        ),
    ),
    (
        {"min_duration": 10, "max_duration": 60.5},
        lambda r: r.total_duration is not None and 10 <= r.total_duration <= 60.5,
    ),
    (
        {"status": "completed", "record_type": "claim", "min_duration": 30, "sort": "-total_duration"},
        lambda r: r.status == "completed" and r.record_type == "claim" and (r.total_duration or 0) >= 30,
    ),
    ({"status": "no-such-status"}, lambda r: False),
]


@pytest.mark.parametrize(("params", "predicate"), FILTERS)
def test_filters_match_brute_force(
    client: TestClient[Any], runs: list[RunRead], params: dict[str, Any], predicate: Callable[[RunRead], bool]
) -> None:
    sort = params.get("sort", "-created_at")
    expected = ids(brute_sort([r for r in runs if predicate(r)], sort))
    pages = list(walk(client, API, {**params, "limit": 25}))
    assert [i for p in pages for i in ids(p)] == expected
    counted = client.get(API, params={**params, "count": "exact", "limit": 1})
    assert counted.headers["x-total-count"] == str(len(expected))
    assert counted.headers["x-total-count-mode"] == "exact"
    # the search endpoint takes the same filters
    assert ids(client.get(f"{API}/search", params={**params, "limit": 500}).json()) == expected


def test_estimated_count_is_reported_as_such(client: TestClient[Any], runs: list[RunRead], db: Any) -> None:
    db.execute("ANALYZE migration_runs")
    response = client.get(API, params={"count": "estimated"})
    assert response.headers["x-total-count-mode"] == "estimated"
    assert 0.5 * len(runs) <= int(response.headers["x-total-count"]) <= 2 * len(runs)
    assert "x-total-count" not in client.get(API).headers


def test_last_page_has_no_next_link_and_empty_results_are_an_empty_array(
    client: TestClient[Any], runs: list[RunRead]
) -> None:
    assert "link" not in client.get(API, params={"limit": 500}).headers
    empty = client.get(API, params={"created_after": "2030-01-01T00:00:00Z", "count": "exact"})
    assert empty.json() == []
    assert empty.headers["x-total-count"] == "0"
    assert "link" not in empty.headers


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "-total_duration", "status"])
def test_cursor_pages_neither_skip_nor_repeat_while_runs_arrive(
    client: TestClient[Any], db: psycopg.Connection[Any], runs: list[RunRead], sort: str
) -> None:
    seen: list[str] = []
    for page in walk(client, API, {"sort": sort, "limit": 30}):
        seen.extend(ids(page))
        # an engine adds runs between page requests: some sort before the cursor, some after
        store(db, make_runs(5))
    assert len(seen) == len(set(seen)), "a run was repeated"
    assert set(ids(runs)) <= set(seen), "a run that existed all along was skipped"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"sort": "colour"}, "sort"),
        ({"sort": "-file_path"}, "sort"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"completed_before": "2026-13-01"}, "completed_before"),
        ({"min_duration": -1}, "min_duration"),
        ({"min_duration": 10, "max_duration": 5}, "min_duration"),
        ({"created_after": "2026-03-02T00:00:00Z", "created_before": "2026-03-01T00:00:00Z"}, "created_after"),
        ({"success": "maybe"}, "success"),
        ({"count": "roughly"}, "count"),
        ({"status": ",,"}, "status"),
    ],
)
def test_bad_query_parameters_are_400_naming_them(client: TestClient[Any], params: dict[str, Any], name: str) -> None:
    for path in (API, f"{API}/search"):
        response = client.get(path, params={"q": "x", **params} if path.endswith("search") else params)
        assert response.status_code == 400, response.text
        assert name in response.text
        assert "detail" in response.json()


def test_a_cursor_only_works_with_its_own_query(client: TestClient[Any], runs: list[RunRead]) -> None:
    link = client.get(API, params={"status": "failed", "limit": 2}).headers["link"]
    cursor = parse_qs(urlsplit(link[link.index("<") + 1 : link.index(">")]).query)["cursor"][0]
    other = client.get(API, params={"status": "completed", "limit": 2, "cursor": cursor})
    assert other.status_code == 400
    assert "cursor" in other.json()["detail"]
    with_offset = client.get(API, params={"status": "failed", "limit": 2, "cursor": cursor, "offset": 3})
    assert with_offset.status_code == 400
    assert "offset" in with_offset.json()["detail"]


def test_a_deep_cursor_page_equals_the_offset_page(client: TestClient[Any], runs: list[RunRead]) -> None:
    pages = list(walk(client, API, {"limit": 20}))
    assert ids(pages[5]) == ids(client.get(API, params={"limit": 20, "offset": 100}).json())


def test_search_ranks_exact_then_prefix_then_substring(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    newest_substring = make_runs(1)[0]
    newest_substring.file_path = "in/old_claims_report.csv"
    newest_substring.created_at = now
    prefix = make_runs(1)[0]
    prefix.file_path = "in/claims_report_2024.csv"
    prefix.created_at = now - timedelta(hours=2)
    exact = make_runs(1)[0]
    exact.file_path = "archive/claims_report"
    exact.created_at = now - timedelta(hours=5)
    windows = make_runs(1)[0]  # a file name after backslashes is a file name too
    windows.file_path = "C:\\in\\CLAIMS_REPORT"
    windows.created_at = now - timedelta(hours=6)
    store(db, [newest_substring, prefix, exact, windows])
    found = ids(client.get(f"{API}/search", params={"q": "Claims_Report"}).json())
    assert found == [str(exact.id), str(windows.id), str(prefix.id), str(newest_substring.id)]
    # ranked pages continue correctly through a cursor
    pages = list(walk(client, f"{API}/search", {"q": "claims_report", "limit": 1}))
    assert [i for p in pages for i in ids(p)] == found


def test_search_by_run_id_exact_and_prefix(client: TestClient[Any], runs: list[RunRead]) -> None:
    target = runs[17]
    exact = client.get(f"{API}/search", params={"q": str(target.id).upper()}).json()
    assert ids(exact)[0] == str(target.id)
    prefix = str(target.id)[:6]
    expected = {str(r.id) for r in runs if str(r.id).startswith(prefix)}
    got = ids(client.get(f"{API}/search", params={"q": prefix}).json())
    assert set(got[: len(expected)]) == expected


@pytest.mark.parametrize("term", ["ba", "7", "0s", "failed", "batch_3", "HTTP 5", "zzzz-none"])
def test_search_matches_brute_force_substring(client: TestClient[Any], runs: list[RunRead], term: str) -> None:
    lowered = term.lower()

    def hit(r: RunRead) -> bool:
        fields = (r.file_path, r.record_type, r.status, r.error_message or "", str(r.id))
        return any(lowered in f.lower() for f in fields)

    expected = {str(r.id) for r in runs if hit(r)}
    got = [i for p in walk(client, f"{API}/search", {"q": term, "limit": 100}) for i in ids(p)]
    assert len(got) == len(set(got))
    assert set(got) == expected
    counted = client.get(f"{API}/search", params={"q": term, "count": "exact"})
    assert counted.headers["x-total-count"] == str(len(expected))


def test_list_entries_are_byte_identical_to_the_single_run(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    """The list's JSON is written by PostgreSQL: it must match what the service writes for one run."""
    whole_second = make_runs(1)[0]
    whole_second.created_at = BASE.replace(microsecond=0)
    whole_second.total_duration = 5.0  # a whole float: msgspec writes 5.0
    fractional = make_runs(1)[0]
    fractional.created_at = BASE + timedelta(microseconds=120)
    fractional.updated_at = BASE + timedelta(seconds=1, microseconds=999_999)
    finished = make_runs(1)[0]
    finished.status, finished.success, finished.total_duration = "completed", True, 1234.5678
    finished.completed_at = BASE + timedelta(minutes=20, microseconds=5)
    finished.error_message = 'quotes " and \\ backslash, unicode é ✓, tab\there'
    store(db, [whole_second, fractional, finished])
    listed = client.get(API, params={"limit": 10})
    body = listed.content.decode()
    for run in (whole_second, fractional, finished):
        single = client.get(f"{API}/{run.id}").content.decode()
        assert single in body, f"{single} not in {body}"
    assert listed.json() == [client.get(f"{API}/{r['id']}").json() for r in listed.json()]
