"""The docs pages must work on an air-gapped site: every asset they reference is served by the app."""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec
import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from docs_site import openapi_config, static_routers

DOCS_PAGES = ("/docs", "/redoc", "/elements")
_ATTR_URL = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


class ApiInfo(msgspec.Struct):
    name: str
    version: str


@get("/")
async def api_info() -> ApiInfo:
    return ApiInfo(name="docs-test", version="0.0.1")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Litestar]]:
    app = Litestar(
        route_handlers=[api_info, *static_routers()],
        openapi_config=openapi_config(title="Docs test", version="0.0.1", description="docs pages test"),
    )
    with TestClient(app=app) as test_client:
        yield test_client


def asset_urls(html: str) -> list[str]:
    return _ATTR_URL.findall(html)


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_page_is_html(client: TestClient[Litestar], page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_page_references_no_remote_assets(client: TestClient[Litestar], page: str) -> None:
    urls = asset_urls(client.get(page).text)
    assert urls, "expected the page to reference scripts/styles"
    remote = [url for url in urls if re.match(r"(?i)\s*(https?:)?//", url)]
    assert remote == []


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_page_assets_are_served_locally(client: TestClient[Litestar], page: str) -> None:
    local = [url for url in asset_urls(client.get(page).text) if url.startswith("/_static/")]
    # Every page loads at least its main script from the app itself.
    assert any(url.endswith(".js") for url in local)
    for url in local:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.content, url
        assert "max-age" in response.headers.get("cache-control", ""), url


def test_openapi_json(client: TestClient[Litestar]) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Docs test"
    assert "/" in document["paths"]
    docs_paths = ("/_static", "/docs", "/redoc", "/elements", "/openapi.json")
    assert not [path for path in document["paths"] if path.startswith(docs_paths)]


def test_app_root_is_the_apps_own_handler(client: TestClient[Litestar]) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.json() == {"name": "docs-test", "version": "0.0.1"}


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("POST", "/nope"), ("GET", "/nope/deeper")])
def test_unknown_path_is_json_404(client: TestClient[Litestar], method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == 404
    assert body["detail"]


def test_missing_static_file_is_json_404(client: TestClient[Litestar]) -> None:
    response = client.get("/_static/redoc/missing.js")
    assert response.status_code == 404
    assert response.json()["status_code"] == 404
