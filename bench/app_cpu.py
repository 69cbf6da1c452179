"""The app's own work per request, without HTTP, wrk or a second process (docs/performance.md).

    .venv/bin/python bench/app_cpu.py PATH [--query 'limit=50'] [--requests 5000] [--bare]

It builds the app as `uvicorn app:app` would (settings from the environment: DATABASE_URL, or the
embedded server; RATE_LIMIT=off and LOG_LEVEL=WARNING as `make bench` runs it), runs its lifespan,
calls it directly as an ASGI app with GET PATH 300 times to warm it (and its read cache), then
`--requests` more in ten blocks, and prints the process CPU per request of the fastest block and
of the median one, then the Python function calls per request (cProfile's count over 1,000 more).
The call count is deterministic: on a machine whose neighbours steal CPU it still compares two
versions of the code, where the CPU figures move by 20 % from run to run. `--bare` builds the app
without its middlewares (request log, timestamp repair, metrics, authentication): what those cost
is the difference. Every answer must be a 200.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RATE_LIMIT", "off")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import litestar

BLOCKS = 10
PROFILED = 1000


def build(bare: bool) -> Any:
    import app

    if bare:
        original = litestar.Litestar.__init__

        def without_middleware(self: litestar.Litestar, *args: Any, **kwargs: Any) -> None:
            kwargs["middleware"] = []
            original(self, *args, **kwargs)

        litestar.Litestar.__init__ = without_middleware  # type: ignore[method-assign]
    return app.create_app()


async def measure(path: str, query: bytes, requests: int, bare: bool) -> tuple[float, float, float]:
    application = build(bare)
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"localhost"), (b"accept", b"*/*")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }

    async with application.lifespan():
        for _ in range(300):
            await application(scope(), receive, send)
        per_block = max(1, requests // BLOCKS)
        blocks = []
        for _ in range(BLOCKS):
            started = time.process_time()
            for _ in range(per_block):
                await application(scope(), receive, send)
            blocks.append((time.process_time() - started) / per_block * 1e6)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(PROFILED):
            await application(scope(), receive, send)
        profile.disable()
    if statuses != {200}:
        raise SystemExit(f"answers other than 200: {sorted(statuses)}")
    calls = pstats.Stats(profile).total_calls / PROFILED  # type: ignore[attr-defined]
    return min(blocks), statistics.median(blocks), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="e.g. /api/v1/migrations/<id> or /api/v1/migrations")
    parser.add_argument("--query", default="", help="the query string, e.g. limit=50")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--bare", action="store_true", help="without the app's middlewares")
    args = parser.parse_args()
    fastest, median, calls = asyncio.run(measure(args.path, args.query.encode(), args.requests, args.bare))
    label = f"{args.path}{'?' + args.query if args.query else ''}{' (bare)' if args.bare else ''}"
    print(f"{label}: {fastest:.1f} us CPU per request (fastest block), median block {median:.1f}; {calls:.0f} calls")


if __name__ == "__main__":
    main()
