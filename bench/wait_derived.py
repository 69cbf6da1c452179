"""Start the service once on DATABASE_URL and wait until its derived data is ready.

    DATABASE_URL=... .venv/bin/python bench/wait_derived.py [TIMEOUT_SECONDS]

After an install or upgrade the service rebuilds its roll-ups and search documents in the
background (changelog/); until then statistics and search read the base tables. A benchmark must
measure the steady state, so `make bench` runs this before its passes: it serves on a free port,
polls GET /health until `derived.status` is "ready", prints how long the rebuild took, and stops.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 900.0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    cmd = [str(ROOT / ".venv/bin/uvicorn"), "app:app", "--port", str(port), "--no-access-log"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)  # noqa: S603 - our own fixed command
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                print("the service exited before its derived data was ready", file=sys.stderr)
                return 1
            try:
                derived = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json().get("derived", {})
            except (httpx.HTTPError, ValueError):
                derived = {}
            if derived.get("status") == "ready":
                print(f"derived data ready after {time.monotonic() - started:.1f} s")
                return 0
            time.sleep(1)
        print(f"derived data not ready within {timeout:.0f} s", file=sys.stderr)
        return 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
