"""A read cache of single runs and of runs' step-state lists, kept exact by change notices.

Dashboards poll the same runs over and over; serving a poll from memory costs a fraction of a
round trip. Correctness comes from the database, not from a time-to-live:

- The change-log folder (changelog/) sends, after each batch it folds, the ids of the runs that
  batch touched, whoever wrote them (the API or an engine), on the channel `migration_api_runs`
  ('*' after a rebuild or when too many runs to list), after its schema (`schema:ids`): the
  services of other schemas in the database hear it too, and skip it.
- One listener connection per process drops those runs from the cache as notices arrive. The
  cache serves only while it is listening and the folder reports the log as current (`fresh`):
  while either is not so (starting, reconnecting, rebuilding) it is off and empty, so no notice
  can be missed.
- A reader notes the cache's generation before it queries; any notice bumps it, and a result
  read before a notice is never stored after it.
- The API's own writes also drop the run they touched before answering, so a client reads its
  own writes at once; an engine's direct write is dropped when its batch is folded (within the
  folder's interval, 0.2 s).

The cache holds encoded response bodies, bounded by bytes (`RUN_CACHE_BYTES`; 0 turns it off).

It also holds a few whole list and search pages (`get_page`), keyed by everything the request
asked (filters, sort, limit, offset, cursor). A page depends on every run, so any notice or
write drops them all: a page is served only until the next change anywhere, which is the
freshness of the runs it is made of. A dashboard polling the newest runs between changes then
costs no database round trip at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Final

import psycopg

from db.outage import HEARTBEAT_TIMEOUT_SECONDS, KEEPALIVE_KWARGS, Gate

logger = logging.getLogger(__name__)

CHANNEL: Final = "migration_api_runs"
RECONNECT_SECONDS: Final = 1.0
# How often the listener checks its connection when no notice arrives.
LISTEN_HEARTBEAT_SECONDS: Final = 1.0
# Whole pages held at most (each also at most an eighth of the byte budget, all a quarter of it).
PAGE_ENTRIES: Final = 64
# A body's kind ("run", "states") and its run id as the UUID's 128-bit integer: a tuple of a str and
# an int is hashed and compared in C, while a UUID's __hash__ and __eq__ are Python methods, which
# the 50 lookups of a list page made about a tenth of its CPU.
Key = tuple[str, int]


class RunCache:
    def __init__(self, max_bytes: int, schema: str | None = None) -> None:
        self.max_bytes = max_bytes
        # The schema (DB_SCHEMA) whose notices are this cache's; None: every notice.
        self.schema = schema
        self.generation = 0
        self.listening = False
        # Set by the change-log folder: False while the log cannot be trusted (rebuilding).
        self._fresh = False
        self._items: OrderedDict[Key, tuple[bytes, str]] = OrderedDict()
        self._bytes = 0
        # Whole pages (see the module doc) by the request's key, and their bodies' bytes.
        self._pages: OrderedDict[Hashable, tuple[bytes, Any]] = OrderedDict()
        self._page_bytes = 0
        # Lookups while enabled, for /metrics (observability/metrics.py).
        self.hits = 0
        self.misses = 0
        # The database outage gate (db/outage.py): the cache is off while the database is away.
        self.gate: Gate | None = None

    @property
    def enabled(self) -> bool:
        gate_open = self.gate is None or self.gate.is_open
        return self.listening and self._fresh and self.max_bytes > 0 and gate_open

    @property
    def fresh(self) -> bool:
        return self._fresh

    @fresh.setter
    def fresh(self, value: bool) -> None:
        if not value:
            self.clear()
        self._fresh = value

    def get(self, kind: str, run_id: uuid.UUID) -> tuple[bytes, str] | None:
        return self.get_many(kind, (run_id,))[0]

    def hit(self, kind: str, run_id: uuid.UUID) -> tuple[bytes, str] | None:
        """The cached body and tag, counting only a hit: a caller that finds nothing goes on to a
        reader that looks again (`get`) and counts the miss once (controllers/cached_runs.py)."""
        if not self.enabled:
            return None
        key = (kind, run_id.int)
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return item

    def get_many(self, kind: str, run_ids: Sequence[uuid.UUID]) -> list[tuple[bytes, str] | None]:
        """The cached body and tag of each run, in order (None where it holds none)."""
        if not self.enabled:
            return [None] * len(run_ids)
        items = self._items
        found: list[tuple[bytes, str] | None] = []
        for run_id in run_ids:
            key = (kind, run_id.int)
            item = items.get(key)
            if item is not None:
                items.move_to_end(key)
            found.append(item)
        hits = len(found) - found.count(None)
        self.hits += hits
        self.misses += len(found) - hits
        return found

    def put(self, kind: str, run_id: uuid.UUID, body: bytes, tag: str, generation: int) -> None:
        """Store a body read when the cache was at `generation`, unless a notice came since."""
        if not self.enabled or generation != self.generation or len(body) > self.max_bytes // 8:
            return
        key = (kind, run_id.int)
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old[0])
        self._items[key] = (body, tag)
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            _, (evicted, _) = self._items.popitem(last=False)
            self._bytes -= len(evicted)

    def get_page(self, key: Hashable) -> Any | None:
        """The page stored under `key` since the last change, or None."""
        if not self.enabled:
            return None
        item = self._pages.get(key)
        if item is None:
            return None
        self._pages.move_to_end(key)
        return item[1]

    def put_page(self, key: Hashable, body: bytes, page: Any, generation: int) -> None:
        """Store a page (its JSON `body` counts toward the bounds) read when the cache was at
        `generation`, unless anything changed since."""
        if not self.enabled or generation != self.generation or len(body) > self.max_bytes // 8:
            return
        old = self._pages.pop(key, None)
        if old is not None:
            self._page_bytes -= len(old[0])
        self._pages[key] = (body, page)
        self._page_bytes += len(body)
        while len(self._pages) > PAGE_ENTRIES or self._page_bytes > self.max_bytes // 4:
            _, (evicted, _) = self._pages.popitem(last=False)
            self._page_bytes -= len(evicted)

    def _drop_pages(self) -> None:
        self._pages.clear()
        self._page_bytes = 0

    def invalidate(self, run_ids: Iterable[uuid.UUID]) -> None:
        self.generation += 1
        self._drop_pages()
        for run_id in run_ids:
            for kind in ("run", "states"):
                item = self._items.pop((kind, run_id.int), None)
                if item is not None:
                    self._bytes -= len(item[0])

    def clear(self) -> None:
        self.generation += 1
        self._items.clear()
        self._bytes = 0
        self._drop_pages()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def pages(self) -> int:
        """Whole pages held (for /metrics)."""
        return len(self._pages)

    def apply_notice(self, payload: str) -> None:
        """Drop the runs a notice names: `schema:id,id,...`, or `schema:*` for all of them.

        Every schema's service in a database listens on the one channel, so a notice names its
        schema, and another schema's notice is skipped: its runs are none of this cache's, and
        counting it as a notice would keep the reads in flight from being stored. A notice that
        names no schema (from a process of an older version) counts for every schema."""
        schema, named, body = payload.rpartition(":")
        if named and self.schema is not None and schema != self.schema:
            return
        if body == "*":
            self.clear()
            return
        ids = []
        for part in body.split(","):
            try:
                ids.append(uuid.UUID(part))
            except ValueError:
                self.clear()  # a notice we cannot read: assume the worst
                return
        self.invalidate(ids)


async def listen(cache: RunCache, url: str) -> None:
    """Keep the cache in step with the database until cancelled (run as a background task)."""
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                url, autocommit=True, application_name="migration-api-cache", **KEEPALIVE_KWARGS
            ) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                cache.clear()
                cache.listening = True
                outages = cache.gate.closed_count if cache.gate is not None else 0
                while True:
                    async for notice in conn.notifies(timeout=LISTEN_HEARTBEAT_SECONDS):
                        cache.apply_notice(notice.payload)
                    # A silent connection (half-open TCP) fails this within the timeout; after an
                    # outage notices may have been lost, so listen again on a fresh connection.
                    async with asyncio.timeout(HEARTBEAT_TIMEOUT_SECONDS):
                        await conn.execute("SELECT 1")
                    if cache.gate is not None and cache.gate.closed_count != outages:
                        raise ConnectionResetError("the database was away: listening again")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: stop serving from memory until listening again
            logger.warning("run cache off: notification listener failed (%s); retrying", exc.__class__.__name__)
        finally:
            cache.listening = False
            cache.clear()
        await asyncio.sleep(RECONNECT_SECONDS)


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
