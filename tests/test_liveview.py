"""The wall's live view (dashboard/figures/liveview.py) against SQL ground truth.

Cases go through the real feed (Producer → Redis → Ingest → SQL); every figure of the view is
then compared with COUNT queries written here, independently of the view, at the same instant:
after a load, after incremental applies of the change notices' case ids, after ticks that move
cases past their deadlines (no event) and over local midnight.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

import feedkit
from dashboard.figures.liveview import GRID_METRICS, LiveView
from dashboard.figures.wallfigures import PRIOR_CASES
from dashboard.rules.lifecycle import EventType as E
from dashboard.store.models import Case, CaseEvent, Grid, Unit
from feeds.contract import CaseEventMessage
from liveviewkit import G1, G2, G3, TZ, L, check, msgs, same_view


# -- the feed -----------------------------------------------------------------------------------------
@pytest.fixture
def noticed_feed(settings, sessions, redis_client, feed_city):  # type: ignore[no-untyped-def]
    """Publish, ingest everything; returns the case ids of the change notices it wrote."""
    return feedkit.notice_pusher(settings, sessions, redis_client, feed_city, consumer="lv", batch_size=40)


def random_cases(seed: int, n: int, start: datetime, spread_h: float) -> list[list[CaseEventMessage]]:
    rng = random.Random(seed)
    return [feedkit.random_history(rng, f"r{seed}-{i:03d}",
                                   start + timedelta(minutes=rng.uniform(0, spread_h * 60)), max_len=10)
            for i in range(n)]


def instants(messages: list[CaseEventMessage]) -> list[datetime]:
    return sorted({m.occurred_at.astimezone(TZ) for m in messages})


# -- tests ----------------------------------------------------------------------------------------------
def test_load_and_ticks_equal_sql(sessions, feed_city, noticed_feed):  # type: ignore[no-untyped-def]
    start = L("2026-11-16 06:00")  # Monday; a week of random histories
    cases = random_cases(1, 160, start, 72)
    noticed_feed([m for c in cases for m in c])
    times = instants([m for c in cases for m in c])
    at = times[len(times) // 2].replace(microsecond=0) + timedelta(seconds=1)
    with sessions() as s:
        view = LiveView.load(s, feed_city.timing, at)
    assert view.open_cases > 20
    t = check(view, sessions, feed_city.timing, at)
    assert t["kpis"]["reported"] and t["kpis"]["overdue"] and t["queue"]
    # The clock alone: minutes, hours, over midnight, days later.
    for step in (timedelta(minutes=7), timedelta(hours=3), timedelta(hours=9), timedelta(days=2, hours=1)):
        at = at + step
        view.tick(at)
        check(view, sessions, feed_city.timing, at)
        with sessions() as s:
            same_view(view, LiveView.load(s, feed_city.timing, at))


def test_change_notices_applied_equal_a_fresh_load(sessions, feed_city, noticed_feed):  # type: ignore[no-untyped-def]
    """Histories arrive in two halves; applying the notices' case ids gives the fresh-load view."""
    cases = random_cases(2, 150, L("2026-11-17 07:00"), 48)
    rng = random.Random(3)
    cut = [rng.randint(0, len(c)) for c in cases]
    noticed_feed([m for c, k in zip(cases, cut, strict=False) for m in c[:k]])
    at = L("2026-11-19 10:30")
    with sessions() as s:
        view = LiveView.load(s, feed_city.timing, at)
    before = {m: view.grid_values(m) for m in GRID_METRICS}
    version = view.version
    changed_ids = noticed_feed([m for c, k in zip(cases, cut, strict=False) for m in c[k:]])
    assert changed_ids
    with sessions() as s:
        changes = view.apply(s, changed_ids, at)
    assert changes.changed and view.version > version
    check(view, sessions, feed_city.timing, at)
    with sessions() as s:
        same_view(view, LiveView.load(s, feed_city.timing, at))
    # grid_changes_since names exactly the grids whose value changed, with the new values.
    for metric in GRID_METRICS:
        after = view.grid_values(metric)
        diff = {code: after.get(code, 0) for code in set(before[metric]) | set(after)
                if before[metric].get(code, 0) != after.get(code, 0)}
        assert view.grid_changes_since(version, metric) == diff, metric
        assert view.grid_changes_since(view.version, metric) == {}
    # Applying the same ids again changes nothing visible.
    with sessions() as s:
        again = view.apply(s, changed_ids, at)
    assert not again.changed and again.grids == frozenset() and view.version == changes.version


def test_a_case_crossing_its_deadline_becomes_overdue_with_no_event(sessions, feed_city, noticed_feed):  # type: ignore[no-untyped-def]
    # 暴露垃圾 in an A grid, dispatched Tue 10:00: 4 工作时 → due Tue 16:00.
    noticed_feed(msgs("late", (E.REPORTED, "2026-11-24 09:50"), (E.FILED, "2026-11-24 09:55"),
                      (E.DISPATCHED, "2026-11-24 10:00", {"unit_code": "U-SZ"}), grid_code=G2, urgency="normal")
                 + msgs("calm", (E.REPORTED, "2026-11-24 15:50"), grid_code=G3))  # 立案 0.5 工作时: due 16:20
    with sessions() as s:
        events = s.scalar(select(func.count()).select_from(CaseEvent))
        deadline = s.scalar(select(Case.deadline_at).where(Case.case_id == "late"))
    assert deadline == L("2026-11-24 16:00")
    at = L("2026-11-24 15:59:59")
    with sessions() as s:
        view = LiveView.load(s, feed_city.timing, at)
    assert view.kpis().overdue == 0 and view.grid_values("overdue") == {}
    assert [r.case_id for r in view.overdue_queue().due_soon] == ["late"]  # 临期: < 20 % of 240 min left
    version = view.version
    assert not view.tick(L("2026-11-24 16:00")).changed  # at the deadline itself: not yet
    changes = view.tick(L("2026-11-24 16:00:00.000001"))
    assert changes.changed and changes.grids == {G2} and changes.units == {"U-SZ"}
    assert view.version == version + 1
    assert view.grid_changes_since(version, "overdue") == {G2: 1}
    assert view.grid_changes_since(version, "open") == {}
    k = view.kpis()
    assert (k.overdue, k.due_soon) == (1, 0)
    q = view.overdue_queue()
    assert [r.case_id for r in q.overdue] == ["late"] and q.overdue_total == 1
    row = q.overdue[0]
    assert (row.stage_label, row.clock_label, row.unit_name, row.minor_name) == ("派遣", "处置", "单位U-SZ", "暴露垃圾")
    assert (row.grid_code, row.community, row.street, row.district) == (G2, "测试社区", "测试街道", "测试区")
    assert [r.overdue for r in view.unit_board() if r.code == "U-SZ"] == [1]
    # Later on the minutes grow, with no version bump.
    assert not view.tick(L("2026-11-24 16:10")).changed
    assert view.overdue_queue().overdue[0].overdue_work_minutes == pytest.approx(10)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == events  # no event needed
    check(view, sessions, feed_city.timing, L("2026-11-24 16:10"))


def test_day_rollover_and_the_last_hour(sessions, feed_city, noticed_feed):  # type: ignore[no-untyped-def]
    noticed_feed(msgs("a", (E.REPORTED, "2026-11-24 22:10"), (E.FILED, "2026-11-24 22:20"), grid_code=G1)
                 + msgs("b", (E.REPORTED, "2026-11-24 23:40"), grid_code=G2, urgency="urgent")
                 + msgs("c", (E.REPORTED, "2026-11-24 20:00"), (E.FILED, "2026-11-24 20:05"),
                        (E.DISPATCHED, "2026-11-24 20:10", {"unit_code": "U-HW"}), (E.HANDLED, "2026-11-24 21:00"),
                        (E.CLOSED, "2026-11-24 23:50"), grid_code=G3))
    at = L("2026-11-24 23:55")
    with sessions() as s:
        view = LiveView.load(s, feed_city.timing, at)
    t = check(view, sessions, feed_city.timing, at)
    assert (t["kpis"]["reported"], t["kpis"]["closed"]) == (3, 1)
    assert view.grid_values("new_hour") == {G2: 1}
    assert [r.closed_today for r in view.unit_board() if r.code == "U-HW"] == [1]
    version = view.version
    at = L("2026-11-25 00:05")  # the next local day: today's flow starts at 0, the hour still holds b
    assert view.tick(at).changed and view.version > version
    k = view.kpis()
    assert (k.day.isoformat(), k.reported, k.filed, k.closed, k.on_time_close_rate) == ("2026-11-25", 0, 0, 0, None)
    assert (k.open, k.urgent) == (2, 1)
    assert view.grid_values("new_hour") == {G2: 1}
    assert [r.closed_today for r in view.unit_board() if r.code == "U-HW"] == [0]
    check(view, sessions, feed_city.timing, at)
    # A case reported after midnight counts for the new day.
    ids = noticed_feed(msgs("d", (E.REPORTED, "2026-11-25 00:10"), grid_code=G1))
    at = L("2026-11-25 00:20")
    view.tick(at)
    with sessions() as s:
        view.apply(s, ids, at)
    assert view.kpis().reported == 1
    assert view.grid_values("new_hour") == {G1: 1, G2: 1}
    check(view, sessions, feed_city.timing, at)
    version = view.version
    at = L("2026-11-25 00:45")  # b (23:40) leaves the last hour
    changes = view.tick(at)
    assert changes.changed and changes.grids == {G2}
    assert view.grid_changes_since(version, "new_hour") == {G2: 0}
    assert view.grid_values("new_hour") == {G1: 1}
    check(view, sessions, feed_city.timing, at)


def test_hot_spots_tie_break_by_code(sessions, feed_city, noticed_feed):  # type: ignore[no-untyped-def]
    noticed_feed(msgs("x1", (E.REPORTED, "2026-11-24 09:00"), grid_code=G3)
                 + msgs("x2", (E.REPORTED, "2026-11-24 09:01"), grid_code=G3)
                 + msgs("x3", (E.REPORTED, "2026-11-24 09:02"), grid_code=G2)
                 + msgs("x4", (E.REPORTED, "2026-11-24 09:03"), grid_code=G1))
    with sessions() as s:
        view = LiveView.load(s, feed_city.timing, L("2026-11-24 09:30"))
    spots = view.hot_spots("open", 2)
    assert [(h.code, h.value) for h in spots] == [(G3, 2), (G1, 1)]
    assert (spots[0].community, spots[0].street, spots[0].district) == ("测试社区", "测试街道", "测试区")
    assert [h.code for h in view.hot_spots("open", 10)] == [G3, G1, G2]
    assert view.hot_spots("overdue") == []
    with pytest.raises(ValueError):
        view.grid_values("closed")


def test_unit_board_ranks_by_overdue_then_smoothed_rate(sessions, feed_city):  # type: ignore[no-untyped-def]
    """A unit with one late case out of one is not ranked below a busy unit at 80 % on time."""
    at = L("2026-11-24 12:00")
    with sessions() as s:
        units = {code: uid for code, uid in s.execute(select(Unit.code, Unit.id))}
        grid = s.scalar(select(Grid.id).where(Grid.code == G1))
    rows = []
    n = 0

    def handled(unit: str, ok: bool, stage: str = "closed") -> None:
        nonlocal n
        n += 1
        rows.append(dict(case_id=f"h{n}", stage=stage, grid_id=grid, unit_id=units[unit], urgency="normal",
                         reported_at=L("2026-11-10 09:00"), handled_at=L("2026-11-10 10:00"),
                         closed_at=L("2026-11-10 11:00") if stage == "closed" else None,
                         on_time_handle=ok, rework_count=0, return_count=0, extension_count=0))

    for _i in range(100):
        handled("U-HW", True)  # 100 %, busy
    for i in range(20):
        handled("U-SZ", i < 16)  # 80 %
    handled("U-LH", False)  # 0 % of 1
    with sessions.begin() as s:
        s.execute(insert(Case), rows)
    with sessions() as s:
        view = LiveView.load(s, feed_city.timing, at)
    board = view.unit_board()
    assert [r.code for r in board] == ["U-SZ", "U-LH", "U-HW"]
    city_rate = 116 / 121
    lh = board[1]
    assert lh.on_time_rate == 0 and lh.smoothed_rate == pytest.approx(PRIOR_CASES * city_rate / (1 + PRIOR_CASES))
    assert board[0].on_time_rate == pytest.approx(0.8) and board[0].levels["on_time_rate"] == "warn"
    assert board[2].levels == {"overdue": "ok", "on_time_rate": "ok", "rework": "ok", "extension": "ok"}
    # Overdue cases rank first whatever the rates.
    with sessions.begin() as s:
        s.execute(insert(Case), [dict(case_id="late", stage="dispatched", grid_id=grid, unit_id=units["U-HW"],
                                      urgency="urgent", reported_at=L("2026-11-24 08:00"),
                                      dispatched_at=L("2026-11-24 08:10"), clock_stage="handle",
                                      clock_started_at=L("2026-11-24 08:10"), deadline_at=L("2026-11-24 10:00"),
                                      deadline_source="table", limit_minutes=60.0, limit_unit="work_hours",
                                      rework_count=1, return_count=0, extension_count=0)])
    with sessions() as s:
        view = LiveView.load(s, feed_city.timing, at)
    top = view.unit_board()[0]
    assert (top.code, top.overdue, top.pending, top.rework) == ("U-HW", 1, 1, 1)
    assert top.levels["overdue"] == "bad" and top.levels["rework"] == "bad"
    assert view.kpis().urgent == 1


def test_grid_changes_since_is_bounded(sessions, feed_city, noticed_feed):  # type: ignore[no-untyped-def]
    with sessions() as s:
        view = LiveView.load(s, feed_city.timing, L("2026-11-24 09:00"))
    first = view.version
    assert view.grid_changes_since(first, "open") == {}
    assert view.grid_changes_since(first + 5, "open") is None  # a version this view never had
    assert view.grid_changes_since(first - 1, "open") is None  # before the load
    for i in range(300):
        view.tick(L("2026-11-24 09:00") + timedelta(days=i + 1))  # each a new day: a visible change
    assert view.grid_changes_since(first, "open") is None  # fell out of the bounded changelog
    assert view.grid_changes_since(view.version - 10, "open") == {}
    with sessions() as s:
        view.reload(s, L("2026-11-24 09:00"))
    assert view.grid_changes_since(view.version - 1, "open") is None  # a reload redraws everything


# -- a micro-measure (prints figures; not part of the suite) ----------------------------------------------
def synthesize(sessions: Any, now: datetime, n_cases: int, n_grids: int, n_units: int) -> None:
    """A city of ``n_grids`` grids and ``n_units`` units with ``n_cases`` open cases, straight into SQL."""
    from dashboard.rules import classification
    from dashboard.store.models import Region

    classes = [(e.kind.value, e.minor_code) for e in classification.load("gbt47678-2026")][:200]
    rng = random.Random(1)
    with sessions.begin() as s:
        s.execute(insert(Region), [dict(id=1, code="990101", name="青山区", level="district")]
                  + [dict(id=10 + i, code=f"990101{i:03d}", name=f"街道{i}", level="street", parent_id=1)
                     for i in range(50)]
                  + [dict(id=100 + i, code=f"990101{i // 20:03d}{i % 20:03d}", name=f"社区{i}", level="community",
                          parent_id=10 + i // 20) for i in range(1000)])
        s.execute(insert(Grid), [dict(id=i + 1, code=f"990101{i // 2000:03d}{i // 100 % 20:03d}{i % 100:03d}",
                                      community_id=100 + i // 100, geometry="{}", area_m2=1e4, area_class="B",
                                      centroid_lon=118.0, centroid_lat=32.0) for i in range(n_grids)])
        s.execute(insert(Unit), [dict(id=i + 1, code=f"DW{i:04d}", name=f"单位{i}", kind="disposal")
                                 for i in range(n_units)])
    stages = ["reported", "verified", "filed", "dispatched", "dispatched", "dispatched", "returned",
              "handled", "checked", "suspended"]
    clock_of = {"reported": "verify", "verified": "file", "filed": "dispatch", "dispatched": "handle",
                "returned": "dispatch", "handled": "check", "checked": "close", "suspended": "handle"}
    batch = []
    for i in range(n_cases):
        stage = rng.choice(stages)
        kind, code = rng.choice(classes)
        unit = rng.randrange(n_units) + 1 if stage in ("dispatched", "returned", "handled", "checked",
                                                       "suspended") else None
        rep = now - timedelta(minutes=rng.uniform(1, 60 * 24 * 20))
        deadline = now + timedelta(minutes=rng.uniform(-60 * 24 * 5, 60 * 24 * 5))
        batch.append(dict(
            case_id=f"syn-{i:07d}", number=f"2026{i:09d}", kind=kind, class_code=code,
            grid_id=rng.randrange(n_grids) + 1, unit_id=unit, stage=stage,
            urgency="urgent" if rng.random() < 0.05 else "normal", description="暴露垃圾 路边堆放 约3平方米" * 2,
            reported_at=rep, filed_at=rep + timedelta(minutes=10) if stage not in ("reported", "verified") else None,
            dispatched_at=rep + timedelta(minutes=20) if unit else None,
            clock_stage=clock_of[stage], clock_started_at=rep, deadline_at=deadline, deadline_source="table",
            limit_minutes=rng.choice((60.0, 450.0, 900.0, 360.0)),
            limit_unit=rng.choice(("work_hours", "work_days", "calendar_hours")),
            paused_at=now - timedelta(hours=1) if stage == "suspended" else None,
            rework_count=int(rng.random() < 0.05), return_count=0, extension_count=int(rng.random() < 0.03)))
        if len(batch) == 20_000:
            with sessions.begin() as s:
                s.execute(insert(Case), batch)
            batch = []
    if batch:
        with sessions.begin() as s:
            s.execute(insert(Case), batch)


def measure(database_url: str, n_cases: int = 200_000, n_grids: int = 100_000, n_units: int = 300) -> None:
    """Load / apply / tick / read times of the view on synthetic open cases inserted in SQL.

    ``python tests/test_liveview.py [N_CASES] [DATABASE_URL]`` (default 200,000 cases on a
    temporary SQLite file). Rebuilds the schema of that database unless it already holds the
    synthetic city from an earlier run; prints, asserts nothing.
    """
    import resource
    import time as _time

    from sqlalchemy import text, update

    from dashboard.settings import load_settings
    from dashboard.store import db
    from dashboard.store.models import Base
    from dashboard.store.reference import timing_for

    settings = load_settings(database_url=database_url)
    engine = db.make_engine(settings)
    sessions = db.session_factory(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        with sessions() as s:
            have = s.scalar(select(func.count()).select_from(Case).where(Case.case_id.like("syn-%")))
    except Exception:  # noqa: BLE001 - no schema yet
        have = 0
    if have != n_cases:
        t0 = _time.perf_counter()
        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.upgrade(settings)
        synthesize(sessions, now, n_cases, n_grids, n_units)
        print(f"{engine.dialect.name}: inserted {n_grids:,} grids, {n_cases:,} open cases in "
              f"{_time.perf_counter() - t0:.1f} s")
    else:
        with sessions.begin() as s:  # undo the previous run's changes
            s.execute(update(Case).where(Case.stage == "closed").values(stage="dispatched", closed_at=None))
    timing = timing_for(settings)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = _time.perf_counter()
    with sessions() as s:
        view = LiveView.load(s, timing, now)
    load_s = _time.perf_counter() - t
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{engine.dialect.name} load: {load_s:.2f} s for {view.open_cases:,} open cases "
          f"(peak RSS +{(rss1 - rss0) / 1024:.0f} MB)")

    def timed(label: str, fn: Any, repeat: int = 5) -> Any:
        best, out = float("inf"), None
        for _ in range(repeat):
            t = _time.perf_counter()
            out = fn()
            best = min(best, _time.perf_counter() - t)
        print(f"  {label}: {best * 1000:.1f} ms")
        return out

    timed("tick, nothing crosses", lambda: view.tick(now + timedelta(seconds=1)))
    timed("tick, +1 h (many cases cross deadlines)", lambda: view.tick(now + timedelta(hours=1)), 1)
    rng = random.Random(2)
    ids = [f"syn-{i:07d}" for i in rng.sample(range(view.open_cases), 300)]
    with sessions.begin() as s:  # 300 cases change: some close, some move on, some change grid
        s.execute(update(Case).where(Case.case_id.in_(ids[:100])).values(stage="closed", closed_at=now))
        s.execute(update(Case).where(Case.case_id.in_(ids[100:200])).values(stage="handled", clock_stage="check"))
        s.execute(update(Case).where(Case.case_id.in_(ids[200:])).values(grid_id=7, urgency="urgent"))
    with sessions() as s:
        timed("apply 300 changed cases (SELECT included)", lambda: view.apply(s, ids, now), 3)
    timed("kpis()", view.kpis)
    timed("grid_values('open'), first read after a change", lambda: (view._cache.clear(), view.grid_values("open")))
    timed("grid_values('open'), cached per version", lambda: view.grid_values("open"))
    timed("grid_changes_since(version - 1, 'open')", lambda: view.grid_changes_since(view.version - 1, "open"))
    timed("hot_spots('open', 10), uncached", lambda: (view._cache.clear(), view.hot_spots("open", 10)))
    timed("overdue_queue(50), uncached", lambda: (view._cache.clear(), view.overdue_queue(50)))
    timed("unit_board(), uncached", lambda: (view._cache.clear(), view.unit_board()))
    engine.dispose()


if __name__ == "__main__":  # pragma: no cover
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{tempfile.mkdtemp()}/measure.db"
    measure(url, n)
