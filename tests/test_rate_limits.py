"""Request budgets: per API key (per client address in open mode), 429 with Retry-After and the
RateLimit-* headers, probes never counted, and one budget shared by two servers through Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis
from litestar.testing import TestClient

from app import create_app
from auth.tokens import parse_api_keys
from config import Settings
from tests.helpers import make_settings, serve

API = "/api/v1/migrations"
# Database 11 of the machine's Redis, under a namespace of this test run: nothing else is touched.
REDIS_URL = "redis://127.0.0.1:6379/11"
TOKEN_A = f"rate-a-{uuid.uuid4().hex}"
TOKEN_B = f"rate-b-{uuid.uuid4().hex}"
API_KEYS = f"a:read:{TOKEN_A},b:read:{TOKEN_B}"


def limited(settings: Settings, keys: str | None = API_KEYS) -> Settings:
    return make_settings(
        settings.database_url or "",
        settings.db_schema,
        rate_limit=("minute", 3),
        api_keys=parse_api_keys(keys, settings.api_key_pepper) if keys else (),
    )


def test_each_key_has_its_budget_and_429_says_when_to_retry(settings: Settings, db: psycopg.Connection[Any]) -> None:
    with TestClient(app=create_app(limited(settings))) as client:
        a, b = {"Authorization": f"Bearer {TOKEN_A}"}, {"Authorization": f"Bearer {TOKEN_B}"}
        answers = [client.get(API, headers=a) for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0"]
        assert answers[0].headers["ratelimit-limit"] == "3"
        assert answers[0].headers["ratelimit-policy"] == "3; w=60"
        refused = client.get(API, headers=a)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.json()["detail"]
        assert client.get(API, headers=b).status_code == 200  # another key, another budget
        for _ in range(5):
            assert client.get("/health/live").status_code == 200  # probes are not counted
        metrics = client.get("/metrics").text
        assert 'method="GET",path="/api/v1/migrations",status_code="429"' in metrics


def test_open_mode_limits_each_client_address(settings: Settings, db: psycopg.Connection[Any]) -> None:
    with TestClient(app=create_app(limited(settings, keys=None))) as client:
        assert [client.get(API).status_code for _ in range(4)] == [200, 200, 200, 429]


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    namespace = f"migration_api_test_{uuid.uuid4().hex[:8]}"
    yield namespace
    connection = redis.Redis.from_url(REDIS_URL)
    for key in connection.scan_iter(f"{namespace}*"):
        connection.delete(key)
    connection.close()


def test_two_servers_share_one_budget_through_redis(
    settings: Settings, db: psycopg.Connection[Any], redis_namespace: str
) -> None:
    env = {"REDIS_URL": REDIS_URL, "REDIS_NAMESPACE": redis_namespace, "RATE_LIMIT": "5/minute", "API_KEYS": API_KEYS}
    url, schema = settings.database_url or "", settings.db_schema
    headers = {"Authorization": f"Bearer {TOKEN_A}"}
    with serve(url, schema, env) as (_, first), serve(url, schema, env) as (_, second):
        codes = [httpx.get(f"{base}{API}", headers=headers).status_code for base in [first, second] * 3]
        assert codes == [200, 200, 200, 200, 200, 429]
        assert httpx.get(f"{first}{API}", headers=headers).status_code == 429
        other = {"Authorization": f"Bearer {TOKEN_B}"}
        assert httpx.get(f"{second}{API}", headers=other).status_code == 200
    stored = list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_namespace}*"))
    assert stored  # the budget lived in Redis, not in either process
