"""The schema's history and the runner that applies it: SQL files in db/migrations/, applied in order.

Each file `NNNN_name.sql` is one version, never edited once released. Directives in its header:

- `-- history`: versions 1-8, kept as they ran. A database below the latest baseline never runs
  them; tests use them to build a database "as it was" and upgrade it.
- `-- baseline: ...`: brings a database at any earlier version (or none) to this version by
  itself, so a fresh install on a live engine database runs no history.
- `-- no-transaction: ...`: statements run one by one outside a transaction (CREATE INDEX
  CONCURRENTLY); a build that fails leaves an invalid index, which is dropped before the retry.

Transactional files run whole in one transaction with a short `lock_timeout`, retried when a lock
is not granted in time, so no engine statement waits behind them for long. Several instances
starting at once take turns through an advisory lock. A role that may not create objects gets a
warning and the service runs on what exists.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
# Arbitrary but fixed: every instance of this service serialises its schema work on this key.
ADVISORY_LOCK_KEY: Final = 7_362_901_554
VERSION_TABLE: Final = "migration_api_schema_versions"
REQUIRED_TABLES: Final = ("migration_runs", "workflow_states", "workflow_checkpoints")
# How long a transactional migration waits for a lock on an engine table before it gives way.
LOCK_TIMEOUT: Final = "200ms"
LOCK_RETRIES: Final = 150
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_INDEX = re.compile(
    r"CREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+(?P<name>\w+)"
    r"\s+ON\s+(?P<table>\w+)\s+USING\s+(?P<definition>.+)$",
    re.IGNORECASE | re.DOTALL,
)

SELECT_VERSIONS: Final = "SELECT version FROM migration_api_schema_versions"
CREATE_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS migration_api_schema_versions (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)
INSERT_VERSION: Final = (
    "INSERT INTO migration_api_schema_versions (version, name) VALUES (%s, %s) ON CONFLICT (version) DO NOTHING"
)
# An index the engines made under another name serves as well as ours: ours is then not built.
SELECT_EQUIVALENT_INDEX: Final = """
    SELECT 1 FROM pg_index i
     WHERE i.indrelid = to_regclass(%(table)s) AND i.indisvalid AND i.indisunique = %(unique)s
       AND regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') = %(definition)s"""
SELECT_INVALID_INDEX: Final = """
    SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace AND NOT i.indisvalid"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str
    history: bool = False
    baseline: bool = False
    transactional: bool = True

    def statements(self) -> list[str]:
        """A no-transaction file's statements (plain statements, each ending its line with ';')."""
        body = "\n".join(line for line in self.text.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*\n", body + "\n") if s.strip()]


def load_migrations(folder: Path = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise RuntimeError(f"{path.name}: migration files are named NNNN_name.sql")
        text = path.read_text(encoding="utf-8")
        header = [line for line in text.splitlines() if line.startswith("--")]
        migrations.append(
            Migration(
                version=int(match.group(1)),
                name=match.group(2),
                text=text,
                history=any(line.strip() == "-- history" for line in header),
                baseline=any(line.startswith("-- baseline:") for line in header),
                transactional=not any(line.startswith("-- no-transaction:") for line in header),
            )
        )
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must run 1, 2, 3, ... without gaps, got {versions}")
    return tuple(migrations)


MIGRATIONS: Final = load_migrations()
LATEST: Final = MIGRATIONS[-1].version


def plan(applied: Iterable[int], migrations: tuple[Migration, ...] = MIGRATIONS) -> list[Migration]:
    """The migrations a database with `applied` versions needs, in order."""
    current = max(applied, default=0)
    baseline = max((m for m in migrations if m.baseline), key=lambda m: m.version)
    start = baseline.version if current < baseline.version else current + 1
    return [m for m in migrations if m.version >= start and not m.history]


@dataclass
class SchemaReport:
    applied: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    version: int = 0


def _applied_versions(conn: psycopg.Connection[Any]) -> set[int] | None:
    """The versions recorded in our table; None when it cannot be created or read."""
    try:
        with conn.transaction():
            conn.execute(CREATE_VERSION_TABLE)
    except psycopg.errors.InsufficientPrivilege:
        pass
    try:
        with conn.transaction():
            return {r[0] for r in conn.execute(SELECT_VERSIONS).fetchall()}
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
        return None


def _retrying(action: Callable[[], None], what: str) -> None:
    """Run `action` again when a lock was not granted within LOCK_TIMEOUT (an engine held it)."""
    for attempt in range(LOCK_RETRIES):
        try:
            action()
            return
        except psycopg.errors.LockNotAvailable:
            delay = min(0.05 * 2**attempt, 2.0)
            logger.info("%s: an engine holds a lock; retrying in %.2f s", what, delay)
            time.sleep(delay)
    raise RuntimeError(f"{what}: could not take its locks in {LOCK_RETRIES} tries")


def _apply_transactional(conn: psycopg.Connection[Any], migration: Migration, record: bool) -> None:
    def once() -> None:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
            conn.execute(migration.text.encode())
            if record:
                conn.execute(INSERT_VERSION, (migration.version, migration.name))

    _retrying(once, f"schema version {migration.version}")


def _apply_one_by_one(conn: psycopg.Connection[Any], migration: Migration, record: bool) -> None:
    for statement in migration.statements():
        index = _INDEX.match(statement)
        if index is not None:
            equivalent = {
                "table": index["table"],
                "unique": bool(index["unique"]),
                "definition": " ".join(index["definition"].split()),
            }
            if conn.execute(SELECT_EQUIVALENT_INDEX, equivalent).fetchone():
                continue

        def once(statement: str = statement, index: re.Match[str] | None = index) -> None:
            if index is not None and conn.execute(SELECT_INVALID_INDEX, (index["name"],)).fetchone():
                conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(index["name"])))
            conn.execute(statement.encode())

        _retrying(once, f"schema version {migration.version}")
    if record:
        conn.execute(INSERT_VERSION, (migration.version, migration.name))


def apply(conn: psycopg.Connection[Any], migration: Migration, record: bool = True) -> None:
    """Apply one migration on an autocommit connection whose search_path starts with the schema."""
    if migration.transactional:
        _apply_transactional(conn, migration, record)
    else:
        _apply_one_by_one(conn, migration, record)


def connect(url: str, schema: str) -> psycopg.Connection[Any]:
    """An autocommit connection for schema work: search_path = the schema, then public (pg_trgm)."""
    conn = psycopg.connect(url, autocommit=True, application_name="migration-api-schema")
    conn.execute("SET statement_timeout = 0")
    conn.execute(sql.SQL("SELECT set_config('search_path', {}, false)").format(sql.Literal(f"{schema}, public")))
    return conn


def _ensure_namespace(conn: psycopg.Connection[Any], schema: str) -> None:
    exists = conn.execute("SELECT to_regnamespace(%s)", (schema,)).fetchone()
    if exists is None or exists[0] is None:
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        except psycopg.errors.InsufficientPrivilege:
            raise RuntimeError(
                f"schema {schema} does not exist and could not be created (no CREATE privilege)"
            ) from None
    usable = conn.execute("SELECT has_schema_privilege(%s, 'USAGE')", (schema,)).fetchone()
    if not usable or not usable[0]:
        raise RuntimeError(f"schema {schema} is not usable by this database user (no USAGE privilege)")


def pending(url: str, schema: str) -> list[Migration]:
    """What `ensure_schema` would apply now (for `--dry-run`)."""
    with connect(url, schema) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.{VERSION_TABLE}",)).fetchone()
        applied: set[int] = set()
        if exists and exists[0] is not None:
            applied = {r[0] for r in conn.execute(SELECT_VERSIONS).fetchall()}
        return plan(applied)


def _take_schema_lock(conn: psycopg.Connection[Any]) -> None:
    """Wait for our turn without a waiting statement: CREATE INDEX CONCURRENTLY waits for every
    open transaction, so a rival instance blocked in pg_advisory_lock() would deadlock with it."""
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
        time.sleep(0.1)


def ensure_schema(url: str, schema: str, migrations: tuple[Migration, ...] | None = None) -> SchemaReport:
    """Bring `schema` (created if missing and allowed) up to date; see the module doc.

    With `migrations`, apply exactly those in order (tests build old versions this way)."""
    report = SchemaReport()
    with connect(url, schema) as conn:
        _take_schema_lock(conn)
        try:
            _ensure_namespace(conn, schema)
            applied = _applied_versions(conn)
            report.version = max(applied or (), default=0)
            todo = list(migrations) if migrations is not None else plan(applied or ())
            for migration in todo:
                try:
                    apply(conn, migration, record=applied is not None)
                except psycopg.errors.InsufficientPrivilege as exc:
                    logger.warning(
                        "schema version %d (%s) skipped: no privilege (%s); serving the schema as it is",
                        migration.version,
                        migration.name,
                        str(exc).strip(),
                    )
                    report.skipped.append(migration.name)
                    break
                report.applied.append(migration.version)
                report.version = migration.version
            _check_required_tables(conn, schema)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    if report.applied:
        logger.info("schema %s: applied versions %s", schema, report.applied)
    return report


def _check_required_tables(conn: psycopg.Connection[Any], schema: str) -> None:
    for table in REQUIRED_TABLES:
        found = conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))", (schema, table)).fetchone()
        if found is None or found[0] is None:
            raise RuntimeError(
                f"table {schema}.{table} does not exist and could not be created "
                "(does the database user have CREATE on the schema?)"
            )


def repair_schema(url: str, schema: str) -> None:
    """Reapply the baseline and the versions after it (all idempotent), without recording them:
    for the change-log folder, after the service's own objects were dropped by hand."""
    with connect(url, schema) as conn:
        _take_schema_lock(conn)
        try:
            for migration in plan(()):
                apply(conn, migration, record=False)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
