"""The run rules of run_rules.py, checked as plain functions: no HTTP, no database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

import lifecycle
import run_rules
from errors import Conflict

RUN = uuid.UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6")


@dataclass(frozen=True)
class Sent:
    step_order: int | None


@pytest.mark.parametrize("status", sorted(lifecycle.TERMINAL))
def test_a_finished_run_takes_an_append_only_as_a_late_report(status: str) -> None:
    with pytest.raises(Conflict, match=f"'{status}', a final status: appending a checkpoint is refused"):
        run_rules.check_append(RUN, status, False, "a checkpoint")
    run_rules.check_append(RUN, status, True, "a checkpoint")


@pytest.mark.parametrize("status", [lifecycle.PENDING, lifecycle.RUNNING, lifecycle.PAUSED, "queued"])
def test_an_unfinished_run_takes_appends(status: str) -> None:
    run_rules.check_append(RUN, status, False, "step states")


@pytest.mark.parametrize("status", [lifecycle.RUNNING, lifecycle.PAUSED])
def test_a_run_an_engine_may_write_to_is_deleted_only_when_forced(status: str) -> None:
    with pytest.raises(Conflict, match="pass force=true"):
        run_rules.check_delete(RUN, status, False)
    run_rules.check_delete(RUN, status, True)


@pytest.mark.parametrize("status", [lifecycle.PENDING, *sorted(lifecycle.TERMINAL), "queued"])
def test_other_runs_are_deleted_without_force(status: str) -> None:
    run_rules.check_delete(RUN, status, False)


def test_a_step_order_sent_twice_in_one_batch_is_refused() -> None:
    with pytest.raises(Conflict, match="step_order 2, 5 is sent more than once"):
        run_rules.requested_step_orders([Sent(5), Sent(2), Sent(None), Sent(2), Sent(5)])
    assert run_rules.requested_step_orders([Sent(3), Sent(None), Sent(1)]) == [3, 1]


def test_a_taken_step_order_is_refused() -> None:
    with pytest.raises(Conflict, match=f"step_order 4 is already taken in run {RUN}"):
        run_rules.number_steps(RUN, [Sent(4)], [4], 7)


def test_steps_without_an_order_follow_the_highest_stored_or_sent() -> None:
    states = [Sent(None), Sent(10), Sent(None)]
    assert [order for _, order in run_rules.number_steps(RUN, states, [], 3)] == [11, 10, 12]
    assert [order for _, order in run_rules.number_steps(RUN, states, [], 20)] == [21, 10, 22]
    assert [order for _, order in run_rules.number_steps(RUN, [Sent(None), Sent(None)], [], 0)] == [1, 2]


def test_numbering_keeps_each_state_with_its_order() -> None:
    states = [Sent(None), Sent(2)]
    numbered = run_rules.number_steps(RUN, states, [], 5)
    assert [state for state, _ in numbered] == states
