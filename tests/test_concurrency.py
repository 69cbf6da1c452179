"""Concurrent clients against a real uvicorn: retries racing each other, and optimistic locking."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import TestClient

from tests.helpers import count, insert_run, run_body

API = "/api/v1/migrations"


async def test_twenty_concurrent_creates_with_one_key_make_one_run(
    live_server: str, db: psycopg.Connection[Any]
) -> None:
    body = run_body()
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post(API, json=body, headers={"Idempotency-Key": "race-1"}) for _ in range(20))
        )
    assert [r.status_code for r in responses] == [201] * 20
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotency-replayed") == "true" for r in responses) == 19
    assert count(db, "migration_runs") == 1


async def test_concurrent_keyed_appends_make_one_state(live_server: str, db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    body = {"step_name": "mapping", "state_data": {"rows": 10}}
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post(f"{API}/{run_id}/states", json=body, headers={"Idempotency-Key": "s"}) for _ in range(20))
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert count(db, "workflow_states") == 1


async def test_concurrent_appends_get_distinct_step_orders(live_server: str, db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post(f"{API}/{run_id}/states", json={"step_name": f"s{i}", "state_data": {}}) for i in range(20))
        )
    assert {r.status_code for r in responses} == {201}
    assert sorted(r.json()["step_order"] for r in responses) == list(range(1, 21))


async def test_two_patches_with_the_same_if_match_one_wins(live_server: str, db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        tag = (await client.get(f"{API}/{run_id}")).headers["etag"]
        first, second = await asyncio.gather(
            client.patch(f"{API}/{run_id}", json={"error_message": "from A"}, headers={"If-Match": tag}),
            client.patch(f"{API}/{run_id}", json={"error_message": "from B"}, headers={"If-Match": tag}),
        )
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    winner = first if first.status_code == 200 else second
    loser = second if winner is first else first
    assert loser.headers["etag"] == winner.headers["etag"]  # the 412 tells the current version
    stored = db.execute("SELECT error_message FROM migration_runs WHERE id = %s", (run_id,)).fetchone()
    assert stored == (winner.json()["error_message"],)


async def test_concurrent_transitions_cannot_both_pass(live_server: str, db: psycopg.Connection[Any]) -> None:
    run_id = insert_run(db, "running")
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.patch(f"{API}/{run_id}", json={"status": status}) for status in ["completed", "failed"] * 5),
            *(client.post(f"{API}/{run_id}/cancel") for _ in range(5)),
        )
    final = db.execute("SELECT status, success FROM migration_runs WHERE id = %s", (run_id,)).fetchone()
    assert final is not None
    winners = {r.json()["status"] for r in responses if r.status_code == 200}
    assert winners == {final[0]}  # every 200 agrees with what is stored: nobody overtook a final status
    assert {r.status_code for r in responses} <= {200, 409}
    assert final[1] is (final[0] == "completed")


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "CANCEL"])
def test_a_direct_engine_update_between_get_and_write_makes_it_412(
    client: TestClient[Any], db: psycopg.Connection[Any], method: str
) -> None:
    run_id = insert_run(db, "running")
    tag = client.get(f"{API}/{run_id}").headers["etag"]
    # the engine writes directly and does not touch updated_at
    db.execute("UPDATE migration_runs SET error_message = 'engine note' WHERE id = %s", (run_id,))
    before = db.execute("SELECT * FROM migration_runs WHERE id = %s", (run_id,)).fetchone()
    headers = {"If-Match": tag}
    if method == "PATCH":
        response = client.patch(f"{API}/{run_id}", json={"status": "completed"}, headers=headers)
    elif method == "DELETE":
        response = client.delete(f"{API}/{run_id}", params={"force": "true"}, headers=headers)
    else:
        response = client.post(f"{API}/{run_id}/cancel", headers=headers)
    assert response.status_code == 412
    assert "changed" in response.json()["detail"]
    assert db.execute("SELECT * FROM migration_runs WHERE id = %s", (run_id,)).fetchone() == before
    current = response.headers["etag"]
    assert current != tag
    assert client.get(f"{API}/{run_id}").headers["etag"] == current


def test_etags_and_conditional_requests(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    created = client.post(API, json=run_body())
    run_id, tag = created.json()["id"], created.headers["etag"]
    got = client.get(f"{API}/{run_id}")
    assert got.headers["etag"] == tag
    for header in (tag, f'"other", {tag}', f"W/{tag}", "*"):
        not_modified = client.get(f"{API}/{run_id}", headers={"If-None-Match": header})
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == tag
    assert client.get(f"{API}/{run_id}", headers={"If-None-Match": '"stale"'}).status_code == 200
    # If-Match: a list, a weak form of the current tag and `*` all match; a stale tag does not
    patched = client.patch(f"{API}/{run_id}", json={"error_message": "a"}, headers={"If-Match": f'"x", W/{tag}'})
    assert patched.status_code == 200
    new_tag = patched.headers["etag"]
    assert new_tag != tag
    assert client.patch(f"{API}/{run_id}", json={"error_message": "b"}, headers={"If-Match": tag}).status_code == 412
    assert client.patch(f"{API}/{run_id}", json={"error_message": "b"}, headers={"If-Match": "*"}).status_code == 200
    # without If-Match the write applies
    assert client.patch(f"{API}/{run_id}", json={"error_message": "c"}).status_code == 200
    assert client.delete(f"{API}/{run_id}", headers={"If-Match": '"stale"'}).status_code == 412
    final_tag = client.get(f"{API}/{run_id}").headers["etag"]
    assert (
        client.delete(f"{API}/{run_id}", headers={"If-Match": final_tag}, params={"force": "true"}).status_code == 204
    )
    assert client.patch(f"{API}/{run_id}", json={"error_message": "d"}, headers={"If-Match": "*"}).status_code == 404
