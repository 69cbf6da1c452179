"""/stats, /stats/history and /stats/errors against a brute-force computation over the same rows."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from tests.helpers import FoldedClient, insert_checkpoint, insert_run, insert_state
from tests.stats_bruteforce import (
    DAY,
    HOUR,
    assert_duration,
    assert_summary_matches,
    duration_bin,
    expected_errors,
    expected_figures,
    expected_summary,
    fetch_runs,
    fingerprint,
    floor_hour,
)

API = "/api/v1/migrations"
TYPES = ("claim", "absence", "employee")
ERRORS = (
    "File read error: unexpected end of file at line {n}",
    "Validation error: missing required field 'policy_number' in row {n}",
    "Validation error: missing required field 'claim_number' in row {n}",
    "Run {id} failed on data/input/claim_{n}.csv: HTTP 503 after {n} retries",
    None,
)


def seed_runs(db: psycopg.Connection[Any], base: datetime, n: int = 160, seed: int = 7) -> None:
    """Runs spread over 3 days from `base`, several exactly on hour and day boundaries."""
    rng = random.Random(seed)
    offsets = [
        timedelta(0),
        HOUR,
        DAY,
        DAY + HOUR,
        2 * DAY,
        timedelta(microseconds=-1),
        DAY - timedelta(microseconds=1),
    ]
    offsets += [timedelta(seconds=rng.uniform(0, 3 * 86400)) for _ in range(n - len(offsets))]
    for offset in offsets:
        status = rng.choice(("completed", "completed", "failed", "cancelled", "running", "pending"))
        finished = status in ("completed", "failed", "cancelled")
        duration = round(rng.lognormvariate(3.0, 1.2), 3) if finished else None
        message = rng.choice(ERRORS) if status == "failed" else None
        insert_run(
            db,
            record_type=rng.choice(TYPES),
            status=status,
            created_at=base + offset,
            total_duration=duration,
            success=(status == "completed") if finished else None,
            completed_at=base + offset + timedelta(seconds=duration) if duration is not None else None,
            error_message=message.format(n=rng.randint(1, 99999), id=uuid.uuid4()) if message else None,
        )


@pytest.fixture
def base() -> datetime:
    # A UTC midnight four days ago: windows below cross hour and day boundaries of the data.
    return (datetime.now(UTC) - 4 * DAY).replace(hour=0, minute=0, second=0, microsecond=0)


def windows(base: datetime) -> list[tuple[datetime | None, datetime | None]]:
    return [
        (None, None),
        (base + timedelta(minutes=30), base + 2 * DAY + timedelta(minutes=15)),  # days, hours and partial hours
        (base + HOUR, base + DAY + 5 * HOUR),  # whole hours only
        (base, base + 2 * DAY),  # whole days only
        (base + timedelta(minutes=10), base + timedelta(minutes=50)),  # inside one hour
        (base + DAY, base + DAY),  # empty: since == until
        (base + timedelta(hours=13, minutes=7), None),  # since only
        (None, base + DAY + timedelta(seconds=1)),  # until only, just past a run on the day boundary
        (base - 30 * DAY, base - 29 * DAY),  # before every run
    ]


def params(since: datetime | None, until: datetime | None, **extra: str) -> dict[str, str]:
    out = dict(extra)
    if since is not None:
        out["since"] = since.isoformat()
    if until is not None:
        out["until"] = until.isoformat()
    return out


def test_stats_match_a_brute_force_computation_over_windows(
    client: TestClient[Any], db: psycopg.Connection[Any], base: datetime
) -> None:
    seed_runs(db, base)
    rows = fetch_runs(db)
    for since, until in windows(base):
        response = client.get(f"{API}/stats", params=params(since, until))
        assert response.status_code == 200, response.text
        assert_summary_matches(response.json(), expected_summary(rows, since, until))


@pytest.mark.parametrize("group_by", ["status", "record_type", "status,record_type", "record_type,status"])
def test_stats_grouped(client: TestClient[Any], db: psycopg.Connection[Any], base: datetime, group_by: str) -> None:
    seed_runs(db, base, n=90, seed=3)
    rows = fetch_runs(db)
    keys = tuple(group_by.split(","))
    for since, until in windows(base)[:3]:
        body = client.get(f"{API}/stats", params=params(since, until, group_by=group_by)).json()
        assert_summary_matches(body, expected_summary(rows, since, until, keys))


def test_stats_on_an_empty_database_have_every_field(client: TestClient[Any]) -> None:
    body = client.get(f"{API}/stats").json()
    assert body["total_migrations"] == 0
    assert body["status_breakdown"] == {}
    assert body["record_type_breakdown"] == {}
    assert body["success_rate"] is None
    assert body["average_duration"] is None
    assert body["duration"] == {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    assert body["duration_by_record_type"] == {}
    assert body["last_24h"] == {"started": 0, "finished": 0, "failed": 0}
    assert (body["running_now"], body["stuck"], body["stuck_after_minutes"]) == (0, 0, 30.0)


def test_last_24h_running_and_stuck(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(hours=2)
    insert_run(
        db,
        status="completed",
        success=True,
        total_duration=5.0,
        created_at=now - timedelta(hours=30),
        completed_at=now - timedelta(hours=23),
    )  # started before, finished inside the 24 h
    insert_run(
        db,
        status="failed",
        success=False,
        total_duration=5.0,
        created_at=now - timedelta(hours=3),
        completed_at=now - timedelta(hours=2),
    )
    insert_run(db, status="failed", success=False, created_at=now - 2 * DAY, completed_at=now - 25 * HOUR)
    quiet = insert_run(db, status="running", created_at=old)  # nothing for 2 h: stuck
    with_state = insert_run(db, status="running", created_at=old)
    with_checkpoint = insert_run(db, status="running", created_at=old)
    insert_run(db, status="running", created_at=old, updated_at=now - timedelta(minutes=5))  # touched recently
    insert_run(db, status="running", created_at=now - timedelta(minutes=3))  # just started
    old_state = insert_run(db, status="running", created_at=old)  # only an old state: stuck
    # a recent state of a run that is not running makes no running run alive
    finished_state = insert_run(db, status="completed", success=True, created_at=now - 5 * DAY)
    for run_id, at in (
        (with_state, now - timedelta(minutes=10)),
        (old_state, now - timedelta(minutes=45)),
        (finished_state, now - timedelta(minutes=2)),
    ):
        insert_state(db, run_id, step_name="file_reading", created_at=at, step_order=1)
    insert_checkpoint(db, with_checkpoint, checkpoint_name="after_file_reading", created_at=now - timedelta(minutes=1))
    body = client.get(f"{API}/stats").json()
    assert body["recent_24h"] == 7
    assert body["last_24h"] == {"started": 7, "finished": 2, "failed": 1}
    assert body["running_now"] == 6
    assert body["stuck"] == 2, quiet
    # the window does not change the figures about now
    windowed = client.get(f"{API}/stats", params={"since": (now - 3 * DAY).isoformat(), "until": old.isoformat()})
    assert windowed.json()["total_migrations"] == 3
    assert (windowed.json()["running_now"], windowed.json()["stuck"]) == (6, 2)


def test_stuck_threshold_comes_from_settings(settings: Any, db: psycopg.Connection[Any]) -> None:
    import msgspec

    from app import create_app

    insert_run(db, status="running", created_at=datetime.now(UTC) - timedelta(minutes=20))
    for minutes, stuck in ((30.0, 0), (10.0, 1)):
        # A direct engine write reaches the roll-ups within the fold interval: read after it.
        with FoldedClient(app=create_app(msgspec.structs.replace(settings, stuck_after_minutes=minutes))) as c:
            c.engine_db = db
            body = c.get(f"{API}/stats").json()
        assert (body["stuck"], body["stuck_after_minutes"]) == (stuck, minutes)


def test_naive_datetimes_are_utc(client: TestClient[Any], db: psycopg.Connection[Any], base: datetime) -> None:
    insert_run(db, created_at=base + timedelta(minutes=5))
    naive = client.get(f"{API}/stats", params={"since": (base + timedelta(minutes=4)).replace(tzinfo=None).isoformat()})
    assert naive.json()["total_migrations"] == 1
    offset = client.get(
        f"{API}/stats", params={"since": (base + timedelta(minutes=4)).isoformat().replace("+00:00", "+01:00")}
    )
    assert offset.json()["total_migrations"] == 1  # 1 h earlier instant


@pytest.mark.parametrize(
    ("path", "query", "named"),
    [
        ("/stats", {"group_by": "status,owner"}, "group_by"),
        ("/stats", {"group_by": "Status"}, "group_by"),
        ("/stats", {"since": "yesterday"}, "since"),
        ("/stats", {"until": "2026-13-01T00:00:00Z"}, "until"),
        ("/stats", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
        ("/stats/history", {"interval": "week"}, "interval"),
        (
            "/stats/history",
            {"interval": "hour", "since": "2020-01-01T00:00:00Z", "until": "2021-01-01T00:00:00Z"},
            "since/until",
        ),
        ("/stats/errors", {"limit": "0"}, "limit"),
        ("/stats/errors", {"since": "x"}, "since"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    client: TestClient[Any], path: str, query: dict[str, str], named: str
) -> None:
    response = client.get(f"{API}{path}", params=query)
    assert response.status_code == 400, response.text
    assert named in response.json()["detail"]


def test_history_buckets_match_a_brute_force_computation(
    client: TestClient[Any], db: psycopg.Connection[Any], base: datetime
) -> None:
    seed_runs(db, base, n=120, seed=11)
    rows = fetch_runs(db)
    for interval, since, until, step in (
        ("hour", base + timedelta(minutes=20), base + DAY + timedelta(hours=2, minutes=1), HOUR),
        ("day", base - DAY, base + 3 * DAY + timedelta(seconds=1), DAY),
    ):
        body = client.get(f"{API}/stats/history", params=params(since, until, interval=interval)).json()
        start = floor_hour(since) if step == HOUR else since.replace(hour=0, minute=0, second=0, microsecond=0)
        assert body["since"] == start.isoformat().replace("+00:00", "Z")
        starts = [start + i * step for i in range(len(body["buckets"]))]
        assert starts[-1] < until <= starts[-1] + step  # until rounded up to whole buckets
        for bucket, bucket_start in zip(body["buckets"], starts, strict=True):
            inside = [r for r in rows if bucket_start <= r["created_at"] < bucket_start + step]
            want = expected_figures(inside)
            assert datetime.fromisoformat(bucket["start"]) == bucket_start
            assert bucket["total"] == want["total"]
            assert bucket["by_status"] == dict(
                sorted({s: sum(1 for r in inside if r["status"] == s) for s in {r["status"] for r in inside}}.items())
            )
            assert (bucket["succeeded"], bucket["finished"], bucket["success_rate"]) == (
                want["succeeded"],
                want["finished"],
                want["success_rate"],
            )
            assert_duration(bucket["duration"], want["duration"])


def test_history_defaults(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    insert_run(db, created_at=now)
    hourly = client.get(f"{API}/stats/history").json()
    assert hourly["interval"] == "hour"
    assert len(hourly["buckets"]) == 48
    assert hourly["buckets"][-1]["total"] == 1
    assert datetime.fromisoformat(hourly["until"]) == floor_hour(now) + HOUR
    daily = client.get(f"{API}/stats/history", params={"interval": "day"}).json()
    assert len(daily["buckets"]) == 30
    assert daily["buckets"][-1]["total"] == 1
    assert sum(b["total"] for b in daily["buckets"][:-1]) == 0
    assert daily["buckets"][0]["duration"] == {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for days, status in ((1000, 200), (1001, 400)):
        span = {"interval": "day", "since": start.isoformat(), "until": (start + days * DAY).isoformat()}
        response = client.get(f"{API}/stats/history", params=span)
        assert response.status_code == status
        if status == 200:
            assert len(response.json()["buckets"]) == 1000
    assert "at most 1000" in response.json()["detail"]


def test_error_groups_match_a_brute_force_computation(
    client: TestClient[Any], db: psycopg.Connection[Any], base: datetime
) -> None:
    seed_runs(db, base, n=200, seed=5)
    rows = fetch_runs(db)
    for since, until in windows(base):
        body = client.get(f"{API}/stats/errors", params=params(since, until)).json()
        want = expected_errors(rows, since, until)
        assert body["total_failed"] == want["total_failed"]
        assert body["fingerprints"] == len(want["groups"])
        got = {g["fingerprint"]: g for g in body["groups"]}
        assert set(got) == set(want["groups"])
        for fp, w in want["groups"].items():
            g = got[fp]
            assert g["count"] == w["count"]
            assert datetime.fromisoformat(g["first_seen"]) == w["first_seen"]
            assert datetime.fromisoformat(g["last_seen"]) == w["last_seen"]
            assert g["record_types"] == w["record_types"]
            assert g["example_run_ids"] == w["example_run_ids"]
            assert g["example_message"] == w["example_message"]
        assert [g["count"] for g in body["groups"]] == sorted((g["count"] for g in body["groups"]), reverse=True)
    limited = client.get(f"{API}/stats/errors", params={"limit": 1}).json()
    assert len(limited["groups"]) == 1
    assert limited["fingerprints"] == len(expected_errors(rows, None, None)["groups"])


def test_error_fingerprints_strip_ids_numbers_and_paths(db: psycopg.Connection[Any]) -> None:
    cases = {
        "Run 3f2b0c1e-8a1d-4c55-9a53-0d2b8f1c0a11 failed": "Run <id> failed",
        "cannot open /var/data/in/claims_2024.csv (errno 2)": "cannot open <path> (errno <n>)",
        r"cannot open C:\data\in\x.csv": "cannot open <path>",
        "missing required field 'policy_number' in row 812": "missing required field 'policy_number' in row <n>",
        "bad value 'AB-1234' for 'policy_number'": "bad value <str> for 'policy_number'",
        "object deadbeef01 not found, took 1.5 s": "object <hex> not found, took <n> s",
        "  spaced \t out  ": "spaced out",
        "": "",
    }
    for message, want in cases.items():
        got = db.execute("SELECT migration_api_error_fingerprint(%s)", (message,)).fetchone()
        assert got is not None
        assert got[0] == want == fingerprint(message), message
    row = db.execute("SELECT migration_api_error_fingerprint(NULL)").fetchone()
    assert row is not None
    assert row[0] == ""


def test_duration_bins_agree_between_sql_and_python(db: psycopg.Connection[Any]) -> None:
    values = [0.0, -3.0, 0.0004, 0.5, 1.0, 1.04, 33.3, 1e6, 5e9, float("inf"), float("nan")]
    got = [r[0] for r in db.execute("SELECT migration_api_duration_bin(v) FROM unnest(%s::float8[]) v", (values,))]
    assert got == [duration_bin(v) for v in values]
