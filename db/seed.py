"""`python -m db.seed --runs N`: realistic demo runs with their step states and checkpoints.

Rows are built with polyfactory from the wire Structs, so the demo data always has the shape the
API serves; they are added to what is there (nothing is deleted). File names say the record type
(`data/input/claim_2026_11_0042.csv`); about 72 % of runs completed, 12 % failed (five causes, so
five error fingerprints), 4 % cancelled, the rest pending, paused or running, of which a handful
(about 1 in 125 runs) are stuck: silent for hours. Progress goes to stderr; the tables are
ANALYZEd at the end, so `count=estimated` is right at once.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TextIO

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
# Finished runs are spread over the last 30 days; unfinished ones are recent (see build_run).
STATUSES = (
    ("completed", 0.72),
    ("failed", 0.12),
    ("running", 0.07),
    ("cancelled", 0.04),
    ("paused", 0.02),
    ("pending", 0.03),
)
# Failures are dominated by a few causes; numbers, ids and paths differ from run to run, so each
# template is one fingerprint in /stats/errors.
ERRORS = (
    ("Validation error: missing required field 'policy_number' in row {n}", 0.40),
    ("API integration failed: HTTP 503 Service Unavailable from target endpoint after 3 retries (batch {n})", 0.25),
    ("Transformation error: invalid date format in column 'effective_date' at record {n}", 0.20),
    ("File read error: unexpected end of file at line {n}", 0.10),
    ("Database error: deadlock detected while writing batch {n}", 0.05),
)
# A running run with no state, checkpoint or update for STUCK_AFTER_MINUTES (30) counts as stuck;
# about 1 run in 125 is seeded that way (4 of 500), every other running run reported minutes ago.
STUCK_SHARE = 0.008
BATCH = 200
rng = random.Random()  # noqa: S311 - demo data, not secrets


def _file_path(record_type: str, created_at: datetime) -> str:
    """`data/input/<record_type>_<yyyy>_<mm>_<nnnn>.csv`: the file's name says what it holds."""
    return f"data/input/{record_type}_{created_at:%Y_%m}_{rng.randint(1, 9999):04d}.csv"


class SeedRunFactory(MsgspecFactory[RunRead]):
    __check_model__ = False
    id = Use(uuid.uuid4)
    record_type = Use(lambda: rng.choice(RECORD_TYPES))
    status = Use(lambda: rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0])
    created_at = Use(lambda: datetime.now(UTC) - timedelta(seconds=rng.uniform(60, 30 * 86400)))
    updated_at = Use(lambda: datetime.now(UTC))
    file_path = ""  # set from record_type and created_at in build_run
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


def build_run(stuck: bool = False) -> tuple[RunRead, list[StateRead], list[CheckpointRead]]:
    """One run with its states and checkpoints; `stuck` makes a running run silent for hours."""
    run = SeedRunFactory.build(status="running") if stuck else SeedRunFactory.build()
    now = datetime.now(UTC)
    duration = rng.lognormvariate(3.5, 1.0)
    terminal = run.status in {"completed", "failed", "cancelled"}
    steps = {"completed": 6, "failed": rng.randint(2, 5), "pending": 0}.get(run.status, rng.randint(1, 5))
    total = rng.randint(100, 50_000)
    if stuck:
        # started hours ago, last heard of 2 to 6 hours ago
        silent_since = now - timedelta(hours=rng.uniform(2, 6))
        run.created_at = silent_since - timedelta(seconds=duration * steps / 6)
        run.updated_at = silent_since
    elif not terminal:
        # started within the last hour or so, last report seconds to minutes ago
        run.updated_at = now - timedelta(seconds=rng.uniform(5, 600))
        run.created_at = run.updated_at - timedelta(seconds=duration * steps / 6 + rng.uniform(1, 60))
    created_at = run.created_at
    assert created_at is not None  # the factory sets it (RunRead allows null for what engines store)
    run.file_path = _file_path(run.record_type, created_at)
    if terminal:
        run.completed_at = created_at + timedelta(seconds=duration)
        run.updated_at = run.completed_at
        run.total_duration = round(duration, 3)
        run.success = run.status == "completed"
        if run.status == "failed":
            template = rng.choices([t for t, _ in ERRORS], [w for _, w in ERRORS])[0]
            run.error_message = template.format(n=rng.randint(1, total))
        elif run.status == "cancelled":
            run.error_message = "cancelled by operator: wrong input file"
    step_time = (
        (run.updated_at - created_at) / max(steps - 1, 1)
        if not terminal and run.updated_at is not None
        else timedelta(seconds=duration / 6)
    )
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
            created_at=created_at + (k - 1) * step_time,
            state_data={"completed_steps": list(STEPS[:k]), "resume_token": uuid.uuid4().hex[:16]},
        )
        for k, name in ((2, "after_file_reading"), (4, "after_data_transformation"))
        if steps >= k
    ]
    return run, states, checkpoints


INSERT_RUN: Final = (
    "INSERT INTO migration_runs (id, file_path, record_type, status, created_at, updated_at, "
    "completed_at, total_duration, success, error_message) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)
INSERT_STATE: Final = (
    "INSERT INTO workflow_states (id, run_id, step_name, state_data, created_at, step_order, metadata) "
    "VALUES (%s,%s,%s,%s,%s,%s,%s)"
)
INSERT_CHECKPOINT: Final = (
    "INSERT INTO workflow_checkpoints (id, run_id, checkpoint_name, state_data, created_at, metadata) "
    "VALUES (%s,%s,%s,%s,%s,%s)"
)


def _jsonb(value: Any) -> Any:
    from psycopg.types.json import Jsonb

    return None if value is None else Jsonb(value)


def seed(url: str, schema: str, runs: int, progress: TextIO | None = None) -> None:
    """Add `runs` runs (with states and checkpoints) in batches, then ANALYZE the three tables so
    that planner estimates (`count=estimated`) match. Progress goes to `progress` when given."""
    stuck = max(1, round(runs * STUCK_SHARE)) if runs >= 50 else 0
    done = 0
    with psycopg.connect(url, options=f"-c search_path={schema},public", autocommit=True) as conn:
        while done < runs:
            size = min(BATCH, runs - done)
            built = [build_run(stuck=done + i < stuck) for i in range(size)]
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    INSERT_RUN,
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
                        for r, _, _ in built
                    ],
                )
                cur.executemany(
                    INSERT_STATE,
                    [
                        (
                            s.id,
                            s.run_id,
                            s.step_name,
                            _jsonb(s.state_data),
                            s.created_at,
                            s.step_order,
                            _jsonb(s.metadata),
                        )
                        for _, states, _ in built
                        for s in states
                    ],
                )
                cur.executemany(
                    INSERT_CHECKPOINT,
                    [
                        (c.id, c.run_id, c.checkpoint_name, _jsonb(c.state_data), c.created_at, _jsonb(c.metadata))
                        for _, _, checkpoints in built
                        for c in checkpoints
                    ],
                )
            done += size
            if progress is not None:
                # A line rewritten in place: a progress bar without a dependency for one loop.
                bar = "#" * (30 * done // runs)
                progress.write(f"\rseeding [{bar:<30}] {done}/{runs} runs")
                progress.flush()
        conn.execute("ANALYZE migration_runs, workflow_states, workflow_checkpoints")
    if progress is not None and runs:
        progress.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.seed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
        seed(url, settings.db_schema, args.runs, progress=sys.stderr)
    print(f"added {args.runs} runs with their states and checkpoints to schema {settings.db_schema}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
