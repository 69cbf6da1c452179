"""The folding task (see the package doc)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
import psycopg
from psycopg_pool import AsyncConnectionPool

from cache import RunCache
from db.outage import KEEPALIVE_KWARGS
from db.sqlfile import load_queries, split_statements

logger = logging.getLogger(__name__)

QUERIES: Final = load_queries(Path(__file__).with_name("queries.sql"))
ROLLUPS: Final = load_queries(Path(__file__).resolve().parent.parent / "rollups" / "queries.sql")
EVENTS: Final = load_queries(Path(__file__).resolve().parent.parent / "events" / "queries.sql")
# A fold's statements one by one, prepared once per folder connection: planned anew in every
# batch, their planning cost more than their work (about 40 ms per fold for the
# roll-up ones, 26 of them when measured).
FOLD_STATEMENTS: Final = (
    QUERIES["delta"],
    *split_statements(ROLLUPS["fold"]),
    *split_statements(QUERIES["refresh_search_docs"]),
    EVENTS["fold"],
)


def fold_lock_key(schema: str) -> int:
    """The advisory lock on which every fold and rebuild of every instance serving `schema` takes
    turns. One per schema (advisory locks are per database): services of other schemas in the same
    database fold, and rebuild for minutes, without waiting for each other. 0x4D41 ("MA") in the
    high bits keeps it apart from the schema installer's key (db/schema.py)."""
    return (0x4D41 << 32) | zlib.crc32(schema.encode())


FOLD_INTERVAL: Final = 0.2
# Under a heavy stream of engine writes the folder waits longer between folds, up to this: a fold
# has a fixed cost of some 35 statements however few rows it takes, and rows of one hour and status
# fold into one roll-up row whatever their number. The wait is twice the last cycle's duration
# (a fold of 10 ms on an idle server: 0.2 s; one of 200 ms while 16 engine connections write:
# the most), so a direct engine write still shows within FOLD_INTERVAL_MAX plus one fold, under 1 s.
FOLD_INTERVAL_MAX: Final = 0.4
BATCH_ROWS: Final = 20_000
# After marking the derived data stale, wait this long before rebuilding, so that every process
# has seen it (they look every FOLD_INTERVAL) and reads the base tables instead.
REBUILD_GRACE: Final = 1.0
RECONNECT_SECONDS: Final = 1.0
NOTIFY_MAX_CHARS: Final = 7_900
# Events past the retention are pruned this often, at most PRUNE_ROWS per statement.
PRUNE_INTERVAL: Final = 30.0
PRUNE_ROWS: Final = 50_000
# The log is vacuumed by the folder (changelog/queries.sql `vacuum_log`) at most this often while
# rows are taken from it.
LOG_VACUUM_INTERVAL: Final = 1.0
DEFAULT_EVENTS_RETENTION: Final = 3600.0
ROLLUP_TABLES: Final = (
    "migration_api_run_counts_hour",
    "migration_api_run_counts_day",
    "migration_api_run_counts_total",
    "migration_api_duration_hist_hour",
    "migration_api_duration_hist_day",
    "migration_api_duration_hist_total",
    "migration_api_duration_hist_type",
    "migration_api_duration_hist_all",
    "migration_api_duration_bins_hour",
    "migration_api_duration_bins_day",
    "migration_api_error_counts_day",
    "migration_api_run_activity",
)


@dataclass
class Machinery:
    """What this process knows of the data derived from the change log (shown in /health)."""

    running: bool = False
    rollups_ready: bool = False
    search_ready: bool = False
    note: str | None = "not started"
    backlog: bool = False

    @property
    def status(self) -> str:
        if not self.running:
            return "stopped"
        return "ready" if self.rollups_ready and self.search_ready else "rebuilding"


# Per pool, so that repositories (which hold the pool) find their process's folder.
_folders: weakref.WeakKeyDictionary[AsyncConnectionPool, Folder] = weakref.WeakKeyDictionary()


def derived_current(pool: AsyncConnectionPool) -> bool:
    """Whether this process's roll-ups and search documents may be read (see `Folder.current`);
    False without a folder."""
    folder = _folders.get(pool)
    return folder is not None and folder.current()


class Folder:
    """One per process: folds the change log, rebuilds when needed, keeps `machinery` current."""

    def __init__(
        self,
        url: str,
        schema: str,
        pool: AsyncConnectionPool,
        cache: RunCache | None,
        *,
        repair: Any = None,
        interval: float = FOLD_INTERVAL,
        events_retention: float = DEFAULT_EVENTS_RETENTION,
    ) -> None:
        self.url = url
        self.schema = schema
        self.cache = cache
        self.interval = interval
        self.events_retention = events_retention
        self._pruned_at = 0.0
        self._log_vacuumed_at = time.monotonic()
        self._taken_since_vacuum = 0
        # A callable (url, schema) -> None that reapplies the schema's baseline (db.schema).
        self.repair = repair
        self.lock_key = fold_lock_key(schema)
        self.machinery = Machinery()
        _folders[pool] = self
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._rebuilding = False
        self._wake = asyncio.Event()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Fold until cancelled (the lifespan runs this as a background task)."""
        while True:
            try:
                await self._connect()
                self.machinery.running = True
                while True:
                    started = time.monotonic()
                    await self.cycle()
                    self._wake.clear()
                    wait = min(max(self.interval, 2 * (time.monotonic() - started)), FOLD_INTERVAL_MAX)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away, or our tables did: start over
                logger.warning("change-log folder: %s: %s; retrying", exc.__class__.__name__, str(exc).strip())
                self._set_ready(False, False, f"folder error: {exc.__class__.__name__}")
            finally:
                self.machinery.running = False
                await self._close()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _connect(self) -> None:
        options = f"-c search_path={self.schema},public -c statement_timeout=0 -c TimeZone=UTC"
        self._conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, options=options, application_name="migration-api-folder", **KEEPALIVE_KWARGS
        )
        await self._conn.execute(QUERIES["create_temp_tables"].encode())

    async def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def cycle(self) -> None:
        """Look at the log's state; rebuild what cannot be trusted, else fold what waits."""
        conn = self._require()
        try:
            # Under the lock: a fold after a write (`fold_now`) may have a transaction open on this
            # connection, and a statement run in between would land in it (and, were it aborted
            # by its lock_timeout, fail there and take the connection down with the fold).
            async with self._lock:
                row = await (await conn.execute(QUERIES["state"])).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            await self._repair(f"service table missing ({str(exc).strip().splitlines()[0]})")
            return
        if row is None:
            await self._repair("the machinery row is missing")
            return
        rollups_ready, search_ready, note, log_alive, backlog, missing = row
        self.machinery.backlog = bool(backlog)
        if missing:
            await self._repair(f"{missing} of the service's tables or log triggers missing")
            return
        # A rebuild stores its reason as "rebuilding: <reason>"; one cut short leaves it so.
        stale = (note or "derived data marked stale").removeprefix("rebuilding: ")
        if not log_alive:
            await self.rebuild("the change log was emptied (server crash or restore)" if rollups_ready else stale)
        elif not (rollups_ready and search_ready):
            await self.rebuild(stale)
        else:
            self._set_ready(True, True, None)
            try:
                if backlog:
                    await self.fold()
                await self.vacuum_log()
                if time.monotonic() - self._pruned_at > min(PRUNE_INTERVAL, self.events_retention / 4):
                    await self.prune_events()
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
                await self._repair(f"a fold failed ({str(exc).strip().splitlines()[0]})")
                return

    def kick(self) -> None:
        """Run the next cycle now (something was written)."""
        self._wake.set()

    # --- folding ----------------------------------------------------------------------------

    def current(self) -> bool:
        """Whether statistics and search may read the roll-ups and search documents: they are
        built and this folder is folding. They include every write of this service at once (it
        folds after each, `fold_now`) and an engine's direct write within the fold interval. A
        read never folds itself: under a steady stream of engine writes it would always find a
        batch waiting and queue behind the folds."""
        return self.machinery.running and not self._rebuilding and self.machinery.rollups_ready

    async def fold_now(self) -> None:
        """Fold what is logged so far before returning (after the service's own write), unless a
        rebuild is under way here or in another instance (reads use the base tables then)."""
        if self._conn is None or self._rebuilding or not self.machinery.rollups_ready:
            self.kick()
            return
        try:
            await self.fold(wait=True)
        except Exception as exc:  # the loop notices and recovers; the write itself succeeded
            logger.warning("change-log fold after a write failed: %s", exc.__class__.__name__)
            self.kick()

    async def fold(self, *, wait: bool = False) -> int:
        """Fold up to BATCH_ROWS log rows in one transaction; return how many were folded, -1
        when another instance held the turn."""
        async with self._lock:
            conn = self._require()
            if not await self._take_turn(conn, wait):
                return -1
            try:
                async with conn.transaction():
                    await conn.execute(QUERIES["take_batch"], {"limit": BATCH_ROWS}, prepare=True)
                    summary = await (await conn.execute(QUERIES["batch_summary"], prepare=True)).fetchone()
                    assert summary is not None
                    count, reset, ids = summary
                    if count == 0:
                        return 0
                    if reset:
                        await conn.execute(QUERIES["mark_stale"], {"note": "an engine table was truncated"})
                    else:
                        for statement in FOLD_STATEMENTS:
                            await conn.execute(statement, prepare=True)
                    await self._notify(conn, None if reset else ids)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key,))
        self._taken_since_vacuum += int(count)
        if reset:
            self._set_ready(False, False, "an engine table was truncated")
        elif count >= BATCH_ROWS:
            self.kick()
        return int(count)

    async def vacuum_log(self) -> bool:
        """Vacuum the change log if rows were taken from it since LOG_VACUUM_INTERVAL; whether it did."""
        now = time.monotonic()
        if not self._taken_since_vacuum or now - self._log_vacuumed_at < LOG_VACUUM_INTERVAL:
            return False
        async with self._lock:
            await self._require().execute(QUERIES["vacuum_log"])
        self._log_vacuumed_at, self._taken_since_vacuum = now, 0
        return True

    async def prune_events(self) -> int:
        """Delete the events past the retention (events/queries.sql `prune`), and vacuum them where
        autovacuum does not (`unvacuumed`); how many went."""
        self._pruned_at = time.monotonic()
        pruned = 0
        async with self._lock:
            conn = self._require()
            if not await self._take_turn(conn, False):
                return 0
            try:
                while True:
                    cur = await conn.execute(
                        EVENTS["prune"], {"retention": self.events_retention, "limit": PRUNE_ROWS}, prepare=True
                    )
                    row = await cur.fetchone()
                    gone = int(row[0]) if row else 0
                    pruned += gone
                    if gone < PRUNE_ROWS:
                        break
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key,))
            # Outside the turn: other instances' folds need not wait for it.
            if pruned and (row := await (await conn.execute(EVENTS["unvacuumed"])).fetchone()) and row[0]:
                await conn.execute(EVENTS["vacuum"])
        return pruned

    async def _take_turn(self, conn: psycopg.AsyncConnection[Any], wait: bool) -> bool:
        if wait:
            # Another instance folding takes milliseconds; one rebuilding, far longer: then give way.
            try:
                async with conn.transaction():
                    await conn.execute("SET LOCAL lock_timeout = '1s'")
                    await conn.execute("SELECT pg_advisory_lock(%s)", (self.lock_key,))
                return True
            except psycopg.errors.LockNotAvailable:
                return False
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_key,))).fetchone()
        return bool(row and row[0])

    async def _notify(self, conn: psycopg.AsyncConnection[Any], ids: list[Any] | None) -> None:
        # Named after the schema (DB_SCHEMA, as cache/ compares it): every schema's service in the
        # database listens on this channel.
        payload = f"{self.schema}:" + ("*" if ids is None else ",".join(str(i) for i in ids))
        if len(payload.encode()) > NOTIFY_MAX_CHARS:
            payload = f"{self.schema}:*"
        await conn.execute(QUERIES["notify"], {"ids": payload})
        # This process's cache learns it from its own listener too; dropping the runs now spares
        # the round trip for the writer's next read.
        if self.cache is not None:
            self.cache.apply_notice(payload)

    # --- rebuilding -------------------------------------------------------------------------

    async def rebuild(self, reason: str | None) -> None:
        """Recompute roll-ups and search documents from the base tables (see rollups/queries.sql)."""
        async with self._lock:
            conn = self._require()
            if not await self._take_turn(conn, wait=False):
                return  # another process is rebuilding or folding; look again next cycle
            self._rebuilding = True
            try:
                started = time.perf_counter()
                logger.warning("rebuilding statistics roll-ups and search documents: %s", reason)
                await conn.execute(QUERIES["mark_stale"], {"note": f"rebuilding: {reason}"})
                self._set_ready(False, False, f"rebuilding: {reason}")
                await asyncio.sleep(REBUILD_GRACE)
                async with conn.transaction():
                    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    await conn.execute(ROLLUPS["rebuild"].encode())
                    await conn.execute(QUERIES["rebuild_search_docs"].encode())
                    await conn.execute(QUERIES["mark_ready"].encode())
                    await conn.execute(EVENTS["reset"], {"reason": f"statistics rebuilt: {reason}"})
                    await self._notify(conn, None)
                for table in (*ROLLUP_TABLES, "migration_api_search_docs"):
                    await conn.execute(f"ANALYZE {table}")
                logger.info("roll-ups and search documents rebuilt in %.1f s", time.perf_counter() - started)
            finally:
                self._rebuilding = False
                await conn.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key,))
        self._set_ready(True, True, None)

    async def _repair(self, reason: str) -> None:
        """Our own tables are damaged (dropped by hand): reapply the baseline, then rebuild."""
        self._set_ready(False, False, f"repairing: {reason}")
        if self.repair is None:
            raise RuntimeError(f"the service's tables are damaged ({reason}) and no repair is configured")
        logger.warning("service tables damaged (%s): reapplying the schema's baseline", reason)
        await anyio.to_thread.run_sync(self.repair, self.url, self.schema)
        await self._close()
        await self._connect()

    # --- state ------------------------------------------------------------------------------

    def _set_ready(self, rollups: bool, search: bool, note: str | None) -> None:
        m = self.machinery
        m.rollups_ready, m.search_ready, m.note = rollups, search, note
        if self.cache is not None:
            self.cache.fresh = rollups and search

    def _require(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None:
            raise RuntimeError("the folder is not connected")
        return self._conn


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
