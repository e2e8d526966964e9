"""A user's region scope (属地管理): the whole city, a district or a street.

Every query, callback and API answer is filtered by the signed-in user's scope on the server.
To make that cheap, a scope is computed once — the ids and codes of its regions and grids as
frozensets — and kept in a :class:`ScopeCache` (per database and region, for ``ttl``
seconds). Checks are then set lookups, and SQL gets one condition:

    select(Case).where(case_condition(scope))

- The **city** scope (``region_id`` None) allows everything; its conditions are ``TRUE``.
- A **district** or **street** scope holds the region, every region below it and every grid of
  their communities. Cases without a grid belong to no district: only the city sees them.
- A code not in the scope is refused whether it exists or not, so a refusal tells nothing
  about other districts (answer 404 for both).

The region tree changes only when a city is imported; call :func:`clear_cache` (or
``cache.clear()``) after an import in the same process; other processes see the change after
``ttl`` seconds at most.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, SQLColumnExpression, select, true
from sqlalchemy.orm import Session

from dashboard.rules.codes import parse_grid_code
from dashboard.store.models import Case, Grid, Region, User

CITY_NAME = "全市"
# Above this many grids a case condition selects the grids by community in a subquery rather
# than binding every grid id (SQLite allows 32,766 bound values; long IN lists plan slowly, and
# converting ~2,000 bound values per statement took a third of a worker's CPU when 100 API
# clients polled district summaries: bench/viewers.py, profiled with py-spy).
IN_LIST_MAX = 200


class ScopeError(ValueError):
    """A scope that cannot be: an unknown region code or id."""


@dataclass(frozen=True)
class Scope:
    """What one user may see. Immutable, shared between requests."""

    region_id: int | None  # None: the whole city
    code: str | None
    name: str
    level: str  # "city", "district", "street" (or "community" when asked for one)
    region_ids: frozenset[int] = field(default=frozenset(), repr=False)  # the region and below
    region_codes: frozenset[str] = field(default=frozenset(), repr=False)
    community_ids: frozenset[int] = field(default=frozenset(), repr=False)
    grid_ids: frozenset[int] = field(default=frozenset(), repr=False)
    grid_codes: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def is_city(self) -> bool:
        return self.region_id is None

    def allows_grid_id(self, grid_id: int | None) -> bool:
        return self.is_city or (grid_id is not None and grid_id in self.grid_ids)

    def allows_region_id(self, region_id: int | None) -> bool:
        return self.is_city or (region_id is not None and region_id in self.region_ids)

    def allows(self, code: str) -> bool:
        """A grid code (14/15 digits) or region code (6/9/12 digits) inside this scope?"""
        if self.is_city:
            return True
        if not isinstance(code, str):
            return False
        return code in self.grid_codes or code in self.region_codes


CITY = Scope(region_id=None, code=None, name=CITY_NAME, level="city")


def allows(scope: Scope, code: str) -> bool:
    """Whether ``code`` (a grid or a region code) lies inside ``scope``."""
    return scope.allows(code)


def compute_scope(session: Session, region_id: int | None) -> Scope:
    """Build a scope from the database (uncached; :func:`get_scope` caches it)."""
    if region_id is None:
        return CITY
    region = session.get(Region, region_id)
    if region is None:
        raise ScopeError(f"no region with id {region_id}")
    ids = {region.id}
    codes = {region.code}
    communities = {region.id} if region.level == "community" else set()
    frontier = [region.id]
    while frontier:  # the tree is three levels deep: at most two rounds
        rows = session.execute(
            select(Region.id, Region.code, Region.level).where(Region.parent_id.in_(frontier))).all()
        frontier = [r.id for r in rows if r.id not in ids]
        for r in rows:
            ids.add(r.id)
            codes.add(r.code)
            if r.level == "community":
                communities.add(r.id)
    grid_rows = session.execute(
        select(Grid.id, Grid.code).where(Grid.community_id.in_(sorted(communities)))).all() if communities else []
    return Scope(
        region_id=region.id, code=region.code, name=region.name, level=region.level,
        region_ids=frozenset(ids), region_codes=frozenset(codes),
        community_ids=frozenset(communities),
        grid_ids=frozenset(r.id for r in grid_rows), grid_codes=frozenset(r.code for r in grid_rows),
    )


class ScopeCache:
    """Scopes by (database, region id), each kept ``ttl`` seconds; thread-safe."""

    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._items: dict[tuple[str, int], tuple[float, Scope]] = {}
        self._codes: dict[tuple[str, str], tuple[float, int | None]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _db_key(session: Session) -> str:
        # The URL names the database (and, for PostgreSQL, a search_path in its options).
        return session.get_bind().engine.url.render_as_string(hide_password=True)

    def region_id(self, session: Session, code: str) -> int | None:
        """The id of the region with ``code`` (None: no such region), kept ``ttl`` seconds like
        the scopes: a wall names its region by code at every refresh."""
        key = (self._db_key(session), code)
        now = self.clock()
        with self._lock:
            hit = self._codes.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        region_id = session.scalar(select(Region.id).where(Region.code == code))
        with self._lock:
            self._codes[key] = (now, region_id)
        return region_id

    def get(self, session: Session, region_id: int | None) -> Scope:
        if region_id is None:
            return CITY
        key = (self._db_key(session), region_id)
        now = self.clock()
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        scope = compute_scope(session, region_id)
        with self._lock:
            self._items[key] = (now, scope)
        return scope

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._codes.clear()


scopes = ScopeCache()


def clear_cache() -> None:
    """Forget every cached scope (after a city import in this process, and in tests)."""
    scopes.clear()


def get_scope(session: Session, region: str | int | None, *, cache: ScopeCache | None = None) -> Scope:
    """The scope of a region given by code (str) or id (int); None is the whole city."""
    cache = cache or scopes
    if isinstance(region, str):
        region_id = cache.region_id(session, region.strip())
        if region_id is None:
            raise ScopeError(f"no region with code {region!r}")
        return cache.get(session, region_id)
    return cache.get(session, region)


def user_scope(session: Session, user: User, *, cache: ScopeCache | None = None) -> Scope:
    """The scope a user's queries are filtered by."""
    return get_scope(session, user.scope_region_id, cache=cache)


def grid_ids(scope: Scope) -> frozenset[int] | None:
    """Ids of the grids inside the scope; None for the city (every grid, no filter needed)."""
    return None if scope.is_city else scope.grid_ids


def region_ids(scope: Scope) -> frozenset[int] | None:
    """Ids of the regions inside the scope (itself and below); None for the city."""
    return None if scope.is_city else scope.region_ids


# -- SQL conditions ---------------------------------------------------------------------
def case_condition(scope: Scope) -> ColumnElement[bool]:
    """``WHERE`` condition keeping the ``Case`` rows inside the scope."""
    return grid_id_condition(scope, Case.grid_id)


def grid_id_condition(scope: Scope, column: SQLColumnExpression[int | None]) -> ColumnElement[bool]:
    """Condition on any column holding a grid id (``Case.grid_id``, ``Grid.id``, …)."""
    if scope.is_city:
        return true()
    if len(scope.grid_ids) <= IN_LIST_MAX:
        return column.in_(sorted(scope.grid_ids))
    # A few hundred communities instead of tens of thousands of grid ids; ix_grids_community_id.
    inner = select(Grid.id).where(Grid.community_id.in_(sorted(scope.community_ids)))
    return column.in_(inner)


def grid_condition(scope: Scope) -> ColumnElement[bool]:
    """Condition keeping the ``Grid`` rows inside the scope."""
    if scope.is_city:
        return true()
    return Grid.community_id.in_(sorted(scope.community_ids))


def region_condition(scope: Scope) -> ColumnElement[bool]:
    """Condition keeping the ``Region`` rows inside the scope (the region and below)."""
    if scope.is_city:
        return true()
    return Region.id.in_(sorted(scope.region_ids))


def grid_code_in_scope(scope: Scope, code: str) -> bool:
    """A well-formed grid code inside the scope (malformed codes are refused, not raised)."""
    try:
        parse_grid_code(code)
    except ValueError:
        return False
    return scope.allows(code)
