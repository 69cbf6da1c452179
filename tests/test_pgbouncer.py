"""The service behind PgBouncer in transaction pooling mode (Debian's `pgbouncer`, started here).

In that mode consecutive statements of one client may run on different server connections, so
server-side prepared statements and session settings break (SQLSTATE 42P05 / 26000). With
`DB_POOLER=transaction` the pool prepares nothing and the pooler's database entry sets the search
path; LISTEN, advisory locks and migrations use `DATABASE_DIRECT_URL`."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from config import PROJECT_DIR, Settings
from tests.helpers import free_port, run_body, serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # 1,020 requests through the pooler

API = "/api/v1/migrations"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def start_pgbouncer(server_url: str, connect_query: str | None) -> tuple[str, subprocess.Popen[bytes], Path]:
    """A PgBouncer in transaction mode in front of `server_url`'s database; returns its URL."""
    if not Path(PGBOUNCER).exists():
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; .ci/run installs it)")
    server = conninfo_to_dict(server_url)
    folder = Path(tempfile.mkdtemp(prefix="migration-api-pgbouncer-"))
    folder.chmod(0o777)
    port = free_port()
    target = " ".join(
        f"{key}={server[key]}" for key in ("host", "port", "dbname", "user", "password") if server.get(key)
    )
    if connect_query:
        target += f" connect_query='{connect_query}'"
    (folder / "users.txt").write_text(f'"{server.get("user", "postgres")}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\nmig = {target}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    # PgBouncer refuses to run as root; -u drops to the owner of the server's socket folder.
    owner = ["-u", "nobody"] if os.geteuid() == 0 else []
    if os.geteuid() == 0 and str(server.get("host", "")).startswith("/"):
        owner = ["-u", Path(str(server["host"])).owner()]
    proc = subprocess.Popen([PGBOUNCER, *owner, str(folder / "pgbouncer.ini")])
    url = make_conninfo(user=server.get("user", "postgres"), host="127.0.0.1", port=str(port), dbname="mig")
    deadline = time.monotonic() + 10
    while True:
        try:
            psycopg.connect(url, connect_timeout=1).close()
            return url, proc, folder
        except psycopg.OperationalError:
            assert proc.poll() is None, (folder / "pgbouncer.log").read_text()
            assert time.monotonic() < deadline, "pgbouncer did not start"
            time.sleep(0.1)


@pytest.fixture
def pgbouncer(settings: Settings, _schema_ready: None) -> Iterator[str]:
    assert settings.database_url is not None
    url, proc, folder = start_pgbouncer(settings.database_url, f"SET search_path = {settings.db_schema}, public")
    yield url
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


async def mixed_requests(base: str, count: int) -> Counter[str]:
    """`count` requests of every kind, 16 at a time; returns 'METHOD route status' counts."""
    outcomes: Counter[str] = Counter()
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def one(i: int) -> None:
            async with limit:
                created = await http.post(API, json=run_body(status="running", record_type="claim"))
                outcomes[f"POST run {created.status_code}"] += 1
                run_id = created.json()["id"]
                steps = [
                    ("GET", f"{API}/{run_id}", None),
                    ("POST", f"{API}/{run_id}/states", {"step_name": "read", "state_data": {"i": i}}),
                    ("POST", f"{API}/{run_id}/checkpoints", {"checkpoint_name": "c", "state_data": {}}),
                    ("GET", f"{API}/{run_id}/states", None),
                    ("GET", f"{API}?limit=5", None),
                    ("GET", f"{API}/search?q=claim&limit=5", None),
                    ("GET", f"{API}/stats", None),
                    ("PATCH", f"{API}/{run_id}", {"status": "completed"}),
                    ("GET", f"{API}/{run_id}/timeline", None),
                ]
                for method, path, body in steps:
                    reply = await http.request(method, path, json=body)
                    outcomes[f"{method} {path.split('?')[0].replace(run_id, '{id}')} {reply.status_code}"] += 1

        await asyncio.gather(*(one(i) for i in range(count)))
    return outcomes


def test_the_service_works_behind_pgbouncer_in_transaction_mode(
    settings: Settings, pgbouncer: str, db: psycopg.Connection[Any]
) -> None:
    assert settings.database_url is not None
    env = {"DATABASE_DIRECT_URL": settings.database_url, "DB_POOLER": "transaction"}
    with serve(pgbouncer, settings.db_schema, env) as (_, base):
        # 1,020 requests, several seconds, through 4 server connections: queueing in the pooler is
        # no outage (the heartbeat asks the server directly), so every answer is a success.
        outcomes = asyncio.run(mixed_requests(base, 102))
        # An engine's direct write reaches statistics (the folder, on the direct URL, folds it).
        db.execute(
            "INSERT INTO migration_runs (id, file_path, record_type, status) "
            "VALUES (gen_random_uuid(), 'x', 'y', 'failed')"
        )
        deadline = time.monotonic() + 2
        while httpx.get(f"{base}{API}/stats").json()["status_breakdown"].get("failed") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.get(f"{base}/health").json()["events"]["listening"] is True
        assert httpx.get(f"{base}/health/ready").status_code == 200
    failures = {k: n for k, n in outcomes.items() if not k.endswith((" 200", " 201"))}
    assert failures == {}
    assert sum(outcomes.values()) == 1020


def test_without_the_search_path_from_the_pooler_the_service_refuses_to_start(settings: Settings) -> None:
    assert settings.database_url is not None
    url, proc, folder = start_pgbouncer(settings.database_url, connect_query=None)
    try:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DATABASE_DIRECT_URL": settings.database_url,
            "DB_POOLER": "transaction",
            "DB_SCHEMA": settings.db_schema,
        }
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "uvicorn", "app:app", "--port", str(free_port())],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert time.monotonic() - started < 30
        assert f"not DB_SCHEMA '{settings.db_schema}'" in done.stderr
        assert "connect_query" in done.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
