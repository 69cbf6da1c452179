"""polyfactory factories: request bodies, and the engine tables' rows as an engine stores them
(db/migrations/0001_engine_tables.sql). tests/helpers.py inserts the rows these build."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from polyfactory import Use
from polyfactory.factories.msgspec_factory import MsgspecFactory

from dto.runs import RunCreate, RunStatus

RECORD_TYPES = ("disability", "absence", "group_policy", "employee", "claim")


class RunCreateFactory(MsgspecFactory[RunCreate]):
    __check_model__ = False
    id = None
    file_path = Use(
        lambda: (
            f"data/input/{MsgspecFactory.__random__.choice(RECORD_TYPES)}_"
            f"{MsgspecFactory.__random__.randint(1, 99999)}.csv"
        )
    )
    record_type = Use(lambda: MsgspecFactory.__random__.choice(RECORD_TYPES))
    status = RunStatus.RUNNING
    created_at = None
    completed_at = None
    total_duration = None
    success = None
    error_message = None


# --- stored rows: one Struct per engine table, its columns in table order ---------------------


class StoredRun(msgspec.Struct, kw_only=True):
    """A row of migration_runs. `updated_at` None is stored as `created_at` (the column is NOT NULL)."""

    id: uuid.UUID
    file_path: str
    record_type: str
    status: str
    created_at: datetime
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    total_duration: float | None = None
    success: bool | None = None
    error_message: str | None = None


class StoredState(msgspec.Struct, kw_only=True):
    """A row of workflow_states."""

    id: uuid.UUID
    run_id: uuid.UUID | str
    step_name: str
    state_data: Any
    created_at: datetime
    step_order: int
    metadata: Any = None


class StoredCheckpoint(msgspec.Struct, kw_only=True):
    """A row of workflow_checkpoints."""

    id: uuid.UUID
    run_id: uuid.UUID | str
    checkpoint_name: str
    state_data: Any
    created_at: datetime
    metadata: Any = None


def _now() -> datetime:
    return datetime.now(UTC)


def _empty() -> dict[str, Any]:
    return {}


class StoredRunFactory(MsgspecFactory[StoredRun]):
    """A running claim run created now; tests name what they depend on."""

    __check_model__ = False
    id = Use(uuid.uuid4)
    file_path = "data/input/claim_1.csv"
    record_type = "claim"
    status = "running"
    created_at = Use(_now)
    updated_at = None
    completed_at = None
    total_duration = None
    success = None
    error_message = None


class StoredStateFactory(MsgspecFactory[StoredState]):
    __check_model__ = False
    id = Use(uuid.uuid4)
    step_name = "file_reading"
    state_data = Use(_empty)
    created_at = Use(_now)
    step_order = 1
    metadata = None


class StoredCheckpointFactory(MsgspecFactory[StoredCheckpoint]):
    __check_model__ = False
    id = Use(uuid.uuid4)
    checkpoint_name = "checkpoint"
    state_data = Use(_empty)
    created_at = Use(_now)
    metadata = None


def aware(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)
