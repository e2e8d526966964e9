"""The feed on a real Redis Cluster: a master failing over loses no acknowledged event.

A private cluster of Debian's redis-server (3 masters + 3 replicas, tests/clusterkit.py) is
started for this module whatever GRIDHALL_REDIS_URL says (a master is killed: never the run's
shared cluster). The SQL side is the run's database (SQLite or PostgreSQL).

Acknowledged (docs/feed.md, "Redis Cluster"): the producer's XADDs followed by ``WAIT 1`` that
answered 1 — a replica has them. The test: a producer publishes case events to two case streams
(the main one and a district shard, in different slots) with ``replicas=1``, re-sending a chunk
until it is acknowledged; an ingest runs meanwhile; the master serving the main stream's slot is
SIGKILLed; its replica takes over after the node timeout; the producer and the ingest reconnect
by themselves. The promoted master has no replica until the killed node is started again (as a
supervisor would) and rejoins as its replica: until then ``WAIT 1`` cannot be satisfied, and the
producer keeps its chunk and re-sends it. Then every acknowledged event is in SQL exactly once,
and nothing else is there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

import clusterkit
from dashboard.rules.lifecycle import EventType
from dashboard.store.models import CaseEvent
from feedkit import DISTRICT, GRID_CODES, T0, UNITS, wait_until
from feeds.connection import connect, disconnect, is_cluster
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM, CONSUMER_GROUP, stream_for
from feeds.producer import NotReplicated, append

pytestmark = [pytest.mark.redis_cluster, pytest.mark.cluster_failover]

CASES = 120  # × 6 events
CHUNK = 12


@pytest.fixture(scope="module")
def private_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[clusterkit.LocalCluster]:
    """A cluster of our own (a master of it gets killed), stopped at the end of the module."""
    reason = clusterkit.available()
    if reason:
        pytest.skip(f"no local Redis Cluster: {reason}")
    cluster = clusterkit.LocalCluster(clusterkit.free_base_port(), tmp_path_factory.mktemp("redis-cluster"),
                                      node_timeout_ms=1000)
    cluster.start()
    yield cluster
    cluster.stop()


def _loop(i: int) -> list[CaseEventMessage]:
    case = f"fo{i:04d}"
    start = T0 + timedelta(minutes=i)
    steps = [(EventType.REPORTED, dict(source="supervisor", kind="event", class_code="06010",
                                       grid_code=GRID_CODES[i % len(GRID_CODES)], description="暴露垃圾",
                                       urgency="normal", number=f"N{i:08d}")),
             (EventType.FILED, {}), (EventType.DISPATCHED, dict(unit_code=UNITS[i % len(UNITS)])),
             (EventType.HANDLED, {}), (EventType.CHECKED_OK, {}), (EventType.CLOSED, {})]
    return [CaseEventMessage(event_id=f"{case}-{n}", case_id=case, type=t, occurred_at=start + timedelta(minutes=n),
                             **fields) for n, (t, fields) in enumerate(steps, 1)]


def _sql_event_ids(sessions: Any) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(CaseEvent.event_id)))


def test_acknowledged_events_survive_a_master_failover(settings, sessions, feed_city,  # type: ignore[no-untyped-def]
                                                       private_cluster: clusterkit.LocalCluster) -> None:
    mine = settings.model_copy(update={"redis_url": private_cluster.url, "feed_shards": [DISTRICT]})
    client = connect(mine)
    assert is_cluster(client)
    main, shard = mine.key(CASE_STREAM), stream_for(mine, GRID_CODES[0])
    assert shard != main and client.cluster_keyslot(main) != client.cluster_keyslot(shard)  # type: ignore[attr-defined]
    victim = private_cluster.master_of(main)

    stop = threading.Event()
    ingest = Ingest(mine, sessions, client, feed_city, consumer="failover", block_ms=200, batch_size=50)
    ingest.ensure_group()
    runner = threading.Thread(target=ingest.run, args=(stop,), name="ingest", daemon=True)
    runner.start()

    acknowledged: list[str] = []
    refused = 0
    killed_at = None
    restarted = False
    messages = [(main if i % 2 == 0 else shard, m) for i in range(CASES) for m in _loop(i)]
    try:
        started = time.monotonic()
        i = 0
        while i < len(messages):
            if killed_at is None and i >= len(messages) // 3:
                private_cluster.kill(victim)  # SIGKILL: no goodbye to the cluster
                killed_at = time.monotonic()
            chunk = messages[i:i + CHUNK]
            try:
                append(client, [(stream, m.to_entry()) for stream, m in chunk], replicas=1, wait_ms=500)
            except (redis.RedisError, NotReplicated):
                refused += 1  # not acknowledged: send the same chunk again (the ingest applies an id once)
                assert time.monotonic() - started < 90, "the cluster did not recover within 90 s"
                # Once its replica has taken over (never before: a node without persistence that
                # came back as master would come back empty), the crashed node is started again.
                if not restarted and killed_at is not None and _failed_over(private_cluster, main, victim):
                    private_cluster.restart(victim)
                    restarted = True
                time.sleep(0.2)
                continue
            acknowledged += [m.event_id for _, m in chunk]
            i += CHUNK
        assert killed_at is not None and refused > 0, "the kill did not interrupt the producer"
        assert private_cluster.master_of(main) != victim, "no failover happened"
        want = set(acknowledged)
        assert wait_until(lambda: want <= set(_sql_event_ids(sessions)), 90, 0.5), \
            f"acknowledged events missing from SQL: {sorted(want - set(_sql_event_ids(sessions)))[:10]}"
        # Re-deliveries after the failover (the promoted replica's group may lag) are absorbed:
        # let the ingest finish whatever it still holds, then count.
        wait_until(lambda: _drained(client, (main, shard)), 30, 0.5)
    finally:
        stop.set()
        runner.join(30)
        disconnect(client)
    ids = _sql_event_ids(sessions)
    assert len(ids) == len(set(ids)), "an event is stored twice"
    assert set(ids) == {m.event_id for _, m in messages}, "SQL holds events nobody published"
    assert len(set(acknowledged)) == CASES * 6
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == CASES * 6
    assert ingest.stats.dead == 0
    print(f"\nfailover: master :{victim} killed, now :{private_cluster.master_of(main)}; "
          f"{refused} chunk(s) refused and re-sent, "
          f"{ingest.stats.applied} applied, {ingest.stats.duplicates} duplicate deliveries absorbed")


def _failed_over(cluster: clusterkit.LocalCluster, key: str, victim: int) -> bool:
    try:
        return cluster.master_of(key) != victim
    except RuntimeError:  # the slot has no master yet
        return False


def _drained(client: redis.Redis, streams: tuple[str, ...]) -> bool:
    try:
        return all(int(client.xpending(s, CONSUMER_GROUP)["pending"]) == 0 for s in streams)
    except redis.RedisError:
        return False
