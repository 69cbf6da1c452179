"""The change stream (events/) against a live server: what arrives for API writes and for an
engine's direct SQL, in order, filtered, resumed; slow and gone clients; retention; shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from tests.helpers import insert_checkpoint, insert_run, insert_state, pooled_connections, run_body, serve

API = "/api/v1/migrations"
Message = dict[str, Any]


class Stream:
    """One SSE client in a thread: collects every message (its SSE id and event, and the data's
    JSON) it reads. Like a browser's EventSource, when the server drops it (a `dropped` event)
    it reconnects with `Last-Event-ID`."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.messages: list[Message] = []
        self.comments = 0
        self.drops = 0
        self.status: int | None = None
        # How each connection after the first ended when it was not a stream (status and body),
        # or the exception that ended the reader: shown when `wait_for` gives up.
        self.failures: list[str] = []
        self.opened = threading.Event()
        self._closed = False
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.opened.wait(10), f"{url}: no response"

    def _read(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=30)) as http:
                while not self._closed and self._read_once(http):
                    self.drops += 1
                    self.headers["Last-Event-ID"] = self.messages[-1]["sse_id"]
        except Exception as exc:
            self.failures.append(f"reader ended: {exc!r}")
            raise

    def _read_once(self, http: httpx.Client) -> bool:
        """Read until the stream ends; True when the server dropped this client."""
        with http.stream("GET", self.url, headers=self.headers) as response:
            self._response = response
            self.status = response.status_code
            self.opened.set()
            if response.status_code != 200 and self.drops:
                self.failures.append(f"reconnect {self.drops}: {response.status_code} {response.read()[:300]!r}")
            fields: dict[str, str] = {}
            try:
                for line in response.iter_lines():
                    if line == "":
                        if fields.get("event") == "dropped":
                            return True
                        if "data" in fields:
                            data = json.loads(fields["data"]) if fields["data"].startswith("{") else {}
                            self.messages.append({"sse_id": fields.get("id"), "event": fields.get("event"), **data})
                        fields = {}
                    elif line.startswith(":"):
                        self.comments += 1
                    else:
                        key, _, value = line.partition(":")
                        fields[key] = value.removeprefix(" ")
            except (httpx.HTTPError, RuntimeError):
                pass  # closed by close()
        return False

    def wait_for(self, done: Callable[[list[Message]], bool], timeout: float = 5.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while not done(self.messages):
            assert time.monotonic() < deadline, (
                f"{self.url}: got only {len(self.messages)} messages {[m.get('kind') for m in self.messages[-20:]]} "
                f"(last ones), {self.drops} drops, {self.failures}"
            )
            time.sleep(0.02)
        return list(self.messages)

    def close(self) -> None:
        self._closed = True
        if self._response is not None:
            self._response.close()
        self._thread.join(timeout=5)


def of_run(messages: list[Message], run_id: str) -> list[Message]:
    return [m for m in messages if m.get("run_id") == run_id]


@pytest.fixture(scope="module")
def events_server(settings: Settings, _schema_ready: None) -> Iterator[str]:
    env = {"EVENTS_HEARTBEAT_SECONDS": "0.3", "EVENTS_CLIENT_QUEUE": "1000"}
    with serve(settings.database_url or "", settings.db_schema, env) as (_, base):
        yield base


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    opened: list[Stream] = []
    yield opened
    for s in opened:
        s.close()


def open_stream(streams: list[Stream], url: str, headers: dict[str, str] | None = None) -> Stream:
    s = Stream(url, headers)
    streams.append(s)
    # The stream's first line (a comment with the retry delay) means it is subscribed.
    deadline = time.monotonic() + 5
    while s.comments == 0:
        assert time.monotonic() < deadline, "the stream sent nothing"
        time.sleep(0.01)
    return s


def stream_clients_metric(base: str) -> float:
    families = text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
    (value,) = [s.value for f in families for s in f.samples if s.name == "migration_api_event_stream_clients"]
    return value


def health(base: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{base}/health").json()
    return body


def wait_for_no_streams(base: str) -> None:
    """Wait until the server counts no stream: an earlier test's streams, closed by its client, stay
    counted until the server notices (its next write, a heartbeat; later on a loaded machine), and a
    count taken meanwhile drops under a test's feet."""
    deadline = time.monotonic() + 5
    while health(base)["events"]["clients"] != 0:
        assert time.monotonic() < deadline, "earlier streams are still counted"
        time.sleep(0.05)


def test_api_and_engine_writes_arrive_in_order_with_their_fields(
    events_server: str, db: psycopg.Connection[Any], streams: list[Stream]
) -> None:
    stream = open_stream(streams, f"{events_server}/api/v1/events")
    created = httpx.post(f"{events_server}{API}", json=run_body(record_type="claim", file_path="in/c.csv"))
    assert created.status_code == 201
    run_id = created.json()["id"]
    # The rest as an engine writes it: plain SQL into its tables, three transactions.
    insert_state(db, run_id, step_name="read", step_order=1)
    with db.transaction():
        insert_checkpoint(db, run_id, checkpoint_name="half")
        db.execute(
            "UPDATE migration_runs SET status = 'failed', success = false, error_message = 'boom' WHERE id = %s",
            (run_id,),
        )
    db.execute("DELETE FROM workflow_checkpoints WHERE run_id = %s", (run_id,))
    db.execute("DELETE FROM workflow_states WHERE run_id = %s", (run_id,))
    db.execute("DELETE FROM migration_runs WHERE id = %s", (run_id,))
    engine_run = insert_run(db, file_path="in/e.csv", record_type="absence")
    started = time.monotonic()
    messages = stream.wait_for(lambda ms: any(m.get("run_id") == engine_run for m in ms), timeout=2.0)
    assert time.monotonic() - started < 2.0
    mine = of_run(messages, run_id)
    assert [m["kind"] for m in mine] == [
        "run_created",
        "state_appended",
        "checkpoint_appended",
        "run_updated",
        "run_deleted",
    ]
    assert [m["event"] for m in mine] == [m["kind"] for m in mine]
    ids = [int(m["id"]) for m in messages]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(m["sse_id"] == str(m["id"]) for m in messages)
    first, state, checkpoint, updated, deleted = mine
    assert first["status"] == "running"
    assert first["record_type"] == "claim"
    assert state["step"] == {"name": "read", "order": 1}
    assert checkpoint["step"] == {"name": "half", "order": None}
    assert updated["status"] == "failed"
    assert deleted["run"] is None
    assert deleted["status"] == "failed"
    engine_created = of_run(messages, engine_run)
    assert [m["kind"] for m in engine_created] == ["run_created"]
    assert engine_created[0]["run"]["file_path"] == "in/e.csv"
    assert engine_created[0]["run"]["status"] == "running"


def test_filters_select_by_kind_status_record_type_and_run(
    events_server: str, db: psycopg.Connection[Any], streams: list[Stream]
) -> None:
    failed_updates = open_stream(streams, f"{events_server}/api/v1/events?kind=run_updated&status=failed")
    absences = open_stream(streams, f"{events_server}/api/v1/events?record_type=absence")
    everything = open_stream(streams, f"{events_server}/api/v1/events")
    a = httpx.post(f"{events_server}{API}", json=run_body(record_type="absence")).json()["id"]
    b = httpx.post(f"{events_server}{API}", json=run_body(record_type="claim")).json()["id"]
    one_run = open_stream(streams, f"{events_server}{API}/{b}/events")
    db.execute("UPDATE migration_runs SET status = 'failed' WHERE id = %s", (a,))
    db.execute("UPDATE migration_runs SET status = 'completed' WHERE id = %s", (b,))
    db.execute("UPDATE migration_runs SET status = 'failed' WHERE id = %s", (b,))
    everything.wait_for(lambda ms: len(of_run(ms, b)) == 3)
    one_run.wait_for(lambda ms: len(ms) == 2)
    time.sleep(0.3)  # nothing more is on its way to the filtered streams
    assert [(m["run_id"], m["status"]) for m in failed_updates.messages] == [(a, "failed"), (b, "failed")]
    assert {m["run_id"] for m in absences.messages} == {a}
    assert [m["kind"] for m in absences.messages] == ["run_created", "run_updated"]
    assert [(m["run_id"], m["status"]) for m in one_run.messages] == [(b, "completed"), (b, "failed")]


def test_bad_filters_and_unknown_runs_are_refused(events_server: str, db: psycopg.Connection[Any]) -> None:
    bad_kind = httpx.get(f"{events_server}/api/v1/events?kind=exploded")
    assert bad_kind.status_code == 400
    assert "kind must be among" in bad_kind.json()["detail"]
    assert httpx.get(f"{events_server}/api/v1/changes?kind=exploded").status_code == 400
    assert httpx.get(f"{events_server}/api/v1/changes?after=-1").status_code == 400
    bad_id = httpx.get(f"{events_server}/api/v1/events", headers={"Last-Event-ID": "x1"})
    assert bad_id.status_code == 400
    assert "detail" in bad_id.json()
    missing = httpx.get(f"{events_server}{API}/{uuid.uuid4()}/events")
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]


def test_last_event_id_resumes_with_no_gap_and_no_duplicate(
    events_server: str, db: psycopg.Connection[Any], streams: list[Stream]
) -> None:
    first = open_stream(streams, f"{events_server}/api/v1/events")
    run_ids = [httpx.post(f"{events_server}{API}", json=run_body()).json()["id"] for _ in range(3)]
    seen = first.wait_for(lambda ms: len(ms) >= 3)
    first.close()
    last = seen[-1]["id"]
    # While nobody listens: an engine finishes the runs and starts 40 more in one statement.
    for run_id in run_ids:
        db.execute("UPDATE migration_runs SET status = 'completed' WHERE id = %s", (run_id,))
    db.execute(
        "INSERT INTO migration_runs (id, file_path, record_type, status) "
        "SELECT gen_random_uuid(), 'in/r' || i || '.csv', 'claim', 'running' FROM generate_series(1, 40) i"
    )
    held = [
        e["id"]
        for e in httpx.get(f"{events_server}/api/v1/changes", params={"after": last, "limit": 1000}).json()["events"]
    ]
    while len(held) < 43:  # the engine's writes reach the events within the fold interval
        time.sleep(0.05)
        held = [
            e["id"]
            for e in httpx.get(f"{events_server}/api/v1/changes", params={"after": last, "limit": 1000}).json()[
                "events"
            ]
        ]
    resumed = open_stream(streams, f"{events_server}/api/v1/events", {"Last-Event-ID": str(last)})
    db.execute("UPDATE migration_runs SET status = 'failed' WHERE id = %s", (run_ids[0],))
    got = resumed.wait_for(lambda ms: any(m["run_id"] == run_ids[0] and m["status"] == "failed" for m in ms))
    ids = [int(m["id"]) for m in got]
    assert ids[: len(held)] == held  # exactly what was missed, in order, then live
    assert len(ids) == len(set(ids)) == len(held) + 1
    assert [m["kind"] for m in got[:3]] == ["run_updated"] * 3


def test_changes_feed_pages_the_same_events(events_server: str, db: psycopg.Connection[Any]) -> None:
    start = httpx.get(f"{events_server}/api/v1/changes", params={"after": 0, "limit": 1}).json()
    before = health(events_server)["events"]["last_id"]
    run_id = httpx.post(f"{events_server}{API}", json=run_body(record_type="claim")).json()["id"]
    for order in (1, 2, 3):
        insert_state(db, run_id, step_name=f"step{order}", step_order=order)
    deadline = time.monotonic() + 5
    after, got = before, list[Message]()
    while len(got) < 4:
        assert time.monotonic() < deadline, got
        page = httpx.get(
            f"{events_server}/api/v1/changes", params={"after": after, "limit": 2, "run_id": run_id}
        ).json()
        assert page["reset"] is False
        assert len(page["events"]) <= 2
        got += page["events"]
        after = page["last_id"]
        time.sleep(0.05)
    assert start["reset"] is False
    assert [e["kind"] for e in got] == ["run_created", "state_appended", "state_appended", "state_appended"]
    assert [e["step"]["order"] for e in got[1:]] == [1, 2, 3]
    only_states = httpx.get(
        f"{events_server}/api/v1/changes", params={"after": before, "kind": "state_appended", "run_id": run_id}
    ).json()
    assert [e["id"] for e in only_states["events"]] == [e["id"] for e in got[1:]]


def test_changes_feed_takes_one_pooled_connection(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    # Its position and its pages are read on the request's unit of work (a stream reads on the hub's).
    insert_run(db)
    assert pooled_connections(client, "/api/v1/changes?after=0") == 1


def test_notices_of_another_schemas_service_are_not_taken_for_this_ones(
    events_server: str, db: psycopg.Connection[Any], streams: list[Stream]
) -> None:
    """Every schema's service in a database announces its events on the same channel: a service
    of another schema (its ids far ahead of ours), or of an older version (which names no schema),
    must not move this one's position past its own events, or its streams would skip them."""
    wait_for_no_streams(events_server)  # with no stream open, it reads no events
    ahead = 2**62
    db.execute("SELECT pg_notify('migration_api_events', %s)", (f"another_schema:{ahead}",))
    db.execute("SELECT pg_notify('migration_api_events', %s)", (str(ahead),))
    run_id = httpx.post(f"{events_server}{API}", json=run_body()).json()["id"]
    ours = db.execute("SELECT max(id) FROM migration_api_events WHERE run_id = %s", (run_id,)).fetchone()
    assert ours is not None
    assert ours[0] is not None
    # Notices arrive in order: once the hub has seen our own event's, it has seen the others.
    deadline = time.monotonic() + 5
    while (last_id := health(events_server)["events"]["last_id"]) < ours[0]:
        assert time.monotonic() < deadline, last_id
        time.sleep(0.05)
    assert last_id < ahead
    page = httpx.get(f"{events_server}/api/v1/changes", params={"after": last_id}).json()
    assert page["reset"] is False
    stream = open_stream(streams, f"{events_server}/api/v1/events")
    db.execute("UPDATE migration_runs SET status = 'paused' WHERE id = %s", (run_id,))
    got = stream.wait_for(lambda ms: any(m.get("run_id") == run_id for m in ms))
    assert [(m["kind"], m["status"]) for m in of_run(got, run_id)] == [("run_updated", "paused")]


def test_a_slow_client_is_dropped_and_never_delays_the_others(
    events_server: str, db: psycopg.Connection[Any], streams: list[Stream]
) -> None:
    wait_for_no_streams(events_server)
    host, port = events_server.removeprefix("http://").split(":")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, int(port)))
    stalled.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    reader = open_stream(streams, f"{events_server}/api/v1/events?kind=run_created")
    deadline = time.monotonic() + 5
    while health(events_server)["events"]["clients"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # 20,000 runs in one engine statement: far more than the socket buffers and the 1,000-event
    # queue of a client that reads nothing. The reader may be dropped too when the burst outruns
    # it; it then resumes from its last event, as EventSource does, and misses nothing.
    started = time.monotonic()
    db.execute(
        "INSERT INTO migration_runs (id, file_path, record_type, status) "
        "SELECT gen_random_uuid(), 'in/s' || i || '.csv', 'claim', 'running' FROM generate_series(1, 20000) i"
    )
    reader.wait_for(lambda ms: len(ms) >= 20_000, timeout=30)
    reader_seconds = time.monotonic() - started
    deadline = time.monotonic() + 5
    while health(events_server)["events"]["clients"] != 1:
        assert time.monotonic() < deadline, "the stalled client was not dropped"
        time.sleep(0.05)
    stalled.close()
    ids = [m["id"] for m in reader.messages]
    assert len(ids) == len(set(ids)) == 20_000
    assert ids == sorted(ids)
    assert reader_seconds < 20


def test_closed_streams_free_their_place(events_server: str, streams: list[Stream]) -> None:
    wait_for_no_streams(events_server)
    opened = [open_stream(streams, f"{events_server}/api/v1/events") for _ in range(5)]
    assert health(events_server)["events"]["clients"] == 5
    assert stream_clients_metric(events_server) == 5
    for s in opened:
        s.close()
    deadline = time.monotonic() + 5
    while health(events_server)["events"]["clients"] != 0:
        assert time.monotonic() < deadline, "closed streams are still counted"
        time.sleep(0.05)
    # Idle streams get heartbeats (every 0.3 s here): the comment that opens the stream and two
    # heartbeats take at least 0.6 s; they are waited for up to 3 s (a fixed 1.0 s left a loaded CI
    # machine little slack, and it missed once).
    opened_at = time.monotonic()
    idle = open_stream(streams, f"{events_server}/api/v1/events")
    idle.wait_for(lambda _: idle.comments >= 3, timeout=3.0)
    assert time.monotonic() - opened_at >= 0.55


def test_a_client_from_before_the_retention_is_told_to_reload(
    settings: Settings, db: psycopg.Connection[Any], streams: list[Stream]
) -> None:
    with serve(settings.database_url or "", settings.db_schema, {"EVENTS_RETENTION_SECONDS": "1"}) as (_, base):
        run_id = httpx.post(f"{base}{API}", json=run_body()).json()["id"]
        db.execute("UPDATE migration_runs SET status = 'paused' WHERE id = %s", (run_id,))
        deadline = time.monotonic() + 5
        while len(held := httpx.get(f"{base}/api/v1/changes", params={"run_id": run_id}).json()["events"]) < 2:
            assert time.monotonic() < deadline, held
            time.sleep(0.05)
        first = held[0]["id"]  # a client that saw the run created, then went away
        deadline = time.monotonic() + 10
        while not (page := httpx.get(f"{base}/api/v1/changes", params={"after": first}).json())["reset"]:
            assert time.monotonic() < deadline, "events past the retention were not pruned"
            time.sleep(0.1)
        assert page["events"] == []
        assert page["last_id"] >= held[1]["id"]
        assert db.execute("SELECT count(*) FROM migration_api_events WHERE id <= %s", (held[1]["id"],)).fetchone() == (
            0,
        )
        resumed = open_stream(streams, f"{base}/api/v1/events", {"Last-Event-ID": str(first)})
        reset = resumed.wait_for(lambda ms: len(ms) >= 1)[0]
        assert reset["kind"] == "reset"
        assert reset["event"] == "reset"
        assert "retention" in reset["reason"]
        # ... and then it follows the live events.
        db.execute("UPDATE migration_runs SET status = 'completed' WHERE id = %s", (run_id,))
        resumed.wait_for(lambda ms: any(m.get("run_id") == run_id and m["status"] == "completed" for m in ms))


def test_sigterm_ends_a_thousand_open_streams_within_the_graceful_timeout(
    settings: Settings, db: psycopg.Connection[Any]
) -> None:
    with serve(settings.database_url or "", settings.db_schema, {"EVENTS_HEARTBEAT_SECONDS": "60"}) as (proc, base):
        host, port = base.removeprefix("http://").split(":")

        async def hold_streams() -> float:
            conns = await asyncio.gather(*(asyncio.open_connection(host, int(port)) for _ in range(1000)))
            for _, writer in conns:
                writer.write(f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            for reader, _ in conns:
                assert b"200" in await asyncio.wait_for(reader.readline(), 30)
            assert (await asyncio.to_thread(health, base))["events"]["clients"] == 1000
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            ended = await asyncio.gather(*(asyncio.wait_for(reader.read(), 10) for reader, _ in conns))
            assert all(e.endswith(b"0\r\n\r\n") for e in ended)  # each stream ended properly
            for _, writer in conns:
                writer.close()
            return time.monotonic() - started

        streams_ended = asyncio.run(hold_streams())
        started = time.monotonic()
        proc.wait(timeout=10)
        assert streams_ended < 2.0  # the graceful timeout (conftest's uvicorn) is 2 s
        assert time.monotonic() - started < 2.0
        # uvicorn shuts down, then raises the SIGTERM it caught again, so that its parent sees it.
        assert proc.returncode == -signal.SIGTERM


def test_pruned_events_are_vacuumed_where_autovacuum_does_not_run(
    settings: Settings, db: psycopg.Connection[Any]
) -> None:
    """Without autovacuum (off on the server, as on some, or for the table, as here) the space of
    pruned events would never be reused: the folder vacuums the table after a prune."""

    def vacuums() -> int:
        row = db.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'migration_api_events'::regclass"
        ).fetchone()
        return int(row[0]) if row else 0

    db.execute("ALTER TABLE migration_api_events SET (autovacuum_enabled = false)")
    try:
        before = vacuums()
        with serve(settings.database_url or "", settings.db_schema, {"EVENTS_RETENTION_SECONDS": "1"}) as (_, base):
            run_id = httpx.post(f"{base}{API}", json=run_body()).json()["id"]
            deadline = time.monotonic() + 10
            while db.execute("SELECT count(*) FROM migration_api_events WHERE run_id = %s", (run_id,)).fetchone() != (
                0,
            ):
                assert time.monotonic() < deadline, "the run's events were not pruned"
                time.sleep(0.1)
            while vacuums() == before:
                assert time.monotonic() < deadline, "the pruned events were not vacuumed"
                time.sleep(0.1)
    finally:
        db.execute("ALTER TABLE migration_api_events RESET (autovacuum_enabled)")
