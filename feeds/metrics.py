"""The feed as Prometheus metrics, read from Redis when /metrics is scraped.

The ingest processes keep their state in Redis (``feeds/health.py``: heartbeat, counters, the
consumer group, the dead letters), so a scrape of any web worker reads the same figures for
every ingest process on every host, exactly: nothing is kept per process, nothing is lost when
an ingest restarts, and ``gridhall ingest`` needs no metrics port of its own. The names are
listed in docs/monitoring.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import cast

import redis
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.settings import Settings

from .health import feed_state
from .keys import CHANGES_STREAM, CONSUMER_GROUP, applied_minute_key, case_streams, stream_id
from .screens import connected

log = logging.getLogger(__name__)


def oldest_waiting_ms(client: redis.Redis, settings: Settings) -> int | None:
    """When the oldest case entry not yet acknowledged by the ingest was added (epoch ms), or None.

    Either pending (delivered to a consumer, not acknowledged) or not yet delivered (after the
    group's last-delivered id); an entry id's first part is the time Redis added it.
    """
    oldest: int | None = None
    for stream in case_streams(settings):
        if not client.exists(stream):
            continue
        for group in client.xinfo_groups(stream):
            if group["name"] != CONSUMER_GROUP:
                continue
            candidates = []
            pending = client.xpending(stream, CONSUMER_GROUP)
            if pending.get("pending"):
                candidates.append(stream_id(pending["min"])[0])
            ms, seq = stream_id(group.get("last-delivered-id"))
            after = cast(list[tuple[str, object]], client.xrange(stream, min=f"{ms}-{seq + 1}", count=1))
            if after:
                candidates.append(stream_id(after[0][0])[0])
            if candidates:
                oldest = min([*candidates, *([oldest] if oldest is not None else [])])
    return oldest


class FeedCollector(Collector):
    """The ingest's lag, rate and dead letters, the change notices and the connected screens."""

    def __init__(self, client: redis.Redis, settings: Settings, *,
                 scope_label: Callable[[str], str] = str, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.settings = settings
        self.scope_label = scope_label  # a screen's scope as recorded ("city", a region id) → its label
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("gridhall_feed_up", "1 if Redis answered this scrape's feed questions, else 0")
        try:
            metrics = list(self._read())
        except (redis.RedisError, OSError) as exc:
            log.warning("metrics: Redis unreachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _read(self) -> Iterator[Metric]:
        client, settings = self.client, self.settings
        now = self.clock()
        state = feed_state(client, settings)

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, value=value)

        oldest = oldest_waiting_ms(client, settings)
        yield gauge("gridhall_ingest_lag_seconds",
                    "Age of the oldest case entry the ingest has not yet acknowledged (0: none waiting)",
                    max(0.0, now - oldest / 1000) if oldest is not None else 0.0)
        yield gauge("gridhall_ingest_pending_entries",
                    "Case entries delivered to an ingest consumer and not yet acknowledged", state.pending)
        if state.backlog is not None:  # Redis 7 and later report it
            yield gauge("gridhall_ingest_backlog_entries",
                        "Case entries not yet delivered to the ingest's consumer group", state.backlog)
        yield gauge("gridhall_ingest_stream_entries", "Entries in the case streams (acknowledged ones included)",
                    state.stream_length)
        yield gauge("gridhall_ingest_consumers", "Consumers the ingest's group knows (alive or not)", state.consumers)
        if state.heartbeat_age_s is not None:
            yield gauge("gridhall_ingest_heartbeat_age_seconds", "Seconds since the newest ingest heartbeat",
                        state.heartbeat_age_s)
        yield CounterMetricFamily("gridhall_ingest_applied", "Case events applied by every ingest process, ever",
                                  value=state.applied_total)
        minute = int(now // 60) - 1
        last_minute = int(cast(str | None, client.get(settings.key(applied_minute_key(minute)))) or 0)
        yield gauge("gridhall_ingest_applied_last_minute",
                    "Case events applied in the last complete minute by every ingest process (the wall's 接入)",
                    last_minute)
        dead = CounterMetricFamily("gridhall_deadletters", "Entries dead-lettered by the ingest, ever, by reason",
                                   labels=["reason"])
        for reason, count in sorted(state.dead_by_reason.items()):
            dead.add_metric([reason], count)
        yield dead
        yield gauge("gridhall_deadletters_entries", "Dead letters now in the dead-letter stream", state.dead_letters)
        yield CounterMetricFamily("gridhall_deadletters_trimmed",
                                  "Dead letters removed by the stream's cap (GRIDHALL_DEADLETTER_MAXLEN), ever",
                                  value=state.dead_trimmed)
        newest = cast(list[tuple[str, object]], client.xrevrange(settings.key(CHANGES_STREAM), count=1))
        if newest:
            yield gauge("gridhall_changes_last_timestamp_seconds",
                        "When the newest change notice was written (the ingest's last commit)",
                        stream_id(newest[0][0])[0] / 1000)
        screens = GaugeMetricFamily("gridhall_screens_connected",
                                    "Screens (browser sessions) that asked for a page in the last minute",
                                    labels=["page", "scope"])
        for (page, scope), count in sorted(connected(client, settings, now=now).items()):
            screens.add_metric([page, self.scope_label(scope)], count)
        yield screens
