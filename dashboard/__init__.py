"""The dashboard: `GET /dashboard` (overview and newest runs) and `GET /dashboard/runs/{run_id}`,
server-rendered with Jinja, its stylesheet and script served by the service (no CDN, no build step).

Usage::

    Litestar(route_handlers=[..., DashboardController, dashboard_static_router()],
             template_config=template_config())
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from dashboard.controller import DashboardController, pretty_json, short_id

__all__ = ["DashboardController", "dashboard_static_router", "template_config"]

HERE = Path(__file__).parent
STATIC_PATH = "/_static/dashboard"


def utc_time(value: datetime | None) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC (dashboard.js writes the same), or a dash for none."""
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def duration(seconds: float | None) -> str:
    """Seconds as `42.0 s`, `3 min 05 s` or `2 h 07 min` (dashboard.js writes the same)."""
    if seconds is None:
        return "—"
    if abs(seconds) < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if abs(whole) < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _register_filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update(
        utc=utc_time, iso=iso_time, duration=duration, percent=percent, pretty_json=pretty_json, short_id=short_id
    )
    engine.engine.globals["static"] = STATIC_PATH


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_register_filters)


def dashboard_static_router() -> Router:
    """dashboard.css and dashboard.js under /_static/dashboard (short cache: URLs carry no version)."""
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[HERE / "static"],
        name="dashboard-static",
        cache_control=CacheControlHeader(public=True, max_age=300),
        include_in_schema=False,
    )
