"""Live-view snapshots (feeds/snapshot.py): a snapshot + catch-up equals a fresh load from SQL.

Real feed (Producer → Redis → Ingest → SQL → change notices), real Redis, SQLite or
PostgreSQL. A first follower loads from SQL and writes a snapshot; events arrive (new cases,
transitions, closes) and the local day turns; a second follower starting from the snapshot
and the change stream must show every public figure a fresh SQL load shows. Stale, foreign
and broken snapshots are refused (the follower loads from SQL, no failure).
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import feedkit
from dashboard.figures.liveview import LiveView
from feeds.contract import CaseEventMessage
from feeds.follower import ChangeFollower
from feeds.keys import CHANGES_STREAM
from feeds.snapshot import SnapshotError, SnapshotStore
from liveviewkit import L, check, same_view


@pytest.fixture
def pushed(settings, sessions, redis_client, feed_city):  # type: ignore[no-untyped-def]
    """Publish and ingest everything in the test's thread (change notices written as in production)."""
    return feedkit.ingest_pusher(settings, sessions, redis_client, feed_city, consumer="snap", batch_size=40)


@pytest.fixture
def store(settings, tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(settings, directory=tmp_path / "liveview")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def histories(seed: int, n: int, start: datetime, spread_h: float) -> list[list[CaseEventMessage]]:
    rng = random.Random(seed)
    return [feedkit.random_history(rng, f"s{seed}-{i:03d}",
                                   start + timedelta(minutes=rng.uniform(0, spread_h * 60)), max_len=10)
            for i in range(n)]


def follower(settings: Any, sessions: Any, client: Any, city: Any, clock: Clock,
             store: SnapshotStore | None) -> ChangeFollower:
    return ChangeFollower(settings, sessions, client, city.timing, clock=clock, snapshots=store, check_every_s=0)


def written(f: ChangeFollower) -> None:
    """Wait for the follower's background snapshot write."""
    assert f._writer is not None
    f._writer.join(30)


def split(cases: list[list[CaseEventMessage]], at: datetime) -> tuple[list[CaseEventMessage], list[CaseEventMessage]]:
    """The events up to ``at``, and those after it."""
    before = [m for c in cases for m in c if m.occurred_at <= at]
    after = [m for c in cases for m in c if m.occurred_at > at]
    return before, after


def test_snapshot_and_catch_up_equal_a_fresh_load(settings, sessions, redis_client, feed_city, pushed,
                                                   store):  # type: ignore[no-untyped-def]
    # Histories around local midnight: the snapshot is taken on the 24th at 22:30, the
    # restart happens on the 25th at 02:10 — new cases, transitions and closes in between.
    cases = histories(11, 160, L("2026-11-23 20:00"), 30)
    t1, t2 = L("2026-11-24 22:30"), L("2026-11-25 02:10")
    before, after = split(cases, t1)
    after = [m for m in after if m.occurred_at <= t2]
    assert len(after) > 50
    pushed(before)
    clock = Clock(t1)
    first = follower(settings, sessions, redis_client, feed_city, clock, store)
    try:
        first.bootstrap()
        written(first)
        assert store.path.exists() and not first.status().restored
        pushed(after)
        clock.at = t2
        second = follower(settings, sessions, redis_client, feed_city, clock, store)
        second.bootstrap()
        status = second.status()
        assert status.restored and status.reloads == 0
        assert status.last_id == redis_client.xrevrange(settings.key(CHANGES_STREAM), count=1)[0][0]
        with sessions() as s:
            fresh = LiveView.load(s, feed_city.timing, t2)
        assert fresh.kpis().open > 20 and fresh.kpis().overdue and fresh.kpis().reported
        same_view(second.view, fresh)  # kpis, grid_values and hot_spots per metric, queue, board, stages
        check(second.view, sessions, feed_city.timing, t2)  # and the SQL truth of liveviewkit
        # The catch-up is what makes it equal: the snapshot alone, ticked to t2, is not.
        snap = store.read(reference=second._reference, tz=str(feed_city.timing.calendar.tz))
        alone = LiveView.from_state(feed_city.timing, snap.arrays, snap.meta)
        alone.tick(t2)
        assert alone.kpis() != fresh.kpis()
        # the follower goes on from there: a later notice is applied as usual
        later = histories(12, 20, L("2026-11-25 02:11"), 0.2)
        pushed([m for c in later for m in c if m.occurred_at <= L("2026-11-25 02:30")])
        clock.at = L("2026-11-25 02:30")
        second.step()
        second.view.tick(clock.at)
        with sessions() as s:
            same_view(second.view, LiveView.load(s, feed_city.timing, clock.at))
    finally:
        first.stop()


def test_periodic_snapshots_only_when_the_view_moved(settings, sessions, redis_client, feed_city, pushed,
                                                     store):  # type: ignore[no-untyped-def]
    pushed([m for c in histories(13, 20, L("2026-11-24 08:00"), 4) for m in c])
    clock = Clock(L("2026-11-24 13:00"))
    f = follower(settings, sessions, redis_client, feed_city, clock, store)
    f.bootstrap()
    written(f)
    mtime = store.path.stat().st_mtime_ns
    assert f.snapshot() is False  # nothing moved since
    clock.at = L("2026-11-25 09:00")
    f.step()  # the clock alone (a new day, deadlines passing) moves the view ...
    assert f.view.version > 1 and f.snapshot() is False  # ... but a restore recomputes that: no write
    pushed([m for c in histories(14, 5, L("2026-11-24 12:00"), 0.5) for m in c])
    f.step()
    store.interval_s = 0.0  # a file of any age may be replaced now
    assert f.snapshot() is True
    written(f)
    assert store.path.stat().st_mtime_ns > mtime
    header = store.read(reference=f._reference, tz=str(feed_city.timing.calendar.tz)).header
    assert header["last_id"] == f.status().last_id


def test_one_writer_at_a_time(settings, store, tmp_path: Path) -> None:
    other = SnapshotStore(settings, directory=store.directory)
    header = store.header(last_id="1-0", run_id="r", reference="x", tz="Asia/Shanghai", open_cases=0)
    arrays = {"x": np.zeros(3)}
    meta: dict[str, Any] = {k: [] for k in ("cid", "number", "desc", "today_ids", "today", "month_ids", "month")}
    with other._file_lock() as got:
        assert got
        assert store.write(header, arrays, meta, force=True) is False  # another process holds it
    assert store.write(header, arrays, meta, force=True) is True
    assert store.write(header, arrays, meta) is False  # fresh enough
    assert list(store.directory.glob(".liveview-*")) == []  # no temporary file left


def _load_and_snapshot(settings: Any, sessions: Any, client: Any, city: Any, pushed: Any,
                       store: SnapshotStore) -> Clock:
    pushed([m for c in histories(15, 30, L("2026-11-24 08:00"), 4) for m in c])
    clock = Clock(L("2026-11-24 13:00"))
    f = follower(settings, sessions, client, city, clock, store)
    f.bootstrap()
    written(f)
    return clock


def _restarted(settings: Any, sessions: Any, client: Any, city: Any, clock: Clock,
               store: SnapshotStore) -> ChangeFollower:
    f = follower(settings, sessions, client, city, clock, store)
    f.bootstrap()
    with sessions() as s:
        same_view(f.view, LiveView.load(s, city.timing, clock.at))
    return f


def test_a_snapshot_behind_a_trimmed_stream_is_refused(settings, sessions, redis_client, feed_city, pushed, store,
                                                        caplog):  # type: ignore[no-untyped-def]
    clock = _load_and_snapshot(settings, sessions, redis_client, feed_city, pushed, store)
    for i in range(3):
        pushed([m for c in histories(20 + i, 3, L("2026-11-24 12:00"), 0.5) for m in c])
    redis_client.xtrim(settings.key(CHANGES_STREAM), maxlen=1, approximate=False)
    with caplog.at_level(logging.WARNING, logger="feeds.follower"):
        f = _restarted(settings, sessions, redis_client, feed_city, clock, store)
    assert not f.status().restored and f.status().reloads == 1
    assert "trimmed" in caplog.text


def test_a_snapshot_of_another_redis_run_is_refused(settings, sessions, redis_client, feed_city, pushed, store,
                                                     caplog):  # type: ignore[no-untyped-def]
    clock = _load_and_snapshot(settings, sessions, redis_client, feed_city, pushed, store)
    snap = store.read(reference=_reference(sessions), tz=str(feed_city.timing.calendar.tz))
    store.write({**snap.header, "run_id": "0" * 40}, snap.arrays, snap.meta, force=True)
    with caplog.at_level(logging.WARNING, logger="feeds.follower"):
        f = _restarted(settings, sessions, redis_client, feed_city, clock, store)
    assert not f.status().restored
    assert "another run of the Redis server" in caplog.text


def _reference(sessions: Any) -> str:
    from dashboard.figures.liveview import reference_fingerprint

    with sessions() as s:
        return reference_fingerprint(s)


def test_a_snapshot_of_another_database_is_refused(settings, sessions, redis_client, feed_city, pushed, store,
                                                    tmp_path, caplog):  # type: ignore[no-untyped-def]
    clock = _load_and_snapshot(settings, sessions, redis_client, feed_city, pushed, store)
    elsewhere = SnapshotStore(settings.model_copy(update={"database_url": "sqlite:////elsewhere/gridhall.db"}),
                              directory=store.directory)
    assert elsewhere.path != store.path  # deployments sharing a folder keep their own files
    # ... but a file at our name that says it is of another database is refused
    with pytest.raises(SnapshotError, match="another reference"):
        store.read(reference="after-a-city-import", tz=str(feed_city.timing.calendar.tz))
    snap = store.read(reference=_reference(sessions), tz=str(feed_city.timing.calendar.tz))
    store.write({**snap.header, "database": "someone-else"}, snap.arrays, snap.meta, force=True)
    with pytest.raises(SnapshotError, match="another database"):
        store.read(reference=_reference(sessions), tz=str(feed_city.timing.calendar.tz))
    with caplog.at_level(logging.WARNING, logger="feeds.follower"):
        f = _restarted(settings, sessions, redis_client, feed_city, clock, store)
    assert not f.status().restored and "another database" in caplog.text


def test_the_same_reference_with_other_cases_is_refused(settings, sessions, redis_client, feed_city, pushed, store,
                                                         caplog):  # type: ignore[no-untyped-def]
    """Same database URL and city, but the cases differ (a restored backup): the sample check catches it."""
    clock = _load_and_snapshot(settings, sessions, redis_client, feed_city, pushed, store)
    snap = store.read(reference=_reference(sessions), tz=str(feed_city.timing.calendar.tz))
    rework = snap.arrays["a.rework"].copy()
    rework[np.flatnonzero(snap.arrays["a.live"])] += 1  # every open case one more 返工 than SQL says
    store.write(snap.header, {**snap.arrays, "a.rework": rework}, snap.meta, force=True)
    with caplog.at_level(logging.WARNING, logger="feeds.follower"):
        f = _restarted(settings, sessions, redis_client, feed_city, clock, store)
    assert not f.status().restored and "differ from SQL" in caplog.text


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_broken_file_means_sql_and_a_log_line(settings, sessions, redis_client, feed_city, pushed, store,
                                                 caplog, damage):  # type: ignore[no-untyped-def]
    clock = _load_and_snapshot(settings, sessions, redis_client, feed_city, pushed, store)
    data = store.path.read_bytes()
    store.path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x00garbage" * 100,
                            "empty": b""}[damage])
    with caplog.at_level(logging.WARNING, logger="feeds.follower"):
        f = _restarted(settings, sessions, redis_client, feed_city, clock, store)
    assert not f.status().restored and f.status().reloads == 1
    assert "not used" in caplog.text and "Traceback" not in caplog.text


def test_other_rules_are_refused(settings, sessions, redis_client, feed_city, pushed, store):  # type: ignore[no-untyped-def]
    """A state computed under another 临期 ratio or calendar is not taken."""
    _load_and_snapshot(settings, sessions, redis_client, feed_city, pushed, store)
    snap = store.read(reference=_reference(sessions), tz=str(feed_city.timing.calendar.tz))
    LiveView.from_state(feed_city.timing, snap.arrays, snap.meta)  # as written: fine
    with pytest.raises(ValueError, match="ratio"):
        LiveView.from_state(feed_city.timing, snap.arrays, {**snap.meta, "due_soon_ratio": 0.5})
    off = snap.arrays["a.off_d"] + 30.0
    with pytest.raises(ValueError, match="calendar"):
        LiveView.from_state(feed_city.timing, {**snap.arrays, "a.off_d": off}, snap.meta)
    with pytest.raises(ValueError):
        LiveView.from_state(feed_city.timing, {**snap.arrays, "a.grid": snap.arrays["a.grid"][:-1]}, snap.meta)
