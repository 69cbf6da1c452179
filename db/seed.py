"""`python -m db.seed --runs N`: realistic demo runs with their step states and checkpoints.

Rows are built with polyfactory from the wire Structs, so the demo data always has the shape the
API serves; they are added to what is there (nothing is deleted).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from polyfactory import Use
from polyfactory.factories.msgspec_factory import MsgspecFactory

from config import ConfigError, load_settings
from db.reach import command_database
from db.schema import ensure_schema
from dto.runs import RunRead
from dto.steps import CheckpointRead, StateRead

RECORD_TYPES = ("disability", "absence", "group_policy", "employee", "claim")
STEPS = ("initializing", "file_reading", "data_mapping", "data_transformation", "api_integration", "completed")
STATUSES = (
    ("completed", 0.70),
    ("failed", 0.12),
    ("running", 0.08),
    ("cancelled", 0.04),
    ("paused", 0.03),
    ("pending", 0.03),
)
ERRORS = (
    "File read error: unexpected end of file at line {n}",
    "Validation error: missing required field 'policy_number' in row {n}",
    "Transformation error: invalid date format in column 'effective_date' at record {n}",
    "API integration failed: HTTP 503 Service Unavailable from target endpoint after 3 retries (batch {n})",
)
rng = random.Random()  # noqa: S311 - demo data, not secrets


class SeedRunFactory(MsgspecFactory[RunRead]):
    __check_model__ = False
    id = Use(uuid.uuid4)
    record_type = Use(lambda: rng.choice(RECORD_TYPES))
    file_path = Use(lambda: f"data/input/{rng.choice(RECORD_TYPES)}_{rng.randint(1, 5000)}.csv")
    status = Use(lambda: rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0])
    created_at = Use(lambda: datetime.now(UTC) - timedelta(seconds=rng.uniform(60, 30 * 86400)))
    updated_at = Use(lambda: datetime.now(UTC))
    completed_at = None
    total_duration = None
    success = None
    error_message = None


class SeedStateFactory(MsgspecFactory[StateRead]):
    __check_model__ = False
    id = Use(uuid.uuid4)
    metadata = Use(lambda: {"worker": f"worker-{rng.randint(1, 64)}", "agent_version": "2.3.1"})


class SeedCheckpointFactory(MsgspecFactory[CheckpointRead]):
    __check_model__ = False
    id = Use(uuid.uuid4)
    metadata = None


def build_run() -> tuple[RunRead, list[StateRead], list[CheckpointRead]]:
    run = SeedRunFactory.build()
    created_at = run.created_at
    assert created_at is not None  # the factory sets it (RunRead allows null for what engines store)
    duration = rng.lognormvariate(3.5, 1.0)
    terminal = run.status in {"completed", "failed", "cancelled"}
    steps = {"completed": 6, "failed": rng.randint(2, 5), "pending": 0}.get(run.status, rng.randint(1, 5))
    total = rng.randint(100, 50_000)
    if terminal:
        run.completed_at = created_at + timedelta(seconds=duration)
        run.updated_at = run.completed_at
        run.total_duration = round(duration, 3)
        run.success = run.status == "completed"
        if run.status == "failed":
            run.error_message = rng.choice(ERRORS).format(n=rng.randint(1, total))
    else:
        run.updated_at = created_at + timedelta(seconds=duration * steps / 6)
    step_time = timedelta(seconds=duration / 6)
    states = [
        SeedStateFactory.build(
            run_id=run.id,
            step_name=STEPS[k],
            step_order=k + 1,
            created_at=created_at + k * step_time,
            state_data={
                "step": STEPS[k],
                "status": "error" if run.status == "failed" and k == steps - 1 else "ok",
                "records_total": total,
                "records_processed": total * k // 5,
                "records_failed": rng.randint(0, 20),
            },
        )
        for k in range(steps)
    ]
    checkpoints = [
        SeedCheckpointFactory.build(
            run_id=run.id,
            checkpoint_name=name,
            created_at=created_at + k * step_time,
            state_data={"completed_steps": list(STEPS[:k]), "resume_token": uuid.uuid4().hex[:16]},
        )
        for k, name in ((2, "after_file_reading"), (4, "after_data_transformation"))
        if steps >= k
    ]
    return run, states, checkpoints


def seed(url: str, schema: str, runs: int) -> None:
    from psycopg.types.json import Jsonb

    def jsonb(value: Any) -> Any:
        return None if value is None else Jsonb(value)

    with psycopg.connect(url, options=f"-c search_path={schema},public") as conn, conn.cursor() as cur:
        for _ in range(runs):
            run, states, checkpoints = build_run()
            cur.execute(
                "INSERT INTO migration_runs (id, file_path, record_type, status, created_at, updated_at, "
                "completed_at, total_duration, success, error_message) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    run.id,
                    run.file_path,
                    run.record_type,
                    run.status,
                    run.created_at,
                    run.updated_at,
                    run.completed_at,
                    run.total_duration,
                    run.success,
                    run.error_message,
                ),
            )
            cur.executemany(
                "INSERT INTO workflow_states (id, run_id, step_name, state_data, created_at, step_order, metadata) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s)",
                [
                    (s.id, s.run_id, s.step_name, jsonb(s.state_data), s.created_at, s.step_order, jsonb(s.metadata))
                    for s in states
                ],
            )
            cur.executemany(
                "INSERT INTO workflow_checkpoints (id, run_id, checkpoint_name, state_data, created_at, metadata) "
                "VALUES (%s,%s,%s,%s,%s,%s)",
                [
                    (c.id, c.run_id, c.checkpoint_name, jsonb(c.state_data), c.created_at, jsonb(c.metadata))
                    for c in checkpoints
                ],
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500, help="how many runs to add (default 500)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    with command_database(settings) as url:
        ensure_schema(url, settings.db_schema)
        seed(url, settings.db_schema, args.runs)
    print(f"added {args.runs} runs with their states and checkpoints to schema {settings.db_schema}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
