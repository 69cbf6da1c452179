"""Reaching the configured database at startup: one line naming host, port, database and cause.

Used before uvicorn starts (`python app.py`, so `make run` exits instead of reloading with nothing
listening), by the lifespan (`uvicorn app:app`) and by the `python -m db.*` commands.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg.conninfo import conninfo_to_dict

from config import Settings, mask_password
from db.embedded import start_embedded

# Seconds libpq waits for a host that does not answer (a firewall that drops packets).
CONNECT_TIMEOUT: Final = 3
# libpq prefixes each attempt with 'connection to server at "h" (ip), port p failed: '; the cause
# is what follows the last such prefix, minus its severity.
_ATTEMPT_PREFIX = re.compile(r"^.*failed:\s*", re.DOTALL)
_SEVERITY = re.compile(r"^(FATAL|ERROR):\s+")


class DatabaseUnreachable(RuntimeError):
    """The configured database cannot be used; the message is one line for the operator."""


def target(url: str) -> str:
    """`host H, port P, database D, user U` of a libpq URL or key=value string (libpq's defaults)."""
    params = conninfo_to_dict(url)
    host = params.get("host") or params.get("hostaddr") or "localhost (unix socket)"
    port = params.get("port") or "5432"
    user = params.get("user") or "(the OS user)"
    database = params.get("dbname") or user
    return f"host {host}, port {port}, database {database}, user {user}"


def cause(exc: BaseException) -> str:
    """The reason libpq gave, on one line, without the connection-attempt preamble."""
    first = str(exc).strip().split("\n\t")[0] if str(exc).strip() else exc.__class__.__name__
    text = _SEVERITY.sub("", _ATTEMPT_PREFIX.sub("", first.strip())).strip()
    text = " ".join(text.split())
    if text.lower().startswith("connection refused"):
        text += " (is PostgreSQL running there and accepting TCP/IP connections?)"
    elif "timeout expired" in text.lower():
        text = f"no answer within {CONNECT_TIMEOUT} s (timeout expired)"
    return text or exc.__class__.__name__


def check_database(url: str, timeout: int = CONNECT_TIMEOUT) -> None:
    """Connect once and run a query; raise DatabaseUnreachable with one line if that fails."""
    try:
        where = target(url)
    except psycopg.ProgrammingError as exc:
        raise DatabaseUnreachable(
            f"DATABASE_URL {mask_password(url)} is not a valid libpq URL or key=value string: {cause(exc)}"
        ) from None
    try:
        with psycopg.connect(url, connect_timeout=timeout, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise DatabaseUnreachable(f"cannot use the database at {where}: {cause(exc)}") from None


@contextmanager
def command_database(settings: Settings) -> Iterator[str]:
    """For the `python -m db.*` commands: the configured database's URL (the direct one, when
    DATABASE_DIRECT_URL is set: they need a session) once it answers, or the embedded server's
    (started for the duration); exits with one line when neither can be used."""
    embedded = None
    url = settings.database_direct_url or settings.database_url
    if url is None:
        embedded = start_embedded(settings.embedded_pg_dir)
        url = embedded.url
    try:
        try:
            check_database(url)
        except DatabaseUnreachable as exc:
            raise SystemExit(f"error: {exc}") from None
        yield url
    finally:
        if embedded is not None:
            embedded.stop()
