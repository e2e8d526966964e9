"""Control notices (feeds/control.py) against the real Redis: a screen or banner change committed
through the store reaches every follower within a second, only after its commit, never for a
change rolled back; the follower survives Redis errors and stops cleanly."""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.orm import Session, sessionmaker

from citykit import Plan, build_plan
from clikit import free_port
from dashboard.rules.screenspec import ScreenLayout, ScreenSetting
from dashboard.settings import Settings
from dashboard.store import banners as bn
from dashboard.store import hallscreens as hs
from dashboard.store.db import transaction
from dashboard.store.hallcontrol import CLI_ACTOR, HallError, changes
from feeds.connection import is_cluster
from feeds.control import RESET, ControlFollower, ControlNotice, ControlPublisher, follow_screen_views
from feeds.keys import CONTROL_MAXLEN, CONTROL_STREAM

PLAN: Plan = {("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 1}}}


@pytest.fixture
def control_city(sessions: sessionmaker[Session], fresh_scope_cache: None) -> sessionmaker[Session]:
    with transaction(sessions) as s:
        build_plan(s, PLAN)
        hs.add_screen(s, CLI_ACTOR, "青山-1", setting=ScreenSetting(region="990101"))
    return sessions


class Inbox:
    """A follower's callback: every notice, with when it arrived."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[float, ControlNotice]] = queue.Queue()

    def __call__(self, notice: ControlNotice) -> None:
        self.items.put((time.monotonic(), notice))

    def next(self, timeout: float = 2.0) -> tuple[float, ControlNotice]:
        return self.items.get(timeout=timeout)

    def empty_for(self, seconds: float) -> bool:
        try:
            self.items.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def follow(settings: Settings, redis_client: redis.Redis) -> Iterator[list[ControlFollower]]:
    started: list[ControlFollower] = []
    yield started
    for follower in started:
        follower.stop()


def _start(started: list[ControlFollower], settings: Settings, client: redis.Redis, inbox: Inbox,
           **kw: object) -> ControlFollower:
    follower = ControlFollower(settings, client, inbox, **kw)  # type: ignore[arg-type]
    follower.start()
    started.append(follower)
    return follower


def test_a_committed_change_reaches_every_follower_within_a_second(
        settings: Settings, redis_client: redis.Redis, control_city: sessionmaker[Session],
        follow: list[ControlFollower]) -> None:
    inboxes = [Inbox(), Inbox()]  # two web workers
    for inbox in inboxes:
        _start(follow, settings, redis_client, inbox)
    views, worker = follow_screen_views(settings, control_city, redis_client)  # a web worker's
    follow.append(worker)
    assert views.by_name("青山-1").layout is ScreenLayout.WALL  # type: ignore[union-attr]
    publisher = ControlPublisher(redis_client, settings)
    lengths: list[int] = []

    def change(s: Session) -> None:
        hs.set_screen(s, CLI_ACTOR, "青山-1", layout=ScreenLayout.MAP)
        lengths.append(redis_client.xlen(settings.key(CONTROL_STREAM)))  # nothing is sent before the commit

    sent_at = time.monotonic()
    done = publisher.commit(control_city, change)
    assert done.sent and done.notices == [("screen", "青山-1")] and lengths == [0]
    for inbox in inboxes:
        arrived, notice = inbox.next()
        assert (notice.kind, notice.ref) == ("screen", "青山-1")
        assert arrived - sent_at < 1.0
    # the worker's kept answer was dropped on the notice: it shows the committed change
    deadline = sent_at + 1.0
    while views.by_name("青山-1").layout is not ScreenLayout.MAP and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.01)
    assert views.by_name("青山-1").layout is ScreenLayout.MAP  # type: ignore[union-attr]
    assert views.reads >= 2 and worker.notices == 1

    banner = publisher.commit(control_city, lambda s: bn.post_banner(s, CLI_ACTOR, "暴雨红色预警",
                                                               ttl=timedelta(hours=1)).id)
    _, notice = inboxes[0].next()
    assert (notice.kind, notice.ref) == ("banner", str(banner.result))


def test_a_change_rolled_back_sends_nothing(settings: Settings, redis_client: redis.Redis,
                                            control_city: sessionmaker[Session], follow: list[ControlFollower]) -> None:
    inbox = Inbox()
    _start(follow, settings, redis_client, inbox)
    publisher = ControlPublisher(redis_client, settings)

    def change_then_fail(s: Session) -> None:
        hs.set_screen(s, CLI_ACTOR, "青山-1", layout=ScreenLayout.MAP)
        hs.set_screen(s, CLI_ACTOR, "无此屏", layout=ScreenLayout.MAP)

    with pytest.raises(HallError):
        publisher.commit(control_city, change_then_fail)
    assert redis_client.xlen(settings.key(CONTROL_STREAM)) == 0
    assert inbox.empty_for(0.7)
    with control_city() as s:
        assert hs.require_screen(s, "青山-1").layout == "wall"
        assert [c.action for c in changes(s)] == ["add"]  # nor recorded


def test_the_follower_starts_at_the_end_and_stops_cleanly(settings: Settings, redis_client: redis.Redis,
                                                          follow: list[ControlFollower]) -> None:
    publisher = ControlPublisher(redis_client, settings)
    publisher.publish([("screen", "old")])
    inbox = Inbox()
    follower = _start(follow, settings, redis_client, inbox, block_ms=300)
    publisher.publish([("screen", "new"), ("banner", "7")])
    assert [inbox.next()[1].ref for _ in range(2)] == ["new", "7"]
    assert inbox.empty_for(0.5)  # "old" came before the start
    assert follower.running
    began = time.monotonic()
    follower.stop()
    assert time.monotonic() - began < 1.5 and not follower.running


def test_the_follower_recovers_from_a_dropped_connection(settings: Settings, redis_client: redis.Redis,
                                                         follow: list[ControlFollower],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    inbox = Inbox()
    name = f"gh-control-test-{uuid.uuid4().hex[:12]}"  # unique across processes (pytest-xdist workers)
    follower = _start(follow, settings, redis_client, inbox, block_ms=300, first_backoff_s=0.05, name=name)
    publisher = ControlPublisher(redis_client, settings)
    publisher.publish([("screen", "a")])
    assert inbox.next()[1].ref == "a"
    caplog.set_level(logging.INFO, logger="feeds.control")
    killed = 0
    # On a Redis Cluster: the node that serves the control stream, where the follower blocks.
    node = ({"target_nodes": redis_client.get_node_from_key(settings.key(CONTROL_STREAM))}
            if is_cluster(redis_client) else {})
    for c in redis_client.client_list(**node):  # its connection dropped by the server, mid-XREAD
        if c.get("name") == name:
            redis_client.client_kill_filter(_id=c["id"], **node)
            killed += 1
    assert killed == 1
    # Back: it says so with a reset (notices meanwhile may be lost), then reads new ones.
    deadline = time.monotonic() + 5
    kinds = []
    while time.monotonic() < deadline:
        publisher.publish([("screen", "b")])
        try:
            _, notice = inbox.next(timeout=0.3)
        except queue.Empty:
            continue
        kinds.append(notice.kind)
        if notice.ref == "b":
            break
    assert RESET in kinds and kinds[-1] == "screen"
    assert follower.errors >= 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Redis unreachable" in warnings[0].getMessage()


def test_without_redis_the_follower_keeps_trying_and_the_change_stands(
        settings: Settings, control_city: sessionmaker[Session], caplog: pytest.LogCaptureFixture) -> None:
    nowhere = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, decode_responses=True,
                          retry=Retry(NoBackoff(), 0))  # the publisher's failure at once, not after retries
    inbox = Inbox()
    follower = ControlFollower(settings, nowhere, inbox, block_ms=200, first_backoff_s=0.05, max_backoff_s=0.1)
    with caplog.at_level(logging.WARNING, logger="feeds.control"):
        follower.start()
        time.sleep(0.5)
        assert follower.running and follower.errors >= 2
        follower.stop()
    assert not follower.running
    assert sum("Redis unreachable" in r.getMessage() for r in caplog.records) == 1  # one line, not one per try
    done = ControlPublisher(nowhere, settings).commit(
        control_city, lambda s: hs.set_screen(s, CLI_ACTOR, "青山-1", layout=ScreenLayout.KPIS))
    assert not done.sent and done.error
    with control_city() as s:
        assert hs.require_screen(s, "青山-1").layout == "kpis"


def test_the_control_stream_is_capped(settings: Settings, redis_client: redis.Redis) -> None:
    publisher = ControlPublisher(redis_client, settings)
    publisher.publish([("screen", str(i)) for i in range(CONTROL_MAXLEN + 500)])
    length = redis_client.xlen(settings.key(CONTROL_STREAM))
    assert CONTROL_MAXLEN <= length < CONTROL_MAXLEN + 500
