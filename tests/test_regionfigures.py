"""A region's wall figures from the live view equal a SQL recount of the region (issue 15).

On apicitykit's two-district city (青山区, 白石区; a gridless case): for each district, the
view's ``scoped_hot_spots``, ``scoped_unit_board``, ``scoped_overdue_queue`` and the
各区对比 rows (``district_rows``) equal SQL at the view's instant — the read API's SQL
definitions (``readapi.grids``, ``readapi.units``, ``readapi.overdue``, ``readapi.summary``)
and COUNTs over apicitykit's hand-joined ``district_cases`` — after a load, after apply() of
changes that move cases between districts, units and stages, after ticks past deadlines and
hours, and across a snapshot (state and file) round trip. An old-format snapshot is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from apicitykit import NOW, count_of, district_cases
from citykit import add_case, running_clock
from dashboard.figures import readapi
from dashboard.figures.districts import DOWN, FLAT, UP, hourly_mean, trend_of
from dashboard.figures.heat import GRID_METRICS
from dashboard.figures.liveview import DESCRIPTION_CHARS, LiveView, reference_fingerprint
from dashboard.figures.readapi import OPEN_VALUES
from dashboard.figures.wallfigures import NEW_WINDOW
from dashboard.settings import Settings
from dashboard.store import reference
from dashboard.store.db import transaction
from dashboard.store.models import Case, Region, Unit
from dashboard.store.queries import day_window
from dashboard.store.scope import get_scope
from democitykit import build_demo
from feeds.snapshot import SnapshotError, SnapshotStore

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")
DISTRICTS = ("990101", "990102")
MINUTES = ("overdue_work_minutes", "overdue_calendar_minutes", "remaining_minutes")


def _rows_equal(got: Any, want: Any) -> None:
    """Queue rows: equal but for float minutes (approx) and the description (the view keeps its start)."""
    assert [r.case_id for r in got] == [r.case_id for r in want]
    for g, w in zip(got, want, strict=True):
        for name in MINUTES:
            assert getattr(g, name) == pytest.approx(getattr(w, name), abs=1e-6), (g.case_id, name)
        strip = dict.fromkeys(MINUTES, 0.0)
        assert g.__class__(**{**g.__dict__, **strip}) == w.__class__(
            **{**w.__dict__, **strip, "description": (w.description or "")[:DESCRIPTION_CHARS] or None}), g.case_id


def recount(s: Session, view: LiveView, timing: Any) -> dict[str, Any]:
    """Every region figure of the view equals SQL at the view's instant; returns the SQL rows."""
    at = view.as_of
    w = day_window(timing.calendar.tz, at)
    districts = s.execute(select(Region.code, Region.name).where(Region.level == "district")
                          .order_by(Region.code)).all()
    rows = view.district_rows()
    assert [(r.code, r.name) for r in rows] == [tuple(d) for d in districts]
    out: dict[str, Any] = {}
    for row in rows:
        scope = get_scope(s, row.code)
        grids = scope.grid_ids
        # hot spots: the region's grids by readapi.grids, top n by value, ties by code
        page = readapi.grids(s, scope, timing, at, limit=1000)
        for metric in GRID_METRICS:
            ranked = sorted((g for g in page.grids if getattr(g, metric)), key=lambda g: (-getattr(g, metric), g.code))
            for n in (1, 2, 10):
                got = [(h.code, h.community, h.street, h.district, h.value)
                       for h in view.scoped_hot_spots(grids, metric, n)]
                assert got == [(g.code, g.community, g.street, g.district, getattr(g, metric))
                               for g in ranked[:n]], (row.code, metric, n)
        # the unit board of the units working in the region: readapi.units of its scope
        board = view.scoped_unit_board(grids)
        assert board == list(readapi.units(s, scope, timing, at).units), row.code
        # the overdue queue: readapi.overdue of the scope, split into its two sections
        sql = readapi.overdue(s, scope, timing, at, limit=1000)
        for limit, soon_limit in ((1000, 1000), (1, 0), (2, 1)):
            q = view.scoped_overdue_queue(grids, limit, soon_limit)
            assert (q.at, q.overdue_total, q.due_soon_total) == (sql.at, sql.overdue_total, sql.due_soon_total)
            _rows_equal(q.overdue, [r for r in sql.cases if r.overdue][:limit])
            _rows_equal(q.due_soon, [r for r in sql.cases if not r.overdue][:soon_limit])
        # 各区对比: the KPI strip of the district's scope, and the trend counted here
        summary = readapi.summary(s, scope, timing, at)
        for name in ("open", "overdue", "due_soon", "urgent", "reported", "closed", "closed_on_time",
                     "closed_flagged", "on_time_close_rate"):
            assert getattr(row, name) == getattr(summary, name), (row.code, name)
        cases = district_cases(row.code)
        assert row.open == count_of(s, cases, Case.stage.in_(OPEN_VALUES))
        assert row.new_hour == count_of(s, cases, Case.reported_at > at - NEW_WINDOW, Case.reported_at <= at)
        stamps = [_aware(c.reported_at) for c in s.scalars(
            cases.where(Case.reported_at >= w.start, Case.reported_at <= at))]
        series = [0] * (int((at - w.start) // timedelta(hours=1)) + 1)
        for t in stamps:
            series[int((t - w.start) // timedelta(hours=1))] += 1
        assert row.hourly == tuple(series), row.code
        mean = sum(series) / max((at - w.start) / timedelta(hours=1), 1.0)
        assert row.hourly_mean == pytest.approx(mean)
        assert row.trend == (UP if row.new_hour > 1.2 * mean else DOWN if row.new_hour < 0.8 * mean else FLAT)
        out[row.code] = {"board": board, "row": row}
    # the districts' rows add up to the city's figures but for the cases in no district
    city = view.kpis()
    nowhere = count_of(s, select(Case), Case.grid_id.is_(None), Case.stage.in_(OPEN_VALUES))
    assert sum(r.open for r in rows) + nowhere == city.open
    return out


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _ids(s: Session, model: Any, *codes: str) -> list[int]:
    found = dict(s.execute(select(model.code, model.id).where(model.code.in_(codes))).all())
    return [found[c] for c in codes]


def test_load_apply_and_ticks_equal_sql_per_district(api_city: dict[str, Any], settings: Settings,
                                                     sessions: sessionmaker[Session]) -> None:
    grids = api_city["grids"]
    b1, b2 = grids["990102001001001"], grids["990102001001002"]
    with sessions() as s:
        timing = reference.timing_for(settings, s)
        qs, bs = _ids(s, Unit, "U-QS", "U-BS")
        view = LiveView.load(s, timing, NOW)
        first = recount(s, view, timing)
    # as built: each district's board holds its own unit only; C-A4 is 青山区's 今日结案 and late 处置
    assert [r.code for r in first["990101"]["board"]] == ["U-QS"]
    assert [r.code for r in first["990102"]["board"]] == ["U-BS"]
    qs_row = first["990101"]["board"][0]
    assert (qs_row.closed_today, qs_row.handled_month, qs_row.on_time_month) == (1, 2, 1)
    assert first["990101"]["row"].overdue == 1 and first["990102"]["row"].overdue == 2
    assert view.scoped_hot_spots(None, "open", 10) == view.hot_spots("open", 10)
    assert view.scoped_overdue_queue(None, 5) == view.overdue_queue(5)
    assert view.scoped_unit_board(None) == view.unit_board()

    # Changes moving cases between districts, units and stages, applied as change notices.
    with transaction(sessions) as s:
        # C-B2 (白石区, overdue on 处置) re-dispatched to 青山区's unit: U-QS works in 白石区 now
        s.execute(update(Case).where(Case.case_id == "C-B2").values(unit_id=qs))
        # C-A4 (closed today, handled late this month) relocated into 白石区: its 结案 and its
        # 处置 fact leave 青山区's board and count for U-QS on 白石区's
        s.execute(update(Case).where(Case.case_id == "C-A4").values(grid_id=b2))
        # C-A2 (立案, 青山区) dispatched to 白石区's unit with a 处置 clock due in 20 minutes
        s.execute(update(Case).where(Case.case_id == "C-A2").values(
            stage="dispatched", unit_id=bs, dispatched_at=NOW, **running_clock(NOW, "handle", 20, 240)))
        # C-B1 closed on time; a new case reported in 白石区 just now
        s.execute(update(Case).where(Case.case_id == "C-B1").values(
            stage="closed", closed_at=NOW, on_time_close=True, handled_at=NOW - timedelta(minutes=10),
            on_time_handle=True, clock_stage=None, deadline_at=None))
        add_case(s, NOW, "C-B9", b1, "reported", reported_at=NOW - timedelta(minutes=5),
                 **running_clock(NOW, "verify", 50, 60))
        # C-A3 (核查, 青山区) moved to 白石区 with its month fact
        s.execute(update(Case).where(Case.case_id == "C-A3").values(grid_id=b1))
    with sessions() as s:
        changes = view.apply(s, ["C-B2", "C-A4", "C-A2", "C-B1", "C-B9", "C-A3"], NOW)
        assert changes.changed
        second = recount(s, view, timing)
    bs_board = {r.code: r for r in second["990102"]["board"]}
    assert set(bs_board) == {"U-BS", "U-QS"}
    assert (bs_board["U-QS"].overdue, bs_board["U-QS"].closed_today, bs_board["U-QS"].handled_month) == (1, 1, 2)
    qs_board = {r.code: r for r in second["990101"]["board"]}
    assert set(qs_board) == {"U-QS", "U-BS"}  # U-BS's C-A2 is in 青山区
    assert qs_board["U-QS"].closed_today == 0 and qs_board["U-QS"].handled_month == 0
    assert (qs_board["U-BS"].pending, qs_board["U-BS"].overdue) == (1, 0)
    assert (second["990102"]["row"].closed, second["990102"]["row"].new_hour) == (2, 3)  # C-A4, C-B1; B1, B2, B9

    # The clock alone: C-A2's 处置 deadline passes (U-BS late in 青山区), then hours go by.
    for step in (timedelta(minutes=25), timedelta(hours=3), timedelta(hours=14)):
        at = view.as_of + step
        view.tick(at)
        with sessions() as s:
            third = recount(s, view, timing)
            fresh = LiveView.load(s, timing, at)
        if step == timedelta(minutes=25):
            assert {r.code: r.overdue for r in third["990101"]["board"]}["U-BS"] == 1
            assert third["990101"]["row"].overdue == 2
        for code in DISTRICTS:
            g = get_scope_ids(sessions, code)
            assert view.scoped_unit_board(g) == fresh.scoped_unit_board(g)
            assert view.scoped_overdue_queue(g, 100) == fresh.scoped_overdue_queue(g, 100)
        assert view.district_rows() == fresh.district_rows()
    assert view.district_rows()[0].hourly == (0,) * len(view.district_rows()[0].hourly)  # the next day


def get_scope_ids(sessions: sessionmaker[Session], code: str) -> frozenset[int]:
    with sessions() as s:
        return get_scope(s, code).grid_ids


def test_snapshot_round_trip_keeps_the_region_figures(api_city: dict[str, Any], settings: Settings,
                                                      sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions() as s:
        timing = reference.timing_for(settings, s)
        view = LiveView.load(s, timing, NOW)
        ref = reference_fingerprint(s)
    scopes = [get_scope_ids(sessions, c) for c in DISTRICTS]

    def figures(v: LiveView) -> list[Any]:
        out: list[Any] = [v.district_rows()]
        for g in scopes:
            out += [v.scoped_unit_board(g), v.scoped_overdue_queue(g, 100),
                    *(v.scoped_hot_spots(g, m, 10) for m in GRID_METRICS)]
        return out

    arrays, meta = view.export_state()
    again = LiveView.from_state(timing, arrays, meta)
    assert figures(again) == figures(view)
    # through the file
    store = SnapshotStore(settings, directory=tmp_path / "liveview")
    tz = str(timing.calendar.tz)
    header = store.header(last_id="1-0", run_id="r", reference=ref, tz=tz, open_cases=view.open_cases)
    assert store.write(header, arrays, meta, force=True)
    snap = store.read(reference=ref, tz=tz)
    restored = LiveView.from_state(timing, snap.arrays, snap.meta)
    assert figures(restored) == figures(view)
    # and it keeps moving: a month fact changing district after the restore (``unread``: applied
    # before any region read, while its fact arrays are still to be built from the dicts)
    unread = LiveView.from_state(timing, snap.arrays, snap.meta)
    with transaction(sessions) as s:
        s.execute(update(Case).where(Case.case_id == "C-A4").values(grid_id=api_city["grids"]["990102001001001"]))
    with sessions() as s:
        for v in (restored, view, unread):
            v.apply(s, ["C-A4"], NOW)
        assert figures(restored) == figures(view) == figures(unread)
        recount(s, restored, timing)
    # A snapshot of the format before month facts had a grid is refused (SQL load then) ...
    assert store.write({**header, "format": 1}, arrays, meta, force=True)
    with pytest.raises(SnapshotError, match="format"):
        store.read(reference=ref, tz=tz)
    # ... and its month facts would not be taken either.
    old = {**meta, "month": [f[:3] for f in meta["month"]]}
    assert meta["month"]
    with pytest.raises(ValueError, match="month facts"):
        LiveView.from_state(timing, arrays, old)


def test_trend_rule() -> None:
    assert trend_of(0, 0.0) == FLAT
    assert (trend_of(13, 10.0), trend_of(12, 10.0), trend_of(8, 10.0), trend_of(7, 10.0)) == (UP, FLAT, FLAT, DOWN)
    assert trend_of(1, 0.0) == UP and trend_of(0, 0.5) == DOWN
    assert hourly_mean(6, timedelta(minutes=20)) == 6.0  # the first hour counts as a whole one
    assert hourly_mean(6, timedelta(hours=3)) == 2.0


def test_a_unit_working_in_two_districts_is_ranked_against_each_districts_own_rate(
        api_city: dict[str, Any], settings: Settings, sessions: sessionmaker[Session]) -> None:
    """The smoothing prior of a region's board is the region's month rate, not the city's."""
    grids = api_city["grids"]
    with transaction(sessions) as s:
        (bs,) = _ids(s, Unit, "U-BS")
        for i in range(6):  # 白石区: U-BS handled six cases late this month
            add_case(s, NOW, f"C-L{i}", grids["990102001001002"], "closed", unit_id=bs,
                     reported_at=NOW - timedelta(days=1), handled_at=NOW - timedelta(hours=20),
                     on_time_handle=False, closed_at=NOW - timedelta(hours=19), on_time_close=False)
    with sessions() as s:
        timing = reference.timing_for(settings, s)
        view = LiveView.load(s, timing, NOW)
        recount(s, view, timing)
        board = view.scoped_unit_board(get_scope(s, "990102").grid_ids)
    (row,) = board
    # region prior = 0/6 → smoothed (0 + 10·0)/(6 + 10) = 0; the city's prior (1/8) would give > 0
    assert row.code == "U-BS" and row.handled_month == 6 and row.smoothed_rate == 0.0
    city_row = {r.code: r for r in view.unit_board()}["U-BS"]
    assert city_row.smoothed_rate > 0.0


def test_the_demo_city_per_district_equals_sql(settings: Settings, sessions: sessionmaker[Session],
                                               demo_city_dir: Path) -> None:
    """Many cases, every stage, units working across districts: each district's figures are SQL's."""
    # The city's afternoon (the latest 15:00 local): right after local midnight "today" has no
    # reports yet, and the check that districts count today's 上报 failed at 00:30 (CI).
    local_now = datetime.now(settings.tz).replace(microsecond=0)
    at = local_now.replace(hour=15, minute=0, second=0)
    if at > local_now - timedelta(minutes=1):
        at -= timedelta(days=1)
    at = at.astimezone(UTC)
    build_demo(settings, sessions, demo_city_dir, days=4, now=at)
    with sessions() as s:
        timing = reference.timing_for(settings, s)
        view = LiveView.load(s, timing, at)
        out = recount(s, view, timing)
        assert len(out) >= 2 and any(o["row"].overdue for o in out.values())
        assert any(o["board"] for o in out.values()) and any(o["row"].reported for o in out.values())
        view.tick(at + timedelta(hours=2))
        recount(s, view, timing)
