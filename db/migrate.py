"""`python -m db.migrate [--dry-run]`: bring the configured database's schema up to date, then exit.

`--dry-run` prints the SQL of the versions `ensure_schema` would apply now (db.schema.pending())
and changes nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys

import psycopg

from config import ConfigError, load_settings
from db.schema import CREATE_VERSION_TABLE, LOCK_TIMEOUT, Migration, ensure_schema, pending
from db.target import database_url


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def render_pending(schema: str, migrations: list[Migration], schema_exists: bool = True) -> str:
    """The SQL of `migrations` as `ensure_schema` runs it on `schema`, as text."""
    if not migrations:
        return f"-- schema {schema} is up to date: nothing to apply\n"
    versions = ", ".join(str(m.version) for m in migrations)
    lines = [f"-- schema {schema}: versions {versions} would be applied (db/migrations/)"]
    if not schema_exists:
        lines.append(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(schema)};")
    lines += [f"SET search_path = {_quote_ident(schema)}, public;", f"{CREATE_VERSION_TABLE};"]
    for m in migrations:
        how = (
            f"in one transaction with SET LOCAL lock_timeout = '{LOCK_TIMEOUT}', retried while an engine holds a lock"
            if m.transactional
            else "statement by statement, outside a transaction (an index equivalent to one that exists is skipped)"
        )
        lines += [
            "",
            f"-- ===== version {m.version} ({m.name}): {how}",
            m.text.rstrip(),
            "INSERT INTO migration_api_schema_versions (version, name) "
            f"VALUES ({m.version}, '{m.name}') ON CONFLICT (version) DO NOTHING;",
        ]
    return "\n".join(lines) + "\n"


def dry_run(url: str, schema: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()
    return render_pending(schema, pending(url, schema), schema_exists=bool(row and row[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.migrate", description="Bring the configured schema up to date, then exit."
    )
    parser.add_argument("--dry-run", action="store_true", help="print the SQL it would run and change nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    with database_url(settings) as url:
        if args.dry_run:
            sys.stdout.write(dry_run(url, settings.db_schema))
            return 0
        report = ensure_schema(url, settings.db_schema)
        print(f"schema {settings.db_schema}: version {report.version}, applied {report.applied or 'nothing'}")
        if report.skipped:
            print(f"skipped (no privilege): {', '.join(report.skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
