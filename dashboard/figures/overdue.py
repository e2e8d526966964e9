"""Overdue and due-soon cases at an instant, two ways that must agree (docs/lifecycle.md).

- :func:`overdue_as_of` recomputes from ``case_events`` with ``occurred_at`` ≤ T (the auditor's
  question "what was overdue at 08:00 on Monday"; ``gridhall overdue --at T``);
- :func:`overdue_stored` evaluates the deadlines stored on the ``cases`` rows at T with the
  vectorised evaluator (what the live wall does on every tick; valid for T at or after the
  last event, i.e. now).

Both return :class:`OverdueRow` lists in the same order: overdue cases, most overdue first
(working time past the deadline, then calendar time), then due-soon cases, earliest
deadline first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from dashboard.rules.deadlines import (
    CALENDAR_UNIT,
    CLOCK_LABELS,
    Timing,
    evaluate,
    evaluate_arrays,
    to_utc64,
)
from dashboard.rules.lifecycle import EventType, LifecycleEvent
from dashboard.store.models import Case, CaseEvent, Grid, Unit

_CHUNK = 2000  # ids per IN (...) list


@dataclass(frozen=True)
class OverdueRow:
    """One overdue or due-soon case at an instant."""

    case_id: str
    number: str | None
    class_name: str
    grid_code: str
    unit_name: str
    clock_stage: str  # the stage whose deadline this is (verify … close)
    deadline_at: datetime
    deadline_source: str  # table / source
    working: bool  # False: a 自然时 clock
    overdue: bool
    overdue_work_minutes: float
    overdue_calendar_minutes: float
    remaining_minutes: float  # working minutes, or calendar minutes for a 自然时 clock

    @property
    def stage_label(self) -> str:
        return CLOCK_LABELS.get(self.clock_stage, self.clock_stage)

    @property
    def status_label(self) -> str:
        return "超期" if self.overdue else "临期"


def sort_rows(rows: Iterable[OverdueRow]) -> list[OverdueRow]:
    """Overdue first, then due soon; each by deadline, earliest first, then case_id.

    At one instant T an earlier deadline is never less overdue, in working time (offsets
    are non-decreasing) nor in calendar time, so for the overdue cases this *is* "most
    overdue first" (working time, then calendar time) — and it is exact, where sorting
    the float minutes of two evaluators could differ in the last bit.
    """
    return sorted(rows, key=lambda r: (not r.overdue, r.deadline_at, r.case_id))


def class_names(timing: Timing, kind: str | None, code: str | None) -> tuple[str, str]:
    """(大类 name, 小类 name) of a class code; ("", code) when the scheme does not know it."""
    if not code:
        return "", ""
    if kind and timing.classification is not None:
        try:
            entry = timing.classification.get(kind, code)
        except ValueError:
            entry = None
        if entry is not None:
            return entry.major_name, entry.minor_name
    return "", code


def _class_name(timing: Timing, kind: str | None, code: str | None) -> str:
    return class_names(timing, kind, code)[1]


def overdue_as_of(session: Session, timing: Timing, at: datetime, *, due_soon: bool = True) -> list[OverdueRow]:
    """Overdue (and due-soon) cases at ``at``, folded from the events with occurred_at ≤ at.

    The ``cases`` table only narrows the search to cases reported by ``at`` and not closed
    by then (a closed case stays closed); every figure comes from the events.
    """
    candidates = list(session.scalars(
        select(Case.case_id).where(
            Case.reported_at <= at, or_(Case.closed_at.is_(None), Case.closed_at > at))
    ))
    units = dict(session.execute(select(Unit.code, Unit.name)).all())
    out: list[OverdueRow] = []
    for i in range(0, len(candidates), _CHUNK):
        chunk = candidates[i:i + _CHUNK]
        histories: dict[str, list[LifecycleEvent]] = {cid: [] for cid in chunk}
        for r in session.execute(
            select(CaseEvent.event_id, CaseEvent.case_id, CaseEvent.type, CaseEvent.occurred_at, CaseEvent.payload)
            .where(CaseEvent.case_id.in_(chunk), CaseEvent.occurred_at <= at)
        ):
            histories[r.case_id].append(
                LifecycleEvent(r.event_id, r.case_id, EventType(r.type), r.occurred_at, r.payload or {}))
        for case_id, history in histories.items():
            result = evaluate(case_id, history, at, timing)
            clock, status = result.clock, result.status
            if clock is None or status is None or not (status.overdue or (due_soon and status.due_soon)):
                continue
            v = result.state.values
            out.append(OverdueRow(
                case_id=case_id,
                number=v.get("number"),
                class_name=_class_name(timing, v.get("kind"), v.get("class_code")),
                grid_code=v.get("grid_code") or "",
                unit_name=units.get(v.get("unit_code") or "", v.get("unit_code") or ""),
                clock_stage=clock.stage,
                deadline_at=clock.deadline_at,
                deadline_source=clock.source,
                working=clock.working,
                overdue=status.overdue,
                overdue_work_minutes=status.overdue_work_minutes,
                overdue_calendar_minutes=status.overdue_calendar_minutes,
                remaining_minutes=status.remaining_minutes,
            ))
    return sort_rows(out)


@dataclass(frozen=True)
class StoredClocks:
    """The stored clocks of the open cases, as arrays for :func:`evaluate_arrays`."""

    case_ids: Sequence[str]
    deadline: np.ndarray
    limit_minutes: np.ndarray
    working: np.ndarray
    paused_at: np.ndarray
    details: Sequence[tuple[Any, ...]]  # (number, kind, class_code, grid code, unit name, clock, source)


def load_stored(session: Session) -> StoredClocks:
    """Every case row with a running clock (open cases)."""
    g, u = aliased(Grid), aliased(Unit)
    rows = session.execute(
        select(Case.case_id, Case.number, Case.kind, Case.class_code, g.code, u.name, Case.clock_stage,
               Case.deadline_source, Case.deadline_at, Case.limit_minutes, Case.limit_unit, Case.paused_at)
        .outerjoin(g, Case.grid_id == g.id).outerjoin(u, Case.unit_id == u.id)
        .where(Case.deadline_at.is_not(None))
    ).all()
    return StoredClocks(
        case_ids=[r[0] for r in rows],
        deadline=to_utc64([r[8] for r in rows]),
        limit_minutes=np.array([r[9] or 0.0 for r in rows], dtype=np.float64),
        working=np.array([r[10] != CALENDAR_UNIT for r in rows], dtype=bool),
        paused_at=to_utc64([r[11] for r in rows]),
        details=[tuple(r[1:8]) for r in rows],
    )


def overdue_stored(session: Session, timing: Timing, at: datetime, *, due_soon: bool = True,
                   stored: StoredClocks | None = None) -> list[OverdueRow]:
    """Overdue (and due-soon) cases at ``at`` from the stored deadlines (the live view's way)."""
    stored = stored if stored is not None else load_stored(session)
    if not stored.case_ids:
        return []
    s = evaluate_arrays(timing.calendar, at, stored.deadline, stored.limit_minutes, stored.working,
                        stored.paused_at, timing.due_soon_ratio)
    pick = s.overdue | (s.due_soon if due_soon else False)
    tz = timing.calendar.tz
    out = []
    for i in map(int, np.flatnonzero(pick)):
        number, kind, class_code, grid_code, unit_name, clock_stage, source = stored.details[i]
        deadline = stored.deadline[i].astype("datetime64[us]").item()
        out.append(OverdueRow(
            case_id=stored.case_ids[i],
            number=number,
            class_name=_class_name(timing, kind, class_code),
            grid_code=grid_code or "",
            unit_name=unit_name or "",
            clock_stage=clock_stage or "",
            deadline_at=deadline.replace(tzinfo=UTC).astimezone(tz),
            deadline_source=source or "",
            working=bool(stored.working[i]),
            overdue=bool(s.overdue[i]),
            overdue_work_minutes=float(s.overdue_work_minutes[i]),
            overdue_calendar_minutes=float(s.overdue_calendar_minutes[i]),
            remaining_minutes=float(s.remaining_minutes[i]),
        ))
    return sort_rows(out)
