"""``/metrics``: gridhall in the Prometheus text format, for the city's operations team (docs/monitoring.md).

Two kinds of figures, each kept where it is exact:

- **Per web worker** — response times per route (a histogram) and each worker's live view
  (which change notice it shows, whether it is stale, how often it loaded from SQL). These
  live in the worker; under gunicorn they go through prometheus-client's multiprocess files
  (``api/metricsdir.py``) and the worker that answers a scrape sums every worker's.
- **Shared, read from Redis at scrape time** (``feeds/metrics.py``) — the ingest's lag, rate
  and dead letters by reason, and the screens connected per page and scope
  (``feeds/screens.py``): the same for every worker, every host and every ingest process.

Who may read it is the route table's ``Scrape`` rule (``auth/scrape.py``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import flask
import redis
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.orm import Session, sessionmaker

from auth import identity, policy
from dashboard.settings import Settings
from dashboard.store.scope import ScopeError, get_scope
from feeds.follower import FollowerStatus
from feeds.keys import stream_id
from feeds.metrics import FeedCollector
from feeds.screens import ScreenLog, screen_name

from .metricsdir import multiprocess_dir

log = logging.getLogger(__name__)

# The classic text format (0.0.4): every Prometheus release reads it; our names need nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
START_KEY = "gridhall.request_started"  # environ: perf_counter() when the request reached Flask
CALLBACK_ROUTE = "/_dash-update-component"
# Response-time buckets (seconds): the wall's poll answers in milliseconds, the targets are
# 200–250 ms at p95, a cold page or export takes seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LIVEVIEW_EVERY_S = 1.0  # a worker copies its live view's state into its gauges at most this often


@dataclass(frozen=True)
class WorkerMetrics:
    """The metrics each web worker keeps (one set per process, made in the worker, not the master)."""

    requests: Histogram
    notice_time: Gauge
    stale: Gauge
    loads: Gauge

    def all(self) -> tuple[Histogram | Gauge, ...]:
        return (self.requests, self.notice_time, self.stale, self.loads)


@functools.cache
def worker_metrics() -> WorkerMetrics:
    # Registered in no global registry: each scrape builds its own (see metrics_text). "liveall":
    # one series per live worker (label pid under gunicorn), gone when the worker is.
    return WorkerMetrics(
        requests=Histogram("gridhall_http_request_duration_seconds",
                           "Time from the request reaching the app to its response, per route",
                           ["route", "page", "callback", "method", "status"], buckets=BUCKETS, registry=None),
        notice_time=Gauge("gridhall_liveview_notice_timestamp_seconds",
                          "When the change notice this worker's live view shows last was written (its version)",
                          multiprocess_mode="liveall", registry=None),
        stale=Gauge("gridhall_liveview_stale", "1 while this worker's live view may be behind (a reason is logged)",
                    multiprocess_mode="liveall", registry=None),
        loads=Gauge("gridhall_liveview_loads", "Full loads of this worker's live view from SQL since it started",
                    multiprocess_mode="liveall", registry=None),
    )


class RegionCodes:
    """A screen's recorded scope ("city" or a region id) → its label (the region's code), cached."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._codes: dict[str, str] = {}

    def __call__(self, scope: str) -> str:
        if scope == "city" or not scope.isdigit():
            return scope
        if scope not in self._codes:
            try:
                with self.sessions() as session:
                    self._codes[scope] = get_scope(session, int(scope)).code or scope
            except ScopeError:
                return f"region-{scope}"  # a region since removed by a re-import
        return self._codes[scope]


class WebMetrics:
    """One app's request hooks and its /metrics view."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis,
                 callback_pages: Callable[[], Mapping[str, str]],
                 follower_status: Callable[[], FollowerStatus | None]) -> None:
        self.metrics = worker_metrics()
        self.callback_pages = callback_pages
        self.follower_status = follower_status
        self.screens = ScreenLog(client, settings)
        self.feed = FeedCollector(client, settings, scope_label=RegionCodes(sessions))
        self._liveview_at = 0.0
        self._lock = threading.Lock()

    def started(self) -> None:
        flask.request.environ.setdefault(START_KEY, time.perf_counter())

    def finished(self, response: flask.Response) -> flask.Response:
        request = flask.request
        started = request.environ.get(START_KEY)
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        callback = page = ""
        if rule == CALLBACK_ROUTE:
            body = request.get_json(silent=True, cache=True)
            output = body.get("output") if isinstance(body, dict) else None
            pages = self.callback_pages()
            if isinstance(output, str) and output in pages:  # known keys only: the label set stays small
                callback, page = output, pages[output]
            else:
                callback = "unknown"
        elif rule != "unmatched":
            page = policy.page_of(request.path) or ""
        if isinstance(started, float):
            self.metrics.requests.labels(rule, page, callback, request.method, str(response.status_code)).observe(
                time.perf_counter() - started)
        who = identity.current() if page and response.status_code < 400 else None
        if who is not None:
            scope = "city" if who.city_scope else str(who.scope_region_id)
            self.screens.seen(page, scope, screen_name(who.sid or f"{who.user_id}|{who.binding}"))
        self._liveview_due()
        return response

    def _liveview_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._liveview_at < LIVEVIEW_EVERY_S:
                return
            self._liveview_at = now
        self.liveview_to_gauges()

    def liveview_to_gauges(self) -> None:
        """Copy this worker's live-view state into its gauges (requests and scrapes call it)."""
        status = self.follower_status()
        if status is None:  # not started yet, or it failed to start: nothing to show but "stale"
            self.metrics.stale.set(1)
            return
        if status.last_id:
            self.metrics.notice_time.set(stream_id(status.last_id)[0] / 1000)
        self.metrics.stale.set(1 if status.stale_reason or not status.running else 0)
        self.metrics.loads.set(status.reloads)

    def text(self) -> bytes:
        """The exposition: this host's workers (summed from the multiprocess files) and the feed."""
        self.liveview_to_gauges()
        self.screens.flush()  # this worker's own screens are counted up to now
        registry = CollectorRegistry(auto_describe=False)
        folder = multiprocess_dir()
        if folder is not None:
            MultiProcessCollector(registry, path=str(folder))
        else:  # one process (the development server, tests): its own metrics
            for metric in self.metrics.all():
                registry.register(metric)
        registry.register(self.feed)
        return generate_latest(registry)

    def view(self) -> flask.Response:
        response = flask.Response(self.text(), status=200, content_type=CONTENT_TYPE)
        response.headers["Cache-Control"] = "no-store"
        return response


def install(server: flask.Flask, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis,
            callback_pages: Callable[[], Mapping[str, str]],
            follower_status: Callable[[], FollowerStatus | None]) -> WebMetrics:
    """Time every request, note the screens, serve ``/metrics`` (its rule: ``auth/policy.py``)."""
    web = WebMetrics(settings, sessions, client, callback_pages, follower_status)
    # First of all before_request hooks, so requests the guard turns away are timed too.
    server.before_request_funcs.setdefault(None, []).insert(0, web.started)
    server.after_request(web.finished)
    server.add_url_rule("/metrics", "metrics", web.view, methods=["GET"])
    return web
