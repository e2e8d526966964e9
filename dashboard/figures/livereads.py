"""The read API's summary, grids and overdue page from the worker's live view, not from SQL.

Every web worker keeps the wall's :class:`~dashboard.figures.liveview.LiveView` of all open
cases and today's facts in memory. A scope's 今日 KPIs, its grids' figures and its overdue
list are that view restricted to the scope's grids (a mask over grid indexes), so the read API
and /view answer them in about a millisecond instead of a handful of SQL aggregates
(``readapi.summary``, ``readapi.grids`` and ``readapi.overdue``, which stay as the path while
the view is loading or stale, and as the definition these must equal:
``tests/test_livereads.py``). The read API's units' board still comes from SQL
(``readapi.units``); the view can answer it too (``LiveView.scoped_unit_board``, equal to
it: ``tests/test_regionfigures.py``), not wired here yet.

The view is at its own instant (its last tick, at most a second old, or the last change
notice) — ``at`` in the answers says which. Queue descriptions: the view keeps the first
``DESCRIPTION_CHARS`` characters (the wall's width); the API promises the whole text, so the
few rows of a page whose description may be cut are completed with one primary-key read.
"""

from __future__ import annotations

from dataclasses import fields, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.figures.liveview import DESCRIPTION_CHARS, LiveView
from dashboard.figures.readapi import MAX_LIMIT, GridPage, GridRow, OverduePage, Summary
from dashboard.store.models import Case
from dashboard.store.scope import Scope


def _grids(scope: Scope) -> frozenset[int] | None:
    """The view's scope argument: None for the city (every case, gridless ones included)."""
    return None if scope.is_city else scope.grid_ids


def summary(live: LiveView, scope: Scope) -> Summary:
    """``readapi.summary`` of ``scope`` at the view's instant."""
    kpis, stages = live.scoped_kpis(_grids(scope))
    return Summary(
        **{f.name: getattr(kpis, f.name) for f in fields(kpis)},
        scope_code=scope.code, scope_name=scope.name, scope_level=scope.level,
        at=live.as_of, stages=tuple(stages),
    )


def grids(live: LiveView, scope: Scope, *, include_idle: bool = False, limit: int = MAX_LIMIT,
          offset: int = 0) -> GridPage:
    """``readapi.grids`` of ``scope`` (no ``region`` filter) at the view's instant."""
    rows = live.scoped_grids(_grids(scope), include_idle=include_idle)
    limit, offset = max(0, min(limit, MAX_LIMIT)), max(0, offset)
    return GridPage(live.as_of, None, len(rows), limit, offset,
                    tuple(GridRow(*r) for r in rows[offset:offset + limit]))


def overdue(live: LiveView, session: Session, scope: Scope, *, limit: int, offset: int) -> OverduePage:
    """``readapi.overdue`` of ``scope`` at the view's instant (same order, paging and rows)."""
    limit, offset = max(0, min(limit, MAX_LIMIT)), max(0, offset)
    page = live.scoped_queue(_grids(scope), limit, offset)
    cut = [r.case_id for r in page.rows if r.description and len(r.description) >= DESCRIPTION_CHARS]
    full: dict[str, str | None] = {}
    if cut:
        for case_id, description in session.execute(
                select(Case.case_id, Case.description).where(Case.case_id.in_(cut))):
            full[case_id] = description
    rows = tuple(replace(r, description=full[r.case_id]) if r.case_id in full else r for r in page.rows)
    return OverduePage(page.at, page.overdue_total, page.due_soon_total, limit, offset, rows)


__all__ = ["summary", "grids", "overdue"]
