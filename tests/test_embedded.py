"""The embedded PostgreSQL always stops: whatever kills the service's processes (SIGKILL, SIGINT),
no server is left running on the data folder, and a start after a crash adopts the orphan.

Each test starts `python app.py` on a data folder of its own, as `make run` does with `.pgdata/`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from config import PROJECT_DIR
from db.embedded import HANDLES_FILE
from tests.helpers import free_port, run_body

# Real embedded servers started and stopped, with time bounds on each: run alone by `make test`.
pytestmark = pytest.mark.slow


def postgres_on(data_dir: Path) -> list[psutil.Process]:
    """The postmaster processes serving `data_dir` (its children die with it)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and "-D" in cmdline and str(data_dir) in cmdline:
            found.append(proc)
    return found


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


# Every service a test starts, so that a failed test leaks none (data_dir's teardown ends them).
_started: list[subprocess.Popen[str]] = []


class Service:
    """`python app.py` on an embedded data folder, with its own port."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DB_") and k != "DATABASE_URL"}
        env.update(EMBEDDED_PG_DIR=str(data_dir), PORT=str(self.port), LOG_LEVEL="WARNING")
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", *args], cwd=PROJECT_DIR, env=env, stderr=subprocess.PIPE, text=True
        )
        self.base = f"http://127.0.0.1:{self.port}"
        _started.append(self.proc)

    def wait_healthy(self, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = httpx.get(f"{self.base}/health", timeout=2)
                if response.status_code == 200:
                    body: dict[str, object] = response.json()
                    return body
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
            if time.monotonic() > deadline:
                raise AssertionError("the service did not become healthy")
            time.sleep(0.3)

    def tree(self) -> list[psutil.Process]:
        """The service's processes: uvicorn and its workers (not the watchdog a worker started)."""
        parent = psutil.Process(self.proc.pid)
        return [p for p in [parent, *parent.children(recursive=True)] if _is_service(p)]

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.stderr else ""


def _is_service(proc: psutil.Process) -> bool:
    try:
        return "db.embedded" not in proc.cmdline() and proc.name() != "postgres"
    except psutil.Error:  # gone, or a zombie
        return False


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: as root the server runs as another user, which needs to traverse the
    # parent folders, and every pytest session resets /tmp/pytest-of-root to mode 0700.
    parent = Path(tempfile.mkdtemp(prefix="migration-api-embedded-"))
    folder = parent / "pgdata"
    yield folder
    while _started:
        service = _started.pop()
        if service.poll() is None:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(service.pid).children(recursive=True):
                    child.kill()
            service.kill()
            service.wait(timeout=10)
    for proc in postgres_on(folder):  # a failed test must not leak a server either
        proc.kill()
    shutil.rmtree(parent, ignore_errors=True)


def handles(data_dir: Path) -> list[int]:
    path = data_dir / HANDLES_FILE
    return list(json.loads(path.read_text())) if path.exists() else []


def test_two_workers_on_a_fresh_folder_create_the_database_once_and_sigkill_leaves_no_server(
    data_dir: Path,
) -> None:
    service = Service(data_dir, "--workers", "2")
    assert service.wait_healthy()["status"] == "ok"
    # Both workers created or found the database and serve: none failed on a duplicate CREATE DATABASE.
    wait_until(lambda: len(handles(data_dir)) == 2, 20, "both workers hold a handle")
    assert set(handles(data_dir)) <= {p.pid for p in service.tree()}
    assert all(psutil.Process(pid).is_running() for pid in handles(data_dir))
    (postmaster,) = postgres_on(data_dir)

    for proc in service.tree():
        proc.kill()
    service.proc.wait(timeout=10)
    wait_until(lambda: not postmaster.is_running(), 15, "the server stops after every user was SIGKILLed")
    assert postgres_on(data_dir) == []
    assert handles(data_dir) == []
    assert "UniqueViolation" not in service.stderr()


def test_sigint_stops_the_service_and_the_server(data_dir: Path) -> None:
    service = Service(data_dir)
    service.wait_healthy()
    (postmaster,) = postgres_on(data_dir)
    service.proc.send_signal(signal.SIGINT)
    assert service.proc.wait(timeout=20) is not None
    wait_until(lambda: not postmaster.is_running(), 15, "the server stops after Ctrl-C")
    assert handles(data_dir) == []


def test_a_start_after_a_crash_adopts_the_orphan_and_drops_dead_handles(data_dir: Path) -> None:
    first = Service(data_dir)
    first.wait_healthy()
    (postmaster,) = postgres_on(data_dir)
    # A crash of everything but PostgreSQL: the service and the watchdog die without cleaning up.
    watchdog = int((data_dir / ".watchdog.pid").read_text())
    psutil.Process(watchdog).kill()
    for proc in first.tree():
        proc.kill()
    first.proc.wait(timeout=10)
    assert first.proc.pid in handles(data_dir)
    assert postmaster.is_running()

    second = Service(data_dir)
    second.wait_healthy()
    assert [p.pid for p in postgres_on(data_dir)] == [postmaster.pid]  # adopted, not a second server
    assert first.proc.pid not in handles(data_dir)
    second.proc.send_signal(signal.SIGTERM)
    second.proc.wait(timeout=20)
    wait_until(lambda: not postmaster.is_running(), 15, "the adopted server stops with its last user")
    assert handles(data_dir) == []

    # PostgreSQL itself killed: a stale postmaster.pid; the next start starts a new server.
    third = Service(data_dir)
    third.wait_healthy()
    (killed,) = postgres_on(data_dir)
    killed.kill()
    killed.wait(timeout=10)
    third.proc.kill()
    third.proc.wait(timeout=10)
    fourth = Service(data_dir)
    assert fourth.wait_healthy()["status"] == "ok"
    fourth.proc.send_signal(signal.SIGINT)
    fourth.proc.wait(timeout=20)
    wait_until(lambda: postgres_on(data_dir) == [], 15, "the restarted server stops")


def test_two_instances_share_one_embedded_server_until_the_last_one_stops(data_dir: Path) -> None:
    """Two `make run-prod` (2 workers each) on one data folder: one server, one database for both;
    the first instance's exit leaves the second serving, the second's exit stops the server."""
    first = Service(data_dir, "--workers", "2")
    first.wait_healthy()
    second = Service(data_dir, "--workers", "2")
    second.wait_healthy()
    wait_until(lambda: len(handles(data_dir)) == 4, 60, "all four workers hold a handle")
    (postmaster,) = postgres_on(data_dir)

    created = httpx.post(
        f"{first.base}/api/v1/migrations",
        json=run_body(status="running"),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    # The other instance reads the same database (a run written through one is there for the other).
    assert httpx.get(f"{second.base}/api/v1/migrations/{run_id}", timeout=10).status_code == 200

    first.proc.send_signal(signal.SIGINT)
    first.proc.wait(timeout=20)
    wait_until(lambda: len(handles(data_dir)) == 2, 15, "the first instance's handles are dropped")
    time.sleep(1.5)  # three watchdog ticks: the server must stay up for the second instance
    assert postmaster.is_running()
    assert httpx.get(f"{second.base}/api/v1/migrations/{run_id}", timeout=10).status_code == 200

    second.proc.send_signal(signal.SIGINT)
    second.proc.wait(timeout=20)
    wait_until(lambda: not postmaster.is_running(), 15, "the server stops after the last instance")
    assert handles(data_dir) == []
