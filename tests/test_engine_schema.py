"""The service on a database the engines made by hand: it serves it and changes nothing that existed."""

from __future__ import annotations

import traceback
import uuid

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql
from psycopg.conninfo import make_conninfo

from app import create_app
from tests.helpers import insert_run, login_role, make_settings, run_body

API = "/api/v1/migrations"

# Every table, column, constraint and index of a schema, to compare before and after.
CATALOG = """
SELECT 'column', table_name || '.' || column_name,
       data_type || coalesce(character_maximum_length::text, '') || is_nullable || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = %(s)s
UNION ALL
SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = %(s)s::regnamespace
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s
"""


def catalog(database_url: str, schema: str) -> set[tuple[str, str, str]]:
    with psycopg.connect(database_url) as conn:
        return {tuple(r) for r in conn.execute(CATALOG, {"s": schema}).fetchall()}


def test_serves_an_engine_made_database_and_changes_nothing_that_existed(database_url: str, engine_schema: str) -> None:
    before = catalog(database_url, engine_schema)
    run_id = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True, options=f"-c search_path={engine_schema}") as conn:
        insert_run(conn, "failed", id=run_id, file_path="in/a.csv")
    settings = make_settings(database_url, engine_schema)
    with TestClient(app=create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert [r["id"] for r in client.get(API).json()] == [str(run_id)]
        assert client.get(f"{API}/{run_id}").json()["status"] == "failed"
        assert client.get(f"{API}/stats").json()["status_breakdown"] == {"failed": 1}
        created = client.post(API, json=run_body(status="running"))
        assert created.status_code == 201
        # The engines' CHECK allows no 'pending': the database's refusal is a 422 that says so.
        refused = client.post(API, json=run_body(status="pending"))
        assert refused.status_code == 422
        assert "engine_status_check" in refused.json()["detail"]
        assert len(client.get(API).json()) == 2
    after = catalog(database_url, engine_schema)
    assert before <= after, f"changed or dropped: {sorted(before - after)}"
    # the engines' own index on status is reused, not duplicated
    assert not any(
        kind == "index" and d.endswith("USING btree (status)") and name != "engine_runs_by_status"
        for kind, name, d in after
    )
    with psycopg.connect(database_url, options=f"-c search_path={engine_schema}") as conn:
        assert conn.execute("SELECT worker FROM engine_heartbeats").fetchall() == [("worker-1",)]


def test_runs_without_the_right_to_create_anything(database_url: str, engine_schema: str, restricted_role: str) -> None:
    before = catalog(database_url, engine_schema)
    url = make_conninfo(database_url, user=restricted_role)
    settings = make_settings(url, engine_schema)
    with TestClient(app=create_app(settings)) as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["database"]["schema_version"] == 0
        created = client.post(API, json=run_body())
        assert created.status_code == 201
        assert client.get(f"{API}/{created.json()['id']}").status_code == 200
        assert client.get(f"{API}/stats").json()["total_migrations"] == 1
    assert catalog(database_url, engine_schema) == before


def test_a_missing_table_without_the_right_to_create_it_stops_startup(database_url: str) -> None:
    schema = f"empty_{uuid.uuid4().hex[:8]}"
    with login_role(database_url, "mig_none") as role:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                conn.execute(
                    sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(role))
                )
            settings = make_settings(make_conninfo(database_url, user=role), schema)
            # The lifespan's error reaches us wrapped in an ExceptionGroup.
            with pytest.raises(BaseExceptionGroup) as failure, TestClient(app=create_app(settings)):
                pass
            assert "could not be created" in "".join(traceback.format_exception(failure.value))
        finally:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_two_instances_starting_at_once_apply_the_schema_once(database_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from db.schema import ensure_schema, plan

    schema = f"race_{uuid.uuid4().hex[:8]}"
    try:
        with ThreadPoolExecutor(4) as pool:
            reports = list(pool.map(lambda _: ensure_schema(database_url, schema), range(4)))
        # a fresh database gets the baseline and what follows it, once, whoever applies it
        assert sum(len(r.applied) for r in reports) == len(plan(()))
        with psycopg.connect(database_url, options=f"-c search_path={schema}") as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM migration_api_schema_versions ORDER BY 1")]
        assert versions == sorted({v for r in reports for v in r.applied})
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
