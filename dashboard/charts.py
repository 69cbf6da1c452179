"""Geometry of the history charts, drawn server-side as inline SVG (no chart library, no script).

Stacked bars, one per bucket of `GET /api/v1/migrations/stats/history`, one segment per status. The
template only places the rectangles computed here, so the page works with JavaScript off and the
bars carry exactly the counts the API returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from dto.stats import HistoryBucket, StatsHistory

# Bottom to top: the good news first, failures on top where they catch the eye.
STATUS_ORDER: Final = ("completed", "running", "paused", "pending", "cancelled", "failed")
WIDTH: Final = 720
HEIGHT: Final = 180
# Room for the y-axis labels on the left and the x-axis labels below.
LEFT: Final = 46
RIGHT: Final = 18
BOTTOM: Final = 26
TOP: Final = 8
PLOT_HEIGHT: Final = HEIGHT - BOTTOM - TOP


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    start: datetime
    total: int
    x: float
    width: float
    title: str
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    interval: str
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_bottom: float
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    total: int


def status_rank(status: str) -> int:
    """Stacking position of a status; statuses the API does not know go between running and failed."""
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER) - 1


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least `value` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def bucket_label(start: datetime, interval: str) -> str:
    return start.strftime("%H:%M") if interval == "hour" else start.strftime("%b %d")


def _title(bucket: HistoryBucket, interval: str) -> str:
    when = bucket.start.strftime("%Y-%m-%d %H:00 UTC" if interval == "hour" else "%Y-%m-%d (UTC)")
    parts = ", ".join(
        f"{n} {status}" for status, n in sorted(bucket.by_status.items(), key=lambda kv: status_rank(kv[0])) if n
    )
    runs = "run" if bucket.total == 1 else "runs"
    return f"{when}: {bucket.total} {runs}" + (f" ({parts})" if parts else "")


def history_chart(history: StatsHistory, label_every: int) -> Chart:
    """Bars for every bucket (empty ones included, so time runs evenly), x labels every `label_every`."""
    buckets = history.buckets
    top = _nice_ceiling(max((b.total for b in buckets), default=0))
    slot = (WIDTH - LEFT - RIGHT) / max(len(buckets), 1)
    gap = min(2.0, slot * 0.2)
    bars: list[Bar] = []
    x_ticks: list[Tick] = []
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot
        y = float(TOP + PLOT_HEIGHT)
        segments: list[Segment] = []
        for status, count in sorted(bucket.by_status.items(), key=lambda kv: status_rank(kv[0])):
            if count <= 0:
                continue
            height = PLOT_HEIGHT * count / top
            y -= height
            segments.append(Segment(status, count, round(y, 2), round(height, 2)))
        bars.append(
            Bar(
                bucket.start,
                bucket.total,
                round(x + gap / 2, 2),
                round(slot - gap, 2),
                _title(bucket, history.interval),
                segments,
            )
        )
        if (len(buckets) - 1 - i) % label_every == 0:
            x_ticks.append(Tick(round(x + slot / 2, 2), bucket_label(bucket.start, history.interval)))
    # 0, the top, and the middle when it is a whole number of runs.
    levels = [0, top // 2, top] if top % 2 == 0 else [0, top]
    y_ticks = [Tick(round(TOP + PLOT_HEIGHT * (1 - n / top), 2), f"{n:,}") for n in levels]
    return Chart(
        interval=history.interval,
        width=WIDTH,
        height=HEIGHT,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        plot_bottom=TOP + PLOT_HEIGHT,
        bars=bars,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        total=sum(b.total for b in buckets),
    )
