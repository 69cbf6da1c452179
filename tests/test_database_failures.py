"""When the database stops answering: 503s with a `detail` (never an empty list), logged with the
request's method and path, and /health answers within its timeout instead of hanging."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql
from psycopg.conninfo import make_conninfo

from app import create_app
from config import Settings
from tests.helpers import login_role, make_settings, run_body

API = "/api/v1/migrations"


@pytest.fixture
def app_role(database_url: str, settings: Settings, _schema_ready: None) -> Iterator[str]:
    """A login of its own for the app, so that the test can cut just this app off the database."""
    with login_role(database_url, "mig_cut") as role, psycopg.connect(database_url, autocommit=True) as conn:
        ident, schema = sql.Identifier(role), sql.Identifier(settings.db_schema)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(schema, ident)
        )
        yield role


def cut_off(database_url: str, role: str) -> None:
    """The database refuses the role from now on and drops its open connections."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))


@pytest.mark.usefixtures("db")  # empty tables to start from, whatever earlier tests left
def test_a_lost_database_is_503_with_detail_never_an_empty_list(
    database_url: str, settings: Settings, app_role: str, db: psycopg.Connection[Any]
) -> None:
    # `db` empties the tables first: the one run below must be the only one listed.
    app_settings = make_settings(
        make_conninfo(database_url, user=app_role),
        settings.db_schema,
        pool_timeout=1.0,
        health_timeout=1.0,
        migrate_on_start=False,
    )
    with TestClient(app=create_app(app_settings)) as client:
        assert client.post(API, json=run_body()).status_code == 201
        assert len(client.get(API).json()) == 1
        cut_off(database_url, app_role)
        # Attached after the app configured logging (which replaces the root logger's handlers).
        logged: list[str] = []
        collector = logging.Handler(logging.ERROR)
        collector.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("migration_api").addHandler(collector)

        started = time.monotonic()
        health = client.get("/health")
        assert health.status_code == 503
        assert "database" in health.json()["detail"]
        assert time.monotonic() - started < 3.0
        head = client.head("/health")
        assert (head.status_code, head.content) == (503, b"")

        for path in (API, f"{API}/search?q=claim", f"{API}/stats", f"{API}/{uuid.uuid4()}"):
            response = client.get(path)
            assert response.status_code == 503, (path, response.text)
            body = response.json()
            assert "database" in body["detail"]
            assert "Traceback" not in response.text
        refused = client.post(API, json=run_body())
        assert refused.status_code == 503
        logging.getLogger("migration_api").removeHandler(collector)
    assert any(m.startswith(f"GET {API} ->") for m in logged), logged
    assert any(m.startswith(f"POST {API} ->") for m in logged), logged
