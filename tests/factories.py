"""polyfactory factories for request bodies and stored rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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


def aware(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)
