"""The run lifecycle: the transition table, the derived outcome fields, cancel, delete, the 409 texts,
and a database whose own CHECK on status allows less than the API does."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

import lifecycle
from app import create_app
from errors import Conflict, DomainError
from tests.helpers import ENGINE_DDL, insert_checkpoint, insert_run, insert_state, make_settings, run_body

API = "/api/v1/migrations"
STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
ALLOWED = {
    ("pending", "running"),
    ("pending", "cancelled"),
    ("running", "paused"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("paused", "running"),
    ("paused", "cancelled"),
    ("paused", "failed"),
}
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


# --- the pure rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_transition_table(current: str, target: str) -> None:
    if current == target or (current, target) in ALLOWED:
        lifecycle.check_transition(current, target)
    else:
        with pytest.raises(Conflict) as refused:
            lifecycle.check_transition(current, target)
        assert f"'{current}'" in refused.value.detail
        assert f"'{target}'" in refused.value.detail
        for allowed in lifecycle.allowed_next(current):
            assert allowed in refused.value.detail


def test_refusal_texts_name_current_status_and_allowed_next() -> None:
    assert lifecycle.refusal_detail("pending", "completed") == (
        "cannot change status from 'pending' to 'completed'; "
        "from 'pending' the allowed next statuses are: running, cancelled"
    )
    assert lifecycle.refusal_detail("paused", "completed") == (
        "cannot change status from 'paused' to 'completed'; "
        "from 'paused' the allowed next statuses are: running, cancelled, failed"
    )
    assert lifecycle.refusal_detail("failed", "running") == (
        "cannot change status from 'failed' to 'running': 'failed' is final, no further status change is allowed"
    )


def test_a_status_the_table_does_not_know_may_move_to_any_api_status() -> None:
    for target in STATUSES:
        lifecycle.check_transition("queued_by_engine", target)
    planned = lifecycle.plan_update("archived", T0, {"status": "running"}, T0)
    assert planned == {"status": "running", "completed_at": None, "total_duration": None, "success": None}


@pytest.mark.parametrize(("status", "success"), [("completed", True), ("failed", False), ("cancelled", False)])
def test_entering_a_final_status_derives_the_outcome(status: str, success: bool) -> None:
    now = T0 + timedelta(seconds=95.5)
    planned = lifecycle.plan_update("running", T0, {"status": status}, now)
    assert planned == {"status": status, "completed_at": now, "total_duration": 95.5, "success": success}


def test_given_outcome_values_win() -> None:
    given_end = T0 + timedelta(seconds=10)
    planned = lifecycle.plan_update("running", T0, {"status": "failed", "completed_at": given_end}, T0 + timedelta(1))
    assert planned["completed_at"] == given_end
    assert planned["total_duration"] == 10.0  # from created_at to the given end
    planned = lifecycle.plan_update("running", T0, {"status": "completed", "total_duration": 3.0, "success": False}, T0)
    assert (planned["total_duration"], planned["success"]) == (3.0, False)
    # an end before the start (clock skew between engines) never makes a negative duration
    early = lifecycle.plan_update("running", T0, {"status": "completed", "completed_at": T0 - timedelta(1)}, T0)
    assert early["total_duration"] == 0.0


def test_outcome_fields_are_refused_on_an_unfinished_run_and_cannot_be_cleared_on_a_finished_one() -> None:
    with pytest.raises(DomainError, match="success can only be set on a finished run"):
        lifecycle.plan_update("running", T0, {"success": True}, T0)
    with pytest.raises(DomainError, match="completed_at"):
        lifecycle.plan_create({"status": "running", "completed_at": T0}, T0)
    with pytest.raises(DomainError, match="cannot be cleared"):
        lifecycle.plan_update("completed", T0, {"completed_at": None}, T0)
    # correcting a finished run's outcome is fine
    assert lifecycle.plan_update("completed", T0, {"total_duration": 4.0}, T0) == {"total_duration": 4.0}


def test_plan_create_in_a_final_status() -> None:
    planned = lifecycle.plan_create({"status": "completed", "created_at": None}, T0)
    assert planned["created_at"] == T0
    assert (planned["completed_at"], planned["total_duration"], planned["success"]) == (T0, 0.0, True)
    assert lifecycle.plan_create({"status": "pending"}, T0) == {"status": "pending"}


# --- over HTTP ------------------------------------------------------------------------------------


def stored(db: psycopg.Connection[Any], run_id: str) -> tuple[Any, ...]:
    row = db.execute(
        "SELECT status, completed_at, total_duration, success, error_message, updated_at "
        "FROM migration_runs WHERE id = %s",
        (run_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_patch_status_follows_the_table(
    client: TestClient[Any], db: psycopg.Connection[Any], current: str, target: str
) -> None:
    final = current in lifecycle.TERMINAL
    run_id = insert_run(db, current, completed_at=datetime.now(UTC) if final else None, success=final or None)
    before = stored(db, run_id)
    response = client.patch(f"{API}/{run_id}", json={"status": target})
    if current == target or (current, target) in ALLOWED:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == target
        assert stored(db, run_id)[0] == target
    else:
        assert response.status_code == 409
        detail = response.json()["detail"]
        assert detail == lifecycle.refusal_detail(current, target)
        assert stored(db, run_id) == before


@pytest.mark.parametrize(("status", "success"), [("completed", True), ("failed", False), ("cancelled", False)])
def test_patch_into_a_final_status_sets_the_outcome(
    client: TestClient[Any], db: psycopg.Connection[Any], status: str, success: bool
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=90)
    run_id = insert_run(db, "running", created_at=started)
    run = client.patch(f"{API}/{run_id}", json={"status": status}).json()
    completed_at = datetime.fromisoformat(run["completed_at"])
    assert run["success"] is success
    assert completed_at == datetime.fromisoformat(run["updated_at"])  # the same transaction clock
    assert run["total_duration"] == pytest.approx((completed_at - started).total_seconds(), abs=1e-3)
    assert 89 < run["total_duration"] < 120


def test_patch_into_a_final_status_keeps_given_values(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    end = "2030-01-01T00:00:00Z"
    run = client.patch(
        f"{API}/{run_id}", json={"status": "completed", "completed_at": end, "total_duration": 7.5, "success": False}
    ).json()
    assert (run["completed_at"], run["total_duration"], run["success"]) == (end, 7.5, False)


def test_inconsistent_outcome_is_400_and_changes_nothing(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    before = stored(db, run_id)
    response = client.patch(f"{API}/{run_id}", json={"success": True})
    assert response.status_code == 400
    assert "finished run" in response.json()["detail"]
    assert stored(db, run_id) == before
    created = client.post(API, json=run_body(status="running", completed_at="2030-01-01T00:00:00Z"))
    assert created.status_code == 400
    assert db.execute("SELECT count(*) FROM migration_runs").fetchone() == (1,)


def test_create_in_a_final_status_derives_the_outcome(client: TestClient[Any]) -> None:
    created_at = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    run = client.post(API, json=run_body(status="failed", created_at=created_at, error_message="boom")).json()
    assert run["success"] is False
    assert run["completed_at"] is not None
    assert 119 < run["total_duration"] < 180
    done = client.post(API, json=run_body(status="completed")).json()
    assert done["success"] is True
    assert done["total_duration"] == pytest.approx(0, abs=1)
    plain = client.post(API, json=run_body(status="pending")).json()
    assert (plain["completed_at"], plain["total_duration"], plain["success"]) == (None, None, None)


def test_cancel_with_a_reason(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "paused")
    response = client.post(f"{API}/{run_id}/cancel", json={"reason": "operator stopped it"})
    assert response.status_code == 200
    run = response.json()
    assert (run["status"], run["error_message"], run["success"]) == ("cancelled", "operator stopped it", False)
    assert run["completed_at"] is not None
    assert response.headers["etag"]
    # cancelling again is a no-op that changes nothing
    before = stored(db, run_id)
    again = client.post(f"{API}/{run_id}/cancel", json={"reason": "other"})
    assert again.status_code == 200
    assert stored(db, run_id) == before


def test_cancel_without_a_body_and_refusals(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    pending = insert_run(db, "pending")
    assert client.post(f"{API}/{pending}/cancel").json()["status"] == "cancelled"
    done = insert_run(db, "completed", completed_at=datetime.now(UTC), success=True)
    before = stored(db, done)
    refused = client.post(f"{API}/{done}/cancel")
    assert refused.status_code == 409
    assert refused.json()["detail"] == lifecycle.refusal_detail("completed", "cancelled")
    assert stored(db, done) == before
    assert client.post(f"{API}/{uuid.uuid4()}/cancel").status_code == 404
    assert client.post(f"{API}/{pending}/cancel", json={"reason": "x\u0000"}).status_code == 400
    assert client.post(f"{API}/{pending}/cancel", json={"why": "x"}).status_code == 400


@pytest.mark.parametrize("status", ["running", "paused"])
def test_deleting_an_active_run_needs_force(client: TestClient[Any], db: psycopg.Connection[Any], status: str) -> None:
    run_id = insert_run(db, status)
    insert_state(db, run_id, step_name="s")
    insert_checkpoint(db, run_id, checkpoint_name="c")
    refused = client.delete(f"{API}/{run_id}")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert f"'{status}'" in detail
    assert "force=true" in detail
    assert db.execute("SELECT count(*) FROM workflow_states").fetchone() == (1,)
    assert client.delete(f"{API}/{run_id}", params={"force": "true"}).status_code == 204
    for table in ("migration_runs", "workflow_states", "workflow_checkpoints"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


@pytest.mark.parametrize("status", ["pending", "completed", "failed", "cancelled", "engine_specific"])
def test_deleting_an_inactive_run_needs_no_force(
    client: TestClient[Any], db: psycopg.Connection[Any], status: str
) -> None:
    run_id = insert_run(db, status)
    assert client.delete(f"{API}/{run_id}").status_code == 204
    assert db.execute("SELECT count(*) FROM migration_runs").fetchone() == (0,)


# --- a database in the engines' own shape, with a CHECK on status --------------------------------


@pytest.fixture
def engine_client(database_url: str) -> Iterator[tuple[TestClient[Any], psycopg.Connection[Any]]]:
    name = f"engine_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(name)))
        conn.execute(ENGINE_DDL)
    try:
        with (
            psycopg.connect(database_url, autocommit=True, options=f"-c search_path={name}") as db,
            TestClient(app=create_app(make_settings(database_url, name))) as client,
        ):
            yield client, db
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def test_a_status_the_engines_check_refuses_is_422_naming_the_constraint(
    engine_client: tuple[TestClient[Any], psycopg.Connection[Any]],
) -> None:
    client, db = engine_client
    run = client.post(API, json=run_body()).json()  # 'running' is allowed by engine_status_check
    before = stored(db, run["id"])
    for response in (
        client.patch(f"{API}/{run['id']}", json={"status": "paused"}),
        client.post(f"{API}/{run['id']}/cancel", json={"reason": "stop"}),
    ):
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert "engine_status_check" in detail
        assert "CHECK constraint" in detail
        assert stored(db, run["id"]) == before
    # what the engines' CHECK allows goes through, with its outcome
    done = client.patch(f"{API}/{run['id']}", json={"status": "completed"})
    assert done.status_code == 200
    assert done.json()["success"] is True
    # the idempotency table exists here too (the service created it), so keyed creates work
    body = run_body()
    keyed = [client.post(API, json=body, headers={"Idempotency-Key": "e-1"}) for _ in range(2)]
    assert [r.status_code for r in keyed] == [201, 201]
    assert keyed[0].json()["id"] == keyed[1].json()["id"]


# --- the OpenAPI document ---------------------------------------------------------------------------

# Every operation may also answer 401 and 403 (API keys and scopes) and 429 (rate limit).
ACCESS_CODES = {401, 403, 429}
ENGINE_OPERATIONS = {
    # operation id: (header/query parameters, response codes besides ACCESS_CODES, success's headers)
    "CreateMigrationRun": ({"Idempotency-Key"}, {201, 400, 409, 413, 422, 503}, {"Location", "ETag"}),
    "GetMigrationRun": ({"If-None-Match"}, {200, 304, 400, 404, 503}, {"ETag"}),
    "UpdateMigrationRun": ({"If-Match"}, {200, 400, 404, 409, 412, 413, 422, 503}, {"ETag"}),
    "CancelMigrationRun": ({"If-Match"}, {200, 400, 404, 409, 412, 422, 503}, {"ETag"}),
    "DeleteMigrationRun": ({"If-Match", "force"}, {204, 400, 404, 409, 412, 503}, set()),
    "AppendRunState": ({"Idempotency-Key", "late"}, {201, 400, 404, 409, 413, 422, 503}, {"Location"}),
    "AppendRunStates": ({"Idempotency-Key", "late"}, {201, 400, 404, 409, 413, 422, 503}, {"Location"}),
    "AppendRunCheckpoint": ({"Idempotency-Key", "late"}, {201, 400, 404, 409, 413, 422, 503}, {"Location"}),
    "AppendRunCheckpoints": ({"Idempotency-Key", "late"}, {201, 400, 404, 409, 413, 422, 503}, {"Location"}),
    "GetLatestRunState": (set(), {200, 400, 404, 503}, set()),
    "GetRunState": (set(), {200, 400, 404, 503}, set()),
    "GetLatestRunCheckpoint": ({"name"}, {200, 400, 404, 503}, set()),
    "GetRunCheckpoint": (set(), {200, 400, 404, 503}, set()),
}


def test_openapi_documents_every_engine_operation_with_its_errors_and_headers(client: TestClient[Any]) -> None:
    document = client.get("/openapi.json").json()
    operations = {op["operationId"]: op for item in document["paths"].values() for op in item.values()}
    for operation_id, (parameters, codes, headers) in ENGINE_OPERATIONS.items():
        op = operations[operation_id]
        named = {p["name"] for p in op.get("parameters", []) if p["in"] in ("header", "query")}
        assert parameters <= named, operation_id
        assert {int(code) for code in op["responses"]} == codes | ACCESS_CODES, operation_id
        success = op["responses"][str(min(codes))]
        assert headers <= set(success.get("headers", {})), operation_id
        assert op.get("description") or op.get("summary")
