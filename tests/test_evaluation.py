"""综合考评 (dashboard.figures.evaluation): a worked example, figure by figure (docs/evaluation.md §7).

A hand-made September 2026 in two districts: ten cases and their events go through the real
path (dashboard.store.casebook.apply_events: the lifecycle fold with its clocks and on-time flags),
under a limits table in 自然时 (calendar hours), so every 按时 flag is plain arithmetic:
核实 1 h, 立案 1 h, 派遣 1 h, 处置 24 h, 核查 2 h, 结案 1 h. Every expected value below was
worked out by hand from the story of the cases, not by running the code.

The city, its people and the story of its ten cases: tests/evaluationkit.py (``september_city``).
Weights: the shipped ones with ``min_cases = 2`` and ``min_ratings = 2``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dashboard.figures.evaluation import Evaluation, ObjectKind, Period, evaluate
from dashboard.rules import classification
from dashboard.rules.evalspec import INSUFFICIENT, grade, load_weights
from dashboard.rules.lifecycle import EventType, LifecycleEvent
from dashboard.store.casebook import Incoming, apply_events
from dashboard.store.db import transaction
from dashboard.store.models import Case, CaseEvent
from dashboard.store.reference import Reference
from dashboard.store.scope import CITY, get_scope
from evaluationkit import CST, G1, G2, G3, G4, LIMITS, NOW, SEPT, at

WEIGHTS = replace(load_weights(), min_cases=2, min_ratings=2)


def run(sessions, kind: ObjectKind, scope: str | None = None, period: Period = SEPT,  # type: ignore[no-untyped-def]
        now: datetime = NOW) -> Evaluation:
    with sessions() as s:
        sc = CITY if scope is None else get_scope(s, scope)
        return evaluate(s, sc, kind, period, WEIGHTS, now=now)


def figures(ev: Evaluation, code: str) -> dict[str, Any]:
    row = ev.row(code)
    assert row is not None, f"{code} not in {[r.code for r in ev.rows]}"
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.indicators.items()}


def test_the_fold_stored_what_the_story_says(september_city) -> None:  # type: ignore[no-untyped-def]
    """The inputs of the evaluation, as the lifecycle stored them."""
    with september_city() as s:
        rows = {c.case_id: c for c in s.scalars(select(Case))}
        problems = s.execute(select(CaseEvent.case_id, CaseEvent.type)
                             .where(CaseEvent.problem.is_not(None))).all()
    flags = {cid: tuple(getattr(c, f"on_time_{k}") for k in ("verify", "file", "dispatch", "handle", "check", "close"))
             for cid, c in rows.items()}
    T, F, N = True, False, None
    assert flags == {
        "C1": (N, T, T, T, T, T), "C2": (N, T, T, F, T, T), "C3": (T, T, T, T, T, T),
        "C4": (N, T, T, F, T, T), "C5": (N, T, N, N, N, N), "C6": (N, T, N, N, N, N),
        "C7": (N, N, N, N, N, T), "C8": (F, T, T, N, N, N), "C9": (N, T, T, T, T, T),
        "C10": (N, T, T, T, T, T),
    }
    assert {cid: c.satisfaction for cid, c in rows.items() if c.satisfaction} == {
        "C1": 5, "C2": 1, "C3": 5, "C7": 2, "C9": 4, "C10": 4}
    assert rows["C8"].stage == "suspended" and rows["C8"].satisfaction is None
    assert [tuple(p) for p in problems] == [("C8", "rated")]  # the rating of an open case waits, unapplied
    assert (rows["C3"].rework_count, rows["C3"].return_count, rows["C4"].extension_count) == (1, 1, 1)


# -- 区域 ---------------------------------------------------------------------------------------
def test_districts(september_city) -> None:  # type: ignore[no-untyped-def]
    ev = run(september_city, ObjectKind.DISTRICT)
    # 990101 (G1–G3): filed C1 C2 C3 C4 C6 C8; public C3 C8; due = 6 − C6 (作废) − C8 (挂账);
    # closed by 09-30 C1 C2 C3; on time C1 C3 (C2 handled late); ratings in September of its
    # cases: C1 5, C2 1, C3 5, C10 4 (C7's is October's, C8's illegal).
    assert figures(ev, "990101") == {
        "filed": 6, "public_filed": 2, "report_rate": 0.3333, "due_close": 4, "closed": 3, "close_rate": 0.75,
        "closed_on_time": 2, "on_time_close_rate": 0.5, "grids": 3, "area_km2": 0.03, "incidence": 200.0,
        "filed_per_grid": 2.0, "rated": 4, "satisfied": 3, "satisfaction_rate": 0.75,
        "satisfaction": 68.75,  # mean 15/4 on 1–5 → (3.75 − 1) / 4 × 100
    }
    # Composite: (1 − 1/3)·100·10 + 90 (2 per grid < 3)·20 + 75·30 + 50·20 + 68.75·20 = 7091.67 / 100
    row = ev.row("990101")
    assert row.points == {"report_rate": pytest.approx(66.6667, abs=1e-4), "filed_per_grid": 90.0,
                          "close_rate": 75.0, "on_time_close_rate": 50.0, "satisfaction": 68.75}
    assert (row.composite, row.grade, row.rank, row.sample, row.sample_ok) == (70.92, "C", 1, 4, True)
    # 990102 (G4): C9 only. One due case < min_cases: 样本不足, not ranked although its
    # composite is higher; one rating < min_ratings, so 满意度 drops out of its composite:
    # (100·10 + 90·20 + 100·30 + 100·20) / 80 = 97.5
    other = ev.row("990102")
    assert figures(ev, "990102") == {
        "filed": 1, "public_filed": 0, "report_rate": 0.0, "due_close": 1, "closed": 1, "close_rate": 1.0,
        "closed_on_time": 1, "on_time_close_rate": 1.0, "grids": 1, "area_km2": 0.01, "incidence": 100.0,
        "filed_per_grid": 1.0, "rated": 1, "satisfied": 1, "satisfaction_rate": 1.0, "satisfaction": 75.0}
    assert (other.composite, other.grade, other.rank, other.sample_ok) == (97.5, None, None, False)
    assert [r.code for r in ev.rows] == ["990101", "990102"]  # ranked first, then 样本不足


def test_streets_and_grids(september_city) -> None:  # type: ignore[no-untyped-def]
    ev = run(september_city, ObjectKind.STREET)
    # 990101001 (G1, G2): filed C1 C2 C3, all due and closed, on time C1 C3, public C3.
    assert figures(ev, "990101001") | {} == {
        "filed": 3, "public_filed": 1, "report_rate": 0.3333, "due_close": 3, "closed": 3, "close_rate": 1.0,
        "closed_on_time": 2, "on_time_close_rate": 0.6667, "grids": 2, "area_km2": 0.02, "incidence": 150.0,
        "filed_per_grid": 1.5, "rated": 4, "satisfied": 3, "satisfaction_rate": 0.75, "satisfaction": 68.75}
    # 66.67·10 + 90·20 + 100·30 + 66.67·20 + 68.75·20 = 8175 / 100
    assert (ev.row("990101001").composite, ev.row("990101001").grade, ev.row("990101001").rank) == (81.75, "B", 1)
    # 990101002 (G3): filed C4 C6 C8; due C4 only (still open on 09-30): 0 closed. No ratings.
    assert figures(ev, "990101002") == {
        "filed": 3, "public_filed": 1, "report_rate": 0.3333, "due_close": 1, "closed": 0, "close_rate": 0.0,
        "closed_on_time": 0, "on_time_close_rate": 0.0, "grids": 1, "area_km2": 0.01, "incidence": 300.0,
        "filed_per_grid": 3.0, "rated": 0, "satisfied": 0, "satisfaction_rate": None, "satisfaction": None}
    # (66.67·10 + 75 (3 per grid < 5)·20 + 0·30 + 0·20) / 80 (满意度 n/a) = 27.08; 1 due: 样本不足
    row = ev.row("990101002")
    assert (row.composite, row.grade, row.rank, row.sample_ok) == (27.08, None, None, False)
    assert ev.row("990102001").composite == 97.5

    grids = run(september_city, ObjectKind.GRID)
    # G1: C1 C2 (C10 was filed in August): 100·10 + 90·20 + 100·30 + 50·20 + 58.33·20 = 79.67
    assert figures(grids, G1) == {
        "filed": 2, "public_filed": 0, "report_rate": 0.0, "due_close": 2, "closed": 2, "close_rate": 1.0,
        "closed_on_time": 1, "on_time_close_rate": 0.5, "grids": 1, "area_km2": 0.01, "incidence": 200.0,
        "filed_per_grid": 2.0, "rated": 3, "satisfied": 2, "satisfaction_rate": 0.6667, "satisfaction": 58.3333}
    assert (grids.row(G1).composite, grids.row(G1).grade) == (79.67, "B")
    assert figures(grids, G2)["satisfaction"] == 100.0  # C3's 满意 = 5
    assert [r.code for r in grids.rows] == [G1, G2, G3, G4]  # G2 (1 due) … are 样本不足


# -- 部门 ---------------------------------------------------------------------------------------
def test_units(september_city) -> None:  # type: ignore[no-untyped-def]
    ev = run(september_city, ObjectKind.UNIT)
    # U-HW: cohort C1 C2 C3 C4 C8; due = all but C8 (挂账); handled by 09-30: C1 C2 C3 (C4 on
    # 10-02); on time C1 C3, late C2; closed C1 C2 C3; 返工 C3; 延期 C4; it returned nothing.
    assert figures(ev, "U-HW") == {
        "assigned": 4, "handled": 3, "handled_on_time": 2, "on_time_handle_rate": 0.5, "handled_late": 1,
        "closed": 3, "close_rate": 0.75, "reworked": 1, "rework_rate": 0.25, "extended": 1, "extension_rate": 0.25,
        "returned": 0, "return_rate": 0.0, "suspended": 1,
        "rated": 4, "satisfied": 3, "satisfaction_rate": 0.75, "satisfaction": 68.75}  # C1 C2 C3 C10
    # 100 (4 ≤ 50)·10 + 75·30 + 50·30 + (1 − 0.25)·100·30 = 7000 / 100; 满意度 has weight 0
    assert (ev.row("U-HW").composite, ev.row("U-HW").grade, ev.row("U-HW").rank) == (70.0, "C", 1)
    # U-SZ returned C3 (回退 counts for the unit that sent it back); no case of its own.
    assert figures(ev, "U-SZ") | {} == {
        "assigned": 0, "handled": 0, "handled_on_time": 0, "on_time_handle_rate": None, "handled_late": 0,
        "closed": 0, "close_rate": None, "reworked": 0, "rework_rate": None, "extended": 0, "extension_rate": None,
        "returned": 1, "return_rate": 1.0, "suspended": 0,
        "rated": 0, "satisfied": 0, "satisfaction_rate": None, "satisfaction": None}
    assert ev.row("U-SZ").sample_ok is False and ev.row("U-SZ").rank is None
    # 应处置数 0: no composite at all (its zero counts alone would score 100.00), shown as —.
    assert ev.row("U-SZ").composite is None and ev.row("U-SZ").grade is None
    assert figures(ev, "U-BS")["assigned"] == 1 and ev.row("U-BS").composite == 100.0


# -- 岗位 ---------------------------------------------------------------------------------------
def test_supervisors(september_city) -> None:  # type: ignore[no-untyped-def]
    ev = run(september_city, ObjectKind.SUPERVISOR)
    # JDY1 reported C1 C2 C7 in September (C10 in August), all valid (C7 自处理); verified C3 on
    # time; checked C1 C2 C3 (rework and pass: one case) C10, all on time; its grids G1 G2
    # filed C1 C2 C3, of which C3 came from the public: 漏报 1.
    assert figures(ev, "JDY1") == {
        "reports": 3, "valid_reports": 3, "valid_rate": 1.0, "to_verify": 1, "verified_on_time": 1,
        "on_time_verify_rate": 1.0, "to_check": 4, "checked_on_time": 4, "on_time_check_rate": 1.0,
        "grid_filed": 3, "missed": 1, "missed_rate": 0.3333}
    # 100·40 + (1 − 1/3)·100·20 + 100·20 + 100·20 = 9333.33 / 100
    assert (ev.row("JDY1").composite, ev.row("JDY1").grade, ev.row("JDY1").rank) == (93.33, "A", 1)
    # JDY2 reported C4 C5 C6: C5 rejected, C6 voided → 1 valid; verified C8 late; no check in
    # September (C4's was on 10-02): 按时核查率 n/a, its 20 % drop out.
    assert figures(ev, "JDY2") == {
        "reports": 3, "valid_reports": 1, "valid_rate": 0.3333, "to_verify": 1, "verified_on_time": 0,
        "on_time_verify_rate": 0.0, "to_check": 0, "checked_on_time": 0, "on_time_check_rate": None,
        "grid_filed": 3, "missed": 1, "missed_rate": 0.3333}
    # (33.33·40 + 66.67·20 + 0·20) / 80 = 33.33
    assert (ev.row("JDY2").composite, ev.row("JDY2").grade, ev.row("JDY2").rank) == (33.33, "E", 2)
    assert ev.row("JDY3").sample == 1 and ev.row("JDY3").sample_ok is False
    assert [r.code for r in ev.rows] == ["JDY1", "JDY2", "JDY3"]


def test_acceptors_shift_leads_dispatchers(september_city) -> None:  # type: ignore[no-untyped-def]
    acc = run(september_city, ObjectKind.ACCEPTOR)
    # SLY1 registered C3 (核实 on time, 核查 on time) and C8 (核实 late, not checked yet); made
    # the call-backs of C1 C2 C3 C9 C10 in September (C7's is October's, C8's illegal).
    assert figures(acc, "SLY1") == {
        "accepted": 2, "to_verify": 2, "verified_on_time": 1, "verify_dispatch_rate": 0.5,
        "to_check": 1, "checked_on_time": 1, "check_dispatch_rate": 1.0, "callbacks": 5}
    # 0 (受理数 2 ≤ 300)·25 + 50·40 + 100·35 = 5500 / 100
    assert (acc.row("SLY1").composite, acc.row("SLY1").grade) == (55.0, "D")

    leads = run(september_city, ObjectKind.SHIFT_LEAD)
    # ZBZ1 filed C1 C2 C4 C8 C9 (all within 1 h) and closed C1 C3 C7 C10 in September, on time.
    assert figures(leads, "ZBZ1") == {
        "filed": 5, "filed_on_time": 5, "on_time_file_rate": 1.0, "voided": 0, "accurate_file_rate": 1.0,
        "closed": 4, "closed_on_time": 4, "on_time_close_rate": 1.0}
    # ZBZ2 filed C3 and C6, C6 was voided; closed C2 and C9.
    assert figures(leads, "ZBZ2") == {
        "filed": 2, "filed_on_time": 2, "on_time_file_rate": 1.0, "voided": 1, "accurate_file_rate": 0.5,
        "closed": 2, "closed_on_time": 2, "on_time_close_rate": 1.0}
    # 100·25 + 50·40 + 100·35 = 8000 / 100
    assert [(r.code, r.composite, r.grade, r.rank) for r in leads.rows] == [
        ("ZBZ1", 100.0, "A", 1), ("ZBZ2", 80.0, "B", 2)]

    disp = run(september_city, ObjectKind.DISPATCHER)
    # PQY1 dispatched C1 C2 C3 (the second time) C9; PQY2 dispatched C3 (returned by U-SZ), C4, C8.
    assert figures(disp, "PQY1") == {"dispatched": 4, "dispatched_on_time": 4, "on_time_dispatch_rate": 1.0,
                                     "returned": 0, "accurate_dispatch_rate": 1.0}
    assert figures(disp, "PQY2") == {"dispatched": 3, "dispatched_on_time": 3, "on_time_dispatch_rate": 1.0,
                                     "returned": 1, "accurate_dispatch_rate": 0.6667}
    # 0 (派遣数 ≤ 300)·20 + 100·40 + 100·40 = 80; 0·20 + 100·40 + 66.67·40 = 66.67
    assert [(r.code, r.composite, r.grade, r.rank) for r in disp.rows] == [
        ("PQY1", 80.0, "B", 1), ("PQY2", 66.67, "C", 2)]


# -- scope, period, grades ------------------------------------------------------------------------
def test_a_district_scope_sees_only_its_district(september_city) -> None:  # type: ignore[no-untyped-def]
    assert [r.code for r in run(september_city, ObjectKind.DISTRICT, "990101").rows] == ["990101"]
    assert [r.code for r in run(september_city, ObjectKind.DISTRICT, "990102").rows] == ["990102"]
    assert [r.code for r in run(september_city, ObjectKind.GRID, "990102").rows] == [G4]
    assert {r.code for r in run(september_city, ObjectKind.UNIT, "990101").rows} == {"U-HW", "U-SZ"}
    assert [r.code for r in run(september_city, ObjectKind.UNIT, "990102").rows] == ["U-BS"]
    # Centre staff belong to no district: in a district they are judged on its cases only.
    leads = run(september_city, ObjectKind.SHIFT_LEAD, "990102")
    assert figures(leads, "ZBZ1")["filed"] == 1 and figures(leads, "ZBZ2")["closed"] == 1  # C9
    assert figures(run(september_city, ObjectKind.SHIFT_LEAD, "990101"), "ZBZ1")["filed"] == 4
    sups = run(september_city, ObjectKind.SUPERVISOR, "990101")
    assert [r.code for r in sups.rows] == ["JDY1", "JDY2"]
    # The same figures as in the city scope for objects wholly inside the district.
    assert figures(run(september_city, ObjectKind.DISTRICT, "990101"), "990101") == figures(
        run(september_city, ObjectKind.DISTRICT), "990101")


def test_period_boundaries(september_city) -> None:  # type: ignore[no-untyped-def]
    august = run(september_city, ObjectKind.GRID, period=Period.month(2026, 8, CST))
    # C10 was filed on 08-31 and closed on 09-01: in August's cohort, not closed by its end.
    assert {k: figures(august, G1)[k] for k in ("filed", "due_close", "closed", "close_rate", "rated")} == {
        "filed": 1, "due_close": 1, "closed": 0, "close_rate": 0.0, "rated": 0}
    october = run(september_city, ObjectKind.GRID, period=Period.month(2026, 10, CST))
    # C4 (filed in September) is not October's; C7's rating on 10-01 is: 2 → 25.
    assert figures(october, G3)["filed"] == 0
    assert {k: figures(october, G2)[k] for k in ("filed", "rated", "satisfied", "satisfaction")} == {
        "filed": 0, "rated": 1, "satisfied": 0, "satisfaction": 25.0}
    # A month not over yet is judged as of now: on 09-05 09:30 C2 was not closed yet.
    early = run(september_city, ObjectKind.GRID, now=at("09-05 09:30"))
    assert early.as_of == at("09-05 09:30")
    assert {k: figures(early, G1)[k] for k in ("filed", "due_close", "closed")} == {
        "filed": 2, "due_close": 2, "closed": 1}
    # Any [first, end) of days; the local day starts at 00:00 CST.
    days = Period.parse("2026-09-02..2026-09-03", CST)
    assert (days.start, days.end, days.label) == (at("09-02 00:00"), at("09-04 00:00"), "2026-09-02..2026-09-03")
    assert figures(run(september_city, ObjectKind.GRID, period=days), G1)["filed"] == 2
    assert Period.parse("2026-09", CST) == SEPT and SEPT.label == "2026-09"


def _other_history(sessions, settings, tmp_path: Path) -> int:  # type: ignore[no-untyped-def]
    """Eight other months of cases (March–August, October–November 2026), none with an event in September,
    through the casebook; some span September (挂账 in August, resumed in October). Returns the events applied."""
    limits = tmp_path / "other-limits.csv"
    limits.write_text(LIMITS, encoding="utf-8")
    ref = Reference.load(sessions, classification.load("gbt47678-2026"),
                         settings.model_copy(update={"limits_file": limits}))
    E = EventType
    staff = (("JDY1", G1, "U-HW", "PQY1", "ZBZ1"), ("JDY2", G3, "U-HW", "PQY2", "ZBZ2"),
             ("JDY3", G4, "U-BS", "PQY1", "ZBZ1"))
    batch: list[Incoming] = []
    for month in (3, 4, 5, 6, 7, 8, 10, 11):
        for n in range(24):
            sup, grid, unit, disp, lead = staff[n % 3]
            cid = f"H{month:02d}-{n:02d}"
            t0 = datetime(2026, month, 2 + n, 9, tzinfo=CST)
            steps: list[tuple[EventType, int, str, dict[str, Any]]] = [
                (E.REPORTED, 0, sup, {"source": "supervisor", "kind": "event", "class_code": "06010",
                                      "grid_code": grid}),
                (E.FILED, 20, lead, {}), (E.DISPATCHED, 30, disp, {"unit_code": unit})]
            if month == 8 and n % 4 == 0:  # 挂账 over September: no event in it
                resumed = int((datetime(2026, 10, 5, 9, tzinfo=CST) - t0).total_seconds()) // 60
                steps += [(E.SUSPENDED, 60, disp, {}), (E.RESUMED, resumed, disp, {}),
                          (E.HANDLED, resumed + 60 * 24, unit, {})]
            else:
                if n % 5 == 0:
                    steps += [(E.RETURNED, 50, unit, {}), (E.DISPATCHED, 70, disp, {"unit_code": unit})]
                steps += [(E.HANDLED, 300 + 100 * (n % 3), unit, {})]
            steps += [(E.CHECKED_OK, steps[-1][1] + 60, sup, {}), (E.CLOSED, steps[-1][1] + 80, lead, {})]
            if n % 2 == 0:
                steps.append((E.RATED, steps[-1][1] + 600, "SLY1", {"satisfaction": 1 + n % 5}))
            for i, (type_, minutes, actor, fields) in enumerate(steps):
                when = t0 + timedelta(minutes=minutes)
                assert not (SEPT.start <= when < SEPT.end), (cid, type_, when)
                batch.append(Incoming(LifecycleEvent(f"{cid}-{i:02d}", cid, type_, when, fields),
                                      source=fields.get("source"), actor=actor, payload={"actor": actor}))
    with transaction(sessions) as s:
        result = apply_events(s, batch, ref)
    assert result.rejected == [] and result.applied == len(batch)
    return len(batch)


def test_a_month_out_of_much_other_history_is_the_month_alone(september_city, settings,  # type: ignore[no-untyped-def]
                                                             tmp_path: Path) -> None:
    """September's figures, every kind and scope, do not change when 19 times its cases are added in other
    months (the evaluation reads a period's cases by their time, ``last_event_at``: docs/history.md)."""
    scopes = (None, "990101", "990101002")
    alone = {(kind, sc): run(september_city, kind, sc).rows for kind in ObjectKind for sc in scopes}
    applied = _other_history(september_city, settings, tmp_path)
    with september_city() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 10 + 8 * 24 and applied > 1000
    for (kind, sc), rows in alone.items():
        assert run(september_city, kind, sc).rows == rows, (kind, sc)
    # The other months are there to be read: August (C10 and 24 more) and October are not as before.
    august = run(september_city, ObjectKind.SUPERVISOR, period=Period.month(2026, 8, CST))
    assert figures(august, "JDY1")["reports"] == 1 + 8
    october = run(september_city, ObjectKind.DISPATCHER, period=Period.month(2026, 10, CST),
                  now=datetime(2026, 12, 1, tzinfo=CST))
    assert figures(october, "PQY2")["dispatched"] == 8 + 1  # H10-10 re-dispatched after its 回退


def test_grades_bands_and_the_weights_file(tmp_path: Path) -> None:
    assert [grade(x) for x in (100, 90, 89.99, 75, 74.99, 60, 59.99, 40, 39.99, 0, None)] == [
        "A", "A", "B", "B", "C", "C", "D", "D", "E", "E", None]
    w = load_weights()
    assert {g: sum(t.weight for t in ts) for g, ts in w.terms.items()} == {
        "region": 100, "unit": 100, "supervisor": 100, "acceptor": 100, "shift_lead": 100, "dispatcher": 100}
    assert (w.min_cases, w.min_ratings) == (10, 5)
    band = next(t for t in w.terms["region"] if t.indicator == "filed_per_grid").bands
    assert [band.score(x) for x in (0, 0.1, 2.9, 3, 4, 5, 6, 7, 8, 9, 30)] == \
        [100, 90, 90, 75, 75, 60, 60, 40, 40, 0, 0]
    unit = next(t for t in w.terms["unit"] if t.indicator == "assigned").bands
    assert [unit.score(x) for x in (50, 51, 100, 200, 500, 1000, 1001)] == [100, 90, 90, 75, 60, 40, 0]
    bad = tmp_path / "w.toml"
    bad.write_text('[[region.terms]]\nindicator = "close_rate"\nweight = 60\n', encoding="utf-8")
    with pytest.raises(ValueError, match="region add up to 60"):
        load_weights(bad)
    assert INSUFFICIENT == "样本不足"
