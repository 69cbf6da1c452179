"""Statistics computed the slow, obvious way in Python over `SELECT ... FROM migration_runs`: what the
API's roll-ups and SQL must agree with."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from rollups import FINGERPRINT_MAX_CHARS, FINGERPRINT_STEPS, HIST_LN_BASE, HIST_MAX_SECONDS, HIST_MIN_SECONDS

COLUMNS = (
    "id, file_path, record_type, status, created_at, updated_at, completed_at, total_duration, success, error_message"
)
NEVER = datetime(1, 1, 1, tzinfo=UTC)
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)


def fetch_runs(db: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    cur = db.cursor(row_factory=psycopg.rows.dict_row)
    return list(cur.execute(f"SELECT {COLUMNS} FROM migration_runs").fetchall())


def in_window(row: dict[str, Any], since: datetime | None, until: datetime | None) -> bool:
    created: datetime = row["created_at"]
    return (since or NEVER) <= created < (until or FOREVER)


def duration_bin(seconds: float) -> int:
    clamped = HIST_MAX_SECONDS if math.isnan(seconds) else min(max(seconds, HIST_MIN_SECONDS), HIST_MAX_SECONDS)
    return math.floor(math.log(clamped) / HIST_LN_BASE)


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered) - 1e-9)) - 1]


def expected_duration(values: list[float]) -> dict[str, Any]:
    """count, max exact; p50/p90/p99 as the middle of the bin of the exact nearest-rank value."""
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    top = max(values)
    out: dict[str, Any] = {"count": len(values), "max": top}
    for name, p in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        exact = nearest_rank(values, p)
        middle = 1.04 ** (duration_bin(exact) + 0.5)
        out[name] = round(min(middle, top), 3)
        assert abs(out[name] - exact) <= 0.0201 * exact + 0.001  # the documented accuracy holds
    return out


def expected_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    finished = [r for r in rows if r["success"] is not None]
    durations = [r["total_duration"] for r in rows if r["total_duration"] is not None]
    return {
        "total": len(rows),
        "succeeded": sum(1 for r in finished if r["success"]),
        "finished": len(finished),
        "success_rate": round(sum(1 for r in finished if r["success"]) / len(finished), 4) if finished else None,
        "average_duration": round(sum(durations) / len(durations), 3) if durations else None,
        "duration": expected_duration(durations),
    }


def expected_summary(
    rows: list[dict[str, Any]], since: datetime | None, until: datetime | None, group_by: tuple[str, ...] = ()
) -> dict[str, Any]:
    window = [r for r in rows if in_window(r, since, until)]
    overall = expected_figures(window)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in window:
        by_type[r["record_type"]].append(r)
    out = {
        "total_migrations": len(window),
        "status_breakdown": dict(Counter(r["status"] for r in window)),
        "record_type_breakdown": dict(Counter(r["record_type"] for r in window)),
        "success_rate": overall["success_rate"],
        "average_duration": overall["average_duration"],
        "duration": overall["duration"],
        "duration_by_record_type": {t: expected_figures(rs)["duration"] for t, rs in by_type.items()},
    }
    if group_by:
        groups: dict[tuple[str | None, str | None], list[dict[str, Any]]] = defaultdict(list)
        for r in window:
            key = (
                r["status"] if "status" in group_by else None,
                r["record_type"] if "record_type" in group_by else None,
            )
            groups[key].append(r)
        out["groups"] = {key: {k: v for k, v in expected_figures(rs).items()} for key, rs in groups.items()}
    return out


def assert_summary_matches(body: dict[str, Any], expected: dict[str, Any]) -> None:
    for key in ("total_migrations", "status_breakdown", "record_type_breakdown", "success_rate"):
        assert body[key] == expected[key], key
    if expected["average_duration"] is None:
        assert body["average_duration"] is None
    else:
        assert body["average_duration"] == pytest_approx(expected["average_duration"])
    assert_duration(body["duration"], expected["duration"])
    assert set(body["duration_by_record_type"]) == set(expected["duration_by_record_type"])
    for record_type, want in expected["duration_by_record_type"].items():
        assert_duration(body["duration_by_record_type"][record_type], want)
    if "groups" in expected:
        got = {(g["status"], g["record_type"]): g for g in body["groups"]}
        assert set(got) == set(expected["groups"])
        for key, want in expected["groups"].items():
            g = got[key]
            assert (g["total"], g["succeeded"], g["finished"], g["success_rate"]) == (
                want["total"],
                want["succeeded"],
                want["finished"],
                want["success_rate"],
            ), key
            assert_duration(g["duration"], want["duration"])
        assert [g["total"] for g in body["groups"]] == sorted((g["total"] for g in body["groups"]), reverse=True)
    else:
        assert body["groups"] is None


def assert_duration(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["count"] == want["count"]
    assert got["max"] == want["max"]
    for p in ("p50", "p90", "p99"):
        assert got[p] == (None if want[p] is None else pytest_approx(want[p])), p


def pytest_approx(value: float) -> Any:
    import pytest

    # Both sides round to 3 decimals, but the service adds hourly roll-up sums while the test adds
    # rows one by one: floating-point sums in another order can round to neighbouring thousandths
    # (x.xxx5 either way), so one unit of the last place is allowed, and no more.
    return pytest.approx(value, rel=1e-9, abs=1.000001e-3)


def fingerprint(message: str | None) -> str:
    """The Python twin of migration_api_error_fingerprint."""
    if message is None:
        return ""
    text = message
    for pattern, replacement in FINGERPRINT_STEPS:
        text = re.sub(pattern, replacement, text)
    return text.strip(" ")[:FINGERPRINT_MAX_CHARS]


def expected_errors(rows: list[dict[str, Any]], since: datetime | None, until: datetime | None) -> dict[str, Any]:
    failed = [r for r in rows if r["status"] == "failed" and in_window(r, since, until)]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in failed:
        groups[fingerprint(r["error_message"])].append(r)
    out = {}
    for fp, rs in groups.items():
        latest = sorted(rs, key=lambda r: (r["created_at"], r["id"]), reverse=True)
        out[fp] = {
            "count": len(rs),
            "first_seen": min(r["created_at"] for r in rs),
            "last_seen": max(r["created_at"] for r in rs),
            "record_types": dict(Counter(r["record_type"] for r in rs)),
            "example_run_ids": [str(r["id"]) for r in latest[:3]],
            "example_message": latest[0]["error_message"],
        }
    return {"total_failed": len(failed), "groups": out}


def floor_hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
