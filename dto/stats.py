"""Run statistics on the wire. The first three keys are what existing dashboards read."""

from __future__ import annotations

import msgspec


class MigrationStats(msgspec.Struct):
    total_migrations: int
    status_breakdown: dict[str, int]
    recent_24h: int
    record_type_breakdown: dict[str, int]
    success_rate: float | None = msgspec.field(default=None)
    average_duration: float | None = None
