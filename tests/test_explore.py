"""/explore, the shift leaders' drill-down: domain figures against independent SQL, the region
scope against URL, callback and export tampering, CSV/XLSX, hot-spot notes, and Chromium.

A two-district city (青山区 with two streets, 白石区 with one) with a few hundred generated
cases in every stage, class, source and unit. "Ground truth" is computed here apart from
dashboard/figures/explore.py: every case row is read with its district/street/community codes and the
selection is applied in Python.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, sessionmaker

from browserkit import PageWatch, serve, shots_dir
from citykit import build_plan
from dashboard.figures import explore
from dashboard.figures.casedetail import case_detail
from dashboard.figures.explore import OutOfScope
from dashboard.figures.selection import Selection, SelectionError
from dashboard.rules.classification import Classification
from dashboard.settings import Settings
from dashboard.store import reference
from dashboard.store import scope as scopes
from dashboard.store.db import transaction
from dashboard.store.models import Case, CaseEvent, Grid, HotspotNote, Region, Unit

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Beijing, a Wednesday
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1"> 井盖缺失'

CITY_PLAN = {
    ("990101", "青山区"): {
        ("990101001", "江东街道"): {("990101001001", "江东社区"): 3, ("990101001002", "江西社区"): 2},
        ("990101002", "江南街道"): {("990101002001", "南湖社区"): 2},
    },
    ("990102", "白石区"): {("990102001", "白石街道"): {("990102001001", "白石社区"): 2}},
}
UNITS = {"U-QS": ("青山区环卫所", "990101"), "U-QS2": ("青山区市政所", "990101"), "U-BS": ("白石区市政所", "990102")}
STAGES = ["reported", "verified", "filed", "dispatched", "returned", "handled", "checked", "suspended",
          "closed", "rejected", "voided"]
OPEN = {"reported", "verified", "filed", "dispatched", "returned", "handled", "checked", "suspended"}
DONE = {"closed", "rejected", "voided"}
SOURCES = ["supervisor", "hotline_12345", "hotline_12319", "public"]
OTHER_DISTRICT_GRID = "990102001001001"


pytestmark = pytest.mark.usefixtures("fresh_scope_cache")


@pytest.fixture
def timing(settings: Settings, sessions: sessionmaker[Session]) -> Any:
    with sessions() as s:
        return reference.timing_for(settings, s)


def _classes(settings: Settings) -> list[tuple[str, str]]:
    """(kind, minor code) of a few classes from two majors of each kind."""
    scheme = Classification.from_settings(settings)
    out: list[tuple[str, str]] = []
    for kind in ("component", "event"):
        majors: dict[str, list[str]] = {}
        for e in scheme:
            if e.kind.value == kind:
                majors.setdefault(e.major_code, []).append(e.minor_code)
        for major in sorted(majors)[:2]:
            out += [(kind, m) for m in majors[major][:2]]
    return out


@pytest.fixture
def explore_city(sessions: sessionmaker[Session], settings: Settings) -> dict[str, Any]:
    """The regions, units and ~300 cases; returns grid codes → ids and unit codes → ids."""
    rng = random.Random(20261125)
    classes = _classes(settings)
    out: dict[str, Any] = {"grids": {}, "units": {}}
    with transaction(sessions) as s:
        districts = {}
        grids = []
        for g, d in build_plan(s, CITY_PLAN):
            out["grids"][g.code] = g.id
            districts[d.code] = d
            grids.append(g)
        for code, (name, dcode) in UNITS.items():
            u = Unit(code=code, name=name, kind="disposal", region_id=districts[dcode].id)
            s.add(u)
            s.flush()
            out["units"][code] = u.id
        for i in range(300):
            g = rng.choice(grids + [None]) if i % 40 else None  # a few cases without a grid
            stage = rng.choice(STAGES)
            kind, code = rng.choice(classes)
            reported = NOW - timedelta(minutes=rng.randint(1, 60 * 24 * 45))
            unit = "U-BS" if g is not None and g.code.startswith("990102") else rng.choice(["U-QS", "U-QS2"])
            fields: dict[str, Any] = dict(
                case_id=f"C-{i:04d}", number=f"2026{i:06d}", grid_id=g.id if g else None, stage=stage,
                kind=kind, class_code=code, source=rng.choice(SOURCES),
                urgency="urgent" if rng.random() < 0.15 else "normal", reported_at=reported,
                unit_id=out["units"][unit] if stage not in ("reported", "verified", "filed") else None,
                lon=g.centroid_lon + rng.uniform(-0.0003, 0.0003) if g else None,
                lat=g.centroid_lat + rng.uniform(-0.0003, 0.0003) if g else None,
                address=f"测试路{i}号", description=f"问题{i}" if i != 7 else XSS,
            )
            if stage in DONE:
                fields["closed_at"] = min(NOW - timedelta(minutes=1), reported + timedelta(hours=rng.randint(1, 200)))
                if stage == "closed":
                    fields["on_time_close"] = rng.choice([True, False, None])
            else:
                limit = 600.0
                fields.update(clock_stage="handle", limit_minutes=limit, limit_unit="calendar_hours",
                              deadline_source="table", clock_started_at=reported,
                              deadline_at=NOW + timedelta(minutes=rng.choice([-300, -20, 30, 90, 500, 2000])))
                if stage == "suspended":
                    fields["paused_at"] = NOW - timedelta(hours=1)
            s.add(Case(**fields))
        for j, (etype, minutes) in enumerate([("reported", -300), ("filed", -250), ("dispatched", -200)]):
            s.add(CaseEvent(event_id=f"E-7-{j}", case_id="C-0007", type=etype,
                            occurred_at=NOW + timedelta(minutes=minutes), received_at=NOW + timedelta(minutes=minutes),
                            source="supervisor", actor=f"监督员{j}", payload={}))
    return out


def district_scope(sessions: sessionmaker[Session], code: str = "990101") -> scopes.Scope:
    with sessions() as s:
        return scopes.get_scope(s, code)


# -- independent ground truth -------------------------------------------------------------------
@dataclass
class Row:
    id: int
    case_id: str
    grid: str | None
    community: str | None
    street: str | None
    district: str | None
    stage: str | None
    kind: str | None
    class_code: str | None
    source: str | None
    urgency: str
    unit: str | None
    reported_at: datetime | None
    closed_at: datetime | None
    deadline_at: datetime | None
    limit_minutes: float | None
    paused_at: datetime | None
    on_time_close: bool | None


def all_rows(sessions: sessionmaker[Session]) -> list[Row]:
    with sessions() as s:
        comm, st, dist = aliased(Region), aliased(Region), aliased(Region)
        q = (select(Case.id, Case.case_id, Grid.code, comm.code, st.code, dist.code, Case.stage, Case.kind,
                    Case.class_code, Case.source, Case.urgency, Unit.code, Case.reported_at, Case.closed_at,
                    Case.deadline_at, Case.limit_minutes, Case.paused_at, Case.on_time_close)
             .outerjoin(Grid, Grid.id == Case.grid_id).outerjoin(comm, comm.id == Grid.community_id)
             .outerjoin(st, st.id == comm.parent_id).outerjoin(dist, dist.id == st.parent_id)
             .outerjoin(Unit, Unit.id == Case.unit_id))
        return [Row(*r) for r in s.execute(q).all()]


def is_overdue(r: Row) -> bool:
    return (r.stage in OPEN and r.deadline_at is not None and r.deadline_at < NOW
            and (r.paused_at is None or r.paused_at > NOW))


def is_due_soon(r: Row) -> bool:
    # calendar-hour clocks only in this city: remaining calendar minutes < 0.2 × limit
    if r.stage not in OPEN or r.deadline_at is None or is_overdue(r) or (r.paused_at and r.paused_at <= NOW):
        return False
    return (r.deadline_at - NOW).total_seconds() / 60 < 0.2 * (r.limit_minutes or 0)


def window_start(window: str) -> datetime | None:
    if window == "today":
        return datetime.combine(NOW.astimezone(BEIJING).date(), dtime.min, tzinfo=BEIJING).astimezone(UTC)
    return {"24h": NOW - timedelta(hours=24), "7d": NOW - timedelta(days=7), "30d": NOW - timedelta(days=30),
            "90d": NOW - timedelta(days=90)}.get(window)


from zoneinfo import ZoneInfo  # noqa: E402

BEIJING = ZoneInfo("Asia/Shanghai")


def truth(rows: list[Row], sel: Selection, scope_district: str | None = None, timing: Any = None,
          with_window: bool = True) -> list[Row]:
    out = []
    start = window_start(sel.window) if with_window else None
    majors: set[str] = set()
    if sel.major:
        majors = {e.minor_code for e in timing.classification if e.kind.value == sel.kind and e.major_code == sel.major}
    for r in rows:
        if scope_district and r.district != scope_district:
            continue
        code = sel.region
        if code and code not in (r.grid, r.community, r.street, r.district):
            continue
        if start is not None and not ((r.reported_at and r.reported_at >= start) or r.stage in OPEN
                                      or (r.stage in DONE and r.closed_at and r.closed_at >= start)):
            continue
        if sel.kind and r.kind != sel.kind or sel.minor and r.class_code != sel.minor:
            continue
        if sel.major and r.class_code not in majors:
            continue
        if sel.source and r.source != sel.source or sel.unit and r.unit != sel.unit:
            continue
        if sel.stage == "open" and r.stage not in OPEN or sel.stage not in (None, "open") and r.stage != sel.stage:
            continue
        if sel.flag == "overdue" and not is_overdue(r) or sel.flag == "urgent" and r.urgency != "urgent":
            continue
        if sel.flag == "due_soon" and not is_due_soon(r):
            continue
        out.append(r)
    return out


SELECTIONS = [
    "",
    "window=all",
    "region=990101&window=30d",
    "region=990101001&window=today",
    "region=990101001001&window=90d&stage=open",
    "region=990101001001002&window=all",
    "window=24h&flag=overdue",
    "window=all&flag=due_soon",
    "window=all&flag=urgent&source=hotline_12345",
    "region=990101&window=all&unit=U-QS2&stage=dispatched",
    "window=all&kind=event",
    "window=90d&stage=closed",
]


# -- the selection ------------------------------------------------------------------------------
def test_selection_round_trip_and_clear_errors() -> None:
    sel = Selection.parse("?region=990101001&window=30d&kind=event&major=01&flag=overdue&case=C-1&utm=x")
    assert sel == Selection(region="990101001", window="30d", kind="event", major="01", flag="overdue", case="C-1")
    assert Selection.parse(sel.to_query()) == sel
    assert sel.to_query() == "region=990101001&window=30d&kind=event&major=01&flag=overdue&case=C-1"
    assert Selection().to_query() == "" and Selection().href() == "/explore"
    assert Selection.parse("window=7d").to_query() == ""  # the default is left out
    assert sel.at("990101001001").case is None and sel.at("990101001001").kind == "event"
    assert sel.view_key == sel.with_case(None).to_query()
    for bad, words in [("region=abc", "区域代码"), ("window=1y", "时间范围"), ("kind=x", "类别"),
                       ("major=01", "须先选择部件或事件"), ("flag=late", "状态筛选"), ("stage=done", "阶段"),
                       ("source=%3Cscript%3E", "来源"), ("case=" + "x" * 80, "案件编号"),
                       ("region=1234567", "区域代码")]:
        with pytest.raises(SelectionError, match=words):
            Selection.parse(bad)
    with pytest.raises(SelectionError) as many:
        Selection.parse("region=x&window=y")
    assert "区域代码" in str(many.value) and "时间范围" in str(many.value)
    assert Selection.lenient("window=nonsense") == Selection()
    with pytest.raises(SelectionError):
        Selection.parse(None if False else 5)  # type: ignore[arg-type]


# -- (1) figures equal independent SQL ----------------------------------------------------------
@pytest.mark.parametrize("query", SELECTIONS)
def test_figures_equal_ground_truth(sessions: sessionmaker[Session], explore_city: dict[str, Any], timing: Any,
                                    query: str) -> None:
    sel = Selection.parse(query)
    rows = all_rows(sessions)
    want = truth(rows, sel, timing=timing)
    start = window_start(sel.window)
    with sessions() as s:
        k = explore.kpis(s, scopes.CITY, timing, NOW, sel)
        table = explore.case_table(s, scopes.CITY, timing, NOW, sel)
        kids = explore.children(s, scopes.CITY, timing, NOW, sel)
        by, classes = explore.class_breakdown(s, scopes.CITY, timing, NOW, sel)
        tr = explore.trends(s, scopes.CITY, timing, NOW, sel)
        mp = explore.map_data(s, scopes.CITY, timing, NOW, sel)
        hot = explore.hot_grids(s, scopes.CITY, timing, NOW, sel)
    assert k.total == len(want) == table.total
    in_w = (lambda t: t is not None and t >= start) if start else (lambda t: t is not None)
    closed = [r for r in want if r.stage == "closed" and in_w(r.closed_at)]
    assert k.reported == sum(1 for r in want if in_w(r.reported_at))
    assert k.closed == len(closed)
    assert k.open == sum(1 for r in want if r.stage in OPEN)
    assert k.overdue == sum(1 for r in want if is_overdue(r))
    assert k.due_soon == sum(1 for r in want if is_due_soon(r))
    assert k.urgent == sum(1 for r in want if r.stage in OPEN and r.urgency == "urgent")
    judged = [r for r in closed if r.on_time_close is not None]
    assert k.on_time_close_rate == (sum(1 for r in judged if r.on_time_close) / len(judged) if judged else None)
    # the table: every case once, newest report first
    assert [r["case_id"] for r in table.rows] == [r.case_id for r in sorted(
        want, key=lambda r: (r.reported_at is None, -(r.reported_at.timestamp() if r.reported_at else 0), r.case_id))]
    statuses = {r["case_id"]: r["status"] for r in table.rows}
    for r in want:
        assert (statuses[r.case_id] == "超期") == is_overdue(r)
        assert (statuses[r.case_id] == "临期") == is_due_soon(r)
    # children: counts per child region (or grid) of the place
    level_of = {6: "district", 9: "street", 12: "community"}
    for kid in kids:
        mine = [r for r in want if kid.code in (r.district, r.street, r.community, r.grid)]
        assert (kid.total, kid.open, kid.overdue) == (
            len(mine), sum(1 for r in mine if r.stage in OPEN), sum(1 for r in mine if is_overdue(r))), kid
    if sel.region is None:
        assert [kid.code for kid in kids] == ["990101", "990102"]
    elif len(sel.region) in (14, 15):
        assert kids == []
    else:
        assert kids and all(kid.code.startswith(sel.region) for kid in kids)
        assert {kid.level for kid in kids} == {level_of.get(len(sel.region) + 3, "grid")}
    # class breakdown sums to the total
    assert sum(c.count for c in classes) == len(want) and by == ("minor" if sel.major or sel.minor else "major")
    # trends: 上报 and 结案 per day/hour, window aside
    nowin = truth(rows, sel, timing=timing, with_window=False)
    for p, width in [(p, timedelta(days=1)) for p in tr.days] + [(p, timedelta(hours=1)) for p in tr.hours]:
        lo, hi = p.start.astimezone(UTC), p.start.astimezone(UTC) + width
        assert p.reported == sum(1 for r in nowin if r.reported_at and lo <= r.reported_at < hi), p
        assert p.closed == sum(1 for r in nowin if r.stage == "closed" and r.closed_at and lo <= r.closed_at < hi), p
    assert len(tr.days) == 7 and len(tr.hours) == 24
    # the map: every grid of the place (polygons), or at grid level every located case
    if mp.mode == "cases":
        assert mp.total == mp.shown == sum(1 for r in want if r.grid == sel.region)
        assert sorted(f["properties"]["case"] for f in mp.geojson["features"]) == sorted(
            r.case_id for r in want if r.grid == sel.region)
    else:
        assert mp.mode == "grids" and mp.shown == mp.total
        values = {f["properties"]["code"]: f["properties"]["value"] for f in mp.geojson["features"]}
        for code, value in values.items():
            assert value == sum(1 for r in want if r.grid == code)
        assert sum(values.values()) == sum(1 for r in want if r.grid is not None)
    # hot grids: most overdue first, then most cases
    per_grid: dict[str, list[int]] = {}
    for r in want:
        if r.grid:
            per_grid.setdefault(r.grid, [0, 0])
            per_grid[r.grid][0] += 1
            per_grid[r.grid][1] += is_overdue(r)
    expect = sorted(per_grid.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))[:explore.HOT_GRIDS]
    assert [(h.code, h.total, h.overdue) for h in hot] == [(c, n, o) for c, (n, o) in expect]


def test_caps_say_shown_of_total(sessions: sessionmaker[Session], explore_city: dict[str, Any], timing: Any,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sel = Selection.parse("window=all")
    monkeypatch.setattr(explore, "MAP_POLYGON_CAP", 3)
    monkeypatch.setattr(explore, "MAP_POINT_CAP", 4)
    with sessions() as s:
        table = explore.case_table(s, scopes.CITY, timing, NOW, sel, limit=25)
        mp = explore.map_data(s, scopes.CITY, timing, NOW, sel)
        grid_mp = explore.map_data(s, scopes.CITY, timing, NOW, sel.at("990101001001001"))
    assert table.shown == 25 and table.total == 300
    assert mp.mode == "grid_points" and mp.clustered and mp.shown == 4 and mp.total == 9
    assert grid_mp.mode == "cases" and grid_mp.shown == 4 and grid_mp.total > 4
    from layouts.explore import map_note, shown_note

    assert shown_note(25, 300, "条") == "显示 25 / 共 300 条"
    assert "显示 4 / 共 9 个网格" in map_note(mp) and "聚合" in map_note(mp)


# -- (2) scope --------------------------------------------------------------------------------
def test_district_scope_never_shows_another_district(sessions: sessionmaker[Session], explore_city: dict[str, Any],
                                                     timing: Any) -> None:
    qs = district_scope(sessions)
    rows = all_rows(sessions)
    with sessions() as s:
        for region in ("990102", "990102001", "990102001001", OTHER_DISTRICT_GRID, "990103", "990101009",
                       "990101001001099"):
            sel = Selection(region=region)
            for fn in (explore.place, explore.kpis, explore.children, explore.case_table, explore.map_data,
                       explore.trends, explore.class_breakdown, explore.hot_grids, explore.export_rows):
                with pytest.raises(OutOfScope):
                    fn(s, qs, timing, NOW, sel)
        root = explore.place(s, qs, timing, NOW, Selection())
        assert (root.level, root.code, [c.name for c in root.crumbs]) == ("district", "990101", ["青山区"])
        assert explore.place(s, qs, timing, NOW, Selection(region="990101")).code == "990101"
        sel = Selection(window="all")
        table = explore.case_table(s, qs, timing, NOW, sel)
        want = truth(rows, sel, scope_district="990101")
        assert table.total == len(want) and {r["district"] for r in table.rows} == {"青山区"}
        assert [k.code for k in explore.children(s, qs, timing, NOW, sel)] == ["990101001", "990101002"]
        assert explore.kpis(s, qs, timing, NOW, sel).total == len(want)
        other = next(r.case_id for r in rows if r.district == "990102")
        nogrid = next(r.case_id for r in rows if r.grid is None)
        assert case_detail(s, qs, timing, NOW, other) is None and case_detail(s, qs, timing, NOW, nogrid) is None
        assert case_detail(s, scopes.CITY, timing, NOW, other) is not None
        grid = explore.place(s, qs, timing, NOW, Selection(region="990101001002001"))
        assert [c.level for c in grid.crumbs] == ["district", "street", "community", "grid"]
        assert [u for u, _ in explore.unit_options(s, qs, timing, NOW, sel)] == ["U-QS", "U-QS2"]


def test_export_cells_are_formula_safe_and_round_trip() -> None:
    from openpyxl import load_workbook

    from dashboard.output.export import to_csv, to_xlsx

    rows = [{key: "" for key, _ in explore.COLUMNS} | {"case_id": "C-1", "description": '=HYPERLINK("x")',
                                                       "address": "+86 路", "unit": "-1", "number": "@SUM(A1)",
                                                       "minor": "井盖\x01缺失"}]
    body = to_csv(rows)
    assert body.startswith(b"\xef\xbb\xbf")
    got = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert got[0] == [label for _, label in explore.COLUMNS]
    cell = dict(zip([k for k, _ in explore.COLUMNS], got[1], strict=False))
    assert cell["description"] == "'=HYPERLINK(\"x\")" and cell["address"] == "'+86 路"
    assert cell["unit"] == "'-1" and cell["number"] == "'@SUM(A1)" and cell["case_id"] == "C-1"
    wb = load_workbook(io.BytesIO(to_xlsx(rows)))
    values = [[c.value for c in r] for r in wb.active.iter_rows()]
    assert values[0] == [label for _, label in explore.COLUMNS]
    xcell = dict(zip([k for k, _ in explore.COLUMNS], values[1], strict=False))
    assert xcell["description"] == "'=HYPERLINK(\"x\")" and xcell["minor"] == "井盖 缺失"


def test_navigation_keeps_state_in_the_url() -> None:
    from dash.exceptions import PreventUpdate

    from callbacks.explore import FILTERS, navigate_to

    def values(**kw: Any) -> list[Any]:
        return [kw.get(f) for f in FILTERS]

    search = "?region=990101&window=30d&kind=event&major=01"
    assert navigate_to("explore-f-flag", values(window="30d", kind="event", major="01", flag="overdue"),
                       [None] * 3, search) == "?region=990101&window=30d&kind=event&major=01&flag=overdue"
    with pytest.raises(PreventUpdate):  # the controls merely show the URL: no new history entry
        navigate_to("explore-f-kind", values(window="30d", kind="event", major="01"), [None] * 3, search)
    # another kind clears the classes; no kind clears them too
    assert navigate_to("explore-f-kind", values(window="30d", kind="component", major="01"), [None] * 3,
                       search) == "?region=990101&window=30d&kind=component"
    shown = values(window="30d", kind="event", major="01")  # the controls show the URL's filters
    grid_click = {"properties": {"code": "990101001001001", "value": 3}}
    assert navigate_to("explore-map-layer", shown, [grid_click, None, None], search) == (
        "?region=990101001001001&window=30d&kind=event&major=01")
    assert navigate_to("explore-table", shown, [None, None, {"rowId": "C-0007"}], search).endswith("&case=C-0007")
    assert navigate_to("explore-detail-close", shown, [None] * 3, search + "&case=C-1") == search
    # controls that make no selection: a click keeps the URL's filters
    assert navigate_to("explore-map-layer", values(kind="nonsense"), [grid_click, None, None], search) == (
        "?region=990101001001001&window=30d&kind=event&major=01")
    # a region link (explore.js: {"region": code}); "" is the scope's root; the open case closes
    go = lambda region: [None, None, None, {"region": region, "at": 1}]  # noqa: E731
    assert navigate_to("explore-go", shown, go("990101001"), search + "&case=C-1") == (
        "?region=990101001&window=30d&kind=event&major=01")
    assert navigate_to("explore-go", shown, go(""), search) == "?window=30d&kind=event&major=01"
    # The race: a filter chosen a moment ago is in the controls, not yet in the URL nor in the
    # links rendered for it. A click on a link, a grid or a row keeps it all the same.
    raced = values(window="30d", kind="event", major="01", flag="overdue")
    assert navigate_to("explore-go", raced, go("990101001"), search) == (
        "?region=990101001&window=30d&kind=event&major=01&flag=overdue")
    assert navigate_to("explore-map-layer", raced, [grid_click, None, None], search) == (
        "?region=990101001001001&window=30d&kind=event&major=01&flag=overdue")
    assert navigate_to("explore-table", raced, [None, None, {"rowId": "C-0007"}], search) == (
        search + "&flag=overdue&case=C-0007")
    for bad in ({"region": "x' OR 1=1"}, {"region": 5}, None, "990101"):
        with pytest.raises(PreventUpdate):
            navigate_to("explore-go", shown, [None, None, None, bad], search)
    for trig, clicks in [("explore-map-cluster", [None, {"properties": {"cluster": True}}, None]),
                         ("explore-table", [None, None, {"rowId": 5}]), ("explore-table", [None, None, "x"]),
                         ("nonsense", [None] * 3), ("explore-f-window", [None] * 3)]:
        with pytest.raises(PreventUpdate):
            navigate_to(trig, values(window="30d", kind="event", major="01") if trig == "explore-f-window"
                        else values(), clicks, search)
    with pytest.raises(PreventUpdate):  # garbage in: no traceback, no change
        navigate_to("explore-f-window", values(window="7d"), [None] * 3, None)
    assert navigate_to("explore-f-window", values(window="30d"), [None] * 3, 42) == "?window=30d"


def test_figures_on_a_city_without_cases(sessions: sessionmaker[Session], timing: Any) -> None:
    with transaction(sessions) as s:
        build_plan(s, CITY_PLAN)
    with sessions() as s:
        for q in ("", "region=990101001001001", "region=990101001"):
            sel = Selection.parse(q)
            assert explore.kpis(s, scopes.CITY, timing, NOW, sel).total == 0
            assert explore.case_table(s, scopes.CITY, timing, NOW, sel).rows == ()
            assert explore.hot_grids(s, scopes.CITY, timing, NOW, sel) == []
            assert explore.map_data(s, scopes.CITY, timing, NOW, sel).shown >= 0


# -- the web app: signed-in clients, crafted callbacks, exports, hot-spot notes -------------------
@pytest.fixture
def web(settings: Settings, engine: Any, explore_city: dict[str, Any]) -> Iterator[Any]:
    """The real app (sign-in guard, CSRF) with /explore's clock fixed at NOW."""
    import app as appmod

    application = appmod.create_app(settings)
    runtime = application.server.extensions[appmod.EXTENSION_KEY]
    runtime.services.explore.clock = lambda: NOW
    yield application
    runtime.close()


def client_of(web: Any, sessions: sessionmaker[Session], role: str, region: str | None = "990101") -> Any:
    from authkit import make_user, signin_client

    who = make_user(sessions, role, region=region)
    client = signin_client(web.server.test_client(), who)
    assert client.get("/explore").status_code == 200  # the page sets the CSRF cookie
    client.who = who  # type: ignore[attr-defined]
    return client


def post_callback(client: Any, outputs: list[tuple[str, str]], inputs: list[Any], state: list[Any],
                  changed: list[str]) -> Any:
    from authkit import csrf_header

    body = {"output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in outputs],
            "inputs": inputs, "state": state, "changedPropIds": changed}
    return client.post("/_dash-update-component", json=body, headers=csrf_header(client))


def show(client: Any, search: str) -> dict[str, Any]:
    """POST the main callback as the browser does; returns {"id.prop": value}."""
    from callbacks.explore import FILTERS, main_outputs

    outs = [(o.component_id, o.component_property) for o in main_outputs()]
    r = post_callback(client, outs, [{"id": "explore-url", "property": "search", "value": search},
                                     {"id": "explore-refresh", "property": "n_clicks", "value": 0}],
                      [{"id": "explore-view-key", "property": "data", "value": None}]
                      + [{"id": f"explore-f-{f}", "property": "value", "value": None} for f in FILTERS],
                      ["explore-url.search"])
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    resp = r.get_json()["response"]
    return {f"{cid}.{prop}": v for cid, props in resp.items() for prop, v in props.items()}


def test_crafted_urls_callbacks_and_exports_stay_in_scope(web: Any, sessions: sessionmaker[Session],
                                                          timing: Any) -> None:
    client = client_of(web, sessions, "leader", "990101")
    mine = show(client, "?window=all")
    assert mine["explore-error.children"] == [] and len(mine["explore-table.rowData"]) == len(
        truth(all_rows(sessions), Selection(window="all"), scope_district="990101"))
    assert {r["district"] for r in mine["explore-table.rowData"]} == {"青山区"}
    refusals = []
    for region in ("990102", "990102001", "990102001001", OTHER_DISTRICT_GRID, "990109", "990101001001099"):
        got = show(client, f"?region={region}&window=all")
        assert got["explore-error.children"] == explore.NOT_FOUND
        assert got["explore-table.rowData"] == [] and got["explore-children.children"] == []
        text = str(got)
        assert "白石" not in text and "C-0" not in text
        refusals.append({k: v for k, v in got.items()
                         if k not in ("explore-updated.children", "explore-view-key.data")})
        # the export answers the same 404 for an unknown and a foreign region
        for fmt in ("csv", "xlsx"):
            r = client.get(f"/explore/export.{fmt}?region={region}")
            assert r.status_code == 404 and r.get_data(as_text=True) == explore.NOT_FOUND
    assert all(r == refusals[0] for r in refusals)  # foreign = unknown, byte for byte
    # the case detail: a foreign case id in the URL is "未找到或无权查看"
    other = next(r.case_id for r in all_rows(sessions) if r.district == "990102")
    r = post_callback(client, [("explore-detail-body", "children"), ("explore-detail", "className")],
                      [{"id": "explore-url", "property": "search", "value": f"?case={other}"}], [],
                      ["explore-url.search"])
    assert r.status_code == 200 and explore.NOT_FOUND in r.get_data(as_text=True) and other not in str(
        r.get_json()["response"]["explore-detail-body"])
    # garbage inputs: a message, never a traceback
    for garbage in (None, 42, {"a": 1}, "?region=%00%ff", "?" + "x=1&" * 600):
        got = show(client, garbage)  # type: ignore[arg-type]
        assert "Traceback" not in str(got)
    assert "地址参数" in show(client, "?window=forever")["explore-error.children"]
    # anonymous: the guard refuses the page, the callback and the export
    anon = web.server.test_client()
    assert anon.get("/explore/export.csv").status_code in (302, 401)
    assert anon.post("/_dash-update-component", json={"output": "x"}).status_code in (400, 401, 403)


def test_exports_equal_the_table(web: Any, sessions: sessionmaker[Session]) -> None:
    from openpyxl import load_workbook

    client = client_of(web, sessions, "shift_lead", None)
    for query in ("window=all", "region=990101001&window=90d&stage=open", "window=all&flag=overdue&kind=event"):
        got = show(client, "?" + query)
        table = [[str(row[k]) for k, _ in explore.COLUMNS] for row in got["explore-table.rowData"]]
        assert table and got["explore-export-csv.href"] == Selection.parse(query).href("/explore/export.csv")
        r = client.get(got["explore-export-csv.href"])
        assert r.status_code == 200 and r.mimetype == "text/csv" and r.data.startswith(b"\xef\xbb\xbf")
        assert r.headers["X-Total-Count"] == str(len(table)) and "attachment" in r.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
        assert rows[0] == [label for _, label in explore.COLUMNS] and rows[1:] == table
        r = client.get(got["explore-export-xlsx.href"])
        assert r.status_code == 200
        sheet = load_workbook(io.BytesIO(r.data)).active
        xrows = [[("" if c.value is None else str(c.value)) for c in row] for row in sheet.iter_rows()]
        assert xrows[0] == [label for _, label in explore.COLUMNS] and xrows[1:] == table
    assert client.get("/explore/export.pdf").status_code == 404
    assert client.get("/explore/export.csv?window=1y").status_code == 400


def _note_callback(client: Any, kind: str, grid: str, text: str = "") -> Any:
    trig = {"grid": grid, "type": "explore-note-save" if kind == "note" else "explore-ack"}
    import json

    key = json.dumps(trig, separators=(",", ":"), sort_keys=True)
    clicked = [{"id": trig, "property": "n_clicks", "value": 1}]
    return post_callback(
        client, [("explore-hot-msg", "children"), ("explore-notes-version", "data")],
        [clicked if kind == "ack" else [], [], clicked if kind == "note" else []],
        [[{"id": {"grid": grid, "type": "explore-note-text"}, "property": "value", "value": text}],
         [{"id": {"grid": grid, "type": "explore-note-text"}, "property": "id",
           "value": {"grid": grid, "type": "explore-note-text"}}],
         {"id": "explore-notes-version", "property": "data", "value": 0}],
        [f"{key}.n_clicks"])


def notes(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with sessions() as s:
        return [(n.grid.code, n.user_id, n.kind, n.note, n.created_at) for n in s.scalars(select(HotspotNote))]


def test_shift_lead_acknowledges_and_others_cannot(web: Any, sessions: sessionmaker[Session]) -> None:
    grid = "990101001001001"
    leader = client_of(web, sessions, "leader", "990101")
    r = _note_callback(leader, "ack", grid)
    assert r.status_code == 200 and "只有值班长" in r.get_data(as_text=True)
    admin = client_of(web, sessions, "admin", None)
    assert "只有值班长" in _note_callback(admin, "note", grid, "看看").get_data(as_text=True)
    assert notes(sessions) == []
    # the leader's page has no write controls
    hot = post_callback(leader, [("explore-hot", "children"), ("explore-notes", "children")],
                        [{"id": "explore-url", "property": "search", "value": f"?region={grid}"},
                         {"id": "explore-notes-version", "property": "data", "value": 0},
                         {"id": "explore-refresh", "property": "n_clicks", "value": 0}], [], ["explore-url.search"])
    assert hot.status_code == 200 and "explore-ack" not in hot.get_data(as_text=True)

    lead = client_of(web, sessions, "shift_lead", "990101")
    page = post_callback(lead, [("explore-hot", "children"), ("explore-notes", "children")],
                         [{"id": "explore-url", "property": "search", "value": f"?region={grid}"},
                          {"id": "explore-notes-version", "property": "data", "value": 0},
                          {"id": "explore-refresh", "property": "n_clicks", "value": 0}], [], ["explore-url.search"])
    assert "确认热点" in page.get_data(as_text=True) and "explore-note-save" in page.get_data(as_text=True)
    r = _note_callback(lead, "ack", grid)
    assert r.status_code == 200 and f"已确认网格 {grid}" in r.get_data(as_text=True)
    assert r.get_json()["response"]["explore-notes-version"]["data"] == 1
    r = _note_callback(lead, "note", grid, "  <b>已通知</b>环卫所  ")
    assert "已批注" in r.get_data(as_text=True)
    assert "不能为空" in _note_callback(lead, "note", grid, "   ").get_data(as_text=True)
    assert "最多" in _note_callback(lead, "note", grid, "长" * 501).get_data(as_text=True)
    # another district's grid, an unknown grid, a malformed one: the same refusal, no row
    for other in (OTHER_DISTRICT_GRID, "990101001001099", "<script>", ""):
        assert explore.NOT_FOUND in _note_callback(lead, "ack", other).get_data(as_text=True)
    got = notes(sessions)
    assert [(g, u, k, n) for g, u, k, n, _ in got] == [
        (grid, lead.who.user_id, "ack", ""), (grid, lead.who.user_id, "note", "<b>已通知</b>环卫所")]
    assert all(at == NOW for *_, at in got)
    # leaders see the notes (as text), without controls
    seen = post_callback(leader, [("explore-hot", "children"), ("explore-notes", "children")],
                         [{"id": "explore-url", "property": "search", "value": f"?region={grid}"},
                          {"id": "explore-notes-version", "property": "data", "value": 1},
                          {"id": "explore-refresh", "property": "n_clicks", "value": 0}], [], ["explore-url.search"])
    body = seen.get_data(as_text=True)
    assert "已通知" in body and "explore-note-save" not in body and "已确认" in body


# -- Chromium -------------------------------------------------------------------------------------
@pytest.fixture
def explore_server(web: Any) -> Iterator[str]:
    """The app with /explore's clock fixed at NOW, on a live server; its base URL."""
    with serve(web.server) as url:
        yield url


def signed_in_page(browser: Any, sessions: sessionmaker[Session], base: str, role: str = "shift_lead",
                   region: str | None = None, size: tuple[int, int] = (1920, 1080)) -> tuple[Any, Any, PageWatch]:
    from authkit import make_user, signin_page

    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, device_scale_factor=1,
                                  locale="zh-CN")
    page = context.new_page()
    watch = PageWatch(page)
    signin_page(page, base, make_user(sessions, role, region=region))
    return context, page, watch


def table_rows(page: Any) -> list[str]:
    """The case ids of the table's rows, in the grid's order (AG Grid's own API)."""
    return page.evaluate("""() => {
        const api = dash_ag_grid.getApi('explore-table'); const ids = [];
        api.forEachNodeAfterFilterAndSort(n => ids.push(n.data.case_id)); return ids; }""")


@pytest.mark.browser
def test_drill_down_by_clicking_to_a_case(browser: Any, explore_server: str, sessions: sessionmaker[Session],
                                          tmp_path: Any) -> None:
    from playwright.sync_api import expect

    context, page, watch = signed_in_page(browser, sessions, explore_server)
    page.goto(explore_server + "/explore?window=all")
    expect(page.locator("#explore-kpi-total")).to_have_text("300", timeout=20_000)
    crumbs = page.locator("#explore-crumbs")
    expect(crumbs).to_contain_text("全市")
    for name, level_text in (("青山区", "区"), ("江东街道", "街道"), ("江东社区", "社区")):
        page.locator("#explore-children a", has_text=name).click()
        expect(crumbs.locator(".is-current")).to_contain_text(name, timeout=10_000)
        expect(crumbs.locator(".is-current .explore-crumb__level")).to_have_text(level_text)
    assert "region=990101001001" in page.url and "window=all" in page.url
    page.locator("#explore-children a", has_text="990101001001001").click()
    expect(crumbs.locator(".is-current")).to_contain_text("990101001001001", timeout=10_000)
    expect(page.locator("#explore-children-title")).to_have_text("网格")
    expect(page.locator("#explore-map-title")).to_have_text("案件分布")
    rows = [r for r in all_rows(sessions) if r.grid == "990101001001001"]
    expect(page.locator("#explore-kpi-total")).to_have_text(str(len(rows)))
    expect(page.locator("#explore-table-note")).to_have_text(f"共 {len(rows)} 条")
    first = page.locator("#explore-table .ag-row").first
    case_id = first.get_attribute("row-id")
    first.locator(".ag-cell").nth(1).click()
    detail = page.locator("#explore-detail")
    expect(detail).to_have_class(re.compile("is-open"), timeout=10_000)
    assert f"case={case_id}" in page.url
    expect(detail).to_contain_text("办理过程")
    expect(detail).to_contain_text("各环节时限")
    page.screenshot(path=str(shots_dir(tmp_path) / "explore-grid-detail-1920x1080.png"))
    # back in the history: the detail closes, the grid stays
    page.go_back()
    expect(detail).not_to_have_class(re.compile("is-open"), timeout=10_000)
    # up again by the breadcrumb
    crumbs.locator("a", has_text="青山区").click()
    expect(crumbs.locator(".is-current")).to_contain_text("青山区", timeout=10_000)
    assert watch.errors == [] and watch.dialogs == []
    watch.assert_local_only()
    context.close()


@pytest.mark.browser
def test_deep_link_reproduces_the_table_in_a_fresh_context(browser: Any, explore_server: str,
                                                           sessions: sessionmaker[Session]) -> None:
    from playwright.sync_api import expect

    context, page, watch = signed_in_page(browser, sessions, explore_server, "leader", "990101")
    page.goto(explore_server + "/explore")
    expect(page.locator("#explore-kpi-total")).not_to_have_text("—", timeout=20_000)
    # choose filters with the controls: the URL follows
    page.locator("#explore-f-window").click()
    page.get_by_role("option", name="全部").click()
    expect(page).to_have_url(re.compile(r"window=all"), timeout=10_000)
    page.locator("#explore-f-stage").click()
    page.get_by_role("option", name="在办(全部未结)").click()
    expect(page).to_have_url(re.compile(r"stage=open"), timeout=10_000)
    street = page.locator("#explore-children a", has_text="江东街道")
    expect(street).to_have_attribute("href", re.compile("stage=open"), timeout=10_000)
    street.click()
    expect(page).to_have_url(re.compile(r"region=990101001"), timeout=10_000)
    want = truth(all_rows(sessions), Selection.parse(page.url.split("?", 1)[1]), scope_district="990101")
    expect(page.locator("#explore-kpi-total")).to_have_text(str(len(want)), timeout=10_000)
    first = table_rows(page)
    assert sorted(first) == sorted(r.case_id for r in want) and first
    url = page.url
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    context.close()

    fresh, page2, watch2 = signed_in_page(browser, sessions, explore_server, "leader", "990101")
    page2.goto(url)
    expect(page2.locator("#explore-kpi-total")).to_have_text(str(len(want)), timeout=20_000)
    expect(page2.locator("#explore-crumbs .is-current")).to_contain_text("江东街道")
    assert table_rows(page2) == first
    assert page2.locator("#explore-f-stage").inner_text().strip().startswith("在办")
    # a foreign district in the URL: the same answer as an unknown one, no data
    page2.goto(explore_server + "/explore?region=990102&window=all")
    expect(page2.locator("#explore-error")).to_have_text(explore.NOT_FOUND, timeout=20_000)
    assert table_rows(page2) == []
    assert watch.errors == [] and watch2.errors == []
    fresh.close()


@pytest.mark.browser
def test_markup_in_a_case_is_text(browser: Any, explore_server: str, sessions: sessionmaker[Session]) -> None:
    from playwright.sync_api import expect

    context, page, watch = signed_in_page(browser, sessions, explore_server)
    xss_case = next(r for r in all_rows(sessions) if r.case_id == "C-0007")
    page.goto(explore_server + "/explore?window=all&case=C-0007"
              + (f"&region={xss_case.grid}" if xss_case.grid else ""))
    detail = page.locator("#explore-detail")
    expect(detail).to_have_class(re.compile("is-open"), timeout=20_000)
    expect(detail.locator(".explore-detail__desc")).to_have_text(XSS)
    expect(page.locator("#explore-table-note")).to_contain_text("共", timeout=10_000)
    # the table's own filter (client side) brings the row into view
    page.evaluate("""() => dash_ag_grid.getApi('explore-table').setFilterModel(
        {description: {filterType: 'text', type: 'contains', filter: '__xss'}})""")
    expect(page.locator("#explore-table .ag-row")).to_have_count(1, timeout=10_000)
    expect(page.locator("#explore-table .ag-row")).to_contain_text("<script>window.__xss=1</script>")
    expect(detail).to_contain_text("监督员1")  # who acted, from the events
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("#explore-root script, #explore-root img[src=x]").count() == 0
    assert watch.errors == [] and watch.dialogs == []
    context.close()


@pytest.mark.browser
def test_shift_lead_acknowledges_in_the_page(browser: Any, explore_server: str,
                                             sessions: sessionmaker[Session]) -> None:
    from playwright.sync_api import expect

    grid = "990101001001001"
    context, page, watch = signed_in_page(browser, sessions, explore_server, "shift_lead", "990101")
    page.goto(explore_server + f"/explore?region={grid}&window=all")
    notes_panel = page.locator("#explore-notes")
    expect(notes_panel.get_by_role("button", name="确认热点")).to_be_visible(timeout=20_000)
    notes_panel.get_by_role("button", name="确认热点").click()
    expect(page.locator("#explore-hot-msg")).to_contain_text(f"已确认网格 {grid}", timeout=10_000)
    expect(notes_panel.locator(".explore-notes__item")).to_have_count(1, timeout=10_000)
    notes_panel.locator("textarea").fill("已通知环卫所<b>处理</b>")
    notes_panel.get_by_role("button", name="保存批注").click()
    # The stored note is listed (the textarea's own text would match the text alone).
    expect(notes_panel.locator(".explore-notes__item")).to_have_count(2, timeout=10_000)
    expect(notes_panel.locator(".explore-notes__item").first).to_contain_text("已通知环卫所<b>处理</b>")
    assert [(g, k) for g, _, k, _, _ in notes(sessions)] == [(grid, "ack"), (grid, "note")]
    context.close()
    # a leader reads the notes without any control
    context, page, watch2 = signed_in_page(browser, sessions, explore_server, "leader", "990101")
    page.goto(explore_server + f"/explore?region={grid}&window=all")
    expect(page.locator("#explore-notes")).to_contain_text("已通知环卫所<b>处理</b>", timeout=20_000)
    assert page.locator("#explore-root button", has_text="确认热点").count() == 0
    assert page.locator("#explore-root textarea").count() == 0
    assert watch.errors == [] and watch2.errors == []
    context.close()


# What a screen shows at a size: rendered heights (CSS pixels of the viewport) of a header
# title, a KPI label, a chart's tick label, and the width of Leaflet's zoom button.
MEASURE = """() => {
    const px = (sel, dim) => { const el = document.querySelector(sel);
                               return el ? el.getBoundingClientRect()[dim] : null; };
    const root = document.getElementById('explore-root');
    return {
        zoom: parseFloat(getComputedStyle(root).zoom),
        root_font: parseFloat(getComputedStyle(document.documentElement).fontSize),
        title: px('#explore-root .gh-header__title', 'height'),
        kpi_label: px('#explore-kpi-total', 'height'),
        tick: px('#explore-classes .ytick text', 'height'),
        zoom_button: px('#explore-map .leaflet-control-zoom-in', 'width'),
        scroll_width: root.scrollWidth <= root.clientWidth + 1,
    };
}"""

GRID_POINT = """() => {
    const grids = window.gridhall_explore.grids; const code = Object.keys(grids).sort()[0];
    const layer = grids[code]; const map = layer._map; const box = map.getContainer();
    const rect = box.getBoundingClientRect(); const scale = rect.width / box.offsetWidth;
    const at = map.latLngToContainerPoint(layer.getBounds().getCenter());
    return {code: code, x: rect.left + at.x * scale, y: rect.top + at.y * scale};
}"""


@pytest.mark.browser
def test_true_4k_scales_the_page_and_clicks_still_land(browser: Any, explore_server: str,
                                                       sessions: sessionmaker[Session],
                                                     tmp_path: Any) -> None:
    """At 3840×2160 (device_scale_factor 1) text, chart fonts and map controls are twice their
    1080p size (the page is zoomed by 2), and a click on a map grid or a table row still hits it."""
    from playwright.sync_api import expect

    community = "990101001001"
    sizes: dict[int, dict[str, Any]] = {}
    for width, height in ((1920, 1080), (3840, 2160)):
        context, page, watch = signed_in_page(browser, sessions, explore_server, size=(width, height))
        page.goto(explore_server + f"/explore?region={community}&window=all")
        expect(page.locator("#explore-crumbs .is-current")).to_contain_text("江东社区", timeout=20_000)
        expect(page.locator("#explore-classes .ytick text").first).to_be_visible(timeout=10_000)
        page.wait_for_function("() => Object.keys(window.gridhall_explore.grids).length > 0", timeout=10_000)
        expect(page.locator("#explore-map .leaflet-control-zoom-in")).to_have_attribute("title", "放大")
        sizes[width] = page.evaluate(MEASURE)
        assert sizes[width]["scroll_width"], "the page is wider than the screen"
        if width == 3840:
            # a grid on the map: Leaflet must turn the (zoomed) pointer position into that grid
            at = page.evaluate(GRID_POINT)
            page.mouse.click(at["x"], at["y"])
            expect(page).to_have_url(re.compile(f"region={at['code']}"), timeout=10_000)
            expect(page.locator("#explore-crumbs .is-current")).to_contain_text(at["code"], timeout=10_000)
            # a row of the table opens its case
            expect(page.locator("#explore-table .ag-row").first).to_be_visible(timeout=10_000)
            first = page.locator("#explore-table .ag-row").first
            case_id = first.get_attribute("row-id")
            first.locator(".ag-cell").nth(1).click()
            expect(page.locator("#explore-detail")).to_have_class(re.compile("is-open"), timeout=10_000)
            assert f"case={case_id}" in page.url
            expect(page.locator("#explore-detail")).to_contain_text(case_id or "")
            page.screenshot(path=str(shots_dir(tmp_path) / "explore-grid-detail-3840x2160.png"))
        assert watch.errors == []
        context.close()
    small, big = sizes[1920], sizes[3840]
    assert small["zoom"] == 1 and big["zoom"] == 2
    for key in ("title", "kpi_label", "tick", "zoom_button"):
        assert big[key] >= 1.9 * small[key], (key, small[key], big[key])
    # the root size is divided by the zoom: rem-sized text is zoomed once, not twice
    assert big["title"] <= 2.1 * small["title"]


@pytest.mark.browser
def test_sign_out_from_explore(browser: Any, explore_server: str, sessions: sessionmaker[Session]) -> None:
    from playwright.sync_api import expect

    context, page, watch = signed_in_page(browser, sessions, explore_server, "leader", "990101")
    page.goto(explore_server + "/explore")
    bar = page.locator("#explore-root .explore-header .gh-user")
    expect(bar.locator(".gh-user__role")).to_have_text("领导", timeout=20_000)
    expect(page.locator("#explore-who")).to_have_text("辖区：青山区", timeout=20_000)
    expect(page.locator("#explore-crumbs .is-current")).to_contain_text("青山区")
    with page.expect_navigation():
        bar.get_by_role("button", name="退出").click()
    assert "/login" in page.url
    page.goto(explore_server + "/explore")
    expect(page).to_have_url(re.compile(r"/login"), timeout=10_000)
    assert watch.errors == []
    context.close()


@pytest.mark.browser
def test_a_link_clicked_right_after_a_filter_keeps_the_filter(browser: Any, explore_server: str,
                                                              sessions: sessionmaker[Session]) -> None:
    """The child links are rendered for the previous filters until the page refreshes; a click
    on one straight after choosing a filter still carries it (explore.js → navigate)."""
    from playwright.sync_api import expect

    context, page, watch = signed_in_page(browser, sessions, explore_server, "shift_lead", "990101")
    page.goto(explore_server + "/explore?window=all")
    street = page.locator("#explore-children a", has_text="江东街道")
    expect(street).to_be_visible(timeout=20_000)
    # Hold the main callback back, so the links surely still carry the old filters.
    page.route("**/_dash-update-component", lambda route: (
        page.wait_for_timeout(1500) if "explore-crumbs" in (route.request.post_data or "") else None,
        route.continue_()))
    page.locator("#explore-f-flag").click()
    page.get_by_role("option", name="超期").click()
    assert "flag=overdue" not in (street.get_attribute("href") or "")
    street.click()
    expect(page).to_have_url(re.compile(r"region=990101001&window=all&flag=overdue"), timeout=15_000)
    expect(page.locator("#explore-crumbs .is-current")).to_contain_text("江东街道", timeout=15_000)
    page.wait_for_timeout(2000)  # nothing arriving late takes the filter or the place away
    assert re.search(r"region=990101001&window=all&flag=overdue", page.url), page.url
    assert watch.errors == []
    context.close()


PHONE_PANELS = ("#explore-crumbs", "#explore-filters-toggle", ".explore-kpis", "#explore-children .explore-child",
                "#explore-hot", "#explore-map", "#explore-classes", "#explore-trend-days", "#explore-trend-hours",
                "#explore-table")


@pytest.mark.browser
def test_phone_one_column_every_panel_and_the_case_sheet(browser: Any, explore_server: str,
                                                         sessions: sessionmaker[Session],
                                                       tmp_path: Any) -> None:
    """At 390×844 (a district leader on a phone): one column that scrolls down, nothing wider
    than the screen, KPIs two a row with whole values, text of 14px at least, every panel there
    when scrolled to, and a table row opens the case as a full-screen sheet that 关闭 closes."""
    from playwright.sync_api import expect

    width, height = 390, 844
    context, page, watch = signed_in_page(browser, sessions, explore_server, "leader", "990101", size=(width, height))
    page.goto(explore_server + "/explore?window=all")
    want = truth(all_rows(sessions), Selection.parse("window=all"), scope_district="990101")
    expect(page.locator("#explore-kpi-total")).to_have_text(str(len(want)), timeout=20_000)
    expect(page.locator("#explore-crumbs .is-current")).to_contain_text("青山区")
    expect(page.locator("#explore-classes .ytick text").first).to_be_attached(timeout=10_000)
    expect(page.locator("#explore-table .ag-row").first).to_be_attached(timeout=10_000)
    # the 7-day trend is labelled by day ("12-06"), never read as a date axis ("Jan 2012")
    day_ticks = page.locator("#explore-trend-days .xtick text")
    expect(day_ticks.first).to_be_attached(timeout=10_000)
    assert all(re.fullmatch(r"\d{2}-\d{2}", t) for t in day_ticks.all_text_contents()), day_ticks.all_text_contents()
    # the filters fold under 筛选
    toggle = page.locator("#explore-filters-toggle")
    expect(page.locator("#explore-filters")).to_be_hidden()
    toggle.click()
    expect(page.locator("#explore-f-window")).to_be_visible()
    assert page.locator("#explore-filters").bounding_box()["width"] <= width  # type: ignore[index]
    toggle.click()
    expect(page.locator("#explore-filters")).to_be_hidden()
    # every panel, in order, as wide as the page at most, each visible once scrolled to
    tops = []
    for sel in PHONE_PANELS:
        panel = page.locator(sel).first
        panel.scroll_into_view_if_needed()
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box is not None and box["height"] > 15 and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, sel
        tops.append(page.evaluate("s => document.querySelector(s).getBoundingClientRect().top + window.scrollY", sel))
    assert tops == sorted(tops), list(zip(PHONE_PANELS, tops, strict=False))
    map_box = page.locator("#explore-map").bounding_box()
    assert map_box is not None and 280 <= map_box["height"] <= 320 and map_box["width"] > 300, map_box
    assert page.locator("#explore-table").bounding_box()["height"] > 300  # type: ignore[index]
    # one column: the panels start at the same x; the page scrolls, never sideways
    lefts = {round(page.locator(s).bounding_box()["x"]) for s in  # type: ignore[index]
             (".explore-side", ".explore-mapbox", ".explore-charts", ".explore-tablebox")}
    assert len(lefts) == 1, lefts
    assert page.evaluate("document.scrollingElement.scrollHeight") > 2 * height
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    # KPIs: two a row, whole values and labels
    kpis = page.evaluate("""() => [...document.querySelectorAll('.explore-kpis .gh-kpi')].map(k => {
        const v = k.querySelector('.gh-kpi__value'), r = k.getBoundingClientRect();
        return {x: Math.round(r.x), right: r.right, cut: v.scrollWidth > v.clientWidth + 1,
                text: v.textContent,
                overlap: (() => { const a = k.querySelector('.gh-kpi__label').getBoundingClientRect(),
                                        b = k.querySelector('.gh-kpi__scope').getBoundingClientRect();
                                  return a.right > b.left + 0.5 && a.bottom > b.top + 0.5
                                         && b.bottom > a.top + 0.5; })()};
    })""")
    assert len(kpis) == 8 and len({k["x"] for k in kpis}) == 2, kpis
    assert not any(k["cut"] or k["overlap"] or "…" in k["text"] or k["right"] > width for k in kpis), kpis
    # legible: no text under 14px, chart ticks included (Plotly's 12px, zoomed)
    smallest = page.evaluate("""() => Math.min(...[...document.querySelectorAll('#explore-root *')]
        .filter(e => e.offsetParent && [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
        .map(e => parseFloat(getComputedStyle(e).fontSize)))""")
    assert smallest >= 14, smallest
    tick = page.evaluate("""() => { const t = document.querySelector('#explore-classes .ytick text');
        return parseFloat(t.style.fontSize) * parseFloat(getComputedStyle(t.closest('.explore-graph')).zoom); }""")
    assert tick >= 13.9, tick
    # the table: fewer columns, the rest scroll inside the grid
    shown = page.evaluate("""() => dash_ag_grid.getApi('explore-table').getAllDisplayedColumns()
        .map(c => c.getColId())""")
    assert "number" in shown and "status" in shown and "major" not in shown and "unit" not in shown, shown
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(shots_dir(tmp_path) / "explore-390x844.png"), full_page=True)
    # a row opens the case as a sheet over the whole screen; 关闭 closes it
    row = page.locator("#explore-table .ag-row").first
    row.scroll_into_view_if_needed()
    case_id = row.get_attribute("row-id")
    row.locator(".ag-cell").first.click()
    detail = page.locator("#explore-detail")
    expect(detail).to_have_class(re.compile("is-open"), timeout=10_000)
    expect(detail).to_contain_text(case_id or "")
    assert f"case={case_id}" in page.url
    sheet = detail.bounding_box()
    assert sheet == {"x": 0, "y": 0, "width": width, "height": height}, sheet
    close = detail.get_by_role("button", name="关闭")
    detail.evaluate("el => el.scrollTo(0, el.scrollHeight)")  # 关闭 stays at hand
    expect(close).to_be_in_viewport()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    page.screenshot(path=str(shots_dir(tmp_path) / "explore-detail-390x844.png"))
    close.click()
    expect(detail).not_to_have_class(re.compile("is-open"), timeout=10_000)
    assert "case=" not in page.url
    assert watch.errors == [] and watch.dialogs == [], watch.errors
    watch.assert_local_only()
    context.close()


# -- 综合考评 (the ranking panel) ---------------------------------------------------------------------
def _file_cases(sessions: sessionmaker[Session]) -> None:
    """Give the fixture's cases a 立案 time (their report + 10 min), a 派遣 time once past 立案 with a
    unit, and a 处置 time once past 派遣, so that the evaluation has a cohort (the figures of the
    other tests do not use them). The first unit (by id) gets all its cases' 派遣 times, every
    other unit only its first 5, fewer than ``min_cases``: the units' ranking has a ranked row and
    a 样本不足 row, both with a composite."""
    dispatched: dict[int, int] = {}
    with transaction(sessions) as s:
        for c in s.scalars(select(Case).order_by(Case.unit_id, Case.case_id)):
            if c.stage not in ("reported", "verified", "rejected") and c.reported_at is not None:
                c.filed_at = c.reported_at + timedelta(minutes=10)
                if c.stage != "filed" and c.unit_id is not None and c.dispatched_at is None:
                    n = dispatched[c.unit_id] = dispatched.get(c.unit_id, 0) + 1
                    if len(dispatched) == 1 or n <= 5:
                        c.dispatched_at = c.reported_at + timedelta(minutes=20)
                if c.stage in ("handled", "checked", "closed"):
                    c.handled_at = c.reported_at + timedelta(hours=2)
                    c.on_time_handle = c.on_time_close is not False


def ranking(client: Any, search: Any) -> dict[str, Any]:
    """POST the 综合考评 callback as the browser does; returns {"id.prop": value}."""
    from callbacks.explore import ranking_outputs

    outs = [(o.component_id, o.component_property) for o in ranking_outputs()]
    r = post_callback(client, outs, [{"id": "explore-url", "property": "search", "value": search},
                                     {"id": "explore-refresh", "property": "n_clicks", "value": 0}],
                      [{"id": "explore-ev-key", "property": "data", "value": None},
                       {"id": "explore-ev-month", "property": "value", "value": None},
                       {"id": "explore-ev-ranking", "property": "value", "value": None}],
                      ["explore-url.search"])
    assert r.status_code in (200, 204), r.get_data(as_text=True)[:500]
    if r.status_code == 204:
        return {}
    assert "Traceback" not in r.get_data(as_text=True)
    resp = r.get_json()["response"]
    return {f"{cid}.{prop}": v for cid, props in resp.items() for prop, v in props.items()}


def _expected(ev: Any) -> list[dict[str, Any]]:
    """The table's rows as evaluate() says: rank (or 样本不足), name, composite, grade, every indicator."""
    out = []
    for r in ev.rows:
        row = {"id": r.code, "name": r.name, "composite": "—" if r.composite is None else f"{r.composite:.2f}",
               "grade": r.grade or "—",
               "rank": r.rank if r.rank is not None else ("样本不足" if not r.sample_ok else "—")}
        for key, value in r.indicators.items():
            row[key] = value
        out.append(row)
    return out


def _shown_value(value: Any, measure: str) -> Any:
    if value is None:
        return "—"
    if measure == "rate":
        return f"{100 * value:.1f}%"
    if measure in ("area", "density") and isinstance(value, float):
        return f"{value:,.2f}"
    if measure == "score" and isinstance(value, float):
        return f"{value:.1f}"
    return value


def test_ranking_equals_evaluate_in_a_district_scope(web: Any, sessions: sessionmaker[Session]) -> None:
    from dashboard.figures.evaluation import ObjectKind, Period, evaluate
    from dashboard.rules.evalspec import INDICATORS, weights_from_settings

    _file_cases(sessions)
    client = client_of(web, sessions, "shift_lead", "990101")
    mine = district_scope(sessions, "990101")
    from app import EXTENSION_KEY

    settings = web.server.extensions[EXTENSION_KEY].services.explore.settings
    weights = weights_from_settings(settings)
    checked = 0
    for search, scope_code, kind in (
            ("?month=2026-11", "990101", ObjectKind.STREET),
            ("?month=2026-11&ranking=unit", "990101", ObjectKind.UNIT),
            ("?region=990101001&month=2026-11", "990101001", ObjectKind.COMMUNITY),
            ("?region=990101001001&month=2026-11&window=all", "990101001001", ObjectKind.GRID),
            ("?month=2026-10", "990101", ObjectKind.STREET),
            ("", "990101", ObjectKind.STREET),
            ("?ranking=dispatcher", "990101", ObjectKind.DISPATCHER)):
        got = ranking(client, search)
        with sessions() as s:
            ev = evaluate(s, scopes.get_scope(s, scope_code), kind,
                          Period.parse(Selection.parse(search).month or "2026-11", settings.tz), weights, now=NOW)
        rows = got["explore-ev-grid.rowData"]
        measures = {i.key: i.measure for i in INDICATORS[kind.group]}
        want = _expected(ev)
        assert [r["id"] for r in rows] == [w["id"] for w in want], search
        for r, w in zip(rows, want, strict=False):
            for key in ("name", "rank", "composite", "grade"):
                assert r[key] == w[key], (search, key)
            for key, measure in measures.items():
                assert r[key] == _shown_value(w[key], measure), (search, key)
                checked += 1
        labels = [c["headerName"] for c in got["explore-ev-grid.columnDefs"]]
        assert labels == ["名次", "名称", "综合指标值", "等级", *[i.label for i in INDICATORS[kind.group]]]
        month = Selection.parse(search).month or "2026-11"
        assert f"{month[:4]}年{int(month[5:])}月" in got["explore-ev-note.children"]
        assert got["explore-ev-msg.children"] in ("", "本月暂无可考评的对象")
        text = str(got)
        assert "白石" not in text and "990102" not in text and "U-BS" not in text, search
    assert checked > 50
    # the fixture does produce figures: some streets are ranked, and rates show in %
    streets = ranking(client, "?month=2026-11")["explore-ev-grid.rowData"]
    assert streets
    assert any(isinstance(r["filed"], int) and r["filed"] > 0 for r in streets)
    assert all(r["close_rate"] == "—" or r["close_rate"].endswith("%") for r in streets)
    # region names link down to the region, carrying the filters and the month
    assert all(r["href"] == Selection(region=r["id"], window="all", month="2026-10").href()
               for r in ranking(client, "?window=all&month=2026-10")["explore-ev-grid.rowData"])

    # another district by URL or a crafted callback: "未找到或无权查看", nothing of it
    for search in ("?region=990102", "?region=990102&ranking=unit", "?region=990102001&month=2026-11",
                   f"?region={OTHER_DISTRICT_GRID}", "?region=990109&ranking=supervisor"):
        got = ranking(client, search)
        assert got["explore-ev-msg.children"] == explore.NOT_FOUND and got["explore-ev-grid.rowData"] == []
        assert "白石" not in str(got) and "U-BS" not in str(got)
    # garbage: 200/204, a Chinese message, never a traceback
    for garbage in (None, 42, {"a": 1}, ["x"], "?month=2026-13", "?month=abc", "?ranking=everyone",
                    "?region=%00%ff&month=2026-11", "?" + "x=1&" * 600):
        got = ranking(client, garbage)
        if got:
            msg = got.get("explore-ev-msg.children", "")
            assert msg == "" or re.search(r"[\u4e00-\u9fff]", msg), garbage
    assert "考评月份" in ranking(client, "?month=2026-13")["explore-ev-msg.children"]
    assert "不能晚于本月" in ranking(client, "?month=2027-01")["explore-ev-msg.children"]
    # the crafted outputs of a grid: no ranking, a message
    assert ranking(client, "?region=990101001001001")["explore-ev-grid.rowData"] == []
    # cached per (scope, kind, month) in the service: the same object within the minute
    service = web.server.extensions[EXTENSION_KEY].services.explore
    with sessions() as s:
        a = service.evaluation(s, mine, "street", "2026-11", NOW)
        b = service.evaluation(s, mine, "street", "2026-11", NOW)
        c = service.evaluation(s, mine, "street", "2026-10", NOW)
    assert a is b and c is not a


def test_ranking_month_and_objects_round_trip_in_the_url() -> None:
    from dash.exceptions import PreventUpdate

    from callbacks.explore import FILTERS, navigate_to

    q = "region=990101&window=30d&month=2026-10&ranking=unit"
    assert Selection.parse(q).to_query() == q and Selection.parse("?" + q).month == "2026-10"
    assert Selection.parse("?month=2026-10&case=C-1").view_key == ""  # the figures ignore the ranking
    assert Selection.parse("?ranking=regions").to_query() == ""  # the default is left out
    with pytest.raises(SelectionError, match="考评月份"):
        Selection.parse("?month=2026-1")
    with pytest.raises(SelectionError, match="考评对象"):
        Selection.parse("?ranking=all")

    def values(month: Any = None, ranking: Any = None, **kw: Any) -> list[Any]:
        return [kw.get(f) for f in FILTERS] + [month, ranking]

    search = "?region=990101&window=30d"
    # choosing a month or objects: in the URL; the current month and the regions are defaults
    assert navigate_to("explore-ev-month", values("2026-10", "regions", window="30d"), [None] * 4, search,
                       this_month="2026-11") == search + "&month=2026-10"
    assert navigate_to("explore-ev-ranking", values("2026-10", "shift_lead", window="30d"), [None] * 4,
                       search + "&month=2026-10", this_month="2026-11") == search + "&month=2026-10&ranking=shift_lead"
    assert navigate_to("explore-ev-month", values("2026-11", "regions", window="30d"), [None] * 4,
                       search + "&month=2026-10", this_month="2026-11") == search
    with pytest.raises(PreventUpdate):  # the controls merely show the URL
        navigate_to("explore-ev-month", values("2026-10", None, window="30d"), [None] * 4,
                    search + "&month=2026-10", this_month="2026-11")
    with pytest.raises(PreventUpdate):  # garbage from a crafted control
        navigate_to("explore-ev-month", values("2026-99", None, window="30d"), [None] * 4, search,
                    this_month="2026-11")
    # a region link keeps the month and the objects (from the controls: chosen a moment ago)
    go = [None, None, None, {"region": "990101001", "at": 1}]
    assert navigate_to("explore-go", values("2026-09", "unit", window="30d"), go, search + "&month=2026-10",
                       this_month="2026-11") == "?region=990101001&window=30d&month=2026-09&ranking=unit"
    # callers that only know the filters: the URL's month stays
    assert navigate_to("explore-go", [v for v in values(window="30d")[:len(FILTERS)]], go,
                       search + "&month=2026-10") == "?region=990101001&window=30d&month=2026-10"


def _assert_ranks_and_order(grid: Any) -> None:
    """名次 shows a rank, 样本不足 or — (never AG Grid's "Invalid Number"); 综合指标值 sorts as numbers."""
    ranks = grid.locator(".ag-row [col-id='rank']").all_inner_texts()
    assert "样本不足" in ranks and all(t.isdigit() or t in ("样本不足", "—") for t in ranks), ranks
    assert "Invalid" not in grid.inner_text()
    grid.locator(".ag-header-cell[col-id='composite']").click()  # ascending
    shown = [t for t in grid.locator(".ag-row [col-id='composite']").all_inner_texts() if t != "—"]
    values = [float(t) for t in shown]
    assert len(values) >= 2 and values == sorted(values), shown


@pytest.mark.browser
def test_ranking_panel_at_1920_deep_link_and_click_through(browser: Any, explore_server: str,
                                                           sessions: sessionmaker[Session],
                                                           tmp_path: Any) -> None:
    from playwright.sync_api import expect

    _file_cases(sessions)
    context, page, watch = signed_in_page(browser, sessions, explore_server, "shift_lead", "990101")
    page.goto(explore_server + "/explore?window=all&month=2026-11")
    panel = page.locator(".explore-evalbox")
    panel.scroll_into_view_if_needed()
    expect(panel.locator("#explore-ev-note")).to_contain_text("2026年11月", timeout=20_000)
    expect(panel.locator("#explore-ev-note")).to_contain_text("各街道")
    grid = panel.locator("#explore-ev-grid")
    expect(grid.locator(".ag-header-cell-text", has_text="按期结案率").first).to_be_attached()
    expect(grid.locator(".ag-header-cell-text", has_text="综合指标值").first).to_be_visible()
    expect(grid.locator(".ag-header-cell-text", has_text="等级").first).to_be_visible()
    link = grid.locator("a.explore-evlink", has_text="江东街道")
    expect(link).to_be_visible(timeout=10_000)
    assert "白石" not in panel.inner_text()
    box = panel.bounding_box()
    assert box and box["width"] > 1500 and box["height"] > 250
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.locator("#explore-ev-month")).to_contain_text("2026年11月")
    page.screenshot(path=str(shots_dir(tmp_path) / "explore-evaluation-1920x1080.png"))
    # objects: the units of the district
    page.locator("#explore-ev-ranking").click()
    page.get_by_role("option", name="处置单位").click()
    expect(page).to_have_url(re.compile(r"ranking=unit"), timeout=10_000)
    expect(panel.locator("#explore-ev-note")).to_contain_text("处置单位", timeout=10_000)
    expect(grid.locator(".ag-header-cell-text", has_text="按时处置率").first).to_be_attached()
    expect(grid.locator(".ag-row [col-id='rank']").first).to_be_visible(timeout=10_000)
    _assert_ranks_and_order(grid)
    page.screenshot(path=str(shots_dir(tmp_path) / "explore-evaluation-units-1920x1080.png"))
    # a month deep link round-trips: the selector shows it, the URL keeps it
    page.goto(explore_server + "/explore?window=all&month=2026-10")
    expect(page.locator("#explore-ev-note")).to_contain_text("2026年10月", timeout=20_000)
    expect(page.locator("#explore-ev-month")).to_contain_text("2026年10月")
    assert "month=2026-10" in page.url
    # a region name goes down to the region, the filters and the month kept
    page.locator("#explore-ev-grid a.explore-evlink", has_text="江东街道").click()
    expect(page.locator("#explore-crumbs .is-current")).to_contain_text("江东街道", timeout=10_000)
    assert "region=990101001" in page.url and "window=all" in page.url and "month=2026-10" in page.url
    expect(page.locator("#explore-ev-note")).to_contain_text("各社区", timeout=10_000)
    assert watch.errors == [] and watch.dialogs == []
    context.close()


# -- bidi controls (issue 12 point 13) ----------------------------------------------------------
BIDI_NUMBER = "2026\u202e000008"  # would show as "2026800000"
BIDI_ADDRESS = "测试路\u202e号81\u202c（东门）"  # would show as "测试路18号（东门）"
BIDI_DESCRIPTION = "井盖\u2066缺失\u2069 \u202bsee\u202a exe.txt\u202d"
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _store_bidi_case(sessions: sessionmaker[Session]) -> None:
    """Put bidi controls into C-0008 as raw SQL, as rows stored by an older release would hold them."""
    from sqlalchemy import text

    with transaction(sessions) as s:
        s.execute(text("UPDATE cases SET number = :n, address = :a, description = :d WHERE case_id = 'C-0008'"),
                  {"n": BIDI_NUMBER, "a": BIDI_ADDRESS, "d": BIDI_DESCRIPTION})
        case = s.scalars(select(Case).where(Case.case_id == "C-0008")).one()
        # Overdue, so that the wall's queue lists it too.
        case.stage, case.closed_at, case.paused_at, case.on_time_close = "dispatched", None, None, None
        case.clock_stage, case.limit_minutes = "handle", 600.0
        case.limit_unit, case.deadline_source = "calendar_hours", "table"
        case.clock_started_at, case.deadline_at = NOW - timedelta(hours=12), NOW - timedelta(hours=2)
        stored = s.execute(text("SELECT address FROM cases WHERE case_id = 'C-0008'")).scalar_one()
        assert stored == BIDI_ADDRESS  # the database keeps what the producer sent


def _no_bidi(value: str) -> str:
    return "".join(ch for ch in value if ch not in BIDI)


def test_bidi_controls_reach_neither_the_table_nor_the_exports(web: Any, sessions: sessionmaker[Session],
                                                              timing: Any) -> None:
    """Issue 12 point 13: U+202A–U+202E and U+2066–U+2069 never reorder what /explore and its exports show."""
    import zipfile

    from dashboard.figures.liveview import LiveView

    _store_bidi_case(sessions)
    client = client_of(web, sessions, "shift_lead", None)
    got = show(client, "?window=all")
    row = next(r for r in got["explore-table.rowData"] if r["case_id"] == "C-0008")
    assert (row["number"], row["address"], row["description"]) == (
        _no_bidi(BIDI_NUMBER), _no_bidi(BIDI_ADDRESS), _no_bidi(BIDI_DESCRIPTION))
    csv_bytes = client.get("/explore/export.csv?window=all").data
    xlsx_bytes = client.get("/explore/export.xlsx?window=all").data
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes)) as book:
        xml = b"".join(book.read(name) for name in book.namelist())
    for data in (csv_bytes, xml):
        text = data.decode("utf-8", errors="strict") if data is csv_bytes else xml.decode("utf-8")
        assert _no_bidi(BIDI_ADDRESS) in text and _no_bidi(BIDI_DESCRIPTION) in text
        assert not BIDI & set(text)
        # Nor as XML character references.
        assert not any(f"&#{ord(ch)};".encode() in data or f"&#x{ord(ch):x};".encode() in data.lower() for ch in BIDI)
    # The wall's live view reads the same columns (the queue shows the number).
    with sessions() as s:
        live = LiveView.load(s, timing, NOW)
    row = next(r for r in live.overdue_queue(400, 0).overdue if r.case_id == "C-0008")
    assert (row.number, row.description) == (_no_bidi(BIDI_NUMBER), _no_bidi(BIDI_DESCRIPTION))


@pytest.mark.browser
def test_bidi_controls_do_not_reorder_the_page(browser: Any, explore_server: str,
                                               sessions: sessionmaker[Session]) -> None:
    """Issue 12 point 13, in Chromium: the case's number, address and description show in stored order."""
    from playwright.sync_api import expect

    _store_bidi_case(sessions)
    context, page, watch = signed_in_page(browser, sessions, explore_server)
    page.goto(explore_server + "/explore?window=all&case=C-0008")
    detail = page.locator("#explore-detail")
    expect(detail).to_have_class(re.compile("is-open"), timeout=20_000)
    expect(detail.locator(".explore-detail__desc")).to_have_text(_no_bidi(BIDI_DESCRIPTION))
    expect(detail).to_contain_text(_no_bidi(BIDI_ADDRESS))
    expect(page.locator("#explore-table-note")).to_contain_text("共", timeout=10_000)
    page.evaluate("""() => dash_ag_grid.getApi('explore-table').setFilterModel(
        {case_id: {filterType: 'text', type: 'equals', filter: 'C-0008'}})""")
    expect(page.locator("#explore-table .ag-row")).to_have_count(1, timeout=10_000)
    expect(page.locator("#explore-table .ag-row")).to_contain_text(_no_bidi(BIDI_NUMBER))
    text = page.evaluate("() => document.body.innerText")
    assert not BIDI & set(text)
    assert _no_bidi(BIDI_ADDRESS) in text
    assert watch.errors == [] and watch.dialogs == []
    context.close()


@pytest.mark.browser
def test_day_trend_labels_stay_days_in_december(browser: Any, tmp_path: Any) -> None:
    """Plotly.js reads "12-01" as a date (January 2012) unless the axis is a category axis:
    the trend figure, drawn by the plotly.js that ships with plotly (no CDN), keeps the days."""
    from plotly.io import write_html

    from layouts.explore import trend_figure

    points = [explore.TrendPoint(datetime(2026, 12, d, tzinfo=BEIJING), f"12-{d:02d}", d, d - 1) for d in range(1, 8)]
    page_file = tmp_path / "trend.html"
    write_html(trend_figure(points, "days"), str(page_file), include_plotlyjs=True, full_html=True)
    page = browser.new_page()
    page.goto(page_file.as_uri())
    ticks = page.locator(".xtick text")
    ticks.first.wait_for(state="attached", timeout=10_000)
    assert ticks.all_text_contents() == [f"12-{d:02d}" for d in range(1, 8)]
    page.close()
