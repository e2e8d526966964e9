"""Stage clocks and deadlines, worked out by hand; properties of working-time deadlines.

Calendar: Asia/Shanghai, working periods 08:30–12:00 (210 min) and 14:00–18:00 (240 min),
so 1 工作日 = 450 working minutes; national holidays and 调休 from chinese_calendar. 2026:
春节 off Sun 02-15 … Mon 02-23, make-up working Sat 02-14 and Sat 02-28; 中秋 off Fri 09-25 …
Sun 09-27; 国庆 off Thu 10-01 … Wed 10-07, make-up working Sun 09-20 and Sat 10-10.
Limits: the shipped GB/T 47678.5 default table (06010 暴露垃圾 1 工作日 = 450, 06012 道路不洁
5 工作时 = 300, other 事件 2 工作日 = 900, 01002 污水井盖 6 自然时 / urgent 2 自然时, 06010 in
an A grid 4 工作时 = 240, urgent 事件 2 工作时 = 120, 核实/立案/派遣 1 工作时, 核查 2 工作时,
结案 1 工作时). All times below are local (+08:00).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.rules import classification
from dashboard.rules.deadlines import (
    Timing,
    clock_for,
    due_soon_mask,
    evaluate,
    evaluate_arrays,
    hmm,
    status_at,
    timed_fold,
    to_utc64,
)
from dashboard.rules.lifecycle import EventType as E
from dashboard.rules.lifecycle import LifecycleEvent, Stage, fold
from dashboard.rules.limits import load_limits
from dashboard.rules.workcalendar import WorkCalendar

TZ = ZoneInfo("Asia/Shanghai")
GB = classification.load("gbt47678-2026")
CAL = WorkCalendar(TZ)
TIMING = Timing(load_limits(GB), CAL, GB, {"G-A": "A", "G-B": "B"}, 0.2)


def L(text: str) -> datetime:
    """'2026-11-24 09:00' in the city's time."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def case(*steps: tuple, source: str = "supervisor", kind: str = "event", class_code: str = "06010",
         urgency: str = "normal", grid: str = "G-B", deadline: str | None = None) -> list[LifecycleEvent]:
    """Events of one case; the first step is the report and carries the case fields."""
    events = []
    for n, step in enumerate(steps):
        type_, at, *extra = step
        fields: dict[str, object] = dict(extra[0]) if extra else {}
        if n == 0:
            fields.update(source=source, kind=kind, class_code=class_code, urgency=urgency, grid_code=grid)
            if deadline:
                fields["deadline_at"] = L(deadline)
        events.append(LifecycleEvent(f"e{n}", "C1", type_, L(at), fields))
    return events


def dispatched(at: str, **kw: object) -> list[LifecycleEvent]:
    """A supervisor report filed and dispatched at the same minute ``at``."""
    return case((E.REPORTED, at), (E.FILED, at), (E.DISPATCHED, at), **kw)  # type: ignore[arg-type]


# -- deadlines of the running clock -------------------------------------------------------------
EXAMPLES = [
    # Lunch: 11:00–12:00 = 60, 14:00–18:00 = 240 → 300 exactly at 18:00 (道路不洁 5 工作时).
    ("lunch", dispatched("2026-11-24 11:00", class_code="06012"), "handle", "2026-11-24 18:00"),
    # Night: Tue 17:00–18:00 = 60; Wed 08:30–12:00 = 210 (270); 14:00 + 180 → Wed 17:00 (1 工作日).
    ("night", dispatched("2026-11-24 17:00"), "handle", "2026-11-25 17:00"),
    # Weekend: Fri 16:00–18:00 = 120; Sat, Sun off; Mon 08:30–12:00 = 210 (330); 14:00 + 120 → 16:00.
    ("weekend", dispatched("2026-11-27 16:00"), "handle", "2026-11-30 16:00"),
    # 春节: Fri 02-13 15:00–18:00 = 180; Sat 02-14 is a 调休 working day: 450 (630); 02-15 … 02-23
    # off; Tue 02-24 08:30–12:00 = 210 (840); 14:00 + 60 → 15:00. (沿街晾挂: 事件 default 900.)
    ("spring festival", dispatched("2026-02-13 15:00", class_code="06007"), "handle", "2026-02-24 15:00"),
    # 国庆: Wed 09-30 10:00–12:00 = 120, 14:00–18:00 = 240 (360); 10-01 … 10-07 off;
    # Thu 10-08 08:30 + 90 → 10:00.
    ("national day", dispatched("2026-09-30 10:00"), "handle", "2026-10-08 10:00"),
    # 国庆 make-up Saturday: Fri 10-09 14:00–18:00 = 240; Sat 10-10 works: 08:30 + 60 → 09:30.
    ("make-up saturday", dispatched("2026-10-09 14:00", class_code="06012"), "handle", "2026-10-10 09:30"),
    # 国庆 make-up Sunday: a report on Sat 09-19 10:00 (off); 立案 0.5 工作时 runs from Sun 09-20
    # (a working day) 08:30 → 09:00.
    ("make-up sunday", case((E.REPORTED, "2026-09-19 10:00")), "file", "2026-09-20 09:00"),
    # 中秋: Thu 09-24 17:00–18:00 = 60; Fri 09-25 … Sun 09-27 off; Mon 09-28 08:30–12:00 = 210
    # (270); 14:00 + 180 → 17:00.
    ("mid-autumn", dispatched("2026-09-24 17:00"), "handle", "2026-09-28 17:00"),
    # 自然时: a sewer manhole cover (部件 01002) dispatched Sat 21:00 + 6 h → Sun 03:00.
    ("manhole", dispatched("2026-11-28 21:00", kind="component", class_code="01002"), "handle", "2026-11-29 03:00"),
    # Urgent manhole cover: + 2 自然时 → Sat 23:00.
    ("manhole urgent", dispatched("2026-11-28 21:00", kind="component", class_code="01002", urgency="urgent"),
     "handle", "2026-11-28 23:00"),
    # Area class A: 暴露垃圾 4 工作时: 09:00–12:00 = 180; 14:00 + 60 → 15:00.
    ("core area", dispatched("2026-11-24 09:00", grid="G-A"), "handle", "2026-11-24 15:00"),
    # Urgent 事件 2 工作时: 11:00–12:00 = 60; 14:00 + 60 → 15:00.
    ("urgent", dispatched("2026-11-24 11:00", class_code="06007", urgency="urgent"), "handle", "2026-11-24 15:00"),
    # 核实 for a hotline report Tue 17:30: 17:30–18:00 = 30; Wed 08:30 + 30 → 09:00.
    ("verify", case((E.REPORTED, "2026-11-24 17:30"), source="hotline_12345"), "verify", "2026-11-25 09:00"),
    # A supervisor's report skips 核实: 立案 0.5 工作时 from 10:00 → 10:30.
    ("supervisor skips verify", case((E.REPORTED, "2026-11-24 10:00")), "file", "2026-11-24 10:30"),
    # 立案 from 11:40: 11:40–12:00 = 20; 14:00 + 10 → 14:10.
    ("file across lunch", case((E.REPORTED, "2026-11-24 11:40")), "file", "2026-11-24 14:10"),
    # After 核实 at Wed 08:45, 立案 0.5 工作时 → 09:15.
    ("file after verify", case((E.REPORTED, "2026-11-24 17:30"), (E.VERIFIED, "2026-11-25 08:45"),
                               source="hotline_12345"), "file", "2026-11-25 09:15"),
    # 派遣 0.5 工作时 from 立案 at Tue 17:50: 10 min; Wed 08:30 + 20 → 08:50.
    ("dispatch", case((E.REPORTED, "2026-11-24 17:30"), (E.FILED, "2026-11-24 17:50")), "dispatch", "2026-11-25 08:50"),
    # 回退 at Tue 10:00 restarts 派遣 at the return: 10:00 + 30 → 10:30.
    ("returned", case((E.REPORTED, "2026-11-24 09:00"), (E.FILED, "2026-11-24 09:00"),
                      (E.DISPATCHED, "2026-11-24 09:00"), (E.RETURNED, "2026-11-24 10:00")),
     "dispatch", "2026-11-24 10:30"),
    # Re-dispatch at 10:30 restarts 处置: 10:30–12:00 = 90; 14:00–18:00 = 240 (330); Wed 08:30 + 120 → 10:30.
    ("re-dispatched", case((E.REPORTED, "2026-11-24 09:00"), (E.FILED, "2026-11-24 09:00"),
                           (E.DISPATCHED, "2026-11-24 09:00"), (E.RETURNED, "2026-11-24 10:00"),
                           (E.DISPATCHED, "2026-11-24 10:30")), "handle", "2026-11-25 10:30"),
    # 处置反馈 Tue 11:30 → 核查 1 工作时: 11:30–12:00 = 30; 14:00 + 30 → 14:30.
    ("check", dispatched("2026-11-24 09:00") + [LifecycleEvent("h", "C1", E.HANDLED, L("2026-11-24 11:30"))],
     "check", "2026-11-24 14:30"),
    # 返工 Tue 15:00 restarts 处置: 15:00–18:00 = 180; Wed 08:30–12:00 = 210 (390); 14:00 + 60 → 15:00.
    ("rework", dispatched("2026-11-24 09:00") + [
        LifecycleEvent("h", "C1", E.HANDLED, L("2026-11-24 11:00")),
        LifecycleEvent("r", "C1", E.REWORK, L("2026-11-24 15:00"))], "handle", "2026-11-25 15:00"),
    # 核查通过 Tue 16:30 → 结案 1 工作时: 16:30 + 60 → 17:30.
    ("close", dispatched("2026-11-24 09:00") + [
        LifecycleEvent("h", "C1", E.HANDLED, L("2026-11-24 11:00")),
        LifecycleEvent("k", "C1", E.CHECKED_OK, L("2026-11-24 16:30"))], "close", "2026-11-24 17:30"),
    # 延期 without a date: one more full limit. D0: Tue 09:00–12:00 = 180, 14:00–18:00 = 240 (420),
    # Wed 08:30 + 30 → Wed 09:00; + 450: Wed 09:00–12:00 = 180, 14:00–18:00 = 240 (420), Thu 08:30 + 30
    # → Thu 09:00.
    ("extension", dispatched("2026-11-24 09:00") + [
        LifecycleEvent("x", "C1", E.EXTENSION_REQUESTED, L("2026-11-24 14:00")),
        LifecycleEvent("y", "C1", E.EXTENSION_APPROVED, L("2026-11-24 15:00"))], "handle", "2026-11-26 09:00"),
    # 延期 to a given date: Fri 12:00.
    ("extension to a date", dispatched("2026-11-24 09:00") + [
        LifecycleEvent("y", "C1", E.EXTENSION_APPROVED, L("2026-11-24 15:00"),
                       {"deadline_at": L("2026-11-27 12:00")})], "handle", "2026-11-27 12:00"),
    # 挂账 Tue 16:00 → 挂账恢复 Thu 10:00: paused 120 (Tue 16–18) + 450 (Wed) + 90 (Thu 08:30–10:00) = 660;
    # D0 Wed 09:00 + 660: Wed 09–12 = 180, 14–18 = 240 (420), Thu 08:30–12:00 = 210 (630), 14:00 + 30 → 14:30.
    # (Check: 300 worked before the pause, 150 left from Thu 10:00: 10–12 = 120, 14:00 + 30.)
    ("suspension", dispatched("2026-11-24 09:00") + [
        LifecycleEvent("s", "C1", E.SUSPENDED, L("2026-11-24 16:00")),
        LifecycleEvent("u", "C1", E.RESUMED, L("2026-11-26 10:00"))], "handle", "2026-11-26 14:30"),
    # A 挂账 that begins after the deadline (Wed 09:00) does not move it.
    ("suspended when overdue", dispatched("2026-11-24 09:00") + [
        LifecycleEvent("s", "C1", E.SUSPENDED, L("2026-11-25 10:00")),
        LifecycleEvent("u", "C1", E.RESUMED, L("2026-11-26 10:00"))], "handle", "2026-11-25 09:00"),
    # Dispatched Fri 09:00: Fri 09–12 = 180, 14–18 = 240 (420), Mon 08:30 + 30 → Mon 09:00; a 挂账
    # from Sat 10:00 to Sun 10:00 stops no working time, so the deadline stays.
    ("suspended over a weekend", dispatched("2026-11-27 09:00") + [
        LifecycleEvent("s", "C1", E.SUSPENDED, L("2026-11-28 10:00")),
        LifecycleEvent("u", "C1", E.RESUMED, L("2026-11-29 10:00"))], "handle", "2026-11-30 09:00"),
    # 自然时 clock paused 2 calendar hours (Sat 22:00 → Sun 00:00): 03:00 → 05:00.
    ("manhole suspended", dispatched("2026-11-28 21:00", kind="component", class_code="01002") + [
        LifecycleEvent("s", "C1", E.SUSPENDED, L("2026-11-28 22:00")),
        LifecycleEvent("u", "C1", E.RESUMED, L("2026-11-29 00:00"))], "handle", "2026-11-29 05:00"),
    # A hotline's 办理时限 overrides the table for 处置.
    ("source deadline", case((E.REPORTED, "2026-11-24 09:00"), (E.VERIFIED, "2026-11-24 09:30"),
                             (E.FILED, "2026-11-24 10:00"), (E.DISPATCHED, "2026-11-24 10:30"),
                             source="hotline_12345", deadline="2026-11-25 12:00"), "handle", "2026-11-25 12:00"),
    # ... but not for the other stages: 立案 0.5 工作时 from 核实 at 09:30 → 10:00.
    ("source deadline, other stage", case((E.REPORTED, "2026-11-24 09:00"), (E.VERIFIED, "2026-11-24 09:30"),
                                          source="hotline_12345", deadline="2026-11-25 12:00"),
     "file", "2026-11-24 10:00"),
    # Issue 12 point 1: a 延期申请 only records the date asked for; refused or pending, the table's
    # deadline stands (Wed 09:00), whether the date asked for is later or earlier.
    ("extension requested", dispatched("2026-11-24 09:00") + [
        LifecycleEvent("x", "C1", E.EXTENSION_REQUESTED, L("2026-11-24 14:00"),
                       {"deadline_at": L("2026-11-27 18:00")})],
     "handle", "2026-11-25 09:00"),
    ("extension refused", dispatched("2026-11-24 09:00") + [
        LifecycleEvent("x", "C1", E.EXTENSION_REQUESTED, L("2026-11-24 14:00"), {"deadline_at": L("2026-11-24 15:00")}),
        LifecycleEvent("y", "C1", E.EXTENSION_REFUSED, L("2026-11-24 14:30"), {"deadline_at": L("2026-11-24 15:00")})],
     "handle", "2026-11-25 09:00"),
    # ... and a deadline_at on a dispatch is kept with the event only (reported/updated set it).
    ("deadline on a dispatch", case((E.REPORTED, "2026-11-24 09:00"), (E.FILED, "2026-11-24 09:00"),
                                    (E.DISPATCHED, "2026-11-24 09:00", {"deadline_at": L("2026-11-24 10:00")})),
     "handle", "2026-11-25 09:00"),
    # Issue 12 point 5: safety classes and urgent cases run their desk steps round the clock. An
    # open sewer manhole reported by the hotline on Sat 22:00: 核实 1 自然时 → Sat 23:00 (it was
    # Mon 09:30 with 工作时); urgent: 0.5 自然时 → 22:30.
    ("manhole verify at night", case((E.REPORTED, "2026-11-28 22:00"), source="hotline_12345", kind="component",
                                     class_code="01002"), "verify", "2026-11-28 23:00"),
    ("urgent manhole verify", case((E.REPORTED, "2026-11-28 22:00"), source="hotline_12345", kind="event",
                                   class_code="01002", urgency="urgent"), "verify", "2026-11-28 22:30"),
    # An urgent 暴露垃圾 filed Sat 22:00: 派遣 0.5 自然时 → 22:30 (urgent: round the clock).
    ("urgent dispatch at night", case((E.REPORTED, "2026-11-28 21:50"), (E.FILED, "2026-11-28 22:00"),
                                      urgency="urgent"), "dispatch", "2026-11-28 22:30"),
    # A non-safety, non-urgent 核实 keeps working time: Sat 22:00 → Mon 08:30 + 60 → 09:30.
    ("verify at night", case((E.REPORTED, "2026-11-28 22:00"), source="hotline_12345"), "verify", "2026-11-30 09:30"),
    # A later 延期 without date on a source deadline adds the source's own span: between(Tue 10:30,
    # Wed 12:00) = 90 + 240 + 210 = 540; Wed 12:00 + 540: Wed 14–18 = 240, Thu 08:30–12:00 = 210 (450),
    # Thu 14:00 + 90 → 15:30.
    ("source deadline extended", case((E.REPORTED, "2026-11-24 09:00"), (E.VERIFIED, "2026-11-24 09:30"),
                                      (E.FILED, "2026-11-24 10:00"), (E.DISPATCHED, "2026-11-24 10:30"),
                                      (E.EXTENSION_APPROVED, "2026-11-24 11:00"),
                                      source="hotline_12345", deadline="2026-11-25 12:00"),
     "handle", "2026-11-26 15:30"),
]


@pytest.mark.parametrize("name, events, clock, deadline", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_deadline_examples(name: str, events: list[LifecycleEvent], clock: str, deadline: str) -> None:
    state, rejected = fold("C1", events)
    assert rejected == []
    c = clock_for(state, TIMING)
    assert c is not None and c.stage == clock
    assert c.deadline_at == L(deadline), f"{name}: {c.deadline_at:%Y-%m-%d %H:%M:%S}"
    assert c.deadline_at.tzinfo is not None
    assert c.source == ("source" if name.startswith("source deadline") and clock == "handle" else "table")


def test_source_deadline_limit_is_the_working_time_it_leaves() -> None:
    events = EXAMPLES[[e[0] for e in EXAMPLES].index("source deadline")][1]
    c = clock_for(fold("C1", events)[0], TIMING)
    assert c is not None
    assert c.limit_minutes == pytest.approx(540)  # Tue 10:30–12:00 90, 14–18 240, Wed 08:30–12:00 210
    assert c.unit == "work_hours" and c.source == "source"


def test_closed_case_has_no_clock() -> None:
    events = dispatched("2026-11-24 09:00") + [
        LifecycleEvent("h", "C1", E.HANDLED, L("2026-11-24 11:00")),
        LifecycleEvent("k", "C1", E.CHECKED_OK, L("2026-11-24 12:00")),
        LifecycleEvent("c", "C1", E.CLOSED, L("2026-11-24 14:10"))]
    state, _ = fold("C1", events)
    assert state.stage is Stage.CLOSED and clock_for(state, TIMING) is None


# -- state as of T --------------------------------------------------------------------------
LOOP = dispatched("2026-11-24 09:00") + [
    LifecycleEvent("h", "C1", E.HANDLED, L("2026-11-25 10:00")),
    LifecycleEvent("k", "C1", E.CHECKED_OK, L("2026-11-25 11:00")),
    LifecycleEvent("c", "C1", E.CLOSED, L("2026-11-25 14:30")),
]


@pytest.mark.parametrize(
    "as_of, stage, clock, deadline, remaining, overdue_work, overdue_cal, due_soon",
    [
        # Before the report: nothing.
        ("2026-11-24 08:00", None, None, None, None, None, None, None),
        # Tue 12:00: 处置 due Wed 09:00; left: Tue 14–18 = 240 + Wed 08:30–09:00 = 30 → 270.
        ("2026-11-24 12:00", Stage.DISPATCHED, "handle", "2026-11-25 09:00", 270, 0, 0, False),
        # Tue 17:00: 60 + 30 = 90 left, not < 0.2 × 450 = 90: not due soon yet.
        ("2026-11-24 17:00", Stage.DISPATCHED, "handle", "2026-11-25 09:00", 90, 0, 0, False),
        # Tue 17:01: 89 left < 90: due soon.
        ("2026-11-24 17:01", Stage.DISPATCHED, "handle", "2026-11-25 09:00", 89, 0, 0, True),
        # Wed 09:00 exactly: at the deadline is not overdue (0 left, due soon).
        ("2026-11-25 09:00", Stage.DISPATCHED, "handle", "2026-11-25 09:00", 0, 0, 0, True),
        # Wed 09:30: 30 working minutes and 30 calendar minutes overdue.
        ("2026-11-25 09:30", Stage.DISPATCHED, "handle", "2026-11-25 09:00", -30, 30, 30, False),
        # Wed 10:00 the 处置反馈 counts (occurred_at ≤ T): 核查 from 10:00, due 11:00, 60 left.
        ("2026-11-25 10:00", Stage.HANDLED, "check", "2026-11-25 11:00", 60, 0, 0, False),
        # Wed 13:00: 结案 from 11:00 due 12:00. Over lunch: overdue by 60 calendar minutes, 0 working.
        ("2026-11-25 13:00", Stage.CHECKED, "close", "2026-11-25 12:00", 0, 0, 60, False),
        # Wed 14:20: 20 working minutes (14:00–14:20), 140 calendar minutes overdue.
        ("2026-11-25 14:20", Stage.CHECKED, "close", "2026-11-25 12:00", -20, 20, 140, False),
        # Wed 14:30 closed: no clock.
        ("2026-11-25 14:30", Stage.CLOSED, None, None, None, None, None, None),
    ],
)
def test_state_as_of_t(as_of: str, stage, clock, deadline, remaining, overdue_work, overdue_cal, due_soon) -> None:  # type: ignore[no-untyped-def]
    r = evaluate("C1", LOOP, L(as_of), TIMING)
    assert r.stage is stage
    if clock is None:
        assert r.clock is None and r.status is None
        return
    assert r.clock is not None and r.status is not None
    assert r.clock.stage == clock and r.clock.deadline_at == L(deadline)
    assert r.status.remaining_minutes == pytest.approx(remaining)
    assert r.status.overdue is (overdue_cal > 0)
    assert r.status.overdue_work_minutes == pytest.approx(overdue_work)
    assert r.status.overdue_calendar_minutes == pytest.approx(overdue_cal)
    assert r.status.due_soon is due_soon


def test_a_suspended_clock_stands_still() -> None:
    events = EXAMPLES[[e[0] for e in EXAMPLES].index("suspension")][1][:-1]  # not resumed
    # As of Wed 12:00 and as of next month: paused at Tue 16:00 with Tue 16–18 = 120 + Wed 08:30–09:00
    # = 30 → 150 working minutes left, frozen; never overdue, never due soon.
    for at in ("2026-11-25 12:00", "2026-12-20 12:00"):
        r = evaluate("C1", events, L(at), TIMING)
        assert r.stage is Stage.SUSPENDED and r.clock is not None and r.status is not None
        assert r.clock.paused_at == L("2026-11-24 16:00")
        assert r.status.paused and not r.status.overdue and not r.status.due_soon
        assert r.status.remaining_minutes == pytest.approx(150)


def test_a_source_deadline_update_moves_the_deadline() -> None:
    events = case((E.REPORTED, "2026-11-24 09:00"), (E.FILED, "2026-11-24 09:00"), (E.DISPATCHED, "2026-11-24 09:00"),
                  (E.UPDATED, "2026-11-24 10:00", {"deadline_at": L("2026-11-24 16:00")}))
    c = clock_for(fold("C1", events)[0], TIMING)
    assert c is not None and c.deadline_at == L("2026-11-24 16:00") and c.source == "source"
    # As of 09:30 the update is not known yet: the table's Wed 09:00.
    assert evaluate("C1", events, L("2026-11-24 09:30"), TIMING).clock.deadline_at == L("2026-11-25 09:00")  # type: ignore[union-attr]


# -- on-time flags ---------------------------------------------------------------------------
def test_on_time_flags_of_a_full_loop() -> None:
    events = case(
        (E.REPORTED, "2026-11-24 09:00"),  # hotline: 核实 due 10:00
        (E.VERIFIED, "2026-11-24 09:50"),  # on time; 立案 due 10:50
        (E.FILED, "2026-11-24 11:00"),  # late (due 09:50 + 30 → 10:20); 派遣 due 11:00 + 30 → 11:30
        (E.DISPATCHED, "2026-11-24 11:30"),  # at the deadline = on time; 处置 450 from 11:30:
        # Tue 11:30–12:00 = 30, 14–18 = 240, Wed 08:30 + 180 → Wed 11:30
        (E.HANDLED, "2026-11-25 11:30"),  # on time; 核查 60: 11:30–12:00 = 30, 14:00 + 30 → 14:30
        (E.CHECKED_OK, "2026-11-25 16:30"),  # late; 结案 due 16:30 + 60 → 17:30
        (E.CLOSED, "2026-11-25 17:00"),  # on time
        source="hotline_12345",
    )
    state, rejected, on_time = timed_fold("C1", events, TIMING)
    assert rejected == [] and state.stage is Stage.CLOSED
    assert on_time == {"verify": True, "file": False, "dispatch": True, "handle": True, "check": False, "close": True}


def test_on_time_needs_every_round_on_time() -> None:
    base = dispatched("2026-11-24 09:00")  # 处置 due Wed 09:00
    events = base + [
        LifecycleEvent("h1", "C1", E.HANDLED, L("2026-11-24 11:00")),  # on time
        LifecycleEvent("r", "C1", E.REWORK, L("2026-11-24 15:00")),  # 处置 restarts: due Wed 15:00
        LifecycleEvent("h2", "C1", E.HANDLED, L("2026-11-25 16:00")),  # late
    ]
    assert timed_fold("C1", events, TIMING)[2]["handle"] is False
    events[-1] = LifecycleEvent("h2", "C1", E.HANDLED, L("2026-11-25 14:00"))
    assert timed_fold("C1", events, TIMING)[2]["handle"] is True
    # A supervisor report has no 核实 clock, a case still open has no 处置 flag yet.
    flags = timed_fold("C1", base, TIMING)[2]
    assert "verify" not in flags and "handle" not in flags and flags["file"] and flags["dispatch"]


def test_a_return_interrupts_handling_without_judging_it() -> None:
    events = case((E.REPORTED, "2026-11-24 09:00"), (E.FILED, "2026-11-24 09:00"),
                  (E.DISPATCHED, "2026-11-24 09:00"), (E.RETURNED, "2026-11-27 10:00"),  # 处置 long overdue
                  (E.DISPATCHED, "2026-11-27 12:00"))  # 派遣 due 11:00 after the return: late
    flags = timed_fold("C1", events, TIMING)[2]
    assert "handle" not in flags and flags["dispatch"] is False


def test_an_extension_can_make_handling_on_time() -> None:
    events = dispatched("2026-11-24 09:00") + [
        LifecycleEvent("y", "C1", E.EXTENSION_APPROVED, L("2026-11-24 15:00")),  # → Thu 09:00
        LifecycleEvent("h", "C1", E.HANDLED, L("2026-11-25 16:00")),
    ]
    assert timed_fold("C1", events, TIMING)[2]["handle"] is True


def test_timed_fold_is_the_fold() -> None:
    events = EXAMPLES[[e[0] for e in EXAMPLES].index("suspension")][1]
    assert timed_fold("C1", list(reversed(events)), TIMING)[0] == fold("C1", events)[0]


# -- the vectorised evaluator equals the scalar one --------------------------------------------
def test_arrays_equal_status_at() -> None:
    clocks = [clock_for(fold("C1", ev)[0], TIMING) for _, ev, _, _ in EXAMPLES]
    clocks = [c for c in clocks if c is not None]
    paused = [clock_for(fold("C1", EXAMPLES[[e[0] for e in EXAMPLES].index("suspension")][1][:-1])[0], TIMING)]
    clocks += paused  # type: ignore[list-item]
    for at in ("2026-02-24 12:30", "2026-11-24 12:00", "2026-11-25 09:30", "2026-11-29 04:00", "2026-12-01 08:00"):
        t = L(at)
        s = evaluate_arrays(CAL, t, to_utc64([c.deadline_at for c in clocks]),
                            np.array([c.limit_minutes for c in clocks]), np.array([c.working for c in clocks]),
                            to_utc64([c.paused_at for c in clocks]), 0.2)
        for i, c in enumerate(clocks):
            one = status_at(c, t, CAL, 0.2)
            assert bool(s.overdue[i]) is one.overdue and bool(s.due_soon[i]) is one.due_soon
            assert bool(s.paused[i]) is one.paused
            assert s.remaining_minutes[i] == pytest.approx(one.remaining_minutes, abs=1e-6)
            assert s.overdue_work_minutes[i] == pytest.approx(one.overdue_work_minutes, abs=1e-6)
            assert s.overdue_calendar_minutes[i] == pytest.approx(one.overdue_calendar_minutes, abs=1e-6)


def test_hmm() -> None:
    assert hmm(0) == "0:00" and hmm(59.9) == "0:59" and hmm(61) == "1:01" and hmm(-90) == "-1:30"
    assert hmm(3000) == "50:00"


# -- properties ---------------------------------------------------------------------------------
START = datetime(2025, 12, 1, tzinfo=TZ)
instants = st.integers(min_value=0, max_value=400 * 24 * 60).map(lambda m: START + timedelta(minutes=m))
classes = st.sampled_from([("event", "06010", "G-B"), ("event", "06012", "G-B"), ("event", "06007", "G-A"),
                           ("component", "05003", "G-B"), ("event", "06001", "G-B"),
                           ("component", "01002", "G-B")])
urgencies = st.sampled_from(["normal", "urgent"])


def _events(start: datetime, cls: tuple[str, str, str], urgency: str) -> list[LifecycleEvent]:
    kind, code, grid = cls
    f = {"source": "supervisor", "kind": kind, "class_code": code, "urgency": urgency, "grid_code": grid}
    return [LifecycleEvent("a", "P", E.REPORTED, start, f), LifecycleEvent("b", "P", E.FILED, start),
            LifecycleEvent("c", "P", E.DISPATCHED, start)]


PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(start=instants, cls=classes, urgency=urgencies)
def test_working_time_between_start_and_deadline_is_the_limit(start: datetime, cls, urgency: str) -> None:  # type: ignore[no-untyped-def]
    c = clock_for(fold("P", _events(start, cls, urgency))[0], TIMING)
    assert c is not None
    if c.working:
        assert CAL.between(start, c.deadline_at) == pytest.approx(c.limit_minutes, abs=1e-6)
        # and the deadline is the first such instant: a minute earlier is short of it.
        assert CAL.between(start, c.deadline_at - timedelta(minutes=1)) < c.limit_minutes
    else:
        assert (c.deadline_at - start) == timedelta(minutes=c.limit_minutes)


@PROPS
@given(a=instants, b=instants, cls=classes, urgency=urgencies)
def test_deadlines_are_monotone_in_the_start(a: datetime, b: datetime, cls, urgency: str) -> None:  # type: ignore[no-untyped-def]
    a, b = min(a, b), max(a, b)
    da = clock_for(fold("P", _events(a, cls, urgency))[0], TIMING).deadline_at  # type: ignore[union-attr]
    db = clock_for(fold("P", _events(b, cls, urgency))[0], TIMING).deadline_at  # type: ignore[union-attr]
    assert da <= db


@PROPS
@given(start=instants, pause=st.integers(0, 30 * 24 * 60), length=st.integers(0, 30 * 24 * 60),
       cls=classes, urgency=urgencies, extended=st.booleans(), resumed=st.booleans())
def test_a_suspension_never_makes_a_deadline_earlier(start: datetime, pause: int, length: int, cls,  # type: ignore[no-untyped-def]
                                                     urgency: str, extended: bool, resumed: bool) -> None:
    base = _events(start, cls, urgency)
    if extended:
        base.append(LifecycleEvent("x", "P", E.EXTENSION_APPROVED, start + timedelta(minutes=pause // 2)))
    before = clock_for(fold("P", base)[0], TIMING)
    s = start + timedelta(minutes=pause)
    more = base + [LifecycleEvent("s", "P", E.SUSPENDED, s)]
    if resumed:
        more.append(LifecycleEvent("r", "P", E.RESUMED, s + timedelta(minutes=length)))
    after = clock_for(fold("P", more)[0], TIMING)
    assert before is not None and after is not None
    assert after.deadline_at >= before.deadline_at
    if resumed and s < before.deadline_at:
        # Moved by exactly the stopped time (working or calendar, as the clock counts).
        stopped = (CAL.between(s, s + timedelta(minutes=length)) if before.working else length)
        moved = (CAL.between(before.deadline_at, after.deadline_at) if before.working
                 else (after.deadline_at - before.deadline_at) / timedelta(minutes=1))
        assert moved == pytest.approx(stopped, abs=1e-6)


@PROPS
@given(start=instants, cls=classes, urgency=urgencies, at=instants)
def test_remaining_plus_elapsed_is_the_limit(start: datetime, cls, urgency: str, at: datetime) -> None:  # type: ignore[no-untyped-def]
    c = clock_for(fold("P", _events(start, cls, urgency))[0], TIMING)
    assert c is not None
    if at < start:
        return
    s = status_at(c, at, CAL, 0.2)
    elapsed = CAL.between(start, at) if c.working else (at - start) / timedelta(minutes=1)
    assert s.remaining_minutes + elapsed == pytest.approx(c.limit_minutes, abs=1e-6)
    assert s.overdue is (at > c.deadline_at)
    assert s.overdue_calendar_minutes == pytest.approx(max((at - c.deadline_at) / timedelta(minutes=1), 0)
                                                       if s.overdue else 0, abs=1e-6)


def test_deadlines_are_in_the_city_time_zone() -> None:
    c = clock_for(fold("C1", dispatched("2026-11-24 11:00"))[0], TIMING)
    assert c is not None and c.deadline_at.utcoffset() == timedelta(hours=8)
    assert c.deadline_at.astimezone(UTC) == datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def test_an_absurd_date_gets_no_deadline_instead_of_an_error() -> None:
    """Year 1 is legal in the feed contract but beyond any working calendar."""
    from dashboard.rules.deadlines import fold_timer

    y1 = datetime(1, 1, 1, 12, tzinfo=timezone(timedelta(hours=8)))
    events = [LifecycleEvent("a", "Y", E.REPORTED, y1, {"source": "supervisor"}),
              LifecycleEvent("b", "Y", E.FILED, y1 + timedelta(hours=1))]
    timer, rejected = fold_timer("Y", events, TIMING)
    assert rejected == [] and timer.state.stage is Stage.FILED
    assert timer.clock() is None and timer.on_time == {}
    assert evaluate("Y", events, L("2026-11-24 09:00"), TIMING).status is None


def test_due_soon_window_after_an_extension_is_the_limit_in_force() -> None:
    """ℓ after a 延期 (docs/lifecycle.md, "Deadlines"): the first limit plus what the 延期 added.

    暴露垃圾 dispatched Tue 09:00: 1 工作日 → Wed 09:00, ℓ = 450. A 延期 approved to Fri 12:00
    adds Wed 09:00–Fri 12:00 = 180 + 240 + 450 + 210 = 1080 → ℓ = 1530, due soon under 306 left.
    """
    events = dispatched("2026-11-24 09:00") + [
        LifecycleEvent("y", "C1", E.EXTENSION_APPROVED, L("2026-11-24 15:00"), {"deadline_at": L("2026-11-27 12:00")})]
    c = clock_for(fold("C1", events)[0], TIMING)
    assert c is not None and c.deadline_at == L("2026-11-27 12:00") and c.limit_minutes == pytest.approx(1530)
    # Thu 17:00: 60 + 210 = 270 left < 306: due soon (against the first 450 it would not be).
    assert evaluate("C1", events, L("2026-11-26 17:00"), TIMING).status.due_soon  # type: ignore[union-attr]
    assert not evaluate("C1", events, L("2026-11-26 14:00"), TIMING).status.due_soon  # type: ignore[union-attr]
    # Without a date: one more full limit (Thu 09:00), ℓ = 900.
    events[-1] = LifecycleEvent("y", "C1", E.EXTENSION_APPROVED, L("2026-11-24 15:00"))
    c = clock_for(fold("C1", events)[0], TIMING)
    assert c is not None and c.deadline_at == L("2026-11-26 09:00") and c.limit_minutes == pytest.approx(900)


def test_a_work_day_limit_spanning_the_summer_switch() -> None:
    """Issue 12 point 4: 2 工作日 across the switch to 夏令作息 (afternoon 14:30–18:00 from 05-01).

    沿街晾挂 dispatched Thu 2026-04-30 14:10 (winter: minute 210 + 10 = 220 of the day); May 1–5
    off; the 2nd working day after is Thu May 7 (summer), minute 220 → 14:30 + 10 = 14:40.
    ℓ = the working time actually given: Apr 30 14:10–18:00 = 230, May 6 = 420, May 7 = 220.
    """
    from dashboard.settings import load_settings

    cal = WorkCalendar.from_settings(load_settings(
        holiday_file=None, working_periods="08:30-12:00,14:00-18:00; 05-01..09-30 08:30-12:00,14:30-18:00"))
    timing = Timing(load_limits(GB), cal, GB, {"G-B": "B"}, 0.2)
    events = dispatched("2026-04-30 14:10", class_code="06007")
    c = clock_for(fold("C1", events)[0], timing)
    assert c is not None and c.deadline_at == L("2026-05-07 14:40") and c.unit == "work_days"
    assert c.limit_minutes == pytest.approx(230 + 420 + 220)
    r = evaluate("C1", events, L("2026-05-07 14:00"), timing)  # 10 working minutes left < 174
    assert r.status is not None and r.status.due_soon and r.status.remaining_minutes == pytest.approx(10)
    for at, ok in (("2026-05-07 14:40", True), ("2026-05-07 14:41", False)):
        done = events + [LifecycleEvent("h", "C1", E.HANDLED, L(at))]
        assert timed_fold("C1", done, timing)[2]["handle"] is ok, at


def test_due_soon_is_written_once() -> None:
    """The vectorised 临期 formula lives in :func:`due_soon_mask`; the live view, the overdue
    list and the read API call it (through :func:`evaluate_arrays` or directly)."""
    import re
    from pathlib import Path

    import dashboard

    formula = re.compile(r"remaining\w*\s*<\s*[\w.]*due_soon_ratio")
    root = Path(dashboard.__file__).parent
    where = {p.relative_to(root).as_posix() for p in root.rglob("*.py") if formula.search(p.read_text("utf-8"))}
    assert where == {"rules/deadlines.py"}
    text = (root / "rules" / "deadlines.py").read_text("utf-8")
    assert len(formula.findall(text)) == 2  # due_soon_mask and its scalar twin status_at
    over, paused = np.array([False, True, False, False]), np.array([False, False, True, False])
    soon = due_soon_mask(np.array([10.0, -5.0, 10.0, 30.0]), np.array([100.0] * 4), over, paused, 0.2)
    assert soon.tolist() == [True, False, False, False]
