"""Retention (`python -m db.retention`): old finished runs go with their steps, in batches, the
statistics stay exact, the rest stays, and an engine writing meanwhile is never held up."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from config import Settings
from db.retention import prune
from tests.helpers import insert_checkpoint, insert_run, insert_state, wait_folded

# Time bounds (freshness, an engine never held up): run alone by `make test`, never beside other tests.
pytestmark = pytest.mark.timing

API = "/api/v1/migrations"


def add_run(db: psycopg.Connection[Any], days_ago: float, status: str) -> uuid.UUID:
    run_id = uuid.uuid4()
    created = datetime.now(UTC) - timedelta(days=days_ago)
    done = status in {"completed", "failed", "cancelled"}
    insert_run(
        db,
        status,
        id=run_id,
        file_path=f"in/{run_id}.csv",
        created_at=created,
        completed_at=created + timedelta(seconds=30) if done else None,
        total_duration=30.0 if done else None,
        success=(status == "completed") if done else None,
    )
    insert_state(db, run_id, step_name="read", step_order=1)
    insert_checkpoint(db, run_id, checkpoint_name="c")
    return run_id


def test_old_finished_runs_go_with_their_steps_and_statistics_stay_exact(
    client: TestClient[Any], db: psycopg.Connection[Any], settings: Settings, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    old = [add_run(db, 100 + i, ("completed", "failed", "cancelled")[i % 3]) for i in range(23)]
    old_running = add_run(db, 120, "running")
    recent = [add_run(db, 3, "completed") for _ in range(4)]
    assert client.get(f"{API}/stats").json()["total_migrations"] == 28

    counted = prune(
        settings.database_url,
        settings.db_schema,
        timedelta(days=90),
        batch=5,
        pause=0,
        archive=None,
        dry_run=True,
        out=io.StringIO(),
    )
    assert counted == 23
    assert db.execute("SELECT count(*) FROM migration_runs").fetchone() == (28,)

    archive = tmp_path / "old.jsonl"
    log = io.StringIO()
    with archive.open("a", encoding="utf-8") as out:
        went = prune(
            settings.database_url,
            settings.db_schema,
            timedelta(days=90),
            batch=5,
            pause=0,
            archive=out,
            dry_run=False,
            out=log,
        )
    assert went == 23
    assert log.getvalue().count("deleted ") == 5  # batches of 5: 5, 10, 15, 20, 23
    kept = {r[0] for r in db.execute("SELECT id FROM migration_runs")}
    assert kept == {old_running, *recent}
    assert db.execute("SELECT count(DISTINCT run_id) FROM workflow_states").fetchone() == (5,)
    assert db.execute("SELECT count(DISTINCT run_id) FROM workflow_checkpoints").fetchone() == (5,)
    archived = [json.loads(line) for line in archive.read_text().splitlines()]
    assert sorted(uuid.UUID(a["run"]["id"]) for a in archived) == sorted(old)
    assert all(len(a["states"]) == 1 and len(a["checkpoints"]) == 1 for a in archived)

    wait_folded(db)
    stats = client.get(f"{API}/stats").json()
    assert stats["total_migrations"] == 5
    assert stats["status_breakdown"] == {"running": 1, "completed": 4}
    for run_id in old[:3]:
        assert client.get(f"{API}/{run_id}").status_code == 404


def test_an_engine_writing_meanwhile_is_never_held_up(
    client: TestClient[Any], db: psycopg.Connection[Any], settings: Settings
) -> None:
    assert settings.database_url is not None
    for i in range(300):
        add_run(db, 200 + i / 10, "completed")
    stop = threading.Event()
    slowest = [0.0]

    def engine() -> None:
        with psycopg.connect(
            settings.database_url or "", autocommit=True, options=f"-c search_path={settings.db_schema},public"
        ) as conn:
            while not stop.is_set():
                started = time.monotonic()
                run_id = conn.execute(
                    "INSERT INTO migration_runs (id, file_path, record_type, status) "
                    "VALUES (gen_random_uuid(), 'in/live.csv', 'claim', 'running') RETURNING id"
                ).fetchone()
                assert run_id is not None
                conn.execute("UPDATE migration_runs SET status = 'completed' WHERE id = %s", run_id)
                slowest[0] = max(slowest[0], time.monotonic() - started)

    writer = threading.Thread(target=engine)
    writer.start()
    try:
        went = prune(
            settings.database_url,
            settings.db_schema,
            timedelta(days=90),
            batch=50,
            pause=0,
            archive=None,
            dry_run=False,
            out=io.StringIO(),
        )
    finally:
        stop.set()
        writer.join()
    assert went == 300
    assert slowest[0] < 1.0
    wait_folded(db)
    total = db.execute("SELECT count(*) FROM migration_runs").fetchone()
    assert client.get(f"{API}/stats").json()["total_migrations"] == (total[0] if total else -1)
