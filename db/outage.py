"""Fail fast while the database is away, and come back as soon as it does.

Without this, every request during an outage waits out the pool's timeout (5 s, and longer
under load) and the pool reconnects on an exponential back-off (1, 2, 4, 8 ... s), so recovery
could lag the database by as long as it was gone. Instead:

- one heartbeat per process runs `SELECT 1` on a connection of its own every
  HEARTBEAT_SECONDS; when it fails (or a request meets a lost connection) the gate closes;
- while the gate is closed, taking a connection from the pool raises DatabaseDown at once: the
  client gets a 503 with `detail` (errors.py), and requests already waiting for a connection
  are let go within WAIT_SLICE_SECONDS;
- the heartbeat keeps trying a fresh connection every HEARTBEAT_SECONDS; once one works, the
  pool drops its dead connections (`check()`) and the gate opens;
- the pool's own reconnection attempts are made at least every MAX_RECONNECT_DELAY seconds.

Every connection also carries TCP keepalives (`KEEPALIVE_KWARGS`), so a peer that vanished
without closing (half-open TCP) is noticed within about KEEPALIVE_DEADLINE_SECONDS even when no
statement is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final

import psycopg

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS: Final = 0.5
# A heartbeat that takes longer than this counts as a failure (a database that hangs is down).
HEARTBEAT_TIMEOUT_SECONDS: Final = 1.0
WAIT_SLICE_SECONDS: Final = 0.25
MAX_RECONNECT_DELAY: Final = 1.0
KEEPALIVE_DEADLINE_SECONDS: Final = 10
# libpq parameters: probe an idle connection after 3 s, every 2 s, give up after 3 misses; and
# abort a write the peer does not acknowledge within 10 s (tcp_user_timeout, Linux).
KEEPALIVE_KWARGS: Final[dict[str, Any]] = {
    "keepalives": 1,
    "keepalives_idle": 3,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": KEEPALIVE_DEADLINE_SECONDS * 1000,
    "connect_timeout": 2,
}


class DatabaseDown(psycopg.OperationalError):
    """Raised instead of waiting for a connection while the database is known to be away."""


class Gate:
    """Open while the database answers. `down_since` is the monotonic time it closed."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.reason = ""
        self.closed_count = 0

    @property
    def is_open(self) -> bool:
        return self.down_since is None

    def close(self, reason: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.reason = reason
            self.closed_count += 1
            logger.warning("database unavailable (%s): answering 503 until it is back", reason)

    def open(self) -> None:
        if self.down_since is not None:
            logger.warning("database back after %.1f s", time.monotonic() - self.down_since)
            self.down_since = None

    def refuse(self) -> DatabaseDown:
        assert self.down_since is not None
        gone = time.monotonic() - self.down_since
        return DatabaseDown(
            f"database unavailable for {gone:.1f} s ({self.reason}); the service retries every "
            f"{HEARTBEAT_SECONDS:g} s and recovers by itself"
        )


async def heartbeat(gate: Gate, url: str, on_recovery: Any) -> None:
    """Watch the database until cancelled (a background task): close the gate when it stops
    answering, call `on_recovery()` and open the gate when it answers again."""
    conn: psycopg.AsyncConnection[Any] | None = None
    while True:
        try:
            if conn is None or conn.closed:
                # Never prepared: behind a transaction-mode pooler (DB_POOLER=transaction) the next
                # `SELECT 1` may meet another server session, where the prepared statement is unknown.
                conn = await psycopg.AsyncConnection.connect(
                    url,
                    autocommit=True,
                    application_name="migration-api-heartbeat",
                    prepare_threshold=None,
                    **KEEPALIVE_KWARGS,
                )
            async with asyncio.timeout(HEARTBEAT_TIMEOUT_SECONDS):
                await conn.execute("SELECT 1")
            if not gate.is_open:
                await on_recovery()
                gate.open()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure means the same: not answering
            gate.close(exc.__class__.__name__)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
                conn = None
        await asyncio.sleep(HEARTBEAT_SECONDS)
