"""/screens (大屏管理): the hall's screens for shift leads (their scope) and admins (all). Only Dash
components, no I/O (docs/halls.md, "The screens page").

The page: the table of the screens the viewer may control (each row opens the editor), the
editor (layout, region, metric, mosaic tile, sound, title and the playlist's rows), the
broadcast banners (post, the active ones, clear) and the change record. callbacks/screens.py
fills it and makes the changes through the store. Every text from the database reaches the page
as a Dash prop (rendered by React as text).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from dash import dcc, html

from dashboard.figures.hallpage import BannerRow, ChangeRow, RegionChoice, ScreenRow
from dashboard.rules.screenspec import (
    BANNER_TEXT_MAX,
    DEFAULT_METRIC,
    DWELL_MAX_S,
    DWELL_MIN_S,
    PLAYLIST_LAYOUTS,
    BannerLevel,
    PlaylistEntry,
    ScreenLayout,
)
from dashboard.rules.vocab import GridMetric
from dashboard.settings import Settings

from .kit.fmt import PLACEHOLDER
from .kit.header import header
from .kit.props import attrs

TITLE = "大屏管理"
DWELL_DEFAULT_S = 30  # a new playlist entry's dwell: long enough to read a district's map
# How long a banner stays (value: screenspec.parse_ttl's syntax); the default is the rules' 2 h.
EXPIRIES: tuple[tuple[str, str], ...] = (
    ("30m", "30分钟"), ("1h", "1小时"), ("2h", "2小时"), ("4h", "4小时"), ("8h", "8小时"),
    ("1d", "1天"), ("3d", "3天"), ("7d", "7天"),
)
EXPIRY_DEFAULT = "2h"
TARGET_SCOPE = "scope"  # the banner goes to every screen within the viewer's scope
TARGET_SCREENS = "screens"  # … or to the screens chosen
ACTIONS = {"add": "添加", "set": "修改", "bind": "绑定", "remove": "删除", "post": "发布", "clear": "撤销"}
KINDS = {"screen": "屏幕", "banner": "横幅"}
# The settings' keys as the change record names them, in Chinese.
TARGETS = {"scope": "区域内全部大屏", "screens": "选定的大屏"}  # banners.target
FIELDS = {"title": "标题", "region": "区域", "layout": "版式", "tile": "分块", "metric": "指标",
          "playlist": "轮播", "sound": "声音", "display_user": "大屏账号", "text": "内容", "level": "级别",
          "target": "对象", "screens": "屏幕", "expires_at": "有效期至"}

DROPDOWN_LABELS: dcc.Dropdown.Labels = {"search": "搜索", "clear_search": "清除搜索", "clear_selection": "清除选择",
                                        "no_options_found": "没有匹配的选项", "select_all": "全选",
                                        "deselect_all": "全不选"}


def layout_options(layouts: Sequence[ScreenLayout] = tuple(ScreenLayout)) -> list[dict[str, str]]:
    return [{"label": m.label, "value": m.value} for m in layouts]


def metric_options() -> list[dict[str, str]]:
    return [{"label": m.label, "value": m.value} for m in GridMetric]


def region_options(choices: Sequence[RegionChoice]) -> list[dict[str, str]]:
    """A street is indented under its district (they come by code)."""
    return [{"label": (f"　{c.name}" if c.level == "street" else c.name) + ("" if c.level == "city" else f" {c.code}"),
             "value": c.code} for c in choices]


def _dropdown(cid: Any, options: list[dict[str, str]], value: Any = None, *, clearable: bool = False,
              multi: bool = False, placeholder: str = "请选择") -> dcc.Dropdown:
    return dcc.Dropdown(id=cid, options=options, value=value, clearable=clearable, multi=multi, searchable=True,
                        placeholder=placeholder, className="screens-dropdown", labels=DROPDOWN_LABELS,
                        optionHeight=32, maxHeight=360)


def _field(label: str, control: Any, *, wide: bool = False, for_id: str | None = None) -> html.Div:
    return html.Div(className="screens-field" + (" screens-field--wide" if wide else ""), children=[
        html.Label(label, htmlFor=for_id, className="screens-field__label") if for_id
        else html.Span(label, className="screens-field__label"),
        control,
    ])


def when(at: datetime | None, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%m-%d %H:%M") if at is not None else PLACEHOLDER


def playlist_summary(entries: Sequence[PlaylistEntry], names: dict[str, str]) -> str:
    """A playlist in a table cell: ``3条 · 网格热力图@鼓楼区 30秒 → …``."""
    if not entries:
        return "—"
    steps = [f"{e.layout.label}@{names.get(e.region or 'city', e.region or '全市')} {e.dwell_s}秒" for e in entries]
    return f"{len(entries)}条 · " + " → ".join(steps)


def _online(row: ScreenRow, online: set[int] | None) -> html.Td:
    if row.display_user_id is None or online is None:
        return html.Td(PLACEHOLDER, className="screens-muted")
    if row.display_user_id in online:
        return html.Td("在线", className="screens-ok")
    return html.Td("离线", className="screens-muted")


def render_table(rows: Sequence[ScreenRow], selected: str | None, tz: tzinfo, names: dict[str, str],
                 online: set[int] | None = None) -> Any:
    """The screens table; each row's 编辑 opens the editor. ``online``: the display users whose
    wall is open (None: not known)."""
    if not rows:
        return html.P("辖区内还没有可管理的大屏（管理员用 gridhall screens add 添加）", className="screens-empty")
    head = ["名称", "标题", "区域", "版式", "指标", "轮播", "声音", "大屏账号", "在线", "最后修改", ""]
    body = []
    for r in rows:
        layout = r.layout.label + (f" {r.tile}" if r.tile else "")
        body.append(html.Tr(className="screens-row" + (" is-selected" if r.name == selected else ""),
                            **attrs({"data-screen": r.name}), children=[
            html.Td(r.name, className="screens-cell--name"),
            html.Td(r.title, className="screens-cell--title"),
            html.Td(r.region_name, className="screens-cell--nowrap"),
            html.Td(layout, className="screens-cell--nowrap"),
            html.Td(r.metric.label, className="screens-cell--nowrap"),
            html.Td(playlist_summary(r.playlist, names), className="screens-cell--playlist",
                    title=playlist_summary(r.playlist, names)),
            html.Td("开" if r.sound else "关"),
            html.Td(r.display_user or "未绑定", className="" if r.display_user else "screens-muted"),
            _online(r, online),
            html.Td([html.Span(when(r.updated_at, tz), className="screens-block"),
                     html.Span(r.updated_by, className="screens-block")], className="screens-cell--when"),
            html.Td(html.Button("编辑", id={"type": "screens-pick", "name": r.name}, n_clicks=0,
                                className="screens-btn screens-btn--small", type="button")),
        ]))
    return html.Table(className="screens-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(body)])


def render_playlist(entries: Sequence[dict[str, Any]], regions: list[dict[str, str]]) -> Any:
    """The playlist's rows: layout, region, metric, dwell, ↑ ↓ 删除 (indices in the ids)."""
    if not entries:
        return [html.P("无轮播：大屏固定显示上面的版式", className="screens-empty")]
    n = len(entries)
    rows = []
    for i, e in enumerate(entries):
        rows.append(html.Div(className="screens-pl-row", **attrs({"data-index": str(i)}), children=[
            html.Span(f"{i + 1}", className="screens-pl-no"),
            _dropdown({"type": "screens-pl-layout", "i": i}, layout_options(
                [m for m in ScreenLayout if m in PLAYLIST_LAYOUTS]), e.get("layout")),
            _dropdown({"type": "screens-pl-region", "i": i}, regions, e.get("region")),
            _dropdown({"type": "screens-pl-metric", "i": i}, metric_options(), e.get("metric")),
            html.Div(className="screens-pl-dwell", children=[
                dcc.Input(id={"type": "screens-pl-dwell", "i": i}, type="number", min=DWELL_MIN_S, max=DWELL_MAX_S,
                          step=1, value=e.get("dwell_s"), className="screens-input screens-input--num",
                          debounce=True),
                html.Span("秒", className="screens-muted"),
            ]),
            html.Button("↑", id={"type": "screens-pl-up", "i": i}, n_clicks=0, disabled=i == 0, type="button",
                        className="screens-btn screens-btn--small", title="上移"),
            html.Button("↓", id={"type": "screens-pl-down", "i": i}, n_clicks=0, disabled=i == n - 1,
                        type="button", className="screens-btn screens-btn--small", title="下移"),
            html.Button("删除", id={"type": "screens-pl-del", "i": i}, n_clicks=0, type="button",
                        className="screens-btn screens-btn--small screens-btn--danger"),
        ]))
    return rows


def new_entry(region: str) -> dict[str, Any]:
    """A new playlist row: the map of ``region`` for :data:`DWELL_DEFAULT_S` seconds."""
    return {"layout": ScreenLayout.MAP.value, "region": region, "metric": DEFAULT_METRIC.value,
            "dwell_s": DWELL_DEFAULT_S}


ALERTS_REFRESH_MS = 5000  # the alerts waiting for a shift lead come by themselves


def render_alerts(rows: Sequence[Any], tz: tzinfo, may_ack: bool) -> Any:
    """The alerts waiting in the viewer's scope (``dashboard.store.alerts.ActiveAlert``), each with
    确认 for a shift lead or an admin."""
    if not rows:
        return html.P("当前没有待确认的突发事件预警", className="screens-empty")
    items = []
    for a in rows:
        place = " · ".join(p for p in (a.district, a.street, a.community) if p) or "未定位"
        items.append(html.Li(className="screens-alert", **attrs({"data-alert": str(a.id)}), children=[
            html.Span(("已升级 · " if a.escalated else "") + a.headline, className="screens-alert__tag"),
            html.Span(a.number or a.case_id, className="screens-alert__number"),
            html.Span(" / ".join(p for p in (a.major_name, a.minor_name) if p), className="screens-alert__class"),
            html.Span(f"{place} {a.grid_code or ''}", className="screens-alert__place"),
            html.Span(f"{when(a.raised_at, tz)} 上报", className="screens-muted"),
            html.Button("确认", id={"type": "screens-ack", "id": a.id}, n_clicks=0, type="button",
                        className="screens-btn screens-btn--small screens-btn--danger") if may_ack
            else html.Span("无权确认", className="screens-muted"),
        ]))
    return html.Ul(items, className="screens-alerts")


def render_banners(rows: Sequence[BannerRow], tz: tzinfo) -> Any:
    if not rows:
        return html.P("当前没有生效的横幅通知", className="screens-empty")
    items = []
    for b in rows:
        level = BannerLevel(b.level) if b.level in BannerLevel.labels() else BannerLevel.NOTICE
        items.append(html.Li(className=f"screens-banner screens-banner--{level.value}",
                             **attrs({"data-banner": str(b.id)}), children=[
            html.Span(level.label, className="screens-banner__level"),
            html.Span(b.text, className="screens-banner__text"),
            html.Span(f"→ {b.target} · {b.posted_by} {when(b.posted_at, tz)} 发布，至 {when(b.expires_at, tz)}",
                      className="screens-banner__meta"),
            html.Button("撤销", id={"type": "screens-clear", "id": b.id}, n_clicks=0, type="button",
                        className="screens-btn screens-btn--small screens-btn--danger") if b.may_clear
            else html.Span("无权撤销", className="screens-muted"),
        ]))
    return html.Ul(items, className="screens-banners")


def _value(key: str, value: Any, names: dict[str, str], tz: tzinfo) -> str:
    if value is None or value == []:
        return "—"
    if key == "expires_at" and isinstance(value, str):
        try:
            return when(datetime.fromisoformat(value), tz)
        except ValueError:
            return value
    if key == "target":
        return TARGETS.get(value, str(value))
    if key == "layout" and value in ScreenLayout.labels():
        return ScreenLayout(value).label
    if key == "metric" and value in GridMetric.labels():
        return GridMetric(value).label
    if key == "level" and value in BannerLevel.labels():
        return BannerLevel(value).label
    if key == "region":
        return names.get(value, str(value))
    if key == "sound":
        return "开" if value else "关"
    if key == "playlist" and isinstance(value, list):
        return f"{len(value)}条"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def change_text(c: ChangeRow, names: dict[str, str], tz: tzinfo) -> str:
    """What changed, old → new, in Chinese: ``版式 全景大屏 → 超期案件队列；区域 全市 → 鼓楼区``
    (an object added or posted: what it was set to; removed or cleared: its title or text)."""
    old, new = c.old or {}, c.new or {}
    if c.action in ("add", "post"):
        return "；".join(f"{FIELDS.get(k, k)} {_value(k, v, names, tz)}" for k, v in new.items()
                        if v not in (None, [], False) or k == "region")
    if c.action in ("remove", "clear"):
        return "；".join(f"{FIELDS.get(k, k)} {_value(k, v, names, tz)}" for k, v in old.items()
                        if k in ("title", "text"))
    return "；".join(f"{FIELDS.get(k, k)} {_value(k, old.get(k), names, tz)} → {_value(k, new.get(k), names, tz)}"
                    for k in new)


def render_log(rows: Sequence[ChangeRow], tz: tzinfo, names: dict[str, str]) -> Any:
    if not rows:
        return html.P("还没有修改记录", className="screens-empty")
    head = ["时间", "操作人", "对象", "操作", "内容"]
    body = [html.Tr([
        html.Td(c.at.astimezone(tz).strftime("%m-%d %H:%M:%S"), className="screens-cell--when"),
        html.Td(c.actor), html.Td(f"{KINDS.get(c.kind, c.kind)} {c.object}"),
        html.Td(ACTIONS.get(c.action, c.action)),
        html.Td(change_text(c, names, tz), className="screens-cell--change"),
    ]) for c in rows]
    return html.Table(className="screens-table screens-log", children=[
        html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(body)])


def layout(settings: Settings, *, city: str = "") -> html.Div:
    """The whole /screens page; ``city`` the city's name for the header."""
    del settings  # the page's figures come from its callbacks
    return html.Div(id="screens-root", className="gh-page screens", children=[
        dcc.Store(id="screens-selected", data=None),
        dcc.Store(id="screens-saved", data=0),  # bumped after each save: the table and record again
        dcc.Store(id="screens-banner-version", data=0),  # bumped after a post or a clear
        header(
            city, TITLE,
            html.Nav(className="screens-nav", **attrs({"aria-label": "页面"}), children=[
                dcc.Link("案件钻取", href="/explore", className="screens-link", refresh=True),
            ]),
            html.Div(className="screens-header__right", children=[
                html.Span(id="screens-who", className="screens-who"),
            ]),
            modifier="screens-header",
        ),
        html.Main(className="screens-main", children=[
            html.Section(className="gh-panel screens-listbox", children=[
                html.H2(className="gh-panel__title", children=[
                    "大屏列表", html.Span(id="screens-count", className="screens-note")]),
                html.Div(id="screens-table", className="screens-tablewrap", children=[]),
            ]),
            html.Section(id="screens-editor", className="gh-panel screens-editor", children=[
                html.H2(id="screens-editor-title", className="gh-panel__title", children="编辑大屏"),
                html.P("在左侧列表中选择一块大屏", id="screens-editor-hint", className="screens-empty"),
                html.Div(id="screens-form", className="screens-form", children=[
                    html.Div(className="screens-fields", children=[
                        _field("标题", dcc.Input(id="screens-e-title", type="text", maxLength=100,
                                                className="screens-input", debounce=False), for_id="screens-e-title",
                               wide=True),
                        _field("版式", _dropdown("screens-e-layout", layout_options())),
                        _field("区域", _dropdown("screens-e-region", [])),
                        _field("地图指标", _dropdown("screens-e-metric", metric_options())),
                        _field("拼接墙分块", dcc.Input(id="screens-e-tile", type="text", placeholder="如 3x2:2,1",
                                                   maxLength=16, className="screens-input"),
                               for_id="screens-e-tile"),
                        _field("告警声音", dcc.Checklist(id="screens-e-sound", value=[], className="screens-check",
                                                     options=[{"label": "开启", "value": "on"}],
                                                     inputClassName="screens-check__box")),
                    ]),
                    html.H3(className="screens-subtitle", children=[
                        "轮播", html.Span(f"每条停留 {DWELL_MIN_S}–{DWELL_MAX_S} 秒，至少2条；拼接墙分块不能轮播",
                                        className="screens-note")]),
                    html.Div(id="screens-pl-rows", className="screens-pl", children=[]),
                    html.Div(className="screens-actions", children=[
                        html.Button("添加轮播条目", id="screens-pl-add", n_clicks=0, type="button",
                                    className="screens-btn"),
                        html.Button("保存", id="screens-save", n_clicks=0, type="button",
                                    className="screens-btn screens-btn--primary"),
                        html.Div(id="screens-save-msg", className="screens-msg", role="status", children=[]),
                    ]),
                ]),
            ]),
            html.Section(className="gh-panel screens-bannerbox", children=[
                html.H2(className="gh-panel__title", children="横幅通知"),
                html.Div(className="screens-fields", children=[
                    _field("内容", dcc.Input(id="screens-b-text", type="text", maxLength=BANNER_TEXT_MAX,
                                           placeholder="如：暴雨红色预警，各单位注意积水点", className="screens-input",
                                           debounce=False), for_id="screens-b-text", wide=True),
                    _field("级别", _dropdown("screens-b-level", [{"label": m.label, "value": m.value}
                                                               for m in BannerLevel], BannerLevel.NOTICE.value)),
                    _field("有效期", _dropdown("screens-b-expiry", [{"label": t, "value": v} for v, t in EXPIRIES],
                                            EXPIRY_DEFAULT)),
                ]),
                html.Div(className="screens-fields", children=[
                    _field("发送到", dcc.RadioItems(id="screens-b-target", value=TARGET_SCOPE, inline=True,
                                                 className="screens-radio", inputClassName="screens-check__box",
                                                 options=[{"label": "辖区内全部大屏", "value": TARGET_SCOPE},
                                                          {"label": "选定的大屏", "value": TARGET_SCREENS}])),
                    _field("选定的大屏", _dropdown("screens-b-screens", [], [], multi=True, clearable=True,
                                              placeholder="选择一块或多块大屏"), wide=True),
                ]),
                html.Div(className="screens-actions", children=[
                    html.Button("发布横幅", id="screens-b-post", n_clicks=0, type="button",
                                className="screens-btn screens-btn--primary"),
                    html.Div(id="screens-b-msg", className="screens-msg", role="status", children=[]),
                ]),
                html.H3("生效中的横幅", className="screens-subtitle"),
                html.Div(id="screens-banners", children=[]),
            ]),
            html.Section(className="gh-panel screens-alertbox", children=[
                html.H2(className="gh-panel__title", children=[
                    "突发事件 · 待确认",
                    html.Span("本辖区大屏上正在提示的预警；确认后各大屏撤下", className="screens-note")]),
                html.Div(id="screens-a-msg", className="screens-msg", role="status", children=[]),
                html.Div(id="screens-alerts", children=[]),
                dcc.Interval(id="screens-alerts-tick", interval=ALERTS_REFRESH_MS, n_intervals=0),
                dcc.Store(id="screens-alert-version", data=0),  # bumped after an acknowledgement
            ]),
            html.Section(className="gh-panel screens-logbox", children=[
                html.H2(className="gh-panel__title", children=[
                    "修改记录", html.Span("最新在前，最多50条", className="screens-note")]),
                html.Div(id="screens-log", className="screens-tablewrap", children=[]),
            ]),
        ]),
    ])


__all__ = ["TITLE", "layout", "render_alerts", "render_banners", "render_log", "render_playlist", "render_table"]
