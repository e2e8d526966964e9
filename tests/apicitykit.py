"""Shared kit: the read API's two-district city (test_api, test_access_matrix).

青山区 (990101) and 白石区 (990102), two grids each, a unit each; per district open, overdue,
due-soon, suspended and closed cases, one case without a grid; users of every role with API
tokens. A pytest plugin (registered in tests/conftest.py): the ``api_city`` and
``fresh_scope_cache`` fixtures need no import; the constants do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from citykit import add_case, build_plan, running_clock
from dashboard.store import scope as scopes
from dashboard.store.db import transaction
from dashboard.store.models import CaseEvent, Unit
from dashboard.store.users import create_user, issue_token

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Beijing, a Wednesday
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)> & 井盖'

# district → street → community → number of grids
CITY_PLAN = {
    ("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 2}},
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


@pytest.fixture
def fresh_scope_cache() -> None:
    """Forget the region scopes cached by an earlier test (its regions are gone)."""
    scopes.clear_cache()


def _clock(stage: str, minutes_left: float, limit: float = 600.0) -> dict[str, Any]:
    return running_clock(NOW, stage, minutes_left, limit)


@pytest.fixture
def api_city(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Two districts, two grids each; per district: open, overdue, due-soon, closed cases.

    Returns ``{"grids": {code: id}, "tokens": {username: API token}}`` (users: ROLES_SCOPES).
    """
    out: dict[str, Any] = {"grids": {}, "tokens": {}}
    with transaction(sessions) as s:
        districts = {}
        for g, d in build_plan(s, CITY_PLAN):
            out["grids"][g.code] = g.id
            districts[d.code] = d
        for dcode, d in districts.items():
            ucode, uname = UNITS[dcode]
            s.add(Unit(code=ucode, name=uname, kind="disposal", region_id=d.id))
        s.flush()
        units = {u.code: u.id for u in s.scalars(select(Unit))}
        gids = out["grids"]
        a1, a2 = gids["990101001001001"], gids["990101001001002"]
        b1 = gids["990102001001001"]
        qs, bs = units["U-QS"], units["U-BS"]

        def case(cid: str, grid_id: int | None, stage: str, **kw: Any) -> None:
            add_case(s, NOW, cid, grid_id, stage, **kw)

        # district A (青山区)
        case("C-A1", a1, "dispatched", unit_id=qs, dispatched_at=NOW - timedelta(minutes=20),
             description=XSS, address="江东路1号", **_clock("handle", -45))  # overdue
        case("C-A2", a1, "filed", filed_at=NOW - timedelta(minutes=25), urgency="urgent",
             **_clock("dispatch", 30))  # due soon: 30 < 0.2 × 600
        case("C-A3", a2, "handled", unit_id=qs, reported_at=NOW - timedelta(hours=5),
             handled_at=NOW - timedelta(hours=1), on_time_handle=True, **_clock("check", 500))
        case("C-A4", a2, "closed", unit_id=qs, reported_at=NOW - timedelta(hours=6),
             closed_at=NOW - timedelta(hours=1), on_time_close=True, handled_at=NOW - timedelta(hours=2),
             on_time_handle=False)
        case("C-A5", a1, "suspended", unit_id=qs, paused_at=NOW - timedelta(hours=1),
             reported_at=NOW - timedelta(days=3), **_clock("handle", -300))  # 挂账: never overdue
        # district B (白石区)
        case("C-B1", b1, "dispatched", unit_id=bs, **_clock("handle", -10))
        case("C-B2", b1, "dispatched", unit_id=bs, **_clock("handle", -90))
        case("C-B3", b1, "reported", reported_at=NOW - timedelta(days=2), **_clock("verify", 100))
        # no grid: only the city sees it
        case("C-X", None, "reported", **_clock("verify", -5))
        for i, (etype, minutes) in enumerate([("reported", -30), ("filed", -25), ("dispatched", -20)]):
            s.add(CaseEvent(event_id=f"E-A1-{i}", case_id="C-A1", type=etype,
                            occurred_at=NOW + timedelta(minutes=minutes), received_at=NOW + timedelta(minutes=minutes),
                            source="supervisor", actor=f"P-{i}", payload={}))
        for username, (role, scope) in ROLES_SCOPES.items():
            user = create_user(s, username, role, scope=scope)
            out["tokens"][username] = issue_token(s, user)[1]
    return out
