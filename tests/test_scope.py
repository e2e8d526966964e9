"""Region scopes (属地管理, dashboard/store/scope.py) on a small two-district city."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from citykit import build_plan, grid, square
from dashboard.store import scope as scopes
from dashboard.store.db import transaction
from dashboard.store.models import Case, Grid, Region
from dashboard.store.scope import CITY, ScopeCache, ScopeError, allows, get_scope
from dashboard.store.users import create_user, get_user

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)

# district → street → community → number of grids
CITY_PLAN = {
    ("990101", "青山区"): {
        ("990101001", "江东街道"): {("990101001001", "江东社区"): 2, ("990101001002", "江西社区"): 2},
        ("990101002", "江北街道"): {("990101002001", "北岸社区"): 2},
    },
    ("990102", "白石区"): {
        ("990102001", "白石街道"): {("990102001001", "白石社区"): 3},
    },
}


pytestmark = pytest.mark.usefixtures("fresh_scope_cache")


@pytest.fixture
def scope_city(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Build CITY_PLAN with one case per grid and one case without a grid; code → grid id."""
    ids: dict[str, int] = {}
    with transaction(sessions) as s:
        for g, _ in build_plan(s, CITY_PLAN):
            ids[g.code] = g.id
            s.add(Case(case_id=f"C-{g.code}", grid_id=g.id, stage="filed", reported_at=T0))
        s.add(Case(case_id="C-nowhere", grid_id=None, stage="reported", reported_at=T0))
    return ids


def _cases(sessions: sessionmaker[Session], scope: scopes.Scope) -> set[str]:
    with sessions() as s:
        return set(s.scalars(select(Case.case_id).where(scopes.case_condition(scope))))


def _grid_codes(city: dict[str, int], prefix: str) -> set[str]:
    return {code for code in city if code.startswith(prefix)}


def test_city_scope_sees_everything(sessions: sessionmaker[Session], scope_city: dict[str, int]) -> None:
    with sessions() as s:
        scope = get_scope(s, None)
    assert scope is CITY and scope.is_city and scope.name == "全市"
    assert scopes.grid_ids(scope) is None and scopes.region_ids(scope) is None
    assert _cases(sessions, scope) == {f"C-{c}" for c in scope_city} | {"C-nowhere"}
    assert all(allows(scope, code) for code in [*scope_city, "990101", "990102001"])
    assert scope.allows_grid_id(None) and scope.allows_region_id(12345)


def test_district_scope(sessions: sessionmaker[Session], scope_city: dict[str, int]) -> None:
    with sessions() as s:
        scope = get_scope(s, "990101")
        region_codes = set(s.scalars(select(Region.code).where(scopes.region_condition(scope))))
        grid_codes = set(s.scalars(select(Grid.code).where(scopes.grid_condition(scope))))
        street_id = s.scalar(select(Region.id).where(Region.code == "990101002"))
    mine = _grid_codes(scope_city, "990101")
    assert (scope.level, scope.name, scope.code) == ("district", "青山区", "990101")
    assert scope.grid_ids == {scope_city[c] for c in mine} and len(mine) == 6
    assert scope.grid_codes == mine == grid_codes
    assert region_codes == scope.region_codes == {
        "990101", "990101001", "990101002", "990101001001", "990101001002", "990101002001"}
    assert len(scope.region_ids) == 6 and scope.allows_region_id(street_id)
    assert scopes.grid_ids(scope) == scope.grid_ids
    # Cases of the other district and cases without a grid stay out.
    assert _cases(sessions, scope) == {f"C-{c}" for c in mine}


def test_street_scope(sessions: sessionmaker[Session], scope_city: dict[str, int]) -> None:
    with sessions() as s:
        scope = get_scope(s, "990101001")
    mine = _grid_codes(scope_city, "990101001")
    assert scope.level == "street" and len(mine) == 4
    assert scope.grid_codes == mine
    assert scope.region_codes == {"990101001", "990101001001", "990101001002"}
    assert _cases(sessions, scope) == {f"C-{c}" for c in mine}


def test_allows_refuses_everything_outside(sessions: sessionmaker[Session], scope_city: dict[str, int]) -> None:
    with sessions() as s:
        district = get_scope(s, "990101")
        street = get_scope(s, "990101001")
    assert allows(district, "990101002001001") and allows(district, "990101002")
    assert allows(street, "990101001002002") and allows(street, "990101001001")
    refused = {
        district: ["990102", "990102001", "990102001001", "990102001001003"],
        # a street sees neither its district, nor its sibling street, nor that street's grids
        street: ["990101", "990101002", "990101002001", "990101002001001"],
    }
    for scope, codes in refused.items():
        for code in codes:
            assert not allows(scope, code), (scope.code, code)
        # unknown and malformed codes are refused, like other districts' codes
        for code in ["990101001001999", "990101999", "", "99010", None]:
            assert not allows(scope, code), (scope.code, code)  # type: ignore[arg-type]
        assert not scope.allows_grid_id(None) and not scope.allows_region_id(None)
        assert not scope.allows_grid_id(scope_city["990102001001001"])
    assert scopes.grid_code_in_scope(district, "990101001001001")
    assert not scopes.grid_code_in_scope(district, "990101")


def test_large_scopes_filter_through_a_subquery(monkeypatch: pytest.MonkeyPatch,
                                                sessions: sessionmaker[Session], scope_city: dict[str, int]) -> None:
    with sessions() as s:
        district = get_scope(s, "990101")
        street = get_scope(s, "990101001")
    expected = {scope: _cases(sessions, scope) for scope in (district, street)}
    monkeypatch.setattr(scopes, "IN_LIST_MAX", 1)
    for scope, cases in expected.items():
        condition = scopes.case_condition(scope)
        assert "SELECT" in str(condition)  # the grids-by-community subquery, not an id list
        assert _cases(sessions, scope) == cases


def test_scopes_are_cached_per_region(sessions: sessionmaker[Session], scope_city: dict[str, int]) -> None:
    now = [0.0]
    cache = ScopeCache(ttl=60, clock=lambda: now[0])
    with sessions() as s:
        first = get_scope(s, "990102", cache=cache)
        by_id = get_scope(s, first.region_id, cache=cache)
        assert by_id is first
        now[0] = 59.0
        assert get_scope(s, "990102", cache=cache) is first
    with transaction(sessions) as s:  # a new grid in the district …
        c = s.scalars(select(Region).where(Region.code == "990102001001")).one()
        s.add(grid(c.id, "990102001001004", square(9, 9)))
    with sessions() as s:
        assert get_scope(s, "990102", cache=cache) is first  # … is seen after the ttl
        now[0] = 60.0
        later = get_scope(s, "990102", cache=cache)
        assert later is not first and "990102001001004" in later.grid_codes
        cache.clear()
        assert get_scope(s, "990102", cache=cache) is not later


def test_unknown_regions_raise(sessions: sessionmaker[Session], scope_city: dict[str, int]) -> None:
    with sessions() as s:
        with pytest.raises(ScopeError, match="990199"):
            get_scope(s, "990199")
        with pytest.raises(ScopeError):
            get_scope(s, 10**9)


def test_user_scope(sessions: sessionmaker[Session], scope_city: dict[str, int]) -> None:
    with transaction(sessions) as s:
        create_user(s, "bai", "leader", scope="990102", now=T0)
        create_user(s, "mayor", "leader", now=T0)
    with sessions() as s:
        bai = scopes.user_scope(s, get_user(s, "bai"))  # type: ignore[arg-type]
        mayor = scopes.user_scope(s, get_user(s, "mayor"))  # type: ignore[arg-type]
    assert bai.name == "白石区" and bai.grid_codes == _grid_codes(scope_city, "990102")
    assert mayor is CITY
