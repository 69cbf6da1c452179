"""The schema's life on an engine database: an upgrade ends where a fresh install does, an uninstall
leaves the engines' schema as it found it, dry runs change nothing, engines need no grant on the
service's objects whatever their search_path, and the service recovers from its own tables being
dropped by hand.

Every test works in schemas of its own (dropped at the end) and undoes the server-wide changes it
makes (roles and their grants)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

from app import create_app
from config import PROJECT_DIR
from db.schema import LATEST, MIGRATIONS, ensure_schema
from db.uninstall import uninstall
from tests.helpers import ENGINE_SCHEMA, connect_as, login_role, make_settings

# Time bounds (freshness, an engine never held up): run alone by `make test`, never beside other tests.
pytestmark = pytest.mark.timing

API = "/api/v1/migrations"
ENGINE_TABLES = ("migration_runs", "workflow_states", "workflow_checkpoints")

# Everything a schema holds, one row per object: (kind, name, definition). Dumped with
# search_path = pg_catalog, so that every name in a definition is schema-qualified; the schema's
# name (also in the search_path that `SET search_path FROM CURRENT` pins) is then replaced.
CATALOG = """
SELECT 'relation', c.relname,
       concat_ws(' ', c.relkind, c.relpersistence, c.reloptions::text, 'acl=' || c.relacl::text)
  FROM pg_class c
 WHERE c.relnamespace = %(ns)s::regnamespace AND c.relkind <> 'i'
UNION ALL
SELECT 'column', c.relname || '.' || a.attname,
       concat_ws(' ', '#' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
                 format_type(a.atttypid, a.atttypmod), 'not_null=' || a.attnotnull,
                 'default=' || pg_get_expr(d.adbin, d.adrelid), 'identity=' || a.attidentity::text,
                 'generated=' || a.attgenerated::text, 'collation=' || a.attcollation::regcollation::text,
                 'acl=' || a.attacl::text)
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = %(ns)s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index', ci.relname,
       concat_ws(' ', pg_get_indexdef(i.indexrelid), 'valid=' || i.indisvalid, 'ready=' || i.indisready)
  FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
 WHERE ci.relnamespace = %(ns)s::regnamespace
UNION ALL
SELECT 'constraint', c.relname || '.' || con.conname,
       concat_ws(' ', con.contype, pg_get_constraintdef(con.oid), 'deferrable=' || con.condeferrable)
  FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
 WHERE con.connamespace = %(ns)s::regnamespace AND con.contype <> 'n'  -- PostgreSQL 18's NOT NULL: attnotnull
UNION ALL
SELECT 'trigger', c.relname || '.' || t.tgname,
       concat_ws(' ', pg_get_triggerdef(t.oid), 'enabled=' || t.tgenabled::text)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = %(ns)s::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       concat_ws(' ', pg_get_functiondef(p.oid), 'config=' || p.proconfig::text, 'security_definer=' || p.prosecdef,
                 'volatility=' || p.provolatile::text, 'parallel=' || p.proparallel::text, 'strict=' || p.proisstrict,
                 'leakproof=' || p.proleakproof, 'acl=' || p.proacl::text)
  FROM pg_proc p
 WHERE p.pronamespace = %(ns)s::regnamespace
UNION ALL
SELECT 'type', t.typname, t.typtype::text
  FROM pg_type t
 WHERE t.typnamespace = %(ns)s::regnamespace
UNION ALL
SELECT 'rule', c.relname || '.' || r.rulename, pg_get_ruledef(r.oid)
  FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
 WHERE c.relnamespace = %(ns)s::regnamespace AND c.relkind <> 'v'
UNION ALL
SELECT 'policy', c.relname || '.' || p.polname, p.polcmd::text || coalesce(pg_get_expr(p.polqual, p.polrelid), '')
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = %(ns)s::regnamespace
"""

Catalog = dict[tuple[str, str], str]


def catalog(database_url: str, schema: str) -> Catalog:
    """The schema's objects, keyed by (kind, name), with the schema's own name replaced."""
    with psycopg.connect(database_url, autocommit=True, options="-c search_path=pg_catalog") as conn:
        rows = conn.execute(CATALOG, {"ns": schema}).fetchall()
    dump = {(kind, name): definition.replace(schema, "<schema>") for kind, name, definition in rows}
    assert len(dump) == len(rows), "two objects of one kind under one name"
    return dump


def catalog_diff(a: Catalog, b: Catalog, names: tuple[str, str] = ("first", "second")) -> str:
    """A readable account of how two dumps differ ('' when they do not)."""
    lines = [f"only in {names[0]}: {k[0]} {k[1]}: {a[k]}" for k in sorted(a.keys() - b.keys())]
    lines += [f"only in {names[1]}: {k[0]} {k[1]}: {b[k]}" for k in sorted(b.keys() - a.keys())]
    lines += [
        f"differs: {k[0]} {k[1]}:\n    {names[0]}: {a[k]}\n    {names[1]}: {b[k]}"
        for k in sorted(a.keys() & b.keys())
        if a[k] != b[k]
    ]
    return "\n".join(lines)


def engine_rows(database_url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the engines' tables, in id order."""
    with psycopg.connect(database_url) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {}.{} ORDER BY id").format(sql.Identifier(schema), sql.Identifier(table))
            ).fetchall()
            for table in ENGINE_TABLES
        }


def create_engine_schema(database_url: str, schema: str) -> None:
    """The engines' tables as an engine creates them (../shared/perf/schema.sql) in `schema`."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        conn.execute(ENGINE_SCHEMA)


@pytest.fixture
def new_schema(database_url: str) -> Iterator[Callable[[str], str]]:
    """new_schema(prefix) -> a unique schema name; every schema named so is dropped at the end."""
    names: list[str] = []

    def make(prefix: str) -> str:
        names.append(f"{prefix}_{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield make
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def engine_writes(conn: psycopg.Connection[Any], schema: str | None = None) -> uuid.UUID:
    """An engine's work on its three tables: runs inserted (alone and several in one statement),
    updated and deleted, states and checkpoints inserted, updated and deleted. Table names are
    qualified with `schema` when given. Returns a run that exists at the end, finished."""

    def t(table: str) -> sql.Composable:
        return sql.Identifier(schema, table) if schema else sql.Identifier(table)

    kept, dropped = uuid.uuid4(), uuid.uuid4()
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (id, file_path, record_type, status) VALUES (%s, 'in/kept.csv', 'claim', 'running')"
        ).format(t("migration_runs")),
        (kept,),
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (id, file_path, record_type, status) "
            "VALUES (%s, 'in/dropped.csv', 'absence', 'running'), "
            "(gen_random_uuid(), 'in/other.csv', 'claim', 'failed')"
        ).format(t("migration_runs")),
        (dropped,),
    )
    for run in (kept, dropped):
        for order, step in enumerate(("read", "transform"), 1):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (id, run_id, step_name, state_data, step_order) "
                    "VALUES (gen_random_uuid(), %s, %s, %s, %s)"
                ).format(t("workflow_states")),
                (run, step, '{"records": 10}', order),
            )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (id, run_id, checkpoint_name, state_data) VALUES (gen_random_uuid(), %s, 'cp', %s)"
            ).format(t("workflow_checkpoints")),
            (run, '{"offset": 10}'),
        )
    conn.execute(
        sql.SQL("UPDATE {} SET state_data = %s WHERE run_id = %s AND step_order = 2").format(t("workflow_states")),
        ('{"records": 11}', kept),
    )
    conn.execute(sql.SQL("DELETE FROM {} WHERE run_id = %s").format(t("workflow_checkpoints")), (dropped,))
    conn.execute(sql.SQL("DELETE FROM {} WHERE run_id = %s").format(t("workflow_states")), (dropped,))
    conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(t("migration_runs")), (dropped,))
    conn.execute(
        sql.SQL(
            "UPDATE {} SET status = 'completed', success = true, completed_at = now(), updated_at = now(), "
            "total_duration = 12.5 WHERE id = %s"
        ).format(t("migration_runs")),
        (kept,),
    )
    return kept


def warnings_of(conn: psycopg.Connection[Any]) -> list[str]:
    """A list that collects the WARNINGs the server sends `conn` from now on."""
    seen: list[str] = []
    conn.add_notice_handler(
        lambda d: seen.append(d.message_primary or "") if d.severity_nonlocalized == "WARNING" else None
    )
    return seen


def status_counts(database_url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT status, count(*) FROM {} GROUP BY status").format(sql.Identifier(schema, "migration_runs"))
        ).fetchall()
    return {status: int(n) for status, n in rows}


def poll(check: Callable[[], str | None], seconds: float, interval: float = 0.05) -> str | None:
    """Call `check` (None = satisfied, else what is still wrong) until it is satisfied or time is up;
    return the last complaint."""
    deadline = time.monotonic() + seconds
    while True:
        complaint = check()
        if complaint is None or time.monotonic() > deadline:
            return complaint
        time.sleep(interval)


def stats_agree(client: TestClient[Any], database_url: str, schema: str) -> Callable[[], str | None]:
    """A `poll` check: /stats counts what the base table holds, by status."""

    def check() -> str | None:
        want = status_counts(database_url, schema)
        response = client.get(f"{API}/stats")
        if response.status_code != 200:
            return f"/stats answered {response.status_code}: {response.text[:300]}"
        body = response.json()
        got = (body["total_migrations"], body["status_breakdown"])
        if got != (sum(want.values()), want):
            return f"/stats says {got}, the table holds {(sum(want.values()), want)}"
        return None

    return check


# --- a. an upgrade ends where a fresh install does -------------------------------------------


def test_an_upgrade_from_the_history_ends_where_a_fresh_install_does(
    database_url: str, new_schema: Callable[[str], str]
) -> None:
    upgraded, fresh = new_schema("upgraded"), new_schema("fresh")
    history = tuple(m for m in MIGRATIONS if m.history)
    assert [m.version for m in history] == list(range(1, 9))
    assert ensure_schema(database_url, upgraded, migrations=history).version == 8
    assert ensure_schema(database_url, upgraded).version == LATEST
    assert ensure_schema(database_url, fresh).version == LATEST
    a, b = catalog(database_url, upgraded), catalog(database_url, fresh)
    assert any(kind == "trigger" for kind, _ in b)
    assert a == b, "the upgraded schema differs from a fresh install:\n" + catalog_diff(a, b, ("upgraded", "fresh"))


# --- b. an uninstall leaves the engines' schema as it was -------------------------------------


@pytest.mark.parametrize("installed", ["latest", "version 8"])
def test_uninstall_restores_the_engines_schema(
    database_url: str, new_schema: Callable[[str], str], installed: str
) -> None:
    schema, neighbour = new_schema("uninstall"), new_schema("neighbour")
    create_engine_schema(database_url, schema)
    ensure_schema(database_url, neighbour)  # another installation in the same database
    neighbour_catalog = catalog(database_url, neighbour)
    with psycopg.connect(database_url, autocommit=True, options=f"-c search_path={schema}") as engine:
        engine.execute(
            "INSERT INTO migration_runs (id, file_path, record_type, status, total_duration, success, error_message) "
            "SELECT gen_random_uuid(), 'in/f_' || i || '.csv', 'claim', "
            "CASE WHEN i % 3 = 0 THEN 'failed' ELSE 'completed' END, i * 1.5, i % 3 <> 0, "
            "CASE WHEN i % 3 = 0 THEN 'Timeout after ' || i || ' s' END FROM generate_series(1, 20) i"
        )
        engine.execute(
            "INSERT INTO workflow_states (id, run_id, step_name, state_data, step_order) "
            "SELECT gen_random_uuid(), id, 'read', '{}', 1 FROM migration_runs"
        )
    before = catalog(database_url, schema)

    history = tuple(m for m in MIGRATIONS if m.history)
    report = ensure_schema(database_url, schema, migrations=history if installed == "version 8" else None)
    assert report.version == (8 if installed == "version 8" else LATEST)
    installed_catalog = catalog(database_url, schema)
    assert any(kind == "trigger" for kind, _ in installed_catalog)
    with psycopg.connect(database_url, autocommit=True, options=f"-c search_path={schema}") as engine:
        engine_writes(engine)
        if installed == "latest":
            logged = engine.execute("SELECT count(*) FROM migration_api_changes").fetchone()
            assert logged is not None
            assert logged[0] > 0, "the change log is empty: the uninstall would not be tested with rows in it"
    rows = engine_rows(database_url, schema)

    uninstall(database_url, schema)
    after = catalog(database_url, schema)
    assert after == before, "the uninstall did not restore the engines' schema:\n" + catalog_diff(
        before, after, ("before the install", "after the uninstall")
    )
    assert engine_rows(database_url, schema) == rows
    assert catalog(database_url, neighbour) == neighbour_catalog
    uninstall(database_url, schema)  # idempotent
    assert catalog(database_url, schema) == before
    with psycopg.connect(database_url) as conn:  # left installed on purpose (other things may use it)
        trgm = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'").fetchone()
        assert trgm is not None
        assert trgm[0] == 1


# --- c. dry runs change nothing ----------------------------------------------------------------


def run_module(database_url: str, schema: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "DB_SCHEMA": schema, "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_dry_runs_print_the_sql_and_change_nothing(database_url: str, new_schema: Callable[[str], str]) -> None:
    schema = new_schema("dry_run")
    create_engine_schema(database_url, schema)
    bare = catalog(database_url, schema)
    out = run_module(database_url, schema, "db.migrate", "--dry-run")
    for expected in ("CREATE OR REPLACE TRIGGER migration_api_log_insert", "CREATE INDEX CONCURRENTLY", "version 10"):
        assert expected in out
    assert catalog(database_url, schema) == bare, catalog_diff(bare, catalog(database_url, schema))

    ensure_schema(database_url, schema)
    installed = catalog(database_url, schema)
    assert "nothing to apply" in run_module(database_url, schema, "db.migrate", "--dry-run")
    out = run_module(database_url, schema, "db.uninstall", "--dry-run")
    for expected in (
        "DROP TRIGGER IF EXISTS migration_api_log_insert ON migration_runs;",
        "DROP INDEX CONCURRENTLY IF EXISTS migration_runs_file_name_idx;",
        "DROP TABLE IF EXISTS migration_api_changes;",
        "DROP FUNCTION IF EXISTS migration_api_file_name(text);",
    ):
        assert expected in out
    assert "migration_runs_status_idx" not in out  # the engines' own index
    assert catalog(database_url, schema) == installed, catalog_diff(installed, catalog(database_url, schema))


# --- d, e. an engine role with no grant on the service's objects, whatever its search_path ------


def grant_engine(database_url: str, role: str, schema: str) -> None:
    """What an engine's role has: USAGE on the schema, and rights on the engines' three tables only."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(role)))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {} TO {}").format(
                sql.SQL(", ").join(sql.Identifier(schema, t) for t in ENGINE_TABLES), sql.Identifier(role)
            )
        )
        granted = conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r' "
            "AND (has_table_privilege(%s, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))",
            (schema, role),
        ).fetchall()
    assert sorted(r[0] for r in granted) == sorted(ENGINE_TABLES)


@pytest.mark.parametrize(
    "mode",
    [
        "unqualified, search_path = the schema",
        "schema-qualified, search_path = pg_catalog",
        "unqualified, the role's search_path = a migr_ schema",
    ],
)
def test_an_engine_role_without_grants_writes_and_the_service_sees_it(
    database_url: str, new_schema: Callable[[str], str], mode: str
) -> None:
    schema = new_schema("migr" if "migr_" in mode else "engine_role")
    create_engine_schema(database_url, schema)
    with (
        login_role(database_url, "engine") as role,
        TestClient(app=create_app(make_settings(database_url, schema))) as client,
    ):
        assert client.get("/health").json()["database"]["schema_version"] == LATEST
        grant_engine(database_url, role, schema)
        if mode.startswith("schema-qualified"):
            search_path: str | None = "pg_catalog"
        elif "role's search_path" in mode:
            search_path = None
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("ALTER ROLE {} SET search_path = {}").format(sql.Identifier(role), sql.Identifier(schema))
                )
        else:
            search_path = schema
        # The install's rebuild is over: what follows reaches the service through the change log.
        folder = client.app.state.folder
        assert poll(lambda: None if folder.machinery.status == "ready" else str(folder.machinery), 10.0) is None
        qualified = schema if search_path == "pg_catalog" else None
        runs = sql.Identifier(schema, "migration_runs") if qualified else sql.Identifier("migration_runs")
        with connect_as(database_url, role, search_path=search_path) as engine:
            warnings = warnings_of(engine)
            current = engine.execute("SELECT current_user, current_schemas(false)").fetchone()
            assert current is not None
            assert current[0] == role
            assert current[1] == (["pg_catalog"] if search_path == "pg_catalog" else [schema])
            run_id = engine_writes(engine, qualified)

            def run_shown(status: str) -> Callable[[], str | None]:
                def check() -> str | None:
                    response = client.get(f"{API}/{run_id}")
                    if response.status_code != 200 or response.json()["status"] != status:
                        return f"GET the run: {response.status_code} {response.text[:300]}"
                    return None

                return check

            assert poll(run_shown("completed"), 1.0) is None
            complaint = poll(stats_agree(client, database_url, schema), 1.0)
            assert complaint is None, complaint
            assert status_counts(database_url, schema) == {"completed": 1, "failed": 1}
            # The run is in the read cache now; the engine's next write to it must show within 1 s too.
            engine.execute(
                sql.SQL(
                    "UPDATE {} SET status = 'failed', success = false, error_message = 'boom' WHERE id = %s"
                ).format(runs),
                (run_id,),
            )
            complaint = poll(run_shown("failed"), 1.0)
            assert complaint is None, complaint
            complaint = poll(stats_agree(client, database_url, schema), 1.0)
            assert complaint is None, complaint
            assert folder.machinery.status == "ready"  # the figures came from the roll-ups
        assert warnings == []


# --- f. the service's own tables dropped by hand ---------------------------------------------


@pytest.mark.parametrize(
    ("table", "engine_writes_after"),
    [
        ("migration_api_changes", True),
        ("migration_api_run_counts_hour", True),
        ("migration_api_run_counts_hour", False),
    ],
    ids=["changes", "run_counts_hour", "run_counts_hour-idle"],
)
def test_the_service_recovers_when_its_table_is_dropped_by_hand(
    database_url: str, new_schema: Callable[[str], str], table: str, engine_writes_after: bool
) -> None:
    schema = new_schema("dropped")
    create_engine_schema(database_url, schema)
    with (
        TestClient(app=create_app(make_settings(database_url, schema))) as client,
        psycopg.connect(database_url, autocommit=True, options=f"-c search_path={schema}") as engine,
    ):
        folder = client.app.state.folder
        assert folder is not None
        engine_writes(engine)
        complaint = poll(stats_agree(client, database_url, schema), 5.0)
        assert complaint is None, complaint
        # The drop comes in the steady state: the install's rebuild is over.
        assert poll(lambda: None if folder.machinery.status == "ready" else str(folder.machinery), 10.0) is None

        engine.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
        if engine_writes_after:
            # The engine keeps writing: its statements succeed (the log's writer may warn).
            engine_writes(engine)
            engine.execute(
                "INSERT INTO migration_runs (id, file_path, record_type, status) SELECT gen_random_uuid(), "
                "'in/after_drop_' || i || '.csv', 'claim', 'running' FROM generate_series(1, 5) i"
            )
            engine.execute("UPDATE migration_runs SET status = 'failed' WHERE file_path = 'in/after_drop_1.csv'")
        complaint = poll(stats_agree(client, database_url, schema), 15.0, interval=0.2)
        assert complaint is None, f"after DROP TABLE {table}: {complaint}"

        def repaired() -> str | None:
            row = engine.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            if not (row and row[0]):
                return f"{table} was not recreated; the folder: {folder.machinery}"
            if folder.machinery.status != "ready":
                return f"the roll-ups are not ready again; the folder: {folder.machinery}"
            return None

        complaint = poll(repaired, 15.0, interval=0.2)
        assert complaint is None, f"after DROP TABLE {table}: {complaint}"
        # Repaired: what the engines write now reaches the statistics through the log again.
        engine_writes(engine)
        complaint = poll(stats_agree(client, database_url, schema), 5.0)
        assert complaint is None, f"after the repair: {complaint}"


def test_the_service_recovers_when_its_log_trigger_is_dropped_by_hand(
    database_url: str, new_schema: Callable[[str], str]
) -> None:
    """Writes made while a log trigger was missing are not in the log: the folder notices the
    trigger is gone, puts it back and rebuilds, so the statistics count them anyway."""
    schema = new_schema("notrigger")
    create_engine_schema(database_url, schema)
    with (
        TestClient(app=create_app(make_settings(database_url, schema))) as client,
        psycopg.connect(database_url, autocommit=True, options=f"-c search_path={schema}") as engine,
    ):
        folder = client.app.state.folder
        assert folder is not None
        engine_writes(engine)
        assert poll(lambda: None if folder.machinery.status == "ready" else str(folder.machinery), 10.0) is None
        engine.execute("DROP TRIGGER migration_api_log_update ON migration_runs")
        engine.execute("UPDATE migration_runs SET status = 'failed', success = false, error_message = 'late'")

        def trigger_back() -> str | None:
            row = engine.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'migration_runs'::regclass "
                "AND tgname = 'migration_api_log_update'"
            ).fetchone()
            if not (row and row[0] == 1):
                return "the log trigger was not recreated"
            return None if folder.machinery.status == "ready" else str(folder.machinery)

        complaint = poll(trigger_back, 15.0, interval=0.2)
        assert complaint is None, complaint
        complaint = poll(stats_agree(client, database_url, schema), 5.0)
        assert complaint is None, f"after the repair: {complaint}"
