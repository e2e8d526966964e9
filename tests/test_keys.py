"""feeds/keys.py: the Redis names under the deployment's prefix, and the one stream-id parser."""

from __future__ import annotations

import redis

from dashboard.settings import Settings
from feeds.keys import CHANGES_STREAM, session_key, signin_locks_key, stream_id, user_sessions_key


def test_stream_ids_order_as_redis_orders_them(redis_client: redis.Redis, settings: Settings) -> None:
    key = settings.key("test-keys:ids")
    redis_client.delete(key)
    ids = [redis_client.xadd(key, {"n": "1"}, id=i) for i in ("5-0", "5-1", "5-10", "6-0", "10-2")]
    ids.append(redis_client.xadd(key, {"n": "2"}))  # a real, server-made id
    assert [e for e, _ in redis_client.xrange(key)] == ids
    assert sorted(ids, key=stream_id) == ids  # "5-10" after "5-1": numbers, not text
    assert stream_id(b"5-10") == stream_id("5-10") == (5, 10)
    redis_client.delete(key)


def test_a_missing_or_broken_id_reads_as_before_every_entry() -> None:
    for text in (None, "", "$", "abc-1", "1-x", "undefined"):
        assert stream_id(text) == (0, 0)
    assert stream_id("17") == (17, 0)  # XRANGE accepts a bare ms; so do we


def test_every_name_is_under_the_prefix(settings: Settings) -> None:
    other = settings.model_copy(update={"redis_prefix": "elsewhere:"})
    assert other.key(CHANGES_STREAM) == "elsewhere:changes"
    assert (session_key("abc"), user_sessions_key(7), signin_locks_key(7)) == (
        "session:abc", "user-sessions:7", "signin-locks:7")
