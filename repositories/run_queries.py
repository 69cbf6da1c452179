"""List and search queries over `migration_runs`: filters, allow-listed sorts, keyset cursors, ranking.

Every page is ordered by an allow-listed sort key plus the run id as tiebreak, so the order is
total and a cursor (the last row's sort values and id) continues exactly after that row however
many runs arrive meanwhile. The default order walks the engines' own created_at index (a cursor
adds a redundant bound on created_at so the walk starts at it), filtered or not, so such a page
costs about the same at any depth; the other sort keys have no index of their own, because every
index costs the engines' writes (docs/performance.md, "Indexes").

Search ranks matches in three tiers, each a separate index-driven branch of one UNION ALL:
0 = the run id, the file path or the file name equals the term; 1 = one of them starts with it;
2 = the term occurs anywhere in file path, record type, status, error message or run id (a
trigram index on the service's copy of those fields, `migration_api_search_docs`, so a term that
matches nothing costs an index probe, not a scan; while the change-log folder rebuilds that copy,
`indexed=False` and the tier scans the runs).
Terms of one or two characters have no trigrams: they are matched against the newest
`SHORT_TERM_WINDOW` runs only, which keeps them bounded.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import math
import operator
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Final

import msgspec

from db.loaders import OutOfRange

RUN_COLUMNS: Final = (
    "id, file_path, record_type, status, created_at, updated_at, completed_at, total_duration, success, error_message"
)
# sort key -> the ORDER BY columns (the last one is always the id tiebreak)
SORT_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "created_at": ("created_at", "id"),
    "updated_at": ("updated_at", "id"),
    "completed_at": ("completed_at", "id"),
    "total_duration": ("total_duration", "id"),
    "status": ("status", "created_at", "id"),
    "record_type": ("record_type", "created_at", "id"),
}
NULLABLE_SORT_COLUMNS: Final = frozenset({"completed_at", "total_duration"})
DEFAULT_SORT: Final = "-created_at"
SHORT_TERM_WINDOW: Final = 20_000
MIN_TRIGRAM_TERM: Final = 3
# The text the trigram index covers; the per-field conditions below are its exact recheck.
SEARCH_DOCUMENT: Final = "migration_api_search_document(file_path, record_type, status, error_message, id)"
FILE_NAME: Final = "migration_api_file_name(file_path)"
RANKED_TIERS: Final = (0, 1)
SUBSTRING_TIER: Final = 2
CURSOR_VERSION: Final = 2


# A condition with a `%s` for each of its values, and the values.
Condition = tuple[str, list[Any]]


class QueryError(ValueError):
    """A list/search parameter the query cannot use; `parameter` names it for the 400."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True)
class Sort:
    key: str
    descending: bool

    @classmethod
    def parse(cls, raw: str | None) -> Sort:
        text = (raw or DEFAULT_SORT).strip()
        descending = text.startswith("-")
        key = text.lstrip("-+")
        if key not in SORT_COLUMNS:
            allowed = ", ".join(SORT_COLUMNS)
            raise QueryError("sort", f"unknown sort key {raw!r}; use one of {allowed}, with '-' for descending")
        return cls(key, descending)

    @property
    def columns(self) -> tuple[str, ...]:
        return SORT_COLUMNS[self.key]

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.key


class Cursor(msgspec.Struct, array_like=True):
    """What a next-page token carries: the last row's rank and sort values, and what it was made for."""

    version: int
    query_hash: str
    rank: int
    values: list[Any]


@dataclass
class RunQuery:
    """Filters, sort and paging of a list or search request (already validated for type and range)."""

    statuses: tuple[str, ...] = ()
    record_types: tuple[str, ...] = ()
    file_path: str | None = None
    success: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    completed_after: datetime | None = None
    completed_before: datetime | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    q: str | None = None
    sort: Sort = field(default_factory=lambda: Sort.parse(None))
    limit: int = 50
    offset: int = 0
    cursor: str | None = None

    def is_unfiltered(self) -> bool:
        return not _filter_conditions(self)

    def cache_key(self) -> tuple[Any, ...]:
        """Everything that decides the page (every field, so a filter added later is part of it):
        the read cache's key for it (cache/)."""
        return _query_fields(self)

    def query_hash(self) -> str:
        """Identifies the filters and sort, so that a cursor is only used with the query that made it."""
        parts = [_filter_conditions(self), self.q, str(self.sort)]
        return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()[:16]

    def decode_cursor(self) -> Cursor | None:
        if self.cursor is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(self.cursor + "=" * (-len(self.cursor) % 4))
            cursor = msgspec.json.decode(raw, type=Cursor)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise QueryError("cursor", "not a cursor issued by this API (take it from the Link header)") from None
        if cursor.version != CURSOR_VERSION or len(cursor.values) != len(self.sort.columns):
            raise QueryError("cursor", "not a cursor issued by this API (take it from the Link header)")
        if cursor.query_hash != self.query_hash():
            raise QueryError("cursor", "this cursor was issued for other filters or another sort")
        if self.offset:
            raise QueryError("offset", "cannot be combined with cursor")
        return cursor

    @property
    def key_columns(self) -> str:
        """The sort columns, the id last: what orders a page and what a cursor carries."""
        return ", ".join(self.sort.columns)

    def encode_cursor(self, rank: int, values: Sequence[Any]) -> str:
        """A next-page token after the row with these `key_columns` values."""
        token = msgspec.json.encode(Cursor(CURSOR_VERSION, self.query_hash(), rank, [_cursor_value(v) for v in values]))
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


_query_fields: Final = operator.attrgetter(*(f.name for f in fields(RunQuery)))


def like_pattern(term: str) -> str:
    """A substring ILIKE pattern in which `%`, `_` and backslash stand for themselves."""
    return "%" + escape_like(term) + "%"


def escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def uuid_prefix_range(term: str) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """[low, high) of the ids whose canonical text starts with `term`, or None if none can."""
    template = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    text = term.lower()
    if not text or len(text) > len(template):
        return None
    for ch, slot in zip(text, template, strict=False):
        if (slot == "-") != (ch == "-") or (slot == "x" and ch not in "0123456789abcdef"):
            return None
    digits = text.replace("-", "")
    low = int(digits.ljust(32, "0"), 16)
    high = (int(digits, 16) + 1) << (4 * (32 - len(digits)))
    return uuid.UUID(int=low), (uuid.UUID(int=high) if high < 1 << 128 else None)


def _filter_conditions(query: RunQuery) -> list[Condition]:
    """(condition with one `%s` for its bound value, [the value]) for every filter that is set.

    Column names come from this function's constants, never from the request.
    """
    conditions: list[Condition] = []
    # One value is an equality, which lets a (column, sort key) index deliver rows in order.
    if len(query.statuses) == 1:
        conditions.append(("status = %s", [query.statuses[0]]))
    elif query.statuses:
        conditions.append(("status = ANY(%s)", [list(query.statuses)]))
    if len(query.record_types) == 1:
        conditions.append(("record_type = %s", [query.record_types[0]]))
    elif query.record_types:
        conditions.append(("record_type = ANY(%s)", [list(query.record_types)]))
    if query.file_path is not None:
        conditions.append(("file_path ILIKE %s", [like_pattern(query.file_path)]))
    if query.success is not None:
        conditions.append(("success = %s", [query.success]))
    ranges = (
        ("created_at", query.created_after, query.created_before),
        ("updated_at", query.updated_after, query.updated_before),
        ("completed_at", query.completed_after, query.completed_before),
        ("total_duration", query.min_duration, query.max_duration),
    )
    for column, low, high in ranges:
        if low is not None:
            conditions.append((f"{column} >= %s", [low]))
        if high is not None:
            # durations are an inclusive range; times are half-open [after, before)
            conditions.append((f"{column} {'<=' if column == 'total_duration' else '<'} %s", [high]))
    return conditions


def _keyset_condition(query: RunQuery, cursor: Cursor) -> Condition:
    """The condition "after the cursor's row" in the query's order, with its values (see `_filter_conditions`)."""
    cols = query.sort.columns
    op = "<" if query.sort.descending else ">"
    first = cols[0]
    values = _typed_cursor_values(cols, cursor.values)
    if first in NULLABLE_SORT_COLUMNS:
        if values[0] is None:
            # NULLs sort last ascending and first descending (PostgreSQL's defaults, which the index matches)
            rest = f" OR {first} IS NOT NULL" if query.sort.descending else ""
            return f"(({first} IS NULL AND id {op} %s){rest})", [values[1]]
        cmp = f"({first}, id) {op} (%s, %s)"
        return (cmp if query.sort.descending else f"({cmp} OR {first} IS NULL)"), values
    # The redundant bound on the first column lets an index on that column alone (the engines'
    # created_at index) start at the cursor; the row comparison alone would not.
    row = f"({', '.join(cols)}) {op} ({', '.join('%s' for _ in cols)})"
    return f"({first} {op}= %s AND {row})", [values[0], *values]


# PostgreSQL's text of a timestamp `datetime` cannot hold (TimeZone UTC, DateStyle ISO).
_OUT_OF_RANGE_TIMESTAMP: Final = re.compile(
    r"-?infinity"
    r"|[0-9]{4,}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?[+-][0-9]{2}(:[0-9]{2}){0,2}( BC)?"
)
_TIMESTAMP_COLUMNS: Final = frozenset({"created_at", "updated_at", "completed_at"})


def _cursor_value(value: Any) -> Any:
    """A sort value as a cursor carries it. JSON would turn a NaN or infinite duration into null and
    has no timestamp beyond `datetime`: those become text, which they are read back from."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, OutOfRange):
        return str(value)
    return value


_CURSOR_TYPES: Final[dict[str, Any]] = {
    "created_at": datetime,
    "updated_at": datetime,
    "completed_at": datetime | None,
    "total_duration": float | None,
    "status": str,
    "record_type": str,
    "id": uuid.UUID,
}


def _typed_cursor_values(columns: tuple[str, ...], values: list[Any]) -> list[Any]:
    """The cursor's values as query parameters; a timestamp in PostgreSQL's text stays text (the
    server parses it as the column's type)."""
    try:
        return [
            v
            if c in _TIMESTAMP_COLUMNS and isinstance(v, str) and _OUT_OF_RANGE_TIMESTAMP.fullmatch(v)
            else msgspec.convert(v, _CURSOR_TYPES[c], strict=False)
            for c, v in zip(columns, values, strict=True)
        ]
    except (msgspec.ValidationError, ValueError):
        raise QueryError("cursor", "not a cursor issued by this API (take it from the Link header)") from None


def _order_by(query: RunQuery) -> str:
    direction = " DESC" if query.sort.descending else ""
    return ", ".join(column + direction for column in query.sort.columns)


def _where(conditions: list[Condition]) -> str:
    return " WHERE " + " AND ".join(template for template, _ in conditions) if conditions else ""


def _values(conditions: list[Condition]) -> list[Any]:
    return [value for _, values in conditions for value in values]


def build_list(query: RunQuery, cursor: Cursor | None, columns: str = RUN_COLUMNS) -> tuple[str, list[Any]]:
    """One page of the plain list: `columns` of limit + 1 runs, to tell whether there is a next page."""
    conditions = _filter_conditions(query)
    if cursor is not None:
        conditions.append(_keyset_condition(query, cursor))
    where, order = _where(conditions), _order_by(query)
    statement = f"SELECT {columns} FROM migration_runs{where} ORDER BY {order} LIMIT %s OFFSET %s"
    return statement, [*_values(conditions), query.limit + 1, query.offset]


def _any(conditions: list[Condition]) -> Condition:
    return "(" + " OR ".join(template for template, _ in conditions) + ")", _values(conditions)


def _rank_conditions(term: str) -> tuple[Condition, Condition]:
    """(exact, prefix) conditions on run id, file path and file name."""
    lowered = term.lower()
    prefix_pattern = escape_like(lowered) + "%"
    # A file name that equals or starts with the term contains it, and so does the path: the cheap
    # strpos() test spares most rows of an ordered walk the file-name expression (the index
    # on the file name still serves `FILE_NAME LIKE` for rare terms).
    in_path = "strpos(lower(file_path), %s) > 0"
    exact: list[Condition] = [
        ("lower(file_path) = %s", [lowered]),
        (f"({in_path} AND {FILE_NAME} = %s)", [lowered, lowered]),
    ]
    prefix: list[Condition] = [
        ("lower(file_path) LIKE %s", [prefix_pattern]),
        (f"({in_path} AND {FILE_NAME} LIKE %s)", [lowered, prefix_pattern]),
    ]
    with contextlib.suppress(ValueError):
        exact.append(("id = %s", [uuid.UUID(lowered)]))
    id_range = uuid_prefix_range(lowered)
    if id_range is not None:
        low, high = id_range
        prefix.append(("id >= %s", [low]) if high is None else ("(id >= %s AND id < %s)", [low, high]))
    return _any(exact), _any(prefix)


def _contains_condition(term: str, indexed: bool) -> Condition:
    # The search document joins the fields with chr(31), which a term never contains (control
    # characters are refused), so a match in the document is a match within one field.
    pattern = like_pattern(term)
    if len(term) >= MIN_TRIGRAM_TERM:
        if indexed:
            # The trigram index is on the service's copy of the documents (kept by the change-log
            # folder, so engines' writes pay no GIN index); the run's own row is the exact recheck.
            return (
                f"({SEARCH_DOCUMENT} ILIKE %s AND EXISTS (SELECT 1 FROM migration_api_search_docs d "
                "WHERE d.id = migration_runs.id AND d.doc ILIKE %s))",
                [pattern, pattern],
            )
        return SEARCH_DOCUMENT + " ILIKE %s", [pattern]
    return (
        f"({SEARCH_DOCUMENT} ILIKE %s AND created_at >= coalesce((SELECT created_at FROM migration_runs "
        "ORDER BY created_at DESC OFFSET %s LIMIT 1), '-infinity'))",
        [pattern, SHORT_TERM_WINDOW],
    )


def build_search(
    query: RunQuery,
    cursor: Cursor | None,
    tiers: tuple[int, ...],
    limit: int,
    offset: int,
    columns: str = RUN_COLUMNS,
    indexed: bool = False,
) -> tuple[str, list[Any]]:
    """Search hits of the given tiers (see module doc), by tier then `sort`: `limit` rows after
    `offset`, each its `columns` and its tier (`rank`, last).

    Tiers below the cursor's are skipped, the cursor's own tier continues after the cursor.
    """
    assert query.q is not None
    (exact, exact_values), (prefix, prefix_values) = _rank_conditions(query.q)
    contains, contains_values = _contains_condition(query.q, indexed)
    tier_conditions: dict[int, Condition] = {
        0: (exact, exact_values),
        1: (f"{prefix} AND NOT {exact}", [*prefix_values, *exact_values]),
        2: (f"{contains} AND NOT {prefix} AND NOT {exact}", [*contains_values, *prefix_values, *exact_values]),
    }
    filters = _filter_conditions(query)
    order = _order_by(query)
    branches: list[str] = []
    values: list[Any] = []
    for rank in tiers:
        if cursor is not None and rank < cursor.rank:
            continue
        conditions = [tier_conditions[rank], *filters]
        if cursor is not None and rank == cursor.rank:
            conditions.append(_keyset_condition(query, cursor))
        branches.append(
            f"(SELECT {columns}, {rank} AS rank FROM migration_runs{_where(conditions)} ORDER BY {order} LIMIT %s)"
        )
        values += [*_values(conditions), limit + offset]
    if not branches:
        return f"SELECT {columns}, 0 AS rank FROM migration_runs WHERE false", []
    union = " UNION ALL ".join(branches)
    statement = f"SELECT * FROM ({union}) AS hits ORDER BY rank, {order} LIMIT %s OFFSET %s"
    return statement, [*values, limit, offset]


def build_count(query: RunQuery, indexed: bool = False) -> tuple[str, list[Any]]:
    """Every run the query matches (no paging)."""
    conditions = _filter_conditions(query)
    if query.q is not None:
        conditions.append(_any([*_rank_conditions(query.q), _contains_condition(query.q, indexed)]))
    return f"SELECT count(*) FROM migration_runs{_where(conditions)}", _values(conditions)
