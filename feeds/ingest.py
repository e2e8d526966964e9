"""The ingest: read the case streams with a consumer group, apply batches to SQL, then ack.

At-least-once delivery from Redis plus idempotent apply (unique ``event_id``) gives
effectively-once effects. A batch is committed in one transaction before its entries are
acknowledged, so a crash between the two only causes a harmless redelivery. What cannot be
applied goes to the dead-letter stream with the reason; nothing is dropped silently.

After the commit (``_finish``) the writes go in this order: first the dead letters (one
script, deduplicated by entry: a redelivered entry is not dead-lettered twice) and the change
and control notices, then the XACKs. So an acknowledged entry always has its dead letter and
its notice, and a crash in between only repeats a notice (harmless: a follower re-reads the
cases) — no MULTI across keys, which a Redis Cluster would refuse (CROSSSLOT). The health hash
and the minute counters follow, plain. In a cluster, several case streams (shards) are read
one stream per command, as their keys live in different slots (``_xreadgroup``).
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import orjson
import redis
from redis.typing import KeyT, StreamIdT
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.alerts import AlertRules, AlertStep
from dashboard.rules.clock import utcnow
from dashboard.settings import Settings
from dashboard.store.alerts import ALERT_NOTICE, clear_ended, escalate_due, notice_ref, raise_alerts
from dashboard.store.casebook import ApplyResult, CaseRace, Incoming, apply_events, expire_illegal
from dashboard.store.db import transaction
from dashboard.store.reference import Reference

from .connection import copy_client, is_cluster
from .contract import FUTURE_TOLERANCE, DeadReason, FeedError, parse_event
from .control import add_notices
from .deadletters import DeadLetterSink, dead_letter_record
from .defaults import BATCH_SIZE, CLAIM_IDLE_MS, ILLEGAL_GRACE_S
from .keys import (
    CHANGES_MAXLEN,
    CHANGES_STREAM,
    CONSUMER_GROUP,
    CONTROL_STREAM,
    DEAD_LETTER_STREAM,
    HEALTH_KEY,
    LEGACY_KEYS,
    applied_minute_key,
    case_streams,
)

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 30
ESCALATE_EVERY_S = 1.0  # how often the loop escalates due alerts: walls learn of it within about a second
REFERENCE_STALE_S = 30  # reference data older than this is reloaded before an event is refused or kept 未定位
APPLY_ATTEMPTS = 5  # a batch that loses a race (same new case, deadlock) is simply redone

Entry = tuple[str, str, dict[bytes, bytes]]  # (stream, entry id, fields as read: raw bytes)
# XREADGROUP's reply on the bytes client: per stream, its entries (a deleted one has no fields).
_GroupReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]]


@dataclass
class IngestStats:
    applied: int = 0
    duplicates: int = 0
    dead: int = 0
    batches: int = 0
    retries: int = 0

    def __str__(self) -> str:
        """One readable line, as the CLI prints it when an ingest stops."""
        return (f"applied {self.applied:,}, duplicates {self.duplicates:,}, dead letters {self.dead:,}, "
                f"batches {self.batches:,}, retries {self.retries:,}")


@dataclass
class _Dead:
    stream: str
    entry_id: str
    fields: dict[str, str]
    code: str
    reason: str


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
        batch_size: int = BATCH_SIZE,
        block_ms: int = 1000,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        illegal_grace_s: float = ILLEGAL_GRACE_S,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client
        self.ref = ref
        self.streams = case_streams(settings)
        self.stream = self.streams[0]
        self.dead_stream = settings.key(DEAD_LETTER_STREAM)
        self.dead_letters = DeadLetterSink(client, settings)
        self.changes_stream = settings.key(CHANGES_STREAM)
        self.control_stream = settings.key(CONTROL_STREAM)
        # Alerts for 突发事件 (dashboard/rules/alerts.py): raised with the case change, escalated by the loop.
        self.alert_rules = AlertRules.from_settings(settings, ref.classification)
        self._last_escalation = 0.0
        self.health_key = settings.key(HEALTH_KEY)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.illegal_grace_s = illegal_grace_s
        self._last_sweep = 0.0
        self.stats = IngestStats()
        # Entries are read as bytes and decoded one by one: a producer that writes invalid
        # UTF-8 must cost one dead letter, not a reply the client cannot parse at all.
        self.reader = _bytes_client(client)
        self._backlog_done = False
        self._last_claim = 0.0
        # In a cluster the shards' streams are in different slots: one XREADGROUP per stream,
        # and the blocking read goes round them (this is the stream to block on next).
        self.cluster = is_cluster(client)
        self._turn = 0

    # -- reading ---------------------------------------------------------------------------
    def ensure_group(self) -> None:
        if not self.cluster:
            rename_legacy_keys(self.client, self.settings)
        for stream in self.streams:
            try:
                self.client.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def _read(self) -> list[Entry]:
        # First our own pending entries (after a crash or a failed batch), then new ones.
        if not self._backlog_done:
            entries = self._xreadgroup({s: "0" for s in self.streams}, block=None)
            if entries:
                return entries
            self._backlog_done = True
        if time.monotonic() - self._last_claim > self.claim_idle_ms / 1000:
            self._last_claim = time.monotonic()
            claimed = self._claim()
            if claimed:
                return claimed
        return self._xreadgroup({s: ">" for s in self.streams}, block=self.block_ms)

    def _xreadgroup(self, streams: dict[KeyT, StreamIdT], block: int | None) -> list[Entry]:
        if not self.cluster or len(streams) == 1:
            return self._xreadgroup_one(streams, block)
        # A cluster with shards: each stream on its own (they are in different slots). First a
        # quick look at every one, then, if all were empty, a blocking read on one of them in
        # turn, a share of the block time each, so an event on any shard waits at most ~block.
        out: list[Entry] = []
        for key, start in streams.items():
            out += self._xreadgroup_one({key: start}, None, self.batch_size - len(out))
            if len(out) >= self.batch_size:
                break
        if out or not block:
            return out
        keys = list(streams)
        self._turn = (self._turn + 1) % len(keys)
        key = keys[self._turn]
        return self._xreadgroup_one({key: streams[key]}, max(10, block // len(keys)))

    def _xreadgroup_one(self, streams: dict[KeyT, StreamIdT], block: int | None,
                        count: int | None = None) -> list[Entry]:
        resp = cast(_GroupReply | None, self.reader.xreadgroup(
            CONSUMER_GROUP, self.consumer, streams,
            count=count or self.batch_size, block=block))
        return [(_text(stream), _text(eid), fields) for stream, items in (resp or [])
                for eid, fields in items if fields is not None]

    def _claim(self) -> list[Entry]:
        """Take over entries a silent consumer left pending (it died or hangs)."""
        out: list[Entry] = []
        for stream in self.streams:
            claimed = self.reader.xautoclaim(stream, CONSUMER_GROUP, self.consumer,
                                             min_idle_time=self.claim_idle_ms, start_id="0-0",
                                             count=self.batch_size)
            items = claimed[1] if claimed else []
            out += [(stream, _text(eid), f) for eid, f in items if f is not None]
            # Entries deleted from the stream while pending come back as ids only: ack them.
            gone = [_text(g) for g in claimed[2]] if claimed and len(claimed) > 2 else []
            if gone:
                self.client.xack(stream, CONSUMER_GROUP, *gone)
        if out:
            log.info("claimed %d pending entries of a silent consumer", len(out))
        return out

    # -- one batch -------------------------------------------------------------------------
    def sweep(self) -> int:
        """Dead-letter stored events that stayed illegal past the grace period."""
        self._last_sweep = time.monotonic()
        now = utcnow()
        with transaction(self.sessions) as session:
            result = expire_illegal(session, self.ref, now - timedelta(seconds=self.illegal_grace_s))
        if not result.rejected:
            return 0
        dead = [_Dead(self.stream, "", {"event": orjson.dumps(item.payload, default=str).decode()}, code, reason)
                for item, code, reason in result.rejected]
        self._finish([], dead, result, now)
        log.info("dead-lettered %d event(s) that stayed illegal", len(dead))
        return len(dead)

    def escalate(self) -> list[int]:
        """Escalate the district alerts nobody acknowledged in time, then announce them; their ids.

        Every ingest process runs this; the store's ``UPDATE … WHERE escalated_at IS NULL …``
        gives each alert to exactly one of them, which alone sends its notice (after the commit).
        """
        self._last_escalation = time.monotonic()
        with transaction(self.sessions) as session:
            ids = escalate_due(session, self.alert_rules, utcnow())
        if ids:
            pipe = self.client.pipeline(transaction=False)
            add_notices(pipe, self.control_stream, [(ALERT_NOTICE, notice_ref(i, AlertStep.ESCALATED)) for i in ids])
            pipe.execute()
            log.info("escalated %d alert(s) to the city: %s", len(ids), ", ".join(map(str, ids)))
        return ids

    def step(self) -> int:
        """Read, apply and ack one batch; returns the number of entries handled."""
        if time.monotonic() - self._last_sweep > SWEEP_EVERY_S:
            self.sweep()
        if time.monotonic() - self._last_escalation >= ESCALATE_EVERY_S:
            self.escalate()
        entries = self._read()
        self.heartbeat()
        if not entries:
            return 0
        now = utcnow()
        incoming: list[Incoming] = []
        dead: list[_Dead] = []
        origins: dict[str, tuple[str, str, dict[str, str]]] = {}  # origin → the entry, fields decoded
        latest = now + FUTURE_TOLERANCE
        for stream, entry_id, raw_fields in entries:
            try:
                try:  # strict: one decode per field on the hot path
                    fields = {k.decode(): v.decode() for k, v in raw_fields.items()}
                except UnicodeDecodeError as exc:
                    fields = {_text(k): _text(v) for k, v in raw_fields.items()}
                    raise FeedError(DeadReason.UNDECODABLE, f"not UTF-8: {exc}") from None
                event, source, actor, data = parse_event(fields)
                if event.occurred_at > latest:
                    raise FeedError(DeadReason.FUTURE,
                                    f"occurred_at {event.occurred_at.isoformat()} is in the future "
                                    f"(more than {FUTURE_TOLERANCE} ahead of the ingest's clock)")
            except FeedError as exc:
                dead.append(_Dead(stream, entry_id, fields, exc.code.value, str(exc)))
                continue
            origin = f"{stream} {entry_id}"
            origins[origin] = (stream, entry_id, fields)
            incoming.append(Incoming(event, source, actor, data, origin, fields.get("event")))
        result = self._apply(incoming)
        for item, code, reason in result.rejected:
            if item.origin in origins:
                stream, entry_id, fields = origins[item.origin]
            else:  # an event stored by an earlier batch that a later one proved impossible
                stream, entry_id = self.stream, ""
                fields = {"event": orjson.dumps(item.payload, default=str).decode()}
            dead.append(_Dead(stream, entry_id, fields, code, reason))
        self._finish(entries, dead, result, now)
        return len(entries)

    def _apply(self, incoming: list[Incoming]) -> ApplyResult:
        if not incoming:
            return ApplyResult()
        result = self._apply_with_retries(incoming)
        missing = [item for item, code, _ in result.rejected if code.startswith("unknown_") or code == "outside_city"]
        if missing and time.monotonic() - self.ref.loaded_at > REFERENCE_STALE_S:
            # Reference data may have been imported since we loaded it: retry those once.
            self.ref.reload(self.sessions)
            again = self._apply_with_retries(missing)
            retried = {id(i) for i in missing}
            result.rejected = [r for r in result.rejected if id(r[0]) not in retried]
            result.merge(again)
        return result

    def _reload_if_stale(self) -> bool:
        """Reload the reference data if older than REFERENCE_STALE_S; whether it did. Before a
        report is kept 未定位 (its point in no grid): a grid imported since is then found."""
        if time.monotonic() - self.ref.loaded_at <= REFERENCE_STALE_S:
            return False
        self.ref.reload(self.sessions)
        return True

    def _apply_with_retries(self, incoming: list[Incoming]) -> ApplyResult:
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                with transaction(self.sessions) as session:
                    result = apply_events(session, incoming, self.ref, reload=self._reload_if_stale,
                                          alerts=self.alert_rules)
                    if result.alert_candidates or result.alert_ended:
                        # In the same transaction as the case change: never a case without its alert.
                        now = utcnow()
                        result.alerts_raised = raise_alerts(session, result.alert_candidates, self.alert_rules,
                                                            self.ref.grid_districts, now)
                        result.alerts_cleared = clear_ended(session, result.alert_ended, now)
                    return result
            except (IntegrityError, OperationalError, CaseRace) as exc:
                # Another ingest created the same new case first, a deadlock, or a busy
                # SQLite: nothing of this attempt was kept; do the batch again.
                if attempt < APPLY_ATTEMPTS and _is_race(exc):
                    self.stats.retries += 1
                    log.info("batch lost a race (%s); retrying", exc)
                    time.sleep(0.05 * attempt)
                    continue
                if isinstance(exc, OperationalError):
                    raise  # the database is away: keep everything pending, retry later
                return self._isolate(incoming, exc)
            except (DBAPIError, ValueError, ArithmeticError) as exc:
                if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                    raise
                return self._isolate(incoming, exc)
        raise AssertionError("unreachable")

    def _isolate(self, incoming: list[Incoming], exc: Exception) -> ApplyResult:
        """The database refused the batch because of its data: find the entry, apply the rest.

        Halving keeps it cheap (log2 of the batch size extra transactions for one poison
        entry); one entry that still fails alone is dead-lettered with the database's reason.
        """
        if len(incoming) == 1:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            log.warning("dead-lettering %s: %s", incoming[0].event.event_id, reason)
            result = ApplyResult()
            result.rejected.append((incoming[0], DeadReason.UNAPPLIABLE.value,
                                    f"the database refused this entry: {reason}"))
            return result
        mid = len(incoming) // 2
        first = self._apply_with_retries(incoming[:mid])
        first.merge(self._apply_with_retries(incoming[mid:]))
        return first

    def _finish(self, entries: list[Entry], dead: list[_Dead], result: ApplyResult, now: datetime) -> None:
        # 1. What an acknowledged entry must have: its dead letter and its notices. The dead
        #    letters are one script on the {deadletters} slot (capped, counted, deduplicated by
        #    entry: see feeds/deadletters.py); each notice is one XADD.
        pipe = self.client.pipeline(transaction=False)
        self.dead_letters.add(pipe, [
            dead_letter_record(entry_id=d.entry_id, stream=d.stream, reason=d.reason, code=d.code,
                               consumer=self.consumer, at=now.isoformat(), fields=d.fields)
            for d in dead], once=True)
        if result.case_ids:
            pipe.xadd(self.changes_stream, {
                "cases": ",".join(sorted(result.case_ids)),
                "grids": ",".join(sorted(result.grid_codes)),
                "units": ",".join(sorted(result.unit_codes)),
                "at": now.isoformat(),
            }, maxlen=CHANGES_MAXLEN, approximate=True)
        # Alerts raised or cleared by this batch: a control notice each, before the ack (after the commit).
        add_notices(pipe, self.control_stream, [(ALERT_NOTICE, notice_ref(i, AlertStep.RAISED))
                                                for i in result.alerts_raised]
                    + [(ALERT_NOTICE, notice_ref(i, AlertStep.CLEARED)) for i in result.alerts_cleared])
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        if self.cluster and len(pipe):
            # A cluster pipeline sends to each node in its own order: the writes above must be
            # done before any XACK is sent.
            pipe.execute()
            pipe = self.client.pipeline(transaction=False)
        # 2. The acks (one stream, one slot each). A plain server runs one pipeline's commands in order.
        for stream, ids in by_stream.items():
            pipe.xack(stream, CONSUMER_GROUP, *ids)
        # 3. Figures for the wall and monitoring: plain, no atomicity needed.
        if result.applied:
            # Events per minute for the wall, summed over every consumer (a counter per minute).
            minute_key = self.settings.key(applied_minute_key(int(now.timestamp() // 60)))
            pipe.incrby(minute_key, result.applied)
            pipe.expire(minute_key, 180)
        pipe.hincrby(self.health_key, "applied_total", result.applied)
        pipe.hincrby(self.health_key, "duplicates_total", result.duplicates)
        pipe.hincrby(self.health_key, "dead_total", len(dead))
        pipe.hset(self.health_key, "last_batch_at", now.isoformat())
        pipe.execute()
        self.stats.applied += result.applied
        self.stats.duplicates += result.duplicates
        self.stats.dead += len(dead)
        self.stats.batches += 1

    def heartbeat(self) -> None:
        self.client.hset(self.health_key, mapping={
            "heartbeat_at": utcnow().isoformat(),
            "consumer": self.consumer,
        })

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; Redis or database outages are retried with backoff."""
        settle_gc()
        delay = 0.5
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self.step()
                    delay = 0.5
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):  # a restarted Redis without our group: recreate
                    log.exception("Redis refused a command; retrying in %.1fs", delay)
            except DBAPIError as exc:
                log.warning("database unavailable (%s); entries stay pending; retrying in %.1fs",
                            str(exc.orig).strip().splitlines()[0] if exc.orig else exc, delay)
            except Exception:  # a bug must not stop the feed: keep entries pending, retry
                log.exception("batch failed; entries stay pending; retrying in %.1fs", delay)
            # Whatever failed, our unacknowledged entries are re-read first.
            self._backlog_done = False
            stop.wait(delay)
            delay = min(delay * 2, 30)


def settle_gc() -> None:
    """Keep the cyclic garbage collector off the long-lived heap of an ingest process.

    A batch allocates tens of thousands of short-lived objects (decoded entries, events, row
    cells); every few hundred allocations CPython scans the young ones, and every so often the
    whole heap, which in an ingest is mostly the reference data (grid polygons, the
    classification, the calendar) loaded once. Measured with bench/ingest.py: that scanning
    was about a third of the decode's time. ``gc.freeze`` moves what is alive now (the
    reference data, modules) out of every future scan; a larger first threshold makes the
    young scans rarer. Nothing is kept longer: objects are still freed by reference counting,
    and cycles made from now on are still collected. Called once by the ingest loop (and the
    bench), not by library code: it is a process-wide setting.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _bytes_client(client: redis.Redis) -> redis.Redis:
    """A client on the same server (or cluster) that returns raw bytes."""
    return copy_client(client, decode_responses=False)


def rename_legacy_keys(client: redis.Redis, settings: Settings) -> None:
    """Give dead-letter keys written before their hash tag their new names (plain servers only:
    a cluster deployment is new). RENAMENX: never over keys the new names already hold."""
    for old, new in LEGACY_KEYS.items():
        try:
            client.renamenx(settings.key(old), settings.key(new))
        except redis.ResponseError:  # no such key: nothing to rename
            pass


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _is_race(exc: Exception) -> bool:
    if isinstance(exc, (IntegrityError, CaseRace)):
        return True
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).lower()
    return any(
        s in text for s in ("deadlock", "could not serialize", "database is locked", "busy"))
