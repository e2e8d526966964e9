"""The timer's on-time shortcut (CaseTimer._surely_on_time) never changes a judgement.

Random histories through every kind of clock (working and calendar limits, 挂账, 延期, source
deadlines, rework, returns), folded once with the shortcut and once with it switched off:
the on-time flags, clocks and deadlines are the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.rules import classification
from dashboard.rules.deadlines import CaseTimer, Timing, fold_timer
from dashboard.rules.lifecycle import EventType as E
from dashboard.rules.lifecycle import LifecycleEvent
from dashboard.rules.limits import load_limits
from dashboard.rules.workcalendar import WorkCalendar

TZ = ZoneInfo("Asia/Shanghai")
GB = classification.load("gbt47678-2026")
TIMING = Timing(load_limits(GB), WorkCalendar(TZ), GB, {"G-A": "A", "G-B": "B"}, 0.2)
CLASSES = [("event", "06010"), ("event", "06012"), ("event", "07001"), ("component", "01002")]
TYPES = [E.VERIFIED, E.FILED, E.DISPATCHED, E.RETURNED, E.HANDLED, E.SELF_HANDLED, E.EXTENSION_APPROVED,
         E.SUSPENDED, E.RESUMED, E.CHECKED_OK, E.REWORK, E.CLOSED, E.UPDATED]


@st.composite
def histories(draw: st.DrawFn) -> list[LifecycleEvent]:
    at = datetime(2026, 1, 1, tzinfo=TZ) + timedelta(minutes=draw(st.integers(0, 400 * 24 * 60)))
    kind, code = draw(st.sampled_from(CLASSES))
    fields = {"source": draw(st.sampled_from(["supervisor", "hotline_12345"])), "kind": kind,
              "class_code": code, "urgency": draw(st.sampled_from(["normal", "urgent"])),
              "grid_code": draw(st.sampled_from(["G-A", "G-B"]))}
    if draw(st.integers(0, 4)) == 0:
        fields["deadline_at"] = at + timedelta(hours=draw(st.integers(0, 100)))
    events = [LifecycleEvent("e0", "C", E.REPORTED, at, fields)]
    for n in range(1, draw(st.integers(1, 10))):
        at += timedelta(seconds=draw(st.sampled_from([0, 1, 59, 3600, 3599.9999, 5400, 86400, 3 * 86400]))
                        + draw(st.integers(0, 20000)))
        type_ = draw(st.sampled_from(TYPES))
        extra: dict[str, object] = {}
        if type_ in (E.EXTENSION_APPROVED, E.UPDATED) and draw(st.booleans()):
            extra["deadline_at"] = at + timedelta(hours=draw(st.integers(-5, 100)))
        events.append(LifecycleEvent(f"e{n}", "C", type_, at, extra))
    return events


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_the_shortcut_never_changes_a_judgement(events: list[LifecycleEvent]) -> None:
    fast, fast_skipped = fold_timer("C", events, TIMING)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CaseTimer, "_surely_on_time", lambda self, at: False)
        slow, slow_skipped = fold_timer("C", events, TIMING)
    assert fast.on_time == slow.on_time
    assert fast_skipped == slow_skipped
    assert fast.clock() == slow.clock()

