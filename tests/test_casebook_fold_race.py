"""A stored case that another ingest changes between this batch's fold and its lock (issue 17).

On PostgreSQL the casebook folds a batch's stored cases on their rows as read, before locking
them (so two ingests wait for each other's write, not their fold). A case whose row changed in
between must be folded again on the locked row: otherwise the other ingest's event would be
lost from the row (a lost update) or this batch's event judged against a stale stage.
SQLite holds the database write lock from the batch's first insert: nothing can change between.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from conftest import backend_name
from dashboard.rules.lifecycle import EventType, LifecycleEvent, fold
from dashboard.store import casebook
from dashboard.store.casebook import Incoming, apply_events
from dashboard.store.db import transaction
from feedkit import T0, db_cases, diff_cases, expected_row

pytestmark = pytest.mark.skipif(backend_name() != "postgresql", reason="the fold before the lock: PostgreSQL")

GRID = "990201001001001"


def test_a_case_changed_between_fold_and_lock_is_folded_again(sessions, feed_city, monkeypatch):  # type: ignore[no-untyped-def]
    case = "moved-1"
    reported = LifecycleEvent(f"{case}-1", case, EventType.REPORTED, T0, {
        "source": "supervisor", "kind": "event", "class_code": "07001", "grid_code": GRID,
        "urgency": "normal", "description": "路面破损"})
    filed = LifecycleEvent(f"{case}-2", case, EventType.FILED, T0 + timedelta(minutes=20), {})
    dispatched = LifecycleEvent(f"{case}-3", case, EventType.DISPATCHED, T0 + timedelta(minutes=40),
                                {"unit_code": "U-HW"})
    with transaction(sessions) as s:
        apply_events(s, [Incoming(reported)], feed_city)

    original = casebook._lock_versions
    calls: list[int] = []

    def other_ingest_first(session: Any, case_ids: list[str]) -> dict[str, str]:
        # This batch has folded 派遣 on the stored 上报 row (illegal there); now another ingest
        # commits 立案 on the same case before this one locks it.
        calls.append(1)
        if len(calls) == 1:  # (the other ingest's own lock is the second call)
            with transaction(sessions) as other:
                assert not apply_events(other, [Incoming(filed)], feed_city).rejected
        return original(session, case_ids)

    monkeypatch.setattr(casebook, "_lock_versions", other_ingest_first)
    with transaction(sessions) as s:
        result = apply_events(s, [Incoming(dispatched)], feed_city)
    assert calls, "the stored case was not locked through _lock_versions"
    assert result.applied == 1 and not result.rejected

    state, skipped = fold(case, [reported, filed, dispatched])
    assert not skipped and state.stage is not None and state.stage.value == "dispatched"
    assert diff_cases({case: expected_row(state)}, db_cases(sessions)) == []
    with sessions() as s:  # 派遣 was judged on the row with 立案: no problem kept on it
        problems = s.execute(text("SELECT event_id, problem FROM case_events WHERE problem IS NOT NULL")).all()
    assert problems == []
