"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright) against a live
uvicorn: the figures are the API's, the page fits a phone, it works with JavaScript off, and runs
an engine writes with plain SQL appear on the open page without a reload.

Screenshots go to artifacts/ (git-ignored) for a reviewer to look at.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from config import PROJECT_DIR
from tests.dashboard_data import seed_runs
from tests.helpers import insert_checkpoint, insert_run, insert_state, wait_folded

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

ARTIFACTS = Path(PROJECT_DIR) / "artifacts"
API = "/api/v1/migrations"
# The first test also pays for starting chromium (about 50 s on a loaded 2-core machine).
pytestmark = pytest.mark.timeout(300)
LAPTOP: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# The promise of issue 12: a run written by SQL is on the open page within 2 s.
LIVE_WITHIN_MS = 2000


def _chromium() -> str:
    """Debian's chromium; installed with apt-get when missing and we may (root, as in CI)."""
    found = shutil.which("chromium")
    if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"], check=False, env=env, capture_output=True, timeout=900
        )
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("no chromium: install Debian's package (`apt-get install -y chromium`, as .ci/run does)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: make install")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def _shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")  # shown with -s or -rP
    return path


def _stat(page: Page, key: str) -> int:
    return int(page.locator(f'[data-stat="{key}"]').first.inner_text().replace(",", ""))


def _no_horizontal_overflow(page: Page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px viewport"


def test_dashboard_shows_the_api_figures_on_a_laptop_and_a_phone(
    live_server: str, db: psycopg.Connection[Any], browser: Browser
) -> None:
    seed_runs(db, 70, random.Random(7))
    run_id = insert_run(db, file_path="data/input/claim_" + "9" * 120 + ".csv", error_message="x" * 400)
    wait_folded(db)
    stats = httpx.get(f"{live_server}{API}/stats").json()
    newest = [r["id"] for r in httpx.get(f"{live_server}{API}?limit=50").json()]

    page = browser.new_page(viewport=LAPTOP)
    page.goto(f"{live_server}/dashboard")
    for key in ("total_migrations", "running_now", "stuck", "recent_24h"):
        assert _stat(page, key) == stats[key]
    for status, count in stats["status_breakdown"].items():
        assert int(page.locator(f'[data-status-count="{status}"]').inner_text()) == count
    assert page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.runId)") == newest
    assert page.locator("#live").is_visible()  # the script runs and shows the stream's state
    _no_horizontal_overflow(page)
    _shot(page, "dashboard-laptop.png")
    page.close()

    phone = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    for path in ("/dashboard", f"/dashboard/runs/{run_id}"):
        phone.goto(f"{live_server}{path}")
        assert phone.locator("main").is_visible()
        _no_horizontal_overflow(phone)
    phone.goto(f"{live_server}/dashboard")
    _shot(phone, "dashboard-phone.png")
    phone.close()


def test_without_javascript_the_tables_are_there(
    live_server: str, db: psycopg.Connection[Any], browser: Browser
) -> None:
    seed_runs(db, 30, random.Random(8))
    wait_folded(db)
    stats = httpx.get(f"{live_server}{API}/stats").json()
    failed = [r["id"] for r in httpx.get(f"{live_server}{API}?status=failed&limit=50").json()]
    context = browser.new_context(java_script_enabled=False, viewport=LAPTOP)
    page = context.new_page()
    page.goto(f"{live_server}/dashboard")
    assert _stat(page, "total_migrations") == stats["total_migrations"]
    assert page.locator("#runs tbody tr").count() == stats["total_migrations"]
    assert not page.locator("#live").is_visible()  # no stream without the script, so no indicator
    # The filter form is a plain GET form.
    page.select_option("select[name=status]", "failed")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/dashboard?status=failed*")
    assert page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.getAttribute('data-run-id'))") == failed
    assert failed
    context.close()


def _wait_ms(page: Page, selector: str, started: float) -> float:
    page.wait_for_selector(selector, timeout=LIVE_WITHIN_MS + 3000)
    return (time.monotonic() - started) * 1000


def test_runs_written_by_sql_appear_without_a_reload(
    live_server: str, db: psycopg.Connection[Any], browser: Browser
) -> None:
    seed_runs(db, 20, random.Random(9))
    wait_folded(db)
    page = browser.new_page(viewport=LAPTOP)
    page.goto(f"{live_server}/dashboard")
    page.wait_for_selector("#live[data-state=live]", timeout=5000)
    before = _stat(page, "total_migrations")

    # An engine inserts a run with plain SQL: its row appears, then the totals follow.
    started = time.monotonic()
    run_id = insert_run(db, file_path="data/input/claim_live.csv", record_type="claim", status="running")
    took = _wait_ms(page, f'#runs tr[data-run-id="{run_id}"]', started)
    assert took < LIVE_WITHIN_MS, f"the new run showed after {took:.0f} ms"
    assert page.locator("#runs tbody tr").first.get_attribute("data-run-id") == run_id
    page.wait_for_function(
        f"document.querySelector('[data-stat=total_migrations]').textContent.trim() === '{before + 1:,}'",
        timeout=5000,
    )
    assert _stat(page, "total_migrations") == httpx.get(f"{live_server}{API}/stats").json()["total_migrations"]

    # The engine fails it: the row's status changes in place.
    started = time.monotonic()
    db.execute(
        "UPDATE migration_runs SET status = 'failed', success = false, completed_at = now(), "
        "total_duration = 12.5, error_message = 'File read error: unexpected end of file at line 7' WHERE id = %s",
        (run_id,),
    )
    took = _wait_ms(page, f'#runs tr[data-run-id="{run_id}"] .badge.s-failed', started)
    assert took < LIVE_WITHIN_MS, f"the status change showed after {took:.0f} ms"
    assert page.locator(f'#runs tr[data-run-id="{run_id}"] [data-field=total_duration]').inner_text() == "12.5 s"
    # The overview follows: the failure is counted in its error group.
    since = page.get_attribute("#errors", "data-since")
    failed = httpx.get(f"{live_server}{API}/stats/errors", params={"since": since}).json()["total_failed"]
    page.wait_for_function(
        "document.querySelector('[data-stat=\"errors.total_failed\"]').textContent.trim() === " + repr(f"{failed:,}"),
        timeout=5000,
    )
    _shot(page, "dashboard-live.png")
    page.close()


def test_run_page_follows_steps_and_checkpoints_live(
    live_server: str, db: psycopg.Connection[Any], browser: Browser
) -> None:
    run_id = insert_run(db, status="running", record_type="claim")
    page = browser.new_page(viewport=LAPTOP)
    page.goto(f"{live_server}/dashboard/runs/{run_id}")
    page.wait_for_selector("#live[data-state=live]", timeout=5000)
    assert page.locator("#steps li").count() == 0

    for order, name in enumerate(("initializing", "file_reading"), 1):
        started = time.monotonic()
        insert_state(db, run_id, step_name=name, created_at=datetime.now(UTC), step_order=order)
        took = _wait_ms(page, f'#steps li[data-step-name="{name}"]', started)
        assert took < LIVE_WITHIN_MS, f"step {name} showed after {took:.0f} ms"
    started = time.monotonic()
    insert_checkpoint(db, run_id, checkpoint_name="after_file_reading", state_data={"next_row": 4001})
    took = _wait_ms(page, "#checkpoints tbody tr", started)
    assert took < LIVE_WITHIN_MS, f"the checkpoint showed after {took:.0f} ms"
    started = time.monotonic()
    db.execute(
        "UPDATE migration_runs SET status = 'completed', success = true, completed_at = now(), updated_at = now() "
        "WHERE id = %s",
        (run_id,),
    )
    took = _wait_ms(page, ".run-head h1 .badge.s-completed", started)
    assert took < LIVE_WITHIN_MS, f"the status change showed after {took:.0f} ms"
    steps = httpx.get(f"{live_server}{API}/{run_id}/timeline").json()["steps"]
    assert page.locator("#steps li").evaluate_all("items => items.map(li => li.dataset.stepName)") == [
        s["step_name"] for s in steps
    ]
    _shot(page, "dashboard-run.png")
    page.close()
