"""The feed end to end against a real Redis and a real database: publish → ingest → SQL."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from citykit import COMMUNITY, LAT0, LON0, STEP, build_community, two_by_two
from dashboard.rules import classification
from dashboard.rules.lifecycle import EventType
from dashboard.store.models import Case, CaseEvent, Grid
from dashboard.store.reference import Reference
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM, CHANGES_STREAM, CONSUMER_GROUP, DEAD_COUNTS_KEY, DEAD_LETTER_STREAM, HEALTH_KEY
from feeds.producer import Producer

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def two_by_two_city(sessions):  # type: ignore[no-untyped-def]
    """One district/street/community with a 2×2 block of grids and one unit."""
    build_community(sessions, two_by_two())
    return Reference.load(sessions, classification.load("gbt47678-2026"))


def msg(case: str, n: int, type_: EventType, minutes: int, **fields) -> CaseEventMessage:  # type: ignore[no-untyped-def]
    return CaseEventMessage(event_id=f"{case}-{n}", case_id=case, type=type_,
                            occurred_at=T0 + timedelta(minutes=minutes), **fields)


def full_loop(case: str) -> list[CaseEventMessage]:
    return [
        msg(case, 1, EventType.REPORTED, 0, source="supervisor", kind="event", class_code="06010",
            grid_code=f"{COMMUNITY}001", description="暴露垃圾", urgency="normal", number="2026112400001"),
        msg(case, 2, EventType.FILED, 10),
        msg(case, 3, EventType.DISPATCHED, 20, unit_code="U-HW"),
        msg(case, 4, EventType.HANDLED, 90),
        msg(case, 5, EventType.CHECKED_OK, 120),
        msg(case, 6, EventType.CLOSED, 130),
    ]


def drain(ingest: Ingest) -> None:
    while ingest.step():
        pass


def test_full_loop_is_ingested_and_acknowledged(settings, sessions, redis_client, two_by_two_city):  # type: ignore[no-untyped-def]
    Producer(redis_client, settings).publish_many(full_loop("c1"))
    ingest = Ingest(settings, sessions, redis_client, two_by_two_city, consumer="t1", block_ms=10)
    ingest.ensure_group()
    drain(ingest)
    with sessions() as s:
        case = s.scalars(select(Case).where(Case.case_id == "c1")).one()
        assert case.stage == "closed"
        assert case.class_code == "06010" and case.kind == "event"
        assert case.unit_id is not None and case.grid_id is not None
        assert case.closed_at == (T0 + timedelta(minutes=130)).astimezone(UTC)
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == 6
    pending = redis_client.xpending(settings.key(CASE_STREAM), CONSUMER_GROUP)
    assert pending["pending"] == 0
    health = redis_client.hgetall(settings.key(HEALTH_KEY))
    assert health["applied_total"] == "6" and "heartbeat_at" in health
    notices = redis_client.xrange(settings.key(CHANGES_STREAM))
    assert notices and "c1" in notices[-1][1]["cases"]
    assert f"{COMMUNITY}001" in notices[-1][1]["grids"]


def test_republished_events_change_nothing(settings, sessions, redis_client, two_by_two_city):  # type: ignore[no-untyped-def]
    producer = Producer(redis_client, settings)
    producer.publish_many(full_loop("c2"))
    ingest = Ingest(settings, sessions, redis_client, two_by_two_city, consumer="t1", block_ms=10)
    ingest.ensure_group()
    drain(ingest)
    producer.publish_many(full_loop("c2"))
    drain(ingest)
    assert ingest.stats.applied == 6 and ingest.stats.duplicates == 6
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == 6


def test_any_arrival_order_gives_the_same_case(settings, sessions, redis_client, two_by_two_city):  # type: ignore[no-untyped-def]
    events = full_loop("c3")
    random.Random(4).shuffle(events)
    ingest = Ingest(settings, sessions, redis_client, two_by_two_city, consumer="t1", batch_size=1, block_ms=10)
    ingest.ensure_group()
    producer = Producer(redis_client, settings)
    for e in events:  # one per batch, so intermediate states are really out of order
        producer.publish(e)
        drain(ingest)
    with sessions() as s:
        case = s.scalars(select(Case).where(Case.case_id == "c3")).one()
        assert case.stage == "closed"
        problems = s.scalars(select(CaseEvent.problem).where(CaseEvent.case_id == "c3")).all()
        assert problems == [None] * 6  # late arrivals cleared the earlier complaints


def test_point_is_located_to_its_grid(settings, sessions, redis_client, two_by_two_city):  # type: ignore[no-untyped-def]
    m = msg("c4", 1, EventType.REPORTED, 0, source="hotline_12345", kind="event", class_code="07001",
            lon=LON0 + 1.5 * STEP, lat=LAT0 - 0.5 * STEP)
    Producer(redis_client, settings).publish(m)
    ingest = Ingest(settings, sessions, redis_client, two_by_two_city, consumer="t1", block_ms=10)
    ingest.ensure_group()
    drain(ingest)
    with sessions() as s:
        grid = s.scalar(select(Grid.code).join(Case, Case.grid_id == Grid.id).where(Case.case_id == "c4"))
    assert grid == f"{COMMUNITY}002"


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"event": "{not json"}, "not JSON"),
        ({"other": "x"}, "no 'event' field"),
        ({"event": json.dumps({"event_id": "x", "case_id": "y", "type": "exploded",
                               "occurred_at": "2026-11-24T09:00:00+08:00"})}, "schema: type"),
        ({"event": json.dumps({"event_id": "x", "case_id": "y", "type": "reported",
                               "occurred_at": "2026-11-24T09:00:00"})}, "UTC offset"),
        ({"event": json.dumps({"event_id": "x", "case_id": "y", "type": "reported",
                               "occurred_at": "2099-01-01T09:00:00+08:00"})}, "in the future"),
        ({"event": json.dumps({"event_id": "x", "case_id": "y", "type": "reported", "kind": "event",
                               "class_code": "99999", "occurred_at": "2026-11-24T09:00:00+08:00"})},
         "unknown classification"),
        ({"event": json.dumps({"event_id": "x", "case_id": "y", "type": "reported",
                               "grid_code": "990101001001999", "occurred_at": "2026-11-24T09:00:00+08:00"})},
         "unknown grid"),
        # an update (a report in no grid is kept 未定位: tests/test_unlocated.py)
        ({"event": json.dumps({"event_id": "x", "case_id": "y", "type": "updated", "lon": 100.0,
                               "lat": 30.0, "occurred_at": "2026-11-24T09:00:00+08:00"})},
         "outside the city"),
        ({"event": "x" * (65 * 1024)}, "larger than 64 KB"),
    ],
)
def test_bad_entries_are_dead_lettered_with_reason(settings, sessions, redis_client, two_by_two_city, fields, reason):  # type: ignore[no-untyped-def]
    stream = settings.key(CASE_STREAM)
    redis_client.xadd(stream, fields)
    Producer(redis_client, settings).publish_many(full_loop("ok"))  # good traffic keeps flowing
    ingest = Ingest(settings, sessions, redis_client, two_by_two_city, consumer="t1", block_ms=10)
    ingest.ensure_group()
    drain(ingest)
    dead = redis_client.xrange(settings.key(DEAD_LETTER_STREAM))
    assert len(dead) == 1
    entry = dead[0][1]
    assert reason in entry["reason"]
    if reason.startswith("larger than"):  # over 64 KiB: a truncated copy, its size and SHA-256
        raw = fields["event"].encode()
        assert json.loads(entry["truncated"])["fields"]["event"] == {
            "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
        assert fields["event"].startswith(json.loads(entry["fields"])["event"])
    else:
        assert json.loads(entry["fields"]) == fields  # the original entry is kept whole
    assert entry["consumer"] == "t1"
    with sessions() as s:
        assert s.scalar(select(Case.stage).where(Case.case_id == "ok")) == "closed"
    assert redis_client.xpending(stream, CONSUMER_GROUP)["pending"] == 0


@pytest.mark.parametrize("closed_first", [True, False])
def test_case_closed_before_it_was_reported_is_dead_lettered(settings, sessions, redis_client, two_by_two_city,
                                                             closed_first):  # type: ignore[no-untyped-def]
    reported = msg("c9", 1, EventType.REPORTED, 0, source="supervisor", kind="event", class_code="06010",
                   grid_code=f"{COMMUNITY}001")
    closed = msg("c9", 2, EventType.CLOSED, -30)  # 30 minutes before the report
    ingest = Ingest(settings, sessions, redis_client, two_by_two_city, consumer="t1", batch_size=1, block_ms=10)
    ingest.ensure_group()
    producer = Producer(redis_client, settings)
    for m in ([closed, reported] if closed_first else [reported, closed]):
        producer.publish(m)
        drain(ingest)
    dead = redis_client.xrange(settings.key(DEAD_LETTER_STREAM))
    assert [d[1]["reason_code"] for d in dead] == ["transition"]
    assert "c9-2" in dead[0][1]["fields"] and "上报之前" in dead[0][1]["reason"]
    assert redis_client.hget(settings.key(DEAD_COUNTS_KEY), "transition") == "1"
    with sessions() as s:
        assert s.scalar(select(Case.stage).where(Case.case_id == "c9")) == "reported"
        assert s.scalars(select(CaseEvent.event_id).where(CaseEvent.case_id == "c9")).all() == ["c9-1"]


def test_second_report_of_a_case_is_dead_lettered(settings, sessions, redis_client, two_by_two_city):  # type: ignore[no-untyped-def]
    first = full_loop("c10")[:2]
    again = msg("c10", 9, EventType.REPORTED, 60, source="supervisor", kind="event", class_code="06010",
                grid_code=f"{COMMUNITY}001")
    Producer(redis_client, settings).publish_many([*first, again])
    ingest = Ingest(settings, sessions, redis_client, two_by_two_city, consumer="t1", block_ms=10)
    ingest.ensure_group()
    drain(ingest)
    dead = redis_client.xrange(settings.key(DEAD_LETTER_STREAM))
    assert [d[1]["reason_code"] for d in dead] == ["transition"]
    with sessions() as s:
        assert s.scalar(select(Case.stage).where(Case.case_id == "c10")) == "filed"


def test_events_out_of_order_across_batches_are_marked_then_cleared(settings, sessions, redis_client, two_by_two_city):  # type: ignore[no-untyped-def]
    loop = full_loop("c11")
    ingest = Ingest(settings, sessions, redis_client, two_by_two_city, consumer="t1", batch_size=10, block_ms=10)
    ingest.ensure_group()
    producer = Producer(redis_client, settings)
    producer.publish_many([loop[0], loop[2]])  # reported, dispatched (filed is late)
    drain(ingest)
    with sessions() as s:
        problem = s.scalar(select(CaseEvent.problem).where(CaseEvent.event_id == "c11-3"))
        assert problem and "dispatched" in problem
        assert s.scalar(select(Case.stage).where(Case.case_id == "c11")) == "reported"
    producer.publish(loop[1])  # the late 立案 makes the dispatch legal
    drain(ingest)
    with sessions() as s:
        assert s.scalar(select(CaseEvent.problem).where(CaseEvent.event_id == "c11-3")) is None
        assert s.scalar(select(Case.stage).where(Case.case_id == "c11")) == "dispatched"
    assert ingest.stats.dead == 0


def test_sharded_streams_are_all_read(settings, sessions, redis_client, two_by_two_city):  # type: ignore[no-untyped-def]
    from feeds.keys import stream_for

    sharded = settings.model_copy(update={"feed_shards": ["990101", "990102"]})
    loop = full_loop("c12")
    target = stream_for(sharded, loop[0].grid_code)
    assert target.endswith(":990101")
    for m in loop:
        redis_client.xadd(target, m.to_entry())
    ingest = Ingest(sharded, sessions, redis_client, two_by_two_city, consumer="t1", block_ms=10)
    ingest.ensure_group()
    drain(ingest)
    with sessions() as s:
        assert s.scalar(select(Case.stage).where(Case.case_id == "c12")) == "closed"
    assert redis_client.xpending(target, CONSUMER_GROUP)["pending"] == 0


def test_event_still_illegal_after_the_grace_period_is_dead_lettered(settings, sessions, redis_client, two_by_two_city):  # type: ignore[no-untyped-def]
    loop = full_loop("c13")
    closed_too_early = msg("c13", 7, EventType.CLOSED, 25)  # right after dispatch: no 处置, no 核查
    Producer(redis_client, settings).publish_many([*loop[:3], closed_too_early])
    ingest = Ingest(settings, sessions, redis_client, two_by_two_city, consumer="t1", block_ms=10, illegal_grace_s=3600)
    ingest.ensure_group()
    drain(ingest)
    assert ingest.sweep() == 0  # within the grace period it waits for a late event
    with sessions() as s:
        assert s.scalar(select(CaseEvent.problem).where(CaseEvent.event_id == "c13-7"))
    ingest.illegal_grace_s = 0
    assert ingest.sweep() == 1
    dead = redis_client.xrange(settings.key(DEAD_LETTER_STREAM))
    assert [d[1]["reason_code"] for d in dead] == ["transition"]
    assert "grace period" in dead[0][1]["reason"] and "c13-7" in dead[0][1]["fields"]
    assert ingest.sweep() == 0  # once only
    with sessions() as s:
        assert s.scalar(select(Case.stage).where(Case.case_id == "c13")) == "dispatched"
        assert "c13-7" not in s.scalars(select(CaseEvent.event_id).where(CaseEvent.case_id == "c13")).all()
        assert s.scalar(select(Case.fold_state).where(Case.case_id == "c13"))["skipped"] == 0
