"""Migration runs on the wire: field names are exactly the columns of `migration_runs`."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Annotated

import msgspec

from dto.stored import STORED_DURATION_NOTE, STORED_TIME_NOTE
from dto.validation import NUL_FREE_PATTERN

FilePath = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=500, pattern=NUL_FREE_PATTERN, description="Source file of the run"),
]
RecordType = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        pattern=NUL_FREE_PATTERN,
        description="Kind of records migrated (free text: disability, absence, claim, ...)",
    ),
]
ErrorMessage = Annotated[str, msgspec.Meta(max_length=100_000, pattern=NUL_FREE_PATTERN)]
Duration = Annotated[float, msgspec.Meta(ge=0, description="Seconds from creation to completion")]


def _check_timestamps(body: msgspec.Struct, names: tuple[str, ...]) -> None:
    """Read a timestamp without an offset as UTC (as the database, whose sessions run in UTC, would
    store it); refuse (400) one that leaves the years 1..9999 in UTC: it could be stored, not read back."""
    for name in names:
        value = getattr(body, name)
        if isinstance(value, datetime) and value.tzinfo is None:
            setattr(body, name, value.replace(tzinfo=UTC))
        elif isinstance(value, datetime):
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise ValueError(f"{name} is out of range: in UTC it falls outside the years 1 to 9999") from None


class RunStatus(StrEnum):
    """Statuses the API writes. Rows written by engines may carry others; reads pass them through."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunRead(msgspec.Struct):
    """One migration run as stored. Rows engines wrote may carry statuses the API does not know,
    negative durations and times it cannot represent; see the field descriptions."""

    id: uuid.UUID
    file_path: str
    record_type: str
    status: Annotated[str, msgspec.Meta(description="The run's status as stored (engines may use others)")]
    created_at: Annotated[datetime | None, msgspec.Meta(description="When the run was created" + STORED_TIME_NOTE)]
    updated_at: Annotated[datetime | None, msgspec.Meta(description="When the run row last changed" + STORED_TIME_NOTE)]
    completed_at: Annotated[
        datetime | None,
        msgspec.Meta(description="When the run finished (null while it runs)" + STORED_TIME_NOTE),
    ]
    total_duration: Annotated[
        float | None,
        msgspec.Meta(description="Seconds from creation to completion, as stored" + STORED_DURATION_NOTE),
    ]
    success: bool | None
    error_message: str | None


class RunCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new run. The server sets `id` (unless given), the timestamps, and `status` 'running'.

    Created in a final status (completed, failed, cancelled), the run gets `completed_at`,
    `total_duration` and `success` derived unless given; on an unfinished run they must be absent.
    """

    file_path: FilePath
    record_type: RecordType
    id: uuid.UUID | None = None
    status: RunStatus = RunStatus.RUNNING
    created_at: datetime | None = None
    completed_at: datetime | None = None
    total_duration: Duration | None = None
    success: bool | None = None
    error_message: ErrorMessage | None = None

    def __post_init__(self) -> None:
        _check_timestamps(self, ("created_at", "completed_at"))

    def columns(self) -> dict[str, object]:
        """Every field by column name, `status` as its text; `id` is generated when not given."""
        return {
            "id": self.id or uuid.uuid4(),
            "file_path": self.file_path,
            "record_type": self.record_type,
            "status": self.status.value,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "total_duration": self.total_duration,
            "success": self.success,
            "error_message": self.error_message,
        }


class RunUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A partial update: only the fields sent change; `updated_at` is set by the server.

    A `status` change must be allowed by the lifecycle (409 otherwise); entering a final status
    derives `completed_at`, `total_duration` and `success` unless they are sent.
    """

    file_path: FilePath | msgspec.UnsetType = msgspec.UNSET
    record_type: RecordType | msgspec.UnsetType = msgspec.UNSET
    status: RunStatus | msgspec.UnsetType = msgspec.UNSET
    completed_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    total_duration: Duration | msgspec.UnsetType | None = msgspec.UNSET
    success: bool | msgspec.UnsetType | None = msgspec.UNSET
    error_message: ErrorMessage | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        _check_timestamps(self, ("completed_at",))

    def changes(self) -> dict[str, object]:
        """The fields that were sent, by column name."""
        return {
            f: (v.value if isinstance(v, Enum) else v)
            for f in self.__struct_fields__
            if (v := getattr(self, f)) is not msgspec.UNSET
        }


class CancelRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Why the run is cancelled; kept in the run's `error_message`."""

    reason: ErrorMessage | None = None


def body_etag(body: bytes) -> str:
    """The strong ETag of a run from its JSON encoding: any change to any field changes it."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
