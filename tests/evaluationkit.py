"""Shared kit: the worked example of 综合考评 (docs/evaluation.md §7), September 2026.

test_evaluation checks every figure of it, worked out by hand; test_evaluation_views checks
that the API, the wall and the report show the same. A pytest plugin (registered in
tests/conftest.py): the ``september_city`` fixture needs no import; the constants do.

City: district 990101 青山区 — street 990101001 (grids G1, G2), street 990101002 (G3);
district 990102 白沙区 — street 990102001 (G4). Every grid is set to exactly 10,000 m².
Units U-HW, U-SZ (青山区), U-BS (白沙区). Supervisors JDY1 (G1, G2), JDY2 (G3), JDY3 (G4);
acceptor SLY1; shift leads ZBZ1, ZBZ2; dispatchers PQY1, PQY2.

Cases (grid: story, times CST):

- C1 (G1): JDY1 reports 09-02 09:00, 立案 ZBZ1 09:30, 派遣 PQY1→U-HW 09:40, 处置 15:00,
  核查 JDY1 16:00, 结案 ZBZ1 16:30; rated 5 on 09-03
- C2 (G1): JDY1 09-03 09:00, 立案 ZBZ1 09:20, 派遣 PQY1→U-HW 09:30, 处置 09-05 09:00 (late),
  核查 JDY1 09:30, 结案 ZBZ2 10:00; rated 不满意 (1) 09-06
- C3 (G2): 12345 via SLY1 09-04 10:00, 核实 JDY1 10:30, 立案 ZBZ2 10:40, 派遣 PQY2→U-SZ 10:50,
  回退 U-SZ 11:30, 派遣 PQY1→U-HW 12:00, 处置 16:00, 返工 JDY1 17:00, 处置 09-05 10:00,
  核查 JDY1 11:00, 结案 ZBZ1 11:30; rated 满意 (5) 09-07
- C4 (G3): JDY2 09-29 09:00, 立案 ZBZ1 09:10, 派遣 PQY2→U-HW 09:20, 延期 granted 15:10,
  处置 10-02 09:00 (late, after the period), 核查, 结案 10-02
- C5 (G3): JDY2 09-10 09:00, 不予立案 ZBZ2 09:30
- C6 (G3): JDY2 09-11 09:00, 立案 ZBZ2 09:20, 作废 ZBZ2 09:40
- C7 (G2): JDY1 09-12 10:00, 自处理 10:10, 结案 ZBZ1 10:30; rated 2 on 10-01 (October)
- C8 (G3): 公众举报 via SLY1 09-15 09:00, 核实 JDY2 11:00 (late), 立案 ZBZ1 11:30,
  派遣 PQY2→U-HW 11:40, 挂账 09-16; a rating on 09-20 is illegal (not closed)
- C9 (G4): JDY3 09-08 09:00, 立案 ZBZ1 09:10, 派遣 PQY1→U-BS 09:20, 处置 13:00, 核查 JDY3 14:00,
  结案 ZBZ2 14:10; rated 4 on 09-09
- C10 (G1): JDY1 08-31 15:00, 立案 ZBZ1 15:10, 派遣 PQY1→U-HW 15:20 (August), 处置 09-01 10:00,
  核查 JDY1 11:00, 结案 ZBZ1 11:30; rated 4 on 09-02
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from citykit import build_plan
from dashboard.figures.evaluation import Period
from dashboard.rules import classification
from dashboard.rules.lifecycle import EventType, LifecycleEvent
from dashboard.store.casebook import Incoming, apply_events
from dashboard.store.db import transaction
from dashboard.store.models import Grid, Person, Region, Unit
from dashboard.store.reference import Reference
from dashboard.store.scope import clear_cache

CST = timezone(timedelta(hours=8))
SEPT = Period.month(2026, 9, CST)
NOW = datetime(2026, 10, 20, 12, 0, tzinfo=CST)
G1, G2, G3, G4 = "990101001001001", "990101001001002", "990101002001001", "990102001001001"
LIMITS = """stage,kind,major_code,minor_code,urgency,area_class,limit,unit,source,note
verify,*,*,*,*,*,1,calendar_hours,test,
file,*,*,*,*,*,1,calendar_hours,test,
dispatch,*,*,*,*,*,1,calendar_hours,test,
handle,*,*,*,*,*,24,calendar_hours,test,
check,*,*,*,*,*,2,calendar_hours,test,
close,*,*,*,*,*,1,calendar_hours,test,
"""
PLAN = {
    ("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 2},
                          ("990101002", "江西街道"): {("990101002001", "江西社区"): 1}},
    ("990102", "白沙区"): {("990102001", "白沙街道"): {("990102001001", "白沙社区"): 1}},
}


def at(text: str) -> datetime:
    """``"09-02 09:00"`` → 2026-09-02 09:00 CST."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=CST)


def story() -> list[tuple[str, EventType, str, str | None, dict[str, Any]]]:
    """(case, type, when, actor, fields) of every event of the cases above."""
    R, V, F, D = EventType.REPORTED, EventType.VERIFIED, EventType.FILED, EventType.DISPATCHED
    H, K, C = EventType.HANDLED, EventType.CHECKED_OK, EventType.CLOSED

    def rep(grid: str, source: str = "supervisor") -> dict[str, Any]:
        return {"source": source, "kind": "event", "class_code": "06010", "grid_code": grid}

    return [
        ("C1", R, "09-02 09:00", "JDY1", rep(G1)), ("C1", F, "09-02 09:30", "ZBZ1", {}),
        ("C1", D, "09-02 09:40", "PQY1", {"unit_code": "U-HW"}), ("C1", H, "09-02 15:00", "U-HW", {}),
        ("C1", K, "09-02 16:00", "JDY1", {}), ("C1", C, "09-02 16:30", "ZBZ1", {}),
        ("C1", EventType.RATED, "09-03 10:00", "SLY1", {"satisfaction": 5}),
        ("C2", R, "09-03 09:00", "JDY1", rep(G1)), ("C2", F, "09-03 09:20", "ZBZ1", {}),
        ("C2", D, "09-03 09:30", "PQY1", {"unit_code": "U-HW"}), ("C2", H, "09-05 09:00", "U-HW", {}),
        ("C2", K, "09-05 09:30", "JDY1", {}), ("C2", C, "09-05 10:00", "ZBZ2", {}),
        ("C2", EventType.RATED, "09-06 10:00", "SLY1", {"satisfaction": "dissatisfied"}),
        ("C3", R, "09-04 10:00", "SLY1", rep(G2, "hotline_12345")), ("C3", V, "09-04 10:30", "JDY1", {}),
        ("C3", F, "09-04 10:40", "ZBZ2", {}), ("C3", D, "09-04 10:50", "PQY2", {"unit_code": "U-SZ"}),
        ("C3", EventType.RETURNED, "09-04 11:30", "U-SZ", {}),
        ("C3", D, "09-04 12:00", "PQY1", {"unit_code": "U-HW"}), ("C3", H, "09-04 16:00", "U-HW", {}),
        ("C3", EventType.REWORK, "09-04 17:00", "JDY1", {}), ("C3", H, "09-05 10:00", "U-HW", {}),
        ("C3", K, "09-05 11:00", "JDY1", {}), ("C3", C, "09-05 11:30", "ZBZ1", {}),
        ("C3", EventType.RATED, "09-07 10:00", "SLY1", {"satisfaction": "satisfied"}),
        ("C4", R, "09-29 09:00", "JDY2", rep(G3)), ("C4", F, "09-29 09:10", "ZBZ1", {}),
        ("C4", D, "09-29 09:20", "PQY2", {"unit_code": "U-HW"}),
        ("C4", EventType.EXTENSION_REQUESTED, "09-29 15:00", "U-HW", {}),
        ("C4", EventType.EXTENSION_APPROVED, "09-29 15:10", "ZBZ1", {}),
        ("C4", H, "10-02 09:00", "U-HW", {}), ("C4", K, "10-02 10:00", "JDY2", {}),
        ("C4", C, "10-02 10:30", "ZBZ1", {}),
        ("C5", R, "09-10 09:00", "JDY2", rep(G3)), ("C5", EventType.REJECTED, "09-10 09:30", "ZBZ2", {}),
        ("C6", R, "09-11 09:00", "JDY2", rep(G3)), ("C6", F, "09-11 09:20", "ZBZ2", {}),
        ("C6", EventType.VOIDED, "09-11 09:40", "ZBZ2", {}),
        ("C7", R, "09-12 10:00", "JDY1", rep(G2)), ("C7", EventType.SELF_HANDLED, "09-12 10:10", "JDY1", {}),
        ("C7", C, "09-12 10:30", "ZBZ1", {}), ("C7", EventType.RATED, "10-01 10:00", "SLY1", {"satisfaction": 2}),
        ("C8", R, "09-15 09:00", "SLY1", rep(G3, "public")), ("C8", V, "09-15 11:00", "JDY2", {}),
        ("C8", F, "09-15 11:30", "ZBZ1", {}), ("C8", D, "09-15 11:40", "PQY2", {"unit_code": "U-HW"}),
        ("C8", EventType.SUSPENDED, "09-16 09:00", "PQY2", {}),
        ("C8", EventType.RATED, "09-20 10:00", "SLY1", {"satisfaction": 5}),  # illegal: C8 is not closed
        ("C9", R, "09-08 09:00", "JDY3", rep(G4)), ("C9", F, "09-08 09:10", "ZBZ1", {}),
        ("C9", D, "09-08 09:20", "PQY1", {"unit_code": "U-BS"}), ("C9", H, "09-08 13:00", "U-BS", {}),
        ("C9", K, "09-08 14:00", "JDY3", {}), ("C9", C, "09-08 14:10", "ZBZ2", {}),
        ("C9", EventType.RATED, "09-09 10:00", "SLY1", {"satisfaction": 4}),
        ("C10", R, "08-31 15:00", "JDY1", rep(G1)), ("C10", F, "08-31 15:10", "ZBZ1", {}),
        ("C10", D, "08-31 15:20", "PQY1", {"unit_code": "U-HW"}), ("C10", H, "09-01 10:00", "U-HW", {}),
        ("C10", K, "09-01 11:00", "JDY1", {}), ("C10", C, "09-01 11:30", "ZBZ1", {}),
        ("C10", EventType.RATED, "09-02 10:00", "SLY1", {"satisfaction": 4}),
    ]


@pytest.fixture
def september_city(sessions, settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The example city with the example month applied through the casebook; returns ``sessions``."""
    clear_cache()
    limits = tmp_path / "limits.csv"
    limits.write_text(LIMITS, encoding="utf-8")
    with transaction(sessions) as s:
        build_plan(s, PLAN)
        s.execute(update(Grid).values(area_m2=10_000.0))
        region = dict(s.execute(select(Region.code, Region.id)).all())
        s.add_all([Unit(code="U-HW", name="青山区环卫所", kind="disposal", region_id=region["990101"]),
                   Unit(code="U-SZ", name="青山区市政所", kind="department", region_id=region["990101"]),
                   Unit(code="U-BS", name="白沙区环卫所", kind="disposal", region_id=region["990102"])])
        grids = {g.code: g for g in s.scalars(select(Grid))}
        for code, role, where, beat in (
            ("JDY1", "supervisor", "990101001", (G1, G2)), ("JDY2", "supervisor", "990101002", (G3,)),
            ("JDY3", "supervisor", "990102001", (G4,)), ("SLY1", "acceptor", None, ()),
            ("ZBZ1", "shift_lead", None, ()), ("ZBZ2", "shift_lead", None, ()),
            ("PQY1", "dispatcher", None, ()), ("PQY2", "dispatcher", None, ()),
        ):
            s.add(Person(code=code, name=f"员工{code}", role=role, region_id=region.get(where or ""),
                         grids=[grids[g] for g in beat]))
    ref = Reference.load(sessions, classification.load("gbt47678-2026"),
                         settings.model_copy(update={"limits_file": limits}))
    batch = []
    for i, (case_id, type_, when, actor, fields) in enumerate(story()):
        event = LifecycleEvent(f"{case_id}-{i:02d}", case_id, type_, at(when), fields)
        batch.append(Incoming(event, source=fields.get("source"), actor=actor, payload={"actor": actor}))
    with transaction(sessions) as s:
        result = apply_events(s, batch, ref)
    assert result.rejected == [] and result.applied == len(batch)
    return sessions
