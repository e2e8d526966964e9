"""/metrics (docs/monitoring.md): the Prometheus text format from the real app, Redis and ingest.

The names, request timings per route, the feed read from Redis (lag, dead letters by reason),
screens per page and scope, who may read it (loopback, the scrape token, never a session), and
a real two-worker gunicorn whose scrapes sum both workers (and forget a killed one's gauges, not its
counts).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from authkit import csrf_header, make_user, signin_client
from clikit import gunicorn_served
from dashboard.settings import Settings
from dashboard.store.reference import Reference
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM

REPO = Path(__file__).resolve().parent.parent
TOKEN = "scrape-token-0123456789abcdef"
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}  # a client on another host (TEST-NET-3)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (name, labels)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when there is none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def scrape(client: Any, **kwargs: Any) -> Samples:
    r = client.get("/metrics", **kwargs)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return parse(r.get_data(as_text=True))


def test_the_text_format_names_every_figure(dash_app: Any) -> None:
    client = dash_app.server.test_client()
    assert client.get("/healthz").status_code == 200
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(r.get_data(as_text=True))}
    assert names >= {
        "gridhall_feed_up", "gridhall_ingest_lag_seconds", "gridhall_ingest_pending_entries",
        "gridhall_ingest_applied", "gridhall_ingest_applied_last_minute", "gridhall_ingest_consumers",
        "gridhall_deadletters", "gridhall_deadletters_entries", "gridhall_deadletters_trimmed",
        "gridhall_screens_connected", "gridhall_http_request_duration_seconds",
        "gridhall_liveview_stale", "gridhall_liveview_loads",
    }, names
    assert value(parse(r.get_data(as_text=True)), "gridhall_feed_up") == 1


def test_requests_are_timed_per_route(dash_app: Any) -> None:
    client = dash_app.server.test_client()
    name = "gridhall_http_request_duration_seconds_count"
    before = scrape(client)
    for _ in range(7):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    after = scrape(client)
    assert value(after, name, route="/healthz", method="GET", status="200") \
        - value(before, name, route="/healthz", method="GET", status="200") == 7
    assert value(after, name, route="/<path:path>", status="404") - value(before, name, route="/<path:path>",
                                                                          status="404") == 1
    # The scrape before the last one was timed too (the one being answered is not over yet).
    assert value(after, name, route="/metrics") >= 1
    # Every bucket count is there and the +Inf bucket equals the count.
    assert value(after, "gridhall_http_request_duration_seconds_bucket", route="/healthz", le="+Inf") == \
        value(after, name, route="/healthz")


@pytest.mark.usefixtures("fresh_scope_cache")
def test_callbacks_and_screens_per_page_and_scope(api_city: dict[str, Any], dash_app: Any,
                                                  sessions: sessionmaker[Session]) -> None:
    shift = signin_client(dash_app.server.test_client(), make_user(sessions, "shift_lead"))
    shift.get("/login")
    shift.get("/live")
    pages = dash_app.server.extensions["gridhall"].services.callback_pages
    key = next(k for k, page in pages.items() if page == "live")
    spec = dash_app.callback_map[key]
    outputs: Any = ([{"id": o.split(".")[0], "property": o.split(".")[1]} for o in key.strip(".").split("...")]
                    if key.startswith("..") else {"id": key.split(".")[0], "property": key.split(".")[1]})
    body = {"output": key, "outputs": outputs,
            "inputs": [{"id": i["id"], "property": i["property"], "value": None} for i in spec["inputs"]],
            "state": [{"id": i["id"], "property": i["property"], "value": None} for i in spec["state"]],
            "changedPropIds": []}
    before = scrape(shift)
    r = shift.post("/_dash-update-component", json=body, headers=csrf_header(shift))
    assert r.status_code in (200, 204)
    district = signin_client(dash_app.server.test_client(), make_user(sessions, "leader", region="990101"))
    assert district.get("/view").status_code == 200
    after = scrape(shift)
    name = "gridhall_http_request_duration_seconds_count"
    assert value(after, name, route="/_dash-update-component", page="live", callback=key) \
        - value(before, name, route="/_dash-update-component", page="live", callback=key) == 1
    # Each screen counts once, under its page and its scope (the district by its code).
    assert value(after, "gridhall_screens_connected", page="live", scope="city") == 1
    assert value(after, "gridhall_screens_connected", page="view", scope="990101") == 1
    assert value(after, "gridhall_screens_connected", page="wall") == 0


def test_dead_letters_by_reason_and_the_ingest_lag(dash_app: Any, settings: Settings, feed_city: Reference,
                                                   sessions: sessionmaker[Session], redis_client: redis.Redis) -> None:
    client = dash_app.server.test_client()
    ingest = Ingest(settings, sessions, redis_client, feed_city, consumer="t1", block_ms=10)
    ingest.ensure_group()
    added = int(time.time() * 1000) - 5000  # an entry added 5 s ago that nobody has read yet
    redis_client.xadd(settings.key(CASE_STREAM), {"event": "not json"}, id=f"{added}-0")
    waiting = scrape(client)
    assert value(waiting, "gridhall_ingest_lag_seconds") >= 4.5
    assert value(waiting, "gridhall_deadletters_total") == 0
    while ingest.step():
        pass
    done = scrape(client)
    assert value(done, "gridhall_deadletters_total", reason="undecodable") == 1
    assert value(done, "gridhall_deadletters_entries") == 1
    assert value(done, "gridhall_ingest_lag_seconds") == 0
    assert value(done, "gridhall_ingest_consumers") == 1


@pytest.fixture
def token_app(settings: Settings, engine: Any) -> Iterator[Any]:
    """The app with a scrape token and nginx on this host as its trusted proxy."""
    import app as appmod

    application = appmod.create_app(settings.model_copy(update={"metrics_token": TOKEN,
                                                                "trusted_proxies": ["127.0.0.1/32"]}))
    yield application
    application.server.extensions[appmod.EXTENSION_KEY].close()


def test_only_loopback_reads_without_a_token(dash_app: Any, sessions: sessionmaker[Session]) -> None:
    client = dash_app.server.test_client()
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    r = client.get("/metrics", environ_base=ELSEWHERE)
    assert r.status_code == 403 and b"gridhall_" not in r.data
    # No token is configured: a made-up one changes nothing.
    assert client.get("/metrics", environ_base=ELSEWHERE,
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
    # A proxy on this host that gridhall was not told about: its X-Forwarded-For makes it not local.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    # A session grants nothing: an admin signed in from elsewhere is refused too.
    admin = signin_client(dash_app.server.test_client(), make_user(sessions, "admin"))
    assert admin.get("/metrics", environ_base=ELSEWHERE).status_code == 403


def test_the_scrape_token_lets_another_host_read(token_app: Any) -> None:
    client = token_app.server.test_client()
    assert client.get("/metrics", environ_base=ELSEWHERE,
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    for header in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"}):
        r = client.get("/metrics", environ_base=ELSEWHERE, headers=header)
        assert r.status_code == 401, header
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # Behind the trusted proxy the real client counts: a remote client forwarded by it is refused …
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
    # … even when it claims to be local in front of the proxy's own entry.
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}).status_code == 401
    assert client.get("/metrics").status_code == 200  # Prometheus on this host, straight to gunicorn


def test_the_folder_must_be_set_before_the_client_is_imported(monkeypatch: pytest.MonkeyPatch,
                                                              settings: Settings) -> None:
    from api import metricsdir

    monkeypatch.delenv(metricsdir.ENV, raising=False)
    assert "prometheus_client" in sys.modules  # this module imported it
    with pytest.raises(RuntimeError, match="imported before"):
        metricsdir.prepare(settings)


# -- a real gunicorn with two workers ------------------------------------------------------------

def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - our own server
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def two_workers(engine: Any, settings: Settings) -> Iterator[tuple[str, list[str], Path]]:
    """``gunicorn -c gunicorn.conf.py app:server`` with 2 workers; the base URL, its log lines, the folder."""
    folder = settings.data_dir / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "counter_1.db").write_bytes(b"")  # an earlier run's file: the start must remove it
    with gunicorn_served(settings, "ACCESS %(p)s %(s)s %(U)s", drop=("PROMETHEUS_MULTIPROC_DIR",)) as (base, lines):
        yield base, lines, folder


def test_one_scrape_sums_every_gunicorn_worker(two_workers: tuple[str, list[str], Path]) -> None:
    base, lines, folder = two_workers
    assert not (folder / "counter_1.db").exists()
    n = 0
    pids: set[str] = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2 or n < 40:  # until both workers have answered (each request a new connection)
        assert time.monotonic() < deadline, f"only workers {pids} answered"
        assert _get(base + "/healthz")[0] == 200
        n += 1
        time.sleep(0.02)
        pids = {m.group(1) for m in re.finditer(r"ACCESS <(\d+)> 200 /healthz", "".join(lines))}
    assert len(pids) == 2
    for _ in range(4):  # whichever worker answers the scrape, it counts both workers' requests
        status, text = _get(base + "/metrics")
        assert status == 200
        samples = parse(text)
        # n, and the fixture's one probe that found the server up.
        assert value(samples, "gridhall_http_request_duration_seconds_count", route="/healthz", status="200") == n + 1
        # One live-view series per worker (label pid), both live.
        assert live_workers(samples) == pids
    # A worker that dies: gunicorn starts another, the dead one's gauges go, its requests still count.
    dead = sorted(pids)[0]
    os.kill(int(dead), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the killed worker's series stayed or no new worker answered"
        try:
            status, text = _get(base + "/metrics")
        except OSError:
            continue
        workers = live_workers(parse(text)) if status == 200 else set()
        if dead not in workers and len(workers) == 2:
            break
        time.sleep(0.2)
    assert value(parse(text), "gridhall_http_request_duration_seconds_count", route="/healthz", status="200") == n + 1


def live_workers(samples: Samples) -> set[str]:
    """The pids of the workers whose live-view gauges a scrape shows (one series per live worker)."""
    return {dict(ls)["pid"] for (name, ls), _ in samples.items() if name == "gridhall_liveview_stale"}


def test_a_screen_counts_once_whichever_workers_it_reaches(redis_client: redis.Redis, settings: Settings) -> None:
    from feeds.screens import ScreenLog, connected, screen_name

    now = [1_000_000.0]
    first, second = (ScreenLog(redis_client, settings, clock=lambda: now[0]) for _ in range(2))  # two workers
    wall = screen_name("session-of-the-wall")
    first.seen("wall", "city", wall)
    second.seen("wall", "city", wall)
    second.seen("view", "42", screen_name("session-of-a-phone"))
    second.flush()
    assert connected(redis_client, settings, now=now[0]) == {("wall", "city"): 1, ("view", "42"): 1}
    # A minute without a poll: no longer connected.
    assert connected(redis_client, settings, now=now[0] + 61) == {}
