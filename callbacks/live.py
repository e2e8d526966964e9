"""Refresh of the live page: a cheap fingerprint every tick, the full figures only on change.

Every 2 s the browser asks; the server reads ``max(case_events.id)``, a bounded
events-per-minute count and the ingest's health hash, and answers 204 (PreventUpdate) when
that fingerprint equals the one the browser already shows. Failures never reach the
browser as a traceback: they become the red "数据已停止更新" banner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import dash
import redis
from dash import Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.clock import utcnow
from dashboard.settings import Settings
from dashboard.store import queries
from dashboard.store.queries import GridLoad, RecentEvent, StageCount, TodayCounts
from feeds.keys import HEALTH_KEY
from layouts import live as view
from layouts.kit.fmt import fmt_int
from layouts.kit.health import render_banner, render_feed

from .clock import register_clock

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=30)
TOP_GRIDS = 10
RECENT_EVENTS = 15
RATE_CAP = 2000



# -- feed health ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedHealth:
    """The ingest's health hash, parsed; a field the ingest has not written yet is None."""

    heartbeat_at: datetime | None = None
    last_batch_at: datetime | None = None
    applied_total: int | None = None
    duplicates_total: int | None = None
    dead_total: int | None = None


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    # The contract says ISO with an offset; a bare time is taken as UTC rather than dropped.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def parse_health(raw: Mapping[str, Any]) -> FeedHealth:
    """Parse the HEALTH_KEY hash; malformed fields read as missing instead of failing."""
    text = {str(k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}
    return FeedHealth(
        heartbeat_at=_parse_time(text.get("heartbeat_at")),
        last_batch_at=_parse_time(text.get("last_batch_at")),
        applied_total=_parse_int(text.get("applied_total")),
        duplicates_total=_parse_int(text.get("duplicates_total")),
        dead_total=_parse_int(text.get("dead_total")),
    )


# -- one tick ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """What one tick learns cheaply; its fingerprint decides whether anything is sent."""

    now: datetime
    day: date
    db_ok: bool
    redis_ok: bool
    latest_event_id: int | None = None
    per_minute: int | None = None
    health: FeedHealth | None = None

    @property
    def heartbeat_state(self) -> str:
        if not self.redis_ok:
            return "unknown"
        if self.health is None or self.health.heartbeat_at is None:
            return "missing"
        return "stale" if self.now - self.health.heartbeat_at > STALE_AFTER else "fresh"

    @property
    def healthy(self) -> bool:
        return self.db_ok and self.heartbeat_state == "fresh"

    @property
    def data_key(self) -> str:
        """What the database figures depend on (the cache key of a render)."""
        h = self.health or FeedHealth()
        # applied_total and last_batch_at catch commits that land below max(id) (PostgreSQL
        # sequences hand out ids before commit, so a slower transaction can commit later).
        return f"{self.day}|{self.latest_event_id}|{h.applied_total}|{h.last_batch_at}"

    @property
    def fingerprint(self) -> str:
        h = self.health or FeedHealth()
        return "|".join(
            str(p)
            for p in (
                self.data_key,
                h.duplicates_total,
                h.dead_total,
                self.per_minute,
                int(self.db_ok),
                int(self.redis_ok),
                self.heartbeat_state,
            )
        )


@dataclass(frozen=True)
class LiveData:
    counts: TodayCounts
    stages: list[StageCount]
    grids: list[GridLoad]
    events: list[RecentEvent]


@dataclass
class Update:
    """Values for the page's outputs, in ``OUTPUTS`` order; ``no_update`` keeps a part."""

    banner: Any = no_update
    banner_class: Any = no_update
    root_class: Any = no_update
    kpis: list[Any] = field(default_factory=lambda: [no_update] * len(view.KPIS))
    stages: Any = no_update
    grids: Any = no_update
    events: Any = no_update
    feed: Any = no_update
    updated: Any = no_update
    store: Any = no_update

    def as_outputs(self) -> list[Any]:
        out: list[Any] = []
        for f in fields(self):
            value = getattr(self, f.name)
            out.extend(value if f.name == "kpis" else [value])
        return out


class LiveService:
    """Per-process state of the live page: connections, a render cache, outage memory."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        redis_client: redis.Redis,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.tz = settings.tz
        self.scheme = queries.scheme_name(settings.classification)
        self.sessions = sessions
        self.redis = redis_client
        self.health_key = settings.key(HEALTH_KEY)
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: tuple[str, LiveData] | None = None
        # First failed probe of each connection in this process: the banner's "since when".
        self._down_since: dict[str, datetime | None] = {"database": None, "redis": None}
        self._last_state: str | None = None
        self._last_error: dict[str, str] = {}

    # -- reading ------------------------------------------------------------------------
    def probe(self) -> Probe:
        now = self.clock()
        day = now.astimezone(self.tz).date()
        db_ok, latest, per_minute = True, None, None
        try:
            with self.sessions() as session:
                latest = queries.latest_event_id(session)
                per_minute = queries.events_per_minute(session, now, cap=RATE_CAP)
        except (SQLAlchemyError, OSError) as exc:
            db_ok = False
            self._note_problem("database", exc)
        self._mark("database", db_ok, now)
        redis_ok, health = True, None
        try:
            # decode_responses (feeds.connection.connect): str fields and values
            raw = cast(dict[str, str], self.redis.hgetall(self.health_key))
            health = parse_health(raw) if raw else None
        except (redis.RedisError, OSError) as exc:
            redis_ok = False
            self._note_problem("redis", exc)
        self._mark("redis", redis_ok, now)
        probe = Probe(now, day, db_ok, redis_ok, latest, per_minute, health)
        self._remember(probe)
        return probe

    def load(self, probe: Probe) -> LiveData:
        """The figures for this probe, shared by every browser this process serves."""
        with self._lock:
            if self._cache and self._cache[0] == probe.data_key:
                return self._cache[1]
        with self.sessions() as session:
            data = LiveData(
                counts=queries.today_counts(session, self.tz, probe.now),
                stages=queries.open_by_stage(session),
                grids=queries.top_grids(session, TOP_GRIDS),
                events=queries.recent_events(session, self.scheme, RECENT_EVENTS),
            )
        with self._lock:
            self._cache = (probe.data_key, data)
        return data

    # -- the tick -----------------------------------------------------------------------
    def refresh(self, stored: Mapping[str, Any] | None) -> Update | None:
        """The update for a browser that shows ``stored``; None when nothing changed."""
        stored = stored if isinstance(stored, Mapping) else {}
        probe = self.probe()
        fp = probe.fingerprint
        if stored.get("fp") == fp:
            return None
        has_data = bool(stored.get("has_data"))
        update = Update()
        message = self.stop_message(probe)
        update.banner, update.banner_class = render_banner(message)
        update.root_class = "gh-page is-stale" if message else "gh-page"
        update.feed = render_feed(self.feed_parts(probe))

        if probe.db_ok:
            try:
                data = self.load(probe)
            except (SQLAlchemyError, OSError) as exc:
                # The database went away between the probe and the figures.
                self._note_problem("database", exc)
                self._mark("database", False, probe.now)
                probe = Probe(probe.now, probe.day, False, probe.redis_ok, health=probe.health)
                message = self.stop_message(probe)
                update.banner, update.banner_class = render_banner(message)
                update.root_class = "gh-page is-stale"
                fp = probe.fingerprint
            else:
                update.kpis = view.kpi_values(data.counts)
                update.stages = view.render_stages(data.stages)
                update.grids = view.render_grids(data.grids)
                update.events = view.render_events(data.events, self.tz, probe.now)
                shown_at = (probe.health.last_batch_at if probe.health else None) or probe.now
                update.updated = self.clock_text(shown_at, probe.now)
                has_data = True
        if not probe.db_ok and not has_data:
            # Never leave "正在加载…" up forever when there is nothing to load from.
            unavailable = html.Div("数据库无法连接，暂无数据", className="gh-empty is-alarm")
            update.stages = update.grids = update.events = unavailable
        update.store = {"fp": fp, "has_data": has_data}
        return update

    def failure(self, stored: Mapping[str, Any] | None) -> Update:
        """What an unexpected error shows: the banner, the last figures kept, retry next tick."""
        update = Update()
        update.banner, update.banner_class = render_banner("页面数据刷新出错，正在自动重试")
        update.root_class = "gh-page is-stale"
        has_data = bool(stored.get("has_data")) if isinstance(stored, Mapping) else False
        update.store = {"fp": None, "has_data": has_data}
        return update

    # -- wording ------------------------------------------------------------------------
    def clock_text(self, at: datetime, now: datetime) -> str:
        """hh:mm:ss in the city's zone, with the date when it is not today."""
        local = at.astimezone(self.tz)
        if local.date() == now.astimezone(self.tz).date():
            return local.strftime("%H:%M:%S")
        return local.strftime("%m-%d %H:%M:%S")

    def stop_message(self, probe: Probe) -> str | None:
        """Why the page has stopped updating, with since-when; None when all is well."""
        reasons: list[str] = []
        if not probe.db_ok:
            since = self._down_since["database"] or probe.now
            reasons.append(f"数据库无法连接（自 {self.clock_text(since, probe.now)} 起）")
        state = probe.heartbeat_state
        if state == "unknown":
            since = self._down_since["redis"] or probe.now
            reasons.append(f"数据接入服务无法连接（自 {self.clock_text(since, probe.now)} 起）")
        elif state == "missing":
            reasons.append("尚未收到数据接入心跳")
        elif state == "stale":
            assert probe.health is not None and probe.health.heartbeat_at is not None
            reasons.append(
                f"自 {self.clock_text(probe.health.heartbeat_at, probe.now)} 起未收到数据接入心跳"
            )
        return "；".join(reasons) or None

    def feed_parts(self, probe: Probe) -> list[tuple[str, str, bool]]:
        rate = fmt_int(probe.per_minute)
        if probe.per_minute is not None and probe.per_minute >= RATE_CAP:
            rate = f"{RATE_CAP:,}+"
        parts = [("近1分钟", f"{rate} 条", False)]
        if not probe.redis_ok:
            return [("接入状态", "无法连接", True), *parts]
        h = probe.health or FeedHealth()
        heartbeat = self.clock_text(h.heartbeat_at, probe.now) if h.heartbeat_at else "无"
        return [
            ("心跳", heartbeat, probe.heartbeat_state != "fresh"),
            *parts,
            ("累计接入", fmt_int(h.applied_total), False),
            ("重复", fmt_int(h.duplicates_total), False),
            ("死信", fmt_int(h.dead_total), bool(h.dead_total)),
        ]

    # -- outage memory ------------------------------------------------------------------
    def _mark(self, what: str, ok: bool, now: datetime) -> None:
        with self._lock:
            if ok:
                self._down_since[what] = None
                self._last_error.pop(what, None)
            elif self._down_since[what] is None:
                self._down_since[what] = now

    def _remember(self, probe: Probe) -> None:
        state = "ok" if probe.healthy else f"database={int(probe.db_ok)} heartbeat={probe.heartbeat_state}"
        with self._lock:
            previous, self._last_state = self._last_state, state
        # Log transitions only: a dead feed would otherwise write a line every 2 s per worker.
        if state != previous and (previous is not None or not probe.healthy):
            if probe.healthy:
                log.info("live page data state: ok")
            else:
                with self._lock:
                    errors = "".join(f"; {k}: {v}" for k, v in self._last_error.items())
                log.warning("live page data state: %s%s", state, errors)

    def _note_problem(self, what: str, exc: BaseException) -> None:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        with self._lock:
            self._last_error[what] = first_line
        log.debug("live page cannot read %s: %s", what, exc)


# -- wiring -----------------------------------------------------------------------------------
def outputs() -> list[Output]:
    return [
        Output("live-banner", "children"),
        Output("live-banner", "className"),
        Output("live-root", "className"),
        *[Output(f"kpi-{key}", "children") for key, _, _ in view.KPIS],
        Output("live-stages", "children"),
        Output("live-grids", "children"),
        Output("live-events", "children"),
        Output("live-feed", "children"),
        Output("live-updated", "children"),
        Output("live-fp", "data"),
    ]


def register(app: dash.Dash, service: LiveService) -> None:
    """Attach the live page's callbacks to ``app`` (never the global dash.callback list)."""

    @app.callback(*outputs(), Input("live-tick", "n_intervals"), State("live-fp", "data"))
    def refresh_live(_n: int | None, stored: dict[str, Any] | None) -> list[Any]:
        try:
            update = service.refresh(stored)
        except Exception:  # anything else: log it here, show the banner there
            log.exception("live page refresh failed")
            update = service.failure(stored)
        if update is None:
            raise PreventUpdate
        return update.as_outputs()

    register_clock(app, "live")  # clock, date and the offline banner, in the browser
