"""GET /api/v1/migrations/{run_id}/timeline: step durations from consecutive states, next to the median
of the same step over recent runs of the same record type."""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from litestar.testing import TestClient

from repositories.timeline import REFERENCE_RUNS
from tests.helpers import insert_run, insert_state

API = "/api/v1/migrations"
STEPS = ("initializing", "file_reading", "data_mapping", "completed")


def add_states(db: psycopg.Connection[Any], run_id: str, start: datetime, seconds: list[float]) -> None:
    """One state per step, the k-th at start + the first k durations."""
    at = start
    for order, (name, took) in enumerate(zip(STEPS, seconds, strict=False), 1):
        insert_state(db, run_id, step_name=name, created_at=at, step_order=order)
        at += timedelta(seconds=took)


def test_timeline_durations_and_medians(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    reference: list[list[float]] = []
    for i in range(7):
        took = [1.0 + i, 10.0 + 2 * i, 5.0, 2.0]
        start = now - timedelta(hours=10 - i)
        run_id = insert_run(
            db,
            record_type="claim",
            status="completed",
            success=True,
            created_at=start,
            completed_at=start + timedelta(seconds=sum(took)),
            total_duration=sum(took),
        )
        add_states(db, run_id, start, took)
        reference.append(took)
    failed_start = now - timedelta(hours=5)  # stopped after two steps: counts for those only
    failed = insert_run(
        db,
        record_type="claim",
        status="failed",
        success=False,
        created_at=failed_start,
        completed_at=failed_start + timedelta(seconds=40),
    )
    add_states(db, failed, failed_start, [4.0, 36.0])
    reference.append([4.0, 36.0])
    other = insert_run(db, record_type="absence", created_at=now - timedelta(hours=1))  # another record type
    add_states(db, other, now - timedelta(hours=1), [1000.0, 1000.0, 1000.0])

    start = now - timedelta(minutes=30)
    run_id = insert_run(db, record_type="claim", status="running", created_at=start)
    add_states(db, run_id, start, [3.0, 60.0, 5.0])
    body = client.get(f"{API}/{run_id}/timeline").json()
    assert body["run_id"] == run_id
    assert body["reference_runs"] == 8
    steps = body["steps"]
    assert [s["step_name"] for s in steps] == list(STEPS[:3])
    assert [s["duration_seconds"] for s in steps] == [3.0, 60.0, None]  # the last step is still running
    assert steps[2]["ended_at"] is None
    for k, step in enumerate(steps):
        samples = [took[k] for took in reference if len(took) > k]
        assert step["median_sample_size"] == len(samples)
        assert step["median_seconds"] == round(statistics.median(samples), 3)
    assert steps[1]["ratio_to_median"] == round(60.0 / statistics.median([10, 12, 14, 16, 18, 20, 22, 36]), 2)
    assert body["slowest_step"] == "file_reading"


def test_timeline_of_a_run_without_states_and_of_an_unknown_run(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    run_id = insert_run(db)
    body = client.get(f"{API}/{run_id}/timeline").json()
    assert body["steps"] == []
    assert body["slowest_step"] is None
    assert client.get(f"{API}/{uuid.uuid4()}/timeline").status_code == 404
    bad = client.get(f"{API}/not-a-uuid/timeline")
    assert bad.status_code == 400
    assert "run_id" in bad.json()["detail"]


def test_timeline_medians_use_only_the_most_recent_runs(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    for i in range(REFERENCE_RUNS + 5):
        # the 5 oldest runs took 100 s on the step, the recent ones 1 s
        start = now - timedelta(minutes=10 + i)
        run_id = insert_run(
            db,
            record_type="claim",
            status="completed",
            success=True,
            created_at=start,
            completed_at=start + timedelta(seconds=2),
        )
        add_states(db, run_id, start, [100.0 if i >= REFERENCE_RUNS else 1.0, 1.0])
    run_id = insert_run(db, record_type="claim", created_at=now)
    add_states(db, run_id, now, [2.0, 1.0])
    step = client.get(f"{API}/{run_id}/timeline").json()["steps"][0]
    assert step["median_sample_size"] == REFERENCE_RUNS
    assert step["median_seconds"] == 1.0
    assert step["ratio_to_median"] == 2.0


def test_a_step_recorded_after_completion_is_late_and_never_has_a_negative_duration(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    created = client.post(API, json={"file_path": "data/input/claim_7.csv", "record_type": "claim"})
    assert created.status_code == 201
    run = f"{API}/{created.json()['id']}"
    for name in ("initializing", "file_reading"):
        assert client.post(f"{run}/states", json={"step_name": name, "state_data": {}}).status_code == 201
    assert client.patch(run, json={"status": "running"}).status_code == 200
    assert client.patch(run, json={"status": "completed"}).status_code == 200
    late = client.post(f"{run}/states?late=true", json={"step_name": "cleanup", "state_data": {}})
    assert late.status_code == 201

    steps = client.get(f"{run}/timeline").json()["steps"]
    assert [(s["step_name"], s["late"]) for s in steps] == [
        ("initializing", False),
        ("file_reading", False),
        ("cleanup", True),
    ]
    completed_at = client.get(run).json()["completed_at"]
    assert steps[1]["ended_at"] == completed_at  # the late step does not end the one before it
    assert steps[2]["ended_at"] is None
    assert steps[2]["duration_seconds"] is None
    assert all(s["duration_seconds"] >= 0 for s in steps[:2])

    # A next state stored with an earlier time (an engine's clock) gives no duration, not a negative one.
    db.execute(
        "UPDATE workflow_states SET created_at = created_at - interval '1 hour' WHERE step_name = 'file_reading'"
    )
    steps = client.get(f"{run}/timeline").json()["steps"]
    assert steps[0]["duration_seconds"] is None
    assert all(s["duration_seconds"] is None or s["duration_seconds"] >= 0 for s in steps)
