"""Every SQL statement that touches `workflow_states`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Final

import msgspec
from psycopg.rows import args_row
from psycopg.types.json import Jsonb

from cache import RunCache
from db.loaders import fetch_all
from db.unit_of_work import UnitOfWork
from dto.steps import StateCreate, StateRead
from repositories.paging import Page, PageWindow

STATE_COLUMNS: Final = "id, run_id, step_name, state_data, created_at, step_order, metadata"
# A page of the run's states after the cursor (the id of the previous page's last state), joined
# from the run itself so that one round trip also says whether the run exists: no row = no such
# run; one row of NULLs = nothing (more) to show. At most `fetch` rows are read, and a row is
# returned only while the page's stored size before it is under `max_bytes`, so one page never
# holds more than about that much however large the states are. `fetched` (rows read before the
# size cut) tells the caller whether more follow.
SELECT_STATES_PAGE: Final = """
    SELECT p.id, p.run_id, p.step_name, p.state_data, p.created_at, p.step_order, p.metadata, p.fetched
      FROM migration_runs r
      LEFT JOIN LATERAL (
          SELECT w.* FROM (
              SELECT s.*, count(*) OVER () AS fetched,
                     sum(s.bytes) OVER (ORDER BY s.step_order, s.created_at, s.id) - s.bytes AS bytes_before
                FROM (SELECT s.id, s.run_id, s.step_name, s.state_data, s.created_at, s.step_order, s.metadata,
                             pg_column_size(s.state_data) + coalesce(pg_column_size(s.metadata), 0) AS bytes
                        FROM workflow_states s
                       WHERE s.run_id = r.id
                         AND (%(after)s::uuid IS NULL OR (s.step_order, s.created_at, s.id) > (
                              SELECT a.step_order, a.created_at, a.id FROM workflow_states a
                               WHERE a.run_id = r.id AND a.id = %(after)s::uuid))
                       ORDER BY s.step_order, s.created_at, s.id
                       LIMIT %(fetch)s) s
          ) w WHERE w.bytes_before < %(max_bytes)s
      ) p ON true
     WHERE r.id = %(run_id)s
     ORDER BY p.step_order, p.created_at, p.id"""
SELECT_STATE: Final = f"SELECT {STATE_COLUMNS} FROM workflow_states WHERE run_id = %(run_id)s AND id = %(id)s"
# "Latest" is the furthest step: highest step_order, the newest on ties.
SELECT_LATEST_STATE: Final = f"""
    SELECT {STATE_COLUMNS} FROM workflow_states
     WHERE run_id = %(run_id)s ORDER BY step_order DESC, created_at DESC, id DESC LIMIT 1"""
SELECT_NEXT_STEP_ORDER: Final = "SELECT coalesce(max(step_order), 0) + 1 FROM workflow_states WHERE run_id = %(run_id)s"
SELECT_TAKEN_STEP_ORDERS: Final = """
    SELECT DISTINCT step_order FROM workflow_states
     WHERE run_id = %(run_id)s AND step_order = ANY(%(orders)s) ORDER BY step_order"""
# clock_timestamp(), not now(): the items of one batch get increasing times, in the order sent.
INSERT_STATE: Final = f"""
    INSERT INTO workflow_states (id, run_id, step_name, state_data, step_order, metadata, created_at)
    VALUES (%(id)s, %(run_id)s, %(step_name)s, %(state_data)s, %(step_order)s, %(metadata)s, clock_timestamp())
    RETURNING {STATE_COLUMNS}"""


class StatesRepository:
    def __init__(self, work: UnitOfWork) -> None:
        self.work = work
        self.cache: RunCache | None = work.cache

    async def page_encoded(self, run_id: uuid.UUID, window: PageWindow) -> tuple[bytes, uuid.UUID | None] | None:
        """A page of the run's states as a JSON array and the cursor of the next page (None on the
        last); None if no such run. The first page of the default size comes from the read cache
        when it holds it."""
        cache = self.cache if window.cacheable else None
        generation = 0
        if cache is not None:
            hit = cache.get("states", run_id)
            if hit is not None:
                return hit[0], uuid.UUID(hit[1]) if hit[1] else None
            generation = cache.generation
        page = await self.page(run_id, window)
        if page is None:
            return None
        body = msgspec.json.encode(page.items)
        if cache is not None:
            cache.put("states", run_id, body, str(page.next_cursor or ""), generation)
        return body, page.next_cursor

    async def page(self, run_id: uuid.UUID, window: PageWindow) -> Page[StateRead] | None:
        """States by step order after `window.after`; None when there is no such run."""
        rows = await fetch_all(await self.work.connection(), SELECT_STATES_PAGE, window.params(run_id), prepare=True)
        return Page.cut(rows, window, StateRead)

    async def get(self, run_id: uuid.UUID, state_id: uuid.UUID) -> StateRead | None:
        cur = (await self.work.connection()).cursor(row_factory=args_row(StateRead))
        await cur.execute(SELECT_STATE, {"run_id": run_id, "id": state_id})
        return await cur.fetchone()

    async def latest(self, run_id: uuid.UUID) -> StateRead | None:
        cur = (await self.work.connection()).cursor(row_factory=args_row(StateRead))
        await cur.execute(SELECT_LATEST_STATE, {"run_id": run_id})
        return await cur.fetchone()

    async def next_step_order(self, run_id: uuid.UUID) -> int:
        cur = await (await self.work.connection()).execute(SELECT_NEXT_STEP_ORDER, {"run_id": run_id})
        row = await cur.fetchone()
        return int(row[0]) if row else 1

    async def taken_step_orders(self, run_id: uuid.UUID, orders: Sequence[int]) -> list[int]:
        cur = await (await self.work.connection()).execute(
            SELECT_TAKEN_STEP_ORDERS, {"run_id": run_id, "orders": list(orders)}
        )
        return [r[0] for r in await cur.fetchall()]

    async def insert_many(self, run_id: uuid.UUID, states: Sequence[tuple[StateCreate, int]]) -> list[StateRead]:
        """Insert (state, step_order) pairs in the request's transaction; rows in the order given."""
        params = [
            {
                "id": uuid.uuid4(),
                "run_id": run_id,
                "step_name": state.step_name,
                "state_data": Jsonb(state.state_data),
                "step_order": order,
                "metadata": None if state.metadata is None else Jsonb(state.metadata),
            }
            for state, order in states
        ]
        self.work.wrote(run_id)
        cur = (await self.work.connection()).cursor(row_factory=args_row(StateRead))
        await cur.executemany(INSERT_STATE, params, returning=True)
        rows: list[StateRead] = []
        async for result in cur.results():
            rows.extend(await result.fetchall())
        return rows
