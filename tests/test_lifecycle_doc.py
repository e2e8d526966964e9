"""docs/lifecycle.md says what the code does: its tables are walked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from dashboard.lifecycle import CLOCK_AFTER, FINISHES_CLOCK, TERMINAL, TRANSITIONS, EventType, Stage
from dashboard.limits import STAGES as CLOCKS

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
