"""Refresh of the wall (/wall) from the worker's in-memory live view; no aggregate SQL.

Each web worker holds a :class:`dashboard.figures.liveview.LiveView`, loaded from SQL at start and
advanced by the ingest's change notices (:class:`feeds.follower.ChangeFollower`, plain
``XREAD``: every worker reads every notice) and by the clock (deadlines pass without events).

The browser polls every 500 ms and says what it already shows:

* for each panel (KPIs, hot spots, queue, board) a digest of the figures it last received;
* for the heatmap, the *coordinate* of its colours: the last change notice id and the last
  clock second that the serving worker had applied. Notice ids are Redis stream ids, the
  same in every worker, so a browser whose polls land on different gunicorn workers still
  gets exact deltas: a worker sends the cells that changed after that coordinate (or all of
  them when the coordinate is older than its journal), and nothing when it is behind.

When nothing differs the answer is HTTP 204 (PreventUpdate): an idle wall costs one tiny
request per poll and no bytes of data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import flask
import redis
from dash import ClientsideFunction, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy.orm import Session, sessionmaker

from auth import identity
from auth.policy import DISPLAY
from auth.sessions import session_check
from dashboard.figures.evaluation import RANKED_BELOW, ObjectKind, Period, evaluate
from dashboard.figures.liveview import LiveView
from dashboard.figures.riskboard import RiskBoard, RiskState
from dashboard.figures.timetravel import Replay, ReplayArchived, wall_at
from dashboard.rules.classification import Classification
from dashboard.rules.clock import utcnow
from dashboard.rules.evalspec import weights_from_settings
from dashboard.rules.screenspec import playlist_to_json
from dashboard.rules.vocab import UNLOCATED
from dashboard.settings import Settings
from dashboard.store import mapdata
from dashboard.store.alerts import active_alerts
from dashboard.store.hallscreens import ScreenView, ScreenViews
from dashboard.store.reference import timing_for
from dashboard.store.scope import CITY, Scope, ScopeError, get_scope, grid_ids
from dashboard.store.surges import wall_surges
from feeds.control import ControlFollower, follow_screen_views
from feeds.follower import ChangeFollower
from feeds.health import feed_state
from feeds.keys import applied_minute_key, stream_id
from feeds.snapshot import SnapshotStore
from layouts import wall as view
from layouts.kit.fmt import PLACEHOLDER
from layouts.kit.health import render_banner, render_feed
from layouts.kit.ranking import period_text, ranking_rows

from .clock import register_clock
from .wall_push import PushHub, PushStreams, Sight, push_events

log = logging.getLogger(__name__)

# The ranking panel: (period text, district rows, unit rows).
Rankings = tuple[str, list[dict[str, Any]], list[dict[str, Any]]]

# Rows sent to the queue: the most overdue and then the due-soon ones. The wall turns a page
# every 10 s, so this is a cycle of about two minutes at 1080p; the title gives the totals.
QUEUE_ROWS = 60
QUEUE_DUE_SOON_ROWS = 30
HOT_SPOTS = 10
JOURNAL = 512  # grid-change entries kept per worker for delta updates
ROW_VERSIONS = 64  # row sets of the queue and of the board kept per worker to send row deltas from
ROW_DELTAS = 128  # row deltas kept per worker (every screen at the same rows gets the same one)
ROW_PANELS = ("queue", "board", "risk")  # the AG Grid panels updated by row transactions (wall.js applyRows)
RISK_ROWS = 30  # rows of the 临期高风险 section sent (it pages like the queue; the note gives the total)
EVENTS_RULE = "/wall/events"  # pushed updates, server-sent events (auth/policy.py: the wall's route)
RESERVED_THREADS = 4  # threads of each worker never taken by streams: callbacks, API, pages
MAP_LAYERS_KEPT = 64  # map layers (name × region) kept per worker
SIGHTS_KEPT = 64  # sights (metric × region) whose panels and row histories a worker keeps
ALERTS_TTL_S = 5.0  # a region's alerts are read again at least this often (besides every notice)
# A refresh asked for a pushed update this worker has not seen waits at most this long for its
# follower (WallService.catch_up): followers trail each other by milliseconds, not seconds.
PUSH_CATCH_UP_S = 1.0
CATCH_UP_STEP_S = 0.05  # a tick moves the coordinate without a new version: look again this often
GEO_RULE = "/wall/geo/<name>.json"  # the wall's grid and boundary geometry (auth/policy.py: the wall's route)
# The refresh's outputs, in order: an answer names only those that changed ({id: {prop: value}},
# the shape of Dash's own callback answers; a pushed update carries the same).
REFRESH_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("wall-grid", "data"), ("wall-state", "data"),
    *[(f"wall-kpi-{key}", "children") for key, _, _ in view.KPIS],
    ("wall-hot", "children"), ("wall-rows", "data"), ("wall-queue-count", "children"),
    ("wall-districts", "rowData"), ("wall-alerts", "data"), ("wall-sources", "children"),
    ("wall-surges", "data"), ("wall-risk-note", "children"),
    ("wall-replay", "children"),
)
REPLAYS_KEPT = 4  # walls at past instants (回放) kept per worker, the newest asked
# The health callback's outputs, in order: the header's feed figures, the stale banner, the page's
# stale look, 数据更新于 and the fingerprint of all that (the poll's dedupe). Every answer names
# them all; a pushed "health" event carries the same {id: {prop: value}}.
HEALTH_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("wall-feed", "children"), ("wall-banner", "children"), ("wall-banner", "className"),
    ("wall-root", "className"), ("wall-updated", "children"), ("wall-stale-panels", "data"),
    ("wall-health-fp", "data"),
)
# A panel's figures are late (its badge says since when: layouts/assets/wall.js) when the live
# view has not been brought to the clock for this long (it ticks every second), or when the
# ranking could not be computed for this long (it is asked once a minute).
LIVE_LATE_S = 10.0
RANKING_LATE_S = 150.0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]



def _digest(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass
class _Entry:
    nid: tuple[int, int]
    tick: int
    changed: dict[str, set[str]]  # metric -> grid codes whose value changed


@dataclass
class _Journal:
    """The grid values this worker last observed, and which cells changed at which coordinate."""

    seen_version: int = -1
    known: dict[str, set[str]] = field(default_factory=dict)  # cells ever non-zero (to clear them)
    entries: deque[_Entry] = field(default_factory=lambda: deque(maxlen=JOURNAL))
    floor: tuple[tuple[int, int], int] | None = None  # the coordinate of the first snapshot
    coord: tuple[tuple[int, int], int] | None = None  # the coordinate seen_version was filed under


class RowHistory:
    """One AG Grid panel's recent row sets, by digest, and the deltas between them.

    A screen says which row set it shows (its digest, written by wall.js after applying); when
    this worker still knows that set, the screen gets the rows added, the rows removed and, of
    the rows that changed, only their id and changed fields (AG Grid row transactions, applied
    by wall.js); otherwise, or when the delta is not smaller, the whole set. Digests are of
    content, so they mean the same in every worker, and every screen at the same rows gets the
    same delta object (computed once).
    """

    def __init__(self, versions: int = ROW_VERSIONS, deltas: int = ROW_DELTAS) -> None:
        self._sets: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
        self._deltas: OrderedDict[tuple[str | None, str], dict[str, Any]] = OrderedDict()
        self._full: tuple[str, dict[str, Any]] | None = None
        self.versions, self.deltas = versions, deltas
        self._lock = threading.Lock()

    def record(self, digest: str, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            if digest in self._sets:
                self._sets.move_to_end(digest)
                return
            self._sets[digest] = {str(r["id"]): r for r in rows}
            while len(self._sets) > self.versions:
                self._sets.popitem(last=False)

    def delta(self, have: str | None, digest: str, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        """What a screen showing row set ``have`` needs to show ``rows`` (digest ``digest``); None: nothing."""
        if have == digest:
            return None
        with self._lock:
            key = (have, digest)
            hit = self._deltas.get(key)
            if hit is not None:
                return hit
            old = self._sets.get(have) if have else None
            out = self._full_set(digest, rows) if old is None else self._diff(have, old, digest, rows)
            self._deltas[key] = out
            while len(self._deltas) > self.deltas:
                self._deltas.popitem(last=False)
            return out

    def _full_set(self, digest: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        if self._full is None or self._full[0] != digest:
            self._full = (digest, {"to": digest, "full": True, "rows": rows})
        return self._full[1]

    def _diff(self, have: str | None, old: dict[str, dict[str, Any]], digest: str,
              rows: list[dict[str, Any]]) -> dict[str, Any]:
        new = {str(r["id"]): r for r in rows}
        add = [r for i, r in new.items() if i not in old]
        remove = [i for i in old if i not in new]
        update = []
        for i, r in new.items():
            was = old.get(i)
            if was is not None and was != r:
                update.append({"id": r["id"], **{k: v for k, v in r.items() if was.get(k) != v}})
        delta = {"from": have, "to": digest, "add": add, "update": update, "remove": remove}
        full = self._full_set(digest, rows)
        return full if _size(delta) >= _size(full) else delta


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


@dataclass
class Panels:
    """What every screen of one sight shows at one (view version, minute): computed once per worker."""

    key: tuple[int, datetime, Sight, int]  # (view version, minute, sight, control generation)
    parts: dict[str, Any]  # kpi texts, hot rows, queue rows, queue note, board rows
    digests: dict[str, str]
    hot: list[Any]  # the hot-spot list, rendered
    hot_codes: list[str]


class MapLayers:
    """The wall's map geometry as static GeoJSON: built once per process and scope, cached by ETag.

    Grids and boundaries change only with a city import, so the browser fetches them once
    (gzip when it accepts it) and every live update afterwards only recolours cells. A
    reload revalidates by ETag; the ETag is known before the layer is built (a hash of its
    rows, ``mapdata.layer_etag``), so a just-started worker answers 304 at once. A region's
    wall gets the region's grids and outlines only (``?region=`` on the URL, checked against
    the viewer's scope by the route).
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.builders = {"grids": mapdata.grid_layer, "boundaries": mapdata.boundary_layer}
        self._built: dict[tuple[str, str], mapdata.Layer] = {}
        self._etags: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._tag_lock = threading.Lock()

    def etag(self, name: str, scope: Scope = CITY) -> str:
        """The layer's ETag, from its rows when it is not built yet (tenths of a second)."""
        key = (name, scope.code or "")
        built = self._built.get(key)
        if built is not None:
            return built.etag
        with self._tag_lock:
            if key not in self._etags:
                with self.sessions() as session:
                    self._etags[key] = mapdata.layer_etag(name, session, scope)
            return self._etags[key]

    def layer(self, name: str, scope: Scope = CITY) -> mapdata.Layer:
        key = (name, scope.code or "")
        with self._lock:
            if key not in self._built:
                if len(self._built) >= MAP_LAYERS_KEPT:  # a hall has a few dozen regions at most
                    self._built.clear()
                with self.sessions() as session:
                    self._built[key] = self.builders[name](session, scope)
            return self._built[key]

    def warm(self, before_building: Callable[[], object] | None = None) -> None:
        """The ETags, then (after ``before_building()`` returned) both layers, ahead of the first wall.

        100,000 grids take seconds to build; a worker first loads its live view
        (``before_building`` waits for it) so the two do not slow each other down.
        """
        try:
            for name in self.builders:
                self.etag(name)
            if before_building is not None:
                before_building()
            for name in self.builders:
                self.layer(name)
        except Exception as exc:  # the first request will try again and report it
            log.warning("map layers not prebuilt: %s", (str(exc).strip().splitlines() or [type(exc).__name__])[0])


class WallService:
    """One worker's live view, its follower and the grid-change journal."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self._lock = threading.Lock()
        self._journal = _Journal()
        self.follower: ChangeFollower | None = None
        self.start_error: str | None = None
        self._queue: dict[str, tuple[tuple[int, datetime], tuple[list[dict[str, Any]], str]]] = {}  # by region
        self._starter: threading.Thread | None = None
        self._stopped = threading.Event()
        self.health = HealthWatch(self)
        self.map_layers = MapLayers(sessions)
        # (period label, region) → (monotonic time, (period text, ranked region rows, unit rows))
        self._rankings: dict[tuple[str, str], tuple[float, Rankings]] = {}
        self._ranking_failed_since: datetime | None = None  # the last good ranking, while it fails
        self._rows: dict[str, dict[str, RowHistory]] = {}  # region -> panel -> its row sets
        self._panels: dict[Sight, Panels] = {}  # sight -> the panels at the latest (version, minute)
        self._panels_lock = threading.Lock()
        self._replays: OrderedDict[datetime, Replay] = OrderedDict()  # 回放: instant → its wall
        self._replay_lock = threading.Lock()
        self._replay_busy = False  # a playing replay's next minute is being built (one at a time per worker)
        self._health_answer: dict[str, dict[str, Any]] | None = None  # the last, by fingerprint
        # The hall's named screens (大屏) as the walls show them, dropped on every control notice.
        self._screens: tuple[ScreenViews, ControlFollower] | None = None
        self._screens_lock = threading.Lock()
        self._control_generation = 0
        self._alerts: dict[str, tuple[float, int, list[dict[str, Any]]]] = {}  # region -> (when, generation, rows)
        self._classification = Classification.from_settings(settings)
        self._surges: dict[str, tuple[float, int, list[dict[str, Any]]]] = {}  # region -> (when, generation, rows)
        # 临期高风险: every open case scored once a period in the background (a new scoring wakes the streams)
        self.risk = RiskBoard(sessions, self._timing, settings.wall_risk_refresh_s, on_new=self._woken)
        # Called on every control notice after the screens are dropped: the push hub's wake, so
        # the open streams send a changed screen at once (add_routes registers it).
        self.on_control: list[Callable[[], None]] = []

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start loading and following in a background thread; polls answer nothing until loaded.

        A million open cases take seconds to load: no request waits for that.
        """
        with self._lock:
            if self._starter is None:
                self._starter = threading.Thread(target=self._start, name="gridhall-wall-start", daemon=True)
                self._starter.start()

    def _start(self) -> None:
        delay = 1.0
        while not self._stopped.is_set():
            try:
                with self.sessions() as session:
                    timing = timing_for(self.settings, session)
                follower = ChangeFollower(self.settings, self.sessions, self.client, timing,
                                          snapshots=SnapshotStore(self.settings))
                follower.start()  # loads the view (a snapshot + catch-up, or SQL), then follows in its thread
                self.follower = follower
                return
            except Exception as exc:  # database or Redis away at start: keep trying
                self.start_error = _first_line(exc)
                log.warning("wall: live view not loaded (%s); retrying in %.0fs", self.start_error, delay)
                self._stopped.wait(delay)
                delay = min(delay * 2, 30)

    def warm_map(self, timeout_s: float = 300.0) -> None:
        """Prepare the map layers: their ETags at once, their bodies once the live view is loaded."""
        def view_loaded() -> None:
            until = time.monotonic() + timeout_s
            while time.monotonic() < until and not self._stopped.is_set():
                follower = self.follower
                if follower is not None and follower.view.loaded_at is not None:
                    return
                self._stopped.wait(0.2)

        self.map_layers.warm(view_loaded)

    @property
    def stopping(self) -> threading.Event:
        """Set when the worker shuts down: open push streams end so it can exit."""
        return self._stopped

    def stop(self) -> None:
        self._stopped.set()
        if self._screens is not None:
            self._screens[1].stop()
        if self.follower is not None:
            self.follower.stop()

    @property
    def live(self) -> LiveView | None:
        """The view, once its first load from SQL is done (None before)."""
        self.start()
        return self.loaded_view()

    # -- named screens (大屏) ------------------------------------------------------------------
    def screen_of(self, user_id: int | None) -> dict[str, Any] | None:
        """What the named screen bound to display user ``user_id`` shows now, as the page gets it
        (:func:`screen_payload`); None when the user is bound to no screen.

        From memory: the worker's ScreenViews, dropped by the control notice of any change
        (feeds/control.py), so the shift lead's change is seen at the next look (the push stream
        looks every half second)."""
        views = self._control()[0]
        if user_id is None:
            return None
        view_ = views.by_user(user_id)
        return screen_payload(view_) if view_ is not None else None

    def _control(self) -> tuple[ScreenViews, ControlFollower]:
        """The worker's ScreenViews and the control follower that drops them, started on first use."""
        with self._screens_lock:
            if self._screens is None:
                self._screens = follow_screen_views(self.settings, self.sessions, self.client, then=self._woken)
            return self._screens

    def _woken(self) -> None:
        self._control_generation += 1  # the alerts may have changed: panels are computed again
        for wake in self.on_control:
            wake()

    @property
    def control_generation(self) -> int:
        """How many control notices (screens, banners, alerts) this worker has seen."""
        self._control()  # the control follower runs from the first look on
        return self._control_generation

    # -- alerts (突发事件) ----------------------------------------------------------------------
    def alerts(self, scope: Scope) -> list[dict[str, Any]]:
        """The alerts a wall of ``scope`` shows now (``dashboard/store/alerts.py`` active_alerts),
        as the page gets them; read from SQL once per control notice and scope, and at least every
        ALERTS_TTL_S (a notice lost while Redis was away)."""
        key = scope.code or ""
        generation = self._control_generation
        hit = self._alerts.get(key)
        if hit is not None and hit[1] == generation and time.monotonic() - hit[0] < ALERTS_TTL_S:
            return hit[2]
        with self.sessions() as session:
            found = active_alerts(session, scope, utcnow(), classification=self._classification)
        tz = self.settings.tz
        rows = [{
            "id": a.id, "number": a.number or a.case_id, "reason": a.headline,
            "klass": " / ".join(p for p in (a.major_name, a.minor_name) if p) or PLACEHOLDER,
            "place": " · ".join(p for p in (a.district if scope.is_city else "", a.street, a.community) if p)
            or UNLOCATED, "grid": a.grid_code or "", "raised": f"{a.raised_at.astimezone(tz):%H:%M:%S}",
            "escalated": a.escalated, "city": a.level.value == "city",
        } for a in found]
        if len(self._alerts) >= SIGHTS_KEPT:
            self._alerts.clear()
        self._alerts[key] = (time.monotonic(), generation, rows)
        return rows

    # -- surges (突增预警) ------------------------------------------------------------------------
    def surges(self, scope: Scope) -> list[dict[str, Any]]:
        """The surges a wall of ``scope`` lists and rings now (``dashboard/store/surges.py``
        wall_surges), as the page gets them; read from SQL once per control notice (housekeeping
        sends one when a surge starts or ends) and scope, and at least every ALERTS_TTL_S (a
        surge that expires on the wall without an end, a notice lost while Redis was away)."""
        key = scope.code or ""
        generation = self._control_generation
        hit = self._surges.get(key)
        if hit is not None and hit[1] == generation and time.monotonic() - hit[0] < ALERTS_TTL_S:
            return hit[2]
        now = utcnow()
        with self.sessions() as session:
            found = wall_surges(session, scope, now, self.settings.surge_quiet_minutes)
        tz = self.settings.tz
        rows = [{
            "id": w.id, "level": w.level.value, "place": w.place,
            "name": " · ".join(p for p in (w.street, w.community) if p) or w.place,
            "group": w.group, "text": w.text, "observed": w.observed,
            "since": f"{w.started_at.astimezone(tz):%H:%M}",
        } for w in found]
        if len(self._surges) >= SIGHTS_KEPT:
            self._surges.clear()
        self._surges[key] = (time.monotonic(), generation, rows)
        return rows

    # -- 临期高风险 -------------------------------------------------------------------------------
    def _timing(self) -> Any:
        view_ = self.loaded_view()
        return view_.timing if view_ is not None else None

    def risk_rows(self, live: LiveView, scope: Scope, at: datetime) -> tuple[list[dict[str, Any]], str]:
        """The 临期高风险 rows of ``scope`` and the section's note, from the last scoring
        (:class:`dashboard.figures.riskboard.RiskBoard`) and the live view (still open, not overdue)."""
        return risk_rows(live, self.risk.current(), grid_ids(scope), at, self.settings.wall_risk_min,
                         self.settings.tz)

    # -- scopes -----------------------------------------------------------------------------
    def scope_of(self, region: str) -> Scope:
        """The scope of a region code ("" is the city); cached (``dashboard.store.scope``).

        Never a permission check: the region was checked against the viewer's scope where the
        request came in (:func:`sight_scope`)."""
        if not region:
            return CITY
        with self.sessions() as session:
            return get_scope(session, region)

    def rows_of(self, region: str) -> dict[str, RowHistory]:
        """The row histories of the queue and the board of one region's walls."""
        rows = self._rows.get(region)
        if rows is None:
            if len(self._rows) >= SIGHTS_KEPT:
                self._rows.clear()
            rows = self._rows.setdefault(region, {name: RowHistory() for name in ROW_PANELS})
        return rows

    def loaded_view(self) -> LiveView | None:
        """The view if it is loaded, without starting it (the read API's and /view's figures
        come from it once the worker has one: ``dashboard.figures.readcache.CachedReads``)."""
        follower = self.follower
        if follower is None or follower.view.loaded_at is None:
            return None
        return follower.view

    # -- scenes -----------------------------------------------------------------------------
    def scene(self, wanted: dict[str, Any], config: dict[str, Any]) -> tuple[Any, ...]:
        """The scene callback's answer for ``wanted`` ({layout, region, metric, board, tile}) on a
        page whose wall-config is ``config``: (wall-config, wall-state, wall-applied). The titles
        travel in the config: the page shows them with the scene's first figures (wallscene.js).
        Raises RegionRefused for a region outside the viewer's scope."""
        region = wanted.get("region") if isinstance(wanted.get("region"), str) else ""
        scope = viewer_scope(self.sessions, region or None)
        given = config.get("base")
        base = given if isinstance(given, str) else ""
        layout = view.layout_of(wanted.get("layout"))
        board = view.scene_board(layout, wanted.get("board") if isinstance(wanted.get("board"), str) else None,
                                 scope)
        bounds = None
        reload = False
        if (scope.code or "") != base:
            base_scope = self.scope_of(base)
            if base_scope.is_city or (scope.code or "") in base_scope.region_codes:
                fit = self.map_layers.layer("grids", scope).bounds
                bounds = list(fit) if fit else None
            else:  # the page's map lacks the region's grids: the page loads the scene's own
                reload = True
        tile = wanted.get("tile")
        tile = [int(x) for x in tile] if isinstance(tile, list) and len(tile) == 4 else view.tile_of(
            tile if isinstance(tile, str) else None)
        metric = view.metric_of(wanted.get("metric") if isinstance(wanted.get("metric"), str) else None)
        new = view.wall_config(self.settings, metric, scope, board, layout, tile, bounds, base=base)
        new["reload"] = reload
        new["scene"] = wanted.get("n")  # which request this answers (wallscene.js)
        return new, None, None

    # -- 综合考评 ----------------------------------------------------------------------------
    def rankings(self, month: str | None, now: datetime, scope: Scope = CITY) -> Rankings:
        """The ranking panel: (period label, region rows, unit rows) for ``scope``: the city's
        districts, a district's streets, a street's communities (``RANKED_BELOW``) and the units
        judged on the scope's cases.

        Computed from SQL (``dashboard.figures.evaluation``, the figures of the API and the monthly
        report) at most once a minute per period, scope and worker: every wall of a worker shares it.
        """
        period = Period.parse(month or f"{now.astimezone(self.settings.tz):%Y-%m}", self.settings.tz)
        key = (period.label, scope.code or "")
        hit = self._rankings.get(key)
        if hit is not None and time.monotonic() - hit[0] < RANKING_TTL_S:
            return hit[1]
        weights = weights_from_settings(self.settings)
        kind = RANKED_BELOW.get(scope.level, ObjectKind.DISTRICT)
        try:
            with self.sessions() as session:
                regions = evaluate(session, scope, kind, period, weights, now=now)
                units = evaluate(session, scope, ObjectKind.UNIT, period, weights, now=now)
        except ValueError:
            raise
        except Exception:
            if self._ranking_failed_since is None:  # the panel keeps its last figures, marked late
                self._ranking_failed_since = now
            raise
        self._ranking_failed_since = None
        result = (period_text(regions, self.settings.tz), ranking_rows(regions), ranking_rows(units))
        self._rankings[key] = (time.monotonic(), result)
        return result

    # -- health --------------------------------------------------------------------------
    def health_answer(self, now: datetime) -> dict[str, dict[str, Any]]:
        """The header's feed figures, the stale banner and 数据更新于 as ``{id: {prop: value}}``
        (every one of HEALTH_OUTPUTS; ``wall-health-fp`` is the fingerprint of the rest).

        One definition for the health poll (``register``) and the pushed ``health`` event
        (callbacks/wall_push.py). Rendered once per fingerprint: every screen of the worker
        gets the same objects.
        """
        try:
            h = self.health.get(now)
            parts, message, updated = h.parts, h.message, h.updated
        except Exception:
            log.exception("wall health failed")
            parts, message, updated = [], "看板服务内部错误，请通知运维（详见服务日志）", PLACEHOLDER
        late = self.late_panels(now)
        fp = _digest([parts, message, updated, late])
        rendered = self._health_answer
        if rendered is not None and rendered["wall-health-fp"]["data"] == fp:
            return rendered
        banner, banner_class = render_banner(message)
        rendered = {
            "wall-feed": {"children": render_feed(parts)},
            "wall-banner": {"children": banner, "className": banner_class},
            "wall-root": {"className": "gh-page wall" + (" is-stale" if message else "")},
            "wall-updated": {"children": updated},
            "wall-stale-panels": {"data": late},
            "wall-health-fp": {"data": fp},
        }
        self._health_answer = rendered
        return rendered

    def late_panels(self, now: datetime) -> dict[str, str]:
        """The panels whose figures are older than they should be: ``{"live": since, "ranking":
        since}`` (``since`` hh:mm:ss in the city's time; absent when on time). ``live`` covers
        every panel the live view feeds (KPIs, map, hot spots, queue, boards)."""
        out: dict[str, str] = {}
        follower = self.follower
        status = follower.status() if follower is not None else None
        tick = status.last_tick_at if status is not None else None
        if tick is not None and (now - tick).total_seconds() > LIVE_LATE_S:
            out["live"] = f"{tick.astimezone(self.settings.tz):%H:%M:%S}"
        failed = self._ranking_failed_since
        if failed is not None and (now - failed).total_seconds() > RANKING_LATE_S:
            out["ranking"] = f"{failed.astimezone(self.settings.tz):%H:%M:%S}"
        return out

    # -- the queue ----------------------------------------------------------------------
    def queue(self, live: LiveView, scope: Scope = CITY) -> tuple[list[dict[str, Any]], str]:
        """The queue rows of ``scope``, recomputed when the view changes or a minute passes.

        Times are shown to the minute and computed at the whole minute, so every worker
        gives the same texts (and digest) and a screen gets the queue again once a minute,
        not at every poll.
        """
        minute = utcnow().replace(second=0, microsecond=0)
        key = (live.version, minute)
        region = scope.code or ""
        cached = self._queue.get(region)
        if cached is None or cached[0] != key:
            if len(self._queue) >= SIGHTS_KEPT:
                self._queue.clear()
            cached = self._queue[region] = (key, queue_rows(live, minute, grid_ids(scope)))
        return cached[1]

    # -- the panels, shared by every screen -----------------------------------------------
    def panels(self, live: LiveView, sight: Sight) -> Panels:
        """KPIs, hot spots, queue and board of ``sight`` at the view's version and the current minute.

        Computed once per (version, minute, sight) by the first request that asks, under one
        lock, and shared by every screen of the worker that looks at the same region and
        metric: a request only compares digests and picks the deltas it needs. A region's
        figures count the cases located in it only (docs/wall.md, "Region walls").
        """
        minute = utcnow().replace(second=0, microsecond=0)
        key = (live.version, minute, sight, self.control_generation)
        hit = self._panels.get(sight)
        if hit is not None and hit.key == key:
            return hit
        scope = self.scope_of(sight.region)
        gids = grid_ids(scope)
        with self._panels_lock:
            hit = self._panels.get(sight)
            if hit is not None and hit.key == key:
                return hit
            with live.consistent():  # one consistent picture across the panels
                version = live.version
                rows, note = self.queue(live, scope)
                # Rows and count apart: counts move with every case crossing a deadline, the
                # first rows (most overdue first) far less often.
                parts: dict[str, Any] = {
                    "kpi": view.kpi_texts(kpi_values(live, gids)),
                    "hot": hot_rows(live, sight.metric, gids),
                    "queue": rows,
                    "queue_note": note,
                    "board": board_rows(live, gids),
                    "sources": [[source.label, count] for source, count in live.source_counts(gids)],
                }
                parts["risk"], parts["risk_note"] = self.risk_rows(live, scope, minute)
                if sight.board == "districts" and scope.is_city:  # 各区对比 (layouts/wall.py board_of)
                    parts["districts"] = district_rows(live)
            parts["alerts"] = self.alerts(scope)
            parts["surges"] = self.surges(scope)
            digests = {k: _digest(v) for k, v in parts.items()}
            histories = self.rows_of(sight.region)
            for name in ROW_PANELS:
                histories[name].record(digests[name], parts[name])
            panels = Panels((version, minute, sight, key[3]), parts, digests,
                            view.render_hot(parts["hot"], view.METRICS[sight.metric][1]),
                            [code for code, _, _ in parts["hot"]])
            if len(self._panels) >= SIGHTS_KEPT:
                self._panels.clear()
            self._panels[sight] = panels
            return panels

    # -- grid deltas ---------------------------------------------------------------------
    def journal_version(self) -> int:
        """The live view's version whose grid changes the journal has filed (see _observe)."""
        return self._journal.seen_version

    def catch_up(self, wanted: dict[str, Any], timeout: float) -> bool:
        """Wait up to ``timeout`` until this worker's view is at grid coordinate ``wanted`` (a
        pushed update's ``to``, from another worker's hub); whether it got there.

        A page that could not apply a pushed update asks the refresh callback, and the request
        may land on the other worker, whose follower can be a moment behind the hub's: answering
        "nothing new" then would leave the page without the update until its slow safety poll."""
        live = self.live
        if live is None or self.follower is None:
            return False
        want = (stream_id(str(wanted.get("nid") or "")), int(wanted.get("tick") or 0))
        deadline = time.monotonic() + timeout
        while True:
            with live.consistent():
                status = self.follower.status()
                version = live.version
            tick = int(status.last_tick_at.timestamp()) if status.last_tick_at else 0
            if stream_id(status.last_id) >= want[0] and tick >= want[1]:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            live.wait_changed(version, min(remaining, CATCH_UP_STEP_S))

    def _observe(self, live: LiveView) -> tuple[tuple[int, int], int]:
        """Record which cells changed since the last look (the view's own changelog); the coordinate."""
        assert self.follower is not None
        # The coordinate and the version as one picture: the follower records a notice's id (a
        # tick's second) under the view's lock with the change it made (feeds/follower.py), so a
        # version is never filed under a coordinate that a browser may already hold without it.
        # The values are read after: they may be newer than the coordinate says (sent again
        # later, harmless), never older.
        with live.consistent():
            status = self.follower.status()
            version = live.version
        tick = int(status.last_tick_at.timestamp()) if status.last_tick_at else 0
        coord = (stream_id(status.last_id), tick)
        j = self._journal
        if version == j.seen_version:
            return coord
        if j.coord == coord:
            # The view moved but its coordinate did not (a reload: the follower records where the
            # stream ends after it): filed under this coordinate, the change would be lost to a
            # browser already at it. Leave it for the next look, when the coordinate has moved on.
            return coord
        changed: dict[str, set[str]] = {}
        for metric in view.METRICS:
            since = live.grid_changes_since(j.seen_version, metric) if j.seen_version >= 0 else None
            if since is None:  # first look, or the view was reloaded: everything may differ
                changed[metric] = set(live.grid_values(metric)) | set(j.known.get(metric, ()))
                j.known[metric] = set(live.grid_values(metric))
            else:
                changed[metric] = set(since)
                j.known.setdefault(metric, set()).update(since)
        if j.floor is None:
            j.floor = coord
        else:
            j.entries.append(_Entry(coord[0], coord[1], changed))
        j.seen_version = version
        j.coord = coord
        return coord

    def grid_update(self, sight: Sight, have: dict[str, Any] | None) -> dict[str, Any] | None:
        """The grid cells of ``sight`` a browser at coordinate ``have`` lacks, or None when it lacks nothing.

        The journal is the city's; a region's wall gets the cells of its own grids only."""
        live = self.live
        if live is None:
            return None
        metric = sight.metric
        scope = self.scope_of(sight.region)
        update = self._grid_update(live, metric, have)
        if update is not None:
            if not scope.is_city:
                mine = scope.grid_codes
                update["values"] = {c: v for c, v in update["values"].items() if c in mine}
            update["sight"] = view.sight_key(metric, sight.region)
        return update

    def _grid_update(self, live: LiveView, metric: str, have: dict[str, Any] | None) -> dict[str, Any] | None:
        with self._lock:
            nid, tick = self._observe(live)
            j = self._journal
            out = {"nid": f"{nid[0]}-{nid[1]}", "tick": tick, "version": f"{nid[0]}-{nid[1]}/{tick}"}
            if not have or j.floor is None:
                return {**out, "full": True, "values": live.grid_values(metric)}
            c_nid, c_tick = stream_id(have.get("nid")), int(have.get("tick") or 0)
            if nid < c_nid or tick < c_tick:
                return None  # this worker is behind the browser: let a fresher poll answer
            if (nid, tick) == (c_nid, c_tick):
                return None
            f_nid, f_tick = j.floor
            if c_nid < f_nid or c_tick < f_tick or (j.entries and len(j.entries) == j.entries.maxlen
                                                     and (c_nid < j.entries[0].nid or c_tick < j.entries[0].tick)):
                return {**out, "full": True, "values": live.grid_values(metric)}
            codes: set[str] = set()
            for e in j.entries:
                if e.nid > c_nid or e.tick > c_tick:
                    codes |= e.changed.get(metric, set())
            return {**out, "full": False, "values": live.grid_values_of(metric, sorted(codes))}


    # -- one screen's answer ------------------------------------------------------------
    def answer(self, sight: Sight, had: dict[str, Any], applied: dict[str, Any] | None,
               shown: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        """What a screen looking at ``sight`` lacks, as ``{component id: {prop: value}}``; None
        when it lacks nothing.

        ``had`` are the digests of the small panels the screen shows (wall-state), ``applied``
        the grid coordinate it painted (wall-applied), ``shown`` the row sets of its queue and
        board (wall-rows-applied). Everything is derived from the shared panels: two screens
        in the same place get the same answer. Raises PreventUpdate while the view loads.
        """
        live = self.live
        if live is None:
            raise PreventUpdate
        grid = self.grid_update(sight, applied)
        panels = self.panels(live, sight)
        histories = self.rows_of(sight.region)
        rows = {}
        for name in ROW_PANELS:
            have = shown.get(name)
            delta = histories[name].delta(have if isinstance(have, str) else None,
                                          panels.digests[name], panels.parts[name])
            if delta is not None:
                rows[name] = delta
        # The small panels by digest (wall-state); the row panels by what wall.js applied.
        digests = {k: v for k, v in panels.digests.items() if k not in ROW_PANELS}
        changed = {k for k in digests if digests[k] != had.get(k)}
        if grid is None and not changed and not rows:
            return None
        if grid is not None and (grid.get("values") or "hot" in changed):
            grid["hot"] = panels.hot_codes
        if grid is None and "hot" in changed:
            grid = {"full": False, "values": {}, "hot": panels.hot_codes, "version": (applied or {}).get("nid"),
                    "sight": view.sight_key(sight.metric, sight.region)}
        out: dict[str, dict[str, Any]] = {}
        if grid is not None:
            out["wall-grid"] = {"data": grid}
        if changed:
            out["wall-state"] = {"data": {"digests": digests}}
        if "kpi" in changed:
            for (key, _, _), text in zip(view.KPIS, panels.parts["kpi"], strict=True):
                out[f"wall-kpi-{key}"] = {"children": text}
        if "hot" in changed:
            out["wall-hot"] = {"children": panels.hot}
        if rows:
            out["wall-rows"] = {"data": rows}
        if "queue_note" in changed:
            out["wall-queue-count"] = {"children": panels.parts["queue_note"]}
        if "districts" in changed:
            out["wall-districts"] = {"rowData": panels.parts["districts"]}
        if "alerts" in changed:
            out["wall-alerts"] = {"data": panels.parts["alerts"]}
        if "sources" in changed:
            out["wall-sources"] = {"children": view.render_sources(panels.parts["sources"])}
        if "surges" in changed:
            out["wall-surges"] = {"data": panels.parts["surges"]}
        if "risk_note" in changed:
            out["wall-risk-note"] = {"children": panels.parts["risk_note"]}
        return out


    # -- the wall at a past instant (回放) --------------------------------------------------
    def replay(self, at: datetime) -> Replay:
        """The wall at ``at`` (:func:`dashboard.figures.timetravel.wall_at`), kept for the next asks."""
        with self._replay_lock:
            hit = self._replays.get(at)
            if hit is not None:
                self._replays.move_to_end(at)
                return hit
        with self.sessions() as session:
            replay = wall_at(session, self.settings, at)
        with self._replay_lock:
            self._replays[at] = replay
            while len(self._replays) > REPLAYS_KEPT:
                self._replays.popitem(last=False)
        return replay

    def replay_soon(self, at: datetime) -> Replay:
        """For a replay playing at N×: the wall at ``at`` when built, else the latest built before it
        while ``at`` is built in the background (the page's poll never waits on it: an answer slower
        than the poll would be dropped by Dash for the next one, and the wall would never move)."""
        with self._replay_lock:
            hit = self._replays.get(at)
            if hit is not None:
                return hit
            older = [t for t in self._replays if t <= at]
            fallback = self._replays[max(older)] if older else None
            if not self._replay_busy:
                self._replay_busy = True
                threading.Thread(target=self._build_replay, args=(at,), name="gridhall-replay", daemon=True).start()
        return fallback if fallback is not None else self.replay(at)

    def _build_replay(self, at: datetime) -> None:
        try:
            self.replay(at)
        except Exception:  # shown by the next synchronous ask; never a traceback on the wall
            log.exception("replay of %s failed", at)
        finally:
            with self._replay_lock:
                self._replay_busy = False

    def replay_answer(self, sight: Sight, at: datetime, had: dict[str, Any], applied: dict[str, Any] | None,
                      shown: dict[str, Any], *, speed: int | None = None) -> dict[str, dict[str, Any]] | None:
        """:meth:`answer` for the wall at ``at``: the same panels computed the same way from the
        replayed view (read-only: no push, no alerts); None when the page shows them all. Playing
        (``speed``), the minute shown is the latest built up to ``at`` (:meth:`replay_soon`)."""
        try:
            replay = self.replay_soon(at) if speed else self.replay(at)
            at = replay.at
        except ReplayArchived as exc:
            text = f"{view.replay_text(at.astimezone(self.settings.tz), speed)} · {_first_line(exc).split(' — ')[0]}"
            return None if had.get("replay") == text else {
                "wall-replay": {"children": text}, "wall-state": {"data": {"digests": {"replay": text}}}}
        live = replay.view
        scope = self.scope_of(sight.region)
        gids = grid_ids(scope)
        with live.consistent():
            rows, note = queue_rows(live, at, gids)
            parts: dict[str, Any] = {
                "kpi": view.kpi_texts(kpi_values(live, gids)),
                "hot": hot_rows(live, sight.metric, gids),
                "queue": rows, "queue_note": note,
                "board": board_rows(live, gids),
                "sources": [[source.label, count] for source, count in live.source_counts(gids)],
                "alerts": [],
                # Not replayed: surges and risks of the past (the risk scoring is not kept per minute).
                "surges": [], "risk": [], "risk_note": REPLAY_NO_RISK,
                "replay": view.replay_text(at.astimezone(self.settings.tz), speed),
            }
            if sight.board == "districts" and scope.is_city:
                parts["districts"] = district_rows(live)
            values = live.grid_values(sight.metric)
        if not scope.is_city:
            values = {c: v for c, v in values.items() if c in scope.grid_codes}
        digests = {k: _digest(v) for k, v in parts.items()}
        out: dict[str, dict[str, Any]] = {}
        changed = {k for k in digests if k not in ROW_PANELS and digests[k] != had.get(k)}
        row_sets = {name: {"to": digests[name], "full": True, "rows": parts[name]} for name in ROW_PANELS
                    if shown.get(name) != digests[name]}
        tick = int(at.timestamp())  # the grid's coordinate: the minute shown (a replay playing moves it on)
        if not applied or applied.get("tick") != tick:
            out["wall-grid"] = {"data": {"full": True, "values": values, "nid": "0-0", "tick": tick,
                                         "version": f"replay/{at.isoformat()}",
                                         "sight": view.sight_key(sight.metric, sight.region),
                                         "hot": [code for code, _, _ in parts["hot"]]}}
        if not changed and not row_sets and not out:
            return None
        out["wall-state"] = {"data": {"digests": {k: v for k, v in digests.items() if k not in ROW_PANELS}}}
        if "kpi" in changed:
            for (key, _, _), text in zip(view.KPIS, parts["kpi"], strict=True):
                out[f"wall-kpi-{key}"] = {"children": text}
        if "hot" in changed:
            out["wall-hot"] = {"children": view.render_hot(parts["hot"], view.METRICS[sight.metric][1])}
        if row_sets:
            out["wall-rows"] = {"data": row_sets}
        if "queue_note" in changed:
            out["wall-queue-count"] = {"children": note}
        if "districts" in changed:
            out["wall-districts"] = {"rowData": parts["districts"]}
        if "sources" in changed:
            out["wall-sources"] = {"children": view.render_sources(parts["sources"])}
        if "surges" in changed:
            out["wall-surges"] = {"data": parts["surges"]}
        if "risk_note" in changed:
            out["wall-risk-note"] = {"children": parts["risk_note"]}
        if "replay" in changed:
            out["wall-replay"] = {"children": parts["replay"]}
        return out


# -- a named screen, for the page -------------------------------------------------------------
def screen_payload(screen: ScreenView) -> dict[str, Any]:
    """A screen's setting and banners as the page's wall-screen store holds them
    (layouts/assets/wallscene.js plays the scene part, shows the banners); ``key`` changes
    whenever anything in it does."""
    payload: dict[str, Any] = {
        "name": screen.name, "title": screen.title, "layout": screen.layout.value,
        "region": screen.region or "", "metric": screen.metric.value,
        "tile": [screen.tile.cols, screen.tile.rows, screen.tile.col, screen.tile.row] if screen.tile else None,
        "playlist": playlist_to_json(screen.playlist), "sound": screen.sound,
        "banners": [{"id": b.id, "text": b.text, "level": b.level.value, "label": b.level.label,
                     "until": b.expires_at.isoformat()} for b in screen.banners],
    }
    payload["key"] = _digest(payload)
    return payload


# -- shaping the view's figures for the page ----------------------------------------------------
def kpi_values(live: LiveView, gids: frozenset[int] | None = None) -> list[int | float | None]:
    """The KPI strip's figures of the cases on ``gids`` (None: the city, unlocated cases too)."""
    k = live.scoped_kpis(gids)[0]
    return [getattr(k, key) for key, _, _ in view.KPIS]


def hot_rows(live: LiveView, metric: str, gids: frozenset[int] | None = None) -> list[tuple[str, str, int]]:
    out = []
    spots = live.hot_spots(metric, HOT_SPOTS) if gids is None else live.scoped_hot_spots(gids, metric, HOT_SPOTS)
    for s in spots:
        place = " · ".join(p for p in (s.street, s.community) if p)
        out.append((s.code, place, int(s.value)))
    return out


def queue_rows(live: LiveView, at: datetime, gids: frozenset[int] | None = None,
               ) -> tuple[list[dict[str, Any]], str]:
    """The queue's rows of the cases on ``gids`` (None: the city) with their times as of ``at``
    (a whole minute: see WallService.queue)."""
    q = (live.overdue_queue(QUEUE_ROWS, QUEUE_DUE_SOON_ROWS) if gids is None
         else live.scoped_overdue_queue(gids, QUEUE_ROWS, QUEUE_DUE_SOON_ROWS))
    cal = live.timing.calendar
    rows = []
    for r in (*q.overdue, *q.due_soon):
        rows.append({
            "id": r.case_id,
            "overdue": bool(r.overdue),
            "number": r.number or r.case_id,
            "urgent": bool(r.urgent),
            "klass": "\n".join(p for p in (r.major_name, r.minor_name) if p) or PLACEHOLDER,
            "place": "\n".join(p for p in (" · ".join(x for x in (r.street, r.community) if x), r.grid_code) if p)
            or UNLOCATED,  # no grid: a city-only case (docs/wall.md)
            "unit": r.unit_name or "未派遣",
            "stage": r.stage_label,
            "late": _late_text(r, at, cal),
            "late_calendar": f"截止 {r.deadline_at:%m-%d %H:%M}",
            "k": _queue_key(r),
        })
    note = f"超期 {q.overdue_total:,} 件 · 临期 {q.due_soon_total:,} 件"
    if q.overdue_total + q.due_soon_total > len(rows):
        note += f"（显示前 {len(rows)} 件）"
    return rows, note


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_RISK_MODEL = "尚未训练超期风险模型，无法排序（运行 gridhall risk train）"
RISK_SCORING = "正在评分…"
REPLAY_NO_RISK = "回放不含超期风险"  # a replayed wall (/wall?at=) shows no risks: scorings are not kept


def risk_rows(live: LiveView, state: RiskState, gids: frozenset[int] | None, at: datetime, minimum: float,
              tz: Any) -> tuple[list[dict[str, Any]], str]:
    """临期高风险: the open cases on ``gids`` (None: the city) not overdue at the view's instant whose
    risk in ``state``'s scoring is at least ``minimum``, riskiest first, as rows; and the note (how
    many, which model version scored them and when — or plainly why there are none)."""
    if not state.trained:
        return [], NO_RISK_MODEL
    ranking = state.ranking
    if ranking is None:
        return [], state.error or RISK_SCORING
    p = ranking.probabilities
    cut = _at_least(p, minimum)
    found, total = live.open_rows(ranking.case_ids[:cut], gids, RISK_ROWS)
    risk = dict(zip(ranking.case_ids[:cut], p[:cut], strict=True))
    cal = live.timing.calendar
    rows = []
    for r in found:
        prob = risk[r.case_id]
        reason = ranking.reasons.get(r.case_id)
        left = cal.between(at, r.deadline_at) if r.working else (r.deadline_at - at).total_seconds() / 60
        rows.append({
            "id": r.case_id, "p": round(prob, 4), "risk": _percent(prob), "number": r.number or r.case_id,
            "urgent": bool(r.urgent), "klass": r.minor_name or r.major_name or PLACEHOLDER,
            "place": " · ".join(x for x in (r.street, r.community) if x) or r.grid_code or UNLOCATED,
            "unit": r.unit_name or "未派遣",
            "left": _hm(max(left, 0)),  # the column says 剩余
            "reason": f"{reason[0]} +{100 * reason[1]:.0f}点" if reason else PLACEHOLDER,
            "k": f"{1_000_000 - round(prob * 1_000_000):07d}{r.case_id}",
        })
    note = (f"风险 ≥ {minimum:.0%} {total:,} 件 · 模型 v{ranking.version} · "
            f"{ranking.at.astimezone(tz):%H:%M} 评分")
    if state.error:
        note += f" · {state.error}"
    return rows, note


def _percent(p: float) -> str:
    """A risk as the wall prints it: ``87%``; ``>99%`` rather than ``100%`` for a case that is not
    overdue yet (a forecast, never a certainty), ``<1%`` rather than ``0%``."""
    return ">99%" if p >= 0.995 else "<1%" if p < 0.005 else f"{p:.0%}"


def _at_least(p: tuple[float, ...], minimum: float) -> int:
    """How many of ``p`` (descending) are at least ``minimum``."""
    lo, hi = 0, len(p)
    while lo < hi:
        mid = (lo + hi) // 2
        if p[mid] >= minimum:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _queue_key(r: Any) -> str:
    """The row's place in the queue as one string that sorts as the queue does (overdue first,
    then by deadline to the microsecond and case id): the grid sorts by it (layouts/wall.py), so
    row transactions keep the order without moving the other rows."""
    micros = (r.deadline_at - _EPOCH) // timedelta(microseconds=1)
    return f"{0 if r.overdue else 1}{micros:018d}{r.case_id}"


def _hm(minutes: float) -> str:
    total = int(max(minutes, 0) // 1)
    d, rem = divmod(total, 24 * 60)
    h, m = divmod(rem, 60)
    return f"{d}天{h}时{m:02d}分" if d else f"{h}时{m:02d}分"


def _late_text(r: Any, at: datetime, cal: Any) -> str:
    """超期/剩余 time at ``at``: working time first (the standard's measure), calendar beneath."""
    calendar_min = (at - r.deadline_at).total_seconds() / 60
    if r.overdue:
        if r.working:
            return f"超 {_hm(max(cal.between(r.deadline_at, at), 0))}\n自然 {_hm(max(calendar_min, 0))}"
        return f"超 {_hm(max(calendar_min, 0))}\n自然时限"
    left = cal.between(at, r.deadline_at) if r.working else -calendar_min
    return f"剩 {_hm(max(left, 0))}\n临期"


def district_rows(live: LiveView) -> list[dict[str, Any]]:
    """各区对比's rows (dashboard/figures/districts.py has the definitions), in code order."""
    rows = []
    for d in live.district_rows():
        rows.append({
            "id": d.code, "name": d.name, "open": d.open, "overdue": d.overdue, "due_soon": d.due_soon,
            "urgent": d.urgent, "reported": d.reported, "closed": d.closed,
            "rate": PLACEHOLDER if d.on_time_close_rate is None else f"{100 * d.on_time_close_rate:.1f}%",
            "arrow": d.trend, "trend": f"{d.trend} {d.new_hour} / {d.hourly_mean:.1f}",
            "trend_note": f"近1小时上报 {d.new_hour} 件，今日每小时平均 {d.hourly_mean:.1f} 件",
            "hourly": list(d.hourly),
        })
    return rows


def board_rows(live: LiveView, gids: frozenset[int] | None = None) -> list[dict[str, Any]]:
    """The unit board: every unit (None), or the units working in the region of ``gids`` with
    the figures of its cases only."""
    rows = []
    board = live.unit_board() if gids is None else live.scoped_unit_board(gids)
    for rank, u in enumerate(board, start=1):
        rows.append({
            "id": u.code,
            "rank": rank,
            "unit": u.name,
            "pending": u.pending,
            "disposing": u.pending + u.feedback,
            "overdue": u.overdue,
            "closed_today": u.closed_today,
            "on_time_rate": PLACEHOLDER if u.on_time_rate is None else f"{100 * u.on_time_rate:.1f}%",
            "rework": u.rework,
            "extended": u.extension,
            "levels": {"overdue": u.levels.get("overdue"), "on_time_rate": u.levels.get("on_time_rate"),
                       "rework": u.levels.get("rework"), "extended": u.levels.get("extension")},
        })
    return rows


RANKING_TTL_S = 60.0


# -- health ----------------------------------------------------------------------------------------
@dataclass
class Health:
    """What the header and the stale banner say, computed at most once a second per worker."""

    parts: list[tuple[str, str, bool]]
    message: str | None  # the stale banner's text; None when the data is live
    updated: str  # 数据更新于 hh:mm:ss


class HealthWatch:
    """Reads the feed's state from Redis (shared by all screens of a worker, cached 1 s)."""

    def __init__(self, service: WallService) -> None:
        self.service = service
        self._cached: tuple[float, Health] | None = None
        self._lock = threading.Lock()

    def get(self, now: datetime) -> Health:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < 1.0:
                return self._cached[1]
            health = self._compute(now)
            self._cached = (time.monotonic(), health)
            return health

    def _per_minute(self, now: datetime) -> int:
        """Events applied in the last complete minute, by all ingest consumers."""
        minute = int(now.timestamp() // 60) - 1
        return int(self.service.client.get(self.service.settings.key(applied_minute_key(minute))) or 0)

    def _compute(self, now: datetime) -> Health:
        service = self.service
        settings = service.settings
        tz = settings.tz
        follower = service.follower
        status = follower.status() if follower is not None else None
        try:
            state = feed_state(service.client, settings)
        except redis.RedisError as exc:
            log.warning("wall: Redis unreachable: %s", exc)
            state = None
        parts: list[tuple[str, str, bool]] = []
        message = None
        if state is not None:
            parts.append(("接入", f"{self._per_minute(now):,} 条/分", False))
            dead = sum(state.dead_by_reason.values())
            parts.append(("死信", f"{dead:,}", dead > 0))
            lag = state.pending + (state.backlog or 0)
            parts.append(("待处理", f"{lag:,}", lag > 5000))
            beat = now.timestamp() - state.heartbeat_age_s if state.heartbeat_age_s is not None else None
            last_batch = state.last_batch_at.timestamp() if state.last_batch_at else None
            last = max((t for t in (beat, last_batch) if t is not None), default=None)
            if last is None:
                message = "尚未收到数据接入服务（gridhall ingest）的心跳"
            elif now.timestamp() - last > settings.stale_after_s:
                since = datetime.fromtimestamp(last, tz)
                message = f"自 {since:%H:%M:%S} 起未收到案件事件或接入心跳（超过 {settings.stale_after_s} 秒）"
        else:
            message = "无法连接 Redis（案件数据流），正在重试"
        if message is None and follower is None and service.start_error:
            message = f"看板未能载入数据：{service.start_error}，正在重试"
        if message is None and status is not None and status.stale_reason:
            message = f"看板未能跟上数据：{status.stale_reason}，正在重试"
        live = follower.view if follower is not None else None
        if live is None:
            updated = "正在加载"
        else:
            at = live.last_change_at or live.loaded_at
            updated = at.astimezone(tz).strftime("%H:%M:%S") if at else PLACEHOLDER
        return Health(parts, message, updated)


# -- whose wall -------------------------------------------------------------------------------------
class RegionRefused(PermissionError):
    """A wall's ``region`` that is not a region inside the viewer's scope (or no region at all)."""


def viewer_scope(sessions: sessionmaker[Session], region: str | None) -> Scope:
    """The scope a wall request shows: the signed-in viewer's own, or ``region`` (a region code)
    inside it. Raises :class:`RegionRefused` for a code outside the viewer's scope and for one
    that names no region, alike (a refusal tells nothing about other districts).

    Asked by the layout, the refresh, the push stream and the geometry: nothing the browser
    sends is trusted, the viewer's scope comes from the session (``auth.identity``).
    """
    wanted = (region or "").strip() if isinstance(region, str) else ""
    with sessions() as session:
        try:
            mine = identity.scope(session)
        except ScopeError:  # the user's region was removed by a re-import
            raise RegionRefused(wanted) from None
        if not wanted or wanted == (mine.code or ""):
            return mine
        if not mine.is_city and wanted not in mine.region_codes:
            raise RegionRefused(wanted)
        try:
            return get_scope(session, wanted)
        except ScopeError:
            raise RegionRefused(wanted) from None


def _screen_user() -> int | None:
    """The display user of this request (a wall screen signed in by its token), if it is one:
    its named screen, if any, decides what the page shows."""
    who = identity.current()
    return who.user_id if who is not None and who.role == DISPLAY else None


def _sight(service: WallService, metric: str | None, region: str | None, board: str | None = None) -> Sight:
    """The sight of a request: ``metric``, the region checked by :func:`viewer_scope`, the board."""
    scope = viewer_scope(service.sessions, region)
    return Sight(view.metric_of(metric), scope.code or "", view.board_of(board, scope))


# -- registration ------------------------------------------------------------------------------------
def add_routes(server: flask.Flask, service: WallService) -> None:
    """The wall page's own Flask routes (auth/policy.py lists them under the page): its
    geometry and its push stream."""
    streams = PushStreams(max(0, service.settings.web_threads - RESERVED_THREADS))
    hub = PushHub(service)
    service.on_control.append(hub.wake)

    @server.route(EVENTS_RULE)
    def wall_events() -> flask.Response:
        try:
            args = flask.request.args
            sight = _sight(service, args.get("metric"), args.get("region"), args.get("board"))
        except RegionRefused:
            flask.abort(404)
        if not streams.enter():  # no thread to spare: this screen keeps polling
            return flask.Response("push streams full; polling", status=503, mimetype="text/plain",
                                  headers={"Retry-After": str(view.PUSH_REFUSED_MAX_MS // 1000)})
        alive = session_check()  # asked between messages, outside the request (no context kept)
        gzip = "gzip" in (flask.request.headers.get("Accept-Encoding") or "")
        uid = _screen_user()
        stream = push_events(hub, sight, alive, service.stopping, heartbeat_s=view.PUSH_HEARTBEAT_MS / 1000,
                             gzip=gzip, screen=(lambda: service.screen_of(uid)) if uid is not None else None)
        response = flask.Response(stream, mimetype="text/event-stream")
        if gzip:
            response.headers["Content-Encoding"] = "gzip"
            response.headers["Vary"] = "Accept-Encoding"
        # The server closes the response when the browser goes or the stream ends, whether or
        # not it was ever read: the thread is counted free again then.
        response.call_on_close(streams.leave)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event through at once
        return response

    @server.route(GEO_RULE)
    def map_layer(name: str) -> flask.Response:
        if name not in service.map_layers.builders:
            flask.abort(404)
        try:
            scope = viewer_scope(service.sessions, flask.request.args.get("region"))
        except RegionRefused:
            flask.abort(404)
        etag = service.map_layers.etag(name, scope)
        if flask.request.if_none_match.contains(etag.strip('"')):  # a reload: the browser has it
            response = flask.Response(status=304)
            response.headers["ETag"] = etag
            response.headers["Vary"] = "Accept-Encoding"
            response.headers["Cache-Control"] = "no-cache"
            return response
        layer = service.map_layers.layer(name, scope)
        if "gzip" in (flask.request.headers.get("Accept-Encoding") or ""):
            response = flask.Response(layer.gzipped, mimetype="application/geo+json")
            response.headers["Content-Encoding"] = "gzip"
        else:
            response = flask.Response(layer.body, mimetype="application/geo+json")
        response.headers["ETag"] = layer.etag
        response.headers["Vary"] = "Accept-Encoding"
        # Revalidate each load: a city re-import must reach the wall at its next reload.
        response.headers["Cache-Control"] = "no-cache"
        return response


def register(app: dash.Dash, service: WallService) -> None:
    @app.callback(
        *[Output(cid, prop) for cid, prop in REFRESH_OUTPUTS],
        Input("wall-tick", "n_intervals"),
        Input("wall-push", "data"),  # a pushed change (layouts/assets/wall.js): ask at once
        State("wall-state", "data"),
        State("wall-applied", "data"),  # the grid coordinate the page has painted (wall.js)
        State("wall-rows-applied", "data"),  # the row sets the queue and board show (wall.js)
        State("wall-config", "data"),
    )
    def refresh(_n: int, _pushed: Any, state: dict[str, Any] | None, applied: dict[str, Any] | None,
                rows_applied: dict[str, Any] | None, config: dict[str, Any] | None) -> tuple[Any, ...]:
        started = time.perf_counter()
        config = config if isinstance(config, dict) else {}
        try:
            sight = _sight(service, config.get("metric"), config.get("region"), config.get("board"))
        except RegionRefused:  # the page itself was refused (layouts/wall.py refused)
            raise PreventUpdate from None
        had = (state or {}).get("digests") if isinstance(state, dict) else None
        wanted = _pushed.get("version") if isinstance(_pushed, dict) else None
        if isinstance(wanted, dict) and dash.ctx.triggered_id == "wall-push":
            # Asked for an update the page could not apply: this worker may not have seen it yet.
            service.catch_up(wanted, PUSH_CATCH_UP_S)
        at = view.parse_at(config.get("at"), service.settings.tz) if config.get("at") else None
        speed = config.get("speed")
        if at is not None and isinstance(speed, int) and speed > 0:  # 回放 at N×: the minute reached by now
            at = view.played_at(at, speed, config.get("started"), utcnow())
        try:
            if at is not None:  # 回放: the wall at a past minute, read-only (layouts/wall.py)
                answer = service.replay_answer(sight, at, had if isinstance(had, dict) else {}, applied,
                                               rows_applied if isinstance(rows_applied, dict) else {},
                                               speed=speed if isinstance(speed, int) else None)
            else:
                answer = service.answer(sight, had if isinstance(had, dict) else {}, applied,
                                        rows_applied if isinstance(rows_applied, dict) else {})
        except PreventUpdate:  # the view is still loading: the page keeps what it shows
            raise
        except Exception:  # never a traceback on the wall: the health banner says what is wrong
            log.exception("wall refresh failed")
            raise PreventUpdate from None
        if answer is None:
            raise PreventUpdate
        log.debug("wall refresh in %.1f ms", 1000 * (time.perf_counter() - started))
        return tuple(answer.get(cid, {}).get(prop, no_update) for cid, prop in REFRESH_OUTPUTS)

    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_wall", function_name="applyRows"),
        Output("wall-rows-applied", "data"),
        Input("wall-rows", "data"),
    )

    @app.callback(
        Output("wall-eval-period", "children"),
        Output("wall-eval-regions", "rowData"),
        Output("wall-eval-units", "rowData"),
        Input("wall-eval-tick", "n_intervals"),
        Input("wall-config", "data"),  # a scene that shows the ranking asks at once
        State("wall-eval-config", "data"),
    )
    def ranking(_n: int | None, wall: dict[str, Any] | None, config: dict[str, Any] | None) -> tuple[Any, ...]:
        if not isinstance(wall, dict) or wall.get("board") != "evaluation":
            raise PreventUpdate  # not shown: no SQL for a hidden panel
        period = (config or {}).get("period") if isinstance(config, dict) else None
        try:
            scope = viewer_scope(service.sessions, (wall or {}).get("region") if isinstance(wall, dict) else None)
        except RegionRefused:
            raise PreventUpdate from None
        try:
            return service.rankings(period if isinstance(period, str) else None, utcnow(), scope)
        except ValueError:  # ?period= that is not a month: say so on the panel, show nothing
            return "时段参数无效（应为 YYYY-MM）", [], []
        except Exception:  # never a traceback on the wall; the health banner covers outages
            log.exception("wall ranking failed")
            raise PreventUpdate from None

    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_wall", function_name="applyGrid"),
        Output("wall-map-note", "title"),
        Output("wall-applied", "data"),
        Input("wall-grid", "data"),
        State("wall-config", "data"),
    )

    @app.callback(
        *[Output(cid, prop) for cid, prop in HEALTH_OUTPUTS],
        Input("wall-health-tick", "n_intervals"),
        State("wall-health-fp", "data"),
        State("wall-config", "data"),
    )
    def health(_n: int, fp: str | None, config: dict[str, Any] | None) -> tuple[Any, ...]:
        if isinstance(config, dict) and config.get("at"):
            raise PreventUpdate  # 回放: the feed's health now says nothing about the wall at T
        # A pushed wall gets the same answer as a "health" event (callbacks/wall_push.py) and
        # asks only every PUSHED_HEALTH_MS: its wall-health-fp is already this one, so 204.
        answer = service.health_answer(utcnow())
        if answer["wall-health-fp"]["data"] == fp:
            raise PreventUpdate
        return tuple(answer[cid][prop] for cid, prop in HEALTH_OUTPUTS)

    @app.callback(
        Output("wall-config", "data"),
        Output("wall-state", "data", allow_duplicate=True),
        Output("wall-applied", "data", allow_duplicate=True),
        Input("wall-scene", "data"),
        State("wall-config", "data"),
        prevent_initial_call=True,
    )
    def scene(wanted: Any, config: Any) -> tuple[Any, ...]:
        # A playlist's next entry, or a screen's new setting (layouts/assets/wallscene.js): the
        # page's new wall-config, checked here like any request (the region inside the viewer's
        # scope). The panels' digests and the grid coordinate start again, so the next refresh
        # brings the new scene whole; until it comes the page keeps showing the last one.
        if not isinstance(wanted, dict) or not isinstance(config, dict):
            raise PreventUpdate
        try:
            return service.scene(wanted, config)
        except RegionRefused:
            raise PreventUpdate from None

    @app.callback(
        Output("wall-screen", "data"),
        Input("wall-health-tick", "n_intervals"),
        State("wall-screen", "data"),
        prevent_initial_call=True,
    )
    def screen(_n: int, have: Any) -> Any:
        # The named screen's setting and banners, polled with the health (the push stream sends
        # a change within a second; this is the net behind it and the way without push).
        now = service.screen_of(_screen_user())
        had = have.get("key") if isinstance(have, dict) else None
        if (now or {}).get("key") == had:
            raise PreventUpdate
        return now

    # In the browser (layouts/assets/wallscene.js): mark the page for its scene, and play the screen.
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_scene", function_name="applied"),
        Output("wall-scene-shown", "data"),
        Input("wall-config", "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_alerts", function_name="show"),
        Output("wall-alerts-shown", "data"),
        Input("wall-alerts", "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_surges", function_name="show"),
        Output("wall-surges-shown", "data"),
        Input("wall-surges", "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_scene", function_name="late"),
        Output("wall-late-shown", "data"),
        Input("wall-stale-panels", "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall_scene", function_name="screen"),
        Output("wall-screen-played", "data"),
        Input("wall-screen", "data"),
    )

    register_clock(app, "wall")  # clock, date and the offline banner, in the browser


__all__ = ["GEO_RULE", "MapLayers", "RegionRefused", "WallService", "add_routes", "register", "html",
           "viewer_scope"]
