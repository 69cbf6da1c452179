"""Server-wide changes tests make (roles, grants on the shared `public` schema), each undone on exit."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo


@contextlib.contextmanager
def public_create_revoked(database_url: str) -> Iterator[None]:
    """No role may create in `public` (as before PostgreSQL 15, PUBLIC may); restored on exit."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT has_schema_privilege('public', 'public', 'CREATE')").fetchone()
        had_create = bool(row and row[0])
        if had_create:
            conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        yield
    finally:
        if had_create:
            with psycopg.connect(database_url, autocommit=True) as conn:
                # Run by a superuser, the GRANT is recorded as the schema owner's, as the original was.
                conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")


def drop_role(database_url: str, role: str) -> None:
    """Drop `role` with what it owns and every privilege granted to it in this database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            return
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@contextlib.contextmanager
def login_role(database_url: str, prefix: str) -> Iterator[str]:
    """A new role (unique name, LOGIN, no superuser, no other attribute); dropped on exit."""
    role = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER").format(sql.Identifier(role)))
    try:
        yield role
    finally:
        drop_role(database_url, role)


def connect_as(database_url: str, role: str, *, search_path: str | None = None) -> psycopg.Connection[Any]:
    """An autocommit connection whose privileges are `role`'s: a login as the role where the server
    lets it log in without a password (trust), else a superuser's connection after SET ROLE (the
    same privilege checks). `search_path` None keeps the role's own default (ALTER ROLE ... SET)."""
    options = {} if search_path is None else {"options": f"-c search_path={search_path}"}
    try:
        return psycopg.connect(make_conninfo(database_url, user=role, **options), autocommit=True)
    except psycopg.OperationalError:
        conn = psycopg.connect(make_conninfo(database_url, **options), autocommit=True)
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        if search_path is None:
            # SET ROLE does not apply the role's own settings: take its search_path by hand.
            row = conn.execute(
                "SELECT split_part(s, '=', 2) FROM pg_db_role_setting, unnest(setconfig) AS s "
                "WHERE setrole = to_regrole(%s) AND s LIKE 'search_path=%%'",
                (role,),
            ).fetchone()
            if row is not None:
                conn.execute("SELECT set_config('search_path', %s, false)", (row[0],))
        return conn
