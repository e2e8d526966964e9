"""Issue 12 point 1, end to end: a 延期申请 (``extension_requested``) must not move the deadline.

The issue's reproduction, published to the case stream and read by the real ingest into SQL:
非法小广告 (07001) in an area-B grid, 2 工作日 for 处置; reported Mon 2026-05-11 08:30, filed
08:40, dispatched 09:00, a 延期申请 on Tue 10:00 asking for Fri 2026-05-29 18:00. The table's
deadline, Wed 5/13 09:00, stands: the stored row, the wall's live view, the stored-rows overdue
list and ``gridhall overdue --at 2026-05-13T10:00`` all say overdue by 1:00. Only an approved
延期 moves it; a refused request with an earlier date does not shorten it.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import cli
from citykit import COMMUNITY, build_community, square
from dashboard.figures.liveview import LiveView
from dashboard.figures.overdue import overdue_stored
from dashboard.rules import classification
from dashboard.rules.lifecycle import EventType as E
from dashboard.store.models import Case
from dashboard.store.reference import Reference
from feedkit import ingest_pusher
from feeds.contract import CaseEventMessage

TZ = ZoneInfo("Asia/Shanghai")
G_B = f"{COMMUNITY}002"


def L(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture
def ab_grid_feed(settings, sessions, redis_client):  # type: ignore[no-untyped-def]
    """A city with an A and a B grid; ``push`` publishes messages and ingests them all."""
    build_community(sessions, [(f"{COMMUNITY}001", square(0, 0), "A"), (G_B, square(0, 1), "B")])
    ref = Reference.load(sessions, classification.load("gbt47678-2026"), settings)
    return ref, ingest_pusher(settings, sessions, redis_client, ref, consumer="ext")


def case(case_id: str, *later: tuple) -> list[CaseEventMessage]:
    """The issue's case: reported, filed, dispatched on Mon 2026-05-11, then ``later``."""
    steps = [(E.REPORTED, "2026-05-11 08:30", {"source": "supervisor", "kind": "event", "class_code": "07001",
                                                "grid_code": G_B, "urgency": "normal", "number": case_id}),
             (E.FILED, "2026-05-11 08:40", {}),
             (E.DISPATCHED, "2026-05-11 09:00", {"unit_code": "U-HW"}), *later]
    return [CaseEventMessage(event_id=f"{case_id}-{n}", case_id=case_id, type=t, occurred_at=L(at), **fields)
            for n, (t, at, fields) in enumerate(steps)]


def test_an_extension_request_leaves_the_table_deadline(settings, sessions, ab_grid_feed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ref, push = ab_grid_feed
    push(case("REQ", (E.EXTENSION_REQUESTED, "2026-05-12 10:00", {"deadline_at": L("2026-05-29 18:00")}))
         # A refused request asking for an *earlier* date does not shorten the deadline either.
         + case("REF", (E.EXTENSION_REQUESTED, "2026-05-12 10:00", {"deadline_at": L("2026-05-12 11:00")}),
                (E.EXTENSION_REFUSED, "2026-05-12 10:30", {}))
         # An approved 延期 does move it, to the date granted.
         + case("OK", (E.EXTENSION_REQUESTED, "2026-05-12 10:00", {"deadline_at": L("2026-05-29 18:00")}),
                (E.EXTENSION_APPROVED, "2026-05-12 10:30", {"deadline_at": L("2026-05-29 18:00")})))

    with sessions() as s:
        stored = {c.case_id: c for c in s.scalars(select(Case))}
    table_deadline = L("2026-05-13 09:00")  # Mon 09:00 + 2 工作日 (450 working minutes each)
    for cid in ("REQ", "REF"):
        c = stored[cid]
        assert (c.clock_stage, c.deadline_at, c.deadline_source) == ("handle", table_deadline, "table"), cid
        assert (c.limit_minutes, c.limit_unit, c.extension_count) == (900, "work_days", 0), cid
    ok = stored["OK"]
    assert (ok.deadline_at, ok.deadline_source, ok.extension_count) == (L("2026-05-29 18:00"), "table", 1)

    T = L("2026-05-13 10:00")
    with sessions() as s:
        rows = {r.case_id: r for r in overdue_stored(s, ref.timing, T)}
        view = LiveView.load(s, ref.timing, T)
    for cid in ("REQ", "REF"):
        assert rows[cid].overdue and rows[cid].deadline_at == table_deadline
        assert rows[cid].overdue_work_minutes == pytest.approx(60)
    assert "OK" not in rows
    assert {r.case_id for r in view.overdue_queue().overdue} == {"REQ", "REF"}
    assert view.kpis().overdue == 2

    out = tmp_path / "overdue.csv"
    result = CliRunner().invoke(cli.app, ["overdue", "--at", "2026-05-13T10:00", "--csv", str(out)],
                                env={"GRIDHALL_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.DictReader(fh))
    listed = {r["case_id"]: r for r in lines}
    assert set(listed) == {"REQ", "REF"}
    for r in listed.values():
        assert (r["状态"], r["期限"], r["来源"], r["超期(工作时)"]) == ("超期", "2026-05-13 09:00:00", "table", "1:00")
