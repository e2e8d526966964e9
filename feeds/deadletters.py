"""Read and re-drive the dead-letter stream.

The ingest writes one dead letter per entry it could not apply, with the fields
``entry_id``, ``stream`` (where the entry came from), ``reason``, ``reason_code`` (a
:class:`DeadReason` value; older entries lack it and get one inferred from the reason text),
``consumer``, ``at`` (ISO UTC) and ``fields`` (JSON of the original entry's fields). An entry
over :data:`KEEP_WHOLE_BYTES` is kept as a truncated copy with a ``truncated`` field (sizes and
SHA-256 of the original fields). The stream is capped at ``GRIDHALL_DEADLETTER_MAXLEN``
entries; what the cap trims is counted in ``deadletters:trimmed`` (:class:`DeadLetterSink`).

Re-driving appends the original fields unchanged to the stream they came from and deletes
the dead letter, atomically per entry. If the entry fails again, the ingest dead-letters it
again under a new id.

No CLI framework in here: ``cli/deadletters.py`` does the tables and the printing.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, cast

import orjson
import redis

from dashboard.rules.clock import utcnow
from dashboard.settings import Settings

from .connection import is_cluster, run_script
from .contract import ENTRY_FIELD, MAX_PAYLOAD_BYTES, DeadReason
from .defaults import DEAD_LETTERS_SHOWN
from .keys import (
    CASE_STREAM,
    DEAD_COUNTS_KEY,
    DEAD_LETTER_STREAM,
    DEAD_SEEN_KEEP_S,
    DEAD_SEEN_KEY,
    DEAD_TRIMMED_KEY,
    case_streams,
    stream_id,
)

PAGE = 500

# A dead letter keeps the original entry whole up to the contract's own payload limit (one
# definition: MAX_PAYLOAD_BYTES), measured as the UTF-8 bytes of its field names and values,
# so every entry the ingest could ever apply stays re-drivable.
KEEP_WHOLE_BYTES = MAX_PAYLOAD_BYTES
# A larger entry can never be applied or re-driven. Its copy keeps the first 4 KiB of its
# values (event_id, case_id and type usually come first: enough to recognise it) plus the size
# and SHA-256 of every original field, so it can be matched with the producer's copy. Without
# this, 100 entries of 1 MB made the stream 94 MB; now each costs about 5 KB.
TRUNCATED_BYTES = 4 * 1024
TRUNCATED_NAME_BYTES = 256  # a field name is cut too (a 1 MB name is as big as a 1 MB value)
TRUNCATED_MAX_FIELDS = 32  # fields recorded of an entry with very many
REASON_MAX_CHARS = 2000  # a reason quotes field names, which the producer chose
# `gridhall check` warns when the stream holds this share of its cap: the oldest are next.
WARN_FILL = 0.8
Page = list[tuple[str, dict[str, str]]]  # XRANGE with decode_responses

# How the reason text of a dead letter without ``reason_code`` reads, per code (first match).
_INFER = [
    (re.compile(r"larger than \d+ KB"), DeadReason.OVERSIZED),
    (re.compile(r"^not JSON|has no '?\w+'? field|payload must be an object"), DeadReason.UNDECODABLE),
    (re.compile(r"in the future"), DeadReason.FUTURE),
    (re.compile(r"^unknown classification"), DeadReason.UNKNOWN_CLASS),
    (re.compile(r"^unknown grid"), DeadReason.UNKNOWN_GRID),
    (re.compile(r"^unknown unit"), DeadReason.UNKNOWN_UNIT),
    (re.compile(r"^outside the city"), DeadReason.OUTSIDE_CITY),
    (re.compile(r"^schema"), DeadReason.SCHEMA),
    (re.compile(r"不能发生在阶段"), DeadReason.TRANSITION),
]

# Re-driving cannot help: the entry is broken in itself, or the transition is impossible
# whatever arrives later. (``future`` can succeed later; the ``unknown_*`` ones after an import.)
NOT_RETRYABLE = frozenset({DeadReason.UNDECODABLE, DeadReason.OVERSIZED, DeadReason.SCHEMA,
                           DeadReason.TRANSITION})

# Delete the dead letter and, only if it was still there, append the original entry:
# atomic like MULTI/EXEC, and two operators retrying at once cannot duplicate an entry.
_REDRIVE = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
"""


# Append the dead letters of one batch, then trim to the cap and count what the trim removed,
# all in one atomic step. XADD's MAXLEN does not say how many entries it removed; XTRIM does.
# Because the script runs atomically, each trimmed entry is removed by exactly one XTRIM and
# counted by the INCRBY of that same step: concurrent ingest workers neither miss nor
# double-count one, and no crash can separate a trim from its count. Entries deleted by
# `deadletters retry` (XDEL) are not trims and are not counted. "~" trims whole stream nodes
# only (Redis' own approximate trimming), so the length stays at most a node (100 entries by
# default) above the cap and trimming costs next to nothing.
# Each letter also counts in the per-reason hash (KEYS[3]). With "once" (ARGV[2] = 1: the
# ingest's letters) a letter whose "<stream> <entry_id>" is already in KEYS[4] is skipped: the
# ingest writes its dead letters before its XACK (no MULTI across a cluster's slots), so a crash
# in between delivers the entry again, and it must not cost a second letter. KEYS[4] forgets
# what is older than ARGV[4] ms (ARGV[3]: now, ms). All four keys carry the tag {deadletters}.
_WRITE = """
local once = ARGV[2] == '1'
local now = tonumber(ARGV[3])
if once then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[4])) end
local i = 5
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local fresh = true
  local entry, stream, code = '', '', ''
  for j = i + 1, i + n, 2 do
    if ARGV[j] == 'entry_id' then entry = ARGV[j + 1]
    elseif ARGV[j] == 'stream' then stream = ARGV[j + 1]
    elseif ARGV[j] == 'reason_code' then code = ARGV[j + 1] end
  end
  if once and entry ~= '' then
    fresh = redis.call('ZADD', KEYS[4], 'NX', now, stream .. ' ' .. entry) == 1
  end
  if fresh then
    redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + n))
    if code ~= '' then redis.call('HINCRBY', KEYS[3], code, 1) end
  end
  i = i + n + 1
end
local trimmed = redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1])
if trimmed > 0 then redis.call('INCRBY', KEYS[2], trimmed) end
return trimmed
"""


def entry_bytes(fields: dict[str, str]) -> int:
    """The size of an entry as the dead-letter limits measure it: UTF-8 bytes of names and values."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in fields.items())


def _cut(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:max(0, limit)].decode("utf-8", "ignore")  # never half a character


def dead_letter_record(*, entry_id: str, stream: str, reason: str, code: str, consumer: str,
                       at: str, fields: dict[str, str]) -> dict[str, str]:
    """The fields of one dead letter: the original entry whole, or a truncated copy of it."""
    if len(reason) > REASON_MAX_CHARS:
        reason = reason[:REASON_MAX_CHARS] + "…"
    record = {"entry_id": entry_id, "stream": stream, "reason": reason, "reason_code": code,
              "consumer": consumer, "at": at}
    fields = {str(name): str(value) for name, value in fields.items()}
    size = entry_bytes(fields)
    if size <= KEEP_WHOLE_BYTES:
        record["fields"] = orjson.dumps(fields).decode()
        return record
    kept: dict[str, str] = {}
    originals: dict[str, dict[str, Any]] = {}
    budget = TRUNCATED_BYTES
    for name, value in list(fields.items())[:TRUNCATED_MAX_FIELDS]:
        raw = value.encode()
        short = _cut(name, TRUNCATED_NAME_BYTES)
        piece = _cut(value, budget)
        budget -= len(piece.encode())
        kept[short] = piece
        originals[short] = {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    record["fields"] = orjson.dumps(kept).decode()
    record["truncated"] = orjson.dumps({
        "bytes": size, "field_count": len(fields), "kept_bytes": TRUNCATED_BYTES,
        "fields": originals,
    }).decode()
    return record


class DeadLetterSink:
    """Where the ingest and the bridges write dead letters: the capped stream, its trim counter,
    the per-reason counts and (for the ingest) the entries already dead-lettered."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.stream = settings.key(DEAD_LETTER_STREAM)
        self.trimmed_key = settings.key(DEAD_TRIMMED_KEY)
        self.counts_key = settings.key(DEAD_COUNTS_KEY)
        self.seen_key = settings.key(DEAD_SEEN_KEY)
        self.maxlen = settings.deadletter_maxlen
        self._write = client.register_script(_WRITE)

    def add(self, pipe: Any, records: list[dict[str, str]], *, once: bool = False) -> None:
        """Queue the dead letters on ``pipe`` (one atomic script call for all of them), each
        counted under its ``reason_code``. ``once``: skip an entry (``stream`` + ``entry_id``)
        already dead-lettered in the last DEAD_SEEN_KEEP_S."""
        if not records:
            return
        args: list[str | int] = [self.maxlen, int(once), int(time.time() * 1000), DEAD_SEEN_KEEP_S * 1000]
        for record in records:
            flat = [part for item in record.items() for part in item]
            args += [len(flat), *flat]
        run_script(self._write, pipe, [self.stream, self.trimmed_key, self.counts_key, self.seen_key], args)


def infer_code(reason: str) -> str | None:
    """The reason code a reason text stands for, for dead letters written before codes."""
    for pattern, code in _INFER:
        if pattern.search(reason):
            return code.value
    return None


@dataclass(frozen=True)
class DeadLetter:
    """One entry of the dead-letter stream."""

    id: str
    data: dict[str, str]

    @property
    def reason(self) -> str:
        return self.data.get("reason", "")

    @property
    def reason_code(self) -> str | None:
        """As written by the ingest; None for dead letters written before reason codes."""
        return self.data.get("reason_code") or None

    @property
    def code(self) -> str | None:
        """The reason code, inferred from the reason text when the ingest did not write one."""
        return self.reason_code or infer_code(self.reason)

    @property
    def code_inferred(self) -> bool:
        return self.reason_code is None and self.code is not None

    @property
    def entry_id(self) -> str | None:
        return self.data.get("entry_id")

    @property
    def bridge(self) -> str | None:
        """The bridge that dead-lettered a source record (feeds/bridges/); None for the ingest's."""
        return self.data.get("bridge") or None

    @property
    def stream(self) -> str | None:
        return self.data.get("stream") or None

    @property
    def consumer(self) -> str | None:
        return self.data.get("consumer")

    @property
    def at(self) -> datetime:
        """When it was dead-lettered: the ``at`` field, else the time in the entry id."""
        text = self.data.get("at")
        if text:
            try:
                value = datetime.fromisoformat(text)
                return value if value.tzinfo else value.replace(tzinfo=UTC)
            except ValueError:
                pass
        return id_time(self.id)

    @property
    def fields(self) -> dict[str, Any] | None:
        """The original entry's fields; None when missing or not a JSON object."""
        try:
            value = orjson.loads(self.data.get("fields", ""))
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def event(self) -> dict[str, Any] | None:
        """The event JSON of the original entry when it parses as an object."""
        return self.json_field(ENTRY_FIELD)

    def json_field(self, name: str) -> dict[str, Any] | None:
        """The original entry's field ``name`` as a JSON object, or None when absent or not one."""
        raw = (self.fields or {}).get(name)
        if not isinstance(raw, str):
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def event_id(self) -> str | None:
        value = (self.event or {}).get("event_id")
        return str(value) if value is not None else None

    @property
    def case_id(self) -> str | None:
        value = (self.event or {}).get("case_id")
        return str(value) if value is not None else None

    @property
    def truncated(self) -> dict[str, Any] | None:
        """For a truncated copy: ``bytes`` (original size), ``field_count``, ``kept_bytes`` and
        ``fields`` (name → original ``bytes`` and ``sha256``); None when kept whole."""
        raw = self.data.get("truncated")
        if not raw:
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def retryable(self) -> bool:
        """Whether it can be re-driven at all: its original fields were recorded whole."""
        return bool(self.fields) and self.truncated is None

    def hopeless(self) -> bool:
        """True when re-driving cannot help (the entry itself is broken)."""
        return self.code in NOT_RETRYABLE or self.truncated is not None


def id_time(entry_id: str) -> datetime:
    """When Redis added the entry (the epoch for an id that is not one)."""
    return datetime.fromtimestamp(stream_id(entry_id)[0] / 1000, UTC)


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, tz: tzinfo, now: datetime | None = None) -> datetime:
    """ISO date/time (naive = city time), or a span back from now such as 30m, 2h, 7d."""
    match = _RELATIVE.match(text)
    if match:
        span = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        return (now or utcnow()) - span
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO date/time or a span like 30m, 2h, 7d: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


@dataclass
class DeadLetters:
    """The dead-letter stream of one deployment."""

    client: redis.Redis
    settings: Settings
    stream: str = field(init=False)
    counts_key: str = field(init=False)

    def __post_init__(self) -> None:
        self.stream = self.settings.key(DEAD_LETTER_STREAM)
        self.counts_key = self.settings.key(DEAD_COUNTS_KEY)
        self.trimmed_key = self.settings.key(DEAD_TRIMMED_KEY)

    # -- reading -----------------------------------------------------------------------
    def count(self) -> int:
        return int(self.client.xlen(self.stream))

    @property
    def maxlen(self) -> int:
        return self.settings.deadletter_maxlen

    def trimmed(self) -> int:
        """Dead letters removed by the cap, ever (``deadletters:trimmed``)."""
        return int(self.client.get(self.trimmed_key) or 0)

    def counts(self) -> dict[str, int]:
        """The per-reason counters the ingest keeps (``deadletters:counts``), largest first."""
        raw = cast(dict[str, str], self.client.hgetall(self.counts_key))
        counts = {}
        for code, value in raw.items():
            try:
                counts[code] = int(value)
            except ValueError:
                continue
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def get(self, dead_id: str) -> DeadLetter | None:
        try:
            found = cast(Page, self.client.xrange(self.stream, min=dead_id, max=dead_id, count=1))
        except redis.ResponseError:  # not a valid stream id
            return None
        return DeadLetter(*found[0]) if found else None

    def newest(
        self,
        *,
        reason: str | None = None,
        since: datetime | None = None,
        limit: int | None = DEAD_LETTERS_SHOWN,
    ) -> list[DeadLetter]:
        """Newest first, filtered by reason code and time."""
        found: list[DeadLetter] = []
        for letter in self._scan(reverse=True, since=since):
            if reason is not None and letter.code != reason:
                continue
            if since is not None and letter.at < since:
                continue
            found.append(letter)
            if limit is not None and len(found) >= limit:
                break
        return found

    def select(self, *, reason: str | None = None) -> list[DeadLetter]:
        """Every dead letter present now (oldest first), optionally of one reason code.

        The scan stops at the newest entry present when it starts, so entries dead-lettered
        again while a retry runs are not picked up a second time.
        """
        last = cast(Page, self.client.xrevrange(self.stream, count=1))
        if not last:
            return []
        upto = last[0][0]
        return [letter for letter in self._scan(reverse=False, upto=upto)
                if reason is None or letter.code == reason]

    def _scan(self, *, reverse: bool, since: datetime | None = None,
              upto: str | None = None) -> Iterator[DeadLetter]:
        # Entry ids carry the time they were added: use it to bound the scan by --since
        # (with a minute of slack for the ``at`` stamp, which is the batch's start).
        low = "-"
        if since is not None:
            low = str(max(0, int((since.timestamp() - 60) * 1000)))
        high = upto or "+"
        while True:
            if reverse:
                page = cast(Page, self.client.xrevrange(self.stream, max=high, min=low, count=PAGE))
            else:
                page = cast(Page, self.client.xrange(self.stream, min=low, max=high, count=PAGE))
            for entry_id, data in page:
                yield DeadLetter(entry_id, data)
            if len(page) < PAGE:
                return
            if reverse:
                high = "(" + page[-1][0]
            else:
                low = "(" + page[-1][0]

    # -- re-driving ----------------------------------------------------------------------
    def target(self, letter: DeadLetter) -> str:
        """The stream to re-drive into: where the entry came from (the main one if unknown)."""
        return letter.stream or self.settings.key(CASE_STREAM)

    def unread_targets(self, letters: Iterable[DeadLetter]) -> list[str]:
        """Target streams the ingest of these settings does not read."""
        return sorted({self.target(letter) for letter in letters} - set(case_streams(self.settings)))

    def retry(self, letters: Iterable[DeadLetter], *, dry_run: bool = False) -> RetryResult:
        """Re-drive: XADD each original entry back to its stream and XDEL the dead letter.

        Per entry both happen in one atomic step (a server-side script), and only if the
        dead letter is still there, so nothing is lost or duplicated even when two
        operators retry at once. Entries without recorded fields are skipped.
        """
        result = RetryResult()
        todo: list[DeadLetter] = []
        for letter in letters:
            if letter.bridge is not None:  # a source record, not an entry: mapped again elsewhere
                result.bridged.append(letter)
            elif letter.retryable:
                todo.append(letter)
            else:
                result.unretryable.append(letter)
        if dry_run:
            result.planned = todo
            return result
        if is_cluster(self.client):
            self._retry_cluster(todo, result)
            return result
        script = self.client.register_script(_REDRIVE)
        for start in range(0, len(todo), PAGE):
            chunk = todo[start:start + PAGE]
            pipe = self.client.pipeline(transaction=False)
            for letter in chunk:
                args: list[str] = [letter.id]
                for name, value in (letter.fields or {}).items():
                    args += [name, value if isinstance(value, str) else orjson.dumps(value).decode()]
                script(keys=[self.stream, self.target(letter)], args=args, client=pipe)
            for letter, new_id in zip(chunk, pipe.execute(), strict=True):
                if new_id:
                    result.requeued.append((letter, str(new_id)))
                else:
                    result.gone.append(letter)
        return result


    def _retry_cluster(self, todo: list[DeadLetter], result: RetryResult) -> None:
        """Re-drive in a Redis Cluster, where the dead letters and a case stream are in different
        slots (no script may touch both): the entry is added first, then the dead letter deleted.
        Two operators retrying at once may both add it: a duplicate entry, which the ingest
        applies once (its ``event_id``). A crash in between leaves the letter: retry again."""
        for letter in todo:
            if not self.client.xrange(self.stream, min=letter.id, max=letter.id, count=1):
                result.gone.append(letter)
                continue
            fields = {name: value if isinstance(value, str) else orjson.dumps(value).decode()
                      for name, value in (letter.fields or {}).items()}
            new_id = self.client.xadd(self.target(letter), fields)  # type: ignore[arg-type]
            self.client.xdel(self.stream, letter.id)
            result.requeued.append((letter, str(new_id)))


@dataclass
class RetryResult:
    requeued: list[tuple[DeadLetter, str]] = field(default_factory=list)  # (letter, new entry id)
    planned: list[DeadLetter] = field(default_factory=list)  # dry run: what would be re-queued
    gone: list[DeadLetter] = field(default_factory=list)  # already removed by someone else
    unretryable: list[DeadLetter] = field(default_factory=list)  # no original fields recorded
    # A bridge's dead letters are never re-sent: feeds.bridges.bridge.retry_bridge_letters maps them again.
    bridged: list[DeadLetter] = field(default_factory=list)
