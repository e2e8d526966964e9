"""Two ingests taking the same new case at once (issue 17): no batch is redone for it.

On PostgreSQL the second transaction's ``INSERT … ON CONFLICT DO NOTHING`` of the case row
waits for the first one's commit; it must then fold that case again on the stored row, in
its own transaction (it used to fail with ``CaseRace`` and the whole batch was redone). Both
orders are checked: the report committed first (the second applies its event on the stored
state), and a later event committed first (a case without a report, which the second must
re-fold from the whole history). SQLite takes a database lock per transaction: never raced.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from conftest import backend_name
from dashboard.rules.lifecycle import EventType, LifecycleEvent, fold
from dashboard.store.casebook import ApplyResult, Incoming, apply_events
from dashboard.store.db import transaction
from feedkit import T0, db_cases, db_events, diff_cases, expected_row

pytestmark = pytest.mark.skipif(backend_name() != "postgresql", reason="row locks and ON CONFLICT waits: PostgreSQL")

GRID = "990201001001001"


def _events(case_id: str) -> list[LifecycleEvent]:
    reported = LifecycleEvent(f"{case_id}-1", case_id, EventType.REPORTED, T0, {
        "source": "supervisor", "kind": "event", "class_code": "07001", "grid_code": GRID,
        "urgency": "normal", "description": "路面破损"})
    filed = LifecycleEvent(f"{case_id}-2", case_id, EventType.FILED, T0 + timedelta(minutes=20), {})
    return [reported, filed]


def _waiting_on_a_lock(sessions: Any) -> bool:
    with sessions() as s:
        return bool(s.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO cases%'")).scalar())


@pytest.mark.parametrize("first", ["reported", "filed"])
def test_a_new_case_taken_by_another_ingest_is_folded_again_not_redone(first, sessions, feed_city):  # type: ignore[no-untyped-def]
    reported, filed = _events("race-1")
    mine, theirs = (filed, reported) if first == "reported" else (reported, filed)
    held = sessions()
    apply_events(held, [Incoming(theirs)], feed_city)  # its transaction holds the new case row, uncommitted
    outcome: dict[str, Any] = {}

    def second() -> None:
        try:
            with transaction(sessions) as s:
                outcome["result"] = apply_events(s, [Incoming(mine)], feed_city)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            outcome["error"] = exc

    worker = threading.Thread(target=second)
    worker.start()
    deadline = time.monotonic() + 10
    while not _waiting_on_a_lock(sessions):  # the second insert of the case row waits for the first
        assert worker.is_alive() and time.monotonic() < deadline, f"the second ingest did not wait: {outcome}"
        time.sleep(0.05)
    held.commit()
    held.close()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert "error" not in outcome, f"the batch failed (it would be redone): {outcome['error']!r}"
    result: ApplyResult = outcome["result"]
    assert result.applied == 1 and not result.rejected
    assert result.refolded == (1 if first == "filed" else 0)  # a stored case without a report: the whole history

    state, skipped = fold("race-1", [reported, filed])
    assert not skipped
    assert diff_cases({"race-1": expected_row(state)}, db_cases(sessions)) == []
    events, count = db_events(sessions)
    assert count == 2 and all(e["problem"] is None for e in events.values())  # the filed's "no report yet" cleared
