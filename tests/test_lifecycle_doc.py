"""docs/lifecycle.md says what the code does: its tables are walked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from dashboard.rules.lifecycle import CLOCK_AFTER, FINISHES_CLOCK, TERMINAL, TRANSITIONS, EventType, Stage
from dashboard.rules.limits import STAGES as CLOCKS

DOC = (Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md").read_text(encoding="utf-8")


def table_after(heading: str) -> list[list[str]]:
    """Rows (cells stripped) of the first markdown table after the given ## heading."""
    section = DOC.split(f"\n## {heading}\n", 1)[1]
    rows = []
    started = False
    for line in section.splitlines():
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif started:
            break
    return rows[1:]  # without the header


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", cell)


def test_stage_table_is_the_code() -> None:
    rows = table_after("Stages")
    assert [ticked(r[0])[0] for r in rows] == [s.value for s in Stage]
    for row in rows:
        stage = Stage(ticked(row[0])[0])
        assert row[1] == stage.label
        assert (row[2] == "yes") == (stage in TERMINAL)


def test_transition_table_is_the_code() -> None:
    rows = table_after("Transitions")
    assert [ticked(r[0])[0] for r in rows] == [e.value for e in EventType]
    for row in rows:
        et = EventType(ticked(row[0])[0])
        allowed, target = TRANSITIONS[et]
        assert row[1] == et.label
        follows = {Stage(v) for v in ticked(row[2])} or {None}
        assert follows == set(allowed), et
        leads = [Stage(v) for v in ticked(row[3])]
        assert leads == ([] if target is None else [target]), et


def test_clock_table_is_the_code() -> None:
    rows = table_after("Which clock runs")
    documented = {ticked(r[0])[0]: r for r in rows}
    assert set(documented) == {"reported"} | {e.value for e in CLOCK_AFTER}
    for et, clock in CLOCK_AFTER.items():
        row = documented[et.value]
        assert ticked(row[1]) == ([] if clock is None else [clock]), et
        assert (row[2] == "yes") == (et in FINISHES_CLOCK), et
    assert ticked(documented["reported"][1]) == ["verify", "file"]
    for name, label in CLOCKS.items():  # every clock is named with its Chinese label
        assert f"`{name}` {label}" in DOC


def test_diagram_draws_every_legal_move() -> None:
    diagram = DOC.split("```mermaid", 1)[1].split("```", 1)[0]
    for et, (allowed, target) in TRANSITIONS.items():
        if target is None or et is EventType.VOIDED:
            continue  # stage-neutral events and 作废 (from any open stage) are in the prose
        for before in allowed:
            src = "[*]" if before is None else before.value
            assert f"{src} --> {target.value}: {et.value}" in diagram, (et, before)


# -- the deadline rules (docs/lifecycle.md "Deadlines: which events set, move or restart them") ---
DEADLINES = "Deadlines: which events set, move or restart them"


def tables_under(heading: str) -> list[list[list[str]]]:
    """Every markdown table (rows without the header) of the ### section ``heading``."""
    section = DOC.split(f"\n### {heading}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    tables: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in section.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = []
                tables.append(current)
                continue  # the header
            if not set("".join(cells)) <= set("-: "):
                current.append(cells)
        else:
            current = None
    return tables


def test_deadline_rules_table_is_the_code() -> None:
    """Each event's `deadline_at` column and its 处置 effect, checked against the code and by
    folding a real history with that event carrying a far deadline."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from dashboard.rules import classification
    from dashboard.rules.deadlines import Timing, clock_for
    from dashboard.rules.lifecycle import SETS_SOURCE_DEADLINE, LifecycleEvent, fold
    from dashboard.rules.limits import load_limits
    from dashboard.rules.workcalendar import WorkCalendar

    tz = ZoneInfo("Asia/Shanghai")
    gb = classification.load("gbt47678-2026")
    timing = Timing(load_limits(gb), WorkCalendar(tz), gb, {"G-B": "B"}, 0.2)
    rows = {ticked(r[0])[0]: r for r in tables_under(DEADLINES)[0]}
    kinds = {et: re.search(r"\*\*(\w+)\*\*", rows[et][1]).group(1) if "**" in rows[et][1] else rows[et][1]  # type: ignore[union-attr]
             for et in rows}
    assert {EventType(e) for e, k in kinds.items() if k == "source"} == set(SETS_SOURCE_DEADLINE)
    assert {e for e, k in kinds.items() if k == "extension"} == {"extension_approved"}
    assert {e for e, k in kinds.items() if k == "asked"} == {"extension_requested"}
    effects = {et: (re.search(r"\*\*(\w+)\*\*", r[2]) or re.search(r"(—)", r[2])).group(1) for et, r in rows.items()}  # type: ignore[union-attr]
    assert {EventType(e) for e, x in effects.items() if x in ("starts", "restarts")} == {
        et for et, clock in CLOCK_AFTER.items() if clock == "handle"}
    assert effects["resumed"] == "moves" and effects["suspended"] == "stops" and effects["handled"] == "finishes"
    assert effects["extension_approved"] == "extends" and effects["extension_requested"] == "—"

    # Walk it: the event carries a far deadline_at; does the running 处置 clock take it?
    t0 = datetime(2026, 11, 24, 9, 0, tzinfo=tz)
    far = datetime(2026, 11, 27, 18, 0, tzinfo=tz)
    base = {"source": "supervisor", "kind": "event", "class_code": "06010", "grid_code": "G-B"}

    def ev(n: int, type_: EventType, minutes: int, carries: bool, fields: dict | None = None) -> LifecycleEvent:
        f = dict(fields or {})
        if carries:
            f["deadline_at"] = far
        return LifecycleEvent(f"e{n}", "C", type_, t0 + timedelta(minutes=minutes), f)

    def history(et: EventType) -> list[LifecycleEvent]:
        steps = [(EventType.REPORTED, 0, base), (EventType.FILED, 0, None), (EventType.DISPATCHED, 0, None)]
        before = {EventType.RESUMED: [(EventType.SUSPENDED, 30, None)],
                  EventType.REWORK: [(EventType.HANDLED, 30, None)]}
        steps += before.get(et, [])
        if et is EventType.REPORTED:
            return [ev(0, et, 0, True, base)] + [ev(i, t, m, False, f) for i, (t, m, f) in enumerate(steps[1:], 1)]
        if et is EventType.DISPATCHED:
            return [ev(i, t, m, t is et, f) for i, (t, m, f) in enumerate(steps)]
        out = [ev(i, t, m, False, f) for i, (t, m, f) in enumerate(steps)]
        return out + [ev(len(out), et, 60, True)]

    for name, kind in kinds.items():
        et = EventType(name)
        if et in (EventType.RETURNED, EventType.HANDLED, EventType.SUSPENDED):
            continue  # no running 处置 clock (or a stopped one) afterwards
        state, rejected = fold("C", history(et))
        assert rejected == [], name
        clock = clock_for(state, timing)
        assert clock is not None and clock.stage == "handle", name
        takes = clock.deadline_at == far
        assert takes is (kind in ("source", "extension")), (name, kind, clock.deadline_at)
        assert clock.source == ("source" if kind == "source" else "table"), name


_STEP = re.compile(r"`([a-z_]+)` (\d+) (\d\d:\d\d)(?: → (\d+) (\d\d:\d\d))?")


def test_deadline_worked_examples() -> None:
    """The worked examples under the deadline rules: folded, evaluated at T."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from dashboard.rules import classification
    from dashboard.rules.deadlines import Timing, evaluate
    from dashboard.rules.lifecycle import LifecycleEvent
    from dashboard.rules.limits import load_limits
    from dashboard.rules.workcalendar import WorkCalendar

    tz = ZoneInfo("Asia/Shanghai")
    gb = classification.load("gbt47678-2026")
    timing = Timing(load_limits(gb), WorkCalendar(tz), gb, {"G-B": "B"}, 0.2)

    def at(day: str, hm: str) -> datetime:
        return datetime.fromisoformat(f"2026-11-{int(day):02d} {hm}").replace(tzinfo=tz)

    rows = tables_under(DEADLINES)[1]
    assert len(rows) >= 8
    for history, t, deadline, window, state in rows:
        events = []
        for n, m in enumerate(_STEP.finditer(history)):
            fields: dict = {"source": "supervisor", "kind": "event", "class_code": "06010",
                            "grid_code": "G-B"} if n == 0 else {}
            if m[4]:
                fields["deadline_at"] = at(m[4], m[5])
            events.append(LifecycleEvent(f"e{n}", "C", EventType(m[1]), at(m[2], m[3]), fields))
        assert len(events) == history.count(";") + 1, history
        r = evaluate("C", events, at(*t.split()), timing)
        assert r.clock is not None and r.status is not None, history
        assert r.clock.deadline_at == at(*deadline.split()), history
        assert round(r.clock.limit_minutes) == int(window), history
        got = "overdue" if r.status.overdue else "due soon" if r.status.due_soon else "on track"
        assert got == state, history
