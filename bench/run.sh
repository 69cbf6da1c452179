#!/usr/bin/env bash
# `make bench`: the service against the FastAPI + asyncpg peer at RUNS runs (default 1,000,000),
# with the measuring instruments of ../shared/perf (wrk, the peer, the deterministic loader).
#
#  1. load RUNS runs into mig_<RUNS> (reused when already loaded; ~3 min and 4.6 GB for 1M)
#  2. copy it to mig_<RUNS>_app for the service and bring its schema up (indexes, roll-ups):
#     the peer keeps the original schema.sql database, untouched by our migrations
#  3. `bench.sh compare` at 32 connections (req/s, CPU per request) and at 1 connection
#     (p50/p99 service latency), peer and service in alternating passes, fresh server each pass
#  4. the HTTP ceiling (a null ASGI app under the same uvicorn and wrk): no target above it can be met
#  5. sample the service's resident memory throughout, then print one summary table
#     with the targets of issue 4 (bench/summary.py)
#  6. engine writes (issue 8, bench/engine_writes.py = `make bench-writes`): pgbench cycles/s on the
#     engines' bare schema.sql against schema.sql + the service's install, at 1 and 16 connections,
#     printed after the read table. It runs on the same embedded PostgreSQL 18 as the reads (its
#     own two throwaway databases, BENCH_WRITE_RUNS runs each), so both tables come from one server
#     that this script always has; `make bench-writes` measures on 127.0.0.1:5432 by default.
#
# Environment: RUNS, PERF (default ../shared/perf), PERF_HOME (the instruments' state),
# BENCH_REPEAT (passes per side at c32 and of the write benchmark, default 2), BENCH_DURATION
# (seconds, default 10), BENCH_WARMUP (seconds of warm-up per endpoint and pass, both sides, default
# 20: each pass starts a fresh server, and the service's read cache starts empty; the id-based
# endpoints draw from 10,000 run ids, which a slow machine's 3 s warm-up does not cover, so the
# measurement would depend on the machine's speed), BENCH_ENDPOINTS (comma list of names to run, default all below),
# BENCH_WRITE_RUNS (runs preloaded for the write benchmark, default 100000; 0 skips it),
# BENCH_WORKERS (the service's uvicorn worker processes, default 1), BENCH_PGBOUNCER=1 (the service
# reaches PostgreSQL through a PgBouncer in transaction mode, bench/pgbouncer.py, with
# DB_POOLER=transaction; the peer keeps its direct connections).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PERF=${PERF:-$ROOT/../shared/perf}
RUNS=${RUNS:-1000000}
REPEAT=${BENCH_REPEAT:-2}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-20}
WRITE_RUNS=${BENCH_WRITE_RUNS:-100000}
WORKERS=${BENCH_WORKERS:-1}
export RUNS
PERF_HOME=${PERF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/migration-api-perf}
export PERF_HOME
[ -d "$PERF" ] || { echo "no measuring instruments at $PERF (set PERF=...)" >&2; exit 1; }
[ -x "$PERF_HOME/venv/bin/python" ] && command -v wrk >/dev/null || "$PERF/setup.sh"

started_pg=0
if ! "$PERF/bench.sh" pg status 2>/dev/null | grep -q "^running"; then started_pg=1; fi
cleanup() {
  [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null || true
  [ -n "${POOLER:-}" ] && kill "$POOLER" 2>/dev/null || true
  if [ "$started_pg" = 1 ]; then "$PERF/bench.sh" pg stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "== 1. data: $RUNS runs (loaded once, then reused)"
"$PERF/bench.sh" load --keep-pg
PEER_DB="mig_${RUNS}"
APP_DB="mig_${RUNS}_app"
PSQL=("$PERF/bench.sh" pg psql)
marker() { PGDATABASE=postgres "${PSQL[@]}" -Atc "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$1'"; }

echo "== 2. the service's copy: $APP_DB"
if [ "$(marker "$APP_DB")" != "$(marker "$PEER_DB")" ] || [ -z "$(marker "$APP_DB")" ]; then
  PGDATABASE=postgres "${PSQL[@]}" -v ON_ERROR_STOP=1 -q \
    -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ('$APP_DB', '$PEER_DB') AND pid <> pg_backend_pid()" \
    -c "DROP DATABASE IF EXISTS $APP_DB" \
    -c "CREATE DATABASE $APP_DB TEMPLATE $PEER_DB" \
    -c "COMMENT ON DATABASE $APP_DB IS '$(marker "$PEER_DB")'"
fi
APP_URL=$("$PERF/bench.sh" pg uri "$APP_DB")
time DATABASE_URL="$APP_URL" .venv/bin/python -m db.migrate
PGDATABASE="$APP_DB" "${PSQL[@]}" -qc "VACUUM (ANALYZE) migration_runs"
# The service builds its roll-ups and search documents in the background after an install; the
# passes below measure the steady state, so wait for that once here (it persists in the database).
DATABASE_URL="$APP_URL" .venv/bin/python bench/wait_derived.py

# A cursor 20,000 rows deep in the default order, and one existing run for the timeline.
CURSOR=$(DATABASE_URL="$APP_URL" .venv/bin/python bench/deep_cursor.py 20000)
# A dashboard's "last 7 days, by status and record type"
WEEK_AGO=$(date -u -d '7 days ago' +%Y-%m-%dT%H:00:00Z)
# The peer's endpoints by name (../shared/perf/bench.py knows their paths), ours as NAME=PATH (a
# comma in a path is written %2C: the list is comma-separated). BENCH_ENDPOINTS picks from both.
declare -A OURS=(
  [stats_window]="/api/v1/migrations/stats?since=$WEEK_AGO&group_by=status%2Crecord_type"
  [stats_history]="/api/v1/migrations/stats/history?interval=day"
  [stats_errors]="/api/v1/migrations/stats/errors"
  [list_sorted]="/api/v1/migrations?status=failed&record_type=claim&sort=-total_duration&limit=50"
  [cursor_20k]="/api/v1/migrations?limit=50&cursor=$CURSOR"
  [timeline]="/api/v1/migrations/{id}/timeline"
)
SELECTED=${BENCH_ENDPOINTS:-get_run,list,list_status,states,search,search_none,stats,stats_window,stats_history,stats_errors,list_sorted,cursor_20k,timeline}
ITEMS=()
for name in ${SELECTED//,/ }; do
  if [ -n "${OURS[$name]:-}" ]; then ITEMS+=("$name=${OURS[$name]}"); else ITEMS+=("$name"); fi
done
ENDPOINTS=$(IFS=,; echo "${ITEMS[*]}")

SERVICE_ENV="DATABASE_URL='$APP_URL' RATE_LIMIT=off"
if [ "${BENCH_PGBOUNCER:-0}" = 1 ]; then
  POOLER_OUT=$(mktemp)
  .venv/bin/python bench/pgbouncer.py "$APP_URL" > "$POOLER_OUT" &
  POOLER=$!
  for _ in $(seq 100); do [ -s "$POOLER_OUT" ] && break; sleep 0.1; done
  POOLER_URL=$(head -1 "$POOLER_OUT")
  [ -n "$POOLER_URL" ] || { echo "PgBouncer did not start" >&2; exit 1; }
  # The pooler's database entry has no search path; the service's schema is the default (public).
  SERVICE_ENV="DATABASE_URL='$POOLER_URL' DATABASE_DIRECT_URL='$APP_URL' DB_POOLER=transaction RATE_LIMIT=off"
  echo "== service behind PgBouncer (transaction mode): $POOLER_URL"
fi
CMD="$SERVICE_ENV LOG_LEVEL=WARNING exec $ROOT/.venv/bin/uvicorn app:app --host 127.0.0.1 --port \$PORT --no-access-log --workers $WORKERS"
RESULTS="$PERF_HOME/results"
mkdir -p "$RESULTS"
touch "$RESULTS/results.jsonl"
FIRST_LINE=$(( $(wc -l < "$RESULTS/results.jsonl") + 1 ))
RSS_LOG=$(mktemp)
.venv/bin/python bench/rss_sampler.py "$ROOT/.venv/bin/uvicorn app:app" > "$RSS_LOG" &
SAMPLER=$!

echo "== 3a. compare at 32 connections ($REPEAT passes per side, ${DURATION}s per endpoint after ${WARMUP}s of warm-up)"
"$PERF/bench.sh" compare --cmd "$CMD" --label migration-api --endpoints "$ENDPOINTS" \
  --conns 32 --repeat "$REPEAT" --duration "$DURATION" --warmup "$WARMUP" --keep-pg
echo "== 3b. compare at 1 connection (service latency)"
"$PERF/bench.sh" compare --cmd "$CMD" --label migration-api --endpoints "$ENDPOINTS" \
  --conns 1 --threads 1 --repeat 1 --duration "$DURATION" --warmup "$WARMUP" --keep-pg

kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=
echo "== 3c. this machine's HTTP ceiling: a server that answers a fixed body and does nothing else"
"$PERF/bench.sh" ceiling --duration "$DURATION" --keep-pg

WRITES_OUT=$(mktemp)
if [ "$WRITE_RUNS" != 0 ]; then
  echo "== 3d. engine writes: bare schema.sql against the service's install ($WRITE_RUNS runs, embedded PostgreSQL 18)"
  .venv/bin/python bench/engine_writes.py --database-url "$("$PERF/bench.sh" pg uri postgres)" \
    --engine-schema "$PERF/schema.sql" \
    --runs "$WRITE_RUNS" --duration "$DURATION" --repeat "$REPEAT" > "$WRITES_OUT" \
    || echo "bench/engine_writes.py exited with status $? (its report says why)" >> "$WRITES_OUT"
fi

echo "== 4. summary"
.venv/bin/python bench/summary.py "$RESULTS/results.jsonl" "$FIRST_LINE" "$RSS_LOG"
if [ -s "$WRITES_OUT" ]; then
  echo
  cat "$WRITES_OUT"
fi
