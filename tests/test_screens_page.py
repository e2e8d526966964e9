"""The screens page (/screens, 大屏管理): its callbacks on the server, and the page in Chromium.

Real parts: the app (``create_app``) on the test's database (SQLite, or PostgreSQL with
GRIDHALL_DATABASE_URL) and Redis, Dash's callback requests through the guard and CSRF, a real
``ControlFollower`` reading the control notices the page's saves send, Debian's Chromium.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from authkit import csrf_header, make_user, signin_client, signin_page
from browserkit import PageWatch, serve, shots_dir
from dashboard.rules.screenspec import ScreenLayout, ScreenSetting, Tile, parse_playlist
from dashboard.settings import Settings
from dashboard.store import hallscreens
from dashboard.store.hallcontrol import CLI_ACTOR
from dashboard.store.models import Banner, HallChange, Screen
from feeds.control import ControlFollower, ControlNotice, ControlPublisher
from screenspagekit import HOME, HOME_SCREEN, HOME_STREET, OTHER, OTHER_SCREEN, dash_call, hall_screens, texts

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")

SAVE = "screens-saved.data"
BANNER = "screens-banner-version.data"


@pytest.fixture
def page_app(api_city: dict[str, Any], dash_app: Any, sessions: sessionmaker[Session], redis_client: redis.Redis,
             settings: Settings) -> Any:
    hall_screens(sessions, redis_client, settings)
    return dash_app


def _screen(sessions: sessionmaker[Session], name: str) -> dict[str, Any]:
    with sessions() as s:
        row = s.scalars(select(Screen).where(Screen.name == name)).one()
        return {"layout": row.layout, "region": row.region.code if row.region else None, "metric": row.metric,
                "playlist": row.playlist, "sound": row.sound, "updated_by": row.updated_by}


def _changes(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(HallChange)) or 0


def _save_values(name: str, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "screens-save.n_clicks": 1, "screens-selected.data": name, "screens-e-title.value": "青山区指挥大厅1号屏",
        "screens-e-layout.value": "queue", "screens-e-region.value": HOME_STREET,
        "screens-e-metric.value": "overdue", "screens-e-tile.value": "", "screens-e-sound.value": ["on"],
        "screens-saved.data": 0,
        "screens-pl-layout.value": [({"type": "screens-pl-layout", "i": 0}, "map"),
                                    ({"type": "screens-pl-layout", "i": 1}, "wall")],
        "screens-pl-region.value": [({"type": "screens-pl-region", "i": 0}, HOME),
                                    ({"type": "screens-pl-region", "i": 1}, HOME_STREET)],
        "screens-pl-metric.value": [({"type": "screens-pl-metric", "i": 0}, "open"),
                                    ({"type": "screens-pl-metric", "i": 1}, "overdue")],
        "screens-pl-dwell.value": [({"type": "screens-pl-dwell", "i": 0}, 30),
                                   ({"type": "screens-pl-dwell", "i": 1}, 45)],
    }
    values.update(over)
    return values


class Notices:
    """A real control follower that keeps every notice it reads."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.got: list[ControlNotice] = []
        self.arrived = threading.Event()
        self.follower = ControlFollower(settings, client, self._note, block_ms=100)

    def _note(self, notice: ControlNotice) -> None:
        self.got.append(notice)
        self.arrived.set()


def test_a_district_shift_lead_saves_a_screen_of_the_district(page_app: Any, sessions: sessionmaker[Session],
                                                               settings: Settings,
                                                               redis_client: redis.Redis) -> None:
    lead = make_user(sessions, "shift_lead", region=HOME)
    client = signin_client(page_app.server.test_client(), lead)
    assert client.get("/screens").status_code == 200
    csrf = csrf_header(client)
    notices = Notices(settings, redis_client)
    notices.follower.start()
    try:
        status, out = dash_call(client, page_app, SAVE, _save_values(HOME_SCREEN), ["screens-save.n_clicks"], csrf)
        assert status == 200 and out[SAVE] == 1
        assert "已保存" in texts(out["screens-save-msg.children"])
        assert notices.arrived.wait(3), "no control notice reached the follower"
    finally:
        notices.follower.stop()
    assert [(n.kind, n.ref) for n in notices.got] == [("screen", HOME_SCREEN)]
    saved = _screen(sessions, HOME_SCREEN)
    assert saved == {"layout": "queue", "region": HOME_STREET, "metric": "overdue", "sound": True,
                     "updated_by": lead.username,
                     "playlist": [{"layout": "map", "region": HOME, "metric": "open", "dwell_s": 30},
                                  {"layout": "wall", "region": HOME_STREET, "metric": "overdue", "dwell_s": 45}]}
    with sessions() as s:
        change = s.scalars(select(HallChange).order_by(HallChange.id.desc())).first()
        assert change is not None
        assert (change.actor, change.kind, change.object, change.action) == (lead.username, "screen", HOME_SCREEN,
                                                                             "set")
        assert change.old is not None and change.new is not None
        assert change.old["layout"] == "wall" and change.new["layout"] == "queue"

    # The page shows the change: its table, and the record under the lead's name.
    status, out = dash_call(client, page_app, "screens-table.children",
                            {"screens-saved.data": 1, "screens-selected.data": HOME_SCREEN}, [], csrf)
    assert status == 200
    table, record = texts(out["screens-table.children"]), texts(out["screens-log.children"])
    assert "超期案件队列" in table and "江东街道" in table and "2条" in table
    assert lead.username in record and "超期案件队列" in record


def test_out_of_scope_is_refused_and_changes_nothing(page_app: Any, sessions: sessionmaker[Session]) -> None:
    lead = make_user(sessions, "shift_lead", region=HOME)
    client = signin_client(page_app.server.test_client(), lead)
    client.get("/screens")
    csrf = csrf_header(client)
    before = _screen(sessions, OTHER_SCREEN), _screen(sessions, HOME_SCREEN), _changes(sessions)

    # The table and the banner form offer only the district's screen.
    status, out = dash_call(client, page_app, "screens-table.children", {}, [], csrf)
    assert status == 200
    assert HOME_SCREEN in texts(out["screens-table.children"])
    assert OTHER_SCREEN not in str(out) and "白石区" not in str(out)
    # A crafted payload naming the other district's screen: refused, nothing told of it.
    status, out = dash_call(client, page_app, "screens-e-layout.value", {"screens-selected.data": OTHER_SCREEN},
                            ["screens-selected.data"], csrf)
    assert status == 200 and "无权管理" in texts(out["screens-save-msg.children"])
    assert "白石区指挥大厅" not in str(out)
    status, out = dash_call(client, page_app, SAVE, _save_values(OTHER_SCREEN, **{
        "screens-e-region.value": OTHER, "screens-pl-region.value": []}), ["screens-save.n_clicks"], csrf)
    assert status == 200 and SAVE not in out and "无权管理" in texts(out["screens-save-msg.children"])
    # Its own screen, pointed at the other district (the region or a playlist entry): refused.
    status, out = dash_call(client, page_app, SAVE, _save_values(HOME_SCREEN, **{"screens-e-region.value": OTHER}),
                            ["screens-save.n_clicks"], csrf)
    assert "值班长只能操作其辖区内的屏幕" in texts(out["screens-save-msg.children"])
    status, out = dash_call(client, page_app, SAVE, _save_values(HOME_SCREEN, **{
        "screens-pl-region.value": [({"type": "screens-pl-region", "i": 0}, HOME),
                                    ({"type": "screens-pl-region", "i": 1}, OTHER)]}),
                            ["screens-save.n_clicks"], csrf)
    assert "值班长只能操作其辖区内的屏幕" in texts(out["screens-save-msg.children"])
    # A playlist the rules refuse: the rules' own words.
    status, out = dash_call(client, page_app, SAVE, _save_values(HOME_SCREEN, **{
        "screens-pl-dwell.value": [({"type": "screens-pl-dwell", "i": 0}, 2),
                                   ({"type": "screens-pl-dwell", "i": 1}, 45)]}), ["screens-save.n_clicks"], csrf)
    assert "停留时间须为 5–3600 秒" in texts(out["screens-save-msg.children"])
    # A banner to the other district's screen, and clearing the other district's banner: refused.
    status, out = dash_call(client, page_app, BANNER, {
        "screens-b-post.n_clicks": 1, "screens-b-text.value": "越权通知", "screens-b-level.value": "notice",
        "screens-b-expiry.value": "2h", "screens-b-target.value": "screens",
        "screens-b-screens.value": [OTHER_SCREEN]}, ["screens-b-post.n_clicks"], csrf)
    assert BANNER not in out and "无权管理" in texts(out["screens-b-msg.children"])
    assert (_screen(sessions, OTHER_SCREEN), _screen(sessions, HOME_SCREEN), _changes(sessions)) == before

    other_lead = make_user(sessions, "shift_lead", region=OTHER)
    other = signin_client(page_app.server.test_client(), other_lead)
    other.get("/screens")
    status, out = dash_call(other, page_app, BANNER, {
        "screens-b-post.n_clicks": 1, "screens-b-text.value": "白石区交接班提醒", "screens-b-level.value": "warning",
        "screens-b-expiry.value": "1h", "screens-b-target.value": "scope"}, ["screens-b-post.n_clicks"],
        csrf_header(other))
    assert out[BANNER] == 1 and "已发布横幅通知" in texts(out["screens-b-msg.children"])
    with sessions() as s:
        banner = s.scalars(select(Banner)).one()
        assert banner.region is not None and banner.region.code == OTHER and banner.posted_by == other_lead.username
        banner_id = banner.id
    status, out = dash_call(client, page_app, BANNER, {
        "screens-clear.n_clicks": [({"type": "screens-clear", "id": banner_id}, 1)]},
        [f'{{"id":{banner_id},"type":"screens-clear"}}.n_clicks'], csrf)
    assert "无权撤销" in texts(out["screens-b-msg.children"])
    with sessions() as s:
        assert s.get(Banner, banner_id).cleared_at is None  # type: ignore[union-attr]
    # The other lead's list shows it with 撤销; the first lead's list does not show it at all.
    _, mine = dash_call(client, page_app, "screens-banners.children", {}, [], csrf)
    assert "白石区交接班提醒" not in texts(mine["screens-banners.children"])


def test_an_admin_sees_and_changes_every_screen(page_app: Any, sessions: sessionmaker[Session]) -> None:
    admin = make_user(sessions, "admin")
    client = signin_client(page_app.server.test_client(), admin)
    client.get("/screens")
    csrf = csrf_header(client)
    _, out = dash_call(client, page_app, "screens-table.children", {}, [], csrf)
    assert HOME_SCREEN in texts(out["screens-table.children"]) and OTHER_SCREEN in texts(out["screens-table.children"])
    status, out = dash_call(client, page_app, SAVE, _save_values(OTHER_SCREEN, **{
        "screens-e-layout.value": "districts", "screens-e-region.value": "city", "screens-pl-layout.value": []}),
        ["screens-save.n_clicks"], csrf)
    assert out[SAVE] == 1, out
    assert _screen(sessions, OTHER_SCREEN)["layout"] == "districts"
    assert _screen(sessions, OTHER_SCREEN)["region"] is None and _screen(sessions, OTHER_SCREEN)["playlist"] == []


def test_the_playlist_rows_move_and_read_as_the_rules_want() -> None:
    from dash.exceptions import PreventUpdate

    from callbacks.screens import Edit, edit_rows, parse_edit
    from dashboard.rules.screenspec import ScreenLayout, SpecError

    rows = [{"layout": "map", "region": HOME, "metric": "open", "dwell_s": 30},
            {"layout": "wall", "region": "city", "metric": "overdue", "dwell_s": 45.0}]
    assert edit_rows(rows, {"type": "screens-pl-up", "i": 1}, HOME) == [rows[1], rows[0]]
    assert edit_rows(rows, {"type": "screens-pl-down", "i": 0}, HOME) == [rows[1], rows[0]]
    assert edit_rows(rows, {"type": "screens-pl-del", "i": 0}, HOME) == [rows[1]]
    assert edit_rows(rows, "screens-pl-add", HOME)[-1]["region"] == HOME
    for no_move in ({"type": "screens-pl-up", "i": 0}, {"type": "screens-pl-down", "i": 1},
                    {"type": "screens-pl-del", "i": 7}, {"type": "screens-pl-del", "i": "0"}, None):
        with pytest.raises(PreventUpdate):
            edit_rows(rows, no_move, HOME)
    parsed = parse_edit(Edit(" 标题 ", "mosaic", HOME, "overdue", "2x1:2,1", ["on"], []))
    assert parsed["layout"] is ScreenLayout.MOSAIC and parsed["tile"].text() == "2x1:2,1"
    assert parsed["playlist"] == () and parsed["sound"] is True and parsed["region"] == HOME
    parsed = parse_edit(Edit("t", "wall", "city", "open", "2x1:2,1", None, rows))
    assert parsed["tile"] is None and parsed["region"] is None and parsed["sound"] is False
    assert [(e.region, e.dwell_s) for e in parsed["playlist"]] == [(HOME, 30), (None, 45)]
    for bad in (Edit("t", "<b>", "city", "open", "", [], []), Edit("t", "wall", "99", "open", "", [], []),
                Edit("t", "wall", "city", "open", "", [], rows[:1]),
                Edit("t", "wall", "city", "open", "", [], [{**rows[0], "dwell_s": "x"}, rows[1]])):
        with pytest.raises(SpecError):
            parse_edit(bad)


# -- Chromium ---------------------------------------------------------------------------------------
@pytest.mark.browser
def test_a_shift_lead_changes_a_layout_and_posts_a_banner_in_the_page(browser: Any, page_app: Any,
                                                                      sessions: sessionmaker[Session],
                                                                      settings: Settings, redis_client: redis.Redis,
                                                                      tmp_path: Path) -> None:
    from playwright.sync_api import expect

    lead = make_user(sessions, "shift_lead", region=HOME)
    # More screens of the district, as a hall has them: a mosaic pair and a rotating screen.
    make_user(sessions, "display", username="qingshan-wall-3")
    control = ControlPublisher(redis_client, settings)
    control.commit(sessions, lambda s: [hallscreens.add_screen(
        s, CLI_ACTOR, f"qingshan-m{col}", title=f"青山区拼接墙{col}号", setting=ScreenSetting(
            layout=ScreenLayout.MOSAIC, region=HOME, tile=Tile(cols=2, rows=1, col=col, row=1))) for col in (1, 2)])
    control.commit(sessions, lambda s: hallscreens.add_screen(
        s, CLI_ACTOR, "qingshan-3", title="青山区指挥大厅3号屏", display_user="qingshan-wall-3",
        setting=ScreenSetting(region=HOME_STREET, playlist=parse_playlist(f"map@{HOME}:30,queue@{HOME_STREET}:20"))))
    with serve(page_app.server) as base:
        context = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=1,
                                      locale="zh-CN")
        page = context.new_page()
        watch = PageWatch(page)
        try:
            signin_page(page, base, lead, "/explore")
            page.click("#explore-to-screens")  # /explore links to the page for a shift lead
            expect(page).to_have_url(f"{base}/screens", timeout=10_000)
            row = page.locator(f'tr[data-screen="{HOME_SCREEN}"]')
            expect(row).to_be_visible(timeout=15_000)
            assert page.locator(f'tr[data-screen="{OTHER_SCREEN}"]').count() == 0
            expect(page.locator("tr.screens-row")).to_have_count(4)
            row.get_by_role("button", name="编辑").click()
            expect(page.locator("#screens-editor")).to_have_class("gh-panel screens-editor is-open", timeout=10_000)
            expect(page.locator("#screens-e-title")).to_have_value("青山区指挥大厅1号屏")

            # The layout: 超期案件队列 chosen in the dropdown, then two playlist rows, one moved up.
            page.locator("#screens-e-layout").click()
            page.get_by_role("option", name="超期案件队列").click()
            page.click("#screens-pl-add")
            expect(page.locator(".screens-pl-row")).to_have_count(1, timeout=5000)
            page.click("#screens-pl-add")
            expect(page.locator(".screens-pl-row")).to_have_count(2, timeout=5000)
            page.locator('.screens-pl-row[data-index="1"] input[type=number]').fill("45")
            page.locator('.screens-pl-row[data-index="1"] input[type=number]').press("Tab")
            page.locator('.screens-pl-row[data-index="1"]').get_by_role("button", name="↑").click()
            expect(page.locator('.screens-pl-row[data-index="0"] input[type=number]')).to_have_value("45",
                                                                                                  timeout=5000)
            page.click("#screens-save")
            expect(page.locator("#screens-save-msg")).to_contain_text("已保存", timeout=10_000)
            expect(row).to_contain_text("超期案件队列", timeout=10_000)
            saved = _screen(sessions, HOME_SCREEN)
            assert saved["layout"] == "queue" and saved["updated_by"] == lead.username
            assert [e["dwell_s"] for e in saved["playlist"]] == [45, 30]

            # A banner to every screen of the district.
            page.fill("#screens-b-text", "暴雨红色预警，各单位注意积水点")
            page.locator("#screens-b-level").click()
            page.get_by_role("option", name="预警").click()
            page.click("#screens-b-post")
            expect(page.locator("#screens-b-msg")).to_contain_text("已发布横幅通知", timeout=10_000)
            expect(page.locator("#screens-banners .screens-banner--warning")).to_contain_text(
                "暴雨红色预警，各单位注意积水点", timeout=10_000)
            expect(page.locator("#screens-log")).to_contain_text("发布", timeout=10_000)
            with sessions() as s:
                banner = s.scalars(select(Banner)).one()
                assert banner.level == "warning" and banner.region is not None and banner.region.code == HOME
            shots = shots_dir(tmp_path)
            page.screenshot(path=str(shots / "screens-1920x1080.png"), full_page=True)
            page.set_viewport_size({"width": 3840, "height": 2160})
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / "screens-3840x2160.png"))
            # A dropdown opened at 4K lies under its control (the page is zoomed; its list is not).
            page.locator("#screens-e-metric").click()
            option = page.get_by_role("option", name="超期案件")
            expect(option).to_be_visible(timeout=5000)
            control_box, option_box = page.locator("#screens-e-metric").bounding_box(), option.bounding_box()
            assert control_box is not None and option_box is not None
            page.screenshot(path=str(shots / "screens-dropdown-3840x2160.png"))
            # (it may be wider than its control and moved left to stay on the screen)
            assert option_box["x"] <= control_box["x"] + control_box["width"] and \
                option_box["x"] + option_box["width"] >= control_box["x"] + control_box["width"] / 2
            assert option_box["x"] + option_box["width"] <= 3840 and 0 < option_box["y"] - control_box["y"] < 400
            page.keyboard.press("Escape")
            # Nothing spills sideways at 4K: the page is as wide as the screen.
            assert page.evaluate("() => document.querySelector('#screens-root').scrollWidth") <= \
                page.evaluate("() => document.querySelector('#screens-root').clientWidth") + 1
            assert watch.errors == [] and watch.dialogs == []
            watch.assert_local_only()
        finally:
            context.close()


@pytest.mark.browser
def test_a_leader_has_no_link_and_no_page(browser: Any, page_app: Any, sessions: sessionmaker[Session]) -> None:
    leader = make_user(sessions, "leader")
    with serve(page_app.server) as base:
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()
        try:
            signin_page(page, base, leader, "/explore")
            page.wait_for_selector("#explore-root", timeout=15_000)
            assert page.locator("#explore-to-screens").count() == 0
            assert page.goto(f"{base}/screens").status == 403  # type: ignore[union-attr]
        finally:
            context.close()


def test_the_table_says_which_bound_screens_have_their_wall_open(page_app: Any, sessions: sessionmaker[Session],
                                                                 settings: Settings,
                                                                 redis_client: redis.Redis) -> None:
    """在线: the screen's display user has a session that asked for /wall within the minute
    (feeds/screens.py, as the web workers note it); 离线 before; — for a screen with no display user."""
    from authkit import display_token
    from feeds.screens import FLUSH_EVERY_S, ScreenLog, screen_name, users_on
    from feeds.sessionstore import SessionStore

    wall_user = make_user(sessions, "display", username="qingshan-wall-9")
    ControlPublisher(redis_client, settings).commit(sessions, lambda s: hallscreens.add_screen(
        s, CLI_ACTOR, "qingshan-9", title="青山区指挥大厅9号屏", display_user="qingshan-wall-9",
        setting=ScreenSetting(region=HOME)))
    lead = make_user(sessions, "shift_lead", region=HOME)
    client = signin_client(page_app.server.test_client(), lead)
    client.get("/screens")

    def cells() -> list[str]:
        _, out = dash_call(client, page_app, "screens-table.children", {}, [], csrf_header(client))
        body = out["screens-table.children"]["props"]["children"][1]["props"]["children"]
        return [texts(row["props"]["children"][8]) for row in body]  # 在线, per screen by name

    assert cells() == ["—", "离线"]  # qingshan-1 has no display user; qingshan-9's wall is not open
    wall = page_app.server.test_client()
    assert wall.get(f"/wall?token={display_token(sessions, wall_user)}").status_code == 303
    assert wall.get("/wall").status_code == 200  # the worker notes the screen …
    time.sleep(FLUSH_EVERY_S + 0.2)
    assert wall.get("/wall").status_code == 200  # … and writes what it saw at most every FLUSH_EVERY_S
    assert cells() == ["—", "在线"]

    # The same from the parts: a session of the user seen on /wall, another page not counted.
    store = SessionStore(redis_client, settings)
    other = make_user(sessions, "display")
    sid = store.create(other.user_id, timedelta(hours=1))
    log = ScreenLog(redis_client, settings, flush_every_s=0)
    log.seen("screens", "city", screen_name(sid))
    assert other.user_id not in users_on(redis_client, settings, "wall", [other.user_id])
    log.seen("wall", "city", screen_name(sid))
    assert users_on(redis_client, settings, "wall", [other.user_id, lead.user_id]) == {other.user_id}
    assert users_on(redis_client, settings, "wall", []) == set()
