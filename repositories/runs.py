"""Every SQL statement that touches `migration_runs`.

The repository works on the request's connection (db/unit_of_work.py), in autocommit mode: a
read is one statement, so it needs no transaction of its own; a write runs in the transaction
the unit of work opens (`locked`, or the idempotency store's).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Final

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import args_row

from cache import RunCache
from changelog import derived_current
from db.loaders import fetch_all, fetch_keeping, fetch_one, for_wire
from db.unit_of_work import UnitOfWork
from dto.runs import RunRead, body_etag
from repositories.run_queries import (
    RANKED_TIERS,
    RUN_COLUMNS,
    SUBSTRING_TIER,
    Cursor,
    RunQuery,
    build_count,
    build_list,
    build_search,
)

SELECT_RUN_BY_ID: Final = f"SELECT {RUN_COLUMNS} FROM migration_runs WHERE id = %(id)s"
SELECT_RUNS_BY_IDS: Final = f"SELECT {RUN_COLUMNS} FROM migration_runs WHERE id = ANY(%(ids)s)"
RUN_FIELDS: Final = len(RUN_COLUMNS.split(","))
# Position of each column in RUN_COLUMNS (the sort key of a page's last row is its cursor).
RUN_COLUMN_INDEX: Final = {name.strip(): i for i, name in enumerate(RUN_COLUMNS.split(","))}
RUN_EXISTS: Final = "SELECT 1 FROM migration_runs WHERE id = %(id)s"
INSERT_RUN: Final = f"""
    INSERT INTO migration_runs (id, file_path, record_type, status, created_at, updated_at,
                                completed_at, total_duration, success, error_message)
    VALUES (%(id)s, %(file_path)s, %(record_type)s, %(status)s,
            coalesce(%(created_at)s, now()), now(),
            %(completed_at)s, %(total_duration)s, %(success)s, %(error_message)s)
    RETURNING {RUN_COLUMNS}"""
DELETE_RUN_STATES: Final = "DELETE FROM workflow_states WHERE run_id = %(id)s"
DELETE_RUN_CHECKPOINTS: Final = "DELETE FROM workflow_checkpoints WHERE run_id = %(id)s"
DELETE_RUN: Final = "DELETE FROM migration_runs WHERE id = %(id)s RETURNING id"
# The row, locked until the transaction ends, and the transaction's clock (`now()`, as `updated_at` gets).
SELECT_RUN_FOR_UPDATE: Final = f"SELECT {RUN_COLUMNS}, now() FROM migration_runs WHERE id = %(id)s FOR UPDATE"
# Columns a PATCH may set; anything else never reaches SQL.
UPDATABLE_COLUMNS: Final = frozenset(
    {"file_path", "record_type", "status", "completed_at", "total_duration", "success", "error_message"}
)


_INSERT_DEFAULTS: Final[Mapping[str, Any]] = dict.fromkeys(
    ("created_at", "completed_at", "total_duration", "success", "error_message")
)


async def _insert_run(conn: AsyncConnection[Any], params: Mapping[str, Any]) -> RunRead:
    cur = conn.cursor(row_factory=args_row(RunRead))
    await cur.execute(INSERT_RUN, params)
    row = await cur.fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    return row


class Page:
    """One page of runs as a JSON array, and the cursor of the next page (None on the last page)."""

    __slots__ = ("body", "next_cursor")

    def __init__(self, body: bytes, next_cursor: str | None) -> None:
        self.body = body
        self.next_cursor = next_cursor


class LockedRun:
    """A run row locked inside an open transaction, with the transaction's clock."""

    __slots__ = ("conn", "now", "run", "work")

    def __init__(self, work: UnitOfWork, conn: AsyncConnection[Any], run: RunRead, now: datetime) -> None:
        self.work = work
        self.conn = conn
        self.run = run
        self.now = now

    async def update(self, changes: Mapping[str, Any]) -> RunRead:
        """Set the given columns (and `updated_at`); returns the row as stored."""
        unknown = set(changes) - UPDATABLE_COLUMNS
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments: Sequence[sql.Composable] = [
            sql.SQL("{} = {}").format(sql.Identifier(col), sql.Placeholder(col)) for col in changes
        ]
        query = sql.SQL("UPDATE migration_runs SET {sets} WHERE id = %(id)s RETURNING {cols}").format(
            sets=sql.SQL(", ").join([*assignments, sql.SQL("updated_at = now()")]),
            cols=sql.SQL(RUN_COLUMNS),
        )
        cur = self.conn.cursor(row_factory=args_row(RunRead))
        self.work.wrote(self.run.id)
        await cur.execute(query, {**changes, "id": self.run.id})
        row = await cur.fetchone()
        assert row is not None  # the row is locked by this transaction, so it still exists
        return row

    async def delete(self) -> None:
        """Delete the run with its states and checkpoints (no reliance on the engines' FKs
        cascading: some databases declare them without ON DELETE CASCADE)."""
        params = {"id": self.run.id}
        self.work.wrote(self.run.id)
        await self.conn.execute(DELETE_RUN_STATES, params)
        await self.conn.execute(DELETE_RUN_CHECKPOINTS, params)
        await self.conn.execute(DELETE_RUN, params)


class RunsRepository:
    def __init__(self, work: UnitOfWork) -> None:
        self.work = work
        self.cache: RunCache | None = work.cache

    async def get_encoded(self, run_id: uuid.UUID) -> tuple[bytes, str] | None:
        """The run's JSON body and ETag, from the read cache when it holds them (db/run_cache.py)."""
        cache = self.cache
        generation = 0
        if cache is not None:
            hit = cache.get("run", run_id)
            if hit is not None:
                return hit
            generation = cache.generation
        run = await self.get(run_id)
        return None if run is None else self._encoded(run, generation)

    def _encoded(self, run: RunRead, generation: int) -> tuple[bytes, str]:
        """The run's JSON body and ETag, also put into the cache (which refuses it when a notice
        came since `generation`, the cache's generation before the row was read)."""
        body = msgspec.json.encode(run)
        tag = body_etag(body)
        if self.cache is not None:
            self.cache.put("run", run.id, body, tag, generation)
        return body, tag

    async def get(self, run_id: uuid.UUID) -> RunRead | None:
        row = await fetch_one(await self.work.connection(), SELECT_RUN_BY_ID, {"id": run_id}, prepare=True)
        return None if row is None else RunRead(*row)

    async def exists(self, run_id: uuid.UUID) -> bool:
        cur = await (await self.work.connection()).execute(RUN_EXISTS, {"id": run_id})
        return await cur.fetchone() is not None

    async def page(self, query: RunQuery) -> Page:
        """One page of the list (or, with `query.q`, of the ranked search) and the next page's cursor.

        With the read cache on, the query selects only each row's sort key and id (an index-only
        scan for the list) and the page is assembled from the runs' cached JSON, which the cache
        keeps exact (cache/); the runs it lacks are read in one more statement and cached.
        The cache also keeps the finished page until the next change anywhere, so a dashboard
        polling the newest runs between changes costs no round trip; after a change, PostgreSQL an
        index probe and the service a byte join. Without the cache, whole rows come in the one
        statement.
        """
        cursor = query.decode_cursor()
        cache = self.cache if self.cache is not None and self.cache.enabled else None
        if cache is None:
            return await self._page(query, cursor, None, 0)
        # The whole page, when nothing changed since it was read (cache/).
        key = query.cache_key()
        page: Page | None = cache.get_page(key)
        if page is None:
            generation = cache.generation
            page = await self._page(query, cursor, cache, generation)
            cache.put_page(key, page.body, page, generation)
        return page

    async def _page(self, query: RunQuery, cursor: Cursor | None, cache: RunCache | None, generation: int) -> Page:
        columns = query.key_columns if cache is not None else RUN_COLUMNS
        conn = await self.work.connection()
        # Binary rows: PostgreSQL sends and psycopg's C loaders read them for the least CPU on
        # both sides (which share this machine's cores). A timestamp they cannot read comes
        # back as its text (`as_text`): exact for the cursor, null on the wire.
        if query.q is None:
            statement, params = build_list(query, cursor, columns)
            rows, as_text = await fetch_keeping(conn, statement, params)
        else:
            # The service's search documents, when built and kept (changelog/).
            indexed = derived_current(self.work.pool)
            rows, as_text = await self._search_rows(conn, query, cursor, columns, indexed)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        if not rows:
            return Page(b"[]", None)
        rank = 0 if query.q is None else rows[-1][-1]
        if cache is None:
            runs = [RunRead(*(for_wire(r[:RUN_FIELDS]) if as_text else r[:RUN_FIELDS])) for r in rows]
            last = [rows[-1][RUN_COLUMN_INDEX[c]] for c in query.sort.columns]
            return Page(msgspec.json.encode(runs), query.encode_cursor(rank, last) if more else None)
        width = len(query.sort.columns)
        body = await self._assemble(conn, cache, [r[width - 1] for r in rows], generation)
        return Page(body, query.encode_cursor(rank, rows[-1][:width]) if more else None)

    async def _assemble(
        self, conn: AsyncConnection[Any], cache: RunCache, run_ids: list[uuid.UUID], generation: int
    ) -> bytes:
        """The JSON array of these runs in this order, from the cache and one read of the rest.

        A run deleted since its id was selected is left out (the page's cursor still comes from
        the key rows, so the next page neither skips nor repeats).
        """
        hits = cache.get_many("run", run_ids)
        parts: list[bytes | None] = [None if hit is None else hit[0] for hit in hits]
        missing = [run_id for run_id, hit in zip(run_ids, hits, strict=True) if hit is None]
        if missing:
            rows = await fetch_all(conn, SELECT_RUNS_BY_IDS, {"ids": missing}, prepare=True)
            fetched = {row[0]: self._encoded(RunRead(*row), generation)[0] for row in rows}
            parts = [fetched.get(run_id) if part is None else part for part, run_id in zip(parts, run_ids, strict=True)]
        return b"[" + b",".join(part for part in parts if part is not None) + b"]"

    async def _search_rows(
        self, conn: AsyncConnection[Any], query: RunQuery, cursor: Cursor | None, columns: str, indexed: bool
    ) -> tuple[list[Any], bool]:
        """limit + 1 ranked rows after `offset`/`cursor`, and whether they were read as text (see
        `page`). The exact and prefix tiers are cheap index probes and often fill the page; the
        substring tier is queried only for what they leave.

        Search is planned for its actual term (prepare=False): whether the trigram index or an
        ordered scan is cheaper depends on how common the term is, which a generic plan cannot know.
        """
        want, offset = query.limit + 1, query.offset
        rows: list[Any] = []
        as_text = False
        if cursor is None or cursor.rank < SUBSTRING_TIER:
            statement, params = build_search(query, cursor, RANKED_TIERS, want + offset, 0, columns, indexed)
            rows, as_text = await fetch_keeping(conn, statement, params, prepare=False)
            if len(rows) >= want + offset:
                return rows[offset : offset + want], as_text
        skip = max(0, offset - len(rows))
        rows = rows[offset:]
        tier_cursor = cursor if cursor is not None and cursor.rank == SUBSTRING_TIER else None
        statement, params = build_search(
            query, tier_cursor, (SUBSTRING_TIER,), want - len(rows), skip, columns, indexed
        )
        more, more_as_text = await fetch_keeping(conn, statement, params, prepare=False)
        return rows + more, as_text or more_as_text

    async def count(self, query: RunQuery, *, exact: bool) -> int:
        """How many runs the query matches: counted, or the planner's estimate (no scan)."""
        conn = await self.work.connection()
        statement, params = build_count(query, derived_current(self.work.pool))
        if exact:
            cur = await conn.execute(statement, params)
            row = await cur.fetchone()
            return int(row[0]) if row else 0
        cur = await conn.execute("EXPLAIN (FORMAT JSON) " + statement, params)
        row = await cur.fetchone()
        plan = row[0][0]["Plan"] if row else {}
        # count(*) is an Aggregate over the scan whose row estimate is the answer
        return int(plan.get("Plans", [plan])[0].get("Plan Rows", 0))

    async def create(self, columns: Mapping[str, Any]) -> RunRead:
        """Insert a run from its column values (`id` required; `created_at` None means now), in
        the request's transaction when one is open."""
        self.work.wrote(columns["id"])
        return await _insert_run(await self.work.connection(), {**_INSERT_DEFAULTS, **columns})

    @asynccontextmanager
    async def locked(self, run_id: uuid.UUID) -> AsyncIterator[LockedRun | None]:
        """The run locked FOR UPDATE in a transaction that ends with the block (None if no such run).

        Whatever the block checks against `LockedRun.run` still holds when it writes: concurrent
        writers through this method wait, so a read-check-write cannot interleave.
        """
        async with self.work.transaction():
            yield await self.lock(run_id)

    async def lock(self, run_id: uuid.UUID) -> LockedRun | None:
        """Lock the run FOR UPDATE in the request's open transaction (None if no such run)."""
        conn = await self.work.connection()
        cur = await conn.execute(SELECT_RUN_FOR_UPDATE, {"id": run_id})
        row = await cur.fetchone()
        return None if row is None else LockedRun(self.work, conn, RunRead(*row[:-1]), row[-1])
