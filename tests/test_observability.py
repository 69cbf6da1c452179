"""What operators watch: /metrics (parsed with prometheus-client's own parser), the probes, the
log lines (one format for the service's and uvicorn's, JSON on request) and the request id."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from db.schema import LATEST
from tests.helpers import run_body, serve

API = "/api/v1/migrations"


def samples(client: TestClient[Any]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= ls)


def test_metrics_parse_and_move_with_requests(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    template = "/api/v1/migrations/{run_id}"
    before = samples(client)
    run = client.post(API, json=run_body()).json()["id"]
    for _ in range(3):
        assert client.get(f"{API}/{run}").status_code == 200
    assert client.get(f"{API}/{uuid.uuid4()}").status_code == 404
    assert client.post(API, json=run_body(id=run)).status_code == 409  # a UniqueViolation
    after = samples(client)

    counted = "migration_api_requests_total"
    assert (
        value(after, counted, path=template, method="GET", status_code="200")
        - value(before, counted, path=template, method="GET", status_code="200")
        == 3
    )
    assert value(after, counted, path=template, method="GET", status_code="404") >= 1
    # Route templates only: no series names a run id.
    assert not any(run in str(labels) for _, labels in after)
    assert value(after, "migration_api_request_duration_seconds_count", path=template) >= 4
    assert (
        value(after, "migration_api_database_errors_total", error="UniqueViolation")
        - value(before, "migration_api_database_errors_total", error="UniqueViolation")
        == 1
    )
    assert value(after, "migration_api_pool_max") == 8
    assert value(after, "migration_api_pool_size") >= 1
    assert ("migration_api_pool_waiting", frozenset()) in after
    assert value(after, "migration_api_background_task_up", task="database-heartbeat") == 1
    lookups = value(after, "migration_api_cache_lookups_total") - value(before, "migration_api_cache_lookups_total")
    assert lookups >= 3


def test_cache_hits_are_counted(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run = client.post(API, json=run_body()).json()["id"]
    deadline = time.monotonic() + 10
    while value(samples(client), "migration_api_cache_enabled") != 1:
        assert time.monotonic() < deadline, "the read cache never turned on"
        time.sleep(0.1)
    before = value(samples(client), "migration_api_cache_lookups_total", result="hit")
    # The folder's notice of the POST reaches the cache asynchronously: while it is in flight a read
    # is not stored, and its arrival drops the run once more, so the first two reads may miss.
    for _ in range(10):
        client.get(f"{API}/{run}")
    assert value(samples(client), "migration_api_cache_lookups_total", result="hit") - before >= 3


def test_probes(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    checks = {c["name"]: c for c in ready.json()["checks"]}
    assert checks["database"]["ok"]
    assert f"schema version {LATEST}" in checks["database"]["note"]
    assert {"database-heartbeat", "change-log-folder", "run-cache-listener", "event-listener"} <= set(checks)
    assert client.get("/health").json()["status"] == "ok"  # unchanged for existing clients


def test_readiness_fails_when_the_schema_is_removed(
    client: TestClient[Any], db: psycopg.Connection[Any], settings: Settings
) -> None:
    db.execute("CREATE TEMP TABLE saved_versions AS SELECT * FROM migration_api_schema_versions")
    db.execute("DELETE FROM migration_api_schema_versions")
    try:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert "database" in ready.json()["detail"]
        assert "uninstalled" in str(ready.json()["checks"])
    finally:
        db.execute("INSERT INTO migration_api_schema_versions SELECT * FROM saved_versions")
    assert client.get("/health/ready").status_code == 200


def test_request_id_is_echoed_or_made(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    assert client.get(API, headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get(API).headers["x-request-id"]
    assert len(made) == 32
    assert client.get(API, headers={"X-Request-ID": "bad id\tx"}).headers["x-request-id"] != "bad id\tx"


def test_json_logs_for_the_service_and_uvicorn_alike(
    settings: Settings, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    log = tmp_path / "stderr.log"
    with (
        log.open("wb") as stderr,
        serve(
            settings.database_url or "",
            settings.db_schema,
            argv=[sys.executable, "app.py"],  # main(): logging is set up before uvicorn starts
            stderr=stderr,
            env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"},
        ) as (_, base),
    ):
        run = httpx.post(f"{base}{API}", json=run_body(), headers={"X-Request-ID": "trace-42"}).json()["id"]
        assert httpx.get(f"{base}{API}/{run}").status_code == 200
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(r.get("logger", "").startswith("uvicorn") for r in records), lines[:5]
    assert any("Application startup complete" in r["event"] for r in records)
    request = next(r for r in records if r["event"] == "request" and r.get("request_id") == "trace-42")
    assert request["method"] == "POST"
    assert request["route"] == API
    assert request["status"] == 201
    assert request["duration_ms"] > 0
    fetched = [r["route"] for r in records if r["event"] == "request" and r["method"] == "GET" and r["status"] == 200]
    assert "/api/v1/migrations/{run_id}" in fetched  # the route template, never the run's id
    assert not any(run in line for line in lines)


def test_a_timestamp_whose_plus_became_a_space_is_read_as_meant(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    client.post(API, json=run_body(created_at="2026-11-25T05:00:00+00:00"))
    later = client.post(API, json=run_body(created_at="2026-11-25T08:00:00+00:00")).json()["id"]
    # Sent unencoded, as browsers and curl users do: the `+` arrives as a space.
    unencoded = client.get(f"{API}?created_after=2026-11-25T06:59:52+00:00")
    encoded = client.get(f"{API}?created_after=2026-11-25T06:59:52%2B00:00")
    assert unencoded.status_code == encoded.status_code == 200
    assert [r["id"] for r in unencoded.json()] == [r["id"] for r in encoded.json()] == [later]
    shifted = client.get(f"{API}?created_after=2026-11-25T07:59:52+01:00")
    assert [r["id"] for r in shifted.json()] == [later]
    assert client.get(f"{API}?created_after=yesterday").status_code == 400


def test_input_the_document_forbids_is_refused_with_detail(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    run = client.post(API, json=run_body(status="running")).json()["id"]
    numeric = client.get(f"{API}/stats?until=0.5")  # not read as a Unix time
    assert numeric.status_code == 400
    assert "RFC 3339" in numeric.json()["detail"]
    spaced = client.get(f"{API}?created_after=2026-11-25T06:59:52%2000:00")
    assert spaced.status_code == 400
    assert "%2B" in spaced.json()["detail"]
    nul = client.get(f"{API}/{run}/checkpoints/latest?name=%00x")
    assert nul.status_code == 400
    assert client.get(f"{API}?file_path=a%00b").status_code == 400
    coerced = client.patch(f"{API}/{run}", json={"success": 0})  # not taken as false
    assert coerced.status_code == 400
    assert "success" in str(coerced.json()["extra"])
    unknown = client.patch(f"{API}/{run}", json={"colour": "red"})
    assert unknown.status_code == 400
    assert client.get(f"{API}/{run}").json()["success"] is None  # nothing was changed
    assert client.post(f"{API}/{run}/states/batch", json=[]).status_code == 400
