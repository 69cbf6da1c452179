"""Every SQL statement that touches `workflow_states`."""

from __future__ import annotations

import uuid
from typing import Final

from psycopg.rows import args_row
from psycopg_pool import AsyncConnectionPool

from dto.steps import StateRead

STATE_COLUMNS: Final = "id, run_id, step_name, state_data, created_at, step_order, metadata"
SELECT_STATES_OF_RUN: Final = f"""
    SELECT {STATE_COLUMNS} FROM workflow_states
     WHERE run_id = %(run_id)s ORDER BY step_order, created_at, id"""


class StatesRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def list_for_run(self, run_id: uuid.UUID) -> list[StateRead]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=args_row(StateRead))
            await cur.execute(SELECT_STATES_OF_RUN, {"run_id": run_id})
            return await cur.fetchall()
