"""The ingest: read the case stream with a consumer group, apply batches to SQL, then ack.

At-least-once delivery from Redis plus idempotent apply (unique ``event_id``) gives
effectively-once effects. A batch is committed in one transaction before its entries are
acknowledged, so a crash between the two only causes a harmless redelivery. What cannot be
applied goes to the dead-letter stream with the reason; nothing is dropped silently.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
import redis
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from dashboard.casebook import ApplyResult, Incoming, apply_events
from dashboard.db import transaction
from dashboard.reference import Reference
from dashboard.settings import Settings

from .contract import (
    CASE_STREAM,
    CHANGES_STREAM,
    CONSUMER_GROUP,
    DEAD_LETTER_STREAM,
    FUTURE_TOLERANCE,
    HEALTH_KEY,
    decode_entry,
)

log = logging.getLogger(__name__)

CHANGES_MAXLEN = 10_000  # change notices are for live views, not an archive


@dataclass
class IngestStats:
    applied: int = 0
    duplicates: int = 0
    dead: int = 0
    batches: int = 0


class Ingest:
    """One consumer of the ingest group. Run several processes for more throughput."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        client: redis.Redis,
        ref: Reference,
        *,
        consumer: str | None = None,
        batch_size: int = 500,
        block_ms: int = 1000,
        claim_idle_ms: int = 60_000,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self.ref = ref
        self.stream = settings.key(CASE_STREAM)
        self.dead_stream = settings.key(DEAD_LETTER_STREAM)
        self.changes_stream = settings.key(CHANGES_STREAM)
        self.health_key = settings.key(HEALTH_KEY)
        self.consumer = consumer or f"{socket.gethostname()}-{threading.get_native_id()}"
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.stats = IngestStats()
        self._backlog_done = False
        self._last_claim = 0.0

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, CONSUMER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self) -> list[tuple[str, dict[str, str]]]:
        # First our own pending entries (after a crash), then new ones.
        if not self._backlog_done:
            resp = self.client.xreadgroup(CONSUMER_GROUP, self.consumer, {self.stream: "0"},
                                          count=self.batch_size)
            entries = resp[0][1] if resp else []
            if entries:
                return entries
            self._backlog_done = True
        if time.monotonic() - self._last_claim > self.claim_idle_ms / 1000:
            self._last_claim = time.monotonic()
            claimed = self.client.xautoclaim(self.stream, CONSUMER_GROUP, self.consumer,
                                             min_idle_time=self.claim_idle_ms, start_id="0-0",
                                             count=self.batch_size)
            if claimed and claimed[1]:
                log.info("claimed %d entries of a stalled consumer", len(claimed[1]))
                return [(eid, f) for eid, f in claimed[1] if f is not None]
        resp = self.client.xreadgroup(CONSUMER_GROUP, self.consumer, {self.stream: ">"},
                                      count=self.batch_size, block=self.block_ms)
        return resp[0][1] if resp else []

    def step(self) -> int:
        """Read, apply and ack one batch; returns the number of entries handled."""
        entries = self._read()
        self.heartbeat()
        if not entries:
            return 0
        now = datetime.now(timezone.utc)
        incoming: list[Incoming] = []
        dead: list[tuple[str, dict[str, str], str]] = []
        for entry_id, fields in entries:
            try:
                message = decode_entry(fields)
                if message.occurred_at > now + FUTURE_TOLERANCE:
                    raise ValueError(f"occurred_at {message.occurred_at.isoformat()} is in the future")
            except ValidationError as exc:
                dead.append((entry_id, fields, "schema: " + _first_error(exc)))
                continue
            except ValueError as exc:
                dead.append((entry_id, fields, str(exc)))
                continue
            incoming.append(Incoming(message.to_lifecycle(), source=message.source,
                                     actor=message.actor,
                                     payload=orjson.loads(message.model_dump_json(exclude_none=True)),
                                     origin=entry_id))
        result = self._apply(incoming)
        for item, reason in result.rejected:
            dead.append((item.origin, _entry_of(entries, item.origin), reason))
        pipe = self.client.pipeline(transaction=True)
        for entry_id, fields, reason in dead:
            pipe.xadd(self.dead_stream, {
                "entry_id": entry_id, "reason": reason, "consumer": self.consumer,
                "at": now.isoformat(), "stream": self.stream,
                "fields": orjson.dumps(fields).decode(),
            })
        pipe.xack(self.stream, CONSUMER_GROUP, *[eid for eid, _ in entries])
        if result.case_ids:
            pipe.xadd(self.changes_stream, {
                "cases": ",".join(sorted(result.case_ids)),
                "grids": ",".join(sorted(result.grid_codes)),
                "units": ",".join(sorted(result.unit_codes)),
                "at": now.isoformat(),
            }, maxlen=CHANGES_MAXLEN, approximate=True)
        pipe.hincrby(self.health_key, "applied_total", result.applied)
        pipe.hincrby(self.health_key, "duplicates_total", result.duplicates)
        pipe.hincrby(self.health_key, "dead_total", len(dead))
        pipe.hset(self.health_key, "last_batch_at", now.isoformat())
        pipe.execute()
        self.stats.applied += result.applied
        self.stats.duplicates += result.duplicates
        self.stats.dead += len(dead)
        self.stats.batches += 1
        return len(entries)

    def _apply(self, incoming: list[Incoming]) -> ApplyResult:
        if not incoming:
            return ApplyResult()
        with transaction(self.sessions) as session:
            result = apply_events(session, incoming, self.ref)
        if result.rejected and time.monotonic() - self.ref.loaded_at > 30:
            # Reference data may have been imported since we loaded it: retry those once.
            self.ref.reload(self.sessions)
            retry = [item for item, _ in result.rejected]
            with transaction(self.sessions) as session:
                again = apply_events(session, retry, self.ref)
            result.rejected = again.rejected
            result.applied += again.applied
            result.case_ids |= again.case_ids
            result.grid_codes |= again.grid_codes
            result.unit_codes |= again.unit_codes
        return result

    def heartbeat(self) -> None:
        self.client.hset(self.health_key, mapping={
            "heartbeat_at": datetime.now(timezone.utc).isoformat(),
            "consumer": self.consumer,
        })

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; Redis or database outages are retried with backoff."""
        delay = 0.5
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self.step()
                    delay = 0.5
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
            except Exception as exc:  # database away or a bug: keep entries pending, retry
                log.exception("batch failed (%s); entries stay pending; retrying in %.1fs", exc, delay)
                self._backlog_done = False
            stop.wait(delay)
            delay = min(delay * 2, 30)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    return f"{where}: {err['msg']}"


def _entry_of(entries: list[tuple[str, dict[str, str]]], entry_id: str) -> dict[str, str]:
    for eid, fields in entries:
        if eid == entry_id:
            return fields
    return {}
