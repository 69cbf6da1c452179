"""The seed API over HTTP: every endpoint, its parameters and its errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from tests.helpers import insert_checkpoint, insert_run, insert_state, run_body

API = "/api/v1/migrations"
RUN_FIELDS = {
    "id",
    "file_path",
    "record_type",
    "status",
    "created_at",
    "updated_at",
    "completed_at",
    "total_duration",
    "success",
    "error_message",
}


def test_root_lists_docs_and_endpoints(client: TestClient[Any]) -> None:
    body = client.get("/").json()
    assert body["name"] == "Migration-Accelerators API"
    assert body["links"]["docs"] == "/docs"
    assert body["links"]["migrations"] == API


def test_health_reports_the_database(client: TestClient[Any]) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["database"]["schema_version"] >= 1


def test_head_health_answers_like_get_without_a_body(client: TestClient[Any]) -> None:
    response = client.head("/health")
    assert response.status_code == 200
    assert response.content == b""
    assert client.get("/health").status_code == 200


def test_create_returns_201_location_and_the_stored_run(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    body = run_body()
    response = client.post(API, json=body)
    assert response.status_code == 201
    run = response.json()
    assert set(run) == RUN_FIELDS
    assert response.headers["location"] == f"{API}/{run['id']}"
    assert run["status"] == "running"
    assert run["file_path"] == body["file_path"]
    assert run["created_at"].endswith("Z")
    stored = db.execute(
        "SELECT file_path, record_type, status FROM migration_runs WHERE id = %s", (run["id"],)
    ).fetchone()
    assert stored == (body["file_path"], body["record_type"], "running")
    assert client.get(response.headers["location"]).json() == run


def test_create_with_given_id_and_duplicate_is_409(client: TestClient[Any]) -> None:
    run_id = str(uuid.uuid4())
    first = client.post(API, json=run_body(id=run_id))
    assert first.status_code == 201
    assert first.json()["id"] == run_id
    again = client.post(API, json=run_body(id=run_id))
    assert again.status_code == 409
    assert "detail" in again.json()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"record_type": "claim"}, "file_path"),
        ({"file_path": "x.csv", "record_type": "claim", "colour": "red"}, "colour"),
        ({"file_path": "x" * 501, "record_type": "claim"}, "file_path"),
        ({"file_path": "x.csv", "record_type": "r" * 101}, "record_type"),
        ({"file_path": "x.csv", "record_type": "claim", "status": "exploded"}, "status"),
        ({"file_path": "x\u0000.csv", "record_type": "claim"}, "file_path"),
    ],
)
def test_bad_create_bodies_are_400_and_store_nothing(
    client: TestClient[Any], db: psycopg.Connection[Any], body: dict[str, Any], needle: str
) -> None:
    response = client.post(API, json=body)
    assert response.status_code == 400
    assert needle in response.text
    assert "detail" in response.json()
    assert db.execute("SELECT count(*) FROM migration_runs").fetchone() == (0,)


def test_malformed_json_is_400(client: TestClient[Any]) -> None:
    response = client.post(API, content=b'{"file_path": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "detail" in response.json()


def test_get_run_has_all_ten_fields_with_offsets(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, status="completed", completed_at=datetime.now(UTC), total_duration=12.5, success=True)
    response = client.get(f"{API}/{run_id}")
    assert response.status_code == 200
    run = response.json()
    assert set(run) == RUN_FIELDS
    assert run["total_duration"] == 12.5
    assert run["success"] is True
    for key in ("created_at", "updated_at", "completed_at"):
        assert datetime.fromisoformat(run[key]).tzinfo is not None


def test_unknown_run_is_404_and_bad_id_is_400(client: TestClient[Any]) -> None:
    missing = client.get(f"{API}/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]
    bad = client.get(f"{API}/not-a-uuid")
    assert bad.status_code == 400
    assert "run_id" in bad.json()["detail"]
    for suffix in ("/states", "/checkpoints"):
        assert client.get(f"{API}/{uuid.uuid4()}{suffix}").status_code == 404
        assert client.get(f"{API}/12345{suffix}").status_code == 400


def test_list_is_newest_first_with_a_stable_tiebreak(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    same = now - timedelta(hours=1)
    ids = [insert_run(db, created_at=now - timedelta(minutes=i)) for i in range(3)]
    tied = sorted((insert_run(db, created_at=same) for _ in range(3)), reverse=True)
    listed = [r["id"] for r in client.get(API).json()]
    assert listed == ids + tied
    page = client.get(API, params={"limit": 2, "offset": 2}).json()
    assert [r["id"] for r in page] == listed[2:4]


def test_list_filters(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    a = insert_run(db, record_type="claim", file_path="data/Claims_2024.csv", status="failed")
    b = insert_run(db, record_type="absence", file_path="data/absence.csv", status="failed")
    insert_run(db, record_type="claim", file_path="data/other.csv", status="completed")
    assert {r["id"] for r in client.get(API, params={"status": "failed"}).json()} == {a, b}
    assert {r["id"] for r in client.get(API, params={"file_path": "claims_20"}).json()} == {a}
    got = client.get(API, params={"record_type": "claim", "status": "failed"}).json()
    assert [r["id"] for r in got] == [a]
    assert client.get(API, params={"record_type": "Claim"}).json() == []


@pytest.mark.parametrize(
    ("params", "name"),
    [({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"offset": -1}, "offset"), ({"limit": "abc"}, "limit")],
)
def test_list_paging_bounds_are_400_naming_the_parameter(
    client: TestClient[Any], params: dict[str, Any], name: str
) -> None:
    response = client.get(API, params=params)
    assert response.status_code == 400
    assert name in response.text
    assert "detail" in response.json()


def test_trailing_slashes_are_accepted(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, error_message="boom")
    assert [r["id"] for r in client.get(f"{API}/").json()] == [run_id]
    assert [r["id"] for r in client.get(f"{API}/search/", params={"q": "boom"}).json()] == [run_id]
    assert client.get(f"{API}/stats/").status_code == 200
    assert client.get(f"{API}/{run_id}/").json()["id"] == run_id
    assert client.post(f"{API}/", json=run_body()).status_code == 201


def test_search_matches_each_field_case_insensitively(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    by_path = insert_run(db, file_path="data/input/EMPLOYEE_77.csv", record_type="employee")
    by_error = insert_run(db, status="failed", error_message="Validation error: missing POLICY_number")
    by_type = insert_run(db, record_type="group_policy")
    by_status = insert_run(db, status="paused")

    def found(q: str) -> set[str]:
        response = client.get(f"{API}/search", params={"q": q})
        assert response.status_code == 200
        return {r["id"] for r in response.json()}

    assert found("employee_77") == {by_path}
    assert found("policy_num") == {by_error}
    assert found("GROUP_POL") == {by_type}
    assert found("PAUSE") == {by_status}
    assert found(by_error[:13].upper()) == {by_error}
    assert found("zzzz-nothing") == set()


def test_search_treats_like_metacharacters_literally(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    pct = insert_run(db, file_path="data/100%_done.csv")
    under = insert_run(db, file_path="data/a_b.csv")
    slash = insert_run(db, file_path="data\\win\\path.csv")
    insert_run(db, file_path="data/100x-done.csv")
    insert_run(db, file_path="data/axb.csv")

    def found(q: str) -> set[str]:
        return {r["id"] for r in client.get(f"{API}/search", params={"q": q}).json()}

    assert found("100%") == {pct}
    assert found("a_b") == {under}
    assert found("\\win\\") == {slash}
    assert found("%") == {pct}


def test_search_takes_list_filters_alone_or_with_q(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    a = insert_run(db, record_type="claim", status="failed", error_message="timeout")
    insert_run(db, record_type="absence", status="failed", error_message="timeout")
    b = insert_run(db, record_type="claim", status="completed")
    assert {r["id"] for r in client.get(f"{API}/search", params={"record_type": "claim"}).json()} == {a, b}
    got = client.get(f"{API}/search", params={"q": "timeout", "record_type": "claim"}).json()
    assert [r["id"] for r in got] == [a]
    none = client.get(f"{API}/search")
    assert none.status_code == 400
    assert "q" in none.json()["detail"]
    assert client.get(f"{API}/search", params={"q": ""}).status_code == 400
    assert client.get(f"{API}/search", params={"q": "x" * 201}).status_code == 400


def test_stats_counts_by_status_type_recent_success_and_duration(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    insert_run(db, status="completed", success=True, total_duration=10.0, created_at=old, record_type="claim")
    insert_run(db, status="completed", success=True, total_duration=30.0, record_type="claim")
    insert_run(db, status="failed", success=False, total_duration=20.0, record_type="absence")
    insert_run(db, status="running", record_type="absence")
    stats = client.get(f"{API}/stats").json()
    assert stats["total_migrations"] == 4
    assert stats["status_breakdown"] == {"completed": 2, "failed": 1, "running": 1}
    assert stats["recent_24h"] == 3
    assert stats["record_type_breakdown"] == {"claim": 2, "absence": 2}
    assert stats["success_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert stats["average_duration"] == pytest.approx(20.0)


def test_stats_on_an_empty_database(client: TestClient[Any]) -> None:
    stats = client.get(f"{API}/stats").json()
    assert stats["total_migrations"] == 0
    assert stats["status_breakdown"] == {}
    assert stats["recent_24h"] == 0
    assert stats["success_rate"] is None


def test_states_and_checkpoints_in_order(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db)
    empty = insert_run(db)
    now = datetime.now(UTC)
    for order, name in ((2, "file_reading"), (1, "initializing"), (3, "data_mapping")):
        insert_state(
            db,
            run_id,
            step_name=name,
            state_data={"records": 5},
            step_order=order,
            metadata=None if order == 1 else {"host": "n1"},
        )
    for minutes, name in ((1, "b"), (5, "a")):
        insert_checkpoint(
            db, run_id, checkpoint_name=name, state_data={"k": [1, 2]}, created_at=now - timedelta(minutes=minutes)
        )
    states = client.get(f"{API}/{run_id}/states").json()
    assert [s["step_name"] for s in states] == ["initializing", "file_reading", "data_mapping"]
    assert states[0]["metadata"] is None
    assert states[1]["metadata"] == {"host": "n1"}
    assert states[0]["state_data"] == {"records": 5}
    checkpoints = client.get(f"{API}/{run_id}/checkpoints").json()
    assert [c["checkpoint_name"] for c in checkpoints] == ["a", "b"]
    assert checkpoints[0]["state_data"] == {"k": [1, 2]}
    assert client.get(f"{API}/{empty}/states").json() == []
    assert client.get(f"{API}/{empty}/checkpoints").json() == []


def test_patch_changes_only_sent_fields(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run = client.post(API, json=run_body(error_message="first")).json()
    response = client.patch(f"{API}/{run['id']}", json={"file_path": "renamed.csv"})
    assert response.status_code == 200
    updated = response.json()
    assert updated["file_path"] == "renamed.csv"
    assert updated["error_message"] == "first"
    assert updated["updated_at"] >= run["updated_at"]
    assert db.execute("SELECT file_path FROM migration_runs WHERE id = %s", (run["id"],)).fetchone() == ("renamed.csv",)


def test_patch_errors(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run = client.post(API, json=run_body()).json()
    assert client.patch(f"{API}/{uuid.uuid4()}", json={"file_path": "x"}).status_code == 404
    unknown = client.patch(f"{API}/{run['id']}", json={"id": str(uuid.uuid4())})
    assert unknown.status_code == 400
    assert "id" in unknown.text
    too_long = client.patch(f"{API}/{run['id']}", json={"record_type": "r" * 101})
    assert too_long.status_code == 400
    stored = db.execute("SELECT record_type FROM migration_runs WHERE id = %s", (run["id"],)).fetchone()
    assert stored == (run["record_type"],)


def test_delete_removes_states_and_checkpoints(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, status="completed", success=True, completed_at=datetime.now(UTC))
    insert_state(db, run_id, step_name="s")
    insert_checkpoint(db, run_id, checkpoint_name="c")
    response = client.delete(f"{API}/{run_id}")
    assert response.status_code == 204
    assert response.content == b""
    for table in ("migration_runs", "workflow_states", "workflow_checkpoints"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    assert client.delete(f"{API}/{run_id}").status_code == 404


def test_unknown_paths_and_methods_are_json(client: TestClient[Any]) -> None:
    for path in ("/nope", "/api/v2/things", f"{API}/{uuid.uuid4()}/nothing"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")
        assert "detail" in response.json()
    response = client.put(API, json={})
    assert response.status_code == 405
    assert "detail" in response.json()
