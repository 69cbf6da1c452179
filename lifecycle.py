"""The run lifecycle: which status may follow which, and what entering a final status fills in.

Pure functions over values; every write path (create, PATCH, cancel) goes through `plan_create` or
`plan_update`, so the table below is the only place the rules live.

Statuses the table does not know (engines write some of their own, e.g. 'queued') may move to any
status the API knows: the API cannot tell what they mean, so it does not lock such runs in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from errors import Conflict, DomainError

PENDING: Final = "pending"
RUNNING: Final = "running"
PAUSED: Final = "paused"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"

TERMINAL: Final = frozenset({COMPLETED, FAILED, CANCELLED})
# Each known status and the statuses a run in it may move to next.
TRANSITIONS: Final[Mapping[str, tuple[str, ...]]] = {
    PENDING: (RUNNING, CANCELLED),
    RUNNING: (PAUSED, COMPLETED, FAILED, CANCELLED),
    PAUSED: (RUNNING, CANCELLED, FAILED),
    COMPLETED: (),
    FAILED: (),
    CANCELLED: (),
}
API_STATUSES: Final = tuple(TRANSITIONS)
# Columns that describe how a run ended; they are set together when it enters a final status.
OUTCOME_FIELDS: Final = ("completed_at", "total_duration", "success")


def allowed_next(current: str) -> tuple[str, ...]:
    """The statuses a run in `current` may move to (any API status for a status the table lacks)."""
    return TRANSITIONS.get(current, API_STATUSES)


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def refusal_detail(current: str, target: str) -> str:
    """The 409 text: names the current status and the allowed next ones."""
    allowed = allowed_next(current)
    if not allowed:
        return (
            f"cannot change status from '{current}' to '{target}': '{current}' is final, "
            "no further status change is allowed"
        )
    return (
        f"cannot change status from '{current}' to '{target}'; "
        f"from '{current}' the allowed next statuses are: {', '.join(allowed)}"
    )


def check_transition(current: str, target: str) -> None:
    """Raise Conflict (409) unless a run in `current` may move to `target`; the same status is a no-op."""
    if target != current and target not in allowed_next(current):
        raise Conflict(refusal_detail(current, target))


def outcome(
    status: str, created_at: datetime | None, now: datetime, given: Mapping[str, Any]
) -> dict[str, datetime | float | bool | None]:
    """`completed_at`, `total_duration` and `success` of a run entering the final `status`.

    A value the caller gave (not None) wins; otherwise `completed_at` is `now`, `total_duration`
    the seconds from `created_at` to `completed_at` (never negative, whatever the clocks say), and
    `success` is true only for 'completed'. Without a `created_at` (an engine stored one Python
    cannot hold, such as 'infinity') there is no duration to derive: it stays null.
    """
    completed_at: datetime = given.get("completed_at") or now
    duration = given.get("total_duration")
    if duration is None and created_at is not None:
        duration = max(0.0, (completed_at - created_at).total_seconds())
    success = given.get("success")
    if success is None:
        success = status == COMPLETED
    return {
        "completed_at": completed_at,
        "total_duration": None if duration is None else float(duration),
        "success": bool(success),
    }


def _refuse_outcome_on_unfinished(status: str, fields: Mapping[str, Any]) -> None:
    sent = [f for f in OUTCOME_FIELDS if fields.get(f) is not None]
    if sent and status in TRANSITIONS and not is_terminal(status):
        raise DomainError(
            f"{', '.join(sent)} can only be set on a finished run (status {', '.join(sorted(TERMINAL))}); "
            f"the run's status would be '{status}'"
        )


def plan_create(fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The columns of a new run: `fields` as sent, plus the outcome when it starts out final.

    `created_at` is filled in (from `now`) only when the outcome needs it.
    """
    status = fields["status"]
    _refuse_outcome_on_unfinished(status, fields)
    if not is_terminal(status):
        return dict(fields)
    created_at = fields.get("created_at") or now
    return {**fields, "created_at": created_at, **outcome(status, created_at, now, fields)}


def plan_update(
    current_status: str, created_at: datetime | None, changes: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The columns a PATCH (or cancel) writes to a run now in `current_status`.

    Raises Conflict for a refused transition and DomainError (400) for an outcome that would leave
    the run inconsistent: set on an unfinished run, or cleared on a finished one.
    """
    target = changes.get("status", current_status)
    check_transition(current_status, target)
    _refuse_outcome_on_unfinished(target, changes)
    planned = dict(changes)
    if target == current_status:
        if is_terminal(target):
            cleared = [f for f in OUTCOME_FIELDS if f in changes and changes[f] is None]
            if cleared:
                raise DomainError(f"{', '.join(cleared)} cannot be cleared on a run that is '{target}'")
        return planned
    if is_terminal(target):
        planned.update(outcome(target, created_at, now, changes))
    else:
        # Leaving an unknown (possibly engine-final) status for an unfinished one: no stale outcome.
        planned.update(dict.fromkeys(OUTCOME_FIELDS))
    return planned
