"""List and search queries over `migration_runs`: filters, allow-listed sorts, keyset cursors, ranking.

Every page is ordered by an allow-listed sort key plus the run id as tiebreak, so the order is
total and a cursor (the last row's sort values and id) continues exactly after that row however
many runs arrive meanwhile. Each sort key has a matching b-tree index (db/schema.py, version 4),
so a page costs the same at any depth.

Search ranks matches in three tiers, each a separate index-driven branch of one UNION ALL:
0 = the run id, the file path or the file name equals the term; 1 = one of them starts with it;
2 = the term occurs anywhere in file path, record type, status, error message or run id (a
trigram index on those fields, so a term that matches nothing costs an index probe, not a scan).
Terms of one or two characters have no trigrams: they are matched against the newest
`SHORT_TERM_WINDOW` runs only, which keeps them bounded.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import msgspec
from psycopg import sql

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
CURSOR_VERSION: Final = 1


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
        return not _filter_specs(self)

    def query_hash(self) -> str:
        """Identifies the filters and sort, so that a cursor is only used with the query that made it."""
        parts = [_filter_specs(self), self.q, str(self.sort)]
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
        token = msgspec.json.encode(Cursor(CURSOR_VERSION, self.query_hash(), rank, list(values)))
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


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


class _Params:
    """Named bind parameters with generated names, so that branches can share one statement."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> sql.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return sql.Placeholder(name)


def _filter_specs(query: RunQuery) -> list[tuple[str, Any]]:
    """(condition with one `{}` for its bound value, the value) for every filter that is set.

    Column names come from this function's constants, never from the request.
    """
    specs: list[tuple[str, Any]] = []
    # One value is an equality, which lets a (column, sort key) index deliver rows in order.
    if len(query.statuses) == 1:
        specs.append(("status = {}", query.statuses[0]))
    elif query.statuses:
        specs.append(("status = ANY({})", list(query.statuses)))
    if len(query.record_types) == 1:
        specs.append(("record_type = {}", query.record_types[0]))
    elif query.record_types:
        specs.append(("record_type = ANY({})", list(query.record_types)))
    if query.file_path is not None:
        specs.append(("file_path ILIKE {}", like_pattern(query.file_path)))
    if query.success is not None:
        specs.append(("success = {}", query.success))
    ranges = (
        ("created_at", query.created_after, query.created_before),
        ("updated_at", query.updated_after, query.updated_before),
        ("completed_at", query.completed_after, query.completed_before),
        ("total_duration", query.min_duration, query.max_duration),
    )
    for column, low, high in ranges:
        if low is not None:
            specs.append((f"{column} >= {{}}", low))
        if high is not None:
            # durations are an inclusive range; times are half-open [after, before)
            specs.append((f"{column} {'<=' if column == 'total_duration' else '<'} {{}}", high))
    return specs


def _keyset_spec(query: RunQuery, cursor: Cursor) -> tuple[str, list[Any]]:
    """The condition "after the cursor's row" in the query's order, with its values (see `_filter_specs`)."""
    cols = query.sort.columns
    op = "<" if query.sort.descending else ">"
    first = cols[0]
    values = _typed_cursor_values(cols, cursor.values)
    if first in NULLABLE_SORT_COLUMNS:
        if values[0] is None:
            # NULLs sort last ascending and first descending (PostgreSQL's defaults, which the index matches)
            rest = f" OR {first} IS NOT NULL" if query.sort.descending else ""
            return f"(({first} IS NULL AND id {op} {{}}){rest})", [values[1]]
        cmp = f"({first}, id) {op} ({{}}, {{}})"
        return (cmp if query.sort.descending else f"({cmp} OR {first} IS NULL)"), values
    return f"(({', '.join(cols)}) {op} ({', '.join('{}' for _ in cols)}))", values


def _condition(template: str, values: list[Any], params: _Params) -> sql.Composed:
    return sql.SQL(template).format(*(params.add(v) for v in values))


def _filters(query: RunQuery, params: _Params) -> list[sql.Composable]:
    return [_condition(template, [value], params) for template, value in _filter_specs(query)]


def _keyset(query: RunQuery, cursor: Cursor, params: _Params) -> sql.Composable:
    template, values = _keyset_spec(query, cursor)
    return _condition(template, values, params)


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
    try:
        return [msgspec.convert(v, _CURSOR_TYPES[c], strict=False) for c, v in zip(columns, values, strict=True)]
    except (msgspec.ValidationError, ValueError):
        raise QueryError("cursor", "not a cursor issued by this API (take it from the Link header)") from None


def _order_by(query: RunQuery) -> sql.Composable:
    direction = sql.SQL(" DESC" if query.sort.descending else "")
    return sql.SQL(", ").join(sql.Composed([sql.Identifier(c), direction]) for c in query.sort.columns)


def _where(conds: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")


# Rendered list statements by shape (which conditions, which sort): composing and rendering one
# costs more than the rest of the request, and a service sees few shapes.
_LIST_STATEMENTS: dict[tuple[str, ...], str] = {}
_MAX_LIST_STATEMENTS: Final = 1024


def build_list(query: RunQuery, cursor: Cursor | None, columns: str = RUN_COLUMNS) -> tuple[str, dict[str, Any]]:
    """One page of the plain list: `columns` of limit + 1 runs, to tell whether there is a next page."""
    conditions = [(template, [value]) for template, value in _filter_specs(query)]
    if cursor is not None:
        conditions.append(_keyset_spec(query, cursor))
    values = [v for _, vs in conditions for v in vs] + [query.limit + 1, query.offset]
    key = (columns, str(query.sort), *(template for template, _ in conditions))
    statement = _LIST_STATEMENTS.get(key)
    if statement is None:
        params = _Params()
        conds: list[sql.Composable] = [_condition(template, vs, params) for template, vs in conditions]
        composed = sql.SQL("SELECT {cols} FROM migration_runs{where} ORDER BY {order} LIMIT {n} OFFSET {o}").format(
            cols=sql.SQL(columns),
            where=_where(conds),
            order=_order_by(query),
            n=params.add(None),
            o=params.add(None),
        )
        statement = composed.as_string(None)
        if len(_LIST_STATEMENTS) >= _MAX_LIST_STATEMENTS:
            _LIST_STATEMENTS.clear()
        _LIST_STATEMENTS[key] = statement
    return statement, {f"p{i}": v for i, v in enumerate(values)}


def _rank_conditions(term: str, params: _Params) -> tuple[sql.Composable, sql.Composable]:
    """(exact, prefix) conditions on run id, file path and file name."""
    lowered = term.lower()
    exact: list[sql.Composable] = [
        sql.SQL("lower(file_path) = {}").format(params.add(lowered)),
        sql.SQL(FILE_NAME + " = {}").format(params.add(lowered)),
    ]
    prefix_pattern = escape_like(lowered) + "%"
    prefix: list[sql.Composable] = [
        sql.SQL("lower(file_path) LIKE {}").format(params.add(prefix_pattern)),
        sql.SQL(FILE_NAME + " LIKE {}").format(params.add(prefix_pattern)),
    ]
    with contextlib.suppress(ValueError):
        exact.append(sql.SQL("id = {}").format(params.add(uuid.UUID(lowered))))
    id_range = uuid_prefix_range(lowered)
    if id_range is not None:
        low, high = id_range
        if high is None:
            prefix.append(sql.SQL("id >= {}").format(params.add(low)))
        else:
            prefix.append(sql.SQL("(id >= {} AND id < {})").format(params.add(low), params.add(high)))
    return (
        sql.SQL("(") + sql.SQL(" OR ").join(exact) + sql.SQL(")"),
        sql.SQL("(") + sql.SQL(" OR ").join(prefix) + sql.SQL(")"),
    )


def _contains_condition(term: str, params: _Params) -> sql.Composable:
    # The search document joins the fields with chr(31), which a term never contains (control
    # characters are refused), so a match in the document is a match within one field.
    condition = sql.SQL(SEARCH_DOCUMENT + " ILIKE {}").format(params.add(like_pattern(term)))
    if len(term) >= MIN_TRIGRAM_TERM:
        return condition
    return sql.SQL(
        "({cond} AND created_at >= coalesce((SELECT created_at FROM migration_runs "
        "ORDER BY created_at DESC OFFSET {w} LIMIT 1), '-infinity'))"
    ).format(cond=condition, w=params.add(SHORT_TERM_WINDOW))


def build_search(
    query: RunQuery,
    cursor: Cursor | None,
    tiers: tuple[int, ...],
    limit: int,
    offset: int,
    columns: str = RUN_COLUMNS,
) -> tuple[sql.Composed, dict[str, Any]]:
    """Search hits of the given tiers (see module doc), by tier then `sort`: `limit` rows after
    `offset`, each its `columns` and its tier (`rank`, last).

    Tiers below the cursor's are skipped, the cursor's own tier continues after the cursor.
    """
    assert query.q is not None
    params = _Params()
    exact, prefix = _rank_conditions(query.q, params)
    conditions = {
        0: exact,
        1: sql.SQL("{} AND NOT {}").format(prefix, exact),
        2: sql.SQL("{} AND NOT {} AND NOT {}").format(_contains_condition(query.q, params), prefix, exact),
    }
    window = params.add(limit + offset)
    branches: list[sql.Composable] = []
    for rank in tiers:
        if cursor is not None and rank < cursor.rank:
            continue
        conds = [conditions[rank], *_filters(query, params)]
        if cursor is not None and rank == cursor.rank:
            conds.append(_keyset(query, cursor, params))
        branches.append(
            sql.SQL("(SELECT {cols}, {rank} AS rank FROM migration_runs{where} ORDER BY {order} LIMIT {n})").format(
                cols=sql.SQL(columns),
                rank=sql.Literal(rank),
                where=_where(conds),
                order=_order_by(query),
                n=window,
            )
        )
    if not branches:
        return sql.SQL("SELECT {cols}, 0 AS rank FROM migration_runs WHERE false").format(cols=sql.SQL(columns)), {}
    statement = sql.SQL("SELECT * FROM ({union}) AS hits ORDER BY rank, {order} LIMIT {n} OFFSET {o}").format(
        union=sql.SQL(" UNION ALL ").join(branches),
        order=_order_by(query),
        n=params.add(limit),
        o=params.add(offset),
    )
    return statement, params.values


def build_count(query: RunQuery) -> tuple[sql.Composed, dict[str, Any]]:
    """Every run the query matches (no paging)."""
    params = _Params()
    conds = _filters(query, params)
    if query.q is not None:
        exact, prefix = _rank_conditions(query.q, params)
        conds.append(sql.SQL("({} OR {} OR {})").format(exact, prefix, _contains_condition(query.q, params)))
    return sql.SQL("SELECT count(*) FROM migration_runs{}").format(_where(conds)), params.values
