"""The read API's summary, grids and overdue page from the live view equal the SQL definition
(dashboard/figures/livereads.py against dashboard/figures/readapi.py).

On the demo city with four days of history (every district, a street, the city) and on
apicitykit's two-district city (a gridless case, a long description cut by the view): for each
scope, ``livereads.summary`` / ``livereads.overdue`` at the view's instant equal ``readapi``'s
SQL answer at that instant, every field, several pages deep. And the wiring: the read API
answers from the worker's live view once it is loaded (no SQL aggregate), from SQL before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from apicitykit import NOW as API_NOW
from dashboard.figures import livereads, readapi
from dashboard.figures.liveview import DESCRIPTION_CHARS, LiveView
from dashboard.figures.readcache import CachedReads, ReadCache
from dashboard.settings import Settings
from dashboard.store import reference
from dashboard.store.models import Case, Region
from dashboard.store.scope import get_scope
from democitykit import build_demo

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")


def _same(session: Session, view: LiveView, scope: Any, timing: Any, at: datetime) -> None:
    """Every scoped figure of the view equals readapi's SQL answer at the view's instant."""
    got, want = livereads.summary(view, scope), readapi.summary(session, scope, timing, at)
    assert got == want, scope.name
    for idle in (False, True):
        for limit, offset in ((1000, 0), (7, 3)):
            got_grids = livereads.grids(view, scope, include_idle=idle, limit=limit, offset=offset)
            assert got_grids == readapi.grids(session, scope, timing, at, include_idle=idle, limit=limit,
                                              offset=offset), (scope.name, idle, limit, offset)
    for limit, offset in ((50, 0), (7, 3), (1000, 0), (5, 10_000)):
        got_page = livereads.overdue(view, session, scope, limit=limit, offset=offset)
        want_page = readapi.overdue(session, scope, timing, at, limit=limit, offset=offset)
        assert got_page.at == want_page.at
        assert (got_page.overdue_total, got_page.due_soon_total) == (want_page.overdue_total, want_page.due_soon_total)
        assert [r.case_id for r in got_page.cases] == [r.case_id for r in want_page.cases], (scope.name, limit, offset)
        for g, w in zip(got_page.cases, want_page.cases, strict=True):
            # Minutes as floats from two evaluations of one formula (vectorised and per slot).
            assert g.overdue_work_minutes == pytest.approx(w.overdue_work_minutes, abs=1e-6)
            assert g.overdue_calendar_minutes == pytest.approx(w.overdue_calendar_minutes, abs=1e-6)
            assert g.remaining_minutes == pytest.approx(w.remaining_minutes, abs=1e-6)
            strip = {"overdue_work_minutes": 0.0, "overdue_calendar_minutes": 0.0, "remaining_minutes": 0.0}
            assert g.__class__(**{**g.__dict__, **strip}) == w.__class__(**{**w.__dict__, **strip}), g.case_id


def test_the_demo_city_from_memory_equals_sql_for_every_scope(
        settings: Settings, sessions: sessionmaker[Session], demo_city_dir: Path) -> None:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    build_demo(settings, sessions, demo_city_dir, days=4, now=at)
    with sessions() as s:
        timing = reference.timing_for(settings, s)
        view = LiveView.load(s, timing, at)
        districts = s.scalars(select(Region.code).where(Region.level == "district")).all()
        street = s.scalars(select(Region.code).where(Region.level == "street").order_by(Region.code)).first()
        codes: list[str | None] = [None, *districts, street]
        assert len(districts) >= 2
        overdue_seen = 0
        for code in codes:
            scope = get_scope(s, code)
            _same(s, view, scope, timing, view.as_of)
            overdue_seen += livereads.summary(view, scope).overdue
        assert overdue_seen > 0  # the comparison covered overdue cases
        # A region's figures are its own: the districts' open cases add up to the city's.
        total = sum(livereads.summary(view, get_scope(s, d)).open for d in districts)
        gridless = len(s.scalars(select(Case.id).where(Case.grid_id.is_(None),
                                                       Case.stage.in_(readapi.OPEN_VALUES))).all())
        assert total + gridless == livereads.summary(view, get_scope(s, None)).open > 0


def test_the_two_district_city_with_a_gridless_case_and_a_long_description(
        api_city: dict[str, Any], settings: Settings, sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        timing = reference.timing_for(settings, s)
        view = LiveView.load(s, timing, API_NOW)
        gridless = s.scalars(select(Case.case_id).where(Case.grid_id.is_(None), Case.stage != "closed")).all()
        assert gridless  # only the city scope counts it
        for code in (None, "990101", "990102"):
            _same(s, view, get_scope(s, code), timing, view.as_of)
        city = livereads.summary(view, get_scope(s, None))
        parts = [livereads.summary(view, get_scope(s, c)) for c in ("990101", "990102")]
        assert city.open == sum(p.open for p in parts) + len(gridless)


def test_a_description_longer_than_the_wall_shows_comes_whole(
        api_city: dict[str, Any], settings: Settings, sessions: sessionmaker[Session]) -> None:
    text = "雨水井盖破损，" * 20  # 140 characters: the view keeps 60
    with sessions() as s:
        timing = reference.timing_for(settings, s)
        first = readapi.overdue(s, get_scope(s, None), timing, API_NOW, limit=1)
        case_id = first.cases[0].case_id
        row = s.scalars(select(Case).where(Case.case_id == case_id)).one()
        row.description = text
        s.commit()
        view = LiveView.load(s, timing, API_NOW)
        page = livereads.overdue(view, s, get_scope(s, None), limit=1, offset=0)
        assert view.overdue_queue(limit=1).overdue[0].description == text[:DESCRIPTION_CHARS]
        assert page.cases[0].case_id == case_id and page.cases[0].description == text


def test_cached_reads_answer_from_the_live_view_once_it_is_there(
        api_city: dict[str, Any], settings: Settings, sessions: sessionmaker[Session]) -> None:
    """No SQL aggregate per answer while a live view is loaded and following; SQL when it is
    absent or stale (the same answer either way)."""
    holder: list[LiveView | None] = [None]
    reads = CachedReads(ReadCache(1.0), lambda: holder[0])
    at = iter(API_NOW + timedelta(seconds=k) for k in range(3))  # a new second: computed again
    with sessions() as s:
        timing = reference.timing_for(settings, s)
        scope = get_scope(s, "990101")
        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        bind = s.get_bind()
        event.listen(bind, "before_cursor_execute", seen)
        try:
            from_sql = reads.summary(s, scope, timing, next(at))
            assert any("count(" in q.lower() for q in statements)
            holder[0] = LiveView.load(s, timing, API_NOW)
            statements.clear()
            now = next(at)
            from_memory = reads.summary(s, scope, timing, now)
            page = reads.overdue(s, scope, timing, now, limit=50)
            assert not any("count(" in q.lower() or "group by" in q.lower() for q in statements), statements
            assert from_memory == from_sql
            assert page.cases and [r.case_id for r in page.cases] == \
                [r.case_id for r in readapi.overdue(s, scope, timing, API_NOW, limit=50).cases]
            holder[0].stale_reason = "数据库不可用"  # a stale view is not trusted: SQL again
            statements.clear()
            reads.summary(s, scope, timing, next(at))
            assert any("count(" in q.lower() for q in statements)
            # The cache off (the benchmarks' per-request-SQL baseline): SQL, view or not.
            holder[0].stale_reason = None
            statements.clear()
            CachedReads(ReadCache(0), lambda: holder[0]).summary(s, scope, timing, API_NOW)
            assert any("count(" in q.lower() for q in statements)
        finally:
            event.remove(bind, "before_cursor_execute", seen)


def test_the_app_answers_the_api_from_its_wall_live_view(settings: Settings, engine: Any,
                                                         api_city: dict[str, Any]) -> None:
    """In the app the read API shares the wall's live view: once it is loaded, a summary is at
    the view's instant (its last tick), not the request's, and no aggregate runs for it."""
    import time

    import app as appmod

    application = appmod.create_app(settings)
    runtime = application.server.extensions[appmod.EXTENSION_KEY]
    try:
        wall = runtime.services.wall
        deadline = time.monotonic() + 30
        while wall.loaded_view() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        view = wall.loaded_view()
        assert view is not None
        client = application.server.test_client()
        statements: list[str] = []
        event.listen(runtime.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        with view.consistent():  # hold the view still: its instant cannot move meanwhile
            r = client.get("/api/v1/summary", headers={"Authorization": f"Bearer {api_city['tokens']['admin']}"})
            at = view.as_of
        assert r.status_code == 200
        assert datetime.fromisoformat(r.get_json()["at"]) == at
        assert statements and not any("group by" in q.lower() for q in statements), statements
    finally:
        runtime.close()
