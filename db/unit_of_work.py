"""One request's unit of work: its one pooled connection, and the one way a transaction begins.

`provide_unit_of_work` (an app-level yield dependency, named "work") hands the request a
`UnitOfWork`; every repository a handler uses (runs, states, checkpoints, idempotency keys,
statistics, timeline, the changes feed) takes it in its constructor and asks it for the
connection, and the API-key handlers pass that connection to auth/store.py, so a handler takes at
most one pooled connection however many reads it makes. Some take their own instead: the auth
middleware (it runs before dependencies exist), the health probes (their own short timeout), the
event hub and the SSE streams (a connection per read, never held for a stream's life), and the
background tasks.

The connection is taken from the pool on first use, so a read the cache answers costs the pool
nothing, and it goes back when the handler has returned (before the response is sent, so a
streamed response holds none). Pooled connections are in autocommit mode: a read needs no
transaction; a write opens one with `transaction()`.

After a transaction commits, the runs the writers noted (`wrote`) are dropped from this
process's read cache, so the writer reads its own write; when the request's connection is back in
the pool (still before the response is sent) the change log is folded, so statistics and search
include the write (other processes learn of it through the change stream).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar.datastructures import State
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

if TYPE_CHECKING:
    from cache import RunCache
    from changelog import Folder


class UnitOfWork:
    __slots__ = ("_conn", "_fold", "_written", "cache", "folder", "pool")

    def __init__(self, pool: AsyncConnectionPool, cache: RunCache | None = None, folder: Folder | None = None) -> None:
        self.pool = pool
        self.cache = cache
        self.folder = folder
        self._conn: AsyncConnection[Any] | None = None
        self._written: set[uuid.UUID] = set()
        self._fold = False

    async def connection(self) -> AsyncConnection[Any]:
        """The request's connection (autocommit), taken from the pool on first use.

        `getconn`/`putconn` rather than the pool's `connection()` block: that block also enters the
        connection's own context, whose exit commits (a no-op in autocommit, but one taken lock and
        one wait cycle on every read the cache misses). Transactions here are explicit, and
        `putconn` rolls back and warns about anything left open."""
        if self._conn is None:
            self._conn = await self.pool.getconn()
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A transaction on the request's connection; committed when the block ends without an
        exception, then the cache and the change log are told of the runs written in it."""
        conn = await self.connection()
        async with conn.transaction():
            yield conn
        await self._committed()

    def wrote(self, run_id: uuid.UUID) -> None:
        """Note that this run (or its states or checkpoints) is written in the open transaction."""
        self._written.add(run_id)

    async def _committed(self) -> None:
        written, self._written = self._written, set()
        if not written:
            return
        if self.cache is not None:
            self.cache.invalidate(written)
        self._fold = self.folder is not None

    async def close(self) -> None:
        """Return the connection to the pool (the pool rolls back whatever is left open); then,
        after a committed write, fold the change log. The fold comes after the connection is back:
        it may wait for the folder's turn, whose holder may need a pooled connection."""
        conn, self._conn, self._written = self._conn, None, set()
        if conn is not None:
            await self.pool.putconn(conn)
        fold, self._fold = self._fold, False
        if fold and self.folder is not None:
            await self.folder.fold_now()


async def provide_unit_of_work(state: State) -> AsyncIterator[UnitOfWork]:
    work = UnitOfWork(state.pool, state.run_cache, state.folder)
    try:
        yield work
    finally:
        await work.close()
