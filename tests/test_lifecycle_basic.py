"""The case lifecycle fold: a normal loop, illegal events, order and duplicate independence."""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboard.rules.lifecycle import (
    CaseState,
    EventType,
    LifecycleEvent,
    Stage,
    TransitionError,
    fold,
)

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
CASE = "C-20261125-0001"


def ev(n: int, type_: EventType, minutes: float, **fields: object) -> LifecycleEvent:
    return LifecycleEvent(f"e{n}", CASE, type_, T0 + timedelta(minutes=minutes), fields)


NORMAL_LOOP = [
    ev(1, EventType.REPORTED, 0, source="supervisor", kind="event", class_code="06010", grid_code="320582110152102"),
    ev(2, EventType.VERIFIED, 5),
    ev(3, EventType.FILED, 10, urgency="normal"),
    ev(4, EventType.DISPATCHED, 15, unit_code="U-SANITATION"),
    ev(5, EventType.HANDLED, 90),
    ev(6, EventType.CHECKED_OK, 120),
    ev(7, EventType.CLOSED, 125),
]


def _snapshot(state: CaseState) -> dict[str, object]:
    return asdict(state)


# -- a normal loop ------------------------------------------------------------------------
def test_normal_loop_ends_closed_with_timestamps() -> None:
    state, rejected = fold(CASE, NORMAL_LOOP)
    assert rejected == []
    assert state.case_id == CASE
    assert state.stage is Stage.CLOSED
    assert not state.is_open
    at = {e.type: e.occurred_at for e in NORMAL_LOOP}
    assert state.reported_at == at[EventType.REPORTED]
    assert state.verified_at == at[EventType.VERIFIED]
    assert state.filed_at == at[EventType.FILED]
    assert state.dispatched_at == at[EventType.DISPATCHED]
    assert state.handled_at == at[EventType.HANDLED]
    assert state.checked_at == at[EventType.CHECKED_OK]
    assert state.closed_at == at[EventType.CLOSED]
    assert state.last_event_at == at[EventType.CLOSED]
    assert (state.rework_count, state.return_count, state.extension_count) == (0, 0, 0)
    assert state.values == {
        "source": "supervisor",
        "kind": "event",
        "class_code": "06010",
        "grid_code": "320582110152102",
        "urgency": "normal",
        "unit_code": "U-SANITATION",
    }


@pytest.mark.parametrize("upto", range(1, len(NORMAL_LOOP)))
def test_partial_loop_is_open_at_the_last_stage(upto: int) -> None:
    stages = [Stage.REPORTED, Stage.VERIFIED, Stage.FILED, Stage.DISPATCHED, Stage.HANDLED, Stage.CHECKED]
    state, rejected = fold(CASE, NORMAL_LOOP[:upto])
    assert rejected == []
    assert state.stage is stages[upto - 1]
    assert state.is_open
    assert state.closed_at is None


def test_empty_history_has_no_stage() -> None:
    state, rejected = fold(CASE, [])
    assert state.stage is None and not state.is_open and rejected == []


def test_rework_restarts_dispatch_and_handling() -> None:
    events = NORMAL_LOOP[:5] + [
        ev(20, EventType.REWORK, 100),
        ev(21, EventType.HANDLED, 150),
        ev(22, EventType.CHECKED_OK, 160),
        ev(23, EventType.CLOSED, 170),
    ]
    state, rejected = fold(CASE, events)
    assert rejected == []
    assert state.stage is Stage.CLOSED
    assert state.rework_count == 1
    assert state.dispatched_at == T0 + timedelta(minutes=100)
    assert state.handled_at == T0 + timedelta(minutes=150)
    assert state.reported_at == T0  # first occurrence kept


def test_later_field_values_overwrite_earlier_ones() -> None:
    events = NORMAL_LOOP[:3] + [ev(30, EventType.UPDATED, 12, urgency="urgent", address="文昌中路 88 号")]
    state, _ = fold(CASE, events)
    assert state.stage is Stage.FILED  # an update does not move the stage
    assert state.values["urgency"] == "urgent"
    assert state.values["address"] == "文昌中路 88 号"


# -- illegal events -----------------------------------------------------------------------
def test_closed_before_reported_is_rejected_with_a_reason() -> None:
    closed = ev(1, EventType.CLOSED, 0)
    reported = ev(2, EventType.REPORTED, 10)
    state, rejected = fold(CASE, [reported, closed])
    assert state.stage is Stage.REPORTED
    assert state.closed_at is None
    assert len(rejected) == 1
    event, reason = rejected[0]
    assert event is closed
    assert "closed" in reason and "结案" in reason and "无记录" in reason


def test_skipping_stages_is_rejected_and_the_rest_still_applies() -> None:
    events = [
        ev(1, EventType.REPORTED, 0),
        ev(2, EventType.DISPATCHED, 1),  # not filed yet
        ev(3, EventType.FILED, 2),
        ev(4, EventType.DISPATCHED, 3),
    ]
    state, rejected = fold(CASE, events)
    assert [e.event_id for e, _ in rejected] == ["e2"]
    assert "上报" in rejected[0][1]  # names the stage it could not follow
    assert state.stage is Stage.DISPATCHED
    assert state.dispatched_at == T0 + timedelta(minutes=3)


def test_nothing_reopens_a_closed_case() -> None:
    events = NORMAL_LOOP + [ev(40, EventType.DISPATCHED, 200), ev(41, EventType.VOIDED, 210)]
    state, rejected = fold(CASE, events)
    assert state.stage is Stage.CLOSED
    assert {e.event_id for e, _ in rejected} == {"e40", "e41"}


def test_apply_leaves_state_unchanged_on_an_illegal_event() -> None:
    state = CaseState(case_id=CASE)
    state.apply(NORMAL_LOOP[0])
    before = _snapshot(state)
    with pytest.raises(TransitionError):
        state.apply(ev(9, EventType.CHECKED_OK, 1))
    assert _snapshot(state) == before


# -- order and duplicates -----------------------------------------------------------------
def _folded(events: list[LifecycleEvent]) -> tuple[dict[str, object], list[tuple[str, str]]]:
    state, rejected = fold(CASE, events)
    return _snapshot(state), [(e.event_id, reason) for e, reason in rejected]


def test_fold_is_independent_of_arrival_order() -> None:
    expected = _folded(NORMAL_LOOP)
    orders = [
        list(reversed(NORMAL_LOOP)),
        NORMAL_LOOP[3:] + NORMAL_LOOP[:3],
        [NORMAL_LOOP[i] for i in (6, 0, 5, 1, 4, 2, 3)],
        [NORMAL_LOOP[i] for i in (1, 0, 3, 2, 5, 4, 6)],
    ]
    rng = random.Random(20261125)
    for _ in range(20):
        shuffled = NORMAL_LOOP[:]
        rng.shuffle(shuffled)
        orders.append(shuffled)
    for order in orders:
        assert _folded(order) == expected, [e.event_id for e in order]


def test_every_order_of_a_history_with_an_illegal_event_gives_the_same_result() -> None:
    history = [
        ev(1, EventType.REPORTED, 0),
        ev(2, EventType.CLOSED, -5),  # illegal: before the report
        ev(3, EventType.FILED, 5),
        ev(4, EventType.DISPATCHED, 10),
        ev(5, EventType.HANDLED, 20),
    ]
    expected = _folded(history)
    assert expected[0]["stage"] is Stage.HANDLED
    assert [eid for eid, _ in expected[1]] == ["e2"]
    for order in itertools.permutations(history):
        assert _folded(list(order)) == expected


def test_duplicates_change_nothing() -> None:
    expected = _folded(NORMAL_LOOP)
    doubled = NORMAL_LOOP + NORMAL_LOOP
    assert _folded(doubled) == expected
    assert _folded(list(reversed(doubled))) == expected
    redelivered = [NORMAL_LOOP[0], NORMAL_LOOP[1], NORMAL_LOOP[1], NORMAL_LOOP[2], NORMAL_LOOP[2]]
    redelivered += NORMAL_LOOP[3:] + [NORMAL_LOOP[3]] * 3
    assert _folded(redelivered) == expected  # a duplicate is skipped, not reported as illegal


def test_events_at_the_same_instant_follow_the_loop_order() -> None:
    same_time = [LifecycleEvent(e.event_id, CASE, e.type, T0, e.fields) for e in NORMAL_LOOP]
    for order in (same_time, list(reversed(same_time))):
        state, rejected = fold(CASE, order)
        assert rejected == []
        assert state.stage is Stage.CLOSED


def test_order_uses_the_instant_not_the_wall_clock_of_the_offset() -> None:
    shanghai = timezone(timedelta(hours=8))
    # 09:10 in Shanghai is 01:10 UTC: after a report at 01:00 UTC, although "09" > "01".
    reported = LifecycleEvent("r", CASE, EventType.REPORTED, T0)
    filed = LifecycleEvent("f", CASE, EventType.FILED, datetime(2026, 11, 25, 9, 10, tzinfo=shanghai))
    early_report = LifecycleEvent("r0", "C-2", EventType.REPORTED, datetime(2026, 11, 25, 8, 0, tzinfo=shanghai))
    late_file = LifecycleEvent("f0", "C-2", EventType.FILED, datetime(2026, 11, 25, 0, 30, tzinfo=UTC))
    state, rejected = fold(CASE, [filed, reported])
    assert state.stage is Stage.FILED and rejected == []
    # 08:00+08:00 is 00:00 UTC, before 00:30 UTC.
    state, rejected = fold("C-2", [late_file, early_report])
    assert state.stage is Stage.FILED and rejected == []
