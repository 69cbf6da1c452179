"""The read cache of runs and step lists: never serves a version older than a committed write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from cache import PAGE_ENTRIES, RunCache
from repositories.runs import RunsRepository
from tests.helpers import eventually, insert_run, insert_state, run_body

# Time bounds (freshness, an engine never held up): run alone by `make test`, never beside other tests.
pytestmark = pytest.mark.timing

API = "/api/v1/migrations"


def cache_of(client: TestClient[Any]) -> RunCache:
    cache: RunCache | None = client.app.state.run_cache
    assert cache is not None, "the change-notice triggers are installed in the test schema"
    # On: listening, and the folder says the log is current (its first cycle, or a rebuild, done).
    assert eventually(lambda: cache.enabled)
    return cache


def test_repeated_reads_are_served_from_the_cache(client: TestClient[Any]) -> None:
    cache = cache_of(client)
    run = client.post(API, json=run_body()).json()
    first = client.get(f"{API}/{run['id']}")
    assert cache.get("run", uuid.UUID(run["id"])) is not None
    again = client.get(f"{API}/{run['id']}")
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]


def test_an_engines_direct_write_reaches_readers(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    cache_of(client)
    run = client.post(API, json=run_body()).json()
    assert client.get(f"{API}/{run['id']}").json()["error_message"] is None
    client.get(f"{API}/{run['id']}/states")
    db.execute("UPDATE migration_runs SET error_message = 'engine says hi' WHERE id = %s", (run["id"],))
    insert_state(db, run["id"], step_name="x", step_order=1)
    assert eventually(lambda: client.get(f"{API}/{run['id']}").json()["error_message"] == "engine says hi")
    assert eventually(lambda: len(client.get(f"{API}/{run['id']}/states").json()) == 1)


def test_the_writer_reads_its_own_write_at_once(client: TestClient[Any], monkeypatch: Any) -> None:
    cache = cache_of(client)
    # Without the change notices, only the write path's own invalidation can keep this exact.
    monkeypatch.setattr(cache, "apply_notice", lambda payload: None)
    run = client.post(API, json=run_body()).json()
    client.get(f"{API}/{run['id']}")
    client.get(f"{API}/{run['id']}/states")
    assert client.patch(f"{API}/{run['id']}", json={"error_message": "patched"}).status_code == 200
    assert client.get(f"{API}/{run['id']}").json()["error_message"] == "patched"
    posted = client.post(f"{API}/{run['id']}/states", json={"step_name": "read", "state_data": {}})
    assert posted.status_code == 201
    assert [s["step_name"] for s in client.get(f"{API}/{run['id']}/states").json()] == ["read"]
    # the list page read before a write is not served after it: the new run heads the next read
    assert client.get(API).json()[0]["id"] == run["id"]
    newer = client.post(API, json=run_body()).json()
    assert client.get(API).json()[0]["id"] == newer["id"]
    assert client.delete(f"{API}/{run['id']}", params={"force": "true"}).status_code == 204
    assert client.get(f"{API}/{run['id']}").status_code == 404


def test_a_lost_listener_empties_the_cache_until_it_listens_again(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    cache = cache_of(client)
    run = client.post(API, json=run_body()).json()
    client.get(f"{API}/{run['id']}")
    assert len(cache) >= 1
    killed = db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'migration-api-cache' AND datname = current_database()"
    ).fetchall()
    assert killed
    assert eventually(lambda: not cache.listening or len(cache) == 0)
    # writes while nobody listens are not missed: the cache restarts empty
    db.execute("UPDATE migration_runs SET error_message = 'while deaf' WHERE id = %s", (run["id"],))
    assert eventually(lambda: client.get(f"{API}/{run['id']}").json()["error_message"] == "while deaf")
    assert eventually(lambda: cache.listening, seconds=5)


def test_a_read_from_before_a_notice_is_not_stored_after_it() -> None:
    cache = RunCache(1024)
    cache.listening = True
    cache.fresh = True
    run_id = uuid.uuid4()
    generation = cache.generation
    cache.invalidate([uuid.uuid4()])  # a notice for any run arrives while the read is in flight
    cache.put("run", run_id, b"{}", '"t"', generation)
    assert cache.get("run", run_id) is None
    cache.put("run", run_id, b"{}", '"t"', cache.generation)
    assert cache.get("run", run_id) == (b"{}", '"t"')
    cache.apply_notice(str(run_id))
    assert cache.get("run", run_id) is None


def test_notices_of_another_schema_are_skipped() -> None:
    """Every schema's service in a database hears one channel: a notice names its schema, and
    another schema's neither drops a run nor keeps a read in flight from being stored."""
    cache = RunCache(1024, "migr")
    cache.listening = True
    cache.fresh = True
    run_id = uuid.uuid4()
    cache.put("run", run_id, b"{}", '"t"', cache.generation)
    generation = cache.generation
    cache.apply_notice(f"public:{run_id}")
    cache.apply_notice("public:*")
    assert cache.generation == generation
    assert cache.get("run", run_id) == (b"{}", '"t"')
    cache.apply_notice(f"migr:{uuid.uuid4()},{run_id}")
    assert cache.get("run", run_id) is None
    cache.put("run", run_id, b"{}", '"t"', cache.generation)
    cache.apply_notice("migr:*")
    assert len(cache) == 0
    cache.put("run", run_id, b"{}", '"t"', cache.generation)
    cache.apply_notice(str(run_id))  # from a process of an older version: no schema, counts for all
    assert cache.get("run", run_id) is None


def test_the_cache_is_bounded_by_bytes() -> None:
    cache = RunCache(8 * 100)
    cache.listening = True
    cache.fresh = True
    ids = [uuid.uuid4() for _ in range(20)]
    for run_id in ids:
        cache.put("run", run_id, b"x" * 100, "", cache.generation)
    assert sum(len(body) for body, _ in cache._items.values()) <= 800
    assert cache.get("run", ids[-1]) is not None
    assert cache.get("run", ids[0]) is None
    cache.apply_notice("*")
    assert len(cache) == 0


def test_list_pages_assembled_from_the_cache_see_every_write(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    cache = cache_of(client)
    run = client.post(API, json=run_body()).json()
    assert client.get(API).json()[0]["error_message"] is None
    assert cache.get("run", uuid.UUID(run["id"])) is not None  # the page's runs went into the cache
    db.execute("UPDATE migration_runs SET error_message = 'engine says hi' WHERE id = %s", (run["id"],))
    assert eventually(lambda: client.get(API).json()[0]["error_message"] == "engine says hi")
    assert client.patch(f"{API}/{run['id']}", json={"error_message": "patched"}).status_code == 200
    assert client.get(API).json()[0]["error_message"] == "patched"
    assert client.get(f"{API}/search", params={"q": run["file_path"]}).json()[0]["error_message"] == "patched"


def test_a_page_is_kept_until_the_next_change_anywhere() -> None:
    cache = RunCache(64 * 1024)
    cache.listening = True
    cache.fresh = True
    generation = cache.generation
    cache.put_page("newest", b"[1]", "page", generation)
    assert cache.get_page("newest") == "page"
    cache.invalidate([uuid.uuid4()])  # a change to any run: every page may differ now
    assert cache.get_page("newest") is None
    cache.put_page("newest", b"[1]", "read before the change", generation)
    assert cache.get_page("newest") is None
    cache.put_page("newest", b"[2]", "page", cache.generation)
    cache.apply_notice("*")
    assert cache.get_page("newest") is None
    for n in range(PAGE_ENTRIES + 5):
        cache.put_page(n, b"[]", n, cache.generation)
    assert cache.get_page(0) is None
    assert cache.get_page(PAGE_ENTRIES + 4) == PAGE_ENTRIES + 4
    cache.put_page("huge", b"x" * (64 * 1024 // 8 + 1), "huge", cache.generation)
    assert cache.get_page("huge") is None
    cache.fresh = False  # rebuilding: nothing is served
    assert cache.get_page(PAGE_ENTRIES + 4) is None


def test_a_cached_list_page_shows_an_engines_new_run_after_its_fold(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    cache = cache_of(client)
    client.post(API, json=run_body())
    # Kept whole once read (the POST's own notice, arriving late, may drop the first copy).
    assert eventually(lambda: client.get(API, params={"limit": 5}).status_code == 200 and cache.pages >= 1)
    assert "migration_api_cache_pages " in client.get("/metrics").text
    engine_run = insert_run(db, created_at=datetime.now(UTC) + timedelta(days=1))
    assert eventually(lambda: client.get(API, params={"limit": 5}).json()[0]["id"] == engine_run)


class _CountedReads:
    """Wraps `RunsRepository.get_encoded` (the handler's read) to count the requests that reached
    the handler: a run the read cache holds is answered before it (controllers/cached_runs.py)."""

    def __init__(self, monkeypatch: Any) -> None:
        self.calls = 0
        original = RunsRepository.get_encoded

        async def counted(repo: RunsRepository, run_id: uuid.UUID) -> Any:
            self.calls += 1
            return await original(repo, run_id)

        monkeypatch.setattr(RunsRepository, "get_encoded", counted)


def _answer(response: Any) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in {"date", "x-request-id", "server"}}
    return response.status_code, response.content, headers


def test_a_cached_run_is_answered_before_the_handler_exactly_as_the_handler_answers(
    client: TestClient[Any], monkeypatch: Any
) -> None:
    cache = cache_of(client)
    reads = _CountedReads(monkeypatch)
    run = client.post(API, json=run_body()).json()
    url = f"{API}/{run['id']}"
    by_handler = client.get(url)
    assert reads.calls == 1
    tag = by_handler.headers["etag"]
    hits = cache.hits
    from_cache = client.get(url)
    assert reads.calls == 1, "a cached run reached the handler"
    assert cache.hits == hits + 1
    assert _answer(from_cache) == _answer(by_handler)

    # 304 for a matching If-None-Match, as the handler answers it (the cache emptied first)
    not_modified = client.get(url, headers={"If-None-Match": f'"x", W/{tag}'})
    assert reads.calls == 1
    cache.clear()
    handler_304 = client.get(url, headers={"If-None-Match": f'"x", W/{tag}'})
    assert reads.calls == 2
    assert not_modified.status_code == handler_304.status_code == 304
    assert _answer(not_modified) == _answer(handler_304)
    assert client.get(url, headers={"If-None-Match": '"other"'}).content == by_handler.content
    assert client.get(url, headers=[("If-None-Match", '"other"'), ("If-None-Match", tag)]).status_code == 304
    assert reads.calls == 2


def test_the_handler_answers_what_the_cache_does_not_plainly_hold(client: TestClient[Any], monkeypatch: Any) -> None:
    cache_of(client)
    reads = _CountedReads(monkeypatch)
    run = client.post(API, json=run_body()).json()
    url = f"{API}/{run['id']}"
    client.get(url)
    assert reads.calls == 1
    # a query string: the handler's input checks apply (a NUL is refused, whatever the route)
    assert client.get(url, params={"x": "1"}).status_code == 200
    assert client.get(url, params={"x": "a\x00b"}).status_code == 400
    assert reads.calls == 2
    # an If-None-Match longer than its parameter allows: the handler's 400 (schemathesis found the
    # cached answer accepting it)
    too_long = client.get(url, headers={"If-None-Match": "0" * 2001})
    assert too_long.status_code == 400, too_long.text
    assert too_long.json()["extra"][0]["key"] == "if_none_match"
    assert reads.calls == 2
    assert client.get(url, headers={"If-None-Match": "0" * 2000}).status_code == 200
    assert reads.calls == 2
    # not a UUID: the handler's 400; an unknown run: its 404
    assert client.get(f"{API}/not-a-uuid").status_code == 400
    assert client.get(f"{API}/{uuid.uuid4()}").status_code == 404
    assert reads.calls == 3
    # an upper-case id names the same cached run
    assert client.get(url.upper().replace("/API/V1/MIGRATIONS", API)).json()["id"] == run["id"]
    assert reads.calls == 3
