"""The producer side of the feed: append case events to the stream (what other systems do)."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from dashboard.settings import Settings

from .contract import CaseEventMessage
from .keys import CASE_STREAM


class Producer:
    """XADD case events to the case stream, one entry per event."""

    def __init__(self, client: redis.Redis, settings: Settings, stream: str | None = None) -> None:
        self.client = client
        self.stream = stream or settings.key(CASE_STREAM)

    def publish(self, message: CaseEventMessage) -> str:
        """Append one event; returns the stream entry id."""
        return str(self.client.xadd(self.stream, message.to_entry()))

    def publish_many(self, messages: Iterable[CaseEventMessage]) -> list[str]:
        """Append several events in one round trip (a pipeline, not a transaction)."""
        pipe = self.client.pipeline(transaction=False)
        for message in messages:
            pipe.xadd(self.stream, message.to_entry())
        return [str(i) for i in pipe.execute()]
