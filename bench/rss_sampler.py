"""Sample the resident memory of every process whose command line contains argv[1], twice a second,
until killed; print `max_rss_mib <value>` and the sample count on exit (for `make bench`)."""

from __future__ import annotations

import signal
import sys
import time

import psutil

needle = sys.argv[1]
peak = 0
samples = 0


def report(*_: object) -> None:
    print(f"max_rss_mib {peak / 2**20:.1f}")
    print(f"samples {samples}")
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
while True:
    for proc in psutil.process_iter(["cmdline", "memory_info"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if needle in cmd and "rss_sampler" not in cmd and proc.info["memory_info"] is not None:
            peak = max(peak, proc.info["memory_info"].rss)
            samples += 1
    time.sleep(0.5)
