"""`make bench BENCH_PGBOUNCER=1`: a PgBouncer in transaction mode in front of the service's database.

Prints the pooler's URL on stdout once it accepts connections, then runs until SIGTERM/SIGINT
(it stops PgBouncer and deletes its folder). Debian's `pgbouncer` package provides the binary.

    python bench/pgbouncer.py SERVER_URL [--pool-size 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server_url")
    parser.add_argument("--pool-size", type=int, default=16)
    args = parser.parse_args()
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        sys.exit("pgbouncer is not installed (apt-get install pgbouncer)")
    server = conninfo_to_dict(args.server_url)
    folder = Path(tempfile.mkdtemp(prefix="migration-api-bench-pgbouncer-"))
    folder.chmod(0o777)
    port = free_port()
    target = " ".join(f"{k}={server[k]}" for k in ("host", "port", "dbname", "user", "password") if server.get(k))
    (folder / "users.txt").write_text(f'"{server.get("user", "postgres")}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\nmig = {target}\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {args.pool_size}\nmax_client_conn = 500\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    # PgBouncer refuses to run as root; -u drops to the owner of the server's socket folder.
    owner = ["-u", "nobody"] if os.geteuid() == 0 else []
    if os.geteuid() == 0 and str(server.get("host", "")).startswith("/"):
        owner = ["-u", Path(str(server["host"])).owner()]
    proc = subprocess.Popen([binary, *owner, str(folder / "pgbouncer.ini")])  # noqa: S603

    def stop(*_: object) -> None:
        # SIGTERM: immediate shutdown (SIGINT waits for clients that may never leave).
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    url = make_conninfo(user=server.get("user", "postgres"), host="127.0.0.1", port=str(port), dbname="mig")
    deadline = time.monotonic() + 10
    while True:
        try:
            psycopg.connect(url, connect_timeout=1).close()
            break
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit((folder / "pgbouncer.log").read_text())
            time.sleep(0.1)
    print(url, flush=True)
    proc.wait()
    return proc.returncode


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
