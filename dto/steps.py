"""Workflow step states and checkpoints on the wire (column names of their tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class StateRead(msgspec.Struct):
    """One workflow step's recorded state."""

    id: uuid.UUID
    run_id: uuid.UUID
    step_name: str
    state_data: dict[str, Any]
    created_at: datetime
    step_order: int
    metadata: dict[str, Any] | None


class CheckpointRead(msgspec.Struct):
    """One resumable checkpoint of a run."""

    id: uuid.UUID
    run_id: uuid.UUID
    checkpoint_name: str
    state_data: dict[str, Any]
    created_at: datetime
    metadata: dict[str, Any] | None
