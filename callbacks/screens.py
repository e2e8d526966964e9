"""/screens callbacks (大屏管理, docs/halls.md "The screens page"): show the screens, banners and
change record of the viewer's scope; save a screen's setting, post and clear banners.

Every callback asks ``auth.identity`` who is signed in and builds the store's
:class:`~dashboard.store.hallcontrol.Actor` from the user's row, never from the page. A write
checks the role against ``auth.policy.WRITERS["screens"]``, then runs the store's own function
through :class:`~feeds.control.ControlPublisher` — one transaction with its ``hall_changes`` row,
then the control notice that moves the walls — and shows the store's answer (its refusals are
one line, Chinese first). A screen named by the page that the viewer may not control answers
like an unknown one, so a crafted payload learns nothing of other districts' screens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import dash
import redis
from dash import ALL, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy.orm import Session

from auth import identity, policy
from dashboard.figures import hallpage
from dashboard.rules.classification import Classification
from dashboard.rules.screenspec import (
    CITY,
    BannerLevel,
    ScreenLayout,
    SpecError,
    parse_layout,
    parse_metric,
    parse_region,
    parse_tile,
    parse_ttl,
    playlist_from_json,
)
from dashboard.store import alerts, banners, hallscreens
from dashboard.store.alerts import AlertError, active_alerts
from dashboard.store.hallcontrol import Actor, HallDenied, HallError, actor_for_user
from dashboard.store.hallscreens import VIEW_MAX_AGE_S
from dashboard.store.scope import CITY as CITY_SCOPE
from feeds.control import Committed, ControlPublisher
from feeds.screens import users_on
from layouts import screens as view

from .timing import PageService

log = logging.getLogger(__name__)

PAGE = "screens"
WALL_PAGE = "wall"  # the page a hall screen's display user opens
SIGNED_OUT = "未登录或登录已过期，请重新登录"
FAILED = "操作失败，请稍后重试（详情见服务器日志）"
NOT_YOURS = "没有此大屏，或无权管理 / no such screen within your scope"
NOT_WRITER = "当前角色不能管理大屏 / this role may not change the hall's screens"
T = TypeVar("T")


class Refused(Exception):
    """A write the page refuses before the store is asked (signed out, wrong role)."""


@dataclass(frozen=True)
class Edit:
    """A screen's setting as the editor sends it, unchecked (the browser may send anything)."""

    title: Any
    layout: Any
    region: Any
    metric: Any
    tile: Any
    sound: Any
    playlist: list[dict[str, Any]]


class ScreensService(PageService):
    """What /screens' callbacks share in one process: settings, sessions, Redis, the publisher."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.control = ControlPublisher(self.client, self.settings)
        self.classification = Classification.from_settings(self.settings)

    # -- who ---------------------------------------------------------------------------------
    def actor(self, session: Session) -> Actor | None:
        """The signed-in user as the store's actor (None: nobody, a disabled user)."""
        try:
            if identity.current() is None:
                return None
            return actor_for_user(session, identity.user(session))
        except (identity.NotSignedIn, HallDenied):
            return None

    def writer(self, session: Session) -> Actor:
        """The actor of a write; :class:`Refused` for nobody or a role that may not write here."""
        who = identity.current()
        if who is None:
            raise Refused(SIGNED_OUT)
        if who.role not in policy.WRITERS[PAGE]:
            raise Refused(NOT_WRITER)
        actor = self.actor(session)
        if actor is None:
            raise Refused(SIGNED_OUT)
        return actor

    def commit(self, action: Callable[[Session, Actor], T]) -> Committed[T]:
        """Run ``action`` as the signed-in writer in one transaction, then announce it."""
        return self.control.commit(self.sessions, lambda s: action(s, self.writer(s)))

    # -- reads -------------------------------------------------------------------------------
    def choices(self, session: Session, actor: Actor) -> list[hallpage.RegionChoice]:
        """The regions the actor may set: an admin's every region whatever their own scope."""
        return hallpage.region_choices(session, CITY_SCOPE if actor.is_admin else actor.scope)

    def names(self, session: Session, actor: Actor) -> dict[str, str]:
        return {c.code: c.name for c in self.choices(session, actor)}

    def overview(self, session: Session, actor: Actor, selected: Any) -> dict[str, Any]:
        """The table, the banners, the change record, and the choices of the banner form."""
        tz = self.settings.tz
        rows = hallpage.screen_rows(session, actor)
        names = self.names(session, actor) | {r.region: r.region_name for r in rows}
        return {
            "who": f"辖区：{actor.scope.name}" + ("（管理员，全部大屏）" if actor.is_admin else ""),
            "count": f"共 {len(rows)} 块",
            "table": view.render_table(rows, selected if isinstance(selected, str) else None, tz, names,
                                       self.online([r.display_user_id for r in rows if r.display_user_id])),
            "banners": view.render_banners(hallpage.banner_rows(session, actor, now=self.clock()), tz),
            "log": view.render_log(hallpage.change_rows(session, actor), tz, names),
            "screen_options": [{"label": f"{r.title}（{r.name}）", "value": r.name} for r in rows],
        }

    def online(self, user_ids: list[int]) -> set[int] | None:
        """Which display users have their wall open (``feeds/screens.py``); None: Redis away."""
        try:
            return users_on(self.client, self.settings, WALL_PAGE, user_ids)
        except redis.RedisError as exc:
            log.debug("screens: who is online not known: %s", exc)
            return None

    def editor(self, session: Session, actor: Actor, name: Any) -> dict[str, Any] | None:
        """The editor's values for screen ``name`` (None: not one the actor may control)."""
        row = hallpage.screen_row(session, actor, name)
        if row is None:
            return None
        choices = self.choices(session, actor)
        return {"title": row.title, "layout": row.layout.value, "region": row.region, "metric": row.metric.value,
                "tile": row.tile or "", "sound": ["on"] if row.sound else [],
                "regions": view.region_options(choices), "heading": f"编辑：{row.title}（{row.name}）",
                "playlist": [{**e.to_json(), "region": e.region or CITY} for e in row.playlist]}

    def regions(self, session: Session, actor: Actor) -> list[dict[str, str]]:
        return view.region_options(self.choices(session, actor))

    # -- writes ------------------------------------------------------------------------------
    def save(self, name: Any, edit: Edit) -> str:
        """Save screen ``name``'s setting; the message to show. Raises the store's errors."""
        changes = parse_edit(edit)

        def action(session: Session, actor: Actor) -> bool:
            if hallpage.screen_row(session, actor, name) is None:
                raise HallDenied(NOT_YOURS)
            before = hallscreens.describe(hallscreens.require_screen(session, name))
            after = hallscreens.describe(hallscreens.set_screen(session, actor, name, **changes))
            return before != after

        done = self.commit(action)
        if not done.result:
            return "没有改动"
        if not done.sent:
            return f"已保存；消息服务暂不可用，大屏将在 {VIEW_MAX_AGE_S:.0f} 秒内更新"
        return "已保存，大屏将在1秒内切换"

    def post(self, text: Any, level: Any, expiry: Any, target: Any, screens: Any) -> str:
        level_code = BannerLevel(level) if level in BannerLevel.labels() else None
        if level_code is None:
            raise SpecError("请选择通知级别 / choose a level")
        ttl = parse_ttl(expiry if isinstance(expiry, str) else "")
        chosen: list[str] = []
        if target == view.TARGET_SCREENS:
            chosen = [s for s in (screens or []) if isinstance(s, str)] if isinstance(screens, list) else []
            if not chosen:
                raise SpecError("请选择要发送的大屏 / choose the screens")

        def action(session: Session, actor: Actor) -> tuple[int, str]:
            for name in chosen:
                if hallpage.screen_row(session, actor, name) is None:
                    raise HallDenied(NOT_YOURS)
            banner = banners.post_banner(session, actor, text if isinstance(text, str) else "", level=level_code,
                                         ttl=ttl, screens=chosen)
            return banner.id, banner.expires_at.astimezone(self.settings.tz).strftime("%m-%d %H:%M")

        done = self.commit(action)
        banner_id, until = done.result
        return f"已发布横幅通知 {banner_id}，至 {until}" + ("" if done.sent else "（消息服务暂不可用，大屏稍后显示）")

    # -- alerts of 突发事件 -------------------------------------------------------------------------
    def alerts(self, session: Session, actor: Actor) -> Any:
        """The alerts waiting in the viewer's scope, as the walls of that scope show them."""
        rows = active_alerts(session, actor.scope, self.clock(), classification=self.classification)
        who = identity.current()
        return view.render_alerts(rows, self.settings.tz, who is not None and who.role in policy.WRITERS[PAGE])

    def acknowledge(self, alert_id: Any) -> str:
        """确认 as the signed-in shift lead or admin (the store checks the scope and records who)."""
        if not isinstance(alert_id, int) or isinstance(alert_id, bool):
            raise AlertError("没有此预警 / no such alert")
        done = self.commit(lambda session, actor: alerts.acknowledge(session, alert_id, identity.user(session),
                                                                      self.clock()))
        ack = done.result
        if not ack.done_now:
            return f"预警 {alert_id} 已由 {ack.by} 于 {ack.at.astimezone(self.settings.tz):%H:%M:%S} 确认"
        return f"已确认预警 {alert_id}，各大屏撤下"

    def clear(self, banner_id: Any) -> str:
        if not isinstance(banner_id, int) or isinstance(banner_id, bool):
            raise HallError("没有此横幅通知 / no such banner")
        self.commit(lambda session, actor: banners.clear_banner(session, actor, banner_id))
        return f"已撤销横幅通知 {banner_id}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dwell(value: Any) -> Any:
    """A number input's value as the rules want it: whole seconds (other values are refused there)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def parse_edit(edit: Edit) -> dict[str, Any]:
    """The editor's values as ``set_screen``'s keyword arguments; raises ``SpecError``."""
    layout = parse_layout(_text(edit.layout))
    tile_text = _text(edit.tile).strip()
    entries = [{"layout": _text(e.get("layout")), "region": _text(e.get("region")) or None,
                "metric": _text(e.get("metric")) or None, "dwell_s": _dwell(e.get("dwell_s"))}
               for e in edit.playlist if isinstance(e, dict)]
    for entry in entries:
        if entry["metric"] is None:
            del entry["metric"]
    return {
        "title": _text(edit.title),
        "layout": layout,
        "region": parse_region(_text(edit.region) or CITY),
        "metric": parse_metric(_text(edit.metric)),
        "tile": parse_tile(tile_text) if layout is ScreenLayout.MOSAIC and tile_text else None,
        "sound": isinstance(edit.sound, list) and "on" in edit.sound,
        "playlist": playlist_from_json(entries) if entries else (),
    }


def playlist_rows(layouts: Any, regions: Any, metrics: Any, dwells: Any) -> list[dict[str, Any]]:
    """The playlist's rows as the page shows them now (the row controls' values, in order)."""
    n = min(len(x) for x in (layouts or [], regions or [], metrics or [], dwells or []))
    return [{"layout": layouts[i], "region": regions[i], "metric": metrics[i], "dwell_s": dwells[i]}
            for i in range(n)]


def edit_rows(rows: list[dict[str, Any]], trigger: Any, default_region: str) -> list[dict[str, Any]]:
    """The rows after 添加 (``screens-pl-add``), or ↑ ↓ 删除 of row ``i`` (a pattern id)."""
    if trigger == "screens-pl-add":
        return [*rows, view.new_entry(default_region)]
    if not isinstance(trigger, dict) or not isinstance(trigger.get("i"), int):
        raise PreventUpdate
    i, kind = trigger["i"], trigger.get("type")
    if not 0 <= i < len(rows):
        raise PreventUpdate
    rows = list(rows)
    if kind == "screens-pl-del":
        del rows[i]
    elif kind == "screens-pl-up" and i > 0:
        rows[i - 1], rows[i] = rows[i], rows[i - 1]
    elif kind == "screens-pl-down" and i < len(rows) - 1:
        rows[i + 1], rows[i] = rows[i], rows[i + 1]
    else:
        raise PreventUpdate
    return rows


def _message(text: str, ok: bool) -> html.Span:
    return html.Span(text, className="screens-ok" if ok else "screens-error")


def _clicked() -> bool:
    """Whether the callback was triggered by a click (not a button appearing with n_clicks 0)."""
    return bool(ctx.triggered and ctx.triggered[0].get("value"))


OVERVIEW = (("who", "screens-who", "children"), ("count", "screens-count", "children"),
            ("table", "screens-table", "children"), ("banners", "screens-banners", "children"),
            ("log", "screens-log", "children"), ("screen_options", "screens-b-screens", "options"))
EDITOR = (("heading", "screens-editor-title", "children"), ("title", "screens-e-title", "value"),
          ("layout", "screens-e-layout", "value"), ("regions", "screens-e-region", "options"),
          ("region", "screens-e-region", "value"), ("metric", "screens-e-metric", "value"),
          ("tile", "screens-e-tile", "value"), ("sound", "screens-e-sound", "value"))
PL = ("layout", "region", "metric", "dwell")


def register(app: dash.Dash, service: ScreensService) -> None:
    """Register /screens' callbacks (every output id starts with \"screens-\")."""

    @app.callback(*[Output(cid, prop) for _, cid, prop in OVERVIEW],
                  Input("screens-saved", "data"), Input("screens-banner-version", "data"),
                  Input("screens-selected", "data"))
    def overview(_saved: Any, _banners: Any, selected: Any) -> list[Any]:
        try:
            with service.sessions() as session:
                actor = service.actor(session)
                if actor is None:
                    return [SIGNED_OUT] + [no_update] * (len(OVERVIEW) - 1)
                result = service.overview(session, actor, selected)
                return [result[name] for name, _, _ in OVERVIEW]
        except Exception:
            log.exception("screens: the overview failed")
            return [no_update, no_update, html.P(FAILED, className="screens-error"), no_update, no_update, no_update]

    @app.callback(Output("screens-selected", "data"), Input({"type": "screens-pick", "name": ALL}, "n_clicks"),
                  prevent_initial_call=True)
    def pick(_clicks: Any) -> str:
        trigger = ctx.triggered_id
        if not _clicked() or not isinstance(trigger, dict) or not isinstance(trigger.get("name"), str):
            raise PreventUpdate
        return str(trigger["name"])

    @app.callback(*[Output(cid, prop) for _, cid, prop in EDITOR],
                  Output("screens-editor", "className"), Output("screens-save-msg", "children"),
                  Input("screens-selected", "data"), Input("screens-saved", "data"))
    def editor(selected: Any, _saved: Any) -> list[Any]:
        closed = [no_update] * len(EDITOR) + ["gh-panel screens-editor"]
        if selected is None:
            return [*closed, no_update]
        try:
            with service.sessions() as session:
                actor = service.actor(session)
                found = service.editor(session, actor, selected) if actor is not None else None
        except Exception:
            log.exception("screens: the editor of %r failed", selected)
            return [*closed, _message(FAILED, False)]
        if found is None:
            return [*closed, _message(NOT_YOURS, False)]
        keep = ctx.triggered_id == "screens-saved"  # after a save the message stays
        return [found[name] for name, _, _ in EDITOR] + ["gh-panel screens-editor is-open",
                                                          no_update if keep else []]

    @app.callback(Output("screens-pl-rows", "children"),
                  Input("screens-selected", "data"), Input("screens-saved", "data"),
                  Input("screens-pl-add", "n_clicks"),
                  Input({"type": "screens-pl-up", "i": ALL}, "n_clicks"),
                  Input({"type": "screens-pl-down", "i": ALL}, "n_clicks"),
                  Input({"type": "screens-pl-del", "i": ALL}, "n_clicks"),
                  *[State({"type": f"screens-pl-{p}", "i": ALL}, "value") for p in PL],
                  State("screens-e-region", "value"))
    def playlist(selected: Any, _saved: Any, _add: Any, _up: Any, _down: Any, _del: Any,
                 layouts: Any, regions: Any, metrics: Any, dwells: Any, region: Any) -> Any:
        trigger = ctx.triggered_id
        if selected is None:
            raise PreventUpdate
        try:
            with service.sessions() as session:
                actor = service.actor(session)
                if actor is None:
                    raise PreventUpdate
                if trigger in (None, "screens-selected", "screens-saved"):
                    found = service.editor(session, actor, selected)
                    if found is None:
                        return []
                    return view.render_playlist(found["playlist"], found["regions"])
                if not _clicked():
                    raise PreventUpdate
                rows = edit_rows(playlist_rows(layouts, regions, metrics, dwells), trigger,
                                 region if isinstance(region, str) and region else CITY)
                return view.render_playlist(rows, service.regions(session, actor))
        except PreventUpdate:
            raise
        except Exception:
            log.exception("screens: the playlist of %r failed", selected)
            return [_message(FAILED, False)]

    @app.callback(Output("screens-save-msg", "children", allow_duplicate=True), Output("screens-saved", "data"),
                  Input("screens-save", "n_clicks"), State("screens-selected", "data"),
                  *[State(f"screens-e-{f}", "value") for f in ("title", "layout", "region", "metric", "tile",
                                                                "sound")],
                  *[State({"type": f"screens-pl-{p}", "i": ALL}, "value") for p in PL],
                  State("screens-saved", "data"), prevent_initial_call=True)
    def save(clicks: Any, selected: Any, title: Any, layout: Any, region: Any, metric: Any, tile: Any, sound: Any,
             layouts: Any, regions: Any, metrics: Any, dwells: Any, version: Any) -> tuple[Any, Any]:
        if not clicks or selected is None:
            raise PreventUpdate
        edit = Edit(title, layout, region, metric, tile, sound, playlist_rows(layouts, regions, metrics, dwells))
        bump = (version if isinstance(version, int) else 0) + 1
        try:
            return _message(service.save(selected, edit), True), bump
        except (Refused, SpecError, HallError) as exc:
            return _message(str(exc), False), no_update
        except Exception:
            log.exception("screens: saving %r failed", selected)
            return _message(FAILED, False), no_update

    @app.callback(Output("screens-b-msg", "children"), Output("screens-banner-version", "data"),
                  Output("screens-b-text", "value"),
                  Input("screens-b-post", "n_clicks"), Input({"type": "screens-clear", "id": ALL}, "n_clicks"),
                  State("screens-b-text", "value"), State("screens-b-level", "value"),
                  State("screens-b-expiry", "value"), State("screens-b-target", "value"),
                  State("screens-b-screens", "value"), State("screens-banner-version", "data"),
                  prevent_initial_call=True)
    def banner(_post: Any, _clears: Any, text: Any, level: Any, expiry: Any, target: Any, chosen: Any,
               version: Any) -> tuple[Any, Any, Any]:
        trigger = ctx.triggered_id
        if not _clicked():
            raise PreventUpdate
        bump = (version if isinstance(version, int) else 0) + 1
        try:
            if trigger == "screens-b-post":
                return _message(service.post(text, level, expiry, target, chosen), True), bump, ""
            if isinstance(trigger, dict) and trigger.get("type") == "screens-clear":
                return _message(service.clear(trigger.get("id")), True), bump, no_update
            raise PreventUpdate
        except (Refused, SpecError, HallError) as exc:
            return _message(str(exc), False), no_update, no_update
        except PreventUpdate:
            raise
        except Exception:
            log.exception("screens: a banner change failed")
            return _message(FAILED, False), no_update, no_update


    @app.callback(Output("screens-alerts", "children"),
                  Input("screens-alerts-tick", "n_intervals"), Input("screens-alert-version", "data"))
    def alert_list(_n: Any, _version: Any) -> Any:
        try:
            with service.sessions() as session:
                actor = service.actor(session)
                if actor is None:
                    return html.P(SIGNED_OUT, className="screens-error")
                return service.alerts(session, actor)
        except Exception:
            log.exception("screens: the alerts failed")
            return html.P(FAILED, className="screens-error")

    @app.callback(Output("screens-a-msg", "children"), Output("screens-alert-version", "data"),
                  Input({"type": "screens-ack", "id": ALL}, "n_clicks"), State("screens-alert-version", "data"),
                  prevent_initial_call=True)
    def acknowledge(_clicks: Any, version: Any) -> tuple[Any, Any]:
        trigger = ctx.triggered_id
        if not _clicked() or not isinstance(trigger, dict):
            raise PreventUpdate
        try:
            text = service.acknowledge(trigger.get("id"))
            return _message(text, True), (version if isinstance(version, int) else 0) + 1
        except (Refused, AlertError, HallError) as exc:
            return _message(str(exc), False), no_update
        except Exception:
            log.exception("screens: acknowledging %r failed", trigger)
            return _message(FAILED, False), no_update


__all__ = ["Edit", "ScreensService", "edit_rows", "parse_edit", "playlist_rows", "register"]
