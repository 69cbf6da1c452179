"""Versioned, idempotent schema setup.

Engines create these tables themselves, so every statement here creates only what is missing
(`IF NOT EXISTS`, and an index is skipped when the table already has one on the same columns
under another name). Nothing is dropped or altered. Several instances starting at once take
turns through an advisory lock; a role without the right to create objects gets a warning per
skipped step and the service runs on what exists.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Final

import psycopg
from psycopg import sql

from db.stats_schema import CREATE_TRIGGER_FUNCTIONS, STATS_ROLLUP_STATEMENTS

logger = logging.getLogger(__name__)

# Arbitrary but fixed: every instance of this service serialises its schema work on this key.
ADVISORY_LOCK_KEY: Final = 7_362_901_554
VERSION_TABLE: Final = "migration_api_schema_versions"
REQUIRED_TABLES: Final = ("migration_runs", "workflow_states", "workflow_checkpoints")


@dataclass(frozen=True)
class Index:
    table: str
    name: str
    # What follows USING in pg_get_indexdef, e.g. "btree (status)"; also how we spot equivalents.
    definition: str
    unique: bool = False


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...] = ()
    indexes: tuple[Index, ...] = ()
    after: tuple[str, ...] = field(default=())


BASE_TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS migration_runs (
        id UUID PRIMARY KEY,
        file_path VARCHAR(500) NOT NULL,
        record_type VARCHAR(100) NOT NULL,
        status VARCHAR(50) NOT NULL DEFAULT 'running',
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        completed_at TIMESTAMPTZ,
        total_duration DOUBLE PRECISION,
        success BOOLEAN,
        error_message TEXT)""",
    """CREATE TABLE IF NOT EXISTS workflow_states (
        id UUID PRIMARY KEY,
        run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE,
        step_name VARCHAR(100) NOT NULL,
        state_data JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        step_order INTEGER NOT NULL,
        metadata JSONB)""",
    """CREATE TABLE IF NOT EXISTS workflow_checkpoints (
        id UUID PRIMARY KEY,
        run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE,
        checkpoint_name VARCHAR(100) NOT NULL,
        state_data JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        metadata JSONB)""",
)

# Search (repositories/run_queries.py). The trigram index needs pg_trgm: created where allowed, in
# `public` so that every schema of the database finds it; without it search works, unindexed.
SEARCH_STATEMENTS: Final = (
    """DO $$ BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'pg_trgm unavailable (%), search runs without a trigram index', SQLERRM;
    END $$""",
    """CREATE OR REPLACE FUNCTION migration_api_search_document(
            file_path TEXT, record_type TEXT, status TEXT, error_message TEXT, id UUID)
        RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN file_path || chr(31) || record_type || chr(31) || status || chr(31)
               || coalesce(error_message, '') || chr(31) || id::text""",
    """CREATE OR REPLACE FUNCTION migration_api_file_name(file_path TEXT)
        RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN lower(reverse(split_part(reverse(replace(file_path, '\\', '/')), '/', 1)))""",
    """CREATE INDEX IF NOT EXISTS migration_runs_lower_file_path_idx
        ON migration_runs (lower(file_path) text_pattern_ops)""",
    """CREATE INDEX IF NOT EXISTS migration_runs_file_name_idx
        ON migration_runs (migration_api_file_name(file_path) text_pattern_ops)""",
    """DO $$ DECLARE trgm_schema TEXT; BEGIN
        SELECT extnamespace::regnamespace::text INTO trgm_schema FROM pg_extension WHERE extname = 'pg_trgm';
        IF trgm_schema IS NOT NULL THEN
            EXECUTE format('CREATE INDEX IF NOT EXISTS migration_runs_search_trgm_idx ON migration_runs '
                           'USING gin (migration_api_search_document(file_path, record_type, status, '
                           'error_message, id) %I.gin_trgm_ops)', trgm_schema);
        END IF;
    END $$""",
    # Expression indexes get statistics only from ANALYZE; without them the planner guesses and
    # picks full scans for search terms that match nothing.
    "ANALYZE migration_runs",
)

# Change notices for the read cache: every statement on the three tables sends, at commit, the
# ids of the runs it touched ('*' when too many to list, or on TRUNCATE). Transition tables allow
# one event per trigger, hence three triggers per table; TG_ARGV[0] names the run-id column.
_NOTIFY_TABLES: Final = (("migration_runs", "id"), ("workflow_states", "run_id"), ("workflow_checkpoints", "run_id"))
NOTIFY_STATEMENTS: Final = (
    """CREATE OR REPLACE FUNCTION migration_api_send_run_notice(ids TEXT) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF ids IS NOT NULL THEN
                PERFORM pg_notify('migration_api_runs', CASE WHEN length(ids) > 7900 THEN '*' ELSE ids END);
            END IF;
        END $$""",
    """CREATE OR REPLACE FUNCTION migration_api_notice_new() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE ids TEXT;
        BEGIN
            EXECUTE format('SELECT string_agg(DISTINCT %I::text, '','') FROM new_rows', TG_ARGV[0]) INTO ids;
            PERFORM migration_api_send_run_notice(ids);
            RETURN NULL;
        END $$""",
    """CREATE OR REPLACE FUNCTION migration_api_notice_old() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE ids TEXT;
        BEGIN
            EXECUTE format('SELECT string_agg(DISTINCT %I::text, '','') FROM old_rows', TG_ARGV[0]) INTO ids;
            PERFORM migration_api_send_run_notice(ids);
            RETURN NULL;
        END $$""",
    """CREATE OR REPLACE FUNCTION migration_api_notice_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE ids TEXT;
        BEGIN
            EXECUTE format('SELECT string_agg(DISTINCT x::text, '','') FROM '
                           '(SELECT %1$I AS x FROM new_rows UNION SELECT %1$I FROM old_rows) AS touched',
                           TG_ARGV[0]) INTO ids;
            PERFORM migration_api_send_run_notice(ids);
            RETURN NULL;
        END $$""",
    """CREATE OR REPLACE FUNCTION migration_api_notice_all() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('migration_api_runs', '*');
            RETURN NULL;
        END $$""",
    *(
        statement
        for table, column in _NOTIFY_TABLES
        for statement in (
            f"DROP TRIGGER IF EXISTS migration_api_notice_insert ON {table}",
            f"""CREATE TRIGGER migration_api_notice_insert AFTER INSERT ON {table}
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_new('{column}')""",
            f"DROP TRIGGER IF EXISTS migration_api_notice_update ON {table}",
            f"""CREATE TRIGGER migration_api_notice_update AFTER UPDATE ON {table}
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_changed('{column}')""",
            f"DROP TRIGGER IF EXISTS migration_api_notice_delete ON {table}",
            f"""CREATE TRIGGER migration_api_notice_delete AFTER DELETE ON {table}
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
                EXECUTE FUNCTION migration_api_notice_old('{column}')""",
            f"DROP TRIGGER IF EXISTS migration_api_notice_truncate ON {table}",
            f"""CREATE TRIGGER migration_api_notice_truncate AFTER TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION migration_api_notice_all()""",
        )
    ),
)

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "engine tables and their indexes",
        statements=BASE_TABLES,
        indexes=(
            Index("migration_runs", "migration_runs_status_idx", "btree (status)"),
            Index("migration_runs", "migration_runs_created_at_idx", "btree (created_at)"),
            Index("migration_runs", "migration_runs_file_path_idx", "btree (file_path)"),
            Index("migration_runs", "migration_runs_record_type_idx", "btree (record_type)"),
            Index("workflow_states", "workflow_states_run_id_idx", "btree (run_id)"),
            Index("workflow_checkpoints", "workflow_checkpoints_run_id_idx", "btree (run_id)"),
        ),
    ),
    Migration(
        2,
        "ordered-read indexes: newest first with a stable tiebreak, steps by order",
        indexes=(
            Index("migration_runs", "migration_runs_created_at_id_idx", "btree (created_at, id)"),
            Index("migration_runs", "migration_runs_status_created_at_id_idx", "btree (status, created_at, id)"),
            Index(
                "migration_runs",
                "migration_runs_record_type_created_at_id_idx",
                "btree (record_type, created_at, id)",
            ),
            Index("workflow_states", "workflow_states_run_id_step_order_idx", "btree (run_id, step_order)"),
            Index(
                "workflow_checkpoints",
                "workflow_checkpoints_run_id_created_at_idx",
                "btree (run_id, created_at)",
            ),
        ),
    ),
    Migration(
        3,
        "idempotency keys: the first response to each keyed POST, until it expires",
        statements=(
            """CREATE TABLE IF NOT EXISTS migration_api_idempotency_keys (
                key TEXT NOT NULL,
                scope TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                status_code INTEGER NOT NULL,
                response_body BYTEA NOT NULL,
                headers JSONB NOT NULL DEFAULT '{}',
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                expires_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (key, scope))""",
        ),
        indexes=(
            Index(
                "migration_api_idempotency_keys",
                "migration_api_idempotency_keys_expires_at_idx",
                "btree (expires_at)",
            ),
        ),
    ),
    Migration(
        4,
        "search and sort: trigram index over the searched fields, file-name and id prefixes, sort keys",
        statements=SEARCH_STATEMENTS,
        indexes=(
            Index("migration_runs", "migration_runs_updated_at_id_idx", "btree (updated_at, id)"),
            Index("migration_runs", "migration_runs_completed_at_id_idx", "btree (completed_at, id)"),
            Index("migration_runs", "migration_runs_total_duration_id_idx", "btree (total_duration, id)"),
        ),
    ),
    Migration(
        5,
        "statistics roll-ups kept by triggers on migration_runs, error fingerprints, indexes for the now-figures",
        statements=STATS_ROLLUP_STATEMENTS,
    ),
    Migration(
        6,
        "change notices: the ids of the runs each statement touched, for the read cache (db/run_cache.py)",
        statements=NOTIFY_STATEMENTS,
    ),
    Migration(
        7,
        "sorting one status by duration (failed runs, slowest first) without scanning unfinished runs",
        indexes=(
            Index(
                "migration_runs",
                "migration_runs_status_total_duration_id_idx",
                "btree (status, total_duration, id)",
            ),
        ),
    ),
    Migration(
        8,
        "roll-up triggers run only the statements a write can change (cheaper engine writes)",
        # The same functions as version 5 creates today; replaced in place, the triggers stay.
        statements=CREATE_TRIGGER_FUNCTIONS,
    ),
)


@dataclass
class SchemaReport:
    applied: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    version: int = 0


def _has_equivalent_index(conn: psycopg.Connection, index: Index) -> bool:
    row = conn.execute(
        """SELECT 1 FROM pg_index i
            WHERE i.indrelid = to_regclass(%(table)s)
              AND i.indisvalid
              AND i.indisunique = %(unique)s
              AND regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') = %(definition)s""",
        {"table": index.table, "unique": index.unique, "definition": index.definition},
    ).fetchone()
    return row is not None


def _create_index(conn: psycopg.Connection, index: Index) -> None:
    if _has_equivalent_index(conn, index):
        return
    method, columns = index.definition.split(" ", 1)
    if not re.fullmatch(r"\w+", method) or not re.fullmatch(r"\([\w ,\.\(\)]+\)", columns):
        raise ValueError(f"unexpected index definition {index.definition!r}")
    # Definitions are constants of this module, never user input.
    conn.execute(
        sql.SQL("CREATE {unique} INDEX IF NOT EXISTS {name} ON {table} USING {definition}").format(
            unique=sql.SQL("UNIQUE" if index.unique else ""),
            name=sql.Identifier(index.name),
            table=sql.Identifier(index.table),
            definition=sql.SQL(index.definition),
        )
    )


def _applied_versions(conn: psycopg.Connection) -> set[int] | None:
    """The versions recorded in our table; None when it cannot be created or read."""
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                ).format(sql.Identifier(VERSION_TABLE))
            )
    except psycopg.errors.InsufficientPrivilege:
        pass
    try:
        with conn.transaction():
            rows = conn.execute(sql.SQL("SELECT version FROM {}").format(sql.Identifier(VERSION_TABLE)))
            return {r[0] for r in rows.fetchall()}
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
        return None


def ensure_schema(url: str, schema: str, migrations: tuple[Migration, ...] = MIGRATIONS) -> SchemaReport:
    """Apply the missing migrations to `schema` (created if missing and allowed); see module doc."""
    report = SchemaReport()
    with psycopg.connect(url, autocommit=True, application_name="migration-api-schema") as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
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
            conn.execute(
                sql.SQL("SELECT set_config('search_path', {}, false)").format(sql.Literal(f"{schema}, public"))
            )
            applied = _applied_versions(conn)
            for migration in sorted(migrations, key=lambda m: m.version):
                if applied is not None and migration.version in applied:
                    report.version = migration.version
                    continue
                try:
                    with conn.transaction():
                        for statement in migration.statements:
                            conn.execute(statement)
                        for index in migration.indexes:
                            _create_index(conn, index)
                        if applied is not None:
                            conn.execute(
                                sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(
                                    sql.Identifier(VERSION_TABLE)
                                ),
                                (migration.version, migration.name),
                            )
                except psycopg.errors.InsufficientPrivilege as exc:
                    logger.warning(
                        "schema step %d (%s) skipped: no privilege (%s); serving the schema as it is",
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


def _check_required_tables(conn: psycopg.Connection, schema: str) -> None:
    for table in REQUIRED_TABLES:
        found = conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))", (schema, table)).fetchone()
        if found is None or found[0] is None:
            raise RuntimeError(
                f"table {schema}.{table} does not exist and could not be created "
                "(does the database user have CREATE on the schema?)"
            )
