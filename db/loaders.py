"""Reading the values engines store that Python cannot hold, without slowing down the ones it can.

Engines write rows with their own SQL, so a `timestamptz` may be 'infinity', '-infinity' or a year
outside 1..9999 (PostgreSQL accepts 4713 BC to 294276 AD), a `float8` NaN or ±Infinity, and a JSON
document a number beyond float8 or thousands of levels deep. The API serves them all (README,
"Values written by engines"):

- Timestamps Python's `datetime` cannot hold are read as None, i.e. JSON null. The pool's
  connections load text-format `timestamptz` with `TolerantTimestamptzLoader`. The hot paths read
  binary rows with psycopg's C loaders, which refuse such values with a DataError; `fetch_all`,
  `fetch_one` and `fetch_keeping` then read the same statement again as text (only results that
  hold such a value pay). psycopg's C loaders cannot be subclassed, and the tolerant loader wraps
  one in a Python call per value: about 0.16 µs more per timestamp, 2.7 times the C loader's cost
  (subclassing psycopg's pure-Python loaders instead costs 10 times), which the fallback spares
  every row that needs none.
- Non-finite floats need no loader: msgspec encodes NaN and ±Infinity as null, which is the
  mapping the API documents, at no cost per value (a float loader would be a Python call per
  value on every row).
- JSON that msgspec cannot decode into Python values (a number beyond float8, nesting deeper than
  the interpreter's recursion limit) is served verbatim: PostgreSQL's text of a json/jsonb value
  is strict JSON, and `msgspec.Raw` is encoded as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
import psycopg
from psycopg import AsyncConnection, abc, postgres
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import AdaptersMap, Loader
from psycopg.pq import Format

TIMESTAMPTZ_OID: Final = postgres.types["timestamptz"].oid


def _psycopg_loader(oid: int, fmt: Format) -> type[abc.Loader]:
    loader = postgres.adapters.get_loader(oid, fmt)
    assert loader is not None  # psycopg registers one for every built-in type
    return loader


# psycopg's own text loader (the C one when psycopg[binary] or [c] is installed).
_TIMESTAMPTZ_TEXT_LOADER: Final = _psycopg_loader(TIMESTAMPTZ_OID, Format.TEXT)

_decode_json = msgspec.json.decode


def load_json(data: str | bytes) -> Any:
    """JSON from PostgreSQL as Python values; a document those cannot hold is kept as raw JSON."""
    try:
        return _decode_json(data)
    except (msgspec.DecodeError, RecursionError):
        return msgspec.Raw(data)


class OutOfRange(str):
    """PostgreSQL's text of a timestamp `datetime` cannot hold ('infinity', '4713-01-01 00:00:00+00 BC').

    Only list and search pages see it (`fetch_keeping`), for their cursors: it is the exact value
    to continue after, and PostgreSQL parses it back. Rows are served with None in its place.
    """

    __slots__ = ()


class TolerantTimestamptzLoader(Loader):
    """psycopg's text `timestamptz` loader, with None for what `datetime` cannot hold."""

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self._load = _TIMESTAMPTZ_TEXT_LOADER(oid, context).load

    def load(self, data: Buffer) -> Any:
        try:
            return self._load(data)
        except psycopg.DataError:
            return None


class KeepingTimestamptzLoader(TolerantTimestamptzLoader):
    """As TolerantTimestamptzLoader, but an `OutOfRange` with PostgreSQL's text instead of None."""

    def load(self, data: Buffer) -> Any:
        try:
            return self._load(data)
        except psycopg.DataError:
            return OutOfRange(bytes(data).decode())


def tolerant_adapters() -> AdaptersMap:
    """The adapters the pool's connections start from: psycopg's, with the tolerant text loader."""
    adapters = AdaptersMap(postgres.adapters)
    adapters.register_loader(TIMESTAMPTZ_OID, TolerantTimestamptzLoader)
    return adapters


async def _fetch(
    conn: AsyncConnection[Any],
    query: str,
    params: Sequence[Any] | Mapping[str, Any],
    prepare: bool | None,
    text_loader: type[Loader] | None = None,
) -> tuple[list[Any], bool]:
    """The rows read as binary, or as text again if a value refuses the binary loaders; and
    whether they were read as text."""
    cur = await conn.execute(query, params, prepare=prepare, binary=True)
    try:
        return await cur.fetchall(), False
    except psycopg.DataError:
        # Only a timestamp can be refused. PostgreSQL reported no error: the same statement is
        # simply read once more, in text, whose loader is the tolerant one.
        cur = conn.cursor()
        if text_loader is not None:
            cur.adapters.register_loader(TIMESTAMPTZ_OID, text_loader)
        await cur.execute(query, params, prepare=prepare)
        return await cur.fetchall(), True


async def fetch_all(
    conn: AsyncConnection[Any], query: str, params: Sequence[Any] | Mapping[str, Any], *, prepare: bool | None = None
) -> list[Any]:
    """The rows of `query`, with None for the timestamps `datetime` cannot hold (binary rows first)."""
    return (await _fetch(conn, query, params, prepare))[0]


async def fetch_one(
    conn: AsyncConnection[Any], query: str, params: Sequence[Any] | Mapping[str, Any], *, prepare: bool | None = None
) -> Any | None:
    """The first row of `query` (None without one), read as `fetch_all` reads."""
    cur = await conn.execute(query, params, prepare=prepare, binary=True)
    try:
        return await cur.fetchone()
    except psycopg.DataError:
        cur = await conn.execute(query, params, prepare=prepare)
        return await cur.fetchone()


async def fetch_keeping(
    conn: AsyncConnection[Any], query: str, params: Sequence[Any] | Mapping[str, Any], *, prepare: bool | None = None
) -> tuple[list[Any], bool]:
    """The rows of `query` with an `OutOfRange` for each timestamp `datetime` cannot hold, and
    whether there may be any (the rows were read as text; pass them through `for_wire`)."""
    return await _fetch(conn, query, params, prepare, KeepingTimestamptzLoader)


def for_wire(row: Sequence[Any]) -> tuple[Any, ...]:
    """The row with None for each `OutOfRange`."""
    return tuple(None if isinstance(value, OutOfRange) else value for value in row)
