"""The live page: refresh logic, /healthz, gunicorn entry point, and a real browser.

Browser tests start ``create_app(settings)`` on a werkzeug server in a thread and drive the
Debian Chromium through Playwright (both from tests/browserkit.py). Set GRIDHALL_SHOTS_DIR to keep the screenshots.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from dash import no_update
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from authkit import csrf_header, make_user, signin_client, signin_page
from browserkit import LiveServer, PageWatch, shots_dir
from callbacks.live import LiveService, parse_health
from dashboard.rules.classification import Classification
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType, LifecycleEvent, Stage, fold
from dashboard.settings import Settings
from dashboard.store import db, queries
from dashboard.store.models import Case, CaseEvent, ClassificationEntry, Grid, Region
from feedkit import set_health

REPO = Path(__file__).resolve().parent.parent
XSS = "<script>alert(1)</script>井盖缺失"



# -- seeding ----------------------------------------------------------------------------------
@dataclass
class Seeded:
    reported: int
    filed: int
    dispatched: int
    disposing: int
    closed: int


def _case(session: Session, case_id: str, stage: Stage, **fields: Any) -> Case:
    case = Case(case_id=case_id, number=fields.pop("number", case_id), stage=str(stage), **fields)
    session.add(case)
    session.flush()
    return case


def _event(session: Session, case_id: str, type_: str, at: datetime) -> CaseEvent:
    ev = CaseEvent(
        event_id=f"{case_id}-{type_}-{at.timestamp()}",
        case_id=case_id,
        type=type_,
        occurred_at=at,
        received_at=at,
        payload={},
    )
    session.add(ev)
    session.flush()
    return ev


def today_instant(settings: Settings) -> datetime:
    """A moment earlier today (local), never before local midnight."""
    now = utcnow()
    start = queries.day_window(settings.tz, now).start
    return max(now - timedelta(minutes=3), start + timedelta(seconds=1))


def wait_clear_of_midnight(settings: Settings) -> None:
    """Browser tests compare "today" figures; do not straddle the local midnight."""
    now = utcnow()
    left = (queries.day_window(settings.tz, now).end - now).total_seconds()
    if left < 40:
        time.sleep(left + 1)


def seed_small(sessions: sessionmaker[Session], settings: Settings) -> Seeded:
    """Five cases with known figures, one of them carrying markup in its description."""
    today = today_instant(settings)
    yesterday = today - timedelta(days=1, hours=1)
    with db.transaction(sessions) as s:
        _case(s, "20260001", Stage.REPORTED, reported_at=today)
        _case(s, "20260002", Stage.DISPATCHED, reported_at=today, filed_at=today, dispatched_at=today)
        _case(s, "20260003", Stage.SUSPENDED, reported_at=yesterday, filed_at=yesterday,
              dispatched_at=yesterday)
        _case(s, "20260004", Stage.CLOSED, reported_at=today, filed_at=today, dispatched_at=today,
              handled_at=today, checked_at=today, closed_at=today)
        _case(s, "20260005", Stage.REPORTED, reported_at=today, description=XSS)
        for cid, type_ in (("20260003", "suspended"), ("20260001", "reported"), ("20260002", "dispatched"),
                           ("20260004", "closed"), ("20260005", "reported")):
            _event(s, cid, type_, today)
    return Seeded(reported=4, filed=2, dispatched=2, disposing=2, closed=1)


# -- LiveService without a browser ------------------------------------------------------------
def broken_redis() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, socket_timeout=0.5)


def broken_sessions(tmp_path: Path) -> sessionmaker[Session]:
    # A SQLite file in a folder that does not exist: every connect fails at once.
    return db.session_factory(create_engine(f"sqlite:///{tmp_path}/missing/dir/x.db"))


def test_parse_health_tolerates_partial_and_bad_fields() -> None:
    h = parse_health({"heartbeat_at": "2026-11-25T10:00:00+08:00", "applied_total": "12",
                      "dead_total": "many", "last_batch_at": "yesterday"})
    assert h.heartbeat_at == datetime(2026, 11, 25, 2, tzinfo=UTC)
    assert (h.applied_total, h.dead_total, h.duplicates_total, h.last_batch_at) == (12, None, None, None)
    assert parse_health({"heartbeat_at": "2026-11-25T02:00:00"}).heartbeat_at.tzinfo is not None  # type: ignore[union-attr]


def test_refresh_sends_nothing_until_something_changes(
    settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    seeded = seed_small(sessions, settings)
    set_health(redis_client, settings, applied_total=5)
    service = LiveService(settings, sessions, redis_client)
    first = service.refresh(None)
    assert first is not None
    assert first.kpis == [str(seeded.reported), str(seeded.filed), str(seeded.dispatched),
                          str(seeded.disposing), str(seeded.closed)]
    assert first.banner == [] and first.root_class == "gh-page"
    store = first.store
    assert service.refresh(store) is None  # nothing changed: PreventUpdate
    assert service.refresh(store) is None

    with db.transaction(sessions) as s:
        _case(s, "20260006", Stage.REPORTED, reported_at=today_instant(settings))
        _event(s, "20260006", "reported", today_instant(settings))
    second = service.refresh(store)
    assert second is not None and second.kpis[0] == str(seeded.reported + 1)

    store = second.store
    set_health(redis_client, settings, applied_total=6, dead_total=2)
    third = service.refresh(store)
    assert third is not None
    feed_text = json.dumps(third.feed, default=lambda c: c.to_plotly_json(), ensure_ascii=False)
    assert "死信" in feed_text and "is-alarm" in feed_text


def test_stale_heartbeat_raises_the_banner_and_it_clears(
    settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    service = LiveService(settings, sessions, redis_client)
    old = utcnow() - timedelta(seconds=45)
    set_health(redis_client, settings, heartbeat_at=old.isoformat())
    stale = service.refresh(None)
    assert stale is not None and stale.banner_class == "gh-banner is-on"
    detail = stale.banner[1].children
    assert old.astimezone(settings.tz).strftime("%H:%M:%S") in detail and "未收到数据接入心跳" in detail
    assert service.refresh(stale.store) is None  # still stale, same fingerprint

    set_health(redis_client, settings)
    fresh = service.refresh(stale.store)
    assert fresh is not None and fresh.banner == [] and fresh.banner_class == "gh-banner"


def test_no_heartbeat_at_all_is_a_stop(
    settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    update = LiveService(settings, sessions, redis_client).refresh(None)
    assert update is not None and "尚未收到数据接入心跳" in update.banner[1].children


def test_redis_down_keeps_database_figures(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    seeded = seed_small(sessions, settings)
    update = LiveService(settings, sessions, broken_redis()).refresh(None)
    assert update is not None
    assert "数据接入服务无法连接" in update.banner[1].children
    assert update.kpis[0] == str(seeded.reported)


def test_database_down_shows_banner_not_traceback(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    set_health(redis_client, settings)
    service = LiveService(settings, broken_sessions(tmp_path), redis_client)
    first = service.refresh(None)
    assert first is not None
    assert "数据库无法连接" in first.banner[1].children
    assert "暂无数据" in first.events.children  # never "正在加载…" forever
    assert service.refresh(first.store) is None
    # A browser that already shows figures keeps them (faded) instead of blanking.
    kept = service.refresh({"fp": "older", "has_data": True})
    assert kept is not None and kept.events is no_update and kept.kpis[0] is no_update
    assert kept.root_class == "gh-page is-stale"


# -- app factory, /healthz, gunicorn ----------------------------------------------------------
@pytest.fixture
def lead_client(dash_app: Any, sessions: sessionmaker[Session]) -> Any:
    """A test client signed in as a city-wide shift lead, holding the live page's CSRF cookie."""
    client = signin_client(dash_app.server.test_client(), make_user(sessions, "shift_lead"))
    assert client.get("/live").status_code == 200
    return client


def test_healthz(dash_app: Any) -> None:
    import app as appmod

    client = dash_app.server.test_client()
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"database": "ok", "redis": "ok"}
    dash_app.server.extensions[appmod.EXTENSION_KEY].redis = broken_redis()
    r = client.get("/healthz")
    assert r.status_code == 503 and r.get_json() == {"database": "ok", "redis": "error"}


def _poll(client: Any, stored: Any = None) -> Any:
    """POST one refresh the way the browser's Dash renderer does."""
    from callbacks.live import outputs

    outs = [{"id": o.component_id, "property": o.component_property} for o in outputs()]
    body = {
        # Dash's key for a multi-output callback: "..a.b...c.d.."
        "output": ".." + "...".join(f"{o['id']}.{o['property']}" for o in outs) + "..",
        "outputs": outs,
        "inputs": [{"id": "live-tick", "property": "n_intervals", "value": 1}],
        "state": [{"id": "live-fp", "property": "data", "value": stored}],
        "changedPropIds": ["live-tick.n_intervals"],
    }
    return client.post("/_dash-update-component", json=body, headers=csrf_header(client))


def test_refresh_over_http_and_errors_become_a_banner(dash_app: Any, lead_client: Any, monkeypatch: Any) -> None:
    import app as appmod

    client = lead_client
    first = _poll(client)
    assert first.status_code == 200
    stored = first.get_json()["response"]["live-fp"]["data"]
    assert _poll(client, stored).status_code == 204  # unchanged: nothing sent

    def boom(_stored: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(dash_app.server.extensions[appmod.EXTENSION_KEY].services.live, "refresh", boom)
    failed = _poll(client, stored)
    assert failed.status_code == 200
    text = failed.get_data(as_text=True)
    assert "数据已停止更新" in text and "secret internals" not in text and "Traceback" not in text


def test_web_engine_bounds_waits_on_postgresql(dash_app: Any) -> None:
    from sqlalchemy import text

    import app as appmod

    engine = dash_app.server.extensions[appmod.EXTENSION_KEY].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("statement_timeout is a PostgreSQL setting")
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "10s"


def test_index_is_zh_cn_and_local_only(dash_app: Any, lead_client: Any, settings: Settings) -> None:
    client = lead_client
    for path in ("/live", "/explore", "/view", "/wall"):
        r = client.get(path)
        html = r.get_data(as_text=True)
        assert r.status_code == 200
        assert '<html lang="zh-CN">' in html
        assert "<title>数字化城市管理 · 实时态势</title>" in html  # a city imported without a name
        srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert srcs and all(s.startswith("/") for s in srcs), srcs
    assert "update_title" not in html or '"update_title":null' in html


def test_server_is_built_lazily_from_the_environment(
    settings: Settings, engine: Any, tmp_path: Path
) -> None:
    env = _child_env(settings)
    code = (
        "import app, sys; assert '_server' in vars(app) and app._server is None; "
        "s = app.server; assert s is app.server; print(type(s).__name__, s.name)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "Flask"


def test_gunicorn_serves_app_server(settings: Settings, engine: Any, tmp_path: Path) -> None:
    port = _free_port()
    env = _child_env(settings) | {"GRIDHALL_HOST": "127.0.0.1", "GRIDHALL_PORT": str(port),
                                  "GRIDHALL_WEB_WORKERS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"),
                             "app:server"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = _get_when_up(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert json.loads(body) == {"database": "ok", "redis": "ok"}
        assert '<html lang="zh-CN">' in _get_when_up(f"http://127.0.0.1:{port}/live", timeout=10)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "GET /healthz" in out  # access log on stdout
    assert "gthread" in out


def _child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(
        GRIDHALL_DATA_DIR=str(settings.data_dir),
        GRIDHALL_DATABASE_URL=settings.effective_database_url,
        GRIDHALL_REDIS_PREFIX=settings.redis_prefix,
        # Run from an empty folder (no .env, no gridhall.toml) with the repo importable.
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    )
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_when_up(url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


# -- the browser (fixtures from tests/browserkit.py) --------------------------------------------
@pytest.fixture
def live_url(live_server: LiveServer) -> str:
    return live_server.url


def kpi(page: Any, key: str) -> str:
    return page.inner_text(f"#kpi-{key}").strip()


@pytest.mark.browser
def test_live_page_in_browser(
    browser: Any, live_url: str, settings: Settings, sessions: sessionmaker[Session],
    redis_client: redis.Redis, tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    wait_clear_of_midnight(settings)
    seeded = seed_small(sessions, settings)
    set_health(redis_client, settings, applied_total=5, dead_total=1)
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch = PageWatch(page)
    signin_page(page, live_url, make_user(sessions, "shift_lead"), next_path="/live")
    expect(page).to_have_title("数字化城市管理 · 实时态势")  # a city imported without a name
    expect(page.locator("#kpi-reported")).to_have_text(str(seeded.reported), timeout=15_000)
    assert [kpi(page, k) for k in ("reported", "filed", "dispatched", "disposing", "closed")] == [
        str(seeded.reported), str(seeded.filed), str(seeded.dispatched), str(seeded.disposing),
        str(seeded.closed)]
    assert page.get_attribute("html", "lang") == "zh-CN"
    expect(page.locator("#live-banner")).to_be_hidden()
    expect(page.locator("#live-events tbody tr")).to_have_count(5)
    expect(page.locator("#live-clock")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(page.locator("#live-updated")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(page.locator("#live-feed")).to_contain_text("死信")

    # Markup in a description is text: visible literally, no script element, no dialog.
    expect(page.locator("#live-events")).to_contain_text("<script>alert(1)</script>")
    assert page.locator("#live-events script").count() == 0

    # Unchanged data: the 2 s polls come back empty (204), nothing is re-sent.
    with page.expect_response(lambda r: "_dash-update-component" in r.url, timeout=10_000) as poll:
        pass
    assert poll.value.status == 204

    # One more event and a health bump: the page follows within a few seconds.
    at = utcnow()
    with db.transaction(sessions) as s:
        _case(s, "20260099", Stage.REPORTED, reported_at=at, number="20260099")
        _event(s, "20260099", "reported", at)
    set_health(redis_client, settings, applied_total=6, dead_total=1)
    expect(page.locator("#kpi-reported")).to_have_text(str(seeded.reported + 1), timeout=8_000)
    expect(page.locator("#live-events tbody tr").first).to_contain_text("20260099")

    # Heartbeat goes quiet: the red banner; it comes back: the banner leaves by itself.
    set_health(redis_client, settings, heartbeat_at=(utcnow() - timedelta(seconds=40)).isoformat(),
               applied_total=6)
    expect(page.locator("#live-banner")).to_be_visible(timeout=8_000)
    expect(page.locator("#live-banner")).to_contain_text("数据已停止更新")
    page.screenshot(path=str(shots_dir(tmp_path) / "live-stale-1920x1080.png"))
    set_health(redis_client, settings, applied_total=6)
    expect(page.locator("#live-banner")).to_be_hidden(timeout=8_000)

    page.goto(live_url + "/live")
    expect(page.locator("#kpi-reported")).to_have_text(str(seeded.reported + 1), timeout=15_000)
    assert watch.dialogs == []
    assert watch.failures == []
    assert watch.errors == []

    # The web server stops answering: the browser raises its own banner, and drops it again.
    polls = lambda url: "/_dash-update-component" in url  # noqa: E731 - Dash adds a query
    page.route(polls, lambda route: route.abort())
    offline = page.locator("#live-offline")
    expect(offline).to_be_visible(timeout=15_000)
    expect(offline).to_contain_text("与服务器的连接已中断")
    page.screenshot(path=str(shots_dir(tmp_path) / "live-offline-1920x1080.png"))
    page.unroute(polls)
    expect(offline).to_be_hidden(timeout=8_000)

    watch.assert_local_only()
    page.close()


# -- a realistic city, for screenshots and layout checks -------------------------------------
STREETS = {
    "城东区": ["东湖街道", "望江街道", "凯旋街道"],
    "城西区": ["西溪街道", "翠苑街道", "文新街道"],
}
COMMUNITY_NAMES = ["和平社区", "新华社区", "景华社区", "春江社区", "枫桥社区", "桂花社区",
                   "朝晖社区", "青园社区", "梅林社区", "金色家园社区", "兴隆社区", "长庆社区",
                   "映月社区", "紫荆社区", "南苑社区", "北山社区", "三墩社区", "古荡社区"]
DESCRIPTIONS = {
    "01": ["人行道上井盖破损下陷，存在行人绊倒隐患", "井盖缺失，已临时放置锥桶", "路灯夜间不亮，路段照明不足"],
    "02": ["交通护栏被车辆撞歪，部分倒伏在非机动车道", "路名牌褪色字迹不清", "减速带螺丝松动脱落"],
    "03": ["垃圾箱满溢，周边散落生活垃圾", "公共厕所洗手池堵塞", "宣传栏玻璃破碎"],
    "04": ["行道树枝干断裂悬挂在人行道上方", "绿地护栏缺损", "树池内堆放建筑垃圾"],
}
ADDRESSES = ["文一路与学院路交叉口东北角", "解放路182号门前", "庆春路地铁站C口", "凤起路菜场北侧",
             "体育场路与中河路口", "莫干山路98号", "天目山路公交站旁", "东新路小区南门"]


def seed_city(
    sessions: sessionmaker[Session], settings: Settings, now: datetime, n_cases: int = 360
) -> None:
    """A few hundred cases through the lifecycle up to ``now``, events in arrival order."""
    rng = random.Random(20261125)
    day_start = queries.day_window(settings.tz, now).start
    work_start = day_start + timedelta(hours=7)
    scheme = Classification.from_settings(settings)
    classes = [e for e in scheme if e.kind.value == "event" and e.major_code in DESCRIPTIONS
               and not re.search(r"[A-Za-z]", e.minor_name)]
    with db.transaction(sessions) as s:
        s.add_all(
            ClassificationEntry(scheme=scheme.name, kind=e.kind.value, major_code=e.major_code,
                                major_name=e.major_name, minor_code=e.minor_code,
                                minor_name=e.minor_name, extension=e.extension, provenance=e.provenance)
            for e in scheme
        )
        grids: list[Grid] = []
        names = iter(COMMUNITY_NAMES)
        for d, (district_name, streets) in enumerate(STREETS.items(), start=1):
            district = Region(code=f"9999{d:02d}", name=district_name, level="district")
            s.add(district)
            s.flush()
            for st, street_name in enumerate(streets, start=1):
                street = Region(code=f"{district.code}{st:03d}", name=street_name, level="street",
                                parent_id=district.id)
                s.add(street)
                s.flush()
                for c in range(1, 4):
                    community = Region(code=f"{street.code}{c:03d}", name=next(names),
                                       level="community", parent_id=street.id)
                    s.add(community)
                    s.flush()
                    for g in range(1, 7):
                        grid = Grid(code=f"{community.code}{g:03d}", community_id=community.id,
                                    geometry="{}", area_m2=10_000.0, centroid_lon=120.15,
                                    centroid_lat=30.28)
                        s.add(grid)
                        grids.append(grid)
        s.flush()
        weights = [min(rng.paretovariate(1.3), 12.0) for _ in grids]  # a few hotspots, a long tail

        happened: list[LifecycleEvent] = []
        cases: dict[str, dict[str, Any]] = {}
        paths = [
            (["reported"], 10), (["reported", "verified"], 5), (["reported", "filed"], 6),
            (["reported", "filed", "dispatched"], 22), (["reported", "filed", "dispatched", "returned"], 3),
            (["reported", "filed", "dispatched", "suspended"], 3),
            (["reported", "filed", "dispatched", "handled"], 8),
            (["reported", "filed", "dispatched", "handled", "checked_ok"], 4),
            (["reported", "filed", "dispatched", "handled", "checked_ok", "closed"], 30),
            (["reported", "filed", "dispatched", "handled", "rework", "handled", "checked_ok", "closed"], 4),
            (["reported", "rejected"], 3), (["reported", "self_handled", "closed"], 6),
        ]
        for i in range(n_cases):
            # Two thirds reported today since 07:00, the rest over the previous two days.
            if rng.random() < 0.67:
                start = work_start + (now - work_start) * rng.random() ** 0.8
            else:
                start = day_start - timedelta(hours=rng.uniform(1, 48))
            cls = rng.choice(classes)
            case_id = f"C{i:05d}"
            local_day = start.astimezone(settings.tz).strftime("%Y%m%d")
            cases[case_id] = {
                "number": f"{local_day}{i + 1:05d}", "kind": "event", "class_code": cls.minor_code,
                "grid": rng.choices(grids, weights)[0],
                "description": rng.choice(DESCRIPTIONS[cls.major_code]),
                "address": rng.choice(ADDRESSES),
                "urgency": "urgent" if rng.random() < 0.08 else "normal",
            }
            path = rng.choices([p for p, _ in paths], [w for _, w in paths])[0]
            at = start
            for step, type_ in enumerate(path):
                if step:
                    at = at + timedelta(minutes=rng.uniform(4, 90))
                if at >= now:
                    break
                happened.append(LifecycleEvent(f"{case_id}-{step}", case_id, EventType(type_), at))
        happened.sort(key=LifecycleEvent.sort_key)
        by_case: dict[str, list[LifecycleEvent]] = {}
        for ev in happened:
            by_case.setdefault(ev.case_id, []).append(ev)
            s.add(CaseEvent(event_id=ev.event_id, case_id=ev.case_id, type=ev.type.value,
                            occurred_at=ev.occurred_at,
                            received_at=min(now, ev.occurred_at + timedelta(seconds=rng.uniform(0.5, 4))),
                            source="supervisor", payload={}))
        for case_id, events in by_case.items():
            state, rejected = fold(case_id, events)
            assert not rejected and state.stage is not None
            info = cases[case_id]
            s.add(Case(
                case_id=case_id, number=info["number"], source="supervisor", kind=info["kind"],
                class_code=info["class_code"], grid_id=info["grid"].id, address=info["address"],
                description=info["description"], urgency=info["urgency"], stage=state.stage.value,
                reported_at=state.reported_at, verified_at=state.verified_at, filed_at=state.filed_at,
                dispatched_at=state.dispatched_at, handled_at=state.handled_at,
                checked_at=state.checked_at, closed_at=state.closed_at, last_event_at=state.last_event_at,
                rework_count=state.rework_count, return_count=state.return_count,
            ))


LAYOUT_PROBE = """() => {
  const out = {};
  const px = (el) => parseFloat(getComputedStyle(el).fontSize);
  out.rootPx = px(document.documentElement);
  out.smallestPx = Math.min(...[...document.querySelectorAll('.gh-page *')]
      .filter(e => e.childElementCount === 0 && e.innerText && e.innerText.trim())
      .map(px));
  out.pageOverflow = document.documentElement.scrollHeight - window.innerHeight;
  out.clipped = [];
  for (const body of document.querySelectorAll('.gh-panel__body, .gh-kpi, .gh-footer, .gh-header')) {
    const box = body.getBoundingClientRect();
    for (const el of body.querySelectorAll('tr, li, .gh-bar, .gh-kpi__value, .gh-feed__item, .gh-clock')) {
      const r = el.getBoundingClientRect();
      if (r.bottom > box.bottom + 1 || r.right > box.right + 1) out.clipped.push(el.className || el.tagName);
    }
  }
  // Identifiers and figures must never be cut short (descriptions and class names may be).
  // Try the widest forms: an event of another day and a 15-character case number.
  const first = document.querySelector('.gh-events tbody tr');
  first.querySelector('.gh-col-0').innerText = '12-31 23:59';
  first.querySelector('.gh-col-1').innerText = '202612310000123';
  out.truncated = [...document.querySelectorAll(
      '.gh-events td.gh-col-0, .gh-events td.gh-col-1, .gh-events td.gh-col-4, ' +
      '.gh-grid__code, .gh-grid__value, .gh-kpi__value, .gh-bar__value, .gh-bar__label, ' +
      '.gh-clock, .gh-header__title, .gh-panel__title')]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => e.className + ': ' + e.innerText);
  out.text = document.body.innerText;
  return out;
}"""


@pytest.mark.browser
@pytest.mark.parametrize("width,height", [(1920, 1080), (3840, 2160)])
def test_wall_layout_with_a_realistic_city(
    browser: Any, live_server: LiveServer, settings: Settings, sessions: sessionmaker[Session],
    redis_client: redis.Redis, tmp_path: Path, width: int, height: int,
) -> None:
    from playwright.sync_api import expect

    # The wall as it looks at 15:30 on a working day, whenever the test runs: the server's
    # clock and the browser's clock both start there and then run normally.
    today = utcnow().astimezone(settings.tz).date()
    wall = datetime.combine(today, datetime.min.time().replace(hour=15, minute=30), tzinfo=settings.tz)
    real_start = utcnow()
    live_server.runtime.services.live.clock = lambda: wall.astimezone(UTC) + (utcnow() - real_start)
    seed_city(sessions, settings, wall - timedelta(seconds=20))
    with sessions() as s:
        applied = s.query(CaseEvent).count()
    set_health(redis_client, settings, applied_total=applied, duplicates_total=17, dead_total=2,
               heartbeat_at=wall.isoformat(), last_batch_at=wall.isoformat())
    page = browser.new_page(viewport={"width": width, "height": height})
    page.clock.install(time=wall)
    watch = PageWatch(page)
    signin_page(page, live_server.url, make_user(sessions, "admin"), next_path="/live")
    expect(page.locator("#live-events tbody tr")).to_have_count(15, timeout=15_000)
    expect(page.locator("#live-grids li")).to_have_count(10)
    expect(page.locator("#live-clock")).to_have_text(re.compile(r"^15:3\d:\d\d$"))
    expect(page.locator("#live-banner")).to_be_hidden()
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots_dir(tmp_path) / f"live-{width}x{height}.png"))

    probe = page.evaluate(LAYOUT_PROBE)
    assert probe["pageOverflow"] <= 0, "the page scrolls"
    assert probe["clipped"] == [], "rows cut off at the panel edge"
    assert probe["truncated"] == [], "codes or figures cut short"
    # Type scales with the wall: ~17 px base at 1080p, twice that at 4K; nothing tiny.
    assert probe["rootPx"] >= 16 * width / 1920
    assert probe["smallestPx"] >= 14 * width / 1920
    # No English in the UI (codes and times are digits; class names chosen without Latin).
    assert re.findall(r"[A-Za-z]{2,}", probe["text"]) == []
    assert watch.errors == [] and watch.dialogs == []
    watch.assert_local_only()
    page.close()
