"""Property-based: any request body is either stored exactly as sent or refused with a 4xx (never a
5xx), and a refusal changes nothing.

Hypothesis runs many examples inside one test, so the per-test table cleanup does not separate
them: each example compares the database before and after itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from tests.helpers import insert_run

API = "/api/v1/migrations"
# Hypothesis runs each property over many examples (up to about 30 s each on a loaded machine).
pytestmark = pytest.mark.timeout(300)
PROPERTY_SETTINGS = settings(
    max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Text as clients send it: any code point PostgreSQL may or may not take (NUL included), any length
# around the column limits.
text = st.text(max_size=20) | st.text(min_size=95, max_size=105) | st.text(min_size=495, max_size=505)
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
timestamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC, None])
).map(lambda d: d.isoformat()) | st.datetimes(timezones=st.just(timezone(timedelta(hours=14)))).map(
    lambda d: d.isoformat()
)
statuses = st.sampled_from(["pending", "running", "paused", "completed", "failed", "cancelled"]) | text
anything = json_values | text
finite = st.floats(allow_nan=False, allow_infinity=False)


def _normal(value: Any) -> Any:
    """JSON as a comparable value: numbers by their decimal value (JSONB keeps numbers as numeric)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return {k: _normal(v) for k, v in value.items()}


def _same_instant(sent: Any, stored: datetime | None) -> bool:
    if stored is None:
        return sent is None
    parsed = datetime.fromisoformat(sent)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)) == stored


def _snapshot(db: psycopg.Connection[Any]) -> list[Any]:
    return [
        db.execute(f"SELECT count(*), coalesce(max(md5(t::text)), '') FROM {table} t").fetchone()
        for table in ("migration_runs", "workflow_states", "workflow_checkpoints")
    ]


RUN_COLUMNS = "file_path, record_type, status, created_at, completed_at, total_duration, success, error_message"

run_bodies = st.fixed_dictionaries(
    {},
    optional={
        "file_path": text | anything,
        "record_type": text | anything,
        "status": statuses,
        "created_at": timestamps | anything,
        "completed_at": timestamps | st.none() | anything,
        "total_duration": finite | st.integers() | st.none() | anything,
        "success": st.booleans() | st.none() | anything,
        "error_message": text | st.none(),
        "id": st.uuids().map(str) | text,
        "extra_field": anything,
    },
)


@PROPERTY_SETTINGS
@given(body=run_bodies)
def test_create_stores_what_was_sent_or_refuses_with_4xx(
    client: TestClient[Any], db: psycopg.Connection[Any], body: dict[str, Any]
) -> None:
    before = _snapshot(db)
    response = client.post(API, json=body)
    assert response.status_code < 500, response.text
    if response.status_code != 201:
        assert 400 <= response.status_code < 500
        assert "detail" in response.json()
        assert _snapshot(db) == before
        return
    row = db.execute(
        f"SELECT {RUN_COLUMNS} FROM migration_runs WHERE id = %s",
        (response.json()["id"],),
    ).fetchone()
    assert row is not None
    stored = dict(zip(RUN_COLUMNS.split(", "), row, strict=True))
    for field, sent in body.items():
        if field in ("created_at", "completed_at"):
            assert _same_instant(sent, stored[field]), field
        elif field == "id":
            assert response.json()["id"] == sent
        elif field == "total_duration" and sent is not None:
            assert stored[field] == float(sent)
        elif sent is not None or field not in ("completed_at", "total_duration", "success"):
            assert stored[field] == sent, field


update_bodies = st.fixed_dictionaries(
    {},
    optional={
        "file_path": text | anything,
        "record_type": text,
        "status": statuses,
        "completed_at": timestamps | st.none(),
        "total_duration": st.floats(min_value=0, allow_infinity=False) | st.none() | anything,
        "success": st.booleans() | st.none(),
        "error_message": text | st.none() | anything,
        "created_at": timestamps,
    },
)


@PROPERTY_SETTINGS
@given(body=update_bodies, start=st.sampled_from(["pending", "running", "paused", "completed"]))
def test_patch_stores_what_was_sent_or_refuses_with_4xx(
    client: TestClient[Any], db: psycopg.Connection[Any], body: dict[str, Any], start: str
) -> None:
    done = start == "completed"
    run_id = insert_run(db, start, completed_at=datetime.now(UTC) if done else None, success=True if done else None)
    before = _snapshot(db)
    response = client.patch(f"{API}/{run_id}", json=body)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        assert _snapshot(db) == before
        return
    row = db.execute(f"SELECT {RUN_COLUMNS} FROM migration_runs WHERE id = %s", (run_id,)).fetchone()
    assert row is not None
    stored = dict(zip(RUN_COLUMNS.split(", "), row, strict=True))
    for field, sent in body.items():
        if field == "completed_at":
            assert sent is None or _same_instant(sent, stored[field])
        elif field in ("total_duration", "success") and sent is None:
            continue  # a final status fills these in when they are not given
        else:
            assert stored[field] == sent, field
    final = stored["status"] in ("completed", "failed", "cancelled")
    assert (stored["completed_at"] is not None) == final
    assert (stored["success"] is not None) == final


state_bodies = st.fixed_dictionaries(
    {"step_name": text, "state_data": json_objects | json_values},
    optional={"metadata": json_objects | json_values, "step_order": st.integers(-5, 2**31 + 5) | anything},
)


@PROPERTY_SETTINGS
@given(body=state_bodies)
def test_append_state_stores_what_was_sent_or_refuses_with_4xx(
    client: TestClient[Any], db: psycopg.Connection[Any], body: dict[str, Any]
) -> None:
    run_id = insert_run(db, "running")
    before = _snapshot(db)
    response = client.post(f"{API}/{run_id}/states", json=body)
    assert response.status_code < 500, response.text
    if response.status_code != 201:
        assert 400 <= response.status_code < 500
        assert _snapshot(db) == before
        return
    row = db.execute(
        "SELECT step_name, state_data, metadata, step_order FROM workflow_states WHERE id = %s",
        (uuid.UUID(response.json()["id"]),),
    ).fetchone()
    assert row is not None
    assert row[0] == body["step_name"]
    assert _normal(row[1]) == _normal(body["state_data"])
    assert _normal(row[2]) == _normal(body.get("metadata"))
    if "step_order" in body and body["step_order"] is not None:
        assert row[3] == body["step_order"]
    assert _normal(response.json()["state_data"]) == _normal(body["state_data"])


checkpoint_batches = st.lists(
    st.fixed_dictionaries(
        {"checkpoint_name": text, "state_data": json_objects}, optional={"metadata": json_objects | st.none()}
    ),
    max_size=4,
)


@PROPERTY_SETTINGS
@given(items=checkpoint_batches)
def test_checkpoint_batches_are_all_or_nothing(
    client: TestClient[Any], db: psycopg.Connection[Any], items: list[dict[str, Any]]
) -> None:
    run_id = insert_run(db, "running")
    before = _snapshot(db)
    response = client.post(f"{API}/{run_id}/checkpoints/batch", json=items)
    assert response.status_code < 500, response.text
    if response.status_code != 201:
        assert _snapshot(db) == before
        return
    rows = db.execute(
        "SELECT checkpoint_name, state_data, metadata FROM workflow_checkpoints WHERE run_id = %s ORDER BY created_at",
        (run_id,),
    ).fetchall()
    assert [(r[0], _normal(r[1]), _normal(r[2])) for r in rows] == [
        (i["checkpoint_name"], _normal(i["state_data"]), _normal(i.get("metadata"))) for i in items
    ]
