"""Pushed updates of the wall (/wall/events): computed once per change, written to every stream.

A worker runs one :class:`PushHub`. When its live view moves, the hub computes — once per
sight (metric and region) shown by an open stream — the refresh answer of a screen that showed the previous
update (:meth:`callbacks.wall.WallService.answer`, the same code a poll runs), serialises it
once and wakes the streams, which write those very bytes. A pushed screen therefore costs
the server one socket write per update and no request at all; identical screens get
identical bytes. Updates are at most one per :data:`PUSH_INTERVAL_S` (or twice the time the
hub took to compute the last one, when that is longer), so a burst of events costs a screen
one update per interval, not one per event.

Each update names the grid coordinate it starts ``from`` and the one it brings the screen
``to``. The page (layouts/assets/wall.js) applies it only when it already shows everything up
to ``from``; otherwise (it missed an update, or it has just connected) it asks the refresh
callback for what it lacks, as a poll would.

The wall's health (the header's feed figures, the stale banner, 数据更新于) goes the same way:
while any stream is open, the hub asks for it at most once a second
(:data:`PUSH_HEALTH_CHECK_S`; the worker's HealthWatch caches it that long) — also while the
live view is still loading — and publishes a ``health`` event when its fingerprint changed.
A pushed page therefore polls health only as a slow safety net (``PUSHED_HEALTH_MS`` in
layouts/wall.py). Stream events:

``change``
    sent when the stream opens: the page asks for what changed since its paint; and again
    when the hub takes the sight's first place at another version of the view than the one
    the stream opened at (the worker was still loading, or the view moved meanwhile).
``health``
    ``{id: {prop: value}}``: the health callback's whole answer
    (:meth:`callbacks.wall.WallService.health_answer`, its fingerprint in ``wall-health-fp``),
    applied with ``dash_clientside.set_props``; sent when it changes and, the current one,
    right after ``change`` to a stream that opens.
``ping``
    every ``PUSH_HEARTBEAT_MS`` (layouts/wall.py) while nothing else is sent: proxies keep the
    stream open, and the page knows it is alive (a stream silent for longer, e.g. stalled in
    a proxy, is reopened).
``update``
    ``{"from": coordinate, "to": coordinate, "response": {id: {prop: value}}}``: the refresh
    callback's answer, applied in the page with ``dash_clientside.set_props``.
``screen``
    the named screen (大屏) the page is, when it is one: its setting and banners
    (``callbacks.wall.screen_payload``), at the start and on every change; the page plays it
    (layouts/assets/wallscene.js).

Compressed once, too: to a browser that accepts gzip the stream is one gzip member whose
deflate data is a chain of pieces, each compressed on its own and ended with a full flush
(byte-aligned, no reference to earlier data). So each update and each health event is
compressed once by the hub and the same bytes go to every stream, however long it has been
open, and the browser decodes each event as soon as it arrives.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dash._utils import to_json
from dash.exceptions import PreventUpdate

from dashboard.rules.clock import utcnow


@dataclass(frozen=True, order=True)
class Sight:
    """What a wall screen looks at: the map's metric, its region ("" is the whole city) and its board.

    Screens with the same sight get the same pushed updates (and the same polled answers): the
    hub computes one update per sight that has an open stream. The region is checked against
    the viewer's scope when the stream opens (callbacks/wall.py), never here.
    """

    metric: str
    region: str = ""
    board: str = "units"  # the panel in the board's place (layouts/wall.py BOARDS): 各区对比 adds its rows


class Source(Protocol):
    """What the hub needs of the wall's service (callbacks/wall.py WallService)."""

    @property
    def live(self) -> Any: ...  # the LiveView, or None while it loads

    @property
    def stopping(self) -> threading.Event: ...

    def answer(self, sight: Sight, had: dict[str, Any], applied: dict[str, Any] | None,
               shown: dict[str, Any]) -> dict[str, dict[str, Any]] | None: ...

    def journal_version(self) -> int: ...

    @property
    def control_generation(self) -> int: ...  # bumped by every control notice (alerts, screens)

    def health_answer(self, now: datetime) -> dict[str, dict[str, Any]]: ...

log = logging.getLogger(__name__)

PUSH_RETRY_MS = 3000  # the browser's reconnect delay after a dropped stream (EventSource "retry")
PUSH_STOP_CHECK_S = 0.5  # how soon an open stream ends once its worker stops (it would hold the stop up)
PUSH_INTERVAL_S = 0.1  # at most one update per stream this often: a burst of events is one update
PUSH_SESSION_CHECK_S = 1.0  # how often an open stream asks whether its session is still valid
SCREEN_CHECK_S = 5.0  # a named screen's setting is looked at this often without a control notice
PUSH_HEALTH_CHECK_S = 1.0  # how often the hub asks for the wall's health (HealthWatch caches it 1 s)
HEALTH_FP = ("wall-health-fp", "data")  # where a health answer holds its fingerprint

# A gzip member's header (RFC 1952: deflate, no name, no time, unknown OS); no trailer follows,
# the stream ends with the connection.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def piece(text: str) -> bytes:
    """``text`` as raw deflate data that decodes on its own (fresh window, full flush at the end)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(text.encode()) + c.flush(zlib.Z_FULL_FLUSH)


@dataclass(frozen=True)
class Event:
    """One event of the stream, as text and as a compressed piece."""

    text: str
    gz: bytes

    @classmethod
    def of(cls, text: str) -> Event:
        return cls(text, piece(text))

    def body(self, gzip: bool) -> bytes:
        return self.gz if gzip else self.text.encode()


RETRY = Event.of(f"retry: {PUSH_RETRY_MS}\n\n")
CHANGE = Event.of("event: change\ndata: open\n\n")  # the page asks once for what changed since its paint
# An event, not a comment: EventSource hides comments, and the page must see that a quiet stream
# is still alive (wall.js reopens one that says nothing for PUSH_SILENT_MS).
PING = Event.of("event: ping\ndata: \n\n")


@dataclass(frozen=True)
class Place:
    """Where a screen that applied every update so far stands: what a refresh would send it."""

    applied: dict[str, Any] | None = None  # grid coordinate painted (wall-applied)
    digests: dict[str, Any] = field(default_factory=dict)  # the small panels' digests (wall-state)
    shown: dict[str, Any] = field(default_factory=dict)  # row sets of the queue and board (wall-rows-applied)

    def after(self, answer: dict[str, dict[str, Any]]) -> Place:
        """Where the screen stands once it applied ``answer`` (as wall.js applies it)."""
        grid = answer.get("wall-grid", {}).get("data")
        applied = self.applied
        if isinstance(grid, dict) and grid.get("nid"):
            applied = {"nid": grid["nid"], "tick": grid["tick"]}
        state = answer.get("wall-state", {}).get("data")
        digests = dict(state["digests"]) if isinstance(state, dict) else self.digests
        shown = dict(self.shown)
        for panel, delta in (answer.get("wall-rows", {}).get("data") or {}).items():
            if delta.get("full") or delta.get("from") == shown.get(panel):
                shown[panel] = delta.get("to")
        return Place(applied, digests, shown)


class PushHub:
    """One worker's pushed updates: one thread computes them, every open stream writes them."""

    def __init__(self, service: Source, interval_s: float = PUSH_INTERVAL_S) -> None:
        self.service = service
        self.interval_s = interval_s
        self._cond = threading.Condition()
        self._seq = 0
        self._latest: dict[Sight, tuple[int, Event | None]] = {}  # sight -> (seq, event) of its newest update
        self._streams: Counter[Sight] = Counter()  # sight -> open streams
        self._places: dict[Sight, Place] = {}  # sight -> where the newest update left a screen
        # sight -> the view's version when its newest stream opened (None: still loading); a
        # first place taken at another version tells the sight's streams to ask (see publish)
        self._opened_at: dict[Sight, int | None] = {}
        self._version = -1  # the live view's version the newest updates are complete for
        self._minute: Any = None
        self._generation = -1  # the service's control generation the newest updates are for (alerts)
        self._health: tuple[int, Event] | None = None  # (seq, event) of the current health
        self._health_fp: str | None = None
        self._health_checked = -PUSH_HEALTH_CHECK_S  # monotonic time of the last look
        self._thread: threading.Thread | None = None
        self._wakes = 0  # bumped by wake(): every waiting stream looks again at once

    @property
    def wakes(self) -> int:
        """How many times the hub was woken (a stream compares it with what it saw)."""
        return self._wakes

    def wake(self) -> None:
        """Wake every open stream now (a named screen's setting changed: it is sent at once)."""
        with self._cond:
            self._wakes += 1
            self._cond.notify_all()

    # -- streams -------------------------------------------------------------------------
    def subscribe(self, sight: Sight) -> tuple[int, Event | None]:
        """A stream of ``sight`` opens: the sequence number of the newest event it need not get
        (its ``change`` event asks for every update so far), and the current health event, which
        it sends at once (None before the hub's first look)."""
        live = self.service.live
        with self._cond:
            self._streams[sight] += 1
            if sight not in self._places:  # its first place is still to come (publish)
                opened = live.version if live is not None else None
                # Streams that opened at different versions: their pages asked at different
                # moments, so the first place will tell them all to ask again (None).
                if self._opened_at.get(sight, opened) != opened:
                    opened = None
                self._opened_at[sight] = opened
            self._cond.notify_all()  # an idle hub looks at the health at once
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gridhall-wall-push", daemon=True)
                self._thread.start()
            return self._seq, (self._health[1] if self._health is not None else None)

    def unsubscribe(self, sight: Sight) -> None:
        with self._cond:
            self._streams[sight] -= 1
            if self._streams[sight] <= 0:
                del self._streams[sight]
                # A sight nobody watches is forgotten: a later stream starts from a fresh place.
                self._latest.pop(sight, None)
                self._places.pop(sight, None)
                self._opened_at.pop(sight, None)
            if not self._streams:  # unwatched from now on: a later stream must not get it stale
                self._health = self._health_fp = None
                self._health_checked = -PUSH_HEALTH_CHECK_S

    def _pending(self, sight: Sight, after: int) -> list[tuple[int, Event]]:
        out = [x for x in (self._health, self._latest.get(sight)) if x is not None and x[0] > after]
        return sorted(((seq, event) for seq, event in out if event is not None), key=lambda x: x[0])

    def next(self, sight: Sight, after: int, timeout: float) -> tuple[int, list[Event]]:
        """The events of a ``sight`` stream past sequence ``after`` (its newest update, the
        newest health, in the order published), waiting up to ``timeout``; and the new ``after``."""
        with self._cond:
            wakes = self._wakes
            self._cond.wait_for(lambda: bool(self._pending(sight, after)) or self._wakes != wakes, timeout)
            pending = self._pending(sight, after)
            return (pending[-1][0] if pending else after), [event for _, event in pending]

    # -- the hub's thread ----------------------------------------------------------------
    def _run(self) -> None:
        stop = self.service.stopping
        while not stop.is_set():
            live = self.service.live
            with self._cond:
                sights = sorted(self._streams)
            if sights and time.monotonic() - self._health_checked >= PUSH_HEALTH_CHECK_S:
                self._health_checked = time.monotonic()
                try:
                    self.publish_health()
                except Exception:  # the pages' slowed health poll carries on meanwhile
                    log.exception("wall health push failed")
            if not sights:
                with self._cond:  # until a stream opens (subscribe wakes it)
                    self._cond.wait_for(lambda: bool(self._streams) or stop.is_set(), PUSH_STOP_CHECK_S)
                continue
            if live is None:  # still loading: only the health (正在加载) goes out
                stop.wait(PUSH_STOP_CHECK_S)
                continue
            minute = utcnow().replace(second=0, microsecond=0)
            generation = self.service.control_generation
            if live.version == self._version and minute == self._minute and generation == self._generation:
                # Woken by a change, or in time for the next look at the health.
                live.wait_changed(self._version, min(PUSH_STOP_CHECK_S, PUSH_HEALTH_CHECK_S))
                continue
            started = time.perf_counter()
            try:
                self.publish(sights)
            except PreventUpdate:  # the view is being reloaded
                stop.wait(PUSH_STOP_CHECK_S)
                continue
            except Exception:  # never kill the pushing: the pages' polls carry on meanwhile
                log.exception("wall push failed")
                stop.wait(1.0)
                continue
            self._minute = minute
            self._generation = generation
            took = time.perf_counter() - started
            stop.wait(max(self.interval_s, 2 * took))

    def publish(self, sights: list[Sight]) -> None:
        """Compute and hand out the update of each sight: what a screen at its place lacks."""
        live = self.service.live
        if live is None:
            raise PreventUpdate
        version = live.version  # read first: a change while computing goes out with the next update
        events: dict[Sight, Event] = {}
        for sight in sights:
            started = time.perf_counter()
            place = self._places.get(sight)
            if place is None:  # the first stream of this sight: start from where a screen is now
                whole = self.service.answer(sight, {}, None, {})
                self._places[sight] = Place().after(whole or {})
                with self._cond:
                    opened_at = self._opened_at.pop(sight, version)
                if opened_at != version:
                    # The view moved between the stream's opening (its page asked then, the
                    # ``change`` event) and this first place: updates from here would never
                    # carry what moved in between. Its streams ask again for what they lack.
                    events[sight] = CHANGE
                continue
            answer = self.service.answer(sight, place.digests, place.applied, place.shown)
            if answer is None:
                continue
            moved = place.after(answer)
            body = {"from": place.applied, "to": moved.applied, "response": answer}
            event = events[sight] = Event.of(f"event: update\ndata: {to_json(body)}\n\n")
            self._places[sight] = moved
            if log.isEnabledFor(logging.DEBUG):  # bench/wall_scale.py reads these lines
                grid = answer.get("wall-grid", {}).get("data")
                cells = len(grid.get("values") or {}) if isinstance(grid, dict) else 0
                log.debug("wall push update in %.1f ms: metric %s, region %s, %d grid cells, %d B, %d B compressed, "
                          "outputs %s", 1000 * (time.perf_counter() - started), sight.metric, sight.region or "city",
                          cells, len(event.text), len(event.gz),
                          ",".join(sorted(answer)))
        if self.service.journal_version() >= version:  # else the grid part is still to come
            self._version = version
        if events:
            with self._cond:
                self._seq += 1
                for sight, event in events.items():
                    self._latest[sight] = (self._seq, event)
                self._cond.notify_all()

    def publish_health(self) -> None:
        """Hand out the wall's health as a ``health`` event when its fingerprint changed."""
        answer = self.service.health_answer(utcnow())
        fp = answer[HEALTH_FP[0]][HEALTH_FP[1]]
        if fp == self._health_fp:
            return
        event = Event.of(f"event: health\ndata: {to_json(answer)}\n\n")
        with self._cond:
            self._seq += 1
            self._health, self._health_fp = (self._seq, event), fp
            self._cond.notify_all()


class PushStreams:
    """Counts this worker's open push streams; each holds one gunicorn thread while open."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.open -= 1


def push_events(hub: PushHub, sight: Sight, alive: Callable[[], bool], stop: threading.Event,
                heartbeat_s: float, gzip: bool = False,
                screen: Callable[[], dict[str, Any] | None] | None = None) -> Iterator[bytes]:
    """The bytes of one wall's push stream (see the module's docstring); gzip-encoded if ``gzip``.

    The session is checked again (``alive``) at most every PUSH_SESSION_CHECK_S: a revoked
    session or token ends the stream. ``screen`` answers the named screen this page is (its
    setting and banners, from memory): sent as a ``screen`` event whenever its ``key`` changes,
    looked at when a control notice wakes the hub (:meth:`PushHub.wake`) and every
    SCREEN_CHECK_S — the shift lead's change reaches the wall within a second.
    """
    yield (GZIP_HEADER if gzip else b"") + RETRY.body(gzip) + CHANGE.body(gzip)
    sent, health = hub.subscribe(sight)
    shown: Any = None  # the screen's key last sent (a page that is no named screen never gets one)
    seen_wakes, screen_due = -1, 0.0
    try:
        if health is not None:
            yield health.body(gzip)
        quiet = 0.0
        checked = time.monotonic()
        while not stop.is_set():
            # In slices: a worker told to stop (a restart, a deploy) must not wait out its
            # graceful timeout for streams that never end by themselves.
            step = min(PUSH_STOP_CHECK_S, heartbeat_s)
            sent, events = hub.next(sight, sent, step)
            # A named screen is looked at when a control notice woke the hub, and every
            # SCREEN_CHECK_S as a net (a notice missed while Redis was away).
            if screen is not None and (hub.wakes != seen_wakes or time.monotonic() >= screen_due):
                seen_wakes, screen_due = hub.wakes, time.monotonic() + SCREEN_CHECK_S
                now_screen = screen()
                key = now_screen.get("key") if now_screen else None
                if key != shown:
                    shown = key
                    # per stream (a screen is one page): compressed on its own, small and rare
                    events = [*events, Event.of(f"event: screen\ndata: {to_json(now_screen)}\n\n")]
            if events:
                quiet = 0.0
                for event in events:  # one write each: the browser decodes each as it comes
                    yield event.body(gzip)
            else:
                quiet += step
                if quiet >= heartbeat_s:
                    quiet = 0.0
                    yield PING.body(gzip)
            if time.monotonic() - checked >= PUSH_SESSION_CHECK_S:
                checked = time.monotonic()
                if not alive():
                    return
    finally:
        hub.unsubscribe(sight)
