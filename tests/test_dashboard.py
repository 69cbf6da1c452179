"""GET /dashboard and /dashboard/runs/{run_id}: the server-rendered pages show exactly what the JSON
API returns (runs written with SQL, as engines do), filters select as the list and search do."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from litestar.testing import TestClient

from tests.dashboard_data import add_steps, number, row_ids, seed_runs, soup
from tests.helpers import insert_run, pooled_connections

API = "/api/v1/migrations"


@pytest.fixture
def seeded(client: TestClient[Any], db: psycopg.Connection[Any]) -> list[str]:
    return seed_runs(db, 70, random.Random(12))


def test_totals_match_the_stats_endpoint(client: TestClient[Any], seeded: list[str]) -> None:
    stats = client.get(f"{API}/stats").json()
    page = soup(client.get("/dashboard").text)
    stat = {tag["data-stat"]: tag for tag in page.select("[data-stat]")}
    assert number(stat["total_migrations"]) == stats["total_migrations"] == len(seeded)
    assert number(stat["recent_24h"]) == stats["recent_24h"]
    assert number(stat["running_now"]) == stats["running_now"]
    assert number(stat["stuck"]) == stats["stuck"]
    assert stats["stuck"] > 0  # the seed leaves old running runs without any sign of life
    assert number(stat["last_24h.finished"]) == stats["last_24h"]["finished"]
    assert number(stat["last_24h.failed"]) == stats["last_24h"]["failed"]
    assert stat["success_rate"].get_text(strip=True) == f"{stats['success_rate'] * 100:.1f} %"
    shown = {str(tag["data-status-count"]): number(tag) for tag in page.select("[data-status-count]")}
    assert shown == stats["status_breakdown"]
    assert "queued" in shown  # a status only an engine writes is shown too


def test_charts_match_the_history_endpoint(client: TestClient[Any], seeded: list[str]) -> None:
    page = soup(client.get("/dashboard").text)
    figures = {str(f["data-chart"]): f for f in page.select("figure[data-chart]")}
    assert set(figures) == {"hour", "day"}
    for interval, figure in figures.items():
        query = urlencode({"interval": interval, "since": figure["data-since"]})
        history = client.get(f"{API}/stats/history?{query}").json()
        bars = figure.select("g.bar")
        assert len(bars) == len(history["buckets"]) == (24 if interval == "hour" else 30)
        for bar, bucket in zip(bars, history["buckets"], strict=True):
            assert datetime.fromisoformat(str(bar["data-start"])) == datetime.fromisoformat(bucket["start"])
            assert int(str(bar["data-total"])) == bucket["total"]
            segments = {str(s["data-status"]): int(str(s["data-count"])) for s in bar.select("rect.seg")}
            assert segments == {k: v for k, v in bucket["by_status"].items() if v}
        assert int(str(figure["data-total"])) == sum(b["total"] for b in history["buckets"])
    assert int(str(figures["day"]["data-total"])) > int(str(figures["hour"]["data-total"])) > 0


def test_error_groups_match_the_errors_endpoint(client: TestClient[Any], seeded: list[str]) -> None:
    page = soup(client.get("/dashboard").text)
    section = page.select_one("#errors")
    assert section is not None
    query = urlencode({"since": section["data-since"], "limit": 10})
    errors = client.get(f"{API}/stats/errors?{query}").json()
    rows = section.select("tr[data-fingerprint]")
    assert [(r["data-fingerprint"], number(r.select_one("[data-count]"))) for r in rows] == [
        (g["fingerprint"], g["count"]) for g in errors["groups"]
    ]
    assert len(rows) == 3  # the seed's three kinds of error, numbers masked
    assert number(section.select_one('[data-stat="errors.total_failed"]')) == errors["total_failed"]
    for row, group in zip(rows, errors["groups"], strict=True):
        links = [a["href"] for a in row.select("a[href^='/dashboard/runs/']")]
        assert links == [f"/dashboard/runs/{run_id}" for run_id in group["example_run_ids"]]


def test_overview_fragment_is_the_pages_overview(client: TestClient[Any], seeded: list[str]) -> None:
    fragment = soup(client.get("/dashboard/overview").text)
    page = soup(client.get("/dashboard").text)
    assert fragment.select_one("#overview") is not None
    assert fragment.select_one("#runs") is None
    for key in ("total_migrations", "running_now", "stuck", "recent_24h"):
        selector = f'[data-stat="{key}"]'
        assert number(fragment.select_one(selector)) == number(page.select_one(selector))


def test_the_page_takes_one_pooled_connection(client: TestClient[Any], seeded: list[str]) -> None:
    # The overview's four statistics reads and the runs table share the request's unit of work.
    assert pooled_connections(client, "/dashboard") == 1


def test_newest_runs_table_is_the_lists_first_page_and_pages_on(client: TestClient[Any], seeded: list[str]) -> None:
    first = client.get(f"{API}?limit=50")
    page = soup(client.get("/dashboard").text)
    assert row_ids(page) == [r["id"] for r in first.json()]
    runs = {r["id"]: r for r in first.json()}
    for tr in page.select("#runs tbody tr"):
        run = runs[str(tr["data-run-id"])]
        assert tr.select_one("[data-field=status]").get_text(strip=True) == run["status"]  # type: ignore[union-attr]
        assert tr.select_one("[data-field=file_path]").get_text(strip=True) == run["file_path"]  # type: ignore[union-attr]
    older = page.select_one("a[rel=next]")
    assert older is not None
    next_api = re.search(r"<([^>]+)>", first.headers["link"])
    assert next_api is not None
    assert row_ids(soup(client.get(str(older["href"])).text)) == [r["id"] for r in client.get(next_api[1]).json()]


@pytest.mark.parametrize(
    ("form", "api"),
    [
        ({"status": "failed"}, f"{API}?status=failed"),
        ({"record_type": "claim"}, f"{API}?record_type=claim"),
        ({"status": "completed", "record_type": "absence"}, f"{API}?status=completed&record_type=absence"),
        ({"q": "policy_number"}, f"{API}/search?q=policy_number"),
        ({"q": "claim", "status": "running"}, f"{API}/search?q=claim&status=running"),
        ({"status": "", "record_type": "", "q": ""}, API),  # a plain form sends its empty fields
    ],
)
def test_filters_select_what_the_api_selects(
    client: TestClient[Any], seeded: list[str], form: dict[str, str], api: str
) -> None:
    expected = [r["id"] for r in client.get(api + ("&" if "?" in api else "?") + "limit=50").json()]
    page = soup(client.get("/dashboard", params=form).text)
    assert row_ids(page) == expected
    assert expected  # the seed has runs for every filter above
    for name in ("status", "record_type"):
        chosen = page.select_one(f"select[name={name}] option[selected]")
        assert (chosen["value"] if chosen else "") == form.get(name, "")
    search = page.select_one("input[name=q]")
    assert search is not None
    assert search["value"] == form.get("q", "")


def test_bad_filters_say_why_on_the_page(client: TestClient[Any], seeded: list[str]) -> None:
    response = client.get("/dashboard", params={"cursor": "not-a-cursor"})
    assert response.status_code == 200
    page = soup(response.text)
    alert = page.select_one("[role=alert]")
    assert alert is not None
    assert "cursor" in alert.get_text()
    assert row_ids(page) == []
    assert number(page.select_one('[data-stat="total_migrations"]')) == len(seeded)  # the overview still shows


def test_run_page_shows_its_steps_and_checkpoints(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    run_id = insert_run(
        db,
        status="failed",
        created_at=start,
        completed_at=start + timedelta(minutes=5),
        total_duration=300.0,
        success=False,
        error_message="Transformation error: bad date in row 7",
    )
    add_steps(db, run_id, ["initializing", "file_reading", "data_mapping"], start)
    timeline = client.get(f"{API}/{run_id}/timeline").json()
    checkpoints = client.get(f"{API}/{run_id}/checkpoints").json()
    page = soup(client.get(f"/dashboard/runs/{run_id}").text)
    steps = page.select("#steps li")
    assert [(int(str(li["data-step-order"])), li["data-step-name"]) for li in steps] == [
        (s["step_order"], s["step_name"]) for s in timeline["steps"]
    ]
    # a minute per step, the last one until completed_at two minutes later
    assert [s["duration_seconds"] for s in timeline["steps"]] == [60.0, 60.0, 120.0]
    took = [li.select_one(".took").get_text(strip=True) for li in steps]  # type: ignore[union-attr]
    assert took == ["1 min 00 s", "1 min 00 s", "2 min 00 s"]
    assert [r.select_one("strong").get_text() for r in page.select("#checkpoints tbody tr")] == [  # type: ignore[union-attr]
        c["checkpoint_name"] for c in checkpoints
    ]
    head = page.select_one(".run-head")
    assert head is not None
    assert head.select_one("[data-field=status]").get_text(strip=True) == "failed"  # type: ignore[union-attr]
    assert head.select_one("[data-field=total_duration]").get_text(strip=True) == "5 min 00 s"  # type: ignore[union-attr]
    assert "bad date in row 7" in head.get_text()


def test_run_page_of_an_unknown_or_malformed_id(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    unknown = client.get("/dashboard/runs/3f2b0c1e-8a1d-4c55-9a53-0d2b8f1c0a11")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("text/html")
    assert "3f2b0c1e-8a1d-4c55-9a53-0d2b8f1c0a11 not found" in soup(unknown.text).get_text()
    malformed = client.get("/dashboard/runs/not-a-uuid")
    assert malformed.status_code == 400
    assert "run_id must be a UUID" in soup(malformed.text).get_text()


def test_linked_from_root_served_offline_and_not_in_the_openapi_document(
    client: TestClient[Any], db: psycopg.Connection[Any]
) -> None:
    assert client.get("/").json()["links"]["dashboard"] == "/dashboard"
    response = client.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = soup(response.text)
    assets = [str(t.get("src") or t.get("href")) for t in page.select("script[src], link[href]")]
    assert assets
    assert all(a.startswith(("/", "data:")) for a in assets)  # nothing from a CDN
    for asset in assets:
        if asset.startswith("/"):
            assert client.get(asset).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/dashboard", "/_static"))]
