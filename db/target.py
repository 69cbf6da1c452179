"""The database a command works on: the configured one, or the embedded server when none is."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from config import Settings
from db.embedded import start_embedded


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """Yield the URL of DATABASE_URL / DB_*, or start (or join) the embedded server for the
    duration of the block."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    embedded = start_embedded(settings.embedded_pg_dir)
    try:
        yield embedded.url
    finally:
        embedded.stop()
