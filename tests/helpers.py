"""What tests share besides fixtures (those are in conftest.py): settings and clients, a live
server, rows written as an engine writes them (from tests/factories.py), the engines' own DDL,
and the server-wide changes some tests make (roles, grants), each undone on exit.

Test modules import from here, never from each other."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import psycopg
from litestar.testing import TestClient
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from config import PROJECT_DIR, Settings, load_settings
from tests.factories import (
    RunCreateFactory,
    StoredCheckpointFactory,
    StoredRunFactory,
    StoredStateFactory,
)

API = "/api/v1/migrations"

# --- settings, clients and servers -------------------------------------------------------------


def make_settings(database_url: str, schema: str, **overrides: Any) -> Settings:
    return msgspec.structs.replace(
        load_settings(environ={}, env_file=None),
        database_url=database_url,
        db_schema=schema,
        pool_min_size=1,
        pool_max_size=8,
        # The suite's requests come from one address; tests/test_rate_limits.py sets its own limits.
        rate_limit=overrides.pop("rate_limit", None),
        **overrides,
    )


class FoldedClient(TestClient[Any]):
    """The app's test client, as a reader who comes after the fold interval: tests write as an
    engine does through `db` and then read through the API, and a direct engine write reaches
    statistics, search and the read cache when the service folds the change log (every 0.2 s,
    measured by bench/freshness.py). Each request first has the app's folder fold what is logged
    (as it does after the service's own writes) and waits until nothing is left, so tests state
    what is served, not how fast; the freshness bound itself is tested with polling
    (tests/test_schema_lifecycle.py)."""

    engine_db: psycopg.Connection[Any] | None = None

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self.engine_db is not None:
            folder = getattr(self.app.state, "folder", None)
            portal = getattr(self, "blocking_portal", None)
            if folder is not None and portal is not None:
                portal.call(folder.fold_now)
            wait_folded(self.engine_db)
        return super().request(*args, **kwargs)


def forget_process_state(app: Any) -> None:
    """What a started app remembers of the tables between requests, dropped (after the tables were
    emptied under it): its cached runs and what it knows of the API keys."""
    cache = getattr(app.state, "run_cache", None)
    if cache is not None:
        cache.clear()
    app.state.keyring.forget()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    database_url: str,
    schema: str,
    env: dict[str, str] | None = None,
    argv: list[str] | None = None,
    stderr: Any = None,
    workers: int = 1,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The service under a real uvicorn (or `argv`, which must serve on PORT) with `workers`
    processes, with `env` over the defaults below; yields the process and its base URL once
    /health/live answers."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DB_SCHEMA": schema,
        "PORT": str(port),
        "DB_POOL_MAX": "20",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT": "off",
        **(env or {}),
    }
    if "API_KEYS" not in (env or {}):
        environment.pop("API_KEYS", None)
    command = argv or [
        sys.executable,
        "-m",
        "uvicorn",
        "app:app",
        "--port",
        str(port),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "2",
        *(["--workers", str(workers)] if workers > 1 else []),
    ]
    proc = subprocess.Popen(command, cwd=PROJECT_DIR, env=environment, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.2)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=15)


def run_body(**fields: Any) -> dict[str, Any]:
    """A valid create body from the factory, with `fields` overriding."""
    body = {k: v for k, v in msgspec.to_builtins(RunCreateFactory.build()).items() if v is not None}
    body.update(fields)
    return body


def wait_folded(db: psycopg.Connection[Any], timeout: float = 10.0) -> None:
    """Wait until a running service's change-log folder has folded everything logged so far
    (direct engine writes reach roll-ups and search documents within its interval)."""
    deadline = time.monotonic() + timeout
    while True:
        row = db.execute(
            "SELECT m.rollups_ready AND m.search_ready AND NOT EXISTS (SELECT 1 FROM migration_api_changes) "
            "FROM migration_api_machinery m"
        ).fetchone()
        if row is not None and row[0]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the change log was not folded within {timeout} s")
        time.sleep(0.05)


def eventually(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    """Poll `check` until it holds or `seconds` pass; its last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def pooled_connections(client: TestClient[Any], path: str, tries: int = 5) -> int:
    """How many connections a GET of `path` (which must answer 200) takes from the app's pool: the
    fewest over `tries` requests, since background work (the event hub's reads, the key table's
    lookup) may take one meanwhile, but nothing gives one back to the count."""
    pool: AsyncConnectionPool = client.app.state.pool
    taken = []
    for _ in range(tries):
        before = pool.get_stats().get("requests_num", 0)
        assert client.get(path).status_code == 200
        taken.append(pool.get_stats().get("requests_num", 0) - before)
    return min(taken)


# --- rows, written as an engine writes them -----------------------------------------------------


def _insert(db: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
    db.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(sql.Identifier(c) for c in row),
            sql.SQL(", ").join(sql.Placeholder(c) for c in row),
        ),
        row,
    )


def insert_run(db: psycopg.Connection[Any], status: str = "running", **fields: Any) -> str:
    """Write a run directly, as an engine does (StoredRunFactory with `fields`); returns its id."""
    run = StoredRunFactory.build(status=status, **fields)
    row = msgspec.structs.asdict(run)
    if row["updated_at"] is None:
        row["updated_at"] = row["created_at"]
    _insert(db, "migration_runs", row)
    return str(run.id)


def _insert_step(db: psycopg.Connection[Any], table: str, step: Any) -> str:
    row = msgspec.structs.asdict(step)
    row["state_data"] = Jsonb(row["state_data"])
    row["metadata"] = None if row["metadata"] is None else Jsonb(row["metadata"])
    _insert(db, table, row)
    return str(step.id)


def insert_state(db: psycopg.Connection[Any], run_id: Any, **fields: Any) -> str:
    """Write a workflow state directly (StoredStateFactory with `fields`); returns its id."""
    return _insert_step(db, "workflow_states", StoredStateFactory.build(run_id=run_id, **fields))


def insert_checkpoint(db: psycopg.Connection[Any], run_id: Any, **fields: Any) -> str:
    """Write a checkpoint directly (StoredCheckpointFactory with `fields`); returns its id."""
    return _insert_step(db, "workflow_checkpoints", StoredCheckpointFactory.build(run_id=run_id, **fields))


def count(db: psycopg.Connection[Any], table: str) -> int:
    row = db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])


# --- the engines' own DDL ---------------------------------------------------------------------

# The engine tables as an engine makes them by hand, with an index and a table of its own.
ENGINE_DDL = """
CREATE TABLE migration_runs (id UUID PRIMARY KEY, file_path VARCHAR(500) NOT NULL,
  record_type VARCHAR(100) NOT NULL, status VARCHAR(50) NOT NULL DEFAULT 'running'
  CONSTRAINT engine_status_check CHECK (status IN ('running', 'completed', 'failed')),
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  completed_at TIMESTAMPTZ, total_duration DOUBLE PRECISION, success BOOLEAN, error_message TEXT);
CREATE INDEX engine_runs_by_status ON migration_runs (status);
CREATE TABLE workflow_states (id UUID PRIMARY KEY,
  run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE, step_name VARCHAR(100) NOT NULL,
  state_data JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), step_order INTEGER NOT NULL,
  metadata JSONB);
CREATE TABLE workflow_checkpoints (id UUID PRIMARY KEY,
  run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE,
  checkpoint_name VARCHAR(100) NOT NULL, state_data JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), metadata JSONB);
CREATE TABLE engine_heartbeats (worker TEXT PRIMARY KEY, seen_at TIMESTAMPTZ NOT NULL);
INSERT INTO engine_heartbeats VALUES ('worker-1', now());
"""

# The engines' own schema, the statements of ../shared/perf/schema.sql verbatim; search_path puts
# the tables in this test's schema.
ENGINE_SCHEMA = """
CREATE TABLE migration_runs (id UUID PRIMARY KEY, file_path VARCHAR(500) NOT NULL, record_type VARCHAR(100) NOT NULL, status VARCHAR(50) NOT NULL DEFAULT 'running', created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), completed_at TIMESTAMPTZ, total_duration DOUBLE PRECISION, success BOOLEAN, error_message TEXT);
CREATE INDEX ON migration_runs(status); CREATE INDEX ON migration_runs(created_at); CREATE INDEX ON migration_runs(file_path); CREATE INDEX ON migration_runs(record_type);
CREATE TABLE workflow_states (id UUID PRIMARY KEY, run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE, step_name VARCHAR(100) NOT NULL, state_data JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), step_order INTEGER NOT NULL, metadata JSONB);
CREATE INDEX ON workflow_states(run_id);
CREATE TABLE workflow_checkpoints (id UUID PRIMARY KEY, run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE, checkpoint_name VARCHAR(100) NOT NULL, state_data JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), metadata JSONB);
CREATE INDEX ON workflow_checkpoints(run_id);
"""  # noqa: E501


# --- server-wide changes (roles, grants on the shared `public` schema), each undone on exit -----


@contextlib.contextmanager
def public_create_revoked(database_url: str) -> Iterator[None]:
    """No role may create in `public` (as before PostgreSQL 15, PUBLIC may); restored on exit. One
    test at a time on the server (an advisory lock held throughout), so that two sessions sharing
    it (pytest-xdist workers) neither restore the right under each other nor skip restoring it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (PUBLIC_CREATE_LOCK_KEY,))
        try:
            row = conn.execute("SELECT has_schema_privilege('public', 'public', 'CREATE')").fetchone()
            had_create = bool(row and row[0])
            if had_create:
                conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            try:
                yield
            finally:
                if had_create:
                    # Run by a superuser, the GRANT is recorded as the schema owner's, as the original was.
                    conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (PUBLIC_CREATE_LOCK_KEY,))


# Taken by public_create_revoked (advisory locks are per database: sessions sharing one database).
PUBLIC_CREATE_LOCK_KEY = 7_362_901_600


# In the name of every role this test session makes, so that the session's check (conftest.py,
# _server_state_unchanged) can tell its own roles from those of other sessions on a shared server.
ROLE_TAG = f"t{uuid.uuid4().hex[:6]}"

# Server-wide state a test may change only for its duration: roles and their settings, the rights
# on the shared `public` schema, database- and role-level settings, ALTER SYSTEM's file.
SERVER_STATE: dict[str, str] = {
    "roles": "SELECT rolname, concat_ws(' ', rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, "
    "rolreplication, rolbypassrls, rolconnlimit, rolconfig::text) FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%%'",
    "public schema": "SELECT 'acl', coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'public'",
    "ALTER DATABASE/ROLE SET": "SELECT coalesce(d.datname, '*') || '/' || coalesce(r.rolname, '*'), s.setconfig::text "
    "FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase "
    "LEFT JOIN pg_roles r ON r.oid = s.setrole",
    "ALTER SYSTEM": "SELECT name, coalesce(setting, '') FROM pg_file_settings "
    "WHERE sourcefile LIKE '%%postgresql.auto.conf'",
}


def server_state(database_url: str) -> dict[str, dict[str, str]]:
    """The server-wide state of SERVER_STATE, by kind then name."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return {
            kind: {str(k): str(v) for k, v in conn.execute(query).fetchall()} for kind, query in SERVER_STATE.items()
        }


def drop_role(database_url: str, role: str) -> None:
    """Drop `role` with what it owns and every privilege granted to it in this database, after
    ending its sessions."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            return
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@contextlib.contextmanager
def login_role(database_url: str, prefix: str) -> Iterator[str]:
    """A new role (unique name, LOGIN, no superuser, no other attribute); dropped on exit."""
    role = f"{prefix}_{ROLE_TAG}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER").format(sql.Identifier(role)))
    try:
        yield role
    finally:
        drop_role(database_url, role)


def connect_as(database_url: str, role: str, *, search_path: str | None = None) -> psycopg.Connection[Any]:
    """An autocommit connection whose privileges are `role`'s: a login as the role where the server
    lets it log in without a password (trust), else a superuser's connection after SET ROLE (the
    same privilege checks). `search_path` None keeps the role's own default (ALTER ROLE ... SET)."""
    options = {} if search_path is None else {"options": f"-c search_path={search_path}"}
    try:
        return psycopg.connect(make_conninfo(database_url, user=role, **options), autocommit=True)
    except psycopg.OperationalError:
        conn = psycopg.connect(make_conninfo(database_url, **options), autocommit=True)
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        if search_path is None:
            # SET ROLE does not apply the role's own settings: take its search_path by hand.
            row = conn.execute(
                "SELECT split_part(s, '=', 2) FROM pg_db_role_setting, unnest(setconfig) AS s "
                "WHERE setrole = to_regrole(%s) AND s LIKE 'search_path=%%'",
                (role,),
            ).fetchone()
            if row is not None:
                conn.execute("SELECT set_config('search_path', %s, false)", (row[0],))
        return conn
