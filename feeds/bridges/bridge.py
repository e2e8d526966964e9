"""A bridge: another system's records, mapped to case events and published on the case stream.

A bridge is a producer like any other (docs/feed.md): it never writes SQL. For each record of
its inbox (feeds/bridges/inbox.py) its mapper returns the case events (with event ids derived
from the source's own id, so a re-run is absorbed by the ingest's idempotency), or raises
:class:`Unmappable` with a reason code; then the bridge writes either the events or one dead
letter — into the same dead-letter stream the ingest uses, with ``bridge``, ``reason_code``,
``reason`` and the (scrubbed) source record — together with the inbox's checkpoint in one
MULTI/EXEC transaction. A kill at any point therefore loses and duplicates nothing.

Mappers are registered by bridge name (:func:`register`), so ``gridhall deadletters retry``
maps a bridge's dead letter again with the current mapping (:func:`retry_bridge_letters`):
it never re-sends the raw record as a case event.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from pydantic import ValidationError

from dashboard.rules.clock import utcnow
from dashboard.settings import Settings

from ..connection import is_cluster
from ..contract import CaseEventMessage, DeadReason
from ..deadletters import DeadLetter, DeadLetterSink, dead_letter_record
from ..keys import CASE_STREAM, DEAD_LETTER_STREAM, bridge_dead_key
from .inbox import Inbox, InboxRecord

log = logging.getLogger(__name__)

RECORD_FIELD = "record"  # the dead letter's ``fields`` hold {"record": <the source record as JSON>}


class Unmappable(Exception):
    """A source record the mapper cannot turn into case events.

    ``code`` is a reason code (a :class:`DeadReason` value such as ``unmapped_class``,
    ``bad_time``, ``no_place``, ``bad_record``); ``reason`` says which field and why.
    """

    def __init__(self, code: str | DeadReason, reason: str) -> None:
        super().__init__(reason)
        self.code = str(code.value if isinstance(code, DeadReason) else code)
        self.reason = reason


Mapper = Callable[[dict[str, Any]], list[CaseEventMessage]]


def _keep(raw: dict[str, Any]) -> dict[str, Any]:
    return raw


@dataclass(frozen=True)
class BridgeSpec:
    """What the registry knows of a bridge: how to build its mapper from the settings, and how
    to scrub a source record (mask personal data) before it is kept in a dead letter."""

    name: str
    mapper: Callable[[Settings], Mapper]
    scrub: Callable[[dict[str, Any]], dict[str, Any]] = _keep


_REGISTRY: dict[str, BridgeSpec] = {}


def register(spec: BridgeSpec) -> BridgeSpec:
    _REGISTRY[spec.name] = spec
    return spec


def registered(name: str) -> BridgeSpec | None:
    """The bridge of that name; importing the bridge modules registers them."""
    _load_builtin()
    return _REGISTRY.get(name)


def _load_builtin() -> None:
    import importlib

    for module in BUILTIN:
        try:
            importlib.import_module(module)
        except ImportError:  # pragma: no cover - a bridge not on this branch
            log.debug("bridge module %s not available", module)


# The bridge modules that register themselves (a new bridge adds its module here).
BUILTIN = ("feeds.bridges.hotline", "feeds.bridges.alarms")


@dataclass
class BridgeStats:
    records: int = 0
    events: int = 0
    dead: int = 0

    def __str__(self) -> str:
        return f"records {self.records:,}, events published {self.events:,}, dead letters {self.dead:,}"


def map_record(mapper: Mapper, raw: dict[str, Any]) -> list[CaseEventMessage]:
    """The mapper's events; a contract refusal of what it built is an Unmappable ``bad_record``."""
    try:
        return mapper(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = str(err["loc"][0]) if err["loc"] else "record"
        raise Unmappable(DeadReason.BAD_RECORD, f"the case event breaks the contract: {where}: {err['msg']}") from None


class Bridge:
    """Read an inbox, map each record, publish its events or dead-letter it, checkpoint."""

    def __init__(self, name: str, mapper: Mapper, client: redis.Redis, settings: Settings, *,
                 scrub: Callable[[dict[str, Any]], dict[str, Any]] = _keep,
                 stream: str | None = None) -> None:
        self.name = name
        self.mapper = mapper
        self.scrub = scrub
        self.client = client
        self.settings = settings
        self.stream = stream or settings.key(CASE_STREAM)
        self.sink = DeadLetterSink(client, settings)
        self.consumer = f"bridge:{name}"
        self.seen_key = settings.key(bridge_dead_key(name))
        self.stats = BridgeStats()

    def handle(self, inbox: Inbox, record: InboxRecord) -> None:
        """Publish one record's events (or its dead letter) with its checkpoint, atomically."""
        messages: list[CaseEventMessage] = []
        failure: Unmappable | None = None
        if record.error is not None:
            failure = Unmappable(DeadReason.BAD_RECORD, record.error)
        else:
            try:
                messages = map_record(self.mapper, record.raw)
            except Unmappable as exc:
                failure = exc
        # One MULTI on a server; in a Redis Cluster these keys are in several slots, so a plain
        # pipeline there (a kill in the middle may repeat a record's events: the ingest applies
        # an event_id once).
        pipe = self.client.pipeline(transaction=not is_cluster(self.client))
        if failure is not None:
            letter = self.dead_letter(record, inbox.source, failure)
            # The same record dead-lettered for the same reason before (a re-run on the same
            # input): only the checkpoint moves.
            digest = hashlib.sha256(f"{failure.code}\n{letter['fields']}".encode()).hexdigest()[:32]
            if not self.client.sismember(self.seen_key, digest):
                pipe.sadd(self.seen_key, digest)  # in the transaction: a kill cannot lose the letter
                self.sink.add(pipe, [letter])  # counted under its reason code by the same script
            else:
                failure = None
        for message in messages:
            pipe.xadd(self.stream, message.to_entry())
        inbox.done(record, pipe)
        pipe.execute()
        self.stats.records += 1
        self.stats.events += len(messages)
        self.stats.dead += failure is not None

    def dead_letter(self, record: InboxRecord, source: str, failure: Unmappable) -> dict[str, str]:
        raw = self.scrub(record.raw)
        letter = dead_letter_record(
            entry_id=record.origin, stream=source, reason=failure.reason, code=failure.code,
            consumer=self.consumer, at=utcnow().isoformat(),
            fields={RECORD_FIELD: orjson.dumps(raw, default=str).decode()})
        letter["bridge"] = self.name
        return letter

    def run_once(self, inbox: Inbox, stop: threading.Event | None = None) -> int:
        """One pass over what the inbox has now; returns the records handled."""
        handled = 0
        for record in inbox.records():
            self.handle(inbox, record)
            handled += 1
            if stop is not None and stop.is_set():
                break
        else:
            inbox.finish()
        return handled

    def run(self, inbox: Inbox, stop: threading.Event, *, idle_s: float = 1.0,
            between: Callable[[], object] | None = None) -> None:
        """Passes until ``stop`` is set; ``between`` runs after each pass (e.g. the replies)."""
        while not stop.is_set():
            try:
                handled = self.run_once(inbox, stop)
            except (redis.ConnectionError, redis.TimeoutError):  # Redis away: the checkpoint holds, try again
                log.exception("bridge %s cannot reach Redis; retrying", self.name)
                stop.wait(max(idle_s, 1.0))
                continue
            if between is not None:
                try:
                    between()
                except Exception:  # the replies are a side task: a database hiccup must not stop the intake
                    log.exception("bridge %s: the pass after the inbox failed; retrying next pass", self.name)
            if not handled:
                stop.wait(idle_s)


# -- retrying a bridge's dead letters ---------------------------------------------------------------
# Delete the dead letter and, only if it was still there, append the events: atomic, so two
# operators retrying at once cannot publish twice.
_REMAP = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
for i = 2, #ARGV do redis.call('XADD', KEYS[2], '*', 'event', ARGV[i]) end
return #ARGV - 1
"""


def letter_bridge(letter: DeadLetter) -> str | None:
    """The bridge that wrote this dead letter (None: the ingest's)."""
    return letter.data.get("bridge") or None


def letter_record(letter: DeadLetter) -> dict[str, Any] | None:
    """The source record a bridge kept in its dead letter."""
    return letter.json_field(RECORD_FIELD)


@dataclass
class RemapResult:
    published: list[tuple[DeadLetter, int]] = field(default_factory=list)  # (letter, events published)
    planned: list[tuple[DeadLetter, int]] = field(default_factory=list)  # dry run
    still: list[tuple[DeadLetter, Unmappable]] = field(default_factory=list)  # fails again: kept
    gone: list[DeadLetter] = field(default_factory=list)  # removed meanwhile by someone else
    unknown: list[DeadLetter] = field(default_factory=list)  # no such bridge, or no record kept


def retry_bridge_letters(client: redis.Redis, settings: Settings, letters: Iterable[DeadLetter],
                         *, dry_run: bool = False) -> RemapResult:
    """Map each bridge dead letter's record again with the current mapping.

    Mapped: its events are published and the dead letter deleted, atomically. Still
    unmappable: the dead letter stays (with its old reason) and the new reason is reported.
    """
    result = RemapResult()
    mappers: dict[str, Mapper] = {}
    script = client.register_script(_REMAP)
    dead_stream = settings.key(DEAD_LETTER_STREAM)
    for letter in letters:
        name = letter_bridge(letter)
        spec = registered(name) if name else None
        raw = letter_record(letter)
        if spec is None or raw is None:
            result.unknown.append(letter)
            continue
        if spec.name not in mappers:
            mappers[spec.name] = spec.mapper(settings)
        try:
            messages = map_record(mappers[spec.name], raw)
        except Unmappable as exc:
            result.still.append((letter, exc))
            continue
        if dry_run:
            result.planned.append((letter, len(messages)))
            continue
        events = [m.to_entry()["event"] for m in messages]
        if is_cluster(client):  # two slots: add the events, then delete the letter (see DeadLetters.retry)
            done = None
            if client.xrange(dead_stream, min=letter.id, max=letter.id, count=1):
                for event in events:
                    client.xadd(settings.key(CASE_STREAM), {"event": event})
                client.xdel(dead_stream, letter.id)
                done = len(events)
        else:
            done = script(keys=[dead_stream, settings.key(CASE_STREAM)], args=[letter.id, *events])
        if done is None:
            result.gone.append(letter)
        else:
            result.published.append((letter, len(messages)))
    return result
