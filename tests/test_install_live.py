"""The service installs itself into a busy engine database without stalling the engines.

An "engine" writes its cycle (insert a run, two states, a checkpoint, the finishing update; five
autocommit statements) from two connections without pause while the service's installation runs
on tables that already hold 100,000 runs. Every engine statement must still answer within a
second, and the engine must keep completing cycles while the installation is under way.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from db.schema import ensure_schema  # what `python -m db.migrate` runs
from tests.helpers import ENGINE_SCHEMA

RUNS = 100_000
ENGINE_THREADS = 2
MAX_STATEMENT_SECONDS = 1.0

# Existing runs over the last 90 days (80 % completed, 15 % failed, 5 % running), 2-5 states and
# 1-2 checkpoints each: the installation's indexes and backfills have real work to do.
PRELOAD = (
    """INSERT INTO migration_runs (id, file_path, record_type, status, created_at, updated_at, completed_at,
                                   total_duration, success, error_message)
       SELECT gen_random_uuid(), 'data/input/' || record_type || '_' || g || '.csv', record_type, status,
              created_at, created_at + secs * interval '1 second',
              CASE WHEN status <> 'running' THEN created_at + secs * interval '1 second' END,
              CASE WHEN status <> 'running' THEN secs END,
              CASE status WHEN 'completed' THEN true WHEN 'failed' THEN false END,
              CASE WHEN status = 'failed' THEN 'Timeout after ' || (30 + mod(g, 270)) || 's' END
         FROM (SELECT g, (ARRAY['claim', 'absence', 'disability', 'employee', 'group_policy'])[1 + mod(g, 5)]
                           AS record_type,
                      CASE WHEN p < 80 THEN 'completed' WHEN p < 95 THEN 'failed' ELSE 'running' END AS status,
                      created_at, secs
                 FROM (SELECT g, floor(random() * 100) AS p, now() - random() * interval '90 days' AS created_at,
                              round((5 + random() * 595)::numeric, 2)::float8 AS secs
                         FROM generate_series(1, %(runs)s) AS g) AS raw) AS r""",
    """INSERT INTO workflow_states (id, run_id, step_name, state_data, created_at, step_order)
       SELECT gen_random_uuid(), r.id, (ARRAY['read', 'validate', 'transform', 'map', 'write'])[k],
              jsonb_build_object('records', 100 * k), r.created_at + k * interval '1 second', k
         FROM migration_runs AS r CROSS JOIN LATERAL generate_series(1, 2 + (hashtext(r.id::text) & 3)) AS k""",
    """INSERT INTO workflow_checkpoints (id, run_id, checkpoint_name, state_data, created_at)
       SELECT gen_random_uuid(), r.id, 'after_step_' || k, jsonb_build_object('offset', 1000 * k),
              r.created_at + k * interval '2 seconds'
         FROM migration_runs AS r CROSS JOIN LATERAL generate_series(1, 1 + (hashtext(r.id::text) & 1)) AS k""",
)

RECORD_TYPES = ("claim", "absence", "disability", "employee", "group_policy")


@dataclass
class EngineLog:
    """What one engine connection saw: (statement, started at, seconds) per statement, cycle ends, errors."""

    statements: list[tuple[str, float, float]] = field(default_factory=list)
    cycles_done_at: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def engine_cycle_statements(schema: str) -> dict[str, sql.Composed]:
    """The five statements of an engine's cycle, schema-qualified as engines write them."""

    def table(name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))

    insert_state = sql.SQL(
        "INSERT INTO {} (id, run_id, step_name, state_data, step_order) VALUES (gen_random_uuid(), %s, %s, %s, %s)"
    ).format(table("workflow_states"))
    return {
        "insert run": sql.SQL(
            "INSERT INTO {} (id, file_path, record_type, status) VALUES (gen_random_uuid(), %s, %s, 'running') "
            "RETURNING id"
        ).format(table("migration_runs")),
        "insert state 1": insert_state,
        "insert state 2": insert_state,
        "insert checkpoint": sql.SQL(
            "INSERT INTO {} (id, run_id, checkpoint_name, state_data) VALUES (gen_random_uuid(), %s, %s, %s)"
        ).format(table("workflow_checkpoints")),
        "finish run": sql.SQL(
            "UPDATE {} SET status = %s, completed_at = now(), updated_at = now(), total_duration = %s, "
            "success = %s, error_message = %s WHERE id = %s"
        ).format(table("migration_runs")),
    }


def run_engine(url: str, schema: str, stop: threading.Event, log: EngineLog, seed: int) -> None:
    """Write cycles until `stop` is set, timing every statement."""
    rng = random.Random(seed)
    statements = engine_cycle_statements(schema)
    # Like an engine in production, whose tables (in public) are on its search_path.
    options = f"-c search_path={schema},public -c statement_timeout=120s"
    with psycopg.connect(url, autocommit=True, application_name="engine", options=options) as conn:

        def timed(label: str, params: tuple[Any, ...]) -> Any:
            started = time.perf_counter()
            try:
                cursor = conn.execute(statements[label], params)
                row = cursor.fetchone() if cursor.description else None
            finally:
                log.statements.append((label, started, time.perf_counter() - started))
            return row

        while not stop.is_set():
            try:
                record_type = rng.choice(RECORD_TYPES)
                row = timed("insert run", (f"data/input/{record_type}_{rng.randint(1, 99999)}.csv", record_type))
                run_id = row[0]
                records = rng.randint(1, 50_000)
                timed("insert state 1", (run_id, "read", f'{{"records": {records}}}', 1))
                timed("insert state 2", (run_id, "transform", f'{{"records": {records}}}', 2))
                timed("insert checkpoint", (run_id, "after_transform", f'{{"offset": {records}}}'))
                failed = rng.random() < 0.1
                timed(
                    "finish run",
                    (
                        "failed" if failed else "completed",
                        rng.uniform(5, 600),
                        not failed,
                        f"Timeout after {rng.randint(30, 300)}s" if failed else None,
                        run_id,
                    ),
                )
                log.cycles_done_at.append(time.perf_counter())
            except psycopg.Error as exc:
                log.errors.append(f"{type(exc).__name__}: {str(exc).strip()}")
                time.sleep(0.05)


@pytest.fixture
def busy_engine_schema(database_url: str) -> Iterator[str]:
    """A fresh schema with the engines' tables and RUNS runs in them; dropped at the end."""
    name = f"install_live_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(name)))
            conn.execute(ENGINE_SCHEMA)
            with conn.transaction():
                for statement in PRELOAD:
                    conn.execute(statement, {"runs": RUNS} if "%(runs)s" in statement else None)
            conn.execute("ANALYZE migration_runs, workflow_states, workflow_checkpoints")
        yield name
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def index_count(url: str, schema: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s", (schema,)).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.slow
@pytest.mark.timeout(600)  # loads 100,000 runs first
def test_install_while_engines_write_never_stalls_them(database_url: str, busy_engine_schema: str) -> None:
    schema = busy_engine_schema
    indexes_before = index_count(database_url, schema)
    stop = threading.Event()
    logs = [EngineLog() for _ in range(ENGINE_THREADS)]
    engines = [
        threading.Thread(target=run_engine, args=(database_url, schema, stop, log, seed), daemon=True)
        for seed, log in enumerate(logs)
    ]
    install_error: BaseException | None = None
    for engine in engines:
        engine.start()
    try:
        time.sleep(1.0)  # the engine at full speed before the install starts
        install_start = time.perf_counter()
        try:
            ensure_schema(database_url, schema)
        except Exception as exc:
            install_error = exc
        install_end = time.perf_counter()
        time.sleep(1.0)
    finally:
        stop.set()
        for engine in engines:
            engine.join(timeout=180)
    assert not any(engine.is_alive() for engine in engines), "an engine statement never returned"

    statements = sorted((s for log in logs for s in log.statements), key=lambda s: s[2], reverse=True)
    errors = [e for log in logs for e in log.errors]
    cycles_before = sum(1 for log in logs for t in log.cycles_done_at if t < install_start)
    cycles_during = sum(1 for log in logs for t in log.cycles_done_at if install_start <= t <= install_end)
    install_seconds = install_end - install_start
    slow = [s for s in statements if s[2] > MAX_STATEMENT_SECONDS]
    worst_label, worst_start, worst_seconds = statements[0]
    summary = (
        f"install took {install_seconds:.1f} s; {len(statements)} engine statements, "
        f"{cycles_before} cycles in the second before the install and {cycles_during} during it; "
        f"slowest statement: {worst_label} {worst_seconds:.2f} s (started {worst_start - install_start:+.2f} s "
        f"from the install's start); {len(slow)} statements over {MAX_STATEMENT_SECONDS:g} s: "
        + ", ".join(f"{label} {seconds:.2f} s" for label, _, seconds in slow[:8])
    )
    print(summary)

    assert install_error is None, f"the install failed: {install_error!r}"
    assert index_count(database_url, schema) > indexes_before, "the install created no index"
    assert not errors, f"{len(errors)} engine statements failed during the install: {errors[:3]}; {summary}"
    assert cycles_before > 0, "the engine wrote nothing before the install (the test itself is broken)"
    assert not slow, f"engine statements waited more than {MAX_STATEMENT_SECONDS:g} s: {summary}"
    assert cycles_during > 0, f"the engine completed no cycle while the install ran: {summary}"
