"""The change-notice follower (feeds/follower.py) with a real ingest, Redis and database."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import feedkit
from dashboard.figures.liveview import LiveView
from dashboard.rules.lifecycle import EventType as E
from feeds.contract import CaseEventMessage
from feeds.follower import ChangeFollower
from feeds.ingest import Ingest
from feeds.keys import CHANGES_STREAM
from feeds.producer import Producer
from liveviewkit import G1, G2, L, check, msgs, same_view


@pytest.fixture
def ingest_thread(settings, sessions, redis_client, feed_city) -> Iterator[Ingest]:  # type: ignore[no-untyped-def]
    """A real ingest consuming the case stream in the background."""
    ingest = Ingest(settings, sessions, redis_client, feed_city, consumer="bg", block_ms=20, batch_size=25)
    ingest.ensure_group()
    stop = threading.Event()
    thread = threading.Thread(target=ingest.run, args=(stop,), daemon=True)
    thread.start()
    yield ingest
    stop.set()
    thread.join(10)


@pytest.fixture
def followers(settings, sessions, redis_client, feed_city) -> Iterator[list[ChangeFollower]]:  # type: ignore[no-untyped-def]
    made: list[ChangeFollower] = []
    yield made
    for f in made:
        f.stop()


def newest(client: Any, settings: Any) -> str:
    items = client.xrevrange(settings.key(CHANGES_STREAM), count=1)
    return items[0][0] if items else "0-0"


def recent_histories(seed: int, n: int, now: datetime) -> list[CaseEventMessage]:
    """Random valid histories of the last three days, cut at ``now`` (no future events)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = now - timedelta(hours=rng.uniform(1, 72))
        history = feedkit.random_history(rng, f"f{seed}-{i:03d}", start, max_len=8)
        out += [m for m in history if m.occurred_at <= now]
    return out


def wait_until(predicate: Any, timeout: float) -> float | None:
    """Seconds until ``predicate()`` held, or None after ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


def test_a_notice_reaches_the_view_within_a_second(settings, sessions, redis_client, feed_city, ingest_thread,
                                                   followers):  # type: ignore[no-untyped-def]
    follower = ChangeFollower(settings, sessions, redis_client, feed_city.timing).start()
    followers.append(follower)
    view = follower.view
    assert view.version >= 1 and view.kpis().open == 0
    now = datetime.now(UTC)
    Producer(redis_client, settings).publish_many(
        msgs("live-1", (E.REPORTED, now - timedelta(minutes=5)), grid_code=G1, urgency="urgent"))
    took = wait_until(lambda: view.kpis().open == 1, 5.0)
    assert took is not None and took < 1.0, took
    assert view.kpis().urgent == 1 and view.grid_values("open") == {G1: 1}
    assert view.grid_values("new_hour") == {G1: 1}
    assert wait_until(lambda: follower.status().notices >= 1, 1.0) is not None  # counted just after the apply
    st = follower.status()
    assert st.running and st.last_notice_at is not None and st.stale_reason is None
    assert view.last_change_at == st.last_notice_at


def test_a_woken_reader_sees_the_notice_id_with_the_change(settings, sessions, redis_client, feed_city,
                                                           foreground_feed, followers):  # type: ignore[no-untyped-def]
    """The version and the coordinate (the last notice id) move together, under the view's lock.

    A pushed wall wakes on the version (``wait_changed``) and asks for the cells changed since
    the coordinate it holds; were the new version visible before its notice id, the worker would
    file the change under a coordinate the browser already has, and never send it (CI saw a wall
    miss a pushed case so). The session's close is slowed (a busy machine): the id must not wait
    for it."""

    @contextmanager
    def slow_sessions() -> Iterator[Any]:
        with sessions() as session:
            yield session
        time.sleep(0.3)

    follower = ChangeFollower(settings, slow_sessions, redis_client, feed_city.timing).start()
    followers.append(follower)
    view = follower.view
    before = view.version
    seen: list[tuple[int, str | None]] = []

    def wait() -> None:
        view.wait_changed(before, 10.0)
        with view.consistent():
            seen.append((view.version, follower.status().last_id))

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    now = datetime.now(UTC)
    foreground_feed(msgs("woken", (E.REPORTED, now - timedelta(minutes=5)), grid_code=G1))
    waiter.join(10)
    assert seen and seen[0][0] != before
    assert seen[0][1] == newest(redis_client, settings), seen


def test_notices_that_arrive_together_are_applied_together(settings, sessions, redis_client, feed_city,
                                                            foreground_feed, followers):  # type: ignore[no-untyped-def]
    """Applies are at least apply_every_s apart: notices written meanwhile are read in one XREAD
    and applied in one re-read of their cases (one per notice cost a fifth of a worker's CPU
    under 200 viewers)."""
    follower = ChangeFollower(settings, sessions, redis_client, feed_city.timing, apply_every_s=1.0).start()
    followers.append(follower)
    view = follower.view
    applies: list[int] = []
    real_apply = view.apply

    def counted(session: Any, case_ids: Any, now: Any, then: Any = None) -> Any:
        applies.append(len(set(case_ids)))
        return real_apply(session, case_ids, now, then=then)

    view.apply = counted  # type: ignore[method-assign]
    now = datetime.now(UTC)
    foreground_feed(msgs("first", (E.REPORTED, now - timedelta(minutes=5)), grid_code=G1))
    assert wait_until(lambda: view.kpis().open == 1, 5.0) is not None
    t0 = time.monotonic()
    for i in range(4):  # four notices, well inside the second the follower now waits
        foreground_feed(msgs(f"next-{i}", (E.REPORTED, now - timedelta(minutes=4)), grid_code=G2))
    assert time.monotonic() - t0 < 0.8  # else the test proves nothing
    assert wait_until(lambda: view.kpis().open == 5, 5.0) is not None
    assert applies == [1, 4], applies
    # counted once the batch is recorded, a moment after the view shows it
    assert wait_until(lambda: follower.status().notices == 5, 5.0) is not None, follower.status()


def test_the_clock_moves_cases_to_overdue_with_no_notice(settings, sessions, redis_client, feed_city, foreground_feed,
                                                        followers):  # type: ignore[no-untyped-def]
    # Dispatched Tue 10:00 in an A grid: 暴露垃圾 4 工作时 → due Tue 16:00.
    foreground_feed(msgs("late", (E.REPORTED, "2026-11-24 09:50"), (E.FILED, "2026-11-24 09:55"),
                         (E.DISPATCHED, "2026-11-24 10:00", {"unit_code": "U-HW"}), grid_code=G2))
    clock = {"now": L("2026-11-24 15:59")}
    follower = ChangeFollower(settings, sessions, redis_client, feed_city.timing, tick_s=0.1,
                              clock=lambda: clock["now"]).start()
    followers.append(follower)
    view = follower.view
    assert view.kpis().overdue == 0
    clock["now"] = L("2026-11-24 16:01")
    assert wait_until(lambda: view.kpis().overdue == 1, 2.0) is not None
    assert view.grid_values("overdue") == {G2: 1}
    assert follower.status().notices == 0


def test_a_follower_started_while_notices_keep_coming_misses_nothing(
        settings, sessions, redis_client, feed_city, ingest_thread, followers):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC).replace(microsecond=0)
    messages = recent_histories(7, 200, now)
    producer = Producer(redis_client, settings)
    started = threading.Event()

    def publish() -> None:
        for i in range(0, len(messages), 15):
            producer.publish_many(messages[i:i + 15])
            if i >= len(messages) // 3:
                started.wait(5)  # keep publishing while the follower loads and starts
            time.sleep(0.01)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    assert wait_until(lambda: redis_client.xlen(settings.key(CHANGES_STREAM)) > 3, 10) is not None
    follower = ChangeFollower(settings, sessions, redis_client, feed_city.timing).start()
    followers.append(follower)
    started.set()
    publisher.join(30)
    assert wait_until(lambda: feedkit.drained(redis_client, settings, sessions, 0)
                      and feedkit.event_count(sessions) + ingest_thread.stats.dead >= len(messages), 30) is not None
    last = newest(redis_client, settings)
    assert wait_until(lambda: follower.status().last_id == last, 10) is not None
    assert follower.status().notices > 0
    follower.stop()
    at = datetime.now(UTC)
    follower.view.tick(at)
    with sessions() as s:
        fresh = LiveView.load(s, feed_city.timing, at)
    # (not kpis().reported: "reported today" is 0 in the first minutes after local midnight)
    assert fresh.kpis().open > 10 and fresh.grid_values("open")
    same_view(follower.view, fresh)
    check(follower.view, sessions, feed_city.timing, follower.view.as_of)


def test_trimmed_notices_rebuild_the_view(settings, sessions, redis_client, feed_city, foreground_feed):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC).replace(microsecond=0)
    foreground_feed(msgs("first", (E.REPORTED, now - timedelta(hours=2)), grid_code=G1))
    follower = ChangeFollower(settings, sessions, redis_client, feed_city.timing, check_every_s=0)
    try:
        follower.bootstrap()
        assert follower.status().last_id == newest(redis_client, settings) != "0-0"
        for i in range(4):  # four batches, four notices ...
            foreground_feed(msgs(f"more-{i}", (E.REPORTED, now - timedelta(minutes=30 + i)), grid_code=G2))
        # ... of which the capped stream keeps only the newest
        redis_client.xtrim(settings.key(CHANGES_STREAM), maxlen=1, approximate=False)
        assert follower.gap() is not None
        follower.step()
        assert follower.status().reloads == 2
        assert follower.view.grid_values("open") == {G1: 1, G2: 4}
        follower.step()  # the newest notice read again: harmless
        assert follower.gap() is None
        assert follower.view.grid_values("open") == {G1: 1, G2: 4}
    finally:
        follower.stop()


def test_a_recreated_stream_rebuilds_the_view(settings, sessions, redis_client, feed_city, foreground_feed):  # type: ignore[no-untyped-def]
    """A Redis restart without persistence: the stream is gone or starts again below our id."""
    now = datetime.now(UTC).replace(microsecond=0)
    foreground_feed(msgs("a", (E.REPORTED, now - timedelta(hours=2)), grid_code=G1))
    follower = ChangeFollower(settings, sessions, redis_client, feed_city.timing, check_every_s=0)
    try:
        follower.bootstrap()
        redis_client.delete(settings.key(CHANGES_STREAM))
        assert follower.gap() == "the change stream is gone"
        redis_client.xadd(settings.key(CHANGES_STREAM), {"cases": "", "grids": "", "units": "", "at": ""}, id="1-0")
        assert "older" in (follower.gap() or "")
        follower.step()
        assert follower.status().reloads == 2 and follower.gap() is None
    finally:
        follower.stop()


def test_a_killed_connection_is_survived(settings, sessions, redis_client, feed_city, ingest_thread,
                                         followers):  # type: ignore[no-untyped-def]
    follower = ChangeFollower(settings, sessions, redis_client, feed_city.timing,
                              name=f"gridhall-follower-test-{random.getrandbits(32):08x}").start()
    followers.append(follower)
    view = follower.view
    time.sleep(0.2)  # let it block in XREAD
    mine = [c for c in redis_client.client_list() if c.get("name") == follower.name]
    assert mine, "the follower's connection carries its name"
    for c in mine:
        redis_client.client_kill_filter(_id=c["id"])
    now = datetime.now(UTC)
    Producer(redis_client, settings).publish_many(
        msgs("after-kill", (E.REPORTED, now - timedelta(minutes=1)), grid_code=G2))
    assert wait_until(lambda: view.grid_values("open") == {G2: 1}, 10) is not None
    assert wait_until(lambda: follower.status().stale_reason is None, 5) is not None


def test_a_database_outage_keeps_the_last_view_and_says_so(settings, sessions, redis_client, feed_city, tmp_path,
                                                          ingest_thread, followers):  # type: ignore[no-untyped-def]
    from dashboard.settings import load_settings
    from dashboard.store import db as dbmod

    follower = ChangeFollower(settings, sessions, redis_client, feed_city.timing).start()
    followers.append(follower)
    view = follower.view
    # A real database that cannot answer the view's queries (an empty SQLite file: no tables).
    away = dbmod.make_engine(load_settings(database_url=f"sqlite:///{tmp_path}/away/gridhall.db"))
    try:
        follower.sessions = dbmod.session_factory(away)
        now = datetime.now(UTC)
        Producer(redis_client, settings).publish_many(
            msgs("during-outage", (E.REPORTED, now - timedelta(minutes=1)), grid_code=G1))
        assert wait_until(lambda: follower.status().stale_reason is not None, 10) is not None
        st = follower.status()
        assert "数据库不可用" in (st.stale_reason or "") and "OperationalError" in (st.last_error or "")
        assert st.running and view.kpis().open == 0  # the last good figures stay
        ticked = follower.status().last_tick_at
        assert wait_until(lambda: follower.status().last_tick_at != ticked, 3) is not None  # still ticking
        follower.sessions = sessions  # the database is back: the same notice is applied
        assert wait_until(lambda: view.kpis().open == 1, 15) is not None
        assert wait_until(lambda: follower.status().stale_reason is None, 5) is not None
    finally:
        away.dispose()


@pytest.fixture
def foreground_feed(settings, sessions, redis_client, feed_city):  # type: ignore[no-untyped-def]
    """Publish and ingest in the test's thread (like test_liveview's fixture)."""
    return feedkit.ingest_pusher(settings, sessions, redis_client, feed_city, consumer="fg", batch_size=40)
