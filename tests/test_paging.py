"""A run's states and checkpoints come a page at a time: `limit` (default 1,000, at most 10,000),
about 16 MiB at most per page however large the items, and `Link: rel="next"` to the rest."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from repositories.paging import DEFAULT_PAGE_ITEMS, MAX_PAGE_BYTES, MAX_PAGE_ITEMS
from tests.helpers import run_body

API = "/api/v1/migrations"


def follow(client: TestClient[Any], url: str) -> list[list[dict[str, Any]]]:
    """Every page from `url` on, through the Link headers."""
    pages = []
    next_url: str | None = url
    while next_url is not None:
        response = client.get(next_url)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        link = response.headers.get("link")
        next_url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None  # type: ignore[union-attr]
        assert len(pages) < 100
    return pages


@pytest.mark.parametrize("kind", ["states", "checkpoints"])
def test_pages_follow_links_without_gaps_or_repeats(
    client: TestClient[Any], db: psycopg.Connection[Any], kind: str
) -> None:
    run = client.post(API, json=run_body(status="running")).json()["id"]
    items = (
        [{"step_name": f"s{i}", "state_data": {"i": i}} for i in range(25)]
        if kind == "states"
        else [{"checkpoint_name": f"c{i}", "state_data": {"i": i}} for i in range(25)]
    )
    stored = client.post(f"{API}/{run}/{kind}/batch", json=items)
    assert stored.status_code == 201
    pages = follow(client, f"{API}/{run}/{kind}?limit=10")
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i["state_data"]["i"] for p in pages for i in p] == list(range(25))
    whole = client.get(f"{API}/{run}/{kind}")
    assert "link" not in whole.headers
    assert [i["id"] for i in whole.json()] == [i["id"] for p in pages for i in p]
    assert client.get(f"{API}/{run}/{kind}?limit=0").status_code == 400
    assert client.get(f"{API}/{run}/{kind}?limit={MAX_PAGE_ITEMS + 1}").status_code == 400
    bad = client.get(f"{API}/{run}/{kind}?cursor=nope")
    assert bad.status_code == 400
    assert "cursor" in bad.json()["detail"]


def test_a_page_of_large_states_stops_at_its_byte_budget(client: TestClient[Any], db: psycopg.Connection[Any]) -> None:
    run = client.post(API, json=run_body(status="running")).json()["id"]
    # 30 states of about 640 kB of random hex each (barely compressible): 19 MB in all.
    db.execute(
        """INSERT INTO workflow_states (id, run_id, step_name, state_data, step_order)
           SELECT gen_random_uuid(), %s, 'load', jsonb_build_object('blob',
                  (SELECT string_agg(md5(random()::text || g || n), '') FROM generate_series(1, 20000) g)), n
             FROM generate_series(1, 30) n""",
        (run,),
    )
    first = client.get(f"{API}/{run}/states")
    assert first.status_code == 200
    page = first.json()
    assert 10 < len(page) < 30
    assert 'rel="next"' in first.headers["link"]
    assert len(first.content) < MAX_PAGE_BYTES * 1.2
    pages = follow(client, f"{API}/{run}/states")
    assert [s["step_order"] for p in pages for s in p] == list(range(1, 31))


def test_the_document_states_the_page_bounds(client: TestClient[Any]) -> None:
    document = client.get("/openapi.json").json()
    for path in ("/api/v1/migrations/{run_id}/states", "/api/v1/migrations/{run_id}/checkpoints"):
        operation = document["paths"][path]["get"]
        limit = next(p for p in operation["parameters"] if p["name"] == "limit")
        assert limit["schema"]["maximum"] == MAX_PAGE_ITEMS
        assert limit["schema"]["default"] == DEFAULT_PAGE_ITEMS
        assert "Link" in operation["responses"]["200"]["headers"]
