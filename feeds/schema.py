"""The published JSON Schema of a case event, derived from the pydantic contract.

``feeds/schema/case-event.v1.json`` is what integrators in other languages validate against.
It is generated from :class:`feeds.contract.CaseEventMessage`, never edited by hand::

    python -m feeds.schema > feeds/schema/case-event.v1.json

``tests/test_feed_contract.py`` fails when the committed file and :func:`json_schema` differ.
"""

from __future__ import annotations

import copy
import json
import sys
from importlib import resources
from typing import Any

from dashboard.rules.lifecycle import EventType
from dashboard.rules.vocab import DeviceKind, Kind, LabelledEnum, Satisfaction, Source, Urgency

from .contract import EARLIEST_YEAR, ENTRY_FIELD, MAX_PAYLOAD_BYTES, SCHEMA_VERSION, TIME_PATTERN, CaseEventMessage

SCHEMA_ID = f"https://gridhall.example/schema/case-event.v{SCHEMA_VERSION}.json"
SCHEMA_FILE = f"case-event.v{SCHEMA_VERSION}.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# RFC 3339 date-time *with* an offset, from 1990 (the decode's own rule, feeds.contract). In
# draft 2020-12 "format" is only an annotation unless a validator opts in to asserting it, so
# the rule is also spelled out as a pattern; "format" adds calendar validity.
DATE_TIME_WITH_OFFSET = TIME_PATTERN

# Every string: no NUL (CaseEventMessage._strings). The two ids also need one non-space.
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"

_ENUMS: dict[str, type[LabelledEnum]] = {
    "DeviceKind": DeviceKind,
    "EventType": EventType,
    "Kind": Kind,
    "Satisfaction": Satisfaction,
    "Source": Source,
    "Urgency": Urgency,
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one case event, version ``SCHEMA_VERSION``."""
    generated = copy.deepcopy(CaseEventMessage.model_json_schema())
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "title": f"gridhall case event, version {SCHEMA_VERSION}",
        "description": (
            "One case event (案件事件) of a digital urban management (数字城管) system, as a "
            f"producer XADDs it to the gridhall case stream: the JSON object in the single "
            f"field {ENTRY_FIELD!r} of a Redis Stream entry, at most {MAX_PAYLOAD_BYTES // 1024} KB "
            "of UTF-8. event_id is the idempotency key; a case's state is derived from all of "
            "its events ordered by occurred_at. Generated from feeds.contract.CaseEventMessage; "
            "see docs/feed.md for the meaning of every field and an example of every type."
        ),
    }
    for key, value in generated.items():
        if key not in ("title", "description"):
            schema[key] = value

    props = schema["properties"]
    # What the ingest enforces beyond the model's field types, spelled out for other languages.
    for name, prop in props.items():
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "string" and "format" not in branch:
                branch["pattern"] = NOT_BLANK if name in ("event_id", "case_id") else NO_NUL
    schema["allOf"] = [
        # A call-back (rated) carries its answer; no other event may (CaseEventMessage._rating).
        {"if": {"properties": {"type": {"const": EventType.RATED.value}}, "required": ["type"]},
         "then": {"required": ["satisfaction"], "properties": {"satisfaction": {"not": {"type": "null"}}}},
         "else": {"properties": {"satisfaction": {"type": "null"}}}},
        # A 小类 code is only unique per kind (CaseEventMessage._class_needs_kind).
        {"if": {"properties": {"class_code": {"type": "string"}}, "required": ["class_code"]},
         "then": {"required": ["kind"], "properties": {"kind": {"not": {"type": "null"}}}}},
    ]
    props["satisfaction"]["description"] = (
        "The answer of a hotline call-back (回访评价), on a rated event only and required there: "
        "an integer score 1–5 (5 = 非常满意, 1 = 非常不满意) or a three-level answer, which is "
        "stored as 5 (satisfied), 3 (basically_satisfied) or 1 (dissatisfied)."
    )
    props["v"]["const"] = SCHEMA_VERSION
    props["v"]["description"] = (
        f"Schema version. This schema is version {SCHEMA_VERSION}; may be omitted (defaults to "
        f"{SCHEMA_VERSION}). Any other value is dead-lettered with reason_code 'schema'."
    )
    offset_note = (
        "RFC 3339 date-time with seconds and a UTC offset (Z or ±hh:mm), e.g. "
        f"2026-11-24T09:30:00+08:00, year {EARLIEST_YEAR} or later; a time without an offset, "
        "a number or any other shape is rejected."
    )
    props["occurred_at"]["pattern"] = DATE_TIME_WITH_OFFSET
    props["occurred_at"]["description"] = "When it happened (not when it was sent). " + offset_note
    for branch in props["deadline_at"]["anyOf"]:
        if branch.get("type") == "string":
            branch["pattern"] = DATE_TIME_WITH_OFFSET
    props["deadline_at"]["description"] = (
        "A deadline set by the source system (e.g. the 12345 platform's 办结时限); stored with "
        "the event. " + offset_note
    )

    for branch in props["alarm_cleared_at"]["anyOf"]:
        if branch.get("type") == "string":
            branch["pattern"] = DATE_TIME_WITH_OFFSET
    props["alarm_cleared_at"]["description"] = (
        "When the device reported the alarm's condition cleared (video_iot; docs/sources.md); "
        "recorded on the case, which stays open. " + offset_note
    )

    for name, enum in _ENUMS.items():
        definition = schema["$defs"][name]
        if definition["enum"] != [m.value for m in enum]:
            raise RuntimeError(f"$defs.{name} does not list the values of {enum.__name__}")
        labels = "; ".join(f"{m.value} = {m.label}" for m in enum)
        definition["description"] = f"{definition['description']} Values: {labels}."
    return schema


def render() -> str:
    """The schema file's exact text: 2-space indented JSON, UTF-8, trailing newline."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def published() -> dict[str, Any]:
    """The schema file shipped in the package (``feeds/schema/case-event.v1.json``)."""
    text = resources.files("feeds").joinpath("schema", SCHEMA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def main() -> None:
    sys.stdout.buffer.write(render().encode("utf-8"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
