"""The roll-ups agree with a full recomputation after mixed writes through the API and by SQL, and the
statistics stay correct without them (a database user that may not create tables or triggers)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql
from psycopg.conninfo import make_conninfo

from app import create_app
from changelog.folder import fold_lock_key
from tests.helpers import (
    ENGINE_DDL,
    insert_checkpoint,
    insert_run,
    insert_state,
    login_role,
    make_settings,
    public_create_revoked,
    run_body,
    wait_folded,
)
from tests.stats_bruteforce import (
    DAY,
    HOUR,
    assert_summary_matches,
    duration_bin,
    expected_errors,
    expected_summary,
    fetch_runs,
    fingerprint,
)

API = "/api/v1/migrations"


def _hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _day(ts: datetime) -> datetime:
    return _hour(ts).replace(hour=0)


def recomputed(rows: list[dict[str, Any]]) -> dict[str, set[tuple[Any, ...]]]:
    """Every roll-up table as the backfill would build it, computed in Python."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    for table, bucket in (
        ("migration_api_run_counts_hour", _hour),
        ("migration_api_run_counts_day", _day),
        ("migration_api_run_counts_total", None),
    ):
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            when = () if bucket is None else (bucket(r["created_at"]),)
            groups[(*when, r["status"], r["record_type"])].append(r)
        out[table] = {
            (
                *key,
                len(rs),
                sum(1 for r in rs if r["success"]),
                sum(1 for r in rs if r["success"] is not None),
                sum(1 for r in rs if r["total_duration"] is not None),
                sum((Decimal(repr(r["total_duration"])) for r in rs if r["total_duration"] is not None), Decimal(0)),
                max((r["total_duration"] for r in rs if r["total_duration"] is not None), default=None),
            )
            for key, rs in groups.items()
        }
    timed = [r for r in rows if r["total_duration"] is not None]

    def hist(key: Any) -> set[tuple[Any, ...]]:
        return {(*k, n) for k, n in Counter(key(r) for r in timed).items()}

    out["migration_api_duration_hist_hour"] = hist(
        lambda r: (_hour(r["created_at"]), r["record_type"], r["status"], duration_bin(r["total_duration"]))
    )
    out["migration_api_duration_hist_day"] = hist(
        lambda r: (_day(r["created_at"]), r["record_type"], r["status"], duration_bin(r["total_duration"]))
    )
    out["migration_api_duration_hist_total"] = hist(
        lambda r: (r["record_type"], r["status"], duration_bin(r["total_duration"]))
    )
    out["migration_api_duration_hist_type"] = hist(lambda r: (r["record_type"], duration_bin(r["total_duration"])))
    out["migration_api_duration_hist_all"] = hist(lambda r: (duration_bin(r["total_duration"]),))
    out["migration_api_duration_bins_hour"] = hist(
        lambda r: (_hour(r["created_at"]), duration_bin(r["total_duration"]))
    )
    out["migration_api_duration_bins_day"] = hist(lambda r: (_day(r["created_at"]), duration_bin(r["total_duration"])))
    errors: dict[tuple[Any, ...], list[datetime]] = defaultdict(list)
    for r in rows:
        if r["status"] == "failed":
            errors[(_day(r["created_at"]), fingerprint(r["error_message"]), r["record_type"])].append(r["created_at"])
    out["migration_api_error_counts_day"] = {(*k, len(ts), min(ts), max(ts)) for k, ts in errors.items()}
    return out


ROLLUP_QUERIES = {
    "migration_api_run_counts_hour": "SELECT bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, "
    "dur_max FROM migration_api_run_counts_hour",
    "migration_api_run_counts_day": "SELECT bucket, status, record_type, n, succeeded, finished, dur_n, dur_sum, "
    "dur_max FROM migration_api_run_counts_day",
    "migration_api_run_counts_total": "SELECT status, record_type, n, succeeded, finished, dur_n, dur_sum, dur_max "
    "FROM migration_api_run_counts_total",
    "migration_api_duration_hist_hour": "SELECT bucket, record_type, status, bin, n "
    "FROM migration_api_duration_hist_hour",
    "migration_api_duration_hist_day": "SELECT bucket, record_type, status, bin, n "
    "FROM migration_api_duration_hist_day",
    "migration_api_duration_hist_total": "SELECT record_type, status, bin, n FROM migration_api_duration_hist_total",
    "migration_api_duration_hist_type": "SELECT record_type, bin, n FROM migration_api_duration_hist_type",
    "migration_api_duration_hist_all": "SELECT bin, n FROM migration_api_duration_hist_all",
    "migration_api_duration_bins_hour": "SELECT bucket, bin, n FROM migration_api_duration_bins_hour",
    "migration_api_duration_bins_day": "SELECT bucket, bin, n FROM migration_api_duration_bins_day",
    "migration_api_error_counts_day": "SELECT bucket, fingerprint, record_type, n, first_seen, last_seen "
    "FROM migration_api_error_counts_day",
}


def assert_rollups_agree(db: psycopg.Connection[Any]) -> None:
    wait_folded(db)
    want = recomputed(fetch_runs(db))
    for table, query in ROLLUP_QUERIES.items():
        got = {tuple(row) for row in db.execute(query).fetchall()}
        assert got == want[table], (
            f"{table}: extra {sorted(got - want[table])[:3]}, missing {sorted(want[table] - got)[:3]}"
        )
    activity = {tuple(row) for row in db.execute("SELECT run_id, last_step_at FROM migration_api_run_activity")}
    assert activity == {tuple(row) for row in db.execute(ACTIVITY_RECOMPUTED)}


def test_rollups_agree_with_a_recomputation_after_mixed_writes(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    rng = random.Random(42)
    now = datetime.now(UTC)
    types = ("claim", "absence", "employee")
    # engine inserts, one statement for many rows and some alone, in two session time zones
    db.execute("SET TimeZone = 'Asia/Kolkata'")  # a half-hour offset: buckets must still be UTC hours
    ids = [
        insert_run(db, record_type=rng.choice(types), created_at=now - timedelta(hours=rng.uniform(0, 72)))
        for _ in range(30)
    ]
    db.execute(
        """INSERT INTO migration_runs (id, file_path, record_type, status, created_at, updated_at, completed_at,
                                       total_duration, success, error_message)
           SELECT gen_random_uuid(), 'data/in/x_' || i || '.csv', (ARRAY['claim','absence','employee'])[1 + i % 3],
                  CASE WHEN i % 4 = 0 THEN 'failed' ELSE 'completed' END,
                  now() - make_interval(mins => i * 37), now(), now() - make_interval(mins => i * 37 - 5),
                  (i * 7.31) % 400 + 0.25, i % 4 <> 0,
                  CASE WHEN i % 4 = 0 THEN 'Timeout after ' || i || ' s on /data/in/x_' || i || '.csv' END
             FROM generate_series(1, 60) i"""
    )
    db.execute("SET TimeZone = 'UTC'")
    assert_rollups_agree(db)
    # API writes: create in every status, finish some, change messages, delete
    created = []
    for i in range(20):
        status = rng.choice(("running", "pending", "completed", "failed"))
        body = run_body(
            status=status,
            record_type=rng.choice(types),
            created_at=(now - timedelta(hours=rng.uniform(0, 48))).isoformat(),
        )
        if status in ("completed", "failed"):
            body["total_duration"] = round(rng.uniform(1, 500), 3)
        if status == "failed":
            body["error_message"] = f"Validation error: missing field in row {i}"
        response = client.post(API, json=body)
        assert response.status_code == 201, response.text
        created.append(response.json())
    for run in created:
        if run["status"] == "running":
            done = client.patch(
                f"{API}/{run['id']}", json={"status": "completed", "total_duration": 77.7, "success": True}
            )
            assert done.status_code == 200, done.text
        elif run["status"] == "failed":
            assert (
                client.patch(f"{API}/{run['id']}", json={"error_message": "Another error 0xdeadbeef01"}).status_code
                == 200
            )
    for run in created[:5]:
        assert client.delete(f"{API}/{run['id']}", params={"force": "true"}).status_code == 204
    assert_rollups_agree(db)
    # engine updates and deletes: status changes, a new duration on the group's maximum, created_at moved
    # to another day, a heartbeat, several rows in one statement, the longest run deleted
    db.execute(
        "UPDATE migration_runs SET status = 'failed', success = false, error_message = 'Boom ' || id "
        "WHERE id = ANY(%s)",
        (ids[:8],),
    )
    db.execute(
        "UPDATE migration_runs SET total_duration = total_duration / 10 "
        "WHERE id = (SELECT id FROM migration_runs ORDER BY total_duration DESC NULLS LAST LIMIT 1)"
    )
    db.execute("UPDATE migration_runs SET created_at = created_at - interval '3 days' WHERE id = ANY(%s)", (ids[8:12],))
    db.execute("UPDATE migration_runs SET updated_at = now()")
    db.execute(
        "DELETE FROM migration_runs WHERE id = (SELECT id FROM migration_runs "
        "ORDER BY total_duration DESC NULLS LAST LIMIT 1)"
    )
    db.execute("DELETE FROM migration_runs WHERE status = 'failed' AND record_type = 'claim'")
    # a retry that succeeded: failures leave the error groups in an update whose new rows never failed
    retried = db.execute(
        "UPDATE migration_runs SET status = 'completed', success = true, error_message = NULL "
        "WHERE status = 'failed' AND record_type = 'absence'"
    )
    assert retried.rowcount > 0
    db.execute(
        "UPDATE migration_runs SET total_duration = NULL, success = NULL, status = 'running' "
        "WHERE record_type = 'employee' AND status = 'completed'"
    )
    assert_rollups_agree(db)
    # the figures the API derives from the roll-ups are the brute-force ones
    rows = fetch_runs(db)
    for since, until in ((None, None), (now - 30 * HOUR - timedelta(minutes=7), now - timedelta(minutes=3))):
        params = {k: v.isoformat() for k, v in (("since", since), ("until", until)) if v is not None}
        body = client.get(f"{API}/stats", params={**params, "group_by": "status,record_type"}).json()
        assert_summary_matches(body, expected_summary(rows, since, until, ("status", "record_type")))
        errors = client.get(f"{API}/stats/errors", params=params).json()
        assert errors["total_failed"] == expected_errors(rows, since, until)["total_failed"]


def test_truncate_empties_the_rollups(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    insert_run(db, status="failed", success=False, total_duration=3.0, error_message="x")
    assert client.get(f"{API}/stats").json()["total_migrations"] == 1
    db.execute("TRUNCATE migration_runs CASCADE")
    assert_rollups_agree(db)
    for query in ROLLUP_QUERIES.values():
        assert db.execute(query).fetchall() == []
    assert client.get(f"{API}/stats").json()["total_migrations"] == 0


def test_a_server_crash_empties_the_derived_tables_and_they_are_rebuilt(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    """The roll-ups and search documents are UNLOGGED (they write no WAL the engines' commits
    would wait behind); a crash empties them with the change log and its sentinel, as truncating
    them here does, and the folder rebuilds them from the base tables."""
    unlogged = {
        name
        for (name,) in db.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relpersistence = 'u' "
            "AND relnamespace = current_schema()::regnamespace"
        )
    }
    assert {*ROLLUP_QUERIES, "migration_api_search_docs", "migration_api_changes", "migration_api_events"} <= unlogged
    for i in range(5):
        insert_run(db, status="failed", success=False, total_duration=2.0 + i, error_message=f"Timeout after {i}s")
    wait_folded(db)
    rebuilt_before = db.execute("SELECT rebuilt_at FROM migration_api_machinery").fetchone()
    db.execute(
        "TRUNCATE migration_api_log_alive, migration_api_changes, migration_api_search_docs, migration_api_events, "
        + ", ".join(ROLLUP_QUERIES)
    )
    deadline = time.monotonic() + 15
    while db.execute("SELECT rebuilt_at FROM migration_api_machinery").fetchone() == rebuilt_before:
        assert time.monotonic() < deadline, "no rebuild after the derived tables were emptied"
        time.sleep(0.05)
    assert_rollups_agree(db)
    assert client.get(f"{API}/stats").json()["total_migrations"] == 5
    found = client.get(f"{API}/search", params={"q": "timeout after 3"}).json()
    assert [r["error_message"] for r in found] == ["Timeout after 3s"]
    # Event-stream clients are told that what happened meanwhile is gone: reload.
    resets = db.execute("SELECT name FROM migration_api_events WHERE kind = 'reset'").fetchall()
    assert [r[0] for r in resets] == ["statistics rebuilt: the change log was emptied (server crash or restore)"]
    floor, newest = db.execute(
        "SELECT events_floor, (SELECT max(id) FROM migration_api_events) FROM migration_api_machinery"
    ).fetchone() or (0, 0)
    assert floor == newest - 1


def test_a_crash_during_a_rebuild_is_rebuilt_for_the_same_reason(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    """A rebuild cut short by a crash (or a stop) leaves its note, "rebuilding: <reason>"; the next
    rebuild is for that reason, not for "rebuilding: rebuilding: <reason>" (as /health showed it,
    one prefix more per interruption)."""
    insert_run(db, status="completed", success=True, total_duration=3.0)
    wait_folded(db)
    db.execute(
        "UPDATE migration_api_machinery SET rollups_ready = false, search_ready = false, "
        "note = 'rebuilding: schema version 99 installed'; TRUNCATE migration_api_log_alive, migration_api_changes"
    )
    deadline = time.monotonic() + 15
    while db.execute("SELECT rollups_ready FROM migration_api_machinery").fetchone() != (True,):
        assert time.monotonic() < deadline, "no rebuild after the change log was emptied"
        time.sleep(0.05)
    resets = db.execute("SELECT name FROM migration_api_events WHERE kind = 'reset' ORDER BY id").fetchall()
    assert [r[0] for r in resets] == ["statistics rebuilt: schema version 99 installed"]
    assert client.get(f"{API}/stats").json()["total_migrations"] == 1


def test_a_concurrent_writer_sees_its_rollup_changes_only_on_commit(
    client: TestClient[Any], db: psycopg.Connection[Any], settings: Any
) -> None:
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.db_schema}") as engine:
        insert_run(engine, status="completed", success=True, total_duration=9.0)  # in an open transaction
        assert client.get(f"{API}/stats").json()["total_migrations"] == 0
        engine.rollback()
    assert client.get(f"{API}/stats").json()["total_migrations"] == 0
    assert_rollups_agree(db)


# --- without roll-ups ------------------------------------------------------------------------


@pytest.fixture
def bare_schema(database_url: str) -> Iterator[tuple[str, str]]:
    """An engine-made schema and a login that may read and write its tables but create nothing."""
    schema = f"bare_{uuid.uuid4().hex[:8]}"
    try:
        with login_role(database_url, "mig_ro") as role, public_create_revoked(database_url):
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
                conn.execute(ENGINE_DDL)
                ident = sql.Identifier(role)
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), ident))
                conn.execute(
                    sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
                        sql.Identifier(schema), ident
                    )
                )
            yield schema, role
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_statistics_without_rollups_are_computed_from_the_base_table(
    database_url: str, bare_schema: tuple[str, str]
) -> None:
    schema, role = bare_schema
    now = datetime.now(UTC)
    rng = random.Random(9)
    with psycopg.connect(database_url, autocommit=True, options=f"-c search_path={schema}") as engine:
        for i in range(80):
            status = rng.choice(("completed", "failed", "completed", "running"))
            done = status != "running"
            duration = round(rng.lognormvariate(3, 1), 3) if done else None
            insert_run(
                engine,
                status=status,
                record_type=rng.choice(("claim", "absence")),
                created_at=now - timedelta(hours=rng.uniform(0, 60)),
                total_duration=duration,
                success=(status == "completed") if done else None,
                error_message=f"File read error at line {i} of /in/f_{i}.csv" if status == "failed" else None,
            )
        run_id = insert_run(
            engine,
            status="completed",
            success=True,
            total_duration=12.0,
            created_at=now - HOUR,
            completed_at=now - HOUR + timedelta(seconds=12),
        )
        for order, (name, minute) in enumerate((("initializing", 0), ("file_reading", 2), ("completed", 7)), 1):
            insert_state(
                engine, run_id, step_name=name, created_at=now - HOUR + timedelta(seconds=minute), step_order=order
            )
        rows = fetch_runs(engine)
        tables = {r[0] for r in engine.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
    settings = make_settings(make_conninfo(database_url, user=role), schema)
    with TestClient(app=create_app(settings)) as client:
        since, until = now - 40 * HOUR - timedelta(minutes=13), now - timedelta(minutes=90)
        windows: list[tuple[datetime | None, datetime | None]] = [(None, None), (since, until)]
        for lo, hi in windows:
            params = {k: v.isoformat() for k, v in (("since", lo), ("until", hi)) if v is not None}
            body = client.get(f"{API}/stats", params={**params, "group_by": "record_type"}).json()
            assert_summary_matches(body, expected_summary(rows, lo, hi, ("record_type",)))
            errors = client.get(f"{API}/stats/errors", params=params).json()
            want = expected_errors(rows, lo, hi)
            assert errors["total_failed"] == want["total_failed"]
            assert {g["fingerprint"]: (g["count"], g["example_run_ids"]) for g in errors["groups"]} == {
                fp: (w["count"], w["example_run_ids"]) for fp, w in want["groups"].items()
            }
        history = client.get(f"{API}/stats/history", params={"interval": "day"}).json()
        assert sum(b["total"] for b in history["buckets"]) == sum(
            1 for r in rows if r["created_at"] >= datetime.fromisoformat(history["since"])
        )
        timeline = client.get(f"{API}/{run_id}/timeline").json()
        assert [s["duration_seconds"] for s in timeline["steps"]] == [2.0, 5.0, 5.0]
        created = client.post(API, json=run_body(status="completed", total_duration=4.0))
        assert created.status_code == 201
        assert client.get(f"{API}/stats").json()["total_migrations"] == len(rows) + 1
    with psycopg.connect(database_url) as conn:
        after = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
    assert after == tables  # nothing was created


def test_day_and_hour_buckets_are_utc_whatever_the_session_time_zone(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    db.execute("SET TimeZone = 'America/St_Johns'")  # UTC-3:30
    at = datetime(2026, 3, 1, 23, 40, tzinfo=UTC)
    insert_run(db, created_at=at, status="completed", success=True, total_duration=1.0)
    wait_folded(db)
    row = db.execute("SELECT bucket FROM migration_api_run_counts_day").fetchone()
    assert row is not None
    assert row[0] == datetime(2026, 3, 1, tzinfo=UTC)
    assert _day(at) + DAY > at


def test_rollups_stay_exact_under_16_concurrent_engine_connections(
    client: TestClient[Any], db: psycopg.Connection[Any], settings: Any
) -> None:
    """Engines writing at once (inserts, finishing and heartbeat updates, deletes, steps, in
    autocommit and in small transactions) never deadlock or fail, and once the folder has caught
    up the roll-ups equal a recomputation from the base tables."""
    assert settings.database_url is not None
    options = f"-c search_path={settings.db_schema}"
    errors: list[BaseException] = []
    written = [0]
    deadline = time.monotonic() + 3.0

    def engine(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(settings.database_url, autocommit=True, options=options) as conn:
                mine: list[str] = []
                while time.monotonic() < deadline:
                    action = rng.random()
                    if action < 0.45 or not mine:
                        mine.append(insert_run(conn, record_type=rng.choice(("claim", "absence", "employee"))))
                        insert_state(conn, mine[-1], step_name="read", step_order=1)
                    elif action < 0.75:
                        failed = rng.random() < 0.3
                        with conn.transaction():  # a finish and a heartbeat of another run together
                            conn.execute(
                                "UPDATE migration_runs SET status = %s, success = %s, total_duration = %s, "
                                "completed_at = now(), error_message = %s WHERE id = %s",
                                (
                                    "failed" if failed else "completed",
                                    not failed,
                                    # roll-ups sum durations as numeric, cast from float8 at 15 digits
                                    round(rng.uniform(0.5, 500), 3),
                                    f"Timeout after {rng.randint(1, 9)} s" if failed else None,
                                    rng.choice(mine),
                                ),
                            )
                            conn.execute(
                                "UPDATE migration_runs SET updated_at = now() WHERE id = %s", (rng.choice(mine),)
                            )
                    else:
                        conn.execute("DELETE FROM migration_runs WHERE id = %s", (mine.pop(rng.randrange(len(mine))),))
                    written[0] += 1
        except BaseException as exc:  # reported below: any failure of an engine statement fails the test
            errors.append(exc)

    threads = [threading.Thread(target=engine, args=(seed,)) for seed in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert written[0] > 100
    assert_rollups_agree(db)
    runs = fetch_runs(db)
    assert client.get(f"{API}/stats").json()["total_migrations"] == len(runs)


ACTIVITY_RECOMPUTED = """
    SELECT r.id, max(s.created_at)
      FROM migration_runs r
      JOIN (SELECT run_id, created_at FROM workflow_states
            UNION ALL SELECT run_id, created_at FROM workflow_checkpoints) s ON s.run_id = r.id
     WHERE r.status = 'running'
     GROUP BY r.id"""


def test_run_activity_is_exact_before_and_after_each_fold(
    settings: Any, db: psycopg.Connection[Any], database_url: str
) -> None:
    """Stuck runs without indexes on the steps' created_at: a step still in the change log counts
    at once, a folded one from the folder's migration_api_run_activity, which holds each running
    run's newest step and nothing for finished runs (compared with a recomputation)."""
    now = datetime.now(UTC)
    old = now - timedelta(hours=2)
    revived = insert_run(db, status="running", created_at=old)
    quiet = insert_run(db, status="running", created_at=old)
    finishing = insert_run(db, status="running", created_at=old)

    def activity() -> set[tuple[Any, ...]]:
        return {tuple(r) for r in db.execute("SELECT run_id, last_step_at FROM migration_api_run_activity")}

    with TestClient(app=create_app(settings)) as client:
        wait_folded(db)
        assert client.get(f"{API}/stats").json()["stuck"] == 3
        with psycopg.connect(database_url, autocommit=True) as holder:
            # Hold the folder's turn: what the engine writes now stays in the change log.
            holder.execute("SELECT pg_advisory_lock(%s)", (fold_lock_key(settings.db_schema),))
            insert_state(db, revived, created_at=now - timedelta(minutes=1))
            insert_checkpoint(db, finishing, created_at=now - timedelta(minutes=2))
            insert_state(db, quiet, created_at=now - timedelta(hours=1))  # too old to count
            assert db.execute("SELECT count(*) FROM migration_api_changes WHERE s = 0").fetchone() == (3,)
            assert client.get(f"{API}/stats").json()["stuck"] == 1
            holder.execute("SELECT pg_advisory_unlock(%s)", (fold_lock_key(settings.db_schema),))
        wait_folded(db)
        assert activity() == {tuple(r) for r in db.execute(ACTIVITY_RECOMPUTED)}
        assert {row[0] for row in activity()} == {uuid.UUID(revived), uuid.UUID(quiet), uuid.UUID(finishing)}
        assert client.get(f"{API}/stats").json()["stuck"] == 1

        db.execute("UPDATE migration_runs SET status = 'completed', success = true WHERE id = %s", (finishing,))
        db.execute("DELETE FROM migration_runs WHERE id = %s", (quiet,))
        wait_folded(db)
        assert activity() == {tuple(r) for r in db.execute(ACTIVITY_RECOMPUTED)}
        assert {row[0] for row in activity()} == {uuid.UUID(revived)}
        assert client.get(f"{API}/stats").json()["stuck"] == 0


def test_another_schemas_folder_holding_its_turn_does_not_hold_up_this_one(
    client: TestClient[Any], db: psycopg.Connection[Any], database_url: str
) -> None:
    """Advisory locks are per database: each schema's folds take turns on a key of their own, so a
    service of another schema folding or rebuilding (for minutes on a large table) never delays ours."""
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (fold_lock_key(f"other_{uuid.uuid4().hex[:8]}"),))
        insert_run(db, status="failed", success=False, total_duration=1.5, error_message="boom")
        wait_folded(db, timeout=5.0)
        assert client.get(f"{API}/stats").json()["total_migrations"] == 1


def test_the_folder_vacuums_its_log_so_that_engine_appends_reuse_its_pages(
    settings: Any, db: psycopg.Connection[Any]
) -> None:
    """The log is emptied by DELETE, and a server may run without autovacuum (or look once a
    minute): the folder vacuums it itself (changelog/queries.sql `vacuum_log`), so its file does
    not grow with every row ever logged and an engine's next append lands in a freed page."""

    def last_page() -> int:
        row = db.execute("SELECT max((ctid::text::point)[0])::int FROM migration_api_changes").fetchone()
        assert row is not None
        assert row[0] is not None, "the log is empty"
        return int(row[0])

    def vacuums() -> int:
        row = db.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'migration_api_changes'::regclass"
        ).fetchone()
        return int(row[0]) if row else 0

    with TestClient(app=create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        wait_folded(db)
        with psycopg.connect(settings.database_url, autocommit=True) as holder:
            # Hold the folder's turn while the engine logs 3,000 runs: they stay in the log together.
            holder.execute("SELECT pg_advisory_lock(%s)", (fold_lock_key(settings.db_schema),))
            db.execute(
                "INSERT INTO migration_runs (id, file_path, record_type, status) "
                "SELECT gen_random_uuid(), 'data/input/claim_' || g || '.csv', 'claim', 'running' "
                "FROM generate_series(1, 3000) AS g"
            )
            filled = last_page()
            assert filled >= 20, f"3,000 log rows fill {filled + 1} pages"
            before = vacuums()
            holder.execute("SELECT pg_advisory_unlock(%s)", (fold_lock_key(settings.db_schema),))
        wait_folded(db)
        deadline = time.monotonic() + 10
        while vacuums() == before:
            assert time.monotonic() < deadline, "the folder did not vacuum its log within 10 s of a fold"
            time.sleep(0.1)
        with psycopg.connect(
            settings.database_url, autocommit=True, options=f"-c search_path={settings.db_schema}"
        ) as engine:
            # Held again so that the new row is still in the log when looked at.
            engine.execute("SELECT pg_advisory_lock(%s)", (fold_lock_key(settings.db_schema),))
            try:
                insert_run(engine, status="running")
                assert last_page() < filled, "the engine's append went to the end of the log, not to a freed page"
            finally:
                engine.execute("SELECT pg_advisory_unlock(%s)", (fold_lock_key(settings.db_schema),))
