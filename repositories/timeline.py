"""A run's step timeline and the median step durations of recent runs of the same record type.

Read on the request's connection (db/unit_of_work.py), in autocommit mode: three statements,
no transaction of their own."""

from __future__ import annotations

import uuid
from typing import Any, Final

from db.unit_of_work import UnitOfWork
from dto.timeline import RunTimeline, TimelineStep

# How many recent runs of the record type the step medians are taken over: the newest ones by
# created_at (index on (record_type, created_at, id)), with their states by run_id. Bounded, so
# the cost does not grow with the table.
REFERENCE_RUNS: Final = 200

SELECT_RUN: Final = """
    SELECT id, record_type, status, created_at, completed_at, total_duration
      FROM migration_runs WHERE id = %(id)s"""
# A step lasts from its state's created_at to the next state's (by step_order); the last one
# until the run's completed_at. A state recorded after the run completed (appended with late=true)
# is late: it has no duration and does not end the step before it. A step that starts or ends at
# ±infinity (written by an engine) has no duration: PostgreSQL before 17 cannot subtract such
# timestamps, and it would say nothing.
SELECT_RUN_STEPS: Final = """
    SELECT s.step_order, s.step_name, s.created_at,
           CASE WHEN s.created_at > r.completed_at THEN NULL
                ELSE coalesce(lead(s.created_at) OVER w, r.completed_at) END AS ended_at,
           coalesce(s.created_at > r.completed_at, false) AS late
      FROM workflow_states s JOIN migration_runs r ON r.id = s.run_id
     WHERE s.run_id = %(id)s
    WINDOW w AS (PARTITION BY coalesce(s.created_at > r.completed_at, false)
                 ORDER BY s.step_order, s.created_at, s.id)
     ORDER BY s.step_order, s.created_at, s.id"""
SELECT_STEP_MEDIANS: Final = """
    WITH reference AS (
        SELECT id, completed_at FROM migration_runs
         WHERE record_type = %(record_type)s AND id <> %(id)s
         ORDER BY created_at DESC LIMIT %(runs)s),
    steps AS (
        SELECT s.step_name, s.created_at AS started_at,
               coalesce(lead(s.created_at) OVER w, ref.completed_at) AS ended_at
          FROM reference ref JOIN workflow_states s ON s.run_id = ref.id
         WHERE NOT coalesce(s.created_at > ref.completed_at, false)
        WINDOW w AS (PARTITION BY s.run_id ORDER BY s.step_order, s.created_at, s.id)),
    durations AS (
        SELECT step_name, extract(epoch FROM ended_at - started_at) AS seconds
          FROM steps WHERE isfinite(started_at) AND isfinite(ended_at) AND ended_at >= started_at)
    SELECT step_name, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), count(seconds),
           (SELECT count(*) FROM reference)
      FROM durations WHERE seconds IS NOT NULL AND step_name = ANY(%(steps)s)
     GROUP BY step_name"""


def _seconds(delta: Any) -> float | None:
    return None if delta is None else round(delta.total_seconds(), 3)


class TimelineRepository:
    def __init__(self, work: UnitOfWork) -> None:
        self.work = work

    async def get(self, run_id: uuid.UUID) -> RunTimeline | None:
        """The run's timeline, or None if there is no such run."""
        conn = await self.work.connection()
        run = await (await conn.execute(SELECT_RUN, {"id": run_id})).fetchone()
        if run is None:
            return None
        steps = await (await conn.execute(SELECT_RUN_STEPS, {"id": run_id})).fetchall()
        medians: dict[str, tuple[float, int]] = {}
        reference_runs = 0
        if steps:
            names = sorted({step[1] for step in steps})
            params = {"record_type": run[1], "id": run_id, "runs": REFERENCE_RUNS, "steps": names}
            for name, median, n, runs in await (await conn.execute(SELECT_STEP_MEDIANS, params)).fetchall():
                medians[name] = (float(median), n)
                reference_runs = runs
        timeline = []
        for step_order, step_name, started_at, ended_at, late in steps:
            # None for a time Python cannot hold (db/loaders.py), as for a step still running, a late
            # step, or a next state stored with an earlier time (never a negative duration)
            duration = (
                _seconds(ended_at - started_at)
                if ended_at is not None and started_at is not None and ended_at >= started_at
                else None
            )
            median, sample = medians.get(step_name, (None, 0))
            median = round(median, 3) if median is not None else None
            ratio = round(duration / median, 2) if duration is not None and median else None
            timeline.append(
                TimelineStep(
                    step_order=step_order,
                    step_name=step_name,
                    started_at=started_at,
                    ended_at=ended_at,
                    late=late,
                    duration_seconds=duration,
                    median_seconds=median,
                    median_sample_size=sample,
                    ratio_to_median=ratio,
                )
            )
        ranked = [s for s in timeline if s.ratio_to_median is not None]
        slowest = max(ranked, key=lambda s: s.ratio_to_median or 0.0).step_name if ranked else None
        return RunTimeline(
            run_id=run[0],
            record_type=run[1],
            status=run[2],
            created_at=run[3],
            completed_at=run[4],
            total_duration=run[5],
            reference_runs=reference_runs,
            slowest_step=slowest,
            steps=timeline,
        )
