"""API keys and scopes: every operation of the app, with no key, an unknown key, a key without the
operation's scope and a key with it (the table is generated from the app's routes, so a route added
without a scope fails here); keys from API_KEYS and from the table; revocation; open mode; the
OpenAPI document's security; tokens never in answers or logs."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.response import ServerSentEvent
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from app import create_app
from auth import SCOPES, SECURITY_SCHEME, store
from auth.__main__ import main as keys_command
from auth.access import KeyRing, open_path_patterns
from auth.tokens import parse_api_keys
from config import DEFAULT_OPEN_PATHS, Settings
from db.pool import create_pool
from tests.helpers import FoldedClient, eventually, make_settings, run_body

API = "/api/v1/migrations"
TOKENS = {scope: f"test-{scope}-token-{uuid.uuid4().hex}" for scope in SCOPES}
ALL_TOKEN = f"test-all-token-{uuid.uuid4().hex}"
API_KEYS = ",".join([*(f"only-{s}:{s}:{t}" for s, t in TOKENS.items()), f"all:read+write+admin:{ALL_TOKEN}"])


def keyed_settings(settings: Settings, **overrides: Any) -> Settings:
    return make_settings(
        settings.database_url or "",
        settings.db_schema,
        api_keys=parse_api_keys(API_KEYS, settings.api_key_pepper),
        auth_cache_seconds=0.0,
        **overrides,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _operations(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    """(path, method, handler) of every HTTP operation of the app outside the open paths."""
    open_paths = [re.compile(p) for p in open_path_patterns(DEFAULT_OPEN_PATHS)]
    found: list[tuple[str, str, HTTPRouteHandler]] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or any(p.search(route.path) for p in open_paths):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                found.append((route.path, str(method), handler))
    return found


OPERATIONS = _operations(create_app(make_settings("postgresql://unused", "unused")))


@pytest.fixture
def keyed(settings: Settings, db: psycopg.Connection[Any]) -> Iterator[TestClient[Any]]:
    with FoldedClient(app=create_app(keyed_settings(settings))) as client:
        client.engine_db = db
        yield client


def _fill(path: str, ids: dict[str, str]) -> str:
    url = re.sub(r"\{(\w+):\w+\}", lambda m: ids.get(m.group(1), "x"), path)
    return url + "?q=run" if url.endswith("/search") else url


def _seed(client: TestClient[Any]) -> dict[str, str]:
    """A run with a state and a checkpoint, and a key to revoke: ids for the path parameters."""
    headers = bearer(ALL_TOKEN)
    run = client.post(API, json=run_body(status="running"), headers=headers).json()["id"]
    state = client.post(f"{API}/{run}/states", json={"step_name": "s", "state_data": {}}, headers=headers)
    checkpoint = client.post(
        f"{API}/{run}/checkpoints", json={"checkpoint_name": "c", "state_data": {}}, headers=headers
    )
    # Finished, so that DELETE needs no `force` (the appends were made while it ran).
    finished = client.patch(f"{API}/{run}", json={"status": "completed"}, headers=headers)
    assert finished.status_code == 200, finished.text
    key = client.post(
        "/api/v1/api-keys", json={"name": f"k{uuid.uuid4().hex[:8]}", "scopes": ["read"]}, headers=headers
    )
    assert state.status_code == checkpoint.status_code == key.status_code == 201
    return {
        "run_id": run,
        "state_id": state.json()["id"],
        "checkpoint_id": checkpoint.json()["id"],
        "name": key.json()["key"]["name"],
    }


def test_every_operation_declares_a_scope() -> None:
    assert len(OPERATIONS) >= 20
    missing = [f"{method} {path}" for path, method, handler in OPERATIONS if handler.opt.get("scope") not in SCOPES]
    assert missing == [], f"operations without a scope (add **requires(READ|WRITE|ADMIN)): {missing}"


@pytest.mark.parametrize(("path", "method", "handler"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_each_operation_wants_its_scope(
    keyed: TestClient[Any], path: str, method: str, handler: HTTPRouteHandler
) -> None:
    needed = handler.opt["scope"]
    url = _fill(path, _seed(keyed))
    body: Any = {} if method in {"POST", "PATCH", "PUT"} else None

    missing = keyed.request(method, url, json=body)
    assert missing.status_code == 401, missing.text
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization" in missing.json()["detail"]

    unknown = keyed.request(method, url, json=body, headers=bearer("not-a-key-" + uuid.uuid4().hex))
    assert unknown.status_code == 401
    assert 'error="invalid_token"' in unknown.headers["www-authenticate"]

    for scope, token in TOKENS.items():
        if scope == needed:
            continue
        refused = keyed.request(method, url, json=body, headers=bearer(token))
        assert refused.status_code == 403, (scope, refused.text)
        assert f"'{needed}' scope" in refused.json()["detail"]
        assert token not in refused.text

    if handler.parsed_fn_signature.return_type.is_subclass_of(ServerSentEvent):
        # An endless stream would hold Litestar's test client forever (it cannot cancel it); the
        # stream itself is tested against a live server. The refusals above are what this checks.
        return
    allowed = keyed.request(method, url, json=body, headers=bearer(TOKENS[needed]))
    assert allowed.status_code not in {401, 403}, allowed.text
    if method in {"GET", "DELETE"}:
        assert 200 <= allowed.status_code < 300, allowed.text


def test_a_cached_run_still_wants_its_scope(keyed: TestClient[Any]) -> None:
    """A run the read cache holds is answered before the handler (controllers/cached_runs.py), but
    after authentication and the rate limit: the same refusals as an uncached read."""
    run = keyed.post(API, json=run_body(), headers=bearer(ALL_TOKEN)).json()["id"]
    cache = keyed.app.state.run_cache
    assert cache is not None
    assert eventually(lambda: cache.enabled)
    for _ in range(2):
        assert keyed.get(f"{API}/{run}", headers=bearer(TOKENS["read"])).status_code == 200
    hits = cache.hits
    assert keyed.get(f"{API}/{run}").status_code == 401
    assert keyed.get(f"{API}/{run}", headers=bearer(TOKENS["write"])).status_code == 403
    assert keyed.get(f"{API}/{run}", headers=bearer("not-a-key-" + uuid.uuid4().hex)).status_code == 401
    assert cache.hits == hits
    assert keyed.get(f"{API}/{run}", headers=bearer(TOKENS["read"])).json()["id"] == run
    assert cache.hits == hits + 1


def test_open_paths_need_no_key(keyed: TestClient[Any]) -> None:
    for path in ("/", "/health", "/health/live", "/health/ready", "/openapi.json", "/docs", "/metrics"):
        assert keyed.get(path).status_code == 200, path
    info = keyed.get("/").json()["auth"]
    assert info["mode"] == "api_keys"
    assert info["warning"] is None


def test_closing_an_open_path_makes_it_want_read(settings: Settings, db: psycopg.Connection[Any]) -> None:
    with TestClient(app=create_app(keyed_settings(settings, auth_open_paths=("/health/live",)))) as client:
        assert client.get("/health/live").status_code == 200
        assert client.get("/health").status_code == 401
        assert client.get("/health", headers=bearer(TOKENS["write"])).status_code == 403
        assert client.get("/health", headers=bearer(TOKENS["read"])).status_code == 200


def test_options_needs_no_key(settings: Settings, db: psycopg.Connection[Any]) -> None:
    """A browser sends no Authorization header with OPTIONS: without CORS settings Litestar's own
    OPTIONS answer (the allowed methods) passes the authentication middleware; with them, its CORS
    middleware answers the preflight. The request that follows still needs its key."""
    with TestClient(app=create_app(keyed_settings(settings))) as client:
        allowed = client.options(API)
        assert allowed.status_code == 204
        assert "OPTIONS" in allowed.headers["allow"]
    origin = "https://ui.example.com"
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    with TestClient(app=create_app(keyed_settings(settings, cors_allow_origins=(origin,)))) as client:
        answer = client.options(API, headers=preflight)
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == origin
        assert client.get(API, headers={"Origin": origin}).status_code == 401
        assert client.get(API, headers={"Origin": origin, **bearer(TOKENS["read"])}).status_code == 200


def test_open_mode_warns_and_lets_everyone_in(
    settings: Settings, db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), TestClient(app=create_app(settings)) as client:
        info = client.get("/").json()["auth"]
        assert info["mode"] == "open"
        assert "OPEN MODE" in info["warning"]
        created = client.post(API, json=run_body())
        assert created.status_code == 201
        assert client.delete(f"{API}/{created.json()['id']}?force=true").status_code in {200, 204}
    assert any("OPEN MODE" in r.getMessage() for r in caplog.records)


def test_table_keys_made_listed_and_revoked_by_the_command(
    settings: Settings, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("DB_SCHEMA", settings.db_schema)
    monkeypatch.delenv("API_KEYS", raising=False)
    name = f"engine-{uuid.uuid4().hex[:6]}"
    assert keys_command(["create", name, "--scopes", "read+write"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("mapi_")
    stored = db.execute("SELECT scopes, token_hash FROM migration_api_keys WHERE name = %s", (name,)).fetchone()
    assert stored is not None
    assert stored[0] == ["read", "write"]
    assert token not in stored[1]
    assert keys_command(["create", name, "--scopes", "read"]) == 1  # one active key per name

    app_settings = make_settings(settings.database_url or "", settings.db_schema, auth_cache_seconds=0.0)
    with TestClient(app=create_app(app_settings)) as client:
        assert client.get("/").json()["auth"]["mode"] == "api_keys"  # a key in the table ends open mode
        assert client.get(API).status_code == 401
        assert client.get(API, headers=bearer(token)).status_code == 200
        assert client.post(API, json=run_body(), headers=bearer(token)).status_code == 201
        assert client.get("/api/v1/api-keys", headers=bearer(token)).status_code == 403

        assert keys_command(["list"]) == 0
        listed = capsys.readouterr().out
        assert name in listed
        assert token not in listed
        assert keys_command(["revoke", name]) == 0
        revoked = client.get(API, headers=bearer(token))
        assert revoked.status_code == 401
        assert "revoked" in revoked.json()["detail"]
        assert client.get("/").json()["auth"]["mode"] == "api_keys"  # revoking the last key opens nothing
        assert keys_command(["revoke", name]) == 1


def test_keys_made_and_revoked_over_http_by_an_admin(keyed: TestClient[Any]) -> None:
    admin = bearer(TOKENS["admin"])
    made = keyed.post("/api/v1/api-keys", json={"name": "dash", "scopes": ["read"]}, headers=admin)
    assert made.status_code == 201
    token = made.json()["token"]
    assert keyed.get(API, headers=bearer(token)).status_code == 200
    listed = keyed.get("/api/v1/api-keys", headers=admin)
    assert [k["name"] for k in listed.json()] == ["dash"]
    assert token not in listed.text
    assert keyed.post("/api/v1/api-keys", json={"name": "dash", "scopes": ["read"]}, headers=admin).status_code == 409
    bad = keyed.post("/api/v1/api-keys", json={"name": "x", "scopes": ["root"]}, headers=admin)
    assert bad.status_code == 400
    assert keyed.delete("/api/v1/api-keys/dash", headers=admin).status_code == 200
    assert keyed.get(API, headers=bearer(token)).status_code == 401
    assert keyed.delete("/api/v1/api-keys/dash", headers=admin).status_code == 404


def test_tokens_never_reach_answers_or_logs(keyed: TestClient[Any], caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    with caplog.at_level(logging.DEBUG):
        answers = [
            keyed.get(API, headers=bearer(wrong)),
            keyed.get(API, headers={"Authorization": f"Basic {wrong}"}),
            keyed.get(API, headers=bearer(TOKENS["read"])),
            keyed.delete(f"{API}/{uuid.uuid4()}", headers=bearer(TOKENS["read"])),
            keyed.get(f"{API}/{uuid.uuid4()}", headers={**bearer(TOKENS["read"]), "X-Request-ID": wrong + "\n"}),
        ]
    assert [a.status_code for a in answers] == [401, 401, 200, 403, 404]
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    for token in (wrong, TOKENS["read"]):
        assert token not in logged
        assert all(token not in a.text and token not in str(a.headers) for a in answers)


def test_the_document_declares_the_bearer_scheme_and_each_scope(keyed: TestClient[Any]) -> None:
    document = keyed.get("/openapi.json").json()
    assert document["components"]["securitySchemes"][SECURITY_SCHEME] == msgspec.to_builtins(
        document["components"]["securitySchemes"][SECURITY_SCHEME]
    )
    assert document["components"]["securitySchemes"][SECURITY_SCHEME]["scheme"] == "bearer"
    for path, method, handler in OPERATIONS:
        if not handler.resolve_include_in_schema():  # the dashboard's pages
            continue
        operation = document["paths"][re.sub(r":\w+\}", "}", path)][method.lower()]
        assert {SECURITY_SCHEME: [handler.opt["scope"]]} in operation["security"], (method, path)
        assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_refused_answers_are_counted_under_their_own_status(keyed: TestClient[Any]) -> None:
    """The metrics middleware sees a 401 that the authentication middleware raised inside it (not
    the 200 Litestar's own middleware would have recorded), rendered as every error is: with its
    `detail`, its challenge, and the request id the outermost middleware adds."""
    labels = {"method": "GET", "path": "/api/v1/migrations", "status_code": "401", "app_name": "migration_api"}
    before = REGISTRY.get_sample_value("migration_api_requests_total", labels) or 0.0
    refused = keyed.get(API, headers={"X-Request-ID": "refused-1"})
    assert refused.status_code == 401
    assert REGISTRY.get_sample_value("migration_api_requests_total", labels) == before + 1
    assert refused.headers["x-request-id"] == "refused-1"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert "API key is required" in refused.json()["detail"]


async def test_a_burst_after_the_answer_expired_reads_the_key_table_once(
    settings: Settings, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thousand event streams opened at once, each reading the key table on its own pooled
    connection, emptied the pool (503s): concurrent checks wait for the one read instead."""
    reads: list[str] = []
    real_any_key, real_find_active = store.any_key, store.find_active

    async def any_key(conn: Any) -> bool:  # the real query, slowed so that the burst overlaps it
        reads.append("any_key")
        await asyncio.sleep(0.05)
        return await real_any_key(conn)

    async def find_active(conn: Any, digest: str) -> Any:
        reads.append("find_active")
        await asyncio.sleep(0.05)
        return await real_find_active(conn, digest)

    monkeypatch.setattr(store, "any_key", any_key)
    monkeypatch.setattr(store, "find_active", find_active)
    pool = create_pool(settings.database_url or "", settings)
    await pool.open(wait=True)
    try:
        ring = KeyRing((), "pepper", cache_seconds=60.0)
        ring.attach(pool)
        assert await asyncio.gather(*(ring.keyed() for _ in range(50))) == [False] * 50
        assert await asyncio.gather(*(ring.lookup("no-such-token") for _ in range(50))) == [None] * 50
        assert reads == ["any_key", "find_active"]
    finally:
        await pool.close()
