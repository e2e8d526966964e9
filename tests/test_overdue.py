"""Overdue as of T: recomputed from the events (the auditor's CLI) = stored rows at T (the wall).

Also: the deadlines and on-time flags the ingest stores equal a full fold of the stored history,
whatever the arrival order, and ``gridhall overdue --at T --csv`` writes exactly those rows.
"""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import cli
from citykit import COMMUNITY, build_community, square
from dashboard.figures.overdue import OverdueRow, overdue_as_of, overdue_stored
from dashboard.rules import classification
from dashboard.rules.deadlines import ON_TIME_COLUMNS, clock_for, timed_fold
from dashboard.rules.lifecycle import EventType as E
from dashboard.rules.lifecycle import LifecycleEvent
from dashboard.store.casebook import apply_events, iter_incoming
from dashboard.store.cityimport import import_city
from dashboard.store.db import transaction
from dashboard.store.models import Case, CaseEvent
from dashboard.store.reference import Reference
from feeds.contract import CaseEventMessage
from feeds.history import build_history
from feeds.scenario import CityModel

TZ = ZoneInfo("Asia/Shanghai")
SCHEME = classification.load("gbt47678-2026")
G_A, G_B = f"{COMMUNITY}001", f"{COMMUNITY}002"


def L(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def comparable(rows: list[OverdueRow]) -> list[tuple]:
    """What both computations must agree on exactly (minutes: see same_minutes)."""
    return [(r.case_id, r.number, r.class_name, r.grid_code, r.unit_name, r.clock_stage,
             r.deadline_at.astimezone(UTC), r.deadline_source, r.working, r.overdue) for r in rows]


def same_minutes(a: list[OverdueRow], b: list[OverdueRow]) -> None:
    """The minutes agree up to float noise (scalar vs vectorised arithmetic)."""
    for x, y in zip(a, b, strict=False):
        for name in ("overdue_work_minutes", "overdue_calendar_minutes", "remaining_minutes"):
            assert getattr(x, name) == pytest.approx(getattr(y, name), abs=1e-6), (x.case_id, name)


def stored_equals_fold(sessions, ref) -> int:  # type: ignore[no-untyped-def]
    """Every stored case's clock columns equal a full timed fold of its stored events."""
    with sessions() as s:
        events: dict[str, list[LifecycleEvent]] = {}
        for r in s.execute(select(CaseEvent.event_id, CaseEvent.case_id, CaseEvent.type,
                                  CaseEvent.occurred_at, CaseEvent.payload)):
            events.setdefault(r.case_id, []).append(
                LifecycleEvent(r.event_id, r.case_id, E(r.type), r.occurred_at, r.payload or {}))
        cases = s.scalars(select(Case)).all()
    for case in cases:
        state, _, on_time = timed_fold(case.case_id, events[case.case_id], ref.timing)
        clock = clock_for(state, ref.timing)
        assert case.clock_stage == state.clock, case.case_id
        assert case.deadline_at == (clock.deadline_at if clock else None), case.case_id
        assert case.deadline_source == (clock.source if clock else None)
        assert case.limit_unit == (clock.unit if clock else None)
        assert case.limit_minutes == pytest.approx(clock.limit_minutes if clock else None)
        assert case.paused_at == (clock.paused_at if clock else None)
        for stage, column in ON_TIME_COLUMNS.items():
            assert getattr(case, column) == on_time.get(stage), (case.case_id, column)
    return len(cases)


# -- a small city, by hand ------------------------------------------------------------------------
@pytest.fixture
def small(sessions, settings):  # type: ignore[no-untyped-def]
    """One community with an A grid and a B grid, one unit."""
    build_community(sessions, [(G_A, square(0, 0), "A"), (G_B, square(0, 1), "B")])
    return Reference.load(sessions, SCHEME, settings)


def msgs(case: str, *steps: tuple, **first: object) -> list[CaseEventMessage]:
    out = []
    for n, (type_, at, *extra) in enumerate(steps):
        fields = dict(extra[0]) if extra else {}
        if n == 0:
            fields = {"source": "supervisor", "kind": "event", "class_code": "06010", "grid_code": G_B,
                      "urgency": "normal", "number": f"N-{case}", **first, **fields}
        out.append(CaseEventMessage(event_id=f"{case}-{n}", case_id=case, type=type_, occurred_at=L(at), **fields))
    return out


def small_history() -> list[CaseEventMessage]:
    d = {"unit_code": "U-HW"}
    return [
        # 暴露垃圾 (B) dispatched Tue 09:00: 处置 due Wed 09:00.
        *msgs("late", (E.REPORTED, "2026-11-24 08:50"), (E.FILED, "2026-11-24 08:55"),
              (E.DISPATCHED, "2026-11-24 09:00", d)),
        # 暴露垃圾 in the A grid: 4 工作时 from Tue 10:00 → 10–12 = 120, 14:00 + 120 → Tue 16:00.
        *msgs("core", (E.REPORTED, "2026-11-24 09:50", {"grid_code": G_A}), (E.FILED, "2026-11-24 09:55"),
              (E.DISPATCHED, "2026-11-24 10:00", d)),
        # Sewer manhole cover (部件 01002) dispatched Tue 19:00: 6 自然时 → Wed 01:00.
        *msgs("cover", (E.REPORTED, "2026-11-24 18:50", {"kind": "component", "class_code": "01002"}),
              (E.FILED, "2026-11-24 18:55"), (E.DISPATCHED, "2026-11-24 19:00", d)),
        # Hotline with a 办理时限 of Wed 16:00 (source deadline).
        *msgs("hotline", (E.REPORTED, "2026-11-24 09:00", {"source": "hotline_12345",
                                                           "deadline_at": L("2026-11-25 16:00")}),
              (E.VERIFIED, "2026-11-24 09:20"), (E.FILED, "2026-11-24 09:30"), (E.DISPATCHED, "2026-11-24 09:40", d)),
        # 挂账 Tue 10:00: never listed.
        *msgs("parked", (E.REPORTED, "2026-11-24 08:00"), (E.FILED, "2026-11-24 08:40"),
              (E.DISPATCHED, "2026-11-24 09:00", d), (E.SUSPENDED, "2026-11-24 10:00")),
        # 核查通过 Tue 10:00 → 结案 due 11:00; closed late at 11:30 (listed only as of 11:00–11:30).
        *msgs("done", (E.REPORTED, "2026-11-24 08:40"), (E.FILED, "2026-11-24 08:45"),
              (E.DISPATCHED, "2026-11-24 08:50", d), (E.HANDLED, "2026-11-24 09:30"),
              (E.CHECKED_OK, "2026-11-24 10:00"), (E.CLOSED, "2026-11-24 11:30")),
    ]


def ingest(sessions, ref, messages, shuffle: int | None = None, batch: int = 1000) -> None:  # type: ignore[no-untyped-def]
    items = iter_incoming([m.to_lifecycle() for m in messages])
    if shuffle is not None:
        random.Random(shuffle).shuffle(items)
    for i in range(0, len(items), batch):
        with transaction(sessions) as s:
            apply_events(s, items[i:i + batch], ref)


@pytest.mark.parametrize(
    "at, overdue, due_soon",
    [
        # Tue 15:00: core (due 16:00) has 60 of 240 left, not < 48; late (due Wed 09:00) 180 + 30 of 450;
        # hotline (due Wed 16:00) 180 + 210 + 120 = 510 of 710; cover not reported yet; done closed.
        ("2026-11-24 15:00", [], []),
        # Tue 15:20: core has 40 < 0.2 × 240 = 48 left → due soon.
        ("2026-11-24 15:20", [], ["core"]),
        # Tue 16:30: core overdue by 30 (working and calendar).
        ("2026-11-24 16:30", ["core"], []),
        # Wed 01:30: cover overdue 30 calendar minutes (0 working); late has 30 of 450 left → due soon;
        # core overdue by 120 working (Tue 16–18) and 570 calendar minutes.
        ("2026-11-25 01:30", ["core", "cover"], ["late"]),
        # Wed 10:00: late overdue 60 working; hotline: 10–12 = 120 + 14–16 = 120 → 240 of 710, not < 142.
        ("2026-11-25 10:00", ["core", "cover", "late"], []),
        # Wed 15:00: hotline has 60 left < 0.2 × 710 = 142 → due soon. (Its limit is the working time
        # from 派遣 Tue 09:40 to the source deadline: 140 + 240 + 210 + 120 = 710.)
        ("2026-11-25 15:00", ["core", "cover", "late"], ["hotline"]),
    ],
)
def test_small_city_as_of_t(sessions, small, at, overdue, due_soon) -> None:  # type: ignore[no-untyped-def]
    ingest(sessions, small, small_history())
    T = L(at)
    with sessions() as s:
        a = overdue_as_of(s, small.timing, T)
        b = overdue_stored(s, small.timing, T)
    assert comparable(a) == comparable(b)
    same_minutes(a, b)
    assert {r.case_id for r in a if r.overdue} == set(overdue)
    assert [r.case_id for r in a if not r.overdue] == due_soon
    rows = {r.case_id: r for r in a}
    if "core" in rows and at == "2026-11-25 01:30":
        assert rows["core"].overdue_work_minutes == pytest.approx(120)
        assert rows["core"].overdue_calendar_minutes == pytest.approx(570)
        assert rows["cover"].overdue_work_minutes == 0 and rows["cover"].overdue_calendar_minutes == pytest.approx(30)
        assert not rows["cover"].working
        assert [r.case_id for r in a] == ["core", "cover", "late"]  # most overdue first
    if "hotline" in rows:
        assert rows["hotline"].deadline_source == "source"
        assert rows["hotline"].deadline_at == L("2026-11-25 16:00")


def test_as_of_t_sees_a_case_that_is_closed_now(sessions, small) -> None:  # type: ignore[no-untyped-def]
    ingest(sessions, small, small_history())
    with sessions() as s:
        # 10:50: 'done' waits for 结案 (due 11:00): 10 of 60 left < 12 → due soon.
        soon = overdue_as_of(s, small.timing, L("2026-11-24 10:50"))
        # 11:15: 15 minutes overdue, though the stored row says closed (at 11:30).
        late = overdue_as_of(s, small.timing, L("2026-11-24 11:15"))
        gone = overdue_as_of(s, small.timing, L("2026-11-24 11:30"))
        stored_now = overdue_stored(s, small.timing, L("2026-11-24 11:15"))
    assert [(r.case_id, r.clock_stage, r.overdue, round(r.remaining_minutes)) for r in soon] == \
        [("done", "close", False, 10)]
    assert [(r.case_id, r.clock_stage, r.overdue, round(r.overdue_work_minutes)) for r in late] == \
        [("done", "close", True, 15)]
    assert late[0].deadline_at == L("2026-11-24 11:00") and late[0].stage_label == "结案"
    assert gone == [] and stored_now == []  # the stored rows only know the present


def test_stored_clocks_equal_the_fold_whatever_the_order(sessions, small) -> None:  # type: ignore[no-untyped-def]
    ingest(sessions, small, small_history(), shuffle=7, batch=1)  # one event per batch, out of order
    assert stored_equals_fold(sessions, small) == 6
    with sessions() as s:
        late = s.scalars(select(Case).where(Case.case_id == "late")).one()
        hot = s.scalars(select(Case).where(Case.case_id == "hotline")).one()
        done = s.scalars(select(Case).where(Case.case_id == "done")).one()
    assert late.deadline_at == L("2026-11-25 09:00") and late.limit_minutes == 450 and late.limit_unit == "work_days"
    assert hot.deadline_source == "source" and hot.deadline_at == L("2026-11-25 16:00")
    assert done.deadline_at is None and done.on_time_handle is True and done.on_time_close is False
    assert done.on_time_verify is None  # a supervisor's report has no 核实


# -- the demo city, 2 days of history ---------------------------------------------------------
@pytest.fixture
def demo(sessions, settings, demo_city_dir):  # type: ignore[no-untyped-def]
    import_city(demo_city_dir, sessions)
    with sessions() as s:
        city = CityModel.load(s, SCHEME, TZ)
    ref = Reference.load(sessions, SCHEME, settings)
    now = datetime.now(UTC).replace(microsecond=0)
    build_history(sessions, ref, city, now, days=2, daily_cases=300)
    return ref, now


@pytest.mark.slow
def test_demo_city_cli_and_wall_agree(sessions, settings, demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, now = demo
    assert stored_equals_fold(sessions, ref) > 200
    seen_overdue = 0
    for hours in (0, 1, 5, 26, 75):
        T = now + timedelta(hours=hours)
        with sessions() as s:
            a = overdue_as_of(s, ref.timing, T)
            b = overdue_stored(s, ref.timing, T)
        assert comparable(a) == comparable(b), f"T = now + {hours} h"
        same_minutes(a, b)
        seen_overdue += sum(r.overdue for r in a)
    assert seen_overdue > 0

    T = now + timedelta(hours=26)
    with sessions() as s:
        expected = overdue_stored(s, ref.timing, T)
    out = tmp_path / "overdue.csv"
    env = {"GRIDHALL_DATA_DIR": str(settings.data_dir)}
    for at in (T.isoformat(), T.astimezone(TZ).replace(tzinfo=None).isoformat()):  # with and without offset
        result = CliRunner().invoke(cli.app, ["overdue", "--at", at, "--csv", str(out)], env=env)
        assert result.exit_code == 0, result.output
        raw = out.read_bytes()
        assert raw.startswith("\ufeff".encode())  # BOM: Excel reads UTF-8
        with out.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == list(cli.overdue.OVERDUE_COLUMNS)
        assert rows[1:] == [cli.overdue._overdue_cells(r, TZ) for r in expected]
        assert f"{sum(r.overdue for r in expected)} overdue" in result.output

    result = CliRunner().invoke(cli.app, ["overdue", "--at", T.isoformat(), "--no-due-soon", "--csv", str(out)],
                                env=env)
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8-sig", newline="") as fh:
        ids = [row[1] for row in list(csv.reader(fh))[1:]]
    assert ids == [r.case_id for r in expected if r.overdue]


def test_cli_rejects_a_bad_instant(settings) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli.app, ["overdue", "--at", "yesterday-ish"],
                                env={"GRIDHALL_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 2 and "--at" in result.output
