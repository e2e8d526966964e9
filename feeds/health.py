"""The feed's state as operators need it: is the ingest alive, how far behind, what failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import redis

from dashboard.rules.clock import utcnow
from dashboard.settings import Settings

from .deadletters import WARN_FILL
from .defaults import INGEST_ALIVE_S
from .keys import CONSUMER_GROUP, DEAD_COUNTS_KEY, DEAD_LETTER_STREAM, DEAD_TRIMMED_KEY, HEALTH_KEY, case_streams


@dataclass
class FeedState:
    """A snapshot of the feed, read from Redis only."""

    heartbeat_age_s: float | None  # seconds since the newest ingest heartbeat; None: never
    consumers: int = 0  # consumers known to the group (alive or not)
    pending: int = 0  # delivered to a consumer, not yet acknowledged
    backlog: int | None = None  # entries not yet delivered to the group (Redis ≥ 7 reports it)
    stream_length: int = 0
    dead_letters: int = 0  # entries now in the dead-letter stream
    dead_by_reason: dict[str, int] = field(default_factory=dict)  # ever dead-lettered, per reason
    dead_cap: int = 0  # GRIDHALL_DEADLETTER_MAXLEN
    dead_trimmed: int = 0  # dead letters the cap has removed, ever
    applied_total: int = 0
    last_batch_at: datetime | None = None

    def alive(self, max_age_s: float = INGEST_ALIVE_S) -> bool:
        return self.heartbeat_age_s is not None and self.heartbeat_age_s <= max_age_s

    @property
    def dead_fill(self) -> float:
        """How full the dead-letter stream is, as a share of its cap (may pass 1: "~" trimming)."""
        return self.dead_letters / self.dead_cap if self.dead_cap else 0.0

    def dead_near_cap(self) -> bool:
        """At WARN_FILL of the cap or more: the next dead letters push the oldest out."""
        return self.dead_fill >= WARN_FILL


def feed_state(client: redis.Redis, settings: Settings) -> FeedState:
    # decode_responses (connect): str fields and values, which redis-py's types cannot tell
    health = cast(dict[str, str], client.hgetall(settings.key(HEALTH_KEY)))
    now = utcnow()
    beat = _time(health.get("heartbeat_at"))
    state = FeedState(
        heartbeat_age_s=(now - beat).total_seconds() if beat else None,
        applied_total=int(health.get("applied_total", 0)),
        last_batch_at=_time(health.get("last_batch_at")),
        dead_letters=int(client.xlen(settings.key(DEAD_LETTER_STREAM))),
        dead_by_reason={k: int(v) for k, v in
                        cast(dict[str, str], client.hgetall(settings.key(DEAD_COUNTS_KEY))).items()},
        dead_cap=settings.deadletter_maxlen,
        dead_trimmed=int(client.get(settings.key(DEAD_TRIMMED_KEY)) or 0),
    )
    backlog: int | None = 0
    for stream in case_streams(settings):
        if not client.exists(stream):
            continue
        state.stream_length += int(client.xlen(stream))
        for group in client.xinfo_groups(stream):
            if group["name"] != CONSUMER_GROUP:
                continue
            state.consumers = max(state.consumers, int(group["consumers"]))
            state.pending += int(group["pending"])
            lag = group.get("lag")
            backlog = None if lag is None or backlog is None else backlog + int(lag)
    state.backlog = backlog
    return state


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
