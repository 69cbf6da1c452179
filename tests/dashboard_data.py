"""Runs for the dashboard tests, written with plain SQL as engines write them, and the page's parsed HTML."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from bs4 import BeautifulSoup, Tag

from tests.factories import RECORD_TYPES, RunCreateFactory
from tests.helpers import insert_checkpoint, insert_run, insert_state

STATUSES = ("completed", "completed", "completed", "failed", "running", "paused", "pending", "cancelled", "queued")
ERRORS = (
    "Validation error: missing required field 'policy_number' in row {n}",
    "File read error: unexpected end of file at line {n}",
    "API integration failed: HTTP 503 from target after {n} retries",
)


def seed_runs(db: psycopg.Connection[Any], count: int, rng: random.Random) -> list[str]:
    """`count` runs spread over the last 35 days (a third in the last 24 h), every status the API
    knows and one it does not ('queued'), record types in turn, failures with three kinds of error; some running runs
    silent for hours (stuck). Returns their ids."""
    now = datetime.now(UTC)
    ids = []
    for i in range(count):
        body = RunCreateFactory.build(record_type=RECORD_TYPES[i % len(RECORD_TYPES)])
        status = STATUSES[i % len(STATUSES)]
        age = timedelta(minutes=rng.uniform(1, 24 * 60)) if i % 3 == 0 else timedelta(days=rng.uniform(1, 35))
        created = now - age
        fields: dict[str, Any] = {
            "file_path": body.file_path,
            "record_type": body.record_type,
            "status": status,
            "created_at": created,
        }
        if status in {"completed", "failed", "cancelled"}:
            took = min(rng.uniform(2, 900), age.total_seconds())
            fields.update(
                completed_at=created + timedelta(seconds=took),
                total_duration=took,
                success=status == "completed",
                updated_at=created + timedelta(seconds=took),
            )
        if status == "failed":
            fields["error_message"] = rng.choice(ERRORS).format(n=rng.randint(1, 99_999))
        ids.append(insert_run(db, **fields))
    return ids


def add_steps(db: psycopg.Connection[Any], run_id: str, names: list[str], start: datetime) -> None:
    """One state per step name, a minute apart, and a checkpoint after each."""
    for order, name in enumerate(names, 1):
        at = start + timedelta(minutes=order)
        insert_state(db, run_id, step_name=name, state_data={"rows": order * 100}, created_at=at, step_order=order)
        insert_checkpoint(
            db, run_id, checkpoint_name=f"after_{name}", state_data={"next_row": order * 100}, created_at=at
        )


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def number(tag: Tag | None) -> int:
    assert tag is not None
    return int(tag.get_text(strip=True).replace(",", ""))


def row_ids(page: BeautifulSoup) -> list[str]:
    return [str(tr["data-run-id"]) for tr in page.select("#runs tbody tr")]
