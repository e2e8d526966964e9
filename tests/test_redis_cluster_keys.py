"""Redis Cluster support that needs no failover: the URL form, the key layout, the dead-letter
script's once-per-entry rule and the rename of the old dead-letter keys (every backend)."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from dashboard.settings import ConfigError, load_settings
from feeds.connection import cluster_url_parts, connect, is_cluster, is_cluster_url
from feeds.deadletters import DeadLetterSink, dead_letter_record
from feeds.ingest import rename_legacy_keys
from feeds.keys import (
    CASE_STREAM,
    DEAD_COUNTS_KEY,
    DEAD_LETTER_STREAM,
    DEAD_SEEN_KEY,
    DEAD_TRIMMED_KEY,
    LEGACY_KEYS,
    case_streams,
)


def test_cluster_urls_are_parsed() -> None:
    nodes, options = cluster_url_parts("redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001/?socket_timeout=5")
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert options == {"password": "s3cret", "socket_timeout": "5"}
    nodes, options = cluster_url_parts("rediss+cluster://ops:pw@[::1]:7000")
    assert nodes == [("::1", 7000)] and options == {"username": "ops", "password": "pw", "ssl": True}
    assert is_cluster_url("redis+cluster://h:1/") and not is_cluster_url("redis://h:1/0") and not is_cluster_url(None)
    for bad in ("redis+cluster://h:1/3", "redis+cluster://h/", "redis+cluster://h:x/", "redis://h:1/0"):
        with pytest.raises(ValueError):
            cluster_url_parts(bad)


def test_a_bad_cluster_url_names_the_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="GRIDHALL_REDIS_URL: a Redis Cluster has only database 0"):
        connect(load_settings(data_dir=tmp_path, redis_url="redis+cluster://127.0.0.1:1/2"))


def test_what_one_script_writes_shares_a_slot_and_the_streams_keep_their_names(settings) -> None:  # type: ignore[no-untyped-def]
    dead = [settings.key(k) for k in (DEAD_LETTER_STREAM, DEAD_COUNTS_KEY, DEAD_TRIMMED_KEY, DEAD_SEEN_KEY)]
    assert len({key_slot(k.encode()) for k in dead}) == 1
    sharded = settings.model_copy(update={"feed_shards": ["990101", "990102", "990103"]})
    streams = case_streams(sharded)
    assert streams[0] == settings.key(CASE_STREAM) == f"{settings.redis_prefix}cases"  # the producer contract
    assert streams[1:] == [f"{settings.redis_prefix}cases:{d}" for d in ("990101", "990102", "990103")]
    assert len({key_slot(s.encode()) for s in streams}) == len(streams)  # the shards spread over slots


def _letter(entry_id: str, code: str = "schema") -> dict[str, str]:
    return dead_letter_record(entry_id=entry_id, stream="s", reason="r", code=code, consumer="c",
                              at="2026-01-01T00:00:00+00:00", fields={"event": "{"})


def test_an_entry_delivered_again_is_dead_lettered_once(settings, redis_client) -> None:  # type: ignore[no-untyped-def]
    sink = DeadLetterSink(redis_client, settings)
    for _ in range(2):  # the second as after a crash between the dead letter and the XACK
        pipe = redis_client.pipeline(transaction=False)
        sink.add(pipe, [_letter("1-0"), _letter("2-0", "future")], once=True)
        pipe.execute()
    assert redis_client.xlen(settings.key(DEAD_LETTER_STREAM)) == 2
    assert redis_client.hgetall(settings.key(DEAD_COUNTS_KEY)) == {"schema": "1", "future": "1"}
    pipe = redis_client.pipeline(transaction=False)
    sink.add(pipe, [_letter("1-0")])  # without once (a bridge's): written again
    pipe.execute()
    assert redis_client.xlen(settings.key(DEAD_LETTER_STREAM)) == 3
    assert redis_client.hget(settings.key(DEAD_COUNTS_KEY), "schema") == "2"


def test_old_dead_letter_keys_are_renamed_on_a_server(settings, redis_client) -> None:  # type: ignore[no-untyped-def]
    if is_cluster(redis_client):
        pytest.skip("a cluster deployment is new: nothing to rename (and RENAME across slots is refused)")
    redis_client.xadd(settings.key("deadletters"), {"reason": "old"})
    redis_client.hset(settings.key("deadletters:counts"), "schema", 7)
    redis_client.hset(settings.key(DEAD_COUNTS_KEY), "future", 1)  # the new name exists: left as it is
    rename_legacy_keys(redis_client, settings)
    assert set(LEGACY_KEYS.values()) == {DEAD_LETTER_STREAM, DEAD_COUNTS_KEY, DEAD_TRIMMED_KEY}
    assert redis_client.xrange(settings.key(DEAD_LETTER_STREAM))[0][1] == {"reason": "old"}
    assert not redis_client.exists(settings.key("deadletters"))
    assert redis_client.hgetall(settings.key(DEAD_COUNTS_KEY)) == {"future": "1"}
    rename_legacy_keys(redis_client, settings)  # again: nothing left to rename, no error
