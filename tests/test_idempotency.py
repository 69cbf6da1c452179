"""Idempotency-Key: a retried POST returns the first response and creates nothing more."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql
from psycopg.conninfo import make_conninfo

from app import create_app
from config import Settings
from tests.helpers import count, insert_run, make_settings, run_body

API = "/api/v1/migrations"


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_a_retried_create_returns_the_first_response(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    body = run_body()
    first = client.post(API, json=body, headers=keyed("create-1"))
    assert first.status_code == 201
    assert "idempotency-replayed" not in first.headers
    for _ in range(3):
        again = client.post(API, json=body, headers=keyed("create-1"))
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["idempotency-replayed"] == "true"
    assert count(db, "migration_runs") == 1
    # the same body sent with other key order and spacing is the same request
    reordered = b"{" + b", ".join(msgspec.json.encode({k: v}, order="sorted")[1:-1] for k, v in reversed(body.items()))
    same = client.post(API, content=reordered + b"}", headers={**keyed("create-1"), "content-type": "application/json"})
    assert same.json()["id"] == first.json()["id"]
    # without a key, or with another one, a new run is made
    assert client.post(API, json=body).json()["id"] != first.json()["id"]
    assert client.post(API, json=body, headers=keyed("create-2")).json()["id"] != first.json()["id"]
    assert count(db, "migration_runs") == 3


def test_the_same_key_with_another_body_is_422(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    assert client.post(API, json=run_body(file_path="a.csv"), headers=keyed("k")).status_code == 201
    other = client.post(API, json=run_body(file_path="b.csv"), headers=keyed("k"))
    assert other.status_code == 422
    assert "different request body" in other.json()["detail"]
    assert count(db, "migration_runs") == 1


def test_keys_are_scoped_to_method_and_path(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    body = {"step_name": "s", "state_data": {"n": 1}}
    states = [client.post(f"{API}/{run_id}/states", json=body, headers=keyed("step-1")) for _ in range(3)]
    assert {r.json()["id"] for r in states} == {states[0].json()["id"]}
    assert [r.status_code for r in states] == [201, 201, 201]
    checkpoint = client.post(
        f"{API}/{run_id}/checkpoints", json={"checkpoint_name": "c", "state_data": {}}, headers=keyed("step-1")
    )
    assert checkpoint.status_code == 201
    batch = [client.post(f"{API}/{run_id}/states/batch", json=[body, body], headers=keyed("b")) for _ in range(2)]
    assert batch[0].json() == batch[1].json()
    assert (count(db, "workflow_states"), count(db, "workflow_checkpoints")) == (3, 1)


def test_a_failed_request_is_not_remembered(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "completed")
    body = {"step_name": "s", "state_data": {}}
    assert client.post(f"{API}/{run_id}/states", json=body, headers=keyed("late")).status_code == 409
    db.execute("UPDATE migration_runs SET status = 'running' WHERE id = %s", (run_id,))
    assert client.post(f"{API}/{run_id}/states", json=body, headers=keyed("late")).status_code == 201


def test_keys_survive_a_restart(settings: Settings, db: psycopg.Connection[Any]) -> None:
    body = run_body()
    with TestClient(app=create_app(settings)) as first_instance:
        first = first_instance.post(API, json=body, headers=keyed("restart"))
    with TestClient(app=create_app(settings)) as second_instance:
        again = second_instance.post(API, json=body, headers=keyed("restart"))
    assert again.json()["id"] == first.json()["id"]
    assert count(db, "migration_runs") == 1


def test_expired_keys_are_ignored(settings: Settings, db: psycopg.Connection[Any]) -> None:
    body = run_body()
    with TestClient(app=create_app(msgspec.structs.replace(settings, idempotency_ttl_hours=0.0))) as client:
        ids = {client.post(API, json=body, headers=keyed("short-lived")).json()["id"] for _ in range(2)}
    assert len(ids) == 2
    assert count(db, "migration_runs") == 2


def test_expired_keys_are_cleaned_up(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    db.execute(
        "INSERT INTO migration_api_idempotency_keys (key, scope, request_hash, status_code, response_body, expires_at) "
        "SELECT 'old-' || i, 'POST /x', 'h', 201, '', now() - interval '1 second' FROM generate_series(1, 5) i"
    )
    client.post(API, json=run_body(), headers=keyed("fresh"))
    assert db.execute("SELECT key FROM migration_api_idempotency_keys").fetchall() == [("fresh",)]


def test_the_default_ttl_is_24_hours(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    client.post(API, json=run_body(), headers=keyed("day"))
    row = db.execute("SELECT expires_at - created_at FROM migration_api_idempotency_keys").fetchone()
    assert row is not None
    assert row[0].total_seconds() == 24 * 3600


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "tab\tkey"])
def test_a_bad_key_is_400(client: TestClient[Any], db: psycopg.Connection[Any], key: str) -> None:
    response = client.post(API, json=run_body(), headers=keyed(key))
    assert response.status_code == 400
    assert count(db, "migration_runs") == 0


@pytest.fixture
def client_without_key_table(
    database_url: str,
    engine_schema: str,
    restricted_role: str,
) -> Iterator[TestClient[Any]]:
    """The service as a user that may not create the idempotency table (so it does not exist)."""
    settings = make_settings(make_conninfo(database_url, user=restricted_role), engine_schema)
    with TestClient(app=create_app(settings)) as client:
        yield client


def test_without_the_key_table_a_keyed_request_is_503(
    client_without_key_table: TestClient[Any],
    database_url: str,
    engine_schema: str,
) -> None:
    client = client_without_key_table
    refused = client.post(API, json=run_body(), headers=keyed("k"))
    assert refused.status_code == 503
    assert "migration_api_idempotency_keys" in refused.json()["detail"]
    assert "without the header" in refused.json()["detail"]
    with psycopg.connect(database_url) as conn:
        runs = conn.execute(sql.SQL("SELECT count(*) FROM {}.migration_runs").format(sql.Identifier(engine_schema)))
        assert runs.fetchone() == (0,)
    assert client.post(API, json=run_body()).status_code == 201


def test_replayed_ids_match_a_given_id(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    body = run_body(id=str(uuid.uuid4()))
    responses = [client.post(API, json=body, headers=keyed("given")) for _ in range(2)]
    assert [r.status_code for r in responses] == [201, 201]  # not 409: the retry is not a second insert
    assert count(db, "migration_runs") == 1
