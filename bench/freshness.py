"""Freshness of direct engine writes: how long until the API shows what an engine committed.

    .venv/bin/python bench/freshness.py [--runs 10000] [--samples 200] [--background-writers 4]
        [--timeout 5] [--keep] [--json FILE] [--database-url URL]        (`make bench-freshness`)

The README promises that a direct engine write (SQL into migration_runs, workflow_states,
workflow_checkpoints, no API) is visible in get, list, states and stats within 1 s. This measures
it against a live server, as a benchmark:

1. On the PostgreSQL server of DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres;
   the role needs the right to CREATE DATABASE) it creates a throwaway database `freshness_<random>`,
   the engines' tables (../shared/perf/schema.sql, or --engine-schema) and --runs runs with 2-5
   states and 1-2 checkpoints each (INSERT ... SELECT generate_series, then VACUUM ANALYZE).
2. It starts the service as deployed: `.venv/bin/uvicorn app:app --port <free> --no-access-log`,
   DATABASE_URL pointing at that database, LOG_LEVEL=WARNING; the service installs its schema
   and rebuilds its roll-ups; the benchmark waits for /health to say `derived.status` "ready".
3. Optionally (--background-writers K, default 4) a separate process runs K engine threads doing
   the 5-statement cycle of bench/engine_cycle.sql continuously (insert a run, two states, a
   checkpoint, the finishing update; autocommit psycopg), so freshness is measured under load.
4. --samples engine writes, each on a plain autocommit psycopg connection, the kinds in rotation:
     get     insert a new run; poll GET /api/v1/migrations/{id} until 200
     update  GET a run (it is now in the read cache), update its status and error_message;
             poll GET /api/v1/migrations/{id} until both show
     states  GET a run's states (cached), insert a state; poll GET .../{id}/states until it shows
     list    insert a run with a distinctive file_path; poll GET /api/v1/migrations?limit=50
             (newest first) until its id is on the page
     stats   insert a failed run of record type `freshness_probe`; poll GET /api/v1/migrations/stats
             until record_type_breakdown counts it, and total_migrations and status_breakdown
             ["failed"] have grown past the values read just before the write (with background
             writers those two grow anyway: the probe record type is what makes the check exact)
   Latency = from the engine's commit returning to the first poll response that shows the write;
   polls run back to back (httpx.Client, keep-alive), --timeout seconds per sample (5 s), a
   timeout counts as a failure. Before each write a random pause of 0-250 ms keeps the writes
   out of step with the service's 0.2 s fold interval; one unmeasured round of each kind first.

It prints per kind: samples, p50/p90/p99/max in ms (nearest rank: with 40 samples per kind the
p99 is the maximum), polls per sample, timeouts and "p99 <= 1000 ms: PASS/FAIL", then the
background writers' cycles/s and the service's state after the run. Exit status 1 on any FAIL,
timeout, background-writer error or error line in the service's log; 2 when it could not run.
The service is always stopped and the database dropped (unless --keep).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import multiprocessing as mp
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
PERF = Path(os.environ.get("PERF") or ROOT.parent / "shared" / "perf")
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BOUND_MS = 1000.0
READY_TIMEOUT = 120.0
PROBE_TYPE = "freshness_probe"
RECORD_TYPES = ("claim", "absence", "disability", "employee", "group_policy")
KINDS: dict[str, str] = {
    "get": "insert run -> GET /migrations/{id}",
    "update": "update cached run -> GET /migrations/{id}",
    "states": "insert state -> GET /{id}/states",
    "list": "insert run -> GET /migrations?limit=50",
    "stats": "insert failed run -> GET /stats",
}

# Existing runs: 80 % completed, 15 % failed, 5 % running over the last 90 days; 2-5 states and 1-2
# checkpoints each (the same shape as bench/engine_writes.py preloads).
PRELOAD = (
    "SELECT setseed(0.42)",
    """INSERT INTO migration_runs (id, file_path, record_type, status, created_at, updated_at, completed_at,
                                   total_duration, success, error_message)
       SELECT gen_random_uuid(), 'data/input/' || record_type || '_' || g || '.csv', record_type, status,
              created_at, created_at + secs * interval '1 second',
              CASE WHEN status <> 'running' THEN created_at + secs * interval '1 second' END,
              CASE WHEN status <> 'running' THEN secs END,
              CASE status WHEN 'completed' THEN true WHEN 'failed' THEN false END,
              CASE WHEN status = 'failed' THEN 'Timeout after ' || (30 + mod(g, 270)) || 's' END
         FROM (SELECT g, (ARRAY['claim', 'absence', 'disability', 'employee', 'group_policy'])[1 + mod(g, 5)]
                           AS record_type,
                      CASE WHEN p < 80 THEN 'completed' WHEN p < 95 THEN 'failed' ELSE 'running' END AS status,
                      created_at, secs
                 FROM (SELECT g, floor(random() * 100) AS p, now() - random() * interval '90 days' AS created_at,
                              round((5 + random() * 595)::numeric, 2)::float8 AS secs
                         FROM generate_series(1, %(runs)s) AS g) AS raw) AS r""",
    """INSERT INTO workflow_states (id, run_id, step_name, state_data, created_at, step_order)
       SELECT gen_random_uuid(), r.id, (ARRAY['read', 'validate', 'transform', 'map', 'write'])[k],
              jsonb_build_object('records', 100 * k), r.created_at + k * interval '1 second', k
         FROM migration_runs AS r CROSS JOIN LATERAL generate_series(1, 2 + (hashtext(r.id::text) & 3)) AS k""",
    """INSERT INTO workflow_checkpoints (id, run_id, checkpoint_name, state_data, created_at)
       SELECT gen_random_uuid(), r.id, 'after_step_' || k, jsonb_build_object('offset', 1000 * k),
              r.created_at + k * interval '2 seconds'
         FROM migration_runs AS r CROSS JOIN LATERAL generate_series(1, 1 + (hashtext(r.id::text) & 1)) AS k""",
)

# bench/engine_cycle.sql, statement for statement, with psycopg parameters (autocommit, schema-qualified).
CYCLE_RUN = (
    "INSERT INTO public.migration_runs (id, file_path, record_type, status) "
    "VALUES (gen_random_uuid(), %s, %s, 'running') RETURNING id"
)
CYCLE_STATE = (
    "INSERT INTO public.workflow_states (id, run_id, step_name, state_data, step_order) "
    "VALUES (gen_random_uuid(), %s, %s, %s::jsonb, %s)"
)
CYCLE_CHECKPOINT = (
    "INSERT INTO public.workflow_checkpoints (id, run_id, checkpoint_name, state_data) "
    "VALUES (gen_random_uuid(), %s, 'after_transform', %s::jsonb)"
)
CYCLE_FAIL = (
    "UPDATE public.migration_runs SET status = 'failed', completed_at = now(), updated_at = now(), "
    "total_duration = %s, success = false, error_message = %s WHERE id = %s"
)
CYCLE_COMPLETE = (
    "UPDATE public.migration_runs SET status = 'completed', completed_at = now(), updated_at = now(), "
    "total_duration = %s, success = true WHERE id = %s"
)


def say(message: str) -> None:
    print(f"[freshness {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def venv_bin(name: str) -> str:
    candidate = ROOT / ".venv" / "bin" / name
    return str(candidate) if candidate.exists() else str(Path(sys.executable).parent / name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def nearest_rank(sorted_values: list[float], pct: float) -> float:
    return sorted_values[max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)]


# -- the database ------------------------------------------------------------------------------------------


def create_database(url: str, name: str, engine_schema: str, runs: int) -> None:
    with admin(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    started = time.monotonic()
    with psycopg.connect(make_conninfo(url, dbname=name), autocommit=True) as conn:
        conn.execute(engine_schema)
        with conn.transaction():
            for statement in PRELOAD:
                conn.execute(statement, {"runs": runs} if "%(runs)s" in statement else None)
        counts = [
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
            for t in ("migration_runs", "workflow_states", "workflow_checkpoints")
        ]
        conn.execute("VACUUM (ANALYZE)")
    say(
        f"{name}: preloaded {counts[0]} runs, {counts[1]} states, {counts[2]} checkpoints "
        f"in {time.monotonic() - started:.1f} s"
    )


def drop_database(url: str, name: str) -> None:
    with admin(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- the service -------------------------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the service gets SIGTERM if this benchmark dies without its finally (kill -9)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Service:
    """`uvicorn app:app` on a free port over the benchmark's database."""

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, Any]:
        """Start it and wait until /health is 200 with derived.status "ready"; return that health."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
        env.update(DATABASE_URL=self.url, DB_SCHEMA="public", LOG_LEVEL="WARNING", MIGRATE_ON_START="true")
        command = [venv_bin("uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--no-access-log", "--workers", "1", "--timeout-graceful-shutdown", "5", "--log-level", "warning"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        started = time.monotonic()
        deadline = started + READY_TIMEOUT
        last = "no answer"
        with httpx.Client(base_url=self.base, timeout=5) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    response = client.get("/health")
                    last = f"{response.status_code} {response.text[:300]}"
                    if response.status_code == 200:
                        health = response.json()
                        if (health.get("derived") or {}).get("status") == "ready":
                            say(f"service ready on port {self.port} after {time.monotonic() - started:.1f} s")
                            return dict(health)
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(
                        f"the service was not ready within {READY_TIMEOUT:.0f} s (last /health: {last});"
                        f" log {self.log}:\n{tail}"
                    )
                time.sleep(0.2)

    def health(self) -> dict[str, Any] | None:
        with contextlib.suppress(httpx.HTTPError, ValueError), httpx.Client(base_url=self.base, timeout=5) as c:
            return dict(c.get("/health").json())
        return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_lines(self) -> tuple[list[str], list[str]]:
        """(error lines, other lines) of its log; it logs at WARNING, so every line is notable."""
        if not self.log.exists():
            return [], []
        lines = [line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        lines = [line for line in lines if not line.startswith("INFO:")]  # uvicorn's own start/stop lines
        level = re.compile(r"\[(error|critical)\s*\]|^(ERROR|CRITICAL)\b|Traceback")
        errors = [line for line in lines if level.search(line)]
        return errors, [line for line in lines if line not in errors]


# -- background engine writers (a separate process, so that their Python work does not hold the poller's GIL) --


def _writer_thread(url: str, stop: Any, cycles: Any, errors: Any, messages: Any, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - workload, not secrets
    conn: psycopg.Connection[Any] | None = None
    while not stop.is_set():
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(url, autocommit=True, application_name="freshness-engine")
            t = rng.randrange(5)
            n, records = rng.randint(1, 99999), rng.randint(1, 50000)
            secs = rng.randint(500, 60000) / 100.0
            row = conn.execute(CYCLE_RUN, (f"data/input/{RECORD_TYPES[t]}_{n}.csv", RECORD_TYPES[t])).fetchone()
            assert row is not None
            run_id = row[0]
            conn.execute(CYCLE_STATE, (run_id, "read", json.dumps({"records": records}), 1))
            conn.execute(CYCLE_STATE, (run_id, "transform", json.dumps({"records": records, "valid": True}), 2))
            conn.execute(CYCLE_CHECKPOINT, (run_id, json.dumps({"offset": records})))
            if rng.randint(1, 100) <= 10:
                message = rng.choice(
                    [
                        f"Timeout after {30 + n % 270}s",
                        f"Validation failed at row {records}",
                        "Connection reset by peer",
                        f"Duplicate key in batch {n % 50}",
                        f"Unknown record code {n % 40}",
                    ]
                )
                conn.execute(CYCLE_FAIL, (secs, message, run_id))
            else:
                conn.execute(CYCLE_COMPLETE, (secs, run_id))
            with cycles.get_lock():
                cycles.value += 1
        except Exception as exc:
            with errors.get_lock():
                errors.value += 1
                if errors.value <= 5:
                    messages.put(f"{exc.__class__.__name__}: {str(exc).strip()[:200]}")
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            conn = None
            time.sleep(0.1)
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


def writers_main(url: str, count: int, stop: Any, cycles: Any, errors: Any, messages: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through `stop`
    threads = [
        threading.Thread(target=_writer_thread, args=(url, stop, cycles, errors, messages, i), daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Writers:
    def __init__(self, url: str, count: int) -> None:
        ctx = mp.get_context("spawn")
        self.count = count
        self.stop_event = ctx.Event()
        self.cycles = ctx.Value("q", 0)
        self.errors = ctx.Value("q", 0)
        self.messages = ctx.Queue()
        self.proc = ctx.Process(
            target=writers_main,
            args=(url, count, self.stop_event, self.cycles, self.errors, self.messages),
            name="freshness-writers",
            daemon=True,
        )
        self.marks: list[tuple[float, int]] = []

    def start(self) -> None:
        self.proc.start()

    def mark(self) -> None:
        self.marks.append((time.perf_counter(), int(self.cycles.value)))

    def stop(self) -> list[str]:
        self.stop_event.set()
        self.proc.join(timeout=15)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)
        found = []
        with contextlib.suppress(Exception):
            while not self.messages.empty():
                found.append(self.messages.get_nowait())
        return found


# -- the samples -------------------------------------------------------------------------------------------


@dataclass
class Sample:
    kind: str
    ms: float | None  # None: not visible within the timeout
    polls: int
    note: str = ""


@dataclass
class Prober:
    """Does one engine write of a kind and polls the API until it shows."""

    engine: psycopg.Connection[Any]
    client: httpx.Client
    timeout: float
    tag: str
    runs: list[uuid.UUID]  # preloaded runs, each used for one update or states sample
    probes_in_stats: int = 0
    counter: int = 0
    kinds: dict[str, Callable[[], Sample]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kinds = {
            "get": self.get,
            "update": self.update,
            "states": self.states,
            "list": self.list,
            "stats": self.stats,
        }

    def _next_run(self) -> uuid.UUID:
        return self.runs.pop()

    def _poll(self, kind: str, path: str, shows: Callable[[httpx.Response], bool | str], committed: float) -> Sample:
        """GET path back to back until `shows` is True, from `committed` (perf_counter at commit)."""
        deadline = committed + self.timeout
        polls = 0
        note = ""
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return Sample(kind, None, polls, note or "timeout")
            try:
                response = self.client.get(path, timeout=remaining)
            except httpx.TimeoutException:
                return Sample(kind, None, polls, "timeout (request)")
            now = time.perf_counter()
            polls += 1
            verdict = shows(response)
            if verdict is True:
                return Sample(kind, (now - committed) * 1000, polls)
            if isinstance(verdict, str) and verdict:
                note = verdict
                if verdict.startswith("abort"):
                    return Sample(kind, None, polls, verdict)

    def _write(self, statement: str, params: tuple[Any, ...]) -> float:
        self.engine.execute(statement, params)
        return time.perf_counter()

    def get(self) -> Sample:
        run_id = uuid.uuid4()
        committed = self._write(
            "INSERT INTO migration_runs (id, file_path, record_type, status) VALUES (%s, %s, 'claim', 'running')",
            (run_id, f"freshness/{self.tag}/get_{run_id.hex[:8]}.csv"),
        )
        return self._poll("get", f"/api/v1/migrations/{run_id}", lambda r: r.status_code == 200, committed)

    def update(self) -> Sample:
        run_id = self._next_run()
        before = self.client.get(f"/api/v1/migrations/{run_id}")  # now in the read cache
        before.raise_for_status()
        new_status = "completed" if before.json()["status"] == "failed" else "failed"
        marker = f"freshness probe {self.tag} {uuid.uuid4().hex[:12]}"
        committed = self._write(
            "UPDATE migration_runs SET status = %s, error_message = %s, updated_at = now() WHERE id = %s",
            (new_status, marker, run_id),
        )

        def shows(response: httpx.Response) -> bool:
            if response.status_code != 200:
                return False
            body = response.json()
            return bool(body["status"] == new_status and body["error_message"] == marker)

        return self._poll("update", f"/api/v1/migrations/{run_id}", shows, committed)

    def states(self) -> Sample:
        run_id = self._next_run()
        path = f"/api/v1/migrations/{run_id}/states"
        self.client.get(path).raise_for_status()  # now in the read cache
        sid = uuid.uuid4()
        committed = self._write(
            "INSERT INTO workflow_states (id, run_id, step_name, state_data, step_order) "
            "SELECT %s, %s, 'freshness_probe', '{\"probe\": true}', coalesce(max(step_order), 0) + 1 "
            "FROM workflow_states WHERE run_id = %s",
            (sid, run_id, run_id),
        )
        text = str(sid)
        return self._poll("states", path, lambda r: r.status_code == 200 and text in r.text, committed)

    def list(self) -> Sample:
        run_id = uuid.uuid4()
        row = self.engine.execute(
            "INSERT INTO migration_runs (id, file_path, record_type, status) VALUES (%s, %s, 'claim', 'running') "
            "RETURNING created_at",
            (run_id, f"freshness/{self.tag}/list_probe_{run_id.hex}.csv"),
        ).fetchone()
        committed = time.perf_counter()
        assert row is not None
        created = row[0]
        text = str(run_id)

        def shows(response: httpx.Response) -> bool | str:
            if response.status_code != 200:
                return False
            if text in response.text:
                return True
            items = response.json()
            # Fifty runs newer than ours: other writers pushed it off the first page; it can no
            # longer show there, which says nothing about freshness.
            if len(items) >= 50 and all(
                item["created_at"] is not None and _parse_time(item["created_at"]) > created for item in items
            ):
                return "abort: pushed off the first page by newer runs"
            return False

        return self._poll("list", "/api/v1/migrations?limit=50", shows, committed)

    def stats(self) -> Sample:
        before = self.client.get("/api/v1/migrations/stats")
        before.raise_for_status()
        base = before.json()
        base_total, base_failed = base["total_migrations"], base["status_breakdown"].get("failed", 0)
        run_id = uuid.uuid4()
        committed = self._write(
            "INSERT INTO migration_runs (id, file_path, record_type, status, completed_at, total_duration, success,"
            " error_message) VALUES (%s, %s, %s, 'failed', now(), 12.5, false, 'freshness probe')",
            (run_id, f"freshness/{self.tag}/stats_{run_id.hex[:8]}.csv", PROBE_TYPE),
        )
        self.probes_in_stats += 1
        expected = self.probes_in_stats

        def shows(response: httpx.Response) -> bool:
            if response.status_code != 200:
                return False
            body = response.json()
            return bool(
                body["record_type_breakdown"].get(PROBE_TYPE, 0) >= expected
                and body["total_migrations"] > base_total
                and body["status_breakdown"].get("failed", 0) > base_failed
            )

        return self._poll("stats", "/api/v1/migrations/stats", shows, committed)


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- the report --------------------------------------------------------------------------------------------


def report(samples: list[Sample], header: list[str], footer: list[str]) -> bool:
    """Print the table; True when every kind passes with no timeout."""
    print("\n".join(header))
    print()
    print(
        f"{'kind':<8}{'what':<44}{'samples':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'polls p50':>10}{'timeouts':>9}  verdict"
    )
    ok = True
    for kind, what in KINDS.items():
        mine = [s for s in samples if s.kind == kind]
        if not mine:
            continue
        times = sorted(s.ms for s in mine if s.ms is not None)
        timeouts = sum(1 for s in mine if s.ms is None)
        polls = statistics.median([s.polls for s in mine])

        def col(pct: float, values: list[float] = times) -> str:
            return f"{nearest_rank(values, pct):.1f}" if values else "-"

        p99 = nearest_rank(times, 99) if times else None
        passed = p99 is not None and p99 <= BOUND_MS and timeouts == 0
        ok = ok and passed
        verdict = f"p99 <= {BOUND_MS:.0f} ms: {'PASS' if passed else 'FAIL'}"
        if timeouts:
            verdict += f" ({timeouts} timeout{'s' if timeouts > 1 else ''})"
        print(
            f"{kind:<8}{what:<44}{len(mine):>8}{col(50):>9}{col(90):>9}{col(99):>9}"
            f"{(f'{times[-1]:.1f}' if times else '-'):>9}{polls:>10g}{timeouts:>9}  {verdict}"
        )
    notes = sorted({f"{s.kind}: {s.note}" for s in samples if s.note})
    if notes:
        print("failed samples: " + "; ".join(notes))
    print()
    print("\n".join(footer))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
        help=f"the server to measure on (a role that may CREATE DATABASE); default $DATABASE_URL, else {DEFAULT_URL}",
    )
    parser.add_argument("--runs", type=int, default=10_000, help="existing runs preloaded (default 10000)")
    parser.add_argument("--samples", type=int, default=200, help="measured engine writes, kinds in rotation (200)")
    parser.add_argument(
        "--background-writers",
        type=int,
        default=4,
        help="engine threads running bench/engine_cycle.sql's cycle throughout (default 4; 0: none)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per sample before it fails (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument(
        "--engine-schema",
        type=Path,
        default=PERF / "schema.sql",
        help="the engines' schema (default $PERF/schema.sql, PERF=../shared/perf)",
    )
    args = parser.parse_args(argv)
    if args.samples < 1 or args.runs < args.samples or args.background_writers < 0:
        parser.error("need --samples >= 1, --runs >= --samples and --background-writers >= 0")
    if not args.engine_schema.exists():
        print(f"no engines' schema at {args.engine_schema} (set --engine-schema or PERF)", file=sys.stderr)
        return 2

    url = args.database_url
    where = conninfo_to_dict(url)
    server_name = f"{where.get('host') or 'local socket'}:{where.get('port') or 5432}"
    try:
        with admin(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            allowed = conn.execute(
                "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except psycopg.OperationalError as exc:
        print(f"no PostgreSQL reachable at {server_name} ({str(exc).strip().splitlines()[0]})", file=sys.stderr)
        return 2
    if not allowed or not allowed[0]:
        print(f"the role of {server_name} may not CREATE DATABASE: use one that may", file=sys.stderr)
        return 2

    # SIGTERM (and SIGHUP) unwind like Ctrl-C, so that the finally below always runs.
    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)

    tag = uuid.uuid4().hex[:8]
    name = f"freshness_{tag}"
    db_url = make_conninfo(url, dbname=name)
    log_dir = Path(tempfile.mkdtemp(prefix="freshness-"))
    service = Service(db_url, log_dir / "service.log")
    writers: Writers | None = None
    created = False
    ok = False
    status = 1
    try:
        say(f"PostgreSQL {version} at {server_name}: database {name}")
        created = True  # from here on the finally drops it, whatever happens
        create_database(url, name, args.engine_schema.read_text(), args.runs)
        health_before = service.start()
        with psycopg.connect(db_url, autocommit=True, application_name="freshness-probe") as engine:
            picked = [
                r[0]
                for r in engine.execute(
                    "SELECT id FROM migration_runs ORDER BY random() LIMIT %s", (args.samples + 10,)
                )
            ]
            if args.background_writers:
                writers = Writers(db_url, args.background_writers)
                writers.start()
                time.sleep(2.0)  # let them connect and reach their pace
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            with httpx.Client(base_url=service.base, timeout=args.timeout, limits=limits) as client:
                prober = Prober(engine, client, args.timeout, tag, picked)
                order = list(KINDS)
                for kind in order:  # one unmeasured round: connections, prepared statements, caches
                    prober.kinds[kind]()
                say(f"measuring {args.samples} samples, {args.background_writers} background writer(s)")
                if writers is not None:
                    writers.mark()
                samples: list[Sample] = []
                started = time.perf_counter()
                for i in range(args.samples):
                    time.sleep(random.uniform(0, 0.25))  # noqa: S311 - out of step with the fold interval
                    sample = prober.kinds[order[i % len(order)]]()
                    samples.append(sample)
                    if sample.ms is None:
                        say(f"sample {i + 1} ({sample.kind}): not visible within {args.timeout:g} s ({sample.note})")
                    if (i + 1) % 50 == 0:
                        say(f"{i + 1}/{args.samples} samples")
                elapsed = time.perf_counter() - started
                if writers is not None:
                    writers.mark()
        health_after = service.health()

        problems: list[str] = []
        writer_line = "background writers: none (--background-writers 0)"
        if writers is not None:
            (t0, c0), (t1, c1) = writers.marks[0], writers.marks[-1]
            messages = writers.stop()
            rate = (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
            writer_line = (
                f"background writers: {args.background_writers} engine threads (bench/engine_cycle.sql's 5 statements,"
                f" autocommit psycopg, own process): {rate:.0f} cycles/s during the measurement"
            )
            if writers.errors.value:
                problems.append(f"{writers.errors.value} background-writer errors: " + "; ".join(messages))
        service.stop()
        errors, others = service.log_lines()
        if errors:
            problems.append(f"{len(errors)} error lines in the service's log ({service.log}): " + "; ".join(errors[:3]))
        derived_before = health_before.get("derived", {})
        derived_after = (health_after or {}).get("derived", {})
        header = [
            "freshness of direct engine writes: commit returned -> first API response that shows the write",
            f"PostgreSQL {version} at {server_name}; {args.runs} preloaded runs; service: uvicorn app:app, 1 worker,"
            f" schema version {health_before.get('database', {}).get('schema_version')}",
            f"{len(samples)} samples in {elapsed:.0f} s ({len(samples) // len(order)} per kind), back-to-back polls,"
            f" timeout {args.timeout:g} s; percentiles by nearest rank",
            writer_line,
        ]
        footer = [
            f"service /health derived after the run: status {derived_after.get('status')!r},"
            f" backlog {derived_after.get('backlog')}, note {derived_after.get('note')!r}"
            f" (before: {derived_before.get('status')!r})",
        ]
        if others:
            distinct = list(dict.fromkeys(others))
            footer.append(f"service log, {len(others)} warning lines: " + " | ".join(distinct[:4]))
        if derived_after.get("status") != "ready":
            problems.append(f"derived data not ready after the run: {derived_after}")
        if problems:
            footer.append("problems:")
            footer += [f"  - {p}" for p in problems]
        ok = report(samples, header, footer) and not problems
        if args.json:
            args.json.write_text(json.dumps([asdict(s) for s in samples], indent=1))
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    except Exception as exc:  # report it after cleaning up; the measurement did not complete
        say(f"failed: {exc.__class__.__name__}: {exc}")
        status = 2
    finally:
        if writers is not None and writers.proc.is_alive():
            writers.stop()
        service.stop()
        if created:
            if args.keep:
                say(f"kept: database {name} on {server_name}")
            else:
                try:
                    drop_database(url, name)
                except psycopg.Error as exc:
                    say(f"could not drop {name}: {exc}")
        if ok:
            with contextlib.suppress(OSError):
                for path in log_dir.iterdir():
                    path.unlink()
                log_dir.rmdir()
        else:
            say(f"service log kept in {log_dir}")
    return 0 if ok else status


if __name__ == "__main__":
    sys.exit(main())
