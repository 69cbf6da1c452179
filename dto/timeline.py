"""A run's steps in order, with how long each took next to the usual time for its record type."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from dto.stored import STORED_DURATION_NOTE, STORED_TIME_NOTE

MEDIAN_NOTE = (
    "The median of a step is taken over the most recent runs of the same record type (at most "
    "`reference_runs`, newest by `created_at`, this run excluded) that have a duration for that step."
)


class TimelineStep(msgspec.Struct):
    """One step state of the run and its duration."""

    step_order: int
    step_name: str
    started_at: Annotated[
        datetime | None, msgspec.Meta(description="`created_at` of the step's state" + STORED_TIME_NOTE)
    ]
    ended_at: Annotated[
        datetime | None,
        msgspec.Meta(
            description=(
                "`created_at` of the next state that is not late; for the last step the run's `completed_at` "
                "(null while running, and for a late step)" + STORED_TIME_NOTE
            )
        ),
    ]
    late: Annotated[
        bool,
        msgspec.Meta(
            description="The state was recorded after the run completed (appended with `late=true`): "
            "it has no duration and does not end the step before it"
        ),
    ]
    duration_seconds: Annotated[
        float | None,
        msgspec.Meta(
            description="ended_at - started_at, seconds, never negative; null if either is null, "
            "for a late step, and when the next state was stored with an earlier time"
        ),
    ]
    median_seconds: Annotated[
        float | None, msgspec.Meta(description="Median duration of this step for the record type (see `MEDIAN_NOTE`)")
    ]
    median_sample_size: Annotated[int, msgspec.Meta(ge=0, description="Runs the median was taken over")]
    ratio_to_median: Annotated[
        float | None, msgspec.Meta(description="duration_seconds / median_seconds (2 decimals); > 1 is slower")
    ]


class RunTimeline(msgspec.Struct):
    """The run's steps by `step_order` with durations from consecutive states."""

    run_id: uuid.UUID
    record_type: str
    status: str
    created_at: Annotated[datetime | None, msgspec.Meta(description="The run's `created_at`" + STORED_TIME_NOTE)]
    completed_at: Annotated[datetime | None, msgspec.Meta(description="The run's `completed_at`" + STORED_TIME_NOTE)]
    total_duration: Annotated[
        float | None, msgspec.Meta(description="The run's `total_duration`" + STORED_DURATION_NOTE)
    ]
    reference_runs: Annotated[
        int, msgspec.Meta(ge=0, description="Recent runs of this record type the medians were taken over")
    ]
    slowest_step: Annotated[
        str | None, msgspec.Meta(description="The step with the highest ratio_to_median (null without medians)")
    ]
    steps: list[TimelineStep]
