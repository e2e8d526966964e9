"""dashboard.store.queries against a real database (SQLite or PostgreSQL, per GRIDHALL_DATABASE_URL)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.lifecycle import OPEN, Stage
from dashboard.store import db, queries
from dashboard.store.models import Case, CaseEvent, ClassificationEntry, Grid, Region

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
SCHEME = "gbt47678-2026"

_ids = itertools.count(1)


def local(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


def add_case(session: Session, stage: Stage | str, **fields: object) -> Case:
    n = next(_ids)
    case = Case(case_id=f"case-{n}", number=f"2026{n:08d}", stage=str(stage), **fields)
    session.add(case)
    session.flush()
    return case


def add_event(
    session: Session,
    case_id: str,
    type_: str = "reported",
    occurred_at: datetime = NOW,
    received_at: datetime | None = None,
) -> CaseEvent:
    event = CaseEvent(
        event_id=f"ev-{next(_ids)}",
        case_id=case_id,
        type=type_,
        occurred_at=occurred_at,
        received_at=received_at or occurred_at,
        payload={},
    )
    session.add(event)
    session.flush()
    return event


def add_region(session: Session, code: str, name: str, level: str, parent: Region | None = None) -> Region:
    region = Region(code=code, name=name, level=level, parent_id=parent.id if parent else None)
    session.add(region)
    session.flush()
    return region


def add_grid(session: Session, code: str, community: Region) -> Grid:
    grid = Grid(
        code=code,
        community_id=community.id,
        geometry='{"type":"Point","coordinates":[120.1,30.2]}',
        area_m2=10_000.0,
        centroid_lon=120.1,
        centroid_lat=30.2,
    )
    session.add(grid)
    session.flush()
    return grid


# -- day window -------------------------------------------------------------------------------
def test_day_window_is_the_local_day_in_utc() -> None:
    w = queries.day_window(SHANGHAI, NOW)
    assert w.day.isoformat() == "2026-11-25"
    assert w.start == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert w.end == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    # 01:00 UTC on the 25th is already the 25th in Shanghai; 20:00 UTC on the 25th is the 26th.
    assert queries.day_window(SHANGHAI, datetime(2026, 11, 25, 1, tzinfo=UTC)).day.day == 25
    assert queries.day_window(SHANGHAI, datetime(2026, 11, 25, 20, tzinfo=UTC)).day.day == 26


def test_day_window_follows_daylight_saving() -> None:
    ny = ZoneInfo("America/New_York")
    w = queries.day_window(ny, datetime(2026, 3, 8, 12, tzinfo=ny))  # spring forward: 23 h
    assert w.end - w.start == timedelta(hours=23)


def test_day_window_rejects_naive_now() -> None:
    with pytest.raises(ValueError):
        queries.day_window(SHANGHAI, datetime(2026, 11, 25, 10))


# -- today_counts -----------------------------------------------------------------------------
def test_today_counts_on_empty_database(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        counts = queries.today_counts(s, SHANGHAI, NOW)
    assert (counts.reported, counts.filed, counts.dispatched, counts.disposing, counts.closed) == (0, 0, 0, 0, 0)
    assert counts.day.isoformat() == "2026-11-25"


def test_today_counts_day_boundary_in_shanghai(sessions: sessionmaker[Session]) -> None:
    with db.transaction(sessions) as s:
        # 23:59 local yesterday (15:59 UTC on the 24th): not today.
        add_case(s, Stage.REPORTED, reported_at=local(24, 23, 59))
        # 00:01 local today (16:01 UTC on the 24th: a UTC-date filter would miss it).
        add_case(s, Stage.REPORTED, reported_at=local(25, 0, 1))
        # exactly local midnight belongs to the day it starts.
        add_case(s, Stage.REPORTED, reported_at=local(25, 0, 0))
        # 07:30 local is 23:30 UTC the day before: still today here.
        add_case(s, Stage.REPORTED, reported_at=local(25, 7, 30))
        # local midnight tomorrow is outside the half-open day.
        add_case(s, Stage.REPORTED, reported_at=local(26, 0, 0))
    with sessions() as s:
        counts = queries.today_counts(s, SHANGHAI, NOW)
        yesterday = queries.today_counts(s, SHANGHAI, local(24, 12))
    assert counts.reported == 3
    assert yesterday.reported == 1


def test_today_counts_each_figure(sessions: sessionmaker[Session]) -> None:
    yesterday = local(24, 23, 59)
    today = local(25, 0, 1)
    with db.transaction(sessions) as s:
        # reported yesterday, filed and dispatched today: counts as filed + dispatched + disposing.
        add_case(s, Stage.DISPATCHED, reported_at=yesterday, filed_at=today, dispatched_at=today)
        # the whole loop today.
        add_case(
            s, Stage.CLOSED, reported_at=today, filed_at=today, dispatched_at=today,
            handled_at=today, checked_at=today, closed_at=today,
        )
        # closed yesterday: nothing today.
        add_case(s, Stage.CLOSED, reported_at=yesterday, filed_at=yesterday, closed_at=yesterday)
        # 不予立案 and 作废 stamp closed_at too, but are not 结案.
        add_case(s, Stage.REJECTED, reported_at=today, closed_at=today)
        add_case(s, Stage.VOIDED, reported_at=today, filed_at=today, closed_at=today)
        # disposal load is "now", whatever the dates.
        add_case(s, Stage.RETURNED, reported_at=yesterday, filed_at=yesterday, dispatched_at=yesterday)
        add_case(s, Stage.SUSPENDED, reported_at=yesterday, filed_at=yesterday, dispatched_at=yesterday)
        # handled (awaiting 核查) is past disposal.
        add_case(s, Stage.HANDLED, reported_at=yesterday, filed_at=yesterday, dispatched_at=yesterday)
    with sessions() as s:
        counts = queries.today_counts(s, SHANGHAI, NOW)
    assert counts.reported == 3  # the whole-loop, rejected and voided cases
    assert counts.filed == 3  # first, whole-loop, voided
    assert counts.dispatched == 2
    assert counts.disposing == 3  # dispatched, returned, suspended
    assert counts.closed == 1


# -- open_by_stage ----------------------------------------------------------------------------
def test_open_by_stage_lists_every_open_stage_in_loop_order(sessions: sessionmaker[Session]) -> None:
    with db.transaction(sessions) as s:
        for stage, n in ((Stage.REPORTED, 2), (Stage.DISPATCHED, 3), (Stage.SUSPENDED, 1),
                         (Stage.CLOSED, 5), (Stage.REJECTED, 1), (Stage.VOIDED, 1)):
            for _ in range(n):
                add_case(s, stage)
    with sessions() as s:
        rows = queries.open_by_stage(s)
    assert [r.stage for r in rows] == [st for st in Stage if st in OPEN]
    by = {r.stage: r.count for r in rows}
    assert by[Stage.REPORTED] == 2 and by[Stage.DISPATCHED] == 3 and by[Stage.SUSPENDED] == 1
    assert by[Stage.FILED] == 0
    assert sum(by.values()) == 6
    assert {r.label for r in rows} >= {"上报", "派遣", "挂账"}


# -- top_grids --------------------------------------------------------------------------------
def test_top_grids_orders_by_open_cases_with_names(sessions: sessionmaker[Session]) -> None:
    with db.transaction(sessions) as s:
        district = add_region(s, "999901", "演示区", "district")
        street = add_region(s, "999901001", "东湖街道", "street", district)
        community = add_region(s, "999901001001", "翠苑社区", "community", street)
        orphan = add_region(s, "999901002001", "无街道社区", "community")
        grids = [add_grid(s, f"999901001001{i:03d}", community) for i in range(1, 13)]
        lone = add_grid(s, "999901002001001", orphan)
        # grid i gets i open cases (so 12 is busiest); grid 3 also has closed ones.
        for i, grid in enumerate(grids, start=1):
            for _ in range(i):
                add_case(s, Stage.DISPATCHED, grid_id=grid.id)
        for _ in range(20):
            add_case(s, Stage.CLOSED, grid_id=grids[2].id)
        for _ in range(12):  # ties with grid 12: code breaks the tie
            add_case(s, Stage.REPORTED, grid_id=lone.id)
        add_case(s, Stage.REPORTED)  # no grid: not in the list
    with sessions() as s:
        top = queries.top_grids(s, limit=10)
        three = queries.top_grids(s, limit=3)
    assert len(top) == 10
    assert [g.code for g in three] == ["999901001001012", "999901002001001", "999901001001011"]
    assert [g.open_cases for g in three] == [12, 12, 11]
    first = top[0]
    assert (first.community, first.street) == ("翠苑社区", "东湖街道")
    assert (three[1].community, three[1].street) == ("无街道社区", None)
    assert all(g.code != "999901001001003" for g in top)  # 3 open cases: below the top 10
    assert [g.open_cases for g in top] == sorted((g.open_cases for g in top), reverse=True)


# -- recent_events ----------------------------------------------------------------------------
def test_recent_events_newest_first_with_joins(sessions: sessionmaker[Session]) -> None:
    with db.transaction(sessions) as s:
        district = add_region(s, "999901", "演示区", "district")
        community = add_region(s, "999901001001", "翠苑社区", "community", district)
        grid = add_grid(s, "999901001001001", community)
        s.add_all(
            [
                ClassificationEntry(scheme=SCHEME, kind="event", major_code="03", major_name="市容环卫设施类",
                                    minor_code="03005", minor_name="垃圾箱异常", provenance="test"),
                # same code, other kind and other scheme: must not be picked.
                ClassificationEntry(scheme=SCHEME, kind="component", major_code="03", major_name="市容环卫设施",
                                    minor_code="03005", minor_name="垃圾箱", provenance="test"),
                ClassificationEntry(scheme="other", kind="event", major_code="03", major_name="x",
                                    minor_code="03005", minor_name="别的方案", provenance="test"),
            ]
        )
        known = add_case(s, Stage.DISPATCHED, grid_id=grid.id, kind="event", class_code="03005",
                         description="垃圾箱满溢")
        unknown_class = add_case(s, Stage.REPORTED, kind="event", class_code="99999")
        first = add_event(s, known.case_id, "reported", local(25, 9, 0))
        add_event(s, known.case_id, "filed", local(25, 9, 5))
        add_event(s, unknown_class.case_id, "reported", local(25, 9, 6))
        add_event(s, "no-such-case", "mystery", local(25, 9, 7))
        last = add_event(s, known.case_id, "dispatched", local(25, 9, 8))
        for i in range(20):
            add_event(s, unknown_class.case_id, "updated", local(24, 8, i))
        newest = add_event(s, known.case_id, "updated", local(25, 9, 9))
    with sessions() as s:
        everything = queries.recent_events(s, SCHEME, limit=100)
        top = queries.recent_events(s, SCHEME, limit=15)
    assert len(top) == 15
    assert [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)
    assert everything[0].id == newest.id and everything[-1].id == first.id
    by_id = {e.id: e for e in everything}
    d = by_id[last.id]
    assert (d.type, d.type_label, d.class_name, d.grid_code) == ("dispatched", "派遣", "垃圾箱异常", "999901001001001")
    assert d.number == known.number and d.description == "垃圾箱满溢"
    assert d.occurred_at == local(25, 9, 8)
    stray = next(e for e in everything if e.case_id == "no-such-case")
    assert (stray.type_label, stray.class_name, stray.grid_code, stray.number) == ("未知类型", None, None, None)
    odd = next(e for e in everything if e.case_id == unknown_class.case_id and e.type == "reported")
    assert odd.class_name == "99999"  # unknown code shown as is


def test_latest_event_id(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        assert queries.latest_event_id(s) is None
    with db.transaction(sessions) as s:
        add_event(s, "a")
        last = add_event(s, "b")
    with sessions() as s:
        assert queries.latest_event_id(s) == last.id


def test_events_per_minute(sessions: sessionmaker[Session]) -> None:
    now = NOW.astimezone(UTC)
    with sessions() as s:
        assert queries.events_per_minute(s, now) == 0
    with db.transaction(sessions) as s:
        add_event(s, "a", received_at=now - timedelta(seconds=90))
        for sec in (59, 30, 1):
            add_event(s, "a", received_at=now - timedelta(seconds=sec))
    with sessions() as s:
        assert queries.events_per_minute(s, now) == 3
        assert queries.events_per_minute(s, now, cap=2) == 2  # bounded walk
        assert queries.events_per_minute(s, now + timedelta(minutes=5)) == 0


def test_scheme_name() -> None:
    assert queries.scheme_name("gbt47678-2026") == "gbt47678-2026"
    assert queries.scheme_name("/etc/gridhall/shenzhen-2024.csv") == "shenzhen-2024"
