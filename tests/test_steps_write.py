"""Appending step states and checkpoints, single and batch, and reading them back one by one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient

from app import create_app
from config import Settings
from tests.helpers import count, insert_run, insert_state

API = "/api/v1/migrations"


def state(step_name: str = "file_reading", **fields: Any) -> dict[str, Any]:
    return {"step_name": step_name, "state_data": {"records": 5, "batch": [1, 2]}, **fields}


def test_append_a_state_numbers_it_and_gives_its_location(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    first = client.post(f"{API}/{run_id}/states", json=state("initializing", metadata={"host": "n1"}))
    assert first.status_code == 201
    body = first.json()
    assert body["step_order"] == 1
    assert body["state_data"] == {"records": 5, "batch": [1, 2]}
    assert body["metadata"] == {"host": "n1"}
    assert first.headers["location"] == f"{API}/{run_id}/states/{body['id']}"
    assert client.get(first.headers["location"]).json() == body
    # an engine writes step 7 directly; the API numbers after it
    insert_state(db, run_id, step_name="x", step_order=7)
    assert client.post(f"{API}/{run_id}/states", json=state()).json()["step_order"] == 8
    assert client.post(f"{API}/{run_id}/states", json=state(step_order=3)).json()["step_order"] == 3
    latest = client.get(f"{API}/{run_id}/states/latest").json()
    assert (latest["step_name"], latest["step_order"]) == ("file_reading", 8)


def test_a_taken_step_order_is_409_and_stores_nothing(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    assert client.post(f"{API}/{run_id}/states", json=state(step_order=2)).status_code == 201
    taken = client.post(f"{API}/{run_id}/states", json=state(step_order=2))
    assert taken.status_code == 409
    assert "step_order 2 is already taken" in taken.json()["detail"]
    assert count(db, "workflow_states") == 1


def test_a_batch_is_all_or_nothing(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    client.post(f"{API}/{run_id}/states", json=state(step_order=5))
    refused = client.post(f"{API}/{run_id}/states/batch", json=[state("a"), state("b", step_order=5), state("c")])
    assert refused.status_code == 409
    assert count(db, "workflow_states") == 1
    twice = client.post(f"{API}/{run_id}/states/batch", json=[state("a", step_order=9), state("b", step_order=9)])
    assert twice.status_code == 409
    assert "more than once" in twice.json()["detail"]
    nul = client.post(f"{API}/{run_id}/states/batch", json=[state("a"), {"step_name": "b", "state_data": {"k": "\0"}}])
    assert nul.status_code == 400
    assert count(db, "workflow_states") == 1
    # absent orders are numbered after the highest stored or sent one, in the order sent
    done = client.post(f"{API}/{run_id}/states/batch", json=[state("a"), state("b", step_order=10), state("c")])
    assert done.status_code == 201
    assert done.headers["location"] == f"{API}/{run_id}/states"
    assert [(s["step_name"], s["step_order"]) for s in done.json()] == [("a", 11), ("b", 10), ("c", 12)]
    assert count(db, "workflow_states") == 4


def test_batch_bounds(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    assert client.post(f"{API}/{run_id}/states/batch", json=[]).status_code == 400
    too_many = [{"checkpoint_name": f"c{i}", "state_data": {}} for i in range(1001)]
    assert client.post(f"{API}/{run_id}/checkpoints/batch", json=too_many).status_code == 400
    assert client.post(f"{API}/{run_id}/checkpoints/batch", json=too_many[:1000]).status_code == 201
    assert count(db, "workflow_checkpoints") == 1000


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_appending_to_a_finished_run_needs_late(
    client: TestClient[Any], db: psycopg.Connection[Any], status: str
) -> None:
    run_id = insert_run(db, status, completed_at=datetime.now(UTC))
    checkpoint = {"checkpoint_name": "final", "state_data": {}}
    for path, body in (("states", state()), ("checkpoints", checkpoint), ("states/batch", [state()])):
        refused = client.post(f"{API}/{run_id}/{path}", json=body)
        assert refused.status_code == 409
        detail = refused.json()["detail"]
        assert f"'{status}'" in detail
        assert "late=true" in detail
    assert count(db, "workflow_states") + count(db, "workflow_checkpoints") == 0
    assert client.post(f"{API}/{run_id}/states", json=state(), params={"late": "true"}).status_code == 201
    assert client.post(f"{API}/{run_id}/checkpoints", json=checkpoint, params={"late": "true"}).status_code == 201


def test_checkpoints_by_id_and_by_name(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    assert client.get(f"{API}/{run_id}/checkpoints/latest").json()["detail"].endswith("has no checkpoints")
    first = client.post(f"{API}/{run_id}/checkpoints", json={"checkpoint_name": "batch", "state_data": {"n": 1}})
    assert first.status_code == 201
    assert first.headers["location"] == f"{API}/{run_id}/checkpoints/{first.json()['id']}"
    batch = client.post(
        f"{API}/{run_id}/checkpoints/batch",
        json=[
            {"checkpoint_name": "batch", "state_data": {"n": 2}, "metadata": {"worker": "w1"}},
            {"checkpoint_name": "other", "state_data": {"n": 3}},
        ],
    )
    assert batch.status_code == 201
    assert client.get(f"{API}/{run_id}/checkpoints/latest", params={"name": "batch"}).json()["state_data"] == {"n": 2}
    assert client.get(f"{API}/{run_id}/checkpoints/latest").json()["state_data"] == {"n": 3}
    assert client.get(first.headers["location"]).json() == first.json()
    missing = client.get(f"{API}/{run_id}/checkpoints/latest", params={"name": "nope"})
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]


def test_reads_of_single_items(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    other = insert_run(db, "running")
    state_id = client.post(f"{API}/{run_id}/states", json=state()).json()["id"]
    assert client.get(f"{API}/{other}/states/{state_id}").status_code == 404
    assert client.get(f"{API}/{run_id}/states/{uuid.uuid4()}").status_code == 404
    bad = client.get(f"{API}/{run_id}/states/not-a-uuid")
    assert bad.status_code == 400
    assert "state_id" in bad.json()["detail"]
    assert client.get(f"{API}/{run_id}/checkpoints/12").status_code == 400
    assert client.get(f"{API}/{other}/states/latest").json()["detail"].endswith("has no step states")
    for path in ("states/latest", "checkpoints/latest"):
        unknown = client.get(f"{API}/{uuid.uuid4()}/{path}")
        assert unknown.status_code == 404
        assert "not found" in unknown.json()["detail"]
    assert client.post(f"{API}/{uuid.uuid4()}/states", json=state()).status_code == 404
    assert client.post(f"{API}/{uuid.uuid4()}/checkpoints/batch", json=[state()]).status_code == 400


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("states", {"step_name": "s" * 101, "state_data": {}}, "step_name"),
        ("states", {"step_name": "", "state_data": {}}, "step_name"),
        ("states", {"step_name": "a\0b", "state_data": {}}, "step_name"),
        ("states", {"step_name": "s", "state_data": [1, 2]}, "state_data"),
        ("states", {"step_name": "s", "state_data": "text"}, "state_data"),
        ("states", {"step_name": "s", "state_data": {}, "metadata": [1]}, "metadata"),
        ("states", {"step_name": "s"}, "state_data"),
        ("states", {"step_name": "s", "state_data": {}, "step_order": -1}, "step_order"),
        ("states", {"step_name": "s", "state_data": {}, "step_order": 2**31}, "step_order"),
        ("states", {"step_name": "s", "state_data": {}, "colour": 1}, "colour"),
        ("states", {"step_name": "s", "state_data": {"a": {"b": ["x\0"]}}}, "state_data.a.b[0] contains a NUL"),
        ("states", {"step_name": "s", "state_data": {"k\0": 1}}, "state_data"),
        ("states", {"step_name": "s", "state_data": {}, "metadata": {"m": "\0"}}, "metadata.m contains a NUL"),
        ("checkpoints", {"checkpoint_name": "c" * 101, "state_data": {}}, "checkpoint_name"),
        ("checkpoints", {"checkpoint_name": "c", "state_data": {"deep": "\0"}}, "state_data.deep"),
        ("checkpoints", {"checkpoint_name": "c", "state_data": None}, "state_data"),
    ],
)
def test_bad_bodies_are_400_and_store_nothing(
    client: TestClient[Any], db: psycopg.Connection[Any], path: str, body: dict[str, Any], needle: str
) -> None:
    run_id = insert_run(db, "running")
    response = client.post(f"{API}/{run_id}/{path}", json=body)
    assert response.status_code == 400
    assert needle in response.text
    assert count(db, "workflow_states") + count(db, "workflow_checkpoints") == 0


def test_malformed_and_too_deep_json_is_400(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    headers = {"content-type": "application/json"}
    for raw in (b'{"step_name": "s", "state_data": {', b'{"step_name": "s", "state_data": {"a": "\\ud800"}}', b""):
        assert client.post(f"{API}/{run_id}/states", content=raw, headers=headers).status_code == 400
    deep: Any = {}
    for _ in range(150):
        deep = {"d": deep}
    response = client.post(f"{API}/{run_id}/states", json={"step_name": "s", "state_data": deep})
    assert response.status_code == 400
    assert "nested deeper" in response.text
    assert count(db, "workflow_states") == 0


@pytest.fixture
def small_client(settings: Settings, db: psycopg.Connection[Any]) -> Iterator[TestClient[Any]]:
    """The app with MAX_STATE_BYTES at 2 KiB."""
    with TestClient(app=create_app(msgspec.structs.replace(settings, max_state_bytes=2048))) as test_client:
        yield test_client


def test_a_state_over_max_state_bytes_is_413(small_client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    blob = {"blob": "x" * 3000}
    for path, body in (
        ("states", {"step_name": "s", "state_data": blob}),
        ("states/batch", [state(), {"step_name": "s", "state_data": {}, "metadata": blob}]),
        ("checkpoints", {"checkpoint_name": "c", "state_data": blob}),
        ("checkpoints/batch", [{"checkpoint_name": "c", "state_data": blob}]),
    ):
        response = small_client.post(f"{API}/{run_id}/{path}", json=body)
        assert response.status_code == 413, path
        assert "MAX_STATE_BYTES" in response.json()["detail"]
    assert count(db, "workflow_states") + count(db, "workflow_checkpoints") == 0
    assert small_client.post(f"{API}/{run_id}/states", json=state()).status_code == 201
