"""Change events on the wire: what GET /api/v1/events streams and GET /api/v1/changes pages."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from dto.runs import RunRead
from dto.stored import STORED_TIME_NOTE


class EventKind(StrEnum):
    """What happened. `reset`: events were lost or pruned before the client's position (a crash
    of the server, a TRUNCATE, a rebuild, or a resume from further back than the retention):
    reload the view, then follow the stream again."""

    RUN_CREATED = "run_created"
    RUN_UPDATED = "run_updated"
    RUN_DELETED = "run_deleted"
    STATE_APPENDED = "state_appended"
    CHECKPOINT_APPENDED = "checkpoint_appended"
    RESET = "reset"


class EventStep(msgspec.Struct):
    """The state or checkpoint appended."""

    name: Annotated[str | None, msgspec.Meta(description="step_name of the state, checkpoint_name of the checkpoint")]
    order: Annotated[int | None, msgspec.Meta(description="step_order of the state; null for a checkpoint")]


class Event(msgspec.Struct):
    """One change. Its `id` orders all events; a client that reconnects with `Last-Event-ID`
    (or polls `/api/v1/changes?after=`) gets those after it."""

    id: int
    kind: EventKind
    run_id: uuid.UUID | None
    at: Annotated[datetime | None, msgspec.Meta(description="When the change was made" + STORED_TIME_NOTE)]
    status: Annotated[str | None, msgspec.Meta(description="The run's status after the change")]
    record_type: str | None
    run: Annotated[
        RunRead | None,
        msgspec.Meta(
            description="The run as it is now (as GET /api/v1/migrations/{run_id} returns it); null if deleted"
        ),
    ]
    step: EventStep | None = None
    reason: Annotated[str | None, msgspec.Meta(description="Why a `reset` was sent")] = None


class ChangesPage(msgspec.Struct):
    """Events after `after`, oldest first. Poll again with `after=last_id`. With `reset` true the
    events from `after` on are no longer all held (see the `reset` kind): reload, then poll from
    `last_id`."""

    events: list[Event]
    last_id: int
    reset: bool
