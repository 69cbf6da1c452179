"""Every SQL statement that touches `workflow_states`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Final

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import args_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from cache import RunCache
from db.loaders import fetch_all
from dto.steps import StateCreate, StateRead

STATE_COLUMNS: Final = "id, run_id, step_name, state_data, created_at, step_order, metadata"
# The run's states, joined from the run itself so that one round trip also says whether the run
# exists: no row = no such run; one row of NULLs = a run without states.
SELECT_STATES_OF_RUN: Final = """
    SELECT s.id, s.run_id, s.step_name, s.state_data, s.created_at, s.step_order, s.metadata
      FROM migration_runs r LEFT JOIN workflow_states s ON s.run_id = r.id
     WHERE r.id = %(run_id)s ORDER BY s.step_order, s.created_at, s.id"""
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
    def __init__(self, pool: AsyncConnectionPool, cache: RunCache | None = None) -> None:
        self.pool = pool
        self.cache = cache

    async def list_encoded(self, run_id: uuid.UUID) -> bytes | None:
        """The run's states as a JSON array, from the read cache when it holds them; None if no such run."""
        cache = self.cache
        generation = 0
        if cache is not None:
            hit = cache.get("states", run_id)
            if hit is not None:
                return hit[0]
            generation = cache.generation
        states = await self.list_for_run(run_id)
        if states is None:
            return None
        body = msgspec.json.encode(states)
        if cache is not None:
            cache.put("states", run_id, body, "", generation)
        return body

    async def list_for_run(self, run_id: uuid.UUID) -> list[StateRead] | None:
        """The run's states by step order; None when there is no such run."""
        async with self.pool.connection() as conn:
            rows = await fetch_all(conn, SELECT_STATES_OF_RUN, {"run_id": run_id}, prepare=True)
        return [StateRead(*row) for row in rows if row[0] is not None] if rows else None

    async def get(self, run_id: uuid.UUID, state_id: uuid.UUID) -> StateRead | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(StateRead))
            await cur.execute(SELECT_STATE, {"run_id": run_id, "id": state_id})
            return await cur.fetchone()

    async def latest(self, run_id: uuid.UUID) -> StateRead | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(StateRead))
            await cur.execute(SELECT_LATEST_STATE, {"run_id": run_id})
            return await cur.fetchone()

    @staticmethod
    async def next_step_order(conn: AsyncConnection[Any], run_id: uuid.UUID) -> int:
        cur = await conn.execute(SELECT_NEXT_STEP_ORDER, {"run_id": run_id})
        row = await cur.fetchone()
        return int(row[0]) if row else 1

    @staticmethod
    async def taken_step_orders(conn: AsyncConnection[Any], run_id: uuid.UUID, orders: Sequence[int]) -> list[int]:
        cur = await conn.execute(SELECT_TAKEN_STEP_ORDERS, {"run_id": run_id, "orders": list(orders)})
        return [r[0] for r in await cur.fetchall()]

    @staticmethod
    async def insert_many(
        conn: AsyncConnection[Any], run_id: uuid.UUID, states: Sequence[tuple[StateCreate, int]]
    ) -> list[StateRead]:
        """Insert (state, step_order) pairs on the caller's transaction; rows in the order given."""
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
        cur = conn.cursor(row_factory=args_row(StateRead))
        await cur.executemany(INSERT_STATE, params, returning=True)
        rows: list[StateRead] = []
        async for result in cur.results():
            rows.extend(await result.fetchall())
        return rows
