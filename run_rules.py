"""A run's rules beyond its status lifecycle (lifecycle.py): what may be appended to it, how its
step states are numbered, and when it may be deleted.

Pure functions over values, like lifecycle.py: the controllers read what the rules need (the
run's status, the step orders already stored) and call them; tests/test_run_rules.py checks
them without HTTP or a database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol, TypeVar

import lifecycle
from errors import Conflict


class Numbered(Protocol):
    """A step state as sent: its `step_order`, or None for the next free number."""

    @property
    def step_order(self) -> int | None: ...


S = TypeVar("S", bound=Numbered)


def check_append(run_id: object, status: str, late: bool, what: str) -> None:
    """Refuse (409) an append to a finished run unless it is a late report of earlier work."""
    if lifecycle.is_terminal(status) and not late:
        raise Conflict(
            f"run {run_id} is '{status}', a final status: appending {what} is refused; "
            "if this is a late report of work done before the run ended, pass late=true"
        )


def check_delete(run_id: object, status: str, force: bool) -> None:
    """Refuse (409) to delete a run an engine may still write to, unless forced."""
    if status in (lifecycle.RUNNING, lifecycle.PAUSED) and not force:
        raise Conflict(
            f"run {run_id} is '{status}': an engine may still be writing to it; "
            "cancel it first, or pass force=true to delete it anyway"
        )


def requested_step_orders(states: Sequence[Numbered]) -> list[int]:
    """The step orders the states were sent with; 409 when one is sent twice."""
    given = [s.step_order for s in states if s.step_order is not None]
    repeated = sorted(o for o, n in Counter(given).items() if n > 1)
    if repeated:
        raise Conflict(f"step_order {', '.join(map(str, repeated))} is sent more than once in this batch")
    return given


def number_steps(run_id: object, states: Sequence[S], taken: Sequence[int], highest: int) -> list[tuple[S, int]]:
    """Each state with its step_order: as sent (409 if `taken`: already stored), else after the
    highest of `highest` (the highest stored, 0 for none) and the orders sent."""
    if taken:
        raise Conflict(
            f"step_order {', '.join(map(str, taken))} is already taken in run {run_id}; "
            "leave step_order out to get the next free number"
        )
    following = max([highest, *(s.step_order for s in states if s.step_order is not None)]) + 1
    numbered: list[tuple[S, int]] = []
    for state in states:
        if state.step_order is None:
            numbered.append((state, following))
            following += 1
        else:
            numbered.append((state, state.step_order))
    return numbered
