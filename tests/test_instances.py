"""Two instances of the service, each with two worker processes, on one database: they agree.

Each instance is a uvicorn with `--workers 2` (so four processes, each with its own pool, read
cache, change-log folder and event hub); requests to one instance land on either of its workers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from config import Settings
from tests.helpers import run_body, serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # two live servers per test

API = "/api/v1/migrations"
Pair = tuple[str, str]


@pytest.fixture(scope="module")
def instances(settings: Settings, _schema_ready: None) -> Iterator[Pair]:
    url, schema = settings.database_url or "", settings.db_schema
    with serve(url, schema, workers=2) as (_, first), serve(url, schema, workers=2) as (_, second):
        yield first, second


def eventually(check: Any, timeout: float = 1.0) -> Any:
    """Poll `check` until it returns something true, within the freshness contract (1 s)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "not within the freshness bound"
        time.sleep(0.02)
    return result


def test_an_idempotency_key_retried_on_the_other_instance_replays(instances: Pair, db: psycopg.Connection[Any]) -> None:
    a, b = instances
    key = f"retry-{uuid.uuid4()}"
    body = run_body()
    first = httpx.post(f"{a}{API}", json=body, headers={"Idempotency-Key": key})
    again = httpx.post(f"{b}{API}", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotency-Replayed"] == "true"
    assert db.execute("SELECT count(*) FROM migration_runs").fetchone() == (1,)


def test_if_match_races_across_instances_have_one_winner(instances: Pair, db: psycopg.Connection[Any]) -> None:
    a, b = instances
    created = httpx.post(f"{a}{API}", json=run_body(status="running"))
    run_id, tag = created.json()["id"], created.headers["ETag"]

    async def race() -> list[int]:
        async with httpx.AsyncClient() as http:
            replies = await asyncio.gather(
                *(
                    http.patch(
                        f"{base}{API}/{run_id}", json={"error_message": f"writer {i}"}, headers={"If-Match": tag}
                    )
                    for i, base in enumerate([a, b] * 8)
                )
            )
        return sorted(r.status_code for r in replies)

    assert asyncio.run(race()) == [200] + [412] * 15
    assert db.execute("SELECT error_message LIKE 'writer %%' FROM migration_runs").fetchone() == (True,)


def test_a_write_through_one_instance_is_read_fresh_through_the_other(
    instances: Pair, db: psycopg.Connection[Any]
) -> None:
    a, b = instances
    run_id = httpx.post(f"{a}{API}", json=run_body(status="running")).json()["id"]
    # Warm both instances' caches (several reads: each instance has two workers).
    for base in (a, b) * 4:
        assert httpx.get(f"{base}{API}/{run_id}").json()["status"] == "running"
        assert httpx.get(f"{base}{API}/{run_id}/states").json() == []
    assert httpx.patch(f"{a}{API}/{run_id}", json={"status": "paused"}).status_code == 200
    assert httpx.post(f"{a}{API}/{run_id}/states", json={"step_name": "read", "state_data": {}}).status_code == 201
    for base in (b, b, b, a):
        eventually(lambda base=base: httpx.get(f"{base}{API}/{run_id}").json()["status"] == "paused")
        eventually(lambda base=base: len(httpx.get(f"{base}{API}/{run_id}/states").json()) == 1)
    # An engine's direct write too.
    db.execute("UPDATE migration_runs SET status = 'failed', error_message = 'engine says no' WHERE id = %s", (run_id,))
    for base in (a, b, a, b):
        eventually(lambda base=base: httpx.get(f"{base}{API}/{run_id}").json()["status"] == "failed")


def test_statistics_agree_on_both_instances_and_with_the_tables(instances: Pair, db: psycopg.Connection[Any]) -> None:
    a, b = instances
    for i in range(12):
        base = (a, b)[i % 2]
        status = ("completed", "failed", "running")[i % 3]
        assert httpx.post(f"{base}{API}", json=run_body(status=status)).status_code == 201
    db.execute(
        "INSERT INTO migration_runs (id, file_path, record_type, status) "
        "SELECT gen_random_uuid(), 'in/x' || i || '.csv', 'claim', 'failed' FROM generate_series(1, 5) i"
    )
    want = dict(db.execute("SELECT status, count(*) FROM migration_runs GROUP BY status").fetchall())

    def agreed() -> bool:
        bodies = [httpx.get(f"{base}{API}/stats").json() for base in (a, b, a, b)]
        return all(body["status_breakdown"] == want and body["total_migrations"] == 17 for body in bodies)

    eventually(agreed)


def test_each_instance_streams_every_change(instances: Pair, db: psycopg.Connection[Any]) -> None:
    a, b = instances

    async def follow() -> list[list[int]]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=10)) as http:
            seen: list[list[int]] = [[], []]
            opened = [asyncio.Event(), asyncio.Event()]

            async def read(index: int, base: str) -> None:
                async with http.stream("GET", f"{base}/api/v1/events") as response:
                    async for line in response.aiter_lines():
                        if line.startswith(":"):
                            opened[index].set()
                        elif line.startswith("id: "):
                            seen[index].append(int(line[4:]))
                            if len(seen[index]) == 9:
                                return

            readers = [asyncio.create_task(read(i, base)) for i, base in enumerate((a, b))]
            await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 10)
            for base in (a, b):
                run_id = (await http.post(f"{base}{API}", json=run_body(status="running"))).json()["id"]
                await http.patch(f"{base}{API}/{run_id}", json={"status": "paused"})
                await asyncio.to_thread(
                    db.execute,
                    "INSERT INTO workflow_checkpoints (id, run_id, checkpoint_name, state_data) "
                    "VALUES (gen_random_uuid(), %s, 'cp', '{}')",
                    (run_id,),
                )
            await asyncio.to_thread(
                db.execute,
                "INSERT INTO migration_runs (id, file_path, record_type, status) "
                "SELECT gen_random_uuid(), 'in/y' || i || '.csv', 'claim', 'running' FROM generate_series(1, 3) i",
            )
            await asyncio.wait_for(asyncio.gather(*readers), 10)
            return seen

    first, second = asyncio.run(follow())
    assert first == second
    assert len(first) == 9
    assert first == sorted(first)
