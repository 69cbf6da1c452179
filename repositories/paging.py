"""Pages of a run's states or checkpoints: bounded by a row count and by stored size."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

# Rows of one page when the client does not say: enough for the dashboards that read a run's
# states whole (runs have tens to hundreds of steps), and the largest page a client may ask for.
DEFAULT_PAGE_ITEMS: Final = 1000
MAX_PAGE_ITEMS: Final = 10_000
# A page stops once its items' stored size (PostgreSQL's, compressed) reaches this, whatever the
# limit: a run of 100,000 states of 1 MB each is then served 16 MiB at a time, not all at once.
MAX_PAGE_BYTES: Final = 16 * 1024 * 1024

T = TypeVar("T")


@dataclass(frozen=True)
class PageWindow:
    limit: int = DEFAULT_PAGE_ITEMS
    after: uuid.UUID | None = None
    max_bytes: int = MAX_PAGE_BYTES

    @property
    def cacheable(self) -> bool:
        """Only the default first page goes through the read cache."""
        return self.after is None and self.limit == DEFAULT_PAGE_ITEMS and self.max_bytes == MAX_PAGE_BYTES

    def params(self, run_id: uuid.UUID) -> dict[str, Any]:
        return {"run_id": run_id, "after": self.after, "fetch": self.limit + 1, "max_bytes": self.max_bytes}


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: uuid.UUID | None

    @classmethod
    def cut(cls, rows: Sequence[Sequence[Any]], window: PageWindow, make: Callable[..., T]) -> Page[T] | None:
        """Rows of a page query (the item's columns, then `fetched`) as a page; None: no such run."""
        if not rows:
            return None
        present = [row for row in rows if row[0] is not None]
        fetched = int(present[0][-1]) if present else 0
        items = [make(*row[:-1]) for row in present[: window.limit]]
        more = len(present) > window.limit or fetched > len(present)
        return cls(items, items[-1].id if more and items else None)  # type: ignore[attr-defined]
