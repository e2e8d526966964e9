"""The feed contract: what producers XADD to the case stream (key names: ``feeds/keys.py``).

One stream entry is one case event: a single field ``event`` holding a JSON object. The
fields below are the contract (schema version 1); docs/feed.md has examples of every type.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from redis.typing import EncodableT, FieldT

from dashboard.rules.lifecycle import CASE_FIELDS, EVENT_FIELDS, EventType, LifecycleEvent, satisfaction_score
from dashboard.rules.vocab import DeviceKind, Kind, Satisfaction, Source, Urgency

SCHEMA_VERSION = 1
EARLIEST_YEAR = 1990  # no case happened before: an earlier year is a broken device clock
ENTRY_FIELD = "event"
MAX_PAYLOAD_BYTES = 64 * 1024

# A stream entry's fields as redis-py's XADD takes them (its dict is invariant in both types).
StreamFields = dict[FieldT, EncodableT]

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
    # A bridge's (feeds/bridges/, docs/sources.md): a source record it cannot turn into case events.
    BAD_RECORD = "bad_record"  # not a record at all (bad JSON line, missing id) or events the contract refuses
    BAD_TIME = "bad_time"  # a time field missing or unreadable
    UNMAPPED_CLASS = "unmapped_class"  # no mapping-table entry or keyword rule gives a 小类: map it, then retry
    NO_PLACE = "no_place"  # no address or point at all
    UNKNOWN_DEVICE = "unknown_device"  # an alarm's device_id is not in the device registry: import it, then retry
    UNKNOWN_ALARM_TYPE = "unknown_alarm_type"  # an alarm type the registry does not map to a 小类
    NOTHING_TO_CLEAR = "nothing_to_clear"  # a cleared alarm with no open alarm case of that device and type


class FeedError(ValueError):
    """An entry that cannot be applied, with the reason code for counters and retries."""

    def __init__(self, code: DeadReason, message: str) -> None:
        super().__init__(message)
        self.code = code


# The one spelling of a time on the wire, published as the JSON Schema's pattern (feeds/schema.py)
# and used by both decode paths: RFC 3339 with seconds and a UTC offset, every part in range,
# the year (as written) from 1990. Calendar validity (no 30 February) is left to
# datetime.fromisoformat here and to "format": "date-time" in the schema. [0-9], not \d: a
# Python \d also matches other scripts' digits.
TIME_PATTERN = (
    r"^(?:199[0-9]|[2-9][0-9]{3})"  # EARLIEST_YEAR to 9999
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
assert EARLIEST_YEAR == 1990, "TIME_PATTERN spells out the earliest year"
# Python's "$" also matches before a final newline; the ingest wants the real end.
_TIME_RE = re.compile(TIME_PATTERN[:-1] + r"\Z")


def parse_time(value: str) -> datetime | None:
    """The aware datetime of a wire time, or None when it does not follow TIME_PATTERN."""
    if _TIME_RE.match(value) is None:
        return None
    try:
        return datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"
    except ValueError:  # e.g. 2026-02-30
        return None


def _wire_time(value: object) -> object:
    """A time field: an RFC 3339 string from JSON (a datetime only from Python code).

    Pydantic's lax mode would read a number as seconds since 1970 and take "2026-11-24 08:12"
    or a "+0800" offset; the published schema refuses all of them, so the decode does too.
    """
    if isinstance(value, datetime):
        return value
    if value.__class__ is not str:
        raise ValueError("must be an RFC 3339 date-time string, e.g. 2026-11-25T09:30:00+08:00")
    parsed = parse_time(value)
    if parsed is None:
        raise ValueError(f"must be an RFC 3339 date-time with seconds and a UTC offset, from "
                         f"{EARLIEST_YEAR}, e.g. 2026-11-25T09:30:00+08:00 (got {value[:40]!r})")
    return parsed


def _json_integer(value: object) -> object:
    """A JSON integer as the JSON Schema reads one: 3 or 3.0, never true, "3" or 3.5."""
    if value.__class__ is float and value.is_integer():
        return int(value)
    return value


WireTime = Annotated[datetime, BeforeValidator(_wire_time)]
# Strict: a boolean, a numeric string or a list is not a coordinate (lax mode made true 1.0).
Coordinate = Annotated[float, Strict()]
JsonInt = Annotated[int, Strict(), BeforeValidator(_json_integer)]
_NOT_BLANK = frozenset({"event_id", "case_id"})  # required ids: white space alone is no id


class CaseEventMessage(BaseModel):
    """One case event as a producer sends it (JSON in the ``event`` field of the entry)."""

    # Strings are stripped by _strings, after their lengths are checked as sent (the schema's
    # maxLength counts the characters sent).
    model_config = ConfigDict(extra="forbid")

    v: JsonInt = Field(SCHEMA_VERSION, description="Schema version; 1.")
    event_id: str = Field(min_length=1, max_length=128, description="Producer-unique id; the idempotency key.")
    case_id: str = Field(min_length=1, max_length=64, description="The case this event belongs to.")
    type: EventType = Field(description="What happened (lifecycle event type).")
    occurred_at: WireTime = Field(description="When it happened, ISO-8601 with a UTC offset.")
    source: Source | None = Field(None, description="Channel the case came in through.")
    actor: str | None = Field(None, max_length=64, description="Who acted (staff code or system).")
    number: str | None = Field(None, max_length=32, description="Human case number (案件编号).")
    kind: Kind | None = Field(None, description="component (部件) or event (事件).")
    class_code: str | None = Field(None, max_length=32, description="Minor class code (小类) of the active scheme.")
    grid_code: str | None = Field(None, max_length=15, description="Unit grid code (15 or 14 digits).")
    lon: Coordinate | None = Field(None, ge=-180, le=180, description="WGS84 longitude.")
    lat: Coordinate | None = Field(None, ge=-90, le=90, description="WGS84 latitude.")
    address: str | None = Field(None, max_length=256, description="事发位置 as text.")
    description: str | None = Field(None, max_length=4000, description="Problem description.")
    urgency: Urgency | None = Field(None, description="normal (一般) or urgent (紧急).")
    unit_code: str | None = Field(None, max_length=32, description="Responsible unit code (派遣 target).")
    deadline_at: WireTime | None = Field(None, description="A deadline set by the source system.")
    # Video/IoT alarm cases (source video_iot; feeds/bridges/alarms.py, docs/sources.md). Optional:
    # v1 producers that do not send them are unaffected.
    device_id: str | None = Field(None, min_length=1, max_length=64,
                                  description="The camera or sensor that raised the alarm (video_iot).")
    device_kind: DeviceKind | None = Field(None, description="camera (摄像头) or sensor (传感器).")
    alarm_type: str | None = Field(None, min_length=1, max_length=32, description="The device's alarm type code.")
    alarm_count: (Annotated[int, Strict(), Field(ge=1, le=1_000_000), BeforeValidator(_json_integer)]
                  | None) = Field(None, description="Alarms merged into the case so far, the first included.")
    alarm_cleared_at: WireTime | None = Field(
        None, description="When the device reported the alarm's condition cleared (the case stays open).")
    # Strict int: a numeric string, a fraction or a boolean is not a score (JSON 3 or 3.0, not "3").
    satisfaction: (Annotated[int, Strict(), Field(ge=1, le=5), BeforeValidator(_json_integer)]
                   | Satisfaction | None) = Field(
        None, description="回访评价 of a rated event: a score 1–5 (5 best) or a three-level answer.")

    @field_validator("occurred_at", "deadline_at", "alarm_cleared_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-11-25T09:30:00+08:00")
        # No case of a digital city management system happened before 1990: such a time is a
        # broken device clock (and year 1 with an offset cannot even be stored in UTC).
        # Far-future times are the ingest's "future" reason instead. The year as written,
        # as TIME_PATTERN reads it, so the schema can say it (checked again here for a
        # datetime from Python code).
        if value.year < EARLIEST_YEAR:
            raise ValueError(f"must not be before {EARLIEST_YEAR}")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _strings(cls, value: object, info: ValidationInfo) -> object:
        if value.__class__ is not str:
            return value
        # PostgreSQL text cannot hold NUL, and no producer means to send one.
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
        stripped = value.strip()
        if not stripped and info.field_name in _NOT_BLANK:
            raise ValueError("must not be blank")
        return stripped

    @model_validator(mode="after")
    def _class_needs_kind(self) -> CaseEventMessage:
        # A 小类 code is only unique per kind (部件 01002 ≠ 事件 01002).
        if self.class_code is not None and self.kind is None:
            raise ValueError("class_code needs kind (component or event) in the same event")
        return self

    @model_validator(mode="after")
    def _rating(self) -> CaseEventMessage:
        # The answer belongs to the call-back: required there, meaningless anywhere else.
        rated = self.type is EventType.RATED
        if rated and self.satisfaction is None:
            raise ValueError("a rated event must carry satisfaction "
                             "(1–5 or satisfied/basically_satisfied/dissatisfied)")
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
        for name in ("kind", "source", "urgency", "device_kind"):
            if name in fields:
                fields[name] = str(fields[name].value)
        if "satisfaction" in fields:  # one scale downstream: a level becomes its 1–5 score
            fields["satisfaction"] = satisfaction_score(fields["satisfaction"])
        return LifecycleEvent(self.event_id, self.case_id, self.type, self.occurred_at, fields)

    def to_entry(self) -> StreamFields:
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
        # The field only: the rest of a location names pydantic's union branches.
        where = str(err["loc"][0]) if err["loc"] else "payload"
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
    "device_kind": {d.value: d.value for d in DeviceKind},
}
_TIME_FIELDS = ("occurred_at", "deadline_at", "alarm_cleared_at")
_REQUIRED = frozenset(n for n, info in CaseEventMessage.model_fields.items() if info.is_required())
_KNOWN = frozenset(CaseEventMessage.model_fields)
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
    "alarm_count": (_MODEL, None),  # rare (merged alarms): the model checks the integer
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
            if cls is not str:
                return None
            value = parse_time(value)
            if value is None:
                return None
        elif what == _NUM:
            if cls is not float and cls is not int:  # not bool, whose class is bool
                return None
            value = float(value)
            if not -arg <= value <= arg:
                return None
        else:  # v
            if cls is not int or value != arg:
                return None
            continue
        out[name] = value
    if "class_code" in out and "kind" not in out:
        return None  # the model words the refusal
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
            values = _fast_fields(data)
            if values is not None:
                case_fields = {name: values[name] for name in CASE_FIELDS if name in values}
                event = LifecycleEvent(values["event_id"], values["case_id"], values["type"],
                                       values["occurred_at"], case_fields)
                return event, values.get("source"), values.get("actor"), data
    message, data = parse_entry(fields)
    return (message.to_lifecycle(), message.source and message.source.value, message.actor, data)


FUTURE_TOLERANCE = timedelta(minutes=10)
