"""Workflow step states and checkpoints on the wire (column names of their tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from dto.stored import STORED_TIME_NOTE
from dto.validation import NUL_FREE_PATTERN, find_nul

# Deeper documents are refused with a 400 before PostgreSQL's parser runs out of stack on them.
MAX_JSON_DEPTH: Final = 100
# Most items one batch request may carry; larger reports are split by the engine.
MAX_BATCH_ITEMS: Final = 1000

StepName = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=100, pattern=NUL_FREE_PATTERN, description="Workflow step, e.g. file_reading"
    ),
]
CheckpointName = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=100, pattern=NUL_FREE_PATTERN, description="Checkpoint name, e.g. batch_12"),
]
StepOrder = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=2_147_483_647,
        description="Position of the step in the run; the next free number (highest + 1) when absent",
    ),
]
JsonObject = Annotated[dict[str, Any], msgspec.Meta(description="Any JSON object (no NUL characters)")]


def _json_depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def check_json_object(name: str, value: dict[str, Any] | None) -> None:
    """Raise ValueError naming the field when PostgreSQL would refuse the document (NUL, depth).

    msgspec turns the ValueError of a `__post_init__` into a validation error: a 400 whose
    `extra` carries this message.
    """
    if value is None:
        return
    where = find_nul(value)
    if where is not None:
        raise ValueError(f"{name}.{where} contains a NUL character, which PostgreSQL cannot store")
    if _json_depth_exceeds(value, MAX_JSON_DEPTH):
        raise ValueError(f"{name} is nested deeper than {MAX_JSON_DEPTH} levels")


class StateRead(msgspec.Struct):
    """One workflow step's recorded state."""

    id: uuid.UUID
    run_id: uuid.UUID
    step_name: str
    state_data: dict[str, Any]
    created_at: Annotated[datetime | None, msgspec.Meta(description="When the state was recorded" + STORED_TIME_NOTE)]
    step_order: int
    metadata: dict[str, Any] | None


class CheckpointRead(msgspec.Struct):
    """One resumable checkpoint of a run."""

    id: uuid.UUID
    run_id: uuid.UUID
    checkpoint_name: str
    state_data: dict[str, Any]
    created_at: Annotated[datetime | None, msgspec.Meta(description="When the checkpoint was taken" + STORED_TIME_NOTE)]
    metadata: dict[str, Any] | None


class StateCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A step state to append to a run."""

    step_name: StepName
    state_data: JsonObject
    metadata: JsonObject | None = None
    step_order: StepOrder | None = None

    def __post_init__(self) -> None:
        check_json_object("state_data", self.state_data)
        check_json_object("metadata", self.metadata)


class CheckpointCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A checkpoint to append to a run."""

    checkpoint_name: CheckpointName
    state_data: JsonObject
    metadata: JsonObject | None = None

    def __post_init__(self) -> None:
        check_json_object("state_data", self.state_data)
        check_json_object("metadata", self.metadata)


StateBatch = Annotated[list[StateCreate], msgspec.Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]
CheckpointBatch = Annotated[list[CheckpointCreate], msgspec.Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]
