"""`python -m db.retention --older-than-days N [--archive FILE] [--batch 500] [--dry-run]`.

Opt-in pruning of history: finished runs (not running, pending or paused) created more than N
days ago are deleted with their states and checkpoints, oldest first, in batches of `--batch`
runs, one short transaction each (statements in db/retention.sql). Engines are never locked out:
each transaction takes its rows with SKIP LOCKED, waits at most `lock_timeout` (200 ms) for
anything else and is retried, and the command pauses `--pause` seconds between batches. The
deletes pass through the engines' tables like an engine's own, so statistics stay exact and
event-stream clients see one `run_deleted` per run. With `--archive FILE`, each batch's runs are
first appended to FILE as JSON lines (the run with its states and checkpoints); a batch whose
delete fails after that is archived again by the retry, so a run may appear twice, never zero
times.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

import psycopg

from config import ConfigError, load_settings
from db.reach import command_database
from db.sqlfile import load_queries

QUERIES: Final = load_queries(Path(__file__).with_name("retention.sql"))
LOCK_TIMEOUT: Final = "200ms"
RETRIES: Final = 50


def prune_batch(conn: psycopg.Connection[Any], cutoff: datetime, batch: int, archive: TextIO | None) -> int:
    """Delete one batch (archiving it first); how many runs went. Retries lock timeouts."""
    for _ in range(RETRIES):
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                ids = [row[0] for row in conn.execute(QUERIES["pick"], {"cutoff": cutoff, "batch": batch})]
                if not ids:
                    return 0
                if archive is not None:
                    for (line,) in conn.execute(QUERIES["archive"], {"ids": ids}):
                        archive.write(line + "\n")
                    archive.flush()
                for name in ("delete_states", "delete_checkpoints", "delete_runs"):
                    conn.execute(QUERIES[name], {"ids": ids})
                return len(ids)
        except psycopg.errors.LockNotAvailable:
            time.sleep(0.1)
    raise RuntimeError(f"a batch met a lock {RETRIES} times in a row; try again later")


def prune(
    url: str,
    schema: str,
    older_than: timedelta,
    *,
    batch: int,
    pause: float,
    archive: TextIO | None,
    dry_run: bool,
    out: TextIO = sys.stdout,
) -> int:
    """Prune runs created before now - `older_than`; returns how many went (would go)."""
    cutoff = datetime.now(UTC) - older_than
    options = f"-c search_path={schema},public -c TimeZone=UTC"
    with psycopg.connect(url, autocommit=True, options=options, application_name="migration-api-retention") as conn:
        row = conn.execute(QUERIES["count"], {"cutoff": cutoff}).fetchone()
        selected = int(row[0]) if row else 0
        print(f"{selected} finished runs created before {cutoff.isoformat()} in schema {schema}", file=out)
        if dry_run or selected == 0:
            return selected
        done = 0
        while (went := prune_batch(conn, cutoff, batch, archive)) > 0:
            done += went
            print(f"deleted {done}/{selected}", file=out, flush=True)
            time.sleep(pause)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.retention",
        description="Delete (optionally archive) finished runs older than a cutoff, in batches.",
    )
    parser.add_argument("--older-than-days", type=float, required=True, help="age of the newest run to delete")
    parser.add_argument("--batch", type=int, default=500, help="runs per transaction (default 500)")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between batches (default 0.05)")
    parser.add_argument("--archive", type=Path, help="append the runs to this file as JSON lines first")
    parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    args = parser.parse_args(argv)
    if args.older_than_days <= 0 or args.batch < 1:
        parser.error("--older-than-days must be > 0 and --batch >= 1")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    with command_database(settings) as url:
        archive = args.archive.open("a", encoding="utf-8") if args.archive else None
        try:
            prune(
                url,
                settings.db_schema,
                timedelta(days=args.older_than_days),
                batch=args.batch,
                pause=args.pause,
                archive=archive,
                dry_run=args.dry_run,
            )
        finally:
            if archive is not None:
                archive.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
