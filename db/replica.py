"""Reads on a hot-standby replica (`DATABASE_READ_URL`): which reads may go there, and when.

Only statements that read logged relations can run on a standby: the roll-ups, the search
documents, the change log and the event table are UNLOGGED (db/migrations/0009, 0011, 0012) for the
engines' write cost, and a standby has no contents for them ("cannot access temporary or unlogged
relations during recovery"). So the replica serves the run lists (`GET /api/v1/migrations`, which
read `migration_runs` and its indexes only); statistics, search, the change feed, writes,
conditional reads and idempotency stay on the primary (docs/scaling.md).

Read-your-writes: every successful write response carries `X-Commit-Position`, the primary's WAL
insert position after the commit. A list request that sends it back is served by the replica once
`pg_last_wal_replay_lsn()` has reached it, waiting at most `REPLICA_WAIT_MS`, else by the primary.

A monitor samples both servers every MONITOR_INTERVAL seconds. Lag in seconds is the age of the
oldest primary position (sampled by the monitor) that the replica has not replayed: 0 when it has
replayed everything, also when nothing is written. A replica that does not answer, is not in
recovery, or lags more than `REPLICA_MAX_LAG_SECONDS` is not read from until it recovers; a read
that fails on the replica is retried on the primary.

(Hand-written: psycopg's pool has no notion of replicas, and the routing needs the service's own
knowledge of which relations are logged.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, Final

import psycopg
from litestar.types import Message, Scope
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from config import Settings
from db.pool import pool_connection_kwargs

POSITION_HEADER: Final = "X-Commit-Position"
SERVED_BY_HEADER: Final = "X-Served-By"
MONITOR_INTERVAL: Final = 0.5
PROBE_TIMEOUT: Final = 1.0
# What a read on the replica may raise when the replica goes away (it is then retried on the primary).
REPLICA_FAILURES: Final = (psycopg.OperationalError, PoolTimeout, TimeoutError)

SELECT_PRIMARY_POSITION: Final = "SELECT pg_current_wal_insert_lsn()::text"
SELECT_REPLAYED: Final = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"

logger = logging.getLogger(__name__)


def parse_position(text: str | None) -> int | None:
    """A pg_lsn's text ('16/B374D848') as a number; None for None or anything else."""
    if text is None:
        return None
    high, sep, low = text.strip().partition("/")
    if not sep or not 0 < len(high) <= 8 or not 0 < len(low) <= 8:
        return None
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


class Replica:
    """The replica's pool, its last known state, and the routing decision for one read."""

    def __init__(self, url: str, settings: Settings, primary: AsyncConnectionPool) -> None:
        self.primary = primary
        self.max_lag = settings.replica_max_lag_seconds
        self.wait = settings.replica_wait_ms / 1000
        self.pool = AsyncConnectionPool(
            url,
            open=False,
            min_size=1,
            max_size=settings.pool_max_size,
            timeout=PROBE_TIMEOUT,
            name="migration-api-replica",
            kwargs=pool_connection_kwargs(settings),
        )
        # "starting" until the first sample, then "up", "lagging", "down" or "not a standby".
        self.state = "starting"
        self.note: str | None = None
        self.replayed: int | None = None
        self.lag_seconds: float | None = None
        self.lag_bytes: int | None = None
        self.reads = 0  # list reads the replica served (this process)
        self._unreplayed: deque[tuple[float, int]] = deque(maxlen=10_000)

    @property
    def usable(self) -> bool:
        return self.state == "up"

    async def open(self) -> None:
        await self.pool.open(wait=False)  # a replica that is down must not hold up startup

    async def close(self) -> None:
        await self.pool.close()

    async def run(self) -> None:
        """The monitor: sample both servers every MONITOR_INTERVAL seconds until cancelled."""
        while True:
            await self.sample()
            await asyncio.sleep(MONITOR_INTERVAL)

    async def sample(self) -> None:
        primary_position: int | None = None
        with contextlib.suppress(Exception):  # the primary's own outage is handled elsewhere
            async with asyncio.timeout(PROBE_TIMEOUT), self.primary.connection(timeout=PROBE_TIMEOUT) as conn:
                row = await (await conn.execute(SELECT_PRIMARY_POSITION)).fetchone()
                primary_position = parse_position(row[0] if row else None)
        now = time.monotonic()
        if primary_position is not None and (not self._unreplayed or self._unreplayed[-1][1] < primary_position):
            self._unreplayed.append((now, primary_position))
        try:
            async with asyncio.timeout(PROBE_TIMEOUT), self.pool.connection(timeout=PROBE_TIMEOUT) as conn:
                row = await (await conn.execute(SELECT_REPLAYED)).fetchone()
        except Exception as exc:  # every failure means the same: not readable now
            self._set("down", f"not answering ({exc.__class__.__name__})")
            return
        if row is None or not row[0]:
            self._set("not a standby", "the server is not in recovery: its positions are not the primary's")
            return
        self.replayed = parse_position(row[1])
        replayed = self.replayed or 0
        while self._unreplayed and self._unreplayed[0][1] <= replayed:
            self._unreplayed.popleft()
        self.lag_seconds = round(now - self._unreplayed[0][0], 3) if self._unreplayed else 0.0
        self.lag_bytes = max(0, primary_position - replayed) if primary_position is not None else None
        if self.lag_seconds > self.max_lag:
            self._set(
                "lagging", f"{self.lag_seconds:g} s behind the primary (REPLICA_MAX_LAG_SECONDS {self.max_lag:g})"
            )
        else:
            self._set("up", None)

    def _set(self, state: str, note: str | None) -> None:
        if state != self.state:
            level = logging.INFO if state == "up" else logging.WARNING
            logger.log(level, "read replica: %s%s", state, f" ({note})" if note else "")
        self.state, self.note = state, note

    def failed(self, exc: BaseException) -> None:
        """A read on the replica failed: stop reading there until the monitor sees it answer again."""
        self._set("down", f"a read failed ({exc.__class__.__name__})")

    async def read_pool(self, after_header: str | None) -> AsyncConnectionPool | None:
        """The replica's pool when it may serve a read that must see the position in `after_header`
        (X-Commit-Position of the client's last write); None means: read on the primary."""
        if not self.usable:
            return None
        if after_header is None:
            return self.pool
        after = parse_position(after_header)
        if after is None:
            return None  # an unreadable position: the primary is always fresh enough
        deadline = time.monotonic() + self.wait
        while True:
            if self.replayed is not None and self.replayed >= after:
                return self.pool
            try:
                async with asyncio.timeout(PROBE_TIMEOUT), self.pool.connection(timeout=PROBE_TIMEOUT) as conn:
                    row = await (await conn.execute(SELECT_REPLAYED)).fetchone()
            except REPLICA_FAILURES as exc:
                self.failed(exc)
                return None
            replayed = parse_position(row[1] if row else None)
            if replayed is not None and replayed >= after:
                return self.pool
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.01)

    def health(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "note": self.note,
            "lag_seconds": self.lag_seconds,
            "lag_bytes": self.lag_bytes,
            "reads": self.reads,
        }


async def stamp_commit_position(message: Message, scope: Scope) -> None:
    """As a successful write starts its response (its transaction has committed), add the
    primary's WAL insert position, which is at or past the commit, as X-Commit-Position."""
    if message["type"] != "http.response.start" or scope.get("method") in {"GET", "HEAD", "OPTIONS"}:
        return
    state = scope["litestar_app"].state
    if state.replica is None or message["status"] >= 400:
        return
    with contextlib.suppress(Exception):  # the write stands; only the hint is missing
        async with state.pool.connection(timeout=PROBE_TIMEOUT) as conn:
            row = await (await conn.execute(SELECT_PRIMARY_POSITION)).fetchone()
        if row is not None:
            headers = list(message.get("headers", []))
            headers.append((POSITION_HEADER.lower().encode(), str(row[0]).encode()))
            message["headers"] = headers
