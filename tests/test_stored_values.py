"""Values engines store with their own SQL that the API never writes are served: every read answers
200 with strict JSON (no NaN or Infinity tokens) and the mapping of README, "Values written by
engines". Each test writes such rows as an engine does and reads them over HTTP."""

from __future__ import annotations

import json
import math
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from litestar.testing import TestClient
from polyfactory import Use
from polyfactory.factories.msgspec_factory import MsgspecFactory

import repositories.stats
from app import create_app
from config import Settings
from dto.runs import RunRead
from repositories.run_queries import SORT_COLUMNS
from tests.helpers import FoldedClient, eventually
from tests.stats_bruteforce import assert_duration, assert_summary_matches, expected_duration, expected_summary

API = "/api/v1/migrations"
BASE = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)

# A stored timestamp (as an engine writes it) -> what the API serves for it.
ODD_TIMES: dict[str, str | None] = {
    "infinity": None,
    "-infinity": None,
    "4713-01-01 00:00:00+00 BC": None,  # PostgreSQL's first year
    "294276-12-31 23:59:59+00": None,  # and its last
    "0001-01-01 00:00:00+00": "0001-01-01T00:00:00Z",
    "9999-12-31 23:59:59.999999+00": "9999-12-31T23:59:59.999999Z",
}
# A stored total_duration -> what the API serves for it.
ODD_DURATIONS: list[tuple[float, float | None]] = [
    (math.nan, None),
    (math.inf, None),
    (-math.inf, None),
    (-5.5, -5.5),
    (1e300, 1e300),
]
LONG_MESSAGE = "Échec de validation: champ « police » manquant — 検証エラー 🚫 \\ 100% _x_ " * 270  # ~20 kB
ODD_PATH = "C:\\data\\input\\100%_claims\\batch_%d_\\x.csv"


class EngineRunFactory(MsgspecFactory[RunRead]):
    """A finished run as an engine writes it; tests put the odd values in."""

    __check_model__ = False
    id = Use(uuid.uuid4)
    file_path = Use(lambda: f"data/input/claim_{EngineRunFactory.__random__.randint(1, 99_999)}.csv")
    record_type = "claim"
    status = "completed"
    created_at = BASE
    updated_at = BASE + timedelta(seconds=30)
    completed_at = BASE + timedelta(seconds=30)
    total_duration = 30.0
    success = True
    error_message = None


def insert_runs(db: psycopg.Connection[Any], runs: list[RunRead]) -> None:
    """As an engine: plain SQL, timestamps given as PostgreSQL text where Python cannot hold them."""
    for run in runs:
        db.execute(
            "INSERT INTO migration_runs (id, file_path, record_type, status, created_at, updated_at, completed_at, "
            "total_duration, success, error_message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            msgspec.structs.astuple(run),
        )


def refuse_constant(token: str) -> Any:
    raise ValueError(f"not strict JSON: {token}")


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Python's json module recurses per nesting level; some stored documents are thousands deep."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 50_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def strict(response: httpx.Response) -> Any:
    """The 200 response's body as a strict JSON parser reads it (json.loads alone accepts NaN)."""
    assert response.status_code == 200, f"{response.request.url}: {response.status_code} {response.text[:300]}"
    with deep_recursion():
        return json.loads(response.content, parse_constant=refuse_constant)


def walk(client: TestClient[Any], path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of every page, following the Link header's cursor."""
    items: list[dict[str, Any]] = []
    response = client.get(path, params=params)
    while True:
        items += strict(response)
        link = response.headers.get("link")
        if link is None:
            return items
        response = client.get(link[link.index("<") + 1 : link.index(">")])


def database_order(db: psycopg.Connection[Any], sort: str) -> list[str]:
    """The run ids in PostgreSQL's order for `sort` (what a list must follow, page after page)."""
    direction = " DESC" if sort.startswith("-") else ""
    order = ", ".join(c + direction for c in SORT_COLUMNS[sort.lstrip("-")])
    return [str(r[0]) for r in db.execute(f"SELECT id FROM migration_runs ORDER BY {order}").fetchall()]


@pytest.fixture(params=["cache", "no-cache"])
def reader(
    request: pytest.FixtureRequest, settings: Settings, db: psycopg.Connection[Any]
) -> Iterator[TestClient[Any]]:
    """Both read paths: pages and runs from the run cache, and whole rows read per request."""
    cached = request.param == "cache"
    app_settings = settings if cached else msgspec.structs.replace(settings, run_cache_bytes=0)
    with FoldedClient(app=create_app(app_settings)) as test_client:
        test_client.engine_db = db
        cache = test_client.app.state.run_cache
        assert eventually(lambda: (cache is not None and cache.enabled) is cached)
        yield test_client


@pytest.fixture(params=["rollups", "base-table"])
def stats_source(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Statistics from the roll-ups, or computed from `migration_runs` (as without the right to create them)."""
    if request.param == "base-table":

        def absent(*_: Any) -> bool:
            return False

        monkeypatch.setattr(repositories.stats, "rollups_present", absent)
    return str(request.param)


@pytest.fixture
def odd_runs(db: psycopg.Connection[Any]) -> dict[str, tuple[RunRead, dict[str, Any]]]:
    """Runs with every odd value, by name, each with the fields the API must serve for it."""
    runs: dict[str, tuple[RunRead, dict[str, Any]]] = {}
    for column in ("created_at", "updated_at", "completed_at"):
        for stored, served in ODD_TIMES.items():
            runs[f"{column}={stored}"] = (EngineRunFactory.build(**{column: stored}), {column: served})
    for stored_duration, served_duration in ODD_DURATIONS:
        run = EngineRunFactory.build(total_duration=stored_duration)
        runs[f"total_duration={stored_duration}"] = (run, {"total_duration": served_duration})
    for status in ("paused", "weird status", "queued"):
        runs[f"status={status}"] = (EngineRunFactory.build(status=status, success=None), {"status": status})
    runs["long message"] = (
        EngineRunFactory.build(
            status="failed", success=False, file_path=ODD_PATH, error_message=LONG_MESSAGE, total_duration=math.nan
        ),
        {"error_message": LONG_MESSAGE, "file_path": ODD_PATH, "total_duration": None},
    )
    insert_runs(db, [run for run, _ in runs.values()])
    return runs


def test_odd_runs_are_served_by_get_list_and_search(
    reader: TestClient[Any], db: psycopg.Connection[Any], odd_runs: dict[str, tuple[RunRead, dict[str, Any]]]
) -> None:
    served = {}
    for name, (run, expected) in odd_runs.items():
        body = strict(reader.get(f"{API}/{run.id}"))
        for field, value in expected.items():
            assert body[field] == value, (name, field)
        served[body["id"]] = body
    assert len(LONG_MESSAGE.encode()) > 20_000
    # every sort key, both directions, in pages of 4 through the cursors: the database's order,
    # every run once, each as GET serves it
    for key in SORT_COLUMNS:
        for sort in (key, f"-{key}"):
            items = walk(reader, API, {"sort": sort, "limit": 4})
            assert [item["id"] for item in items] == database_order(db, sort), sort
            assert all(item == served[item["id"]] for item in items), sort
    # search pages (here all hits are substring matches) and filters over the odd values
    items = walk(reader, f"{API}/search", {"q": "claim", "limit": 4})
    assert sorted(item["id"] for item in items) == sorted(served)
    hits = strict(reader.get(f"{API}/search", params={"q": "100%_claims\\batch"}))
    assert [hit["id"] for hit in hits] == [str(odd_runs["long message"][0].id)]
    filters: list[dict[str, str | int]] = [
        {"min_duration": 0},
        {"max_duration": 100, "sort": "-total_duration"},
        {"status": "weird status,paused"},
        {"created_after": "0001-01-01T00:00:00Z", "sort": "created_at"},
        {"completed_before": "9999-12-31T23:59:59Z", "count": "exact"},
        {"count": "estimated", "limit": 500},
    ]
    for params in filters:
        strict(reader.get(API, params=params))
    assert [r["status"] for r in strict(reader.get(API, params={"status": "weird status"}))] == ["weird status"]


def test_odd_runs_are_served_by_statistics_and_timeline(
    client: TestClient[Any], stats_source: str, odd_runs: dict[str, tuple[RunRead, dict[str, Any]]]
) -> None:
    for params in (
        {},
        {"group_by": "status,record_type"},
        {"group_by": "status"},
        {"since": "2026-05-04T09:15:00Z", "until": "2026-05-04T11:45:00Z", "group_by": "record_type"},
        {"since": "2026-05-01T00:00:00Z"},
        {"until": "2026-05-10T00:00:00Z"},
    ):
        body = strict(client.get(f"{API}/stats", params=params))
        for figures in [body["duration"], *body["duration_by_record_type"].values()]:
            assert all(figures[p] is None or math.isfinite(figures[p]) for p in ("p50", "p90", "p99", "max"))
    # without a window every run counts, whatever its times
    assert strict(client.get(f"{API}/stats"))["total_migrations"] == len(odd_runs)
    for params in ({"interval": "hour"}, {"interval": "day", "since": "2026-04-01T00:00:00Z"}):
        strict(client.get(f"{API}/stats/history", params=params))
    errors = strict(client.get(f"{API}/stats/errors"))
    assert errors["groups"][0]["example_message"] == LONG_MESSAGE
    strict(client.get(f"{API}/stats/errors", params={"since": "2026-05-04T10:15:00Z", "until": "2026-05-05T00:00:00Z"}))
    for run, expected in odd_runs.values():
        body = strict(client.get(f"{API}/{run.id}/timeline"))
        for field in ("created_at", "completed_at", "total_duration", "status"):
            if field in expected:
                assert body[field] == expected[field]
    assert strict(client.get("/health"))["status"] == "ok"


def test_states_and_checkpoints_with_odd_times_and_json(reader: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run = EngineRunFactory.build()
    reference = EngineRunFactory.build(created_at=BASE - timedelta(hours=1))
    insert_runs(db, [run, reference])
    documents = [
        '{"rows": 1e400, "low": -1e400, "id": 123456789012345678901234567890, "zero": -0.0}',  # beyond float8
        '{"deep": ' + "[" * 3000 + "]" * 3000 + "}",  # beyond the interpreter's recursion limit
        '{"text": "\\\\ 100% \\u00e9\\ud83d\\ude80", "": null, "big": 1.7976931348623157e308}',
        '"a JSON string, not an object"',
    ]
    times = list(ODD_TIMES)
    for order, stored in enumerate(times):
        document = documents[order % len(documents)]
        for table, name in (("workflow_states", "step_name"), ("workflow_checkpoints", "checkpoint_name")):
            order_column = ", step_order" if table == "workflow_states" else ""
            order_value = f", {order + 1}" if table == "workflow_states" else ""
            db.execute(
                f"INSERT INTO {table} (id, run_id, {name}, state_data, created_at, metadata{order_column}) "
                f"VALUES (%s, %s, %s, %s, %s, %s{order_value})",
                (uuid.uuid4(), run.id, f"step_{order}", document, stored, documents[(order + 1) % len(documents)]),
            )
    # the reference run: ordinary steps, except one that an engine stamped 'infinity'
    for order, (stored, step) in enumerate((("2026-05-04 09:30:00+00", "step_0"), ("infinity", "step_1")), 1):
        db.execute(
            "INSERT INTO workflow_states (id, run_id, step_name, state_data, created_at, step_order) "
            "VALUES (%s, %s, %s, '{}', %s, %s)",
            (uuid.uuid4(), reference.id, step, stored, order),
        )

    def stored_json(table: str, record_id: str) -> tuple[Any, Any]:
        """state_data and metadata as PostgreSQL prints them (what the API serves verbatim)."""
        row = db.execute(f"SELECT state_data::text, metadata::text FROM {table} WHERE id = %s", (record_id,)).fetchone()
        assert row is not None
        with deep_recursion():
            return json.loads(row[0]), json.loads(row[1])

    for path, table, name in (
        ("states", "workflow_states", "step_name"),
        ("checkpoints", "workflow_checkpoints", "checkpoint_name"),
    ):
        items = strict(reader.get(f"{API}/{run.id}/{path}"))
        assert sorted(item[name] for item in items) == [f"step_{i}" for i in range(len(times))]
        for item in items:
            assert item["created_at"] == ODD_TIMES[times[int(item[name].removeprefix("step_"))]]
            with deep_recursion():
                assert (item["state_data"], item["metadata"]) == stored_json(table, item["id"])
                assert strict(reader.get(f"{API}/{run.id}/{path}/{item['id']}")) == item
        strict(reader.get(f"{API}/{run.id}/{path}/latest"))
    # a step that starts or ends at a time Python cannot hold has no duration; the others do
    timeline = strict(reader.get(f"{API}/{run.id}/timeline"))
    steps = {step["step_name"]: step for step in timeline["steps"]}
    for order, stored in enumerate(times):
        assert steps[f"step_{order}"]["started_at"] == ODD_TIMES[stored]
    # Steps stamped after the run completed (BASE + 30 s: 'infinity', year 294276, year 9999) are late:
    # no duration, and they do not end the step before them; so year 1 lasts until completed_at.
    assert [name for name, s in steps.items() if s["late"]] == ["step_0", "step_3", "step_5"]
    first = datetime(1, 1, 1, tzinfo=UTC)
    assert steps["step_4"]["duration_seconds"] == round((BASE + timedelta(seconds=30) - first).total_seconds(), 3)
    assert [name for name, s in steps.items() if s["duration_seconds"] is not None] == ["step_4"]
    # the reference run's step stamped 'infinity' is late (after its completed_at): no duration, and
    # the step before it lasts until completed_at (09:30 to 10:30:30)
    timeline = strict(reader.get(f"{API}/{reference.id}/timeline"))
    assert [(s["step_name"], s["late"], s["duration_seconds"]) for s in timeline["steps"]] == [
        ("step_0", False, 3630.0),
        ("step_1", True, None),
    ]


def test_statistics_skip_non_finite_durations(
    client: TestClient[Any], db: psycopg.Connection[Any], stats_source: str
) -> None:
    rng = EngineRunFactory.__random__
    runs = []
    for i in range(90):
        status = ("completed", "failed", "cancelled")[i % 3]
        created = BASE - timedelta(hours=30) + timedelta(minutes=37 * i)
        duration = round(rng.lognormvariate(3, 1.2), 3)
        runs.append(
            EngineRunFactory.build(
                status=status,
                success=status == "completed",
                record_type=("claim", "absence")[i % 2],
                created_at=created,
                updated_at=created,
                completed_at=created,
                total_duration=(math.nan, math.inf, -math.inf)[i % 3] if i % 4 == 0 else duration,
                error_message=f"Timeout after {i} s" if status == "failed" else None,
            )
        )
    insert_runs(db, runs)
    rows = [msgspec.structs.asdict(r) for r in runs]
    finite = [
        {**r, "total_duration": r["total_duration"] if math.isfinite(r["total_duration"]) else None} for r in rows
    ]
    windows: list[tuple[datetime | None, datetime | None]] = [
        (None, None),
        (BASE - timedelta(hours=20, minutes=13), BASE + timedelta(hours=9, minutes=41)),  # partial hours
        (BASE - timedelta(minutes=50), BASE - timedelta(minutes=5)),  # within one hour
    ]
    for since, until in windows:
        params = {k: v.isoformat() for k, v in (("since", since), ("until", until)) if v is not None}
        body = strict(client.get(f"{API}/stats", params={**params, "group_by": "status,record_type"}))
        assert_summary_matches(body, expected_summary(finite, since, until, ("status", "record_type")))
    history = strict(
        client.get(
            f"{API}/stats/history",
            params={"interval": "hour", "since": (BASE - timedelta(hours=31)).isoformat(), "until": BASE.isoformat()},
        )
    )
    for bucket in history["buckets"]:
        start, end = datetime.fromisoformat(bucket["start"]), datetime.fromisoformat(bucket["end"])
        durations = [
            r["total_duration"] for r in finite if start <= r["created_at"] < end and r["total_duration"] is not None
        ]
        assert_duration(bucket["duration"], expected_duration(durations))
    strict(client.get(f"{API}/stats/errors"))
    # negative and huge finite durations count as they are (percentiles clamp them to 1 ms .. 1e9 s)
    insert_runs(db, [EngineRunFactory.build(total_duration=-5.5), EngineRunFactory.build(total_duration=1e300)])
    duration = strict(client.get(f"{API}/stats"))["duration"]
    assert (duration["count"], duration["max"]) == (
        sum(1 for r in finite if r["total_duration"] is not None) + 2,
        1e300,
    )


def test_writes_stay_sane_on_odd_rows(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run = EngineRunFactory.build(status="running", created_at="-infinity", updated_at="infinity", completed_at=None)
    insert_runs(db, [run])
    # finishing a run whose start Python cannot hold: no duration to derive
    done = client.patch(f"{API}/{run.id}", json={"status": "failed", "error_message": "stopped"})
    body = strict(done)
    assert (body["status"], body["created_at"], body["total_duration"], body["success"]) == (
        "failed",
        None,
        None,
        False,
    )
    assert done.headers["etag"] == client.get(f"{API}/{run.id}").headers["etag"]
    # the API itself writes no NaN, infinity or out-of-range number: 400 with `detail`
    for method, path, raw in (
        ("POST", API, '{"file_path": "a.csv", "record_type": "claim", "status": "completed", "total_duration": NaN}'),
        ("POST", API, '{"file_path": "a.csv", "record_type": "claim", "status": "failed", "total_duration": 1e400}'),
        ("POST", API, '{"file_path": "a.csv", "record_type": "claim", "created_at": "infinity"}'),
        ("PATCH", f"{API}/{run.id}", '{"total_duration": Infinity}'),
        ("PATCH", f"{API}/{run.id}", '{"total_duration": -1e400}'),
        ("POST", f"{API}/{run.id}/states?late=true", '{"step_name": "s", "state_data": {"rows": NaN}}'),
        ("POST", f"{API}/{run.id}/checkpoints?late=true", '{"checkpoint_name": "c", "state_data": {"n": 1e999}}'),
    ):
        refused = client.request(method, path, content=raw, headers={"content-type": "application/json"})
        assert refused.status_code == 400, (raw, refused.text)
        assert refused.json()["detail"]
    stored = db.execute(
        "SELECT total_duration, completed_at IS NOT NULL FROM migration_runs WHERE id = %s", (run.id,)
    ).fetchone()
    assert stored == (None, True)
    assert db.execute("SELECT count(*) FROM migration_runs").fetchone() == (1,)
