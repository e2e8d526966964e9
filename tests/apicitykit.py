"""Shared kit: the read API's two-district city (test_api, test_access_matrix, test_view).

青山区 (990101) and 白石区 (990102), two grids each, a unit each; per district open, overdue,
due-soon, suspended and closed cases, one case without a grid; users of every role with API
tokens. A pytest plugin (registered in tests/conftest.py): the ``api_city`` fixture needs no
import; the constants and the builders do.

The leaders' view (test_view) builds a variant of the same city with :func:`add_districts` and
:func:`add_cases`: ``VIEW_PLAN`` (a third grid in 江东社区, a second street 松岗街道) and
``second_street=True`` (one more overdue case there), plus cases and users of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from citykit import Plan, add_case, build_plan, running_clock
from dashboard.store.db import transaction
from dashboard.store.models import Case, CaseEvent, Grid, Region, Unit
from dashboard.store.users import create_user, issue_token

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Beijing, a Wednesday
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)> & 井盖'

# district → street → community → number of grids
CITY_PLAN: Plan = {
    ("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 2}},
    ("990102", "白石区"): {("990102001", "白石街道"): {("990102001001", "白石社区"): 2}},
}
VIEW_PLAN: Plan = {  # the leaders' view's variant
    ("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 3},
                        ("990101002", "松岗街道"): {("990101002001", "松岗社区"): 2}},
    ("990102", "白石区"): {("990102001", "白石街道"): {("990102001001", "白石社区"): 2}},
}
UNITS = {"990101": ("U-QS", "青山区环卫所"), "990102": ("U-BS", "白石区市政所")}
ROLES_SCOPES = {  # username → (role, scope code)
    "wall": ("display", None),
    "qs.leader": ("leader", "990101"),
    "qs.shift": ("shift_lead", "990101"),
    "admin": ("admin", None),
    "city.leader": ("leader", None),
}


def _clock(stage: str, minutes_left: float, limit: float = 600.0) -> dict[str, Any]:
    return running_clock(NOW, stage, minutes_left, limit)


def add_districts(s: Session, plan: Plan = CITY_PLAN) -> tuple[dict[str, int], dict[str, int]]:
    """The plan's regions and grids and a unit per district (UNITS), in the caller's transaction.

    Returns (grid code → id, unit code → id).
    """
    grids, districts = {}, {}
    for g, d in build_plan(s, plan):
        grids[g.code] = g.id
        districts[d.code] = d
    for dcode, d in districts.items():
        ucode, uname = UNITS[dcode]
        s.add(Unit(code=ucode, name=uname, kind="disposal", region_id=d.id))
    s.flush()
    return grids, {u.code: u.id for u in s.scalars(select(Unit))}


def add_cases(s: Session, grids: dict[str, int], units: dict[str, int], *, xss: str = XSS,
              second_street: bool = False, b1_description: str | None = None) -> None:
    """Per district: open, overdue, due-soon, suspended and closed cases; one case without a grid.

    C-A1's description is ``xss``. ``second_street`` adds C-A6, overdue, in 松岗街道 (VIEW_PLAN);
    ``b1_description`` describes C-B1.
    """
    a1, a2 = grids["990101001001001"], grids["990101001001002"]
    b1 = grids["990102001001001"]
    qs, bs = units["U-QS"], units["U-BS"]

    def case(cid: str, grid_id: int | None, stage: str, **kw: Any) -> None:
        add_case(s, NOW, cid, grid_id, stage, **kw)

    # district A (青山区)
    case("C-A1", a1, "dispatched", unit_id=qs, dispatched_at=NOW - timedelta(minutes=20),
         description=xss, address="江东路1号", **_clock("handle", -45))  # overdue
    case("C-A2", a1, "filed", filed_at=NOW - timedelta(minutes=25), urgency="urgent",
         **_clock("dispatch", 30))  # due soon: 30 < 0.2 × 600
    case("C-A3", a2, "handled", unit_id=qs, reported_at=NOW - timedelta(hours=5),
         handled_at=NOW - timedelta(hours=1), on_time_handle=True, **_clock("check", 500))
    case("C-A4", a2, "closed", unit_id=qs, reported_at=NOW - timedelta(hours=6),
         closed_at=NOW - timedelta(hours=1), on_time_close=True, handled_at=NOW - timedelta(hours=2),
         on_time_handle=False)
    case("C-A5", a1, "suspended", unit_id=qs, paused_at=NOW - timedelta(hours=1),
         reported_at=NOW - timedelta(days=3), **_clock("handle", -300))  # 挂账: never overdue
    if second_street:
        case("C-A6", grids["990101002001001"], "dispatched", unit_id=qs, description="松岗路井盖缺失",
             **_clock("handle", -200))  # overdue, in the second street
    # district B (白石区)
    b1_text = {"description": b1_description} if b1_description is not None else {}
    case("C-B1", b1, "dispatched", unit_id=bs, **b1_text, **_clock("handle", -10))
    case("C-B2", b1, "dispatched", unit_id=bs, **_clock("handle", -90))
    case("C-B3", b1, "reported", reported_at=NOW - timedelta(days=2), **_clock("verify", 100))
    # no grid: only the city sees it
    case("C-X", None, "reported", **_clock("verify", -5))


@pytest.fixture
def api_city(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Two districts, two grids each; per district: open, overdue, due-soon, closed cases.

    Returns ``{"grids": {code: id}, "tokens": {username: API token}}`` (users: ROLES_SCOPES).
    """
    out: dict[str, Any] = {"grids": {}, "tokens": {}}
    with transaction(sessions) as s:
        out["grids"], units = add_districts(s)
        add_cases(s, out["grids"], units)
        for i, (etype, minutes) in enumerate([("reported", -30), ("filed", -25), ("dispatched", -20)]):
            s.add(CaseEvent(event_id=f"E-A1-{i}", case_id="C-A1", type=etype,
                            occurred_at=NOW + timedelta(minutes=minutes), received_at=NOW + timedelta(minutes=minutes),
                            source="supervisor", actor=f"P-{i}", payload={}))
        for username, (role, scope) in ROLES_SCOPES.items():
            user = create_user(s, username, role, scope=scope)
            out["tokens"][username] = issue_token(s, user)[1]
    return out


# -- figures counted independently of the code under test ----------------------------------
def district_cases(district: str | None) -> Select[tuple[Case]]:
    """Every case (``None``), or the cases of ``district``: joined up to it by hand, not by scope code."""
    if not district:
        return select(Case)
    comm, st, dist = (select(Region).subquery() for _ in range(3))
    return (select(Case).join(Grid, Grid.id == Case.grid_id)
            .join(comm, comm.c.id == Grid.community_id).join(st, st.c.id == comm.c.parent_id)
            .join(dist, dist.c.id == st.c.parent_id).where(dist.c.code == district))


def count_of(s: Session, cases: Select[tuple[Case]], *where: Any) -> int:
    """How many of ``cases`` meet ``where``."""
    return int(s.scalar(select(func.count()).select_from(cases.where(*where).subquery())) or 0)
