"""Hall screens and banners in the store (dashboard/store/hallscreens.py, banners.py, hallcontrol.py):
the changes, who may make them, the record of who changed what, and what a screen shows now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from citykit import Plan, build_plan
from dashboard.rules.screenspec import (
    BannerLevel,
    ScreenLayout,
    ScreenSetting,
    SpecError,
    parse_playlist,
    parse_tile,
)
from dashboard.rules.vocab import GridMetric
from dashboard.store import banners as bn
from dashboard.store import hallscreens as hs
from dashboard.store.db import transaction
from dashboard.store.hallcontrol import (
    CLI_ACTOR,
    Actor,
    HallDenied,
    HallError,
    actor_for_user,
    changes,
    take_notices,
)
from dashboard.store.models import HallChange, Region, Screen, User
from dashboard.store.users import create_user, disable_user, get_user

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
PLAN: Plan = {
    ("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 1},
                        ("990101002", "松岗街道"): {("990101002001", "松岗社区"): 1}},
    ("990102", "白石区"): {("990102001", "白石街道"): {("990102001001", "白石社区"): 1}},
}
PEOPLE = {  # username → (role, scope)
    "admin": ("admin", None), "qs.shift": ("shift_lead", "990101"), "jd.shift": ("shift_lead", "990101001"),
    "city.shift": ("shift_lead", None), "qs.leader": ("leader", "990101"),
}


@pytest.fixture
def screens_city(sessions: sessionmaker[Session], fresh_scope_cache: None) -> sessionmaker[Session]:
    """Two districts (青山区 with two streets, 白石区), people of every role, display users, and
    three screens: 青山-1 (青山区), 白石-1 (白石区), 全市-1 (the whole city)."""
    with transaction(sessions) as s:
        build_plan(s, PLAN)
        for name, (role, scope) in PEOPLE.items():
            create_user(s, name, role, scope=scope, now=NOW)
        for name in ("wall-qs", "wall-bs", "wall-city", "wall-spare"):
            create_user(s, name, "display", now=NOW)
        hs.add_screen(s, CLI_ACTOR, "青山-1", setting=ScreenSetting(region="990101"), display_user="wall-qs", now=NOW)
        hs.add_screen(s, CLI_ACTOR, "白石-1", setting=ScreenSetting(region="990102"), display_user="wall-bs", now=NOW)
        hs.add_screen(s, CLI_ACTOR, "全市-1", display_user="wall-city", now=NOW)
        take_notices(s)
    return sessions


def _actor(s: Session, name: str) -> Actor:
    user = get_user(s, name)
    assert user is not None
    return actor_for_user(s, user)


def _set(sessions: sessionmaker[Session], who: str, screen: str, **changes: object) -> Screen:
    with transaction(sessions) as s:
        actor = CLI_ACTOR if who == "cli" else _actor(s, who)
        return hs.set_screen(s, actor, screen, now=NOW, **changes)  # type: ignore[arg-type]


def test_add_set_and_remove_are_recorded_with_old_and_new(screens_city: sessionmaker[Session]) -> None:
    with transaction(screens_city) as s:
        screen = hs.set_screen(s, _actor(s, "qs.shift"), "青山-1", layout=ScreenLayout.MAP,
                               metric=GridMetric.OVERDUE, playlist=parse_playlist("map@990101001:30,queue@990101:20"),
                               now=NOW + timedelta(minutes=1))
        assert take_notices(s) == [("screen", "青山-1")]
        assert screen.updated_by == "qs.shift" and screen.updated_at == NOW + timedelta(minutes=1)
    with screens_city() as s:
        row = s.scalars(select(HallChange).where(HallChange.action == "set")).one()
        assert (row.actor, row.kind, row.object) == ("qs.shift", "screen", "青山-1")
        assert row.old == {"layout": "wall", "metric": "open", "playlist": []}
        assert row.new is not None and row.new["layout"] == "map" and row.new["metric"] == "overdue"
        assert row.new["playlist"][0] == {"layout": "map", "region": "990101001", "metric": "open", "dwell_s": 30}
    with transaction(screens_city) as s:
        hs.remove_screen(s, CLI_ACTOR, "白石-1", now=NOW)
    with screens_city() as s:
        assert hs.get_screen(s, "白石-1") is None
        assert get_user(s, "wall-bs") is not None  # the display user stays
        log = changes(s, obj="白石-1")
        assert [c.action for c in log] == ["remove", "add"] and log[0].old["region"] == "990102"  # type: ignore[index]
        assert [x.name for x in hs.list_screens(s)] == ["全市-1", "青山-1"]


def test_nothing_changed_is_neither_logged_nor_announced(screens_city: sessionmaker[Session]) -> None:
    with transaction(screens_city) as s:
        hs.set_screen(s, CLI_ACTOR, "青山-1", layout=ScreenLayout.WALL, region="990101", now=NOW)
        assert take_notices(s) == []
    with screens_city() as s:
        assert [c.action for c in changes(s)] == ["add", "add", "add"]


def test_a_shift_lead_controls_only_screens_within_their_scope(screens_city: sessionmaker[Session]) -> None:
    _set(screens_city, "qs.shift", "青山-1", layout=ScreenLayout.QUEUE)
    _set(screens_city, "qs.shift", "青山-1", region="990101002")  # a street of their district
    for who, screen, changes_, why in [
        ("qs.shift", "白石-1", {"layout": ScreenLayout.MAP}, "another district's screen"),
        ("qs.shift", "全市-1", {"layout": ScreenLayout.MAP}, "the city's screen"),
        ("qs.shift", "青山-1", {"region": "990102"}, "moving their screen out of their scope"),
        ("qs.shift", "青山-1", {"region": None}, "moving it to the whole city"),
        ("qs.shift", "青山-1", {"playlist": parse_playlist("map@990101:30,map@990102:30")}, "a playlist outside"),
        ("jd.shift", "青山-1", {"layout": ScreenLayout.MAP}, "a street lead: a screen of 松岗街道"),
        ("qs.leader", "青山-1", {"layout": ScreenLayout.MAP}, "leaders control nothing"),
        ("wall-qs", "青山-1", {"layout": ScreenLayout.MAP}, "displays control nothing"),
    ]:
        with pytest.raises(HallDenied):
            _set(screens_city, who, screen, **changes_)
            pytest.fail(why)
    _set(screens_city, "city.shift", "全市-1", playlist=parse_playlist("map@990101:30,map@990102:30"))
    _set(screens_city, "admin", "白石-1", layout=ScreenLayout.MAP, sound=True, title="白石区指挥大厅 1号屏")
    with screens_city() as s:
        assert hs.require_screen(s, "青山-1").layout == "queue"
        # the same rule as a question, for a page deciding which controls to show
        qs = _actor(s, "qs.shift")
        assert [hs.may_control_screen(s, qs, x) for x in hs.list_screens(s)] == [False, False, True]
        assert all(hs.may_control_screen(s, _actor(s, "admin"), x) for x in hs.list_screens(s))
        assert not any(hs.may_control_screen(s, _actor(s, "qs.leader"), x) for x in hs.list_screens(s))
        assert hs.require_screen(s, "白石-1").sound is True
        # the shift lead's list is their scope's
        assert [x.name for x in hs.list_screens(s, _actor(s, "qs.shift"))] == ["青山-1"]
        assert len(hs.list_screens(s, _actor(s, "admin"))) == 3


def test_only_admins_add_bind_and_remove(screens_city: sessionmaker[Session]) -> None:
    for who in ("qs.shift", "city.shift", "qs.leader"):
        with pytest.raises(HallDenied, match="only admins"):
            with transaction(screens_city) as s:
                hs.add_screen(s, _actor(s, who), "青山-2", setting=ScreenSetting(region="990101"))
        with pytest.raises(HallDenied, match="only admins"):
            with transaction(screens_city) as s:
                hs.bind_display_user(s, _actor(s, who), "青山-1", None)
        with pytest.raises(HallDenied, match="only admins"):
            with transaction(screens_city) as s:
                hs.remove_screen(s, _actor(s, who), "青山-1")
    with transaction(screens_city) as s:
        hs.add_screen(s, _actor(s, "admin"), "青山-2", setting=ScreenSetting(region="990101"), now=NOW)
    with screens_city() as s:
        assert changes(s, obj="青山-2")[0].actor == "admin"


def test_a_disabled_user_acts_as_nobody(screens_city: sessionmaker[Session]) -> None:
    with transaction(screens_city) as s:
        user = get_user(s, "admin")
        assert user is not None
        disable_user(s, user)
    with screens_city() as s, pytest.raises(HallDenied, match="disabled"):
        _actor(s, "admin")


def test_binding_a_display_user(screens_city: sessionmaker[Session]) -> None:
    def bind(screen: str, username: str | None) -> None:
        with transaction(screens_city) as s:
            hs.bind_display_user(s, CLI_ACTOR, screen, username, now=NOW)

    for username, message in [("qs.shift", "is not a display user"), ("wall-bs", "is bound to screen '白石-1'"),
                              ("ghost", "no user 'ghost'")]:
        with pytest.raises(HallError, match=message):
            bind("青山-1", username)
    bind("青山-1", "wall-spare")
    with screens_city() as s:
        assert hs.require_screen(s, "青山-1").display_user.username == "wall-spare"  # type: ignore[union-attr]
        assert changes(s, obj="青山-1")[0].old == {"display_user": "wall-qs"}
    bind("青山-1", None)
    with screens_city() as s:
        assert hs.require_screen(s, "青山-1").display_user is None
    with transaction(screens_city) as s:
        user = get_user(s, "wall-spare")
        assert user is not None
        disable_user(s, user)
    with pytest.raises(HallError, match="is disabled"):
        bind("青山-1", "wall-spare")
    # The database holds one screen per display user even if a caller skipped the check.
    with pytest.raises(IntegrityError), transaction(screens_city) as s:
        hs.require_screen(s, "青山-1").display_user_id = hs.require_screen(s, "白石-1").display_user_id


def test_a_screens_regions_lie_within_its_display_users_scope(screens_city: sessionmaker[Session]) -> None:
    # Display users carry the city scope today (dashboard/store/users.py); a region-scoped wall
    # gives them a district's: set it directly, as that change will allow.
    with transaction(screens_city) as s:
        user = get_user(s, "wall-qs")
        assert user is not None
        user.scope_region_id = s.scalars(select(Region.id).where(Region.code == "990101")).one()
    _set(screens_city, "cli", "青山-1", region="990101001")
    for changes_ in ({"region": "990102"}, {"region": None},
                     {"playlist": parse_playlist("map@990101:30,map@990102:30")}):
        with pytest.raises(HallError, match="within display user 'wall-qs'"):
            _set(screens_city, "cli", "青山-1", **changes_)
    with pytest.raises(HallError, match="within display user 'wall-qs'"), transaction(screens_city) as s:
        hs.bind_display_user(s, CLI_ACTOR, "青山-1", None)
        hs.bind_display_user(s, CLI_ACTOR, "白石-1", "wall-qs")


def test_bad_settings_and_regions_are_refused(screens_city: sessionmaker[Session]) -> None:
    for changes_, error, message in [
        ({"region": "990199"}, HallError, "no region with code '990199'"),
        ({"layout": ScreenLayout.MOSAIC}, SpecError, "a mosaic screen needs its tile"),
        ({"tile": parse_tile("2x1:1,1")}, SpecError, "only a mosaic screen has a tile"),
    ]:
        with pytest.raises(error, match=message):
            _set(screens_city, "cli", "青山-1", **changes_)
    with pytest.raises(HallError, match="is a community"), transaction(screens_city) as s:
        s.add(Region(code="990101001009", name="小区", level="community",
                     parent_id=s.scalars(select(Region.id).where(Region.code == "990101001")).one()))
        s.flush()
        hs.set_screen(s, CLI_ACTOR, "青山-1", region="990101001009")
    with pytest.raises(HallError, match="exists already"), transaction(screens_city) as s:
        hs.add_screen(s, CLI_ACTOR, "青山-1")
    _set(screens_city, "cli", "青山-1", layout=ScreenLayout.MOSAIC, tile=parse_tile("2x1:2,1"))
    screen = _set(screens_city, "cli", "青山-1", layout=ScreenLayout.MAP)  # leaving mosaic drops the tile
    assert screen.tile is None and screen.layout == "map"


# -- banners -----------------------------------------------------------------------------------
def _post(sessions: sessionmaker[Session], who: str, text: str = "暴雨红色预警，各单位注意积水点", *,
          at: datetime = NOW, **kw: object) -> int:
    with transaction(sessions) as s:
        actor = CLI_ACTOR if who == "cli" else _actor(s, who)
        return bn.post_banner(s, actor, text, now=at, **kw).id  # type: ignore[arg-type]


def _on(sessions: sessionmaker[Session], screen: str, at: datetime) -> list[str]:
    with sessions() as s:
        return [b.text for b in bn.banners_for(s, hs.require_screen(s, screen), now=at)]


def test_banners_reach_their_screens_until_they_expire_or_are_cleared(screens_city: sessionmaker[Session]) -> None:
    _post(screens_city, "cli", "全市通知", ttl=timedelta(hours=1))
    _post(screens_city, "cli", "青山区预警", level=BannerLevel.WARNING, region="990101", ttl=timedelta(minutes=30))
    chosen = _post(screens_city, "cli", "两块屏", screens=["白石-1", "全市-1"], ttl=timedelta(hours=2))
    assert _on(screens_city, "青山-1", NOW) == ["全市通知", "青山区预警"]
    assert _on(screens_city, "白石-1", NOW) == ["全市通知", "两块屏"]
    assert _on(screens_city, "全市-1", NOW) == ["全市通知", "两块屏"]  # a district's banner is not on the city's screen
    # expiry is by time alone
    assert _on(screens_city, "青山-1", NOW + timedelta(minutes=30)) == ["全市通知"]
    assert _on(screens_city, "青山-1", NOW + timedelta(hours=1)) == []
    with transaction(screens_city) as s:
        bn.clear_banner(s, CLI_ACTOR, chosen, now=NOW + timedelta(minutes=5))
        assert take_notices(s) == [("banner", str(chosen))]
    assert _on(screens_city, "白石-1", NOW + timedelta(minutes=5)) == ["全市通知"]
    with pytest.raises(HallError, match="has ended already"), transaction(screens_city) as s:
        bn.clear_banner(s, CLI_ACTOR, chosen, now=NOW + timedelta(minutes=6))
    with screens_city() as s:
        assert [b.text for b in bn.list_banners(s, now=NOW + timedelta(minutes=40))] == ["全市通知"]
        assert len(bn.list_banners(s, now=NOW + timedelta(minutes=40), active_only=False)) == 3
        cleared = s.get(bn.Banner, chosen)
        assert cleared is not None and cleared.cleared_by == "cli"
        assert [c.action for c in changes(s, kind="banner", obj=str(chosen))] == ["clear", "post"]


def test_a_shift_lead_posts_and_clears_within_their_scope(screens_city: sessionmaker[Session]) -> None:
    own = _post(screens_city, "qs.shift", "青山区通知")  # no region: their scope
    with screens_city() as s:
        banner = s.get(bn.Banner, own)
        assert banner is not None and banner.region is not None and banner.region.code == "990101"
        assert banner.posted_by == "qs.shift"
    assert _on(screens_city, "青山-1", NOW) == ["青山区通知"] and _on(screens_city, "白石-1", NOW) == []
    _post(screens_city, "qs.shift", "江东街道", region="990101001")
    _post(screens_city, "qs.shift", "只给青山-1", screens=["青山-1"])
    for kw in ({"region": "990102"}, {"region": "city"}, {"screens": ["青山-1", "白石-1"]}):
        with pytest.raises(HallDenied):
            _post(screens_city, "qs.shift", **kw)
    for who in ("qs.leader", "wall-qs"):
        with pytest.raises(HallDenied):
            _post(screens_city, who)
    city = _post(screens_city, "admin", "全市")
    with screens_city() as s:
        qs = _actor(s, "qs.shift")
        assert [bn.may_clear(qs, b) for b in bn.list_banners(s, now=NOW)] == [False, True, True, True]
    with pytest.raises(HallDenied), transaction(screens_city) as s:
        bn.clear_banner(s, _actor(s, "qs.shift"), city, now=NOW)
    with pytest.raises(HallDenied), transaction(screens_city) as s:
        bn.clear_banner(s, _actor(s, "jd.shift"), own, now=NOW)  # a street lead: the district's banner
    with transaction(screens_city) as s:
        bn.clear_banner(s, _actor(s, "qs.shift"), own, now=NOW)
    with pytest.raises(HallError, match="not both"):
        _post(screens_city, "cli", region="990101", screens=["青山-1"])
    with pytest.raises(HallError, match="no screen named 无此屏"):
        _post(screens_city, "cli", screens=["无此屏"])
    with pytest.raises(SpecError, match="at most 200"):
        _post(screens_city, "cli", "警" * 201)


# -- what a screen shows now ------------------------------------------------------------------
def test_screen_view_by_name_and_by_display_user(screens_city: sessionmaker[Session]) -> None:
    _set(screens_city, "cli", "青山-1", layout=ScreenLayout.MAP, metric=GridMetric.NEW_HOUR, sound=True,
         playlist=parse_playlist("map@990101001:30,map@990101002:30"))
    _post(screens_city, "cli", "晚", ttl=timedelta(hours=2))
    _post(screens_city, "cli", "早", level=BannerLevel.WARNING, region="990101", ttl=timedelta(minutes=10))
    with screens_city() as s:
        view = hs.screen_view(s, name="青山-1", now=NOW)
        user = s.scalars(select(User).where(User.username == "wall-qs")).one()
        assert hs.screen_view(s, user_id=user.id, now=NOW) == view
        assert hs.screen_view(s, name="无此屏", now=NOW) is None
    assert view is not None
    assert (view.layout, view.region, view.region_name, view.metric, view.sound) == (
        ScreenLayout.MAP, "990101", "青山区", GridMetric.NEW_HOUR, True)
    assert view.is_rotating and [e.region for e in view.playlist] == ["990101001", "990101002"]
    assert [(b.text, b.level) for b in view.banners] == [("晚", BannerLevel.NOTICE), ("早", BannerLevel.WARNING)]
    assert view.valid_until == NOW + timedelta(minutes=10)  # the first banner's expiry
    with pytest.raises(AttributeError):
        view.layout = ScreenLayout.WALL  # type: ignore[misc]


class FakeClocks:
    def __init__(self) -> None:
        self.now = NOW
        self.mono = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono


def test_screen_views_are_kept_until_a_notice_an_expiry_or_their_age(screens_city: sessionmaker[Session]) -> None:
    clocks = FakeClocks()
    views = hs.ScreenViews(screens_city, max_age_s=30, clock=clocks.wall, monotonic=clocks.monotonic)
    first = views.by_name("青山-1")
    assert first is not None and first.layout is ScreenLayout.WALL
    for _ in range(5):
        assert views.by_name("青山-1") is first
    assert views.reads == 1
    _set(screens_city, "cli", "青山-1", layout=ScreenLayout.BOARD)
    assert views.by_name("青山-1") is first  # no notice yet: the kept answer
    views.invalidate()
    second = views.by_name("青山-1")
    assert second is not None and second.layout is ScreenLayout.BOARD and views.reads == 2
    # a banner's expiry ends the answer by itself
    _post(screens_city, "cli", "十分钟", ttl=timedelta(minutes=10))
    views.invalidate()
    assert [b.text for b in views.by_name("青山-1").banners] == ["十分钟"]  # type: ignore[union-attr]
    clocks.now = NOW + timedelta(minutes=10)
    assert views.by_name("青山-1").banners == ()  # type: ignore[union-attr]
    reads = views.reads
    # and the age: a notice missed while Redis was away
    _set(screens_city, "cli", "青山-1", layout=ScreenLayout.KPIS)
    clocks.mono += 29
    assert views.by_name("青山-1").layout is ScreenLayout.BOARD  # type: ignore[union-attr]
    clocks.mono += 2
    assert views.by_name("青山-1").layout is ScreenLayout.KPIS  # type: ignore[union-attr]
    assert views.reads == reads + 1
    with screens_city() as s:
        user_id = s.scalars(select(User.id).where(User.username == "wall-bs")).one()
    assert views.by_user(user_id).name == "白石-1"  # type: ignore[union-attr]
    assert views.by_name("无此屏") is None


def test_an_answer_read_while_a_notice_arrived_is_not_kept(screens_city: sessionmaker[Session],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    views = hs.ScreenViews(screens_city)
    real = hs.screen_view

    def racing(session: Session, **kw: object) -> hs.ScreenView | None:
        view = real(session, **kw)  # type: ignore[arg-type]
        views.invalidate()  # the notice of a change lands while this read is under way
        return view

    monkeypatch.setattr(hs, "screen_view", racing)
    views.by_name("青山-1")
    monkeypatch.setattr(hs, "screen_view", real)
    views.by_name("青山-1")
    views.by_name("青山-1")
    assert views.reads == 2  # the first answer was not kept; the second was
