"""`python -m db.uninstall [--dry-run]`: remove the service's objects from the configured schema.

Runs db/uninstall.sql: the service's triggers on the engines' tables, the indexes it added to them,
its functions and its `migration_api_*` tables. The engines' tables, their rows and their own
indexes stay; so does the pg_trgm extension. Index drops run CONCURRENTLY, outside a transaction;
every other statement runs in a short transaction with `lock_timeout` and is retried when an
engine holds a lock, as db/schema.py does for migrations, so engines keep writing meanwhile.

Stop every instance of the service first: a running one finds its tables gone and reinstalls them
(its change-log folder repairs the schema), and one that starts later installs again
(`MIGRATE_ON_START`). `--dry-run` prints the SQL and connects to nothing.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from config import ConfigError, load_settings
from db.schema import ADVISORY_LOCK_KEY, LOCK_TIMEOUT, Migration, _retrying
from db.target import database_url

logger = logging.getLogger(__name__)

UNINSTALL_FILE: Final = Path(__file__).resolve().with_name("uninstall.sql")
# How long to wait for the schema's advisory lock (another instance migrating or repairing).
LOCK_WAIT_SECONDS: Final = 600.0
_CONCURRENTLY = re.compile(r"^\s*DROP\s+INDEX\s+CONCURRENTLY\b", re.IGNORECASE)
# Connections of a running service (db/pool.py, changelog/folder.py, cache/): see the module doc.
SELECT_SERVICE_CONNECTIONS: Final = """
    SELECT count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND application_name IN ('migration-api', 'migration-api-folder', 'migration-api-cache')"""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def uninstall_statements(path: Path = UNINSTALL_FILE) -> list[str]:
    """The statements of db/uninstall.sql, in order (split as db/schema.py splits a migration)."""
    return Migration(
        version=0, name="uninstall", text=path.read_text(encoding="utf-8"), transactional=False
    ).statements()


def is_concurrent(statement: str) -> bool:
    """Whether `statement` must run alone, outside a transaction."""
    return _CONCURRENTLY.match(statement) is not None


def render(schema: str, statements: list[str] | None = None) -> str:
    """The SQL `uninstall` runs, as text (for `--dry-run`)."""
    lines = [
        f"-- Uninstall of the service's objects from schema {schema} (db/uninstall.sql).",
        "-- DROP INDEX CONCURRENTLY runs outside a transaction; every other statement in its own",
        f"-- transaction with SET LOCAL lock_timeout = '{LOCK_TIMEOUT}', retried while an engine holds a lock.",
        f"SET search_path = {quote_ident(schema)};",
    ]
    lines += [f"{s};" for s in (statements if statements is not None else uninstall_statements())]
    return "\n".join(lines) + "\n"


@dataclass
class UninstallReport:
    executed: int = 0


def _take_lock(conn: psycopg.Connection[Any]) -> None:
    """The schema's advisory lock, polled: a session waiting inside pg_advisory_lock() holds a
    snapshot, and a CREATE INDEX CONCURRENTLY of the lock's holder would wait for it (deadlock)."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()
        if row and row[0]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"another instance held the schema lock for {LOCK_WAIT_SECONDS:g} s")
        time.sleep(0.2)


def uninstall(url: str, schema: str) -> UninstallReport:
    """Drop the service's objects from `schema` (see db/uninstall.sql); idempotent."""
    report = UninstallReport()
    statements = uninstall_statements()
    with psycopg.connect(url, autocommit=True, application_name="migration-api-uninstall") as conn:
        exists = conn.execute("SELECT to_regnamespace(%s)", (schema,)).fetchone()
        if exists is None or exists[0] is None:
            raise RuntimeError(f"schema {schema} does not exist")
        row = conn.execute(SELECT_SERVICE_CONNECTIONS).fetchone()
        if row and row[0]:
            logger.warning(
                "%d connections of the service are open on this database (for this schema or another): "
                "an instance serving schema %s reinstalls what this removes; stop it first",
                row[0],
                schema,
            )
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET lock_timeout = 0")
        # The schema alone: a name found in no schema of ours must never resolve to one in public.
        conn.execute("SELECT set_config('search_path', quote_ident(%s), false)", (schema,))
        _take_lock(conn)
        try:
            for statement in statements:
                if is_concurrent(statement):

                    def once(statement: str = statement) -> None:
                        conn.execute(statement.encode())

                else:

                    def once(statement: str = statement) -> None:
                        with conn.transaction():
                            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
                            conn.execute(statement.encode())

                _retrying(once, "uninstall")
                report.executed += 1
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    logger.info("schema %s: the service's objects removed (%d statements)", schema, report.executed)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.uninstall",
        description="Remove the service's triggers, indexes, functions and tables from the configured schema "
        "(never the engines' tables or rows). Stop the service first.",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the SQL and change nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        sys.stdout.write(render(settings.db_schema))
        return 0
    try:
        with database_url(settings) as url:
            report = uninstall(url, settings.db_schema)
    except (RuntimeError, psycopg.Error) as exc:
        # Statements are idempotent: once the cause is fixed, running it again finishes the job.
        print(f"uninstall failed: {exc}", file=sys.stderr)
        return 1
    print(f"schema {settings.db_schema}: the service's objects removed ({report.executed} statements); pg_trgm kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
