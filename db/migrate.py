"""`python -m db.migrate`: bring the configured database's schema up to date, then exit."""

from __future__ import annotations

import logging
import sys

from config import ConfigError, load_settings
from db.embedded import start_embedded
from db.schema import ensure_schema


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    embedded = None
    url = settings.database_url
    if url is None:
        embedded = start_embedded(settings.embedded_pg_dir)
        url = embedded.url
    try:
        report = ensure_schema(url, settings.db_schema)
        print(f"schema {settings.db_schema}: version {report.version}, applied {report.applied or 'nothing'}")
        if report.skipped:
            print(f"skipped (no privilege): {', '.join(report.skipped)}")
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
