"""Summarise a `make bench` run: per endpoint, the service against the peer, with issue 4's targets.

    summary.py RESULTS_JSONL FIRST_LINE RSS_LOG

Reads the rows that `bench.sh compare` appended from FIRST_LINE on (one compare at 32 connections,
one at 1), means over passes, and prints one table plus a verdict per target.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

# Throughput targets: at least this many times the peer's req/s at 32 connections.
RPS_TARGETS = {"get_run": 1.5, "list": 1.5, "list_status": 1.5, "states": 1.5}
# Latency targets: p99 at 1 connection at most 50 ms (and 50x the peer's req/s where it has the endpoint).
LATENCY_ENDPOINTS = (
    "stats",
    "stats_window",
    "stats_history",
    "stats_errors",
    "search",
    "search_none",
    "list_sorted",
    "cursor_20k",
)
# The peer answers these paths but ignores what they ask for (sort, cursor, window, grouping: it
# returns its first page or all-time figures), so its req/s is no comparison for them.
PEER_IGNORES = {"list_sorted": "sort", "cursor_20k": "cursor", "stats_window": "since/group_by"}
P99_LIMIT_MS = 50.0
FAST_RPS_FACTOR = 50.0
RSS_LIMIT_MIB = 150.0


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    path, first, rss_log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(path) as f:
        rows = [json.loads(line) for i, line in enumerate(f, 1) if i >= first and line.strip()]
    # (role, connections, endpoint) -> list of rows
    cells: dict[tuple[str, int, str], list[dict]] = defaultdict(list)
    order: list[str] = []
    # What uvicorn serves per second with one worker when the app does nothing (bench.sh ceiling).
    ceiling = max(
        (r["rps"] for r in rows if r.get("mode") == "ceiling" and r["endpoint"].startswith("null_asgi")), default=None
    )
    for r in rows:
        if r.get("mode") != "compare":
            continue
        cells[(r["role"], r["connections"], r["endpoint"])].append(r)
        if r["endpoint"] not in order:
            order.append(r["endpoint"])

    def val(role: str, conns: int, endpoint: str, key: str) -> float | None:
        good = [r[key] for r in cells[(role, conns, endpoint)] if r.get("status") == 200 and r.get("requests")]
        return mean([float(v) for v in good if v is not None])

    peak = None
    with open(rss_log) as f:
        for line in f:
            if line.startswith("max_rss_mib"):
                peak = float(line.split()[1])

    print(
        f"runs={rows[0]['runs'] if rows else '?'}  (x = service / peer; req/s at 32 connections, "
        "latency at 1 connection, CPU = server process microseconds per request at 32 connections)"
    )
    header = (
        f"{'endpoint':<14}{'peer rps':>9}{'svc rps':>9}{'rps x':>7}"
        f"{'peer p50':>9}{'peer p99':>9}{'svc p50':>8}{'svc p99':>8}{'peer us':>8}{'svc us':>8}  target"
    )
    print(header)
    verdicts: list[tuple[str, bool]] = []
    unreachable: list[str] = []
    for ep in order:
        peer_rps, svc_rps = val("peer", 32, ep, "rps"), val("product", 32, ep, "rps")
        ratio = svc_rps / peer_rps if peer_rps and svc_rps else None
        # Where the peer completes nothing at 32 connections (a full scan per request), compare with
        # its best: its req/s at 1 connection.
        best_peer = max((v for v in (peer_rps, val("peer", 1, ep, "rps")) if v), default=None)
        best_ratio = svc_rps / best_peer if best_peer and svc_rps else None
        p50_1, p99_1 = val("product", 1, ep, "p50_ms"), val("product", 1, ep, "p99_ms")
        target = ""
        if ep in RPS_TARGETS:
            ok = ratio is not None and ratio >= RPS_TARGETS[ep]
            target = f">= {RPS_TARGETS[ep]}x peer rps: {'PASS' if ok else 'FAIL'}"
            verdicts.append((ep, ok))
        elif ep in LATENCY_ENDPOINTS:
            ok = p99_1 is not None and p99_1 <= P99_LIMIT_MS
            parts = [f"p99 <= {P99_LIMIT_MS:g} ms: {'PASS' if ok else 'FAIL'}"]
            if ep in PEER_IGNORES:
                parts.append(f"(peer ignores {PEER_IGNORES[ep]}: no rps comparison)")
            elif best_peer:
                fast = best_ratio is not None and best_ratio >= FAST_RPS_FACTOR
                parts.append(
                    f">= {FAST_RPS_FACTOR:g}x peer's best rps ({best_ratio or 0:.3g}x): {'PASS' if fast else 'FAIL'}"
                )
                if not fast and ceiling and FAST_RPS_FACTOR * best_peer > ceiling:
                    parts.append(
                        f"(unreachable: {FAST_RPS_FACTOR:g}x is {FAST_RPS_FACTOR * best_peer:.0f} req/s, above the "
                        f"HTTP ceiling of {ceiling:.0f})"
                    )
                    unreachable.append(ep)
                ok = ok and fast
            target = "; ".join(parts)
            verdicts.append((ep, ok))
        ratio_spec = ".2f" if (ratio or 0) < 100 else ".0f"
        print(
            f"{ep:<14}{fmt(peer_rps, '.0f'):>9}{fmt(svc_rps, '.0f'):>9} {fmt(ratio, ratio_spec):>6}"
            f"{fmt(val('peer', 1, ep, 'p50_ms'), '.1f'):>9}{fmt(val('peer', 1, ep, 'p99_ms'), '.1f'):>9}"
            f"{fmt(p50_1, '.1f'):>8}{fmt(p99_1, '.1f'):>8}"
            f"{fmt(val('peer', 32, ep, 'srv_us'), '.0f'):>8}{fmt(val('product', 32, ep, 'srv_us'), '.0f'):>8}  {target}"
        )
    rss_ok = peak is not None and peak < RSS_LIMIT_MIB
    verdicts.append(("memory", rss_ok))
    print(
        f"service max RSS over the whole benchmark: {fmt(peak, '.1f')} MiB "
        f"(target < {RSS_LIMIT_MIB:g} MiB: {'PASS' if rss_ok else 'FAIL'})"
    )
    if ceiling:
        print(f"HTTP ceiling (uvicorn, 1 worker, an app that returns a fixed body): {ceiling:.0f} req/s")
    failed = [name + (" (above the HTTP ceiling)" if name in unreachable else "") for name, ok in verdicts if not ok]
    print("targets: all met" if not failed else f"targets not met: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
