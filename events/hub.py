"""The per-process fan-out of change events, and the stream of one client (see the package doc)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
import psycopg
from litestar.response import ServerSentEventMessage
from psycopg_pool import AsyncConnectionPool

from db.sqlfile import load_queries
from db.unit_of_work import UnitOfWork
from dto.events import Event, EventKind, EventStep
from dto.runs import RunRead

logger = logging.getLogger(__name__)

QUERIES: Final = load_queries(Path(__file__).with_name("queries.sql"))
CHANNEL: Final = "migration_api_events"
PAGE: Final = 500
RECONNECT_SECONDS: Final = 1.0
# The listener reads the table this often even without a notice (one lost while reconnecting).
POLL_SECONDS: Final = 5.0
# What EventSource waits before it reconnects, sent with the first message.
RETRY_MS: Final = 2000
STEP_KINDS: Final = frozenset({EventKind.STATE_APPENDED, EventKind.CHECKPOINT_APPENDED})

Encoded = tuple[Event, str]


@dataclass(frozen=True)
class EventFilter:
    """Which events a client wants; an empty set means any. Resets reach every client."""

    run_id: uuid.UUID | None = None
    statuses: frozenset[str] = frozenset()
    record_types: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    def matches(self, event: Event) -> bool:
        if event.kind == EventKind.RESET:
            return True
        return (
            (self.run_id is None or event.run_id == self.run_id)
            and (not self.statuses or event.status in self.statuses)
            and (not self.record_types or event.record_type in self.record_types)
            and (not self.kinds or event.kind in self.kinds)
        )


class Subscription:
    def __init__(self, event_filter: EventFilter, size: int) -> None:
        self.filter = event_filter
        self.queue: asyncio.Queue[Encoded | None] = asyncio.Queue(maxsize=size)
        self.dropped: str | None = None

    def end(self, reason: str | None = None) -> None:
        """Make the stream end after what it has read (now, when dropped)."""
        if reason is not None:
            self.dropped = reason
            while not self.queue.empty():
                self.queue.get_nowait()
        if self.queue.full():  # shutting down: the newest event gives way to the end
            self.queue.get_nowait()
        self.queue.put_nowait(None)


def encode(event: Event) -> Encoded:
    return event, msgspec.json.encode(event).decode()


def event_from_row(row: tuple[Any, ...]) -> Event:
    """A row of events/queries.sql `after`: the event's 8 columns, then the run's 10 (all null
    when the run is gone)."""
    event_id, kind, run_id, at, status, record_type, name, step_order = row[:8]
    run = RunRead(*row[8:]) if row[8] is not None else None
    return Event(
        id=event_id,
        kind=EventKind(kind),
        run_id=run_id,
        at=at,
        status=status,
        record_type=record_type,
        run=run,
        step=EventStep(name=name, order=step_order) if kind in STEP_KINDS else None,
        reason=name if kind == EventKind.RESET else None,
    )


async def read_position(conn: psycopg.AsyncConnection[Any]) -> tuple[int, int, int]:
    """(floor, newest, sequence): events up to `floor` may be missing; `newest` is the newest
    id held; no id above `sequence` has been handed out."""
    row = await (await conn.execute(QUERIES["position"])).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def select_events_after(
    conn: psycopg.AsyncConnection[Any], after: int, run_id: uuid.UUID | None, limit: int
) -> list[tuple[Any, ...]]:
    """The rows of up to `limit` events after `after` (of one run and the resets, with `run_id`)."""
    params: dict[str, Any] = {"after": after, "limit": limit}
    query = QUERIES["after"]
    if run_id is not None:
        query, params["run_id"] = QUERIES["after_for_run"], run_id
    return await (await conn.execute(query, params, prepare=True)).fetchall()


class EventsRepository:
    """The events table read for one request (the changes feed), on the request's connection."""

    def __init__(self, work: UnitOfWork) -> None:
        self.work = work

    async def position(self) -> tuple[int, int, int]:
        return await read_position(await self.work.connection())

    async def read_after(self, after: int, run_id: uuid.UUID | None = None, limit: int = PAGE) -> list[Encoded]:
        rows = await select_events_after(await self.work.connection(), after, run_id, limit)
        return [encode(event_from_row(row)) for row in rows]


def reset_event(newest: int, reason: str) -> Event:
    return Event(
        id=newest, kind=EventKind.RESET, run_id=None, at=None, status=None, record_type=None, run=None, reason=reason
    )


class Hub:
    """One per process: follows the events table and fans new events out to this process's streams."""

    def __init__(self, url: str, pool: AsyncConnectionPool, *, queue_size: int = 10_000) -> None:
        self.url = url
        self.pool = pool
        self.queue_size = queue_size
        self.last_id = 0
        # The schema this process serves: notices naming another one are another service's.
        self.schema = ""
        self.listening = False
        self.closed = False
        self._subscriptions: set[Subscription] = set()

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    # --- reading the table ------------------------------------------------------------------

    async def position(self) -> tuple[int, int, int]:
        """(floor, newest, sequence): see `read_position`."""
        # Per read, not the request's: the listener task's reads, and an SSE stream's (it must not hold one).
        async with self.pool.connection() as conn:
            return await read_position(conn)

    async def read_after(self, after: int, run_id: uuid.UUID | None = None, limit: int = PAGE) -> list[Encoded]:
        """Up to `limit` events after `after` (of one run and the resets, with `run_id`)."""
        # Per read, not the request's: the listener task's reads, and an SSE stream's (it must not hold one).
        async with self.pool.connection() as conn:
            rows = await select_events_after(conn, after, run_id, limit)
        return [encode(event_from_row(row)) for row in rows]

    def missed_since(self, after: int, floor: int, newest: int, sequence: int) -> str | None:
        """Why a client at `after` cannot resume (it is told to reload), or None."""
        if after < floor:
            return f"events after {after} are no longer all held (kept from {floor + 1}; retention or rebuild)"
        if after > sequence:
            return f"event {after} was never handed out by this database (newest {newest})"
        return None

    # --- following it -----------------------------------------------------------------------

    async def run(self) -> None:
        """Listen and fan out until cancelled (a background task of the lifespan)."""
        started = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, application_name="migration-api-events"
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if not started:
                        self.schema = await self._current_schema()
                        self.last_id = (await self.position())[1]
                        started = True
                    self.listening = True
                    await self._catch_up(check_floor=True)
                    while True:
                        payload = None
                        async for notice in conn.notifies(timeout=POLL_SECONDS, stop_after=1):
                            payload = notice.payload
                        if payload is None:  # a quiet spell: read the table, and check the position
                            await self._catch_up(check_floor=True)
                            continue
                        origin, _, newest = payload.rpartition(":")
                        if origin and origin != self.schema:
                            continue  # another schema's service in this database: its ids are not ours
                        if origin and newest.isdigit() and not self._subscriptions:
                            # Nobody to hand events to: note how far they go, read none.
                            self.last_id = max(self.last_id, int(newest))
                            continue
                        # Ours, or from a version whose notices name no schema: read the table.
                        await self._catch_up()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("event listener: %s: %s; reconnecting", exc.__class__.__name__, str(exc).strip())
            finally:
                self.listening = False
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _current_schema(self) -> str:
        """The schema whose notices are this hub's (they name it: events/queries.sql)."""
        async with self.pool.connection() as conn:  # the listener task's, not a request's
            row = await (await conn.execute("SELECT current_schema()")).fetchone()
        assert row is not None
        return str(row[0])

    async def _catch_up(self, *, check_floor: bool = False) -> None:
        if check_floor or not self._subscriptions:
            # After a reconnect or a quiet spell: were events pruned meanwhile, or is this hub ahead
            # of the ids handed out (the sequence made anew by a reinstall)? Clients are told to reload.
            floor, newest, sequence = await self.position()
            reason = self.missed_since(self.last_id, floor, newest, sequence)
            if reason is not None:
                self._fan_out([encode(reset_event(newest, reason))])
                self.last_id = newest
            if not self._subscriptions:
                self.last_id = max(self.last_id, newest)
                return
        while True:
            page = await self.read_after(self.last_id)
            if page:
                self._fan_out(page)
                self.last_id = page[-1][0].id
            if len(page) < PAGE:
                return

    def _fan_out(self, events: list[Encoded]) -> None:
        for sub in list(self._subscriptions):
            for item in events:
                if not sub.filter.matches(item[0]):
                    continue
                try:
                    sub.queue.put_nowait(item)
                except asyncio.QueueFull:
                    sub.end(f"the client read too slowly: {self.queue_size} events were waiting")
                    self._subscriptions.discard(sub)
                    break

    # --- clients ----------------------------------------------------------------------------

    def subscribe(self, event_filter: EventFilter) -> Subscription:
        sub = Subscription(event_filter, self.queue_size)
        if self.closed:
            sub.end()
        else:
            self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    def close(self) -> None:
        """End every stream (shutdown): each sends what it holds and returns."""
        self.closed = True
        for sub in self._subscriptions:
            sub.end()
        self._subscriptions.clear()


def message(item: Encoded) -> ServerSentEventMessage:
    event, data = item
    return ServerSentEventMessage(data=data, event=event.kind.value, id=str(event.id))


async def stream(
    hub: Hub, event_filter: EventFilter, last_event_id: int | None, heartbeat: float
) -> AsyncIterator[ServerSentEventMessage]:
    """One client's stream: what it missed since `last_event_id` (from the table), then what the
    hub hands it, with a comment every `heartbeat` seconds of silence."""
    sub = hub.subscribe(event_filter)  # first, so that nothing falls between the two
    try:
        yield ServerSentEventMessage(data=None, comment="migration-api events", retry=RETRY_MS)
        sent = hub.last_id
        if last_event_id is not None:
            floor, newest, sequence = await hub.position()
            reason = hub.missed_since(last_event_id, floor, newest, sequence)
            if reason is not None:
                yield message(encode(reset_event(newest, reason)))
                sent = max(sent, newest)
            else:
                sent = last_event_id
                while True:
                    page = await hub.read_after(sent, event_filter.run_id)
                    for item in page:
                        if event_filter.matches(item[0]):
                            yield message(item)
                        sent = item[0].id
                    if len(page) < PAGE:
                        break
        while True:
            try:
                live = await asyncio.wait_for(sub.queue.get(), heartbeat)
            except TimeoutError:
                yield ServerSentEventMessage(data=None, comment="heartbeat")
                continue
            if live is None:
                if sub.dropped is not None:
                    reason = msgspec.json.encode({"reason": sub.dropped}).decode()
                    yield ServerSentEventMessage(event="dropped", data=reason)
                return
            if live[0].id > sent:
                yield message(live)
                sent = live[0].id
    finally:
        hub.unsubscribe(sub)


def end_streams_on_signals(hub: Hub) -> Callable[[], None]:
    """End every stream when SIGTERM or SIGINT arrives, then let the server's own handler run.

    uvicorn waits for open responses before it shuts down, and Litestar's shutdown hooks run only
    after they end, so without this a server with open streams would wait out its graceful timeout
    (../shared/LITESTAR_NOTES.md). Returns the function that puts the previous handlers back. Does
    nothing outside the main thread (the test client runs the app in another one)."""
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(hub.close)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)
    except ValueError:  # not the main thread
        return lambda: None

    def restore() -> None:
        for sig, before in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, before)

    return restore
