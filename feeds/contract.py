"""The feed contract: what producers XADD to the case stream, and the Redis keys around it.

One stream entry is one case event: a single field ``event`` holding a JSON object. The
fields below are the contract (schema version 1); docs/feed.md has examples of every type.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dashboard.lifecycle import CASE_FIELDS, EVENT_FIELDS, EventType, LifecycleEvent, satisfaction_score
from dashboard.vocab import Kind, Satisfaction, Source, Urgency

if TYPE_CHECKING:
    from dashboard.settings import Settings

SCHEMA_VERSION = 1
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)  # lower bound for occurred_at/deadline_at
ENTRY_FIELD = "event"
MAX_PAYLOAD_BYTES = 64 * 1024

# Redis key names, each under the deployment's GRIDHALL_REDIS_PREFIX.
CASE_STREAM = "cases"  # producers XADD case events here
DEAD_LETTER_STREAM = "deadletters"  # entries the ingest could not apply, with the reason
CHANGES_STREAM = "changes"  # capped; one notice per committed batch, read by every web worker
HEALTH_KEY = "ingest:health"  # hash: heartbeat and counters of the ingest
DEAD_COUNTS_KEY = "deadletters:counts"  # hash: dead letters per reason code, for the wall
DEAD_TRIMMED_KEY = "deadletters:trimmed"  # counter: dead letters removed by the stream's cap
APPLIED_MINUTE_KEY = "ingest:applied:{minute}"  # counter per UTC minute (epoch minutes), kept 3 min


def applied_minute_key(minute: int) -> str:
    """The per-minute applied counter's key (without prefix) for epoch minute ``minute``."""
    return APPLIED_MINUTE_KEY.format(minute=minute)
CONSUMER_GROUP = "ingest"


def case_streams(settings: "Settings") -> list[str]:
    """Every stream the ingest reads: the main one, plus one per configured shard."""
    base = settings.key(CASE_STREAM)
    return [base] + [f"{base}:{shard}" for shard in settings.feed_shards]


def stream_for(settings: "Settings", grid_code: str | None) -> str:
    """Where a producer that shards by district should XADD an event of this grid."""
    base = settings.key(CASE_STREAM)
    if grid_code and settings.feed_shards and grid_code[:6] in settings.feed_shards:
        return f"{base}:{grid_code[:6]}"
    return base


class DeadReason(StrEnum):
    """Why an entry went to the dead-letter stream (the ``reason_code`` field)."""

    UNDECODABLE = "undecodable"  # no event field, not JSON, not an object
    OVERSIZED = "oversized"  # payload over 64 KB
    SCHEMA = "schema"  # JSON that breaks the contract (types, required fields, version)
    FUTURE = "future"  # occurred_at too far in the future
    UNKNOWN_CLASS = "unknown_class"  # class code not in the active scheme
    UNKNOWN_GRID = "unknown_grid"  # grid code the city does not have
    UNKNOWN_UNIT = "unknown_unit"  # unit code the city does not have
    OUTSIDE_CITY = "outside_city"  # lon/lat in no grid
    TRANSITION = "transition"  # impossible in the closed loop whatever arrives later
    UNAPPLIABLE = "unappliable"  # the database refused this one entry (batch split to find it)


class FeedError(ValueError):
    """An entry that cannot be applied, with the reason code for counters and retries."""

    def __init__(self, code: DeadReason, message: str) -> None:
        super().__init__(message)
        self.code = code


class CaseEventMessage(BaseModel):
    """One case event as a producer sends it (JSON in the ``event`` field of the entry)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    v: int = Field(SCHEMA_VERSION, description="Schema version; 1.")
    event_id: str = Field(min_length=1, max_length=128, description="Producer-unique id; the idempotency key.")
    case_id: str = Field(min_length=1, max_length=64, description="The case this event belongs to.")
    type: EventType = Field(description="What happened (lifecycle event type).")
    occurred_at: datetime = Field(description="When it happened, ISO-8601 with a UTC offset.")
    source: Source | None = Field(None, description="Channel the case came in through.")
    actor: str | None = Field(None, max_length=64, description="Who acted (staff code or system).")
    number: str | None = Field(None, max_length=32, description="Human case number (案件编号).")
    kind: Kind | None = Field(None, description="component (部件) or event (事件).")
    class_code: str | None = Field(None, max_length=32, description="Minor class code (小类) of the active scheme.")
    grid_code: str | None = Field(None, max_length=15, description="Unit grid code (15 or 14 digits).")
    lon: float | None = Field(None, ge=-180, le=180, description="WGS84 longitude.")
    lat: float | None = Field(None, ge=-90, le=90, description="WGS84 latitude.")
    address: str | None = Field(None, max_length=256, description="事发位置 as text.")
    description: str | None = Field(None, max_length=4000, description="Problem description.")
    urgency: Urgency | None = Field(None, description="normal (一般) or urgent (紧急).")
    unit_code: str | None = Field(None, max_length=32, description="Responsible unit code (派遣 target).")
    deadline_at: datetime | None = Field(None, description="A deadline set by the source system.")
    # Strict int: a numeric string, a float or a boolean is not a score (JSON 3, not "3" or 3.0).
    satisfaction: Annotated[int, Field(strict=True, ge=1, le=5)] | Satisfaction | None = Field(
        None, description="回访评价 of a rated event: a score 1–5 (5 best) or a three-level answer.")

    @field_validator("occurred_at", "deadline_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-11-25T09:30:00+08:00")
        # No case of a digital city management system happened before 1990: such a time is a
        # broken device clock (and year 1 with an offset cannot even be stored in UTC).
        # Far-future times are the ingest's "future" reason instead. Aware comparisons do
        # not convert, so this cannot overflow.
        if value < EARLIEST:
            raise ValueError(f"must not be before {EARLIEST:%Y-%m-%d}")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL, and no producer means to send one.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value

    @model_validator(mode="after")
    def _rating(self) -> "CaseEventMessage":
        # The answer belongs to the call-back: required there, meaningless anywhere else.
        rated = self.type is EventType.RATED
        if rated and self.satisfaction is None:
            raise ValueError("a rated event must carry satisfaction (1–5 or satisfied/basically_satisfied/dissatisfied)")
        if not rated and self.satisfaction is not None:
            raise ValueError("satisfaction is only allowed on a rated event")
        return self

    @field_validator("v")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema version {value}; this ingest reads {SCHEMA_VERSION}")
        return value

    def to_lifecycle(self) -> LifecycleEvent:
        fields = {name: getattr(self, name) for name in CASE_FIELDS + EVENT_FIELDS
                  if getattr(self, name) is not None}
        for name in ("kind", "source", "urgency"):
            if name in fields:
                fields[name] = str(fields[name].value)
        if "satisfaction" in fields:  # one scale downstream: a level becomes its 1–5 score
            fields["satisfaction"] = satisfaction_score(fields["satisfaction"])
        return LifecycleEvent(self.event_id, self.case_id, self.type, self.occurred_at, fields)

    def to_entry(self) -> dict[str, str]:
        """The stream entry for XADD."""
        return {ENTRY_FIELD: self.model_dump_json(exclude_none=True)}


def decode_entry(fields: dict[str, Any]) -> CaseEventMessage:
    """Decode one stream entry; raises FeedError with a reason code and a readable message."""
    return parse_entry(fields)[0]


def parse_entry(fields: dict[str, Any]) -> tuple[CaseEventMessage, dict[str, Any]]:
    """Decode one stream entry into the message and the JSON object exactly as sent."""
    raw = fields.get(ENTRY_FIELD)
    if raw is None:
        raise FeedError(DeadReason.UNDECODABLE, f"entry has no {ENTRY_FIELD!r} field (fields: {sorted(fields)})")
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_PAYLOAD_BYTES:
        raise FeedError(DeadReason.OVERSIZED, f"payload of {size} bytes is larger than {MAX_PAYLOAD_BYTES // 1024} KB")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FeedError(DeadReason.UNDECODABLE, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FeedError(DeadReason.UNDECODABLE, "JSON payload must be an object")
    try:
        return CaseEventMessage.model_validate(data), data
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise FeedError(DeadReason.SCHEMA, f"schema: {where}: {err['msg']}{more}") from None


# -- the ingest's fast path ----------------------------------------------------------------------
# Most events are plain: known fields, strings without surrounding white space, times in the
# common RFC 3339 shape. For those, parse_event builds the lifecycle event directly, checking
# exactly what the model checks; anything it is not sure about goes through the model, which
# then decides (and words the dead letter) as always. So the fast path never accepts what the
# model would refuse, and gives the same values for what it accepts.
_STR_LIMITS: dict[str, tuple[int, int]] = {
    name: (next((m.min_length for m in info.metadata if getattr(m, "min_length", None) is not None), 0),
           next(m.max_length for m in info.metadata if getattr(m, "max_length", None) is not None))
    for name, info in CaseEventMessage.model_fields.items()
    if info.annotation in (str, str | None)
}
_ENUM_FIELDS: dict[str, dict[str, Any]] = {
    "type": {t.value: t for t in EventType},
    "source": {s.value: s.value for s in Source},
    "kind": {k.value: k.value for k in Kind},
    "urgency": {u.value: u.value for u in Urgency},
}
_TIME_FIELDS = ("occurred_at", "deadline_at")
_REQUIRED = frozenset(n for n, info in CaseEventMessage.model_fields.items() if info.is_required())
_KNOWN = frozenset(CaseEventMessage.model_fields)
# Calendar-valid values are left to datetime.fromisoformat; out-of-range parts (hour 24,
# second 60, an offset of 24 h or minute 60) never reach it.
_TIME_RE = re.compile(
    r"\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)\Z",
    re.ASCII,
)
_LON_LAT = {"lon": 180, "lat": 90}


_STR, _ENUM, _TIME, _NUM, _VERSION, _MODEL = range(6)
_FAST_SPEC: dict[str, tuple[int, Any]] = {
    **{name: (_STR, limits) for name, limits in _STR_LIMITS.items()},
    **{name: (_ENUM, values) for name, values in _ENUM_FIELDS.items()},
    **{name: (_TIME, None) for name in _TIME_FIELDS},
    **{name: (_NUM, bound) for name, bound in _LON_LAT.items()},
    "v": (_VERSION, SCHEMA_VERSION),
    # Call-backs are rare and their rules span fields (rated ⇔ satisfaction): the model decides.
    **{name: (_MODEL, None) for name in EVENT_FIELDS},
}
assert _FAST_SPEC.keys() == _KNOWN, "every field of the model needs a fast-path rule"


def _fast_fields(data: dict[str, Any]) -> dict[str, Any] | None:
    """The checked values of a plain event (None: let the model decide)."""
    if not _REQUIRED <= data.keys() or data.get("type") == EventType.RATED.value:
        return None
    out: dict[str, Any] = {}
    spec = _FAST_SPEC
    for name, value in data.items():
        rule = spec.get(name)
        if rule is None:
            return None  # unknown field
        if value is None:
            if name in _REQUIRED or name == "v":
                return None
            continue  # null is the same as leaving the field out
        what, arg = rule
        if what == _MODEL:
            return None
        cls = value.__class__
        if what == _STR:
            if (cls is not str or not arg[0] <= len(value) <= arg[1] or "\x00" in value
                    or (value and (value[0].isspace() or value[-1].isspace()))):
                return None
        elif what == _ENUM:
            if cls is not str:
                return None
            value = arg.get(value)
            if value is None:
                return None
        elif what == _TIME:
            if cls is not str or _TIME_RE.match(value) is None:
                return None
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return None
            if value < EARLIEST:
                return None
        elif what == _NUM:
            if cls is not float and cls is not int:
                return None
            value = float(value)
            if not -arg <= value <= arg:
                return None
        else:  # v
            if cls is not int or value != arg:
                return None
            continue
        out[name] = value
    return out


def parse_event(fields: dict[str, Any]) -> tuple[LifecycleEvent, str | None, str | None, dict[str, Any]]:
    """The ingest's decode: (lifecycle event, source, actor, JSON object as sent).

    The same outcome as :func:`parse_entry` followed by ``to_lifecycle`` (including every
    FeedError), without building the pydantic model for plain events.
    """
    raw = fields.get(ENTRY_FIELD)
    if raw is not None and len(raw) <= MAX_PAYLOAD_BYTES // 4:  # surely not oversized
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if data.__class__ is dict:
            values = _fast_fields(data)  # type: ignore[arg-type]
            if values is not None:
                case_fields = {name: values[name] for name in CASE_FIELDS if name in values}
                event = LifecycleEvent(values["event_id"], values["case_id"], values["type"],
                                       values["occurred_at"], case_fields)
                return event, values.get("source"), values.get("actor"), data  # type: ignore[return-value]
    message, data = parse_entry(fields)
    return (message.to_lifecycle(), message.source and message.source.value, message.actor, data)


FUTURE_TOLERANCE = timedelta(minutes=10)
