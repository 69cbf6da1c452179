"""`python -m auth create NAME --scopes read+write | list | revoke NAME`: manage the API keys kept
in the configured database (the embedded one when none is configured)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import psycopg

from auth import store
from auth.tokens import SCOPE_TEXT, SCOPES, check_name, parse_scopes
from config import ConfigError, Settings, load_settings
from db.pool import connection_options
from db.reach import command_database
from db.schema import ensure_schema


def _parser() -> argparse.ArgumentParser:
    scopes = "; ".join(f"{s}: {t}" for s, t in SCOPE_TEXT.items())
    parser = argparse.ArgumentParser(
        prog="python -m auth",
        description=f"Manage the service's API keys (scopes: {scopes}). Tokens are stored only as a keyed hash.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key and print its token (shown only this once)")
    create.add_argument("name", help="a name for the key: 1-64 letters, digits, '_', '.', '-'")
    create.add_argument("--scopes", required=True, help=f"scopes joined by '+', from {', '.join(SCOPES)}")
    commands.add_parser("list", help="list keys (name, scopes, token prefix, created, revoked); never tokens")
    revoke = commands.add_parser("revoke", help="revoke the active key of this name (or with this id)")
    revoke.add_argument("name", help="the key's name or id")
    return parser


async def _run(args: argparse.Namespace, url: str, settings: Settings) -> int:
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, options=connection_options(settings)
    ) as conn:
        if args.command == "create":
            try:
                created = await store.create_key(
                    conn, check_name(args.name), parse_scopes(args.scopes), settings.api_key_pepper
                )
            except psycopg.errors.UniqueViolation:
                print(f"an active key named {args.name!r} exists; revoke it first", file=sys.stderr)
                return 1
            print(f"created key {created.key.name!r} ({'+'.join(created.key.scopes)}); its token, shown only now:")
            print(created.token)
            return 0
        if args.command == "list":
            keys = await store.list_keys(conn)
            if not keys:
                print("no keys in the table" + (" (API_KEYS sets some)" if settings.api_keys else ""))
            for key in keys:
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                print(
                    f"{key.name:24} {'+'.join(key.scopes):18} {key.token_prefix}…  "
                    f"created {key.created_at:%Y-%m-%d %H:%M}  {state}  id {key.id}"
                )
            for configured in settings.api_keys:
                print(f"{configured.name:24} {'+'.join(configured.scopes):18} (from API_KEYS)")
            return 0
        revoked = await store.revoke_key(conn, args.name)
        if revoked is None:
            print(f"no active key named {args.name!r}", file=sys.stderr)
            return 1
        print(f"revoked key {revoked.name!r} (id {revoked.id})")
        return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "create":
            check_name(args.name)
            parse_scopes(args.scopes)
        settings = load_settings()
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with command_database(settings) as url:
        ensure_schema(url, settings.db_schema)
        return asyncio.run(_run(args, url, settings))


if __name__ == "__main__":
    sys.exit(main())
