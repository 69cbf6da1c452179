"""GET /metrics (Litestar's Prometheus controller): requests by route template, method and status
with latency histograms, counted by the middleware below, plus what only this service knows,
read when Prometheus scrapes:
the connection pool, database errors by class, the read cache, the event streams, the
background tasks.

prometheus-client keeps one registry per process; each uvicorn worker serves its own numbers
(Prometheus sums them over the instances it scrapes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Final

from litestar._asgi.utils import wrap_in_exception_handler
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.plugins.prometheus import PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX: Final = "migration_api"
METRICS_PATH: Final = "/metrics"

DATABASE_ERRORS: Final = Counter(
    f"{PREFIX}_database_errors",
    "Database errors met while answering requests, by exception class (PoolTimeout, OperationalError, ...)",
    ["error"],
)


def count_database_error(exc: BaseException) -> None:
    DATABASE_ERRORS.labels(exc.__class__.__name__).inc()


# The request series, named and labelled as Litestar's PrometheusMiddleware names them.
_LABELS: Final = ("method", "path", "status_code", "app_name")
REQUESTS: Final = Counter(f"{PREFIX}_requests_total", "Total requests", _LABELS)
REQUEST_ERRORS: Final = Counter(f"{PREFIX}_requests_error_total", "Total errors in requests", _LABELS)
REQUEST_SECONDS: Final = Histogram(f"{PREFIX}_request_duration_seconds", "Request duration, in seconds", _LABELS)
IN_PROGRESS: Final = Gauge(
    f"{PREFIX}_requests_in_progress", "Total requests currently in progress", _LABELS, multiprocess_mode="livesum"
)


class RequestMetricsMiddleware:
    """Counts every answer by route template, method and status, and times it.

    Written here rather than Litestar's PrometheusMiddleware, which builds a Request and a label
    dict and looks up every series by its labels on each request: about 95 us of a cached read's
    270 us at 32 connections (`make bench`, get run). This one keeps each label combination's
    series in a dict. An answer an inner middleware gives by raising (401 from authentication, 429
    from the rate limiter) is rendered here by Litestar's exception handling, so that it is counted
    (and logged, and stamped with its request id, outside) under its own status, not as the 200
    Litestar would otherwise record. Only a failing request pays for that: wrapping every request
    in Litestar's exception middleware cost a cached read about 10 us."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._done: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._running: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope.get("path_template") or scope["path"]
        started = time.perf_counter()
        status = 200  # what Litestar records for a request that ends before it answers (a client gone)
        started_answer = False
        duration = 0.0

        async def send_counted(message: Message) -> None:
            nonlocal status, duration, started_answer
            if message["type"] == "http.response.start":
                status = message["status"]
                started_answer = True
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started
            await send(message)

        running = self._running.get((method, path))
        if running is None:
            running = self._running[(method, path)] = IN_PROGRESS.labels(method, path, "200", PREFIX)
        running.inc()
        try:
            try:
                await self.app(scope, receive, send_counted)
            except Exception as exc:
                if started_answer:  # nothing can be rendered any more
                    raise
                await wrap_in_exception_handler(_Raise(exc))(scope, receive, send_counted)
        finally:
            running.dec()
            series = self._done.get((method, path, status))
            if series is None:
                labels = (method, path, str(status), PREFIX)
                series = self._done[(method, path, status)] = (
                    REQUESTS.labels(*labels),
                    REQUEST_SECONDS.labels(*labels),
                    REQUEST_ERRORS.labels(*labels) if status >= 500 else None,
                )
            series[0].inc()
            series[1].observe(duration)
            if series[2] is not None:
                series[2].inc()


class _Raise:
    """An ASGI app that raises the exception an inner middleware raised, for Litestar's exception
    middleware around it to render."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise self.exc


def metrics_middleware() -> DefineMiddleware:
    return DefineMiddleware(RequestMetricsMiddleware)


class MetricsController(PrometheusController):
    path = METRICS_PATH
    include_in_schema = False


class _ServiceCollector(Collector):
    """Reads the state of the newest started app of this process at scrape time."""

    def __init__(self) -> None:
        # The states of the apps whose lifespan runs, newest last.
        self.states: list[State] = []

    def collect(self) -> Iterator[Metric]:
        state = self._current()
        if state is None:
            return
        pool = getattr(state, "pool", None)
        if pool is not None:
            stats: dict[str, Any] = pool.get_stats()
            size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
            yield GaugeMetricFamily(f"{PREFIX}_pool_size", "Connections the pool holds", value=size)
            yield GaugeMetricFamily(f"{PREFIX}_pool_in_use", "Connections lent to requests", value=size - available)
            yield GaugeMetricFamily(f"{PREFIX}_pool_available", "Idle connections in the pool", value=available)
            yield GaugeMetricFamily(
                f"{PREFIX}_pool_waiting", "Requests waiting for a connection", value=stats.get("requests_waiting", 0)
            )
            yield GaugeMetricFamily(f"{PREFIX}_pool_max", "Most connections the pool may hold", value=pool.max_size)
        cache = getattr(state, "run_cache", None)
        if cache is not None:
            hits = CounterMetricFamily(f"{PREFIX}_cache_lookups", "Read-cache lookups by result", labels=["result"])
            hits.add_metric(["hit"], cache.hits)
            hits.add_metric(["miss"], cache.misses)
            yield hits
            yield GaugeMetricFamily(f"{PREFIX}_cache_entries", "Bodies held by the read cache", value=len(cache))
            yield GaugeMetricFamily(f"{PREFIX}_cache_pages", "Whole list pages the read cache holds", value=cache.pages)
            yield GaugeMetricFamily(f"{PREFIX}_cache_enabled", "1 while the read cache serves", value=cache.enabled)
        hub = getattr(state, "hub", None)
        if hub is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_event_stream_clients", "Event streams (SSE) this process serves", value=hub.clients
            )
            yield GaugeMetricFamily(
                f"{PREFIX}_event_last_id", "Newest change-event id this process has seen", value=hub.last_id
            )
            yield GaugeMetricFamily(
                f"{PREFIX}_event_listener_up", "1 while the event listener is connected", value=hub.listening
            )
        replica = getattr(state, "replica", None)
        if replica is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_replica_up", "1 while lists are read on the read replica", value=replica.usable
            )
            if replica.lag_seconds is not None:
                yield GaugeMetricFamily(
                    f"{PREFIX}_replica_lag_seconds", "How far the read replica is behind", value=replica.lag_seconds
                )
        tasks = getattr(state, "background_tasks", None)
        if tasks is not None:
            alive = GaugeMetricFamily(f"{PREFIX}_background_task_up", "1 while a background task runs", labels=["task"])
            for task in tasks:
                alive.add_metric([task.get_name()], 0 if task.done() else 1)
            yield alive

    def _current(self) -> State | None:
        return self.states[-1] if self.states else None


_COLLECTOR: Final = _ServiceCollector()
REGISTRY.register(_COLLECTOR)


def watch(state: State) -> None:
    """Report this app's pool, cache and tasks from now on (called once its lifespan started)."""
    _COLLECTOR.states.append(state)


def unwatch(state: State) -> None:
    if state in _COLLECTOR.states:
        _COLLECTOR.states.remove(state)
