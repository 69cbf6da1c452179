"""Starting the service: the command line, one-line failures with a non-zero exit (under `make run`'s
--reload too), masked passwords, the startup banner, and `--help` of every `python -m` command."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from app import StartupFailed, create_app
from config import PROJECT_DIR, Settings, mask_password
from db.schema import LATEST
from tests.helpers import free_port, make_settings

PASSWORD = "s3cret-pw"


def run_app(*args: str, timeout: float = 20, **env: str) -> tuple[int, str, float]:
    """`python app.py ARGS` with `env` as its only database settings; (exit code, output, seconds)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DB_") and k != "DATABASE_URL"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "app.py", *args],
        cwd=PROJECT_DIR,
        env={**clean, "PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def with_password(url: str, **params: Any) -> str:
    return make_conninfo(url, password=PASSWORD, **params)


def failing_urls(database_url: str) -> dict[str, tuple[str, str]]:
    """Each failure: (DATABASE_URL, the words its one line must contain)."""
    return {
        "unreachable host": (
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/migrations",
            "Connection refused",
        ),
        "refused login": (with_password(database_url, user=f"nobody_{uuid.uuid4().hex[:6]}"), "role"),
        "missing database": (with_password(database_url, dbname="no_such_database_x"), "does not exist"),
        "bad URL": (f"postgresql://postgres:{PASSWORD}@localhost/x?no_such_option=1", "invalid URI query parameter"),
    }


@pytest.mark.parametrize("case", ["unreachable host", "refused login", "missing database", "bad URL"])
@pytest.mark.parametrize("reload", [False, True], ids=["serve", "reload"])
def test_a_database_that_cannot_be_used_is_one_line_and_a_quick_non_zero_exit(
    database_url: str, case: str, reload: bool
) -> None:
    url, cause = failing_urls(database_url)[case]
    code, output, took = run_app(*(["--reload"] if reload else []), DATABASE_URL=url)
    assert code != 0
    assert took < 10
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    (line,) = lines
    assert cause in line
    assert PASSWORD not in output
    if case != "bad URL":
        params = conninfo_to_dict(url)
        assert f"host {params['host']}" in line
        assert f"port {params.get('port', '5432')}" in line
        assert f"database {params['dbname']}" in line


def test_a_rejected_url_is_echoed_without_its_password() -> None:
    code, output, _ = run_app(DATABASE_URL=f"mysql://user:{PASSWORD}@db.example/x")
    assert code != 0
    assert output.strip().splitlines() == [
        "configuration error: DATABASE_URL must be a postgresql:// URL or a "
        "libpq 'key=value' string, got 'mysql://user:***@db.example/x'"
    ]


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db?password=pw&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
        ("host=h password='p w' dbname=db", "host=h password=*** dbname=db"),
        ("postgresql://postgres:@/migration_api?host=/tmp/x", "postgresql://postgres:@/migration_api?host=/tmp/x"),
    ],
)
def test_mask_password(url: str, masked: str) -> None:
    assert mask_password(url) == masked


def test_workers_with_reload_is_refused_with_a_reason() -> None:
    code, output, _ = run_app("--workers", "2", "--reload")
    assert code == 2
    assert "--workers cannot be combined with --reload" in output


def test_app_help_lists_the_options_and_starts_nothing() -> None:
    code, output, took = run_app("--help", DATABASE_URL=f"postgresql://u:{PASSWORD}@127.0.0.1:{free_port()}/x")
    assert code == 0
    for option in ("--host", "--port", "--workers", "--reload"):
        assert option in output
    assert took < 10


@pytest.mark.usefixtures("_schema_ready")
def test_host_and_port_options_are_served(settings: Settings) -> None:
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=settings.database_url or "", DB_SCHEMA=settings.db_schema, LOG_LEVEL="INFO")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "the service exited"
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    assert f"listening on http://127.0.0.1:{port}" in output


@pytest.mark.parametrize("module", ["db.migrate", "db.uninstall", "db.seed", "db.embedded"])
def test_every_python_m_command_answers_help_without_touching_the_database(
    database_url: str, module: str, db: psycopg.Connection[Any]
) -> None:
    schema = f"help_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
    env.update(DATABASE_URL=database_url, DB_SCHEMA=schema)
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")
    assert db.execute("SELECT to_regnamespace(%s)", (schema,)).fetchone() == (None,)


def test_make_test_passes_args_to_pytest() -> None:
    done = subprocess.run(
        ["make", "-n", "test", "ARGS=-k timeline -x"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    # Both parts (the parallel one and the one run alone) get them.
    assert done.stdout.count("-k timeline -x") == 2, done.stdout


def test_the_banner_says_where_it_listens_the_docs_and_which_database(
    settings: Settings, db: psycopg.Connection[Any]
) -> None:
    lines: list[str] = []
    collector = logging.Handler(logging.INFO)
    collector.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("migration_api")
    app = create_app(msgspec.structs.replace(settings, host="127.0.0.1", port=8123))
    logger.addHandler(collector)  # after create_app, which configures logging
    try:
        with TestClient(app=app) as client:
            assert client.get("/health").status_code == 200
    finally:
        logger.removeHandler(collector)
    (version,) = db.execute("SELECT current_setting('server_version')").fetchone() or ("?",)
    banner = "\n".join(lines)
    assert f"listening on http://127.0.0.1:8123 (process {os.getpid()})" in banner
    for page in ("/docs", "/redoc", "/elements", "/openapi.json"):
        assert f"http://localhost:8123{page}" in banner
    assert f"PostgreSQL {version} at host " in banner
    assert f"schema {settings.db_schema} at version {LATEST}" in banner
    assert "embedded" not in banner  # this app was given a database URL


def test_startup_with_a_database_that_cannot_be_used_fails_with_one_line(database_url: str, schema: str) -> None:
    bad = make_settings(make_conninfo(database_url, dbname="no_such_database_x"), schema)
    with pytest.raises(ExceptionGroup) as failure, TestClient(app=create_app(bad)):
        pass
    (startup,) = failure.value.subgroup(StartupFailed).exceptions  # type: ignore[union-attr]
    assert "\n" not in str(startup)
    assert "database no_such_database_x" in str(startup)
