"""What the service's schema costs an engine's writes: its indexes, roll-up and change-notice triggers.

    DATABASE_URL=postgresql://... .venv/bin/python bench/write_cost.py [RUNS]   (default 5000)

Makes two throwaway schemas in that database: `engine` has the engines' tables with their own
indexes only (schema version 1), `service` has every version (what `make migrate` leaves). In each,
it writes the way an engine does, one autocommit statement at a time: RUNS run inserts (a run
starts), 5 state inserts per run (its steps), and RUNS updates to a terminal status with duration
and outcome (it finishes). Then it prints the mean microseconds per statement of each kind and the
ratio service / engine. The phases alternate between the two schemas so that noise hits both.
Both schemas are dropped at the end.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from db.schema import MIGRATIONS, ensure_schema

TYPES = ("claim", "absence", "disability", "employee", "group_policy")
STEPS = ("read", "validate", "transform", "map", "write")


def timed(work: Callable[[], int]) -> float:
    """Mean microseconds per statement of `work` (which returns how many statements it sent)."""
    start = time.perf_counter()
    statements = work()
    return (time.perf_counter() - start) / statements * 1e6


def phases(conn: psycopg.Connection[Any], ids: list[uuid.UUID]) -> list[Callable[[], int]]:
    rng = random.Random(42)  # noqa: S311 - benchmark data, not secrets

    def start_runs() -> int:
        for run_id in ids:
            conn.execute(
                "INSERT INTO migration_runs (id, file_path, record_type, status) VALUES (%s, %s, %s, 'running')",
                (run_id, f"data/input/{rng.choice(TYPES)}_{rng.randint(1, 99999)}.csv", rng.choice(TYPES)),
            )
        return len(ids)

    def write_states() -> int:
        for run_id in ids:
            for order, step in enumerate(STEPS, 1):
                conn.execute(
                    "INSERT INTO workflow_states (id, run_id, step_name, state_data, step_order) "
                    "VALUES (%s, %s, %s, '{\"records\": 100}', %s)",
                    (uuid.uuid4(), run_id, step, order),
                )
        return len(ids) * len(STEPS)

    def finish_runs() -> int:
        for run_id in ids:
            failed = rng.random() < 0.15
            conn.execute(
                "UPDATE migration_runs SET status = %s, completed_at = now(), updated_at = now(), "
                "total_duration = %s, success = %s, error_message = %s WHERE id = %s",
                (
                    "failed" if failed else "completed",
                    rng.uniform(5, 600),
                    not failed,
                    f"Timeout after {rng.randint(30, 300)}s" if failed else None,
                    run_id,
                ),
            )
        return len(ids)

    return [start_runs, write_states, finish_runs]


def main() -> int:
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("set DATABASE_URL to the PostgreSQL to measure on", file=sys.stderr)
        return 2
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    tag = uuid.uuid4().hex[:8]
    schemas = {"engine": f"write_cost_engine_{tag}", "service": f"write_cost_service_{tag}"}
    ensure_schema(url, schemas["engine"], MIGRATIONS[:1])
    ensure_schema(url, schemas["service"])
    conns = {
        name: psycopg.connect(url, autocommit=True, options=f"-c search_path={schema},public")
        for name, schema in schemas.items()
    }
    try:
        work = {name: phases(conn, [uuid.uuid4() for _ in range(runs)]) for name, conn in conns.items()}
        results: dict[str, dict[str, float]] = {"engine": {}, "service": {}}
        labels = ("insert run", "insert state", "finish run")
        for index, label in enumerate(labels):
            for name in ("engine", "service"):
                results[name][label] = timed(work[name][index])
        print(f"{runs} runs, autocommit single-row statements, mean microseconds per statement")
        print(f"{'statement':<14}{'engine us':>10}{'service us':>11}{'x':>7}")
        for label in labels:
            engine, service = results["engine"][label], results["service"][label]
            print(f"{label:<14}{engine:>10.0f}{service:>11.0f}{service / engine:>7.2f}")
    finally:
        for conn in conns.values():
            conn.close()
        with psycopg.connect(url, autocommit=True) as conn:
            for schema in schemas.values():
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
