"""The producer side of the feed: append case events to the stream (what other systems do).

Acknowledged writes (docs/feed.md, "Redis Cluster"): with ``replicas`` > 0 every round trip of
XADDs ends with ``WAIT <replicas> <timeout>`` on the same connection, and the XADDs count as
written only when that many replicas have them; else :class:`NotReplicated` is raised and the
producer sends them again (the ingest applies an ``event_id`` once). Only then does a master's
crash not lose them: Redis replicates asynchronously, and a replica promoted by a failover has
exactly what it received.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.typing import EncodableT, FieldT

from dashboard.settings import Settings

from .contract import CaseEventMessage
from .defaults import ACK_WAIT_MS
from .keys import CASE_STREAM


class NotReplicated(redis.RedisError):
    """XADDs the master took but fewer replicas than asked confirmed in time: send them again."""


def append(client: redis.Redis, entries: Sequence[tuple[str, dict[FieldT, EncodableT]]], *, replicas: int = 0,
           wait_ms: int = ACK_WAIT_MS) -> list[str]:
    """XADD each ``(stream, fields)`` in one round trip per server; their entry ids, in order.

    ``replicas`` > 0: each server's XADDs are followed by WAIT on the same connection (in a
    cluster: the connection to the master of their slot), and NotReplicated is raised unless
    every WAIT saw ``replicas`` replicas.
    """
    if not entries:
        return []
    groups: dict[Any, list[int]] = {}
    if isinstance(client, RedisCluster):
        nodes = {}
        for i, (stream, _) in enumerate(entries):
            node = client.get_node_from_key(stream)
            nodes[node.name] = node
            groups.setdefault(node.name, []).append(i)
        conns = {name: nodes[name].redis_connection for name in groups}
    else:
        groups[None] = list(range(len(entries)))
        conns = {None: client}
    ids: list[str] = [""] * len(entries)
    short: list[str] = []
    for name, indexes in groups.items():
        pipe = conns[name].pipeline(transaction=False)
        for i in indexes:
            pipe.xadd(entries[i][0], entries[i][1])
        if replicas > 0:
            pipe.execute_command("WAIT", replicas, wait_ms)
        try:
            replies = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            if isinstance(client, RedisCluster):  # a failover moves slots: learn the new masters
                _refresh(client)
            raise
        for i, reply in zip(indexes, replies, strict=False):
            ids[i] = reply.decode() if isinstance(reply, bytes) else str(reply)
        if replicas > 0 and int(replies[-1]) < replicas:
            short.append(f"{name or 'the server'}: {int(replies[-1])} of {replicas} replicas")
    if short:
        raise NotReplicated(f"not acknowledged within {wait_ms} ms ({'; '.join(short)}); send again")
    return ids


def _refresh(client: RedisCluster) -> None:
    try:
        client.nodes_manager.initialize()
    except redis.RedisError:  # no node answers yet: the next attempt tries again
        pass


class Producer:
    """XADD case events to the case stream, one entry per event."""

    def __init__(self, client: redis.Redis, settings: Settings, stream: str | None = None, *,
                 replicas: int | None = None) -> None:
        self.client = client
        self.stream = stream or settings.key(CASE_STREAM)
        self.replicas = settings.feed_ack_replicas if replicas is None else replicas

    def publish(self, message: CaseEventMessage) -> str:
        """Append one event; returns the stream entry id (acknowledged: see the module doc)."""
        if self.replicas:
            return append(self.client, [(self.stream, message.to_entry())], replicas=self.replicas)[0]
        return str(self.client.xadd(self.stream, message.to_entry()))

    def publish_many(self, messages: Iterable[CaseEventMessage]) -> list[str]:
        """Append several events in one round trip (a pipeline, not a transaction)."""
        return append(self.client, [(self.stream, m.to_entry()) for m in messages], replicas=self.replicas)
