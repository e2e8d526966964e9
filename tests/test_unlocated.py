"""未定位 cases (issue 12 point 7): a report whose point is in no grid keeps its case.

Everything goes through the real feed (Producer → Redis → Ingest → SQL) on the small city of
tests/feedkit.py (district 990201), plus a second district (990202) added here. A report in no
grid must give a case with its stage and clocks and no grid; only the city scope sees it (API,
/explore, exports, /view); the wall's live view counts it in its totals and its overdue queue,
never in a cell; ``gridhall check`` counts it; /explore lists it under 待定位 for city users; a
later ``updated`` with a location places it, live. docs/feed.md "Location" says what happens to
each kind of location problem: :func:`test_each_location_problem_as_feed_md_says` tries them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import box
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import feedkit
from browserkit import LiveServer, PageWatch, shots_dir
from dashboard.figures import casedetail, explore, readapi
from dashboard.figures.liveview import LiveView
from dashboard.rules.geo import geodesic_area_m2, to_geojson
from dashboard.rules.lifecycle import EventType as E
from dashboard.rules.vocab import UNLOCATED
from dashboard.settings import Settings
from dashboard.store import scope as scopes
from dashboard.store.db import transaction
from dashboard.store.models import Case, CaseEvent, Grid, Region
from dashboard.store.queries import unlocated_open
from feeds.contract import CaseEventMessage
from feeds.keys import CHANGES_STREAM

REPO = Path(__file__).resolve().parent.parent
G1, G2 = feedkit.GRID_CODES[:2]
OUT = feedkit.OUTSIDE_POINT  # (100.0, 30.0): valid WGS84, in no grid of the city
OTHER_DISTRICT, OTHER_GRID = "990202", "990202001001001"
OTHER_BOX = (118.80, 31.99, 118.801, 32.0)  # east of the city, its own district
T0 = feedkit.T0


pytestmark = pytest.mark.usefixtures("fresh_scope_cache")


@pytest.fixture
def two_district_feed_city(sessions: sessionmaker[Session], feed_city: Any) -> Any:
    """feedkit's district 990201 (six grids), and district 990202 with one grid."""
    ref = feed_city
    with transaction(sessions) as s:
        d = Region(code=OTHER_DISTRICT, name="另一区", level="district")
        st = Region(code=OTHER_DISTRICT + "001", name="另一街道", level="street", parent=d)
        c = Region(code=OTHER_DISTRICT + "001001", name="另一社区", level="community", parent=st)
        s.add_all([d, st, c])
        s.flush()
        poly = box(*OTHER_BOX)
        s.add(Grid(code=OTHER_GRID, community_id=c.id, geometry=to_geojson(poly), area_m2=geodesic_area_m2(poly),
                   area_class="A", centroid_lon=poly.centroid.x, centroid_lat=poly.centroid.y))
    ref.reload(sessions)
    return ref


@pytest.fixture
def two_district_feed(settings: Settings, sessions: sessionmaker[Session], redis_client: Any,
                      two_district_feed_city: Any) -> Any:
    """push(messages) → the case ids of the change notices the ingest wrote for them."""
    return feedkit.notice_pusher(settings, sessions, redis_client, two_district_feed_city, consumer="loc",
                                 batch_size=50)


def report(case: str, minutes: int = 0, **fields: Any) -> CaseEventMessage:
    """A 12345 report of ``case`` at T0 + minutes: by default its point is in no grid."""
    base: dict[str, Any] = {"source": "hotline_12345", "kind": "event", "class_code": "06010",
                            "lon": OUT[0], "lat": OUT[1], "address": f"城外路{case}号",
                            "description": f"市民反映垃圾堆放 {case}", "number": f"N-{case}"}
    base.update(fields)
    return CaseEventMessage(event_id=f"{case}-r", case_id=case, type=E.REPORTED,
                            occurred_at=T0 + timedelta(minutes=minutes),
                            **{k: v for k, v in base.items() if v is not None})


def step(case: str, n: int, type_: E, minutes: int, **fields: Any) -> CaseEventMessage:
    return CaseEventMessage(event_id=f"{case}-{n}", case_id=case, type=type_,
                            occurred_at=T0 + timedelta(minutes=minutes), **fields)


def dispatched_loop(case: str, **first: Any) -> list[CaseEventMessage]:
    """Reported, verified, filed, dispatched (to U-HW): its 处置 clock ran out weeks ago."""
    return [report(case, **first), step(case, 1, E.VERIFIED, 10), step(case, 2, E.FILED, 20),
            step(case, 3, E.DISPATCHED, 30, unit_code="U-HW")]


def row(sessions: sessionmaker[Session], case: str) -> Case | None:
    with sessions() as s:
        return s.scalars(select(Case).where(Case.case_id == case)).first()


def grid_of(sessions: sessionmaker[Session], case: str) -> str | None:
    with sessions() as s:
        return s.scalar(select(Grid.code).join(Case, Case.grid_id == Grid.id).where(Case.case_id == case))


def dead(redis_client: Any, settings: Settings) -> list[dict[str, Any]]:
    return feedkit.dead_letters(redis_client, settings)


# -- the case is kept --------------------------------------------------------------------------------
def test_a_report_in_no_grid_keeps_its_case_with_stage_and_clocks(two_district_feed: Any,
                                                                  sessions: sessionmaker[Session],
                                                                  redis_client: Any, settings: Settings) -> None:
    noticed = two_district_feed(dispatched_loop("X1"))
    assert dead(redis_client, settings) == []  # no outside_city dead letter for the report
    assert noticed and set(noticed) == {"X1"}
    case = row(sessions, "X1")
    assert case is not None and case.grid_id is None
    assert case.stage == "dispatched" and (case.lon, case.lat) == OUT
    assert case.address == "城外路X1号" and case.source == "hotline_12345" and case.unit_id is not None
    assert case.reported_at == T0 and case.filed_at == T0 + timedelta(minutes=20)
    assert case.dispatched_at == T0 + timedelta(minutes=30)
    # the clocks ran as for any case: 核实 and 立案 judged, 处置 running with a deadline
    assert case.on_time_verify is not None and case.on_time_file is not None and case.on_time_dispatch is not None
    assert case.clock_stage == "handle" and case.deadline_at is not None
    assert case.deadline_at < datetime.now(UTC)  # weeks ago: overdue now
    with sessions() as s:
        problems = s.scalars(select(CaseEvent.problem).where(CaseEvent.case_id == "X1")).all()
        assert problems == [None] * 4
        assert unlocated_open(s) == 1


def test_a_grid_imported_since_the_ingest_loaded_is_found_first(two_district_feed: Any, two_district_feed_city: Any,
                                                                sessions: sessionmaker[Session],
                                                               redis_client: Any, settings: Settings) -> None:
    """A report whose point lies in a grid imported after the ingest loaded its reference data
    is located, not kept 未定位: the ingest reloads stale reference data first."""
    with transaction(sessions) as s:
        community = s.scalar(select(Grid.community_id).where(Grid.code == G1))
        poly = box(100.0 - 0.0005, 30.0 - 0.0005, 100.0 + 0.0005, 30.0 + 0.0005)
        s.add(Grid(code=feedkit.COMMUNITY + "099", community_id=community, geometry=to_geojson(poly),
                   area_m2=geodesic_area_m2(poly), area_class="B", centroid_lon=100.0, centroid_lat=30.0))
    two_district_feed_city.loaded_at = time.monotonic() - 60  # loaded a minute ago
    two_district_feed([report("X2")])
    assert grid_of(sessions, "X2") == feedkit.COMMUNITY + "099"
    assert dead(redis_client, settings) == []


# -- what each kind of location problem does (docs/feed.md "Location") --------------------------
LOCATION_PROBLEMS: list[tuple[str, list[Any], str | None, str | None]] = [
    # (feed.md row, events (the case is "P"), expected grid of P (UNLOCATED: kept without one;
    #  None: no case), expected dead-letter reason code)
    ("no location at all", [report("P", lon=None, lat=None)], UNLOCATED, None),
    ("point in no grid (`reported`)", [report("P")], UNLOCATED, None),
    ("only `lon` or only `lat`", [report("P", lat=None)], UNLOCATED, None),
    ("unknown `grid_code`", [report("P", grid_code="990201001001999", lon=None, lat=None)], None, "unknown_grid"),
    ("`grid_code` and point disagree", [report("P", grid_code=G1, lon=feedkit.GRID_POINTS[G2][0],
                                               lat=feedkit.GRID_POINTS[G2][1])], G1, None),
    ("coordinates out of range", [{**json.loads(report("P", lon=None, lat=None).to_entry()["event"]),
                                   "lon": 32.0, "lat": 118.7}], None, "schema"),  # swapped
    ("point in no grid (any other event)", [report("P", grid_code=G1, lon=None, lat=None),
                                            step("P", 1, E.UPDATED, 5, lon=OUT[0], lat=OUT[1])], G1, "outside_city"),
    ("a later location", [report("P"), step("P", 1, E.UPDATED, 5, lon=feedkit.GRID_POINTS[G2][0],
                                                lat=feedkit.GRID_POINTS[G2][1])], G2, None),
]


def _location_section() -> str:
    text = (REPO / "docs" / "feed.md").read_text(encoding="utf-8")
    start = text.index("### Location")
    return text[start:text.index("\n#", start + 5)]


@pytest.mark.parametrize("label, events, grid, reason", LOCATION_PROBLEMS, ids=[p[0] for p in LOCATION_PROBLEMS])
def test_each_location_problem_as_feed_md_says(label: str, events: list[Any], grid: str | None, reason: str | None,
                                               two_district_feed: Any, sessions: sessionmaker[Session],
                                               redis_client: Any, settings: Settings) -> None:
    assert f"| {label} |" in _location_section(), f"docs/feed.md Location has no row {label!r}"
    two_district_feed(events)
    letters = dead(redis_client, settings)
    assert [d["reason_code"] for d in letters] == ([reason] if reason else [])
    case = row(sessions, "P")
    if grid is None:
        assert case is None
        return
    assert case is not None and case.stage == "reported"
    assert (grid_of(sessions, "P") or UNLOCATED) == grid
    sent = events[-1] if reason is None else events[0]
    if sent.lon is not None:  # the point is kept as sent, whatever placed the case
        assert (case.lon, case.lat) == (sent.lon, sent.lat)


# -- scope: only the city sees it ---------------------------------------------------------------------
@pytest.fixture
def two_cases(two_district_feed: Any) -> None:
    """X1: 未定位 and overdue; A1: in district 990201 (G1), overdue too."""
    two_district_feed(dispatched_loop("X1") + dispatched_loop("A1", grid_code=G1, lon=None, lat=None,
                                                              address="江东路1号", description="江东路垃圾",
                                                              number="N-A1"))


def _token_client(dash_app: Any, sessions: sessionmaker[Session], role: str, region: str | None) -> Any:
    from authkit import api_token, make_user

    token = api_token(sessions, make_user(sessions, role, region=region))
    client = dash_app.server.test_client()
    return lambda path: client.get(path, headers={"Authorization": f"Bearer {token}"})


def _signed_in(dash_app: Any, sessions: sessionmaker[Session], role: str, region: str | None, page: str) -> Any:
    from authkit import make_user, signin_client

    client = signin_client(dash_app.server.test_client(), make_user(sessions, role, region=region))
    assert client.get(page).status_code == 200  # sets the CSRF cookie
    return client


def _callback(client: Any, outputs: list[tuple[str, str]], inputs: list[Any], state: list[Any] | None = None) -> Any:
    from authkit import csrf_header

    body = {"output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in outputs],
            "inputs": inputs, "state": state or [], "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}
    r = client.post("/_dash-update-component", json=body, headers=csrf_header(client))
    assert r.status_code in (200, 204), r.get_data(as_text=True)[:500]
    return r


def _explore_main(client: Any, search: str) -> str:
    from callbacks.explore import FILTERS, main_outputs

    r = _callback(client, [(o.component_id, o.component_property) for o in main_outputs()],
                  [{"id": "explore-url", "property": "search", "value": search},
                   {"id": "explore-refresh", "property": "n_clicks", "value": 0}],
                  [{"id": "explore-view-key", "property": "data", "value": None}]
                  + [{"id": f"explore-f-{f}", "property": "value", "value": None} for f in FILTERS])
    return r.get_data(as_text=True)


def _explore_unlocated(client: Any, search: str) -> dict[str, Any]:
    r = _callback(client, [("explore-unlocated", "children"), ("explore-unlocated-note", "children"),
                           ("explore-unlocated-box", "className")],
                  [{"id": "explore-url", "property": "search", "value": search},
                   {"id": "explore-refresh", "property": "n_clicks", "value": 0}])
    return r.get_json()["response"]


def _explore_detail(client: Any, case: str) -> str:
    r = _callback(client, [("explore-detail-body", "children"), ("explore-detail", "className")],
                  [{"id": "explore-url", "property": "search", "value": f"?case={case}"}])
    return r.get_data(as_text=True)


def _view_refresh(client: Any) -> str:
    import callbacks.view as viewcb

    outs = [(o.component_id, o.component_property) for o in viewcb.outputs()]
    r = _callback(client, outs, [{"id": "view-tick", "property": "n_intervals", "value": 1}],
                  [{"id": "view-config", "property": "data", "value": {"metric": "open"}},
                   {"id": "view-state", "property": "data", "value": None}])
    return r.get_data(as_text=True)


def test_only_the_city_sees_an_unlocated_case(two_cases: None, dash_app: Any, sessions: sessionmaker[Session]) -> None:
    # the read API: case, summary, overdue queue
    city_api = _token_client(dash_app, sessions, "leader", None)
    district_api = _token_client(dash_app, sessions, "leader", feedkit.DISTRICT)
    assert city_api("/api/v1/cases/X1").status_code == 200
    assert city_api("/api/v1/cases/X1").get_json()["grid_code"] is None
    assert district_api("/api/v1/cases/X1").status_code == 404
    assert district_api("/api/v1/cases/A1").status_code == 200
    assert city_api("/api/v1/summary").get_json()["open"] == 2
    assert district_api("/api/v1/summary").get_json()["open"] == 1
    city_queue = city_api("/api/v1/overdue").get_json()
    assert {c["case_id"] for c in city_queue["cases"]} == {"X1", "A1"} and city_queue["overdue_total"] == 2
    district_queue = district_api("/api/v1/overdue").get_json()
    assert {c["case_id"] for c in district_queue["cases"]} == {"A1"} and district_queue["overdue_total"] == 1
    grids = city_api("/api/v1/grids").get_json()
    assert {g["code"]: g["open"] for g in grids["grids"]} == {G1: 1}  # X1 is in no cell
    # /explore: the figures, the table, the detail, the 待定位 list, the exports
    city = _signed_in(dash_app, sessions, "shift_lead", None, "/explore")
    district = _signed_in(dash_app, sessions, "shift_lead", feedkit.DISTRICT, "/explore")
    assert "X1" in _explore_main(city, "?window=all") and "A1" in _explore_main(city, "?window=all")
    shown = _explore_main(district, "?window=all")
    i = shown.find("X1")
    assert "X1" not in shown, shown[max(0, i - 200):i + 50]
    assert "X1" not in shown and "城外路" not in shown and "A1" in shown
    assert UNLOCATED in _explore_detail(city, "X1") and "不在任何网格内" in _explore_detail(city, "X1")
    assert "X1" not in _explore_detail(district, "X1") and explore.NOT_FOUND in _explore_detail(district, "X1")
    listed = _explore_unlocated(city, "")
    assert listed["explore-unlocated-box"]["className"] == "explore-unlocated is-on"
    assert "X1" in str(listed["explore-unlocated"]["children"]) and "城外路X1号" in str(listed)
    assert "A1" not in str(listed["explore-unlocated"]["children"])
    for who, search in ((district, ""), (district, "?region=990201"), (city, "?region=990201")):
        hidden = _explore_unlocated(who, search)
        assert hidden["explore-unlocated-box"]["className"] == "explore-unlocated"
        assert hidden["explore-unlocated"]["children"] == [] and "X1" not in str(hidden)
    for fmt in ("csv", "xlsx"):
        assert b"X1" in city.get(f"/explore/export.{fmt}?window=all").data or fmt == "xlsx"
    rows = list(csv.reader(io.StringIO(city.get("/explore/export.csv?window=all").data.decode("utf-8-sig"))))
    assert {r[0] for r in rows[1:]} == {"X1", "A1"}
    grid_col = [label for _, label in explore.COLUMNS].index("网格")
    assert {r[0]: r[grid_col] for r in rows[1:]} == {"X1": UNLOCATED, "A1": G1}  # the table's 网格 says so
    rows = list(csv.reader(io.StringIO(district.get("/explore/export.csv?window=all").data.decode("utf-8-sig"))))
    assert {r[0] for r in rows[1:]} == {"A1"}
    # /view: the city's overdue list says where it is (nowhere); the district's has no trace of it
    city_view = _view_refresh(_signed_in(dash_app, sessions, "leader", None, "/view"))
    assert "X1" in city_view and UNLOCATED in city_view
    district_view = _view_refresh(_signed_in(dash_app, sessions, "leader", feedkit.DISTRICT, "/view"))
    assert "X1" not in district_view and "城外路" not in district_view and "A1" in district_view


# -- the wall's live view, and placing the case -------------------------------------------------------
@pytest.mark.parametrize("located_by", ["grid_code", "point"])
def test_an_update_with_a_location_places_it_live(located_by: str, two_district_feed: Any, two_district_feed_city: Any,
                                                  sessions: sessionmaker[Session], settings: Settings,
                                                  redis_client: Any) -> None:
    from callbacks.wall import queue_rows

    now = datetime.now(UTC)
    with sessions() as s:
        view = LiveView.load(s, two_district_feed_city.timing, now)
    ids = two_district_feed(dispatched_loop("X1"))
    with sessions() as s:
        changes = view.apply(s, ids, now)
    assert changes.changed and changes.grids == frozenset()
    k = view.kpis()
    assert k.open == 1 and k.overdue == 1 and k.disposing == 1  # in the city's totals
    assert view.grid_values("open") == {} and view.grid_values("overdue") == {}  # in no cell
    assert view.hot_spots("open") == []
    queue = view.overdue_queue()
    assert [r.case_id for r in queue.overdue] == ["X1"] and queue.overdue[0].grid_code == ""
    rows, _ = queue_rows(view, now)
    assert rows[0]["place"] == UNLOCATED  # what the wall's queue shows for it
    with sessions() as s:
        district = scopes.get_scope(s, feedkit.DISTRICT)
        assert readapi.summary(s, district, two_district_feed_city.timing, now).open == 0
        assert explore.unlocated(s, scopes.CITY, two_district_feed_city.timing, now).total == 1  # type: ignore[union-attr]

    where = {"grid_code": G2} if located_by == "grid_code" else \
        dict(zip(("lon", "lat"), feedkit.GRID_POINTS[G2], strict=False))
    ids = two_district_feed([step("X1", 9, E.UPDATED, 60, **where)])
    assert ids == ["X1"]
    notice = redis_client.xrevrange(settings.key(CHANGES_STREAM), count=1)[0][1]
    assert notice["grids"] == G2  # the wall's cell of its new grid is told
    with sessions() as s:
        changes = view.apply(s, ids, now)
    assert changes.grids == frozenset({G2})
    assert view.grid_values("open") == {G2: 1} and view.grid_values("overdue") == {G2: 1}
    assert view.kpis().open == 1 and view.kpis().overdue == 1  # counted once, now in its cell
    assert view.overdue_queue().overdue[0].grid_code == G2
    assert grid_of(sessions, "X1") == G2
    with sessions() as s:
        assert readapi.summary(s, district, two_district_feed_city.timing, now).open == 1  # now the district's
        assert casedetail.case_detail(s, district, two_district_feed_city.timing, now, "X1") is not None
        assert explore.unlocated(s, scopes.CITY, two_district_feed_city.timing, now).total == 0  # type: ignore[union-attr]
        assert unlocated_open(s) == 0
    # a fresh view (another worker, a restart) agrees
    with sessions() as s:
        fresh = LiveView.load(s, two_district_feed_city.timing, now)
    assert fresh.grid_values("open") == view.grid_values("open") and fresh.kpis() == view.kpis()


# -- gridhall check -------------------------------------------------------------------------------------
def test_check_counts_the_unlocated_open_cases(two_district_feed: Any, settings: Settings) -> None:
    two_district_feed(dispatched_loop("X1") + [report("X2", 5)]
                      + dispatched_loop("A1", grid_code=G1, lon=None, lat=None)
                      + [report("X3", 7), step("X3", 1, E.VOIDED, 9)])  # X3 is closed (作废): not open
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("GRIDHALL_")}
    env.update(GRIDHALL_DATA_DIR=str(settings.data_dir), GRIDHALL_REDIS_PREFIX=settings.redis_prefix,
               GRIDHALL_DATABASE_URL=settings.effective_database_url)
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    result = subprocess.run([sys.executable, "-m", "cli", "check"], capture_output=True, text=True, env=env,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "未定位" in line]
    assert len(lines) == 1 and "未定位 2 open case(s)" in lines[0] and "待定位" in lines[0], result.stdout


# -- /explore in Chromium -------------------------------------------------------------------------------
def _page(browser: Any, sessions: sessionmaker[Session], base: str, region: str | None) -> tuple[Any, Any, Any]:
    from authkit import make_user, signin_page

    context = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=1, locale="zh-CN")
    page = context.new_page()
    watch = PageWatch(page)
    signin_page(page, base, make_user(sessions, "shift_lead", region=region))
    return context, page, watch


@pytest.mark.browser
def test_unlocated_list_in_explore(browser: Any, live_server: LiveServer, two_district_feed: Any,
                                   sessions: sessionmaker[Session],
                                   tmp_path: Path) -> None:
    from playwright.sync_api import expect

    two_district_feed(dispatched_loop("X1") + [report("X2", 40, lon=None, lat=None, address=None)]
                      + dispatched_loop("A1", grid_code=G1, lon=None, lat=None)
                      + [step("X1", 8, E.UPDATED, 50, description="路口东侧绿化带旁大量生活垃圾堆放，坐标有误")])
    context, page, watch = _page(browser, sessions, live_server.url, None)
    page.goto(live_server.url + "/explore?window=all")
    box_ = page.locator("#explore-unlocated-box")
    expect(box_).to_be_visible(timeout=20_000)
    expect(box_).to_contain_text("待定位")
    expect(page.locator("#explore-unlocated-note")).to_have_text("无网格的在办案件 · 共 2 件")
    items = page.locator("#explore-unlocated .explore-unlocated__item")
    expect(items).to_have_count(2)
    first = items.nth(0)  # X2 was reported last
    expect(first).to_contain_text("N-X2")
    expect(first).to_contain_text("无地址和坐标")
    second = items.nth(1)
    expect(second).to_contain_text("N-X1")
    expect(second).to_contain_text("城外路X1号")
    expect(second).to_contain_text("超期")
    expect(second).to_contain_text("大量生活垃圾")
    expect(second).to_contain_text((T0.astimezone(feedkit.CST)).strftime("%Y-%m-%d %H:%M"))
    page.locator("#explore-kpi-total").wait_for()
    expect(page.locator("#explore-kpi-total")).to_have_text("3")  # the city's figures include them
    page.screenshot(path=str(shots_dir(tmp_path) / "explore-unlocated-1920x1080.png"))
    second.locator("a").click()
    detail = page.locator("#explore-detail")
    expect(detail).to_have_class(re.compile("is-open"), timeout=10_000)
    assert "case=X1" in page.url and "window=all" in page.url
    expect(detail).to_contain_text("未定位（坐标 100.000000, 30.000000 不在任何网格内）")
    expect(detail).to_contain_text("办理过程")
    assert watch.errors == [] and watch.dialogs == []
    context.close()

    # a district's shift lead: no 待定位 box, no trace of the cases
    context, page, watch = _page(browser, sessions, live_server.url, feedkit.DISTRICT)
    page.goto(live_server.url + "/explore?window=all")
    expect(page.locator("#explore-kpi-total")).to_have_text("1", timeout=20_000)
    expect(page.locator("#explore-unlocated-box")).to_be_hidden()
    assert page.locator("#explore-unlocated .explore-unlocated__item").count() == 0
    assert "N-X1" not in page.content() and "城外路" not in page.content()
    assert watch.errors == []
    context.close()
