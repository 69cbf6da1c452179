"""Every SQL statement that touches `workflow_checkpoints`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Final

from psycopg.rows import args_row
from psycopg.types.json import Jsonb

from db.loaders import fetch_all
from db.unit_of_work import UnitOfWork
from dto.steps import CheckpointCreate, CheckpointRead
from repositories.paging import Page, PageWindow

CHECKPOINT_COLUMNS: Final = "id, run_id, checkpoint_name, state_data, created_at, metadata"
# A page after the cursor, bounded by rows and by stored size (see SELECT_STATES_PAGE).
SELECT_CHECKPOINTS_PAGE: Final = """
    SELECT p.id, p.run_id, p.checkpoint_name, p.state_data, p.created_at, p.metadata, p.fetched
      FROM migration_runs r
      LEFT JOIN LATERAL (
          SELECT w.* FROM (
              SELECT c.*, count(*) OVER () AS fetched,
                     sum(c.bytes) OVER (ORDER BY c.created_at, c.id) - c.bytes AS bytes_before
                FROM (SELECT c.id, c.run_id, c.checkpoint_name, c.state_data, c.created_at, c.metadata,
                             pg_column_size(c.state_data) + coalesce(pg_column_size(c.metadata), 0) AS bytes
                        FROM workflow_checkpoints c
                       WHERE c.run_id = r.id
                         AND (%(after)s::uuid IS NULL OR (c.created_at, c.id) > (
                              SELECT a.created_at, a.id FROM workflow_checkpoints a
                               WHERE a.run_id = r.id AND a.id = %(after)s::uuid))
                       ORDER BY c.created_at, c.id
                       LIMIT %(fetch)s) c
          ) w WHERE w.bytes_before < %(max_bytes)s
      ) p ON true
     WHERE r.id = %(run_id)s
     ORDER BY p.created_at, p.id"""
SELECT_CHECKPOINT: Final = f"""
    SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints WHERE run_id = %(run_id)s AND id = %(id)s"""
# Newest first; `name` NULL means any name.
SELECT_LATEST_CHECKPOINT: Final = f"""
    SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints
     WHERE run_id = %(run_id)s AND (%(name)s::text IS NULL OR checkpoint_name = %(name)s::text)
     ORDER BY created_at DESC, id DESC LIMIT 1"""
# clock_timestamp(), not now(): the items of one batch get increasing times, in the order sent.
INSERT_CHECKPOINT: Final = f"""
    INSERT INTO workflow_checkpoints (id, run_id, checkpoint_name, state_data, metadata, created_at)
    VALUES (%(id)s, %(run_id)s, %(checkpoint_name)s, %(state_data)s, %(metadata)s, clock_timestamp())
    RETURNING {CHECKPOINT_COLUMNS}"""


class CheckpointsRepository:
    def __init__(self, work: UnitOfWork) -> None:
        self.work = work

    async def page(self, run_id: uuid.UUID, window: PageWindow) -> Page[CheckpointRead] | None:
        """Checkpoints oldest first after `window.after`; None when there is no such run."""
        rows = await fetch_all(
            await self.work.connection(), SELECT_CHECKPOINTS_PAGE, window.params(run_id), prepare=True
        )
        return Page.cut(rows, window, CheckpointRead)

    async def get(self, run_id: uuid.UUID, checkpoint_id: uuid.UUID) -> CheckpointRead | None:
        cur = (await self.work.connection()).cursor(row_factory=args_row(CheckpointRead))
        await cur.execute(SELECT_CHECKPOINT, {"run_id": run_id, "id": checkpoint_id})
        return await cur.fetchone()

    async def latest(self, run_id: uuid.UUID, name: str | None = None) -> CheckpointRead | None:
        cur = (await self.work.connection()).cursor(row_factory=args_row(CheckpointRead))
        await cur.execute(SELECT_LATEST_CHECKPOINT, {"run_id": run_id, "name": name})
        return await cur.fetchone()

    async def insert_many(self, run_id: uuid.UUID, checkpoints: Sequence[CheckpointCreate]) -> list[CheckpointRead]:
        """Insert checkpoints in the request's transaction; rows in the order given."""
        params = [
            {
                "id": uuid.uuid4(),
                "run_id": run_id,
                "checkpoint_name": c.checkpoint_name,
                "state_data": Jsonb(c.state_data),
                "metadata": None if c.metadata is None else Jsonb(c.metadata),
            }
            for c in checkpoints
        ]
        self.work.wrote(run_id)
        cur = (await self.work.connection()).cursor(row_factory=args_row(CheckpointRead))
        await cur.executemany(INSERT_CHECKPOINT, params, returning=True)
        rows: list[CheckpointRead] = []
        async for result in cur.results():
            rows.extend(await result.fetchall())
        return rows
