"""`make seed` (db/seed.py): demo data that tells a story: record types that match file names, a
realistic mix of outcomes, a handful of stuck runs, failures in a few fingerprints, right estimates."""

from __future__ import annotations

import io
from typing import Any

import psycopg
from litestar.testing import TestClient

from config import Settings
from db.seed import ERRORS, STUCK_SHARE, seed

API = "/api/v1/migrations"
RUNS = 500


def test_seeded_runs_look_real_and_estimates_are_right_at_once(
    client: TestClient[Any], db: psycopg.Connection[Any], settings: Settings
) -> None:
    assert settings.database_url is not None
    progress = io.StringIO()
    seed(settings.database_url, settings.db_schema, RUNS, progress=progress)
    assert f"{RUNS}/{RUNS} runs" in progress.getvalue()

    mismatched = db.execute(
        "SELECT count(*) FROM migration_runs WHERE migration_api_file_name(file_path) NOT LIKE record_type || '\\_%'"
    ).fetchone()
    assert mismatched == (0,)

    stats = client.get(f"{API}/stats").json()
    assert stats["total_migrations"] == RUNS
    breakdown = stats["status_breakdown"]
    assert set(breakdown) == {"completed", "failed", "running", "cancelled", "paused", "pending"}
    assert breakdown["completed"] > RUNS / 2
    assert stats["stuck"] == round(RUNS * STUCK_SHARE)  # a handful, not most of the running ones
    assert stats["running_now"] > stats["stuck"]

    fingerprints = client.get(f"{API}/stats/errors").json()["groups"]
    assert 2 <= len(fingerprints) <= len(ERRORS)
    assert sum(g["count"] for g in fingerprints) == breakdown["failed"]

    listed = client.get(f"{API}?limit=1&count=estimated")
    assert abs(int(listed.headers["x-total-count"]) - RUNS) <= RUNS * 0.05

    failed_claims = client.get(f"{API}?status=failed&record_type=claim&limit=500").json()
    assert all(r["file_path"].startswith("data/input/claim_") for r in failed_claims)
