"""Issue 12 point 3: a 不限时 row in the limits table (no 处置 deadline), end to end.

A city's table says that 其他事项类 (事件 major 10, e.g. 311-style information requests) has no
处置 limit. Such a case is stored with its 处置 clock but no deadline, is never overdue (CLI
recomputation, stored rows, live view), gets no 按时处置 verdict, and is left out of the 按期
rates of the evaluation (按时处置率, 按期结案率) while it still counts as 应结案/结案.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from citykit import COMMUNITY, build_community, square
from dashboard.figures.evaluation import ObjectKind, Period, evaluate
from dashboard.figures.liveview import LiveView
from dashboard.figures.overdue import overdue_as_of, overdue_stored
from dashboard.rules import classification
from dashboard.rules.evalspec import load_weights
from dashboard.rules.lifecycle import EventType as E
from dashboard.rules.lifecycle import LifecycleEvent
from dashboard.rules.limits import DATA_DIR
from dashboard.store.casebook import apply_events, iter_incoming
from dashboard.store.db import transaction
from dashboard.store.models import Case
from dashboard.store.reference import Reference
from dashboard.store.scope import CITY

TZ = ZoneInfo("Asia/Shanghai")
G_B = f"{COMMUNITY}002"
GB = classification.load("gbt47678-2026")


def L(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def history(case_id: str, class_code: str, handled_on: str | None) -> list[LifecycleEvent]:
    """Reported, filed, dispatched Tue 2026-09-01; handled, checked, closed on ``handled_on``."""
    fields = {"source": "supervisor", "kind": "event", "class_code": class_code, "grid_code": G_B,
              "urgency": "normal", "unit_code": "U-HW"}
    steps = [(E.REPORTED, "2026-09-01 09:00", fields), (E.FILED, "2026-09-01 09:10", {}),
             (E.DISPATCHED, "2026-09-01 09:20", {})]
    if handled_on:
        steps += [(E.HANDLED, f"{handled_on} 09:00", {}), (E.CHECKED_OK, f"{handled_on} 09:30", {}),
                  (E.CLOSED, f"{handled_on} 10:00", {})]
    return [LifecycleEvent(f"{case_id}-{n}", case_id, t, L(at), f) for n, (t, at, f) in enumerate(steps)]


def test_a_no_limit_class_is_never_overdue_and_left_out_of_on_time_rates(
        sessions, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    table = (DATA_DIR / "default-gbt47678-2026.csv").read_text(encoding="utf-8")
    limits = tmp_path / "limits.csv"
    limits.write_text(table + "handle,event,10,*,*,*,*,不限时,,test,information requests: no 处置 limit\n",
                      encoding="utf-8")
    build_community(sessions, [(f"{COMMUNITY}001", square(0, 0), "A"), (G_B, square(0, 1), "B")])
    ref = Reference.load(sessions, GB, settings.model_copy(update={"limits_file": limits}))
    # 07001 (2 工作日 from Tue 09:20 → Thu 09:20) handled late on Fri; 10002 (不限时) handled a
    # week later; both checked and closed. A third, 10002, still open: never overdue.
    late = history("LATE", "07001", "2026-09-04")
    free = history("FREE", "10002", "2026-09-08")
    open_ = history("OPEN", "10002", None)
    with transaction(sessions) as s:
        apply_events(s, iter_incoming(late + free + open_), ref)

    with sessions() as s:
        cases = {c.case_id: c for c in s.scalars(select(Case))}
    assert cases["LATE"].on_time_handle is False and cases["LATE"].stage == "closed"
    assert cases["FREE"].on_time_handle is None and cases["FREE"].stage == "closed"
    assert cases["FREE"].on_time_check is True and cases["FREE"].on_time_close is not None
    o = cases["OPEN"]
    assert (o.clock_stage, o.deadline_at, o.on_time_handle) == ("handle", None, None)

    for at in ("2026-09-02 09:00", "2026-12-31 17:00"):
        with sessions() as s:
            assert "OPEN" not in {r.case_id for r in overdue_as_of(s, ref.timing, L(at))}
            assert "OPEN" not in {r.case_id for r in overdue_stored(s, ref.timing, L(at))}
            view = LiveView.load(s, ref.timing, L(at))
        assert view.kpis().overdue == 0 and view.overdue_queue().due_soon == ()

    weights = replace(load_weights(), min_cases=1, min_ratings=1)
    period = Period.month(2026, 9, TZ)
    now = datetime(2026, 10, 5, tzinfo=UTC)
    with sessions() as s:
        grid = evaluate(s, CITY, ObjectKind.GRID, period, weights, now=now).row(G_B)
        unit = evaluate(s, CITY, ObjectKind.UNIT, period, weights, now=now).row("U-HW")
    assert grid is not None and unit is not None
    g, u = grid.indicators, unit.indicators
    assert (g["due_close"], g["closed"], g["close_rate"]) == (3, 2, 2 / 3)  # 不限时 cases count here
    assert (g["closed_on_time"], g["on_time_close_rate"]) == (0, 0.0)  # only LATE is judged: 0 / 1
    assert (u["assigned"], u["handled"], u["handled_on_time"], u["handled_late"]) == (3, 2, 0, 1)
    assert u["on_time_handle_rate"] == 0.0  # 0 / 1, not 0 / 3
