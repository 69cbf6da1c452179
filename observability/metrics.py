"""GET /metrics: Litestar's Prometheus integration for requests (by route template, method and
status; latency histograms), plus what only this service knows, read when Prometheus scrapes:
the connection pool, database errors by class, the read cache, the event streams, the
background tasks.

prometheus-client keeps one registry per process; each uvicorn worker serves its own numbers
(Prometheus sums them over the instances it scrapes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController, PrometheusMiddleware
from litestar.types import ASGIApp
from prometheus_client import REGISTRY, Counter
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


class _RouteMetricsMiddleware(PrometheusMiddleware):
    """Litestar's middleware, counting answers that an inner middleware gave by raising (401 from
    authentication, 429 from the rate limiter) under their own status: Litestar turns such an
    exception into a response outside every middleware, so the stock one records them as 200.
    Wrapping the inner app in Litestar's exception handler makes the response pass through here."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        from litestar._asgi.utils import wrap_in_exception_handler

        super().__init__(wrap_in_exception_handler(app), config)


def prometheus_config() -> PrometheusConfig:
    # group_path: the `path` label is the route template (/api/v1/migrations/{run_id:str}), never
    # the raw path, so run ids do not make a series each.
    return PrometheusConfig(
        app_name=PREFIX,
        prefix=PREFIX,
        group_path=True,
        exclude=[f"^{METRICS_PATH}$"],
        middleware_class=_RouteMetricsMiddleware,
    )


def metrics_middleware() -> DefineMiddleware:
    return prometheus_config().middleware


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
