"""The ingest's fast decode (feeds.contract.parse_event) agrees with the pydantic model.

For any entry, plain or hostile: either both refuse it with the same reason code and the same
message, or both give the same lifecycle event, source, actor and payload.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.contract import FeedError, parse_entry, parse_event

TIMES = st.sampled_from([
    "2026-09-01T09:30:00+08:00", "2026-09-01T09:30:00Z", "2026-09-01T09:30:00.5+08:00",
    "2026-09-01T09:30:00.123456-05:30", "2026-09-01T09:30:00.1234567Z", "2026-09-01T09:30:00",
    "2026-02-30T09:30:00+08:00", "1989-12-31T23:59:59+00:00", "1990-01-01T08:00:00+08:00",
    "2026-09-01T24:00:00Z", "2026-09-01T09:30:60Z", "2026-09-01T09:30:00+24:00",
    "2026-09-01T09:30:00+08:60", "2026-09-01 09:30:00+08:00", " 2026-09-01T09:30:00Z",
    "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-12:00", "2026-09-01T09:30Z", "2026-09-01",
])
STRINGS = st.one_of(
    st.sampled_from(["", " ", "a", " a", "a ", "a\x00b", "\u3000x", "x\x1f", "\x85", "案件-1"]),
    st.text(max_size=40),
    st.text(min_size=60, max_size=140),
)
ANY = st.one_of(st.none(), st.booleans(), st.integers(-300, 300), st.floats(allow_nan=False), STRINGS,
                TIMES, st.lists(st.integers(-10, 10), max_size=2))


def _value(field: str) -> st.SearchStrategy[Any]:
    typed: dict[str, st.SearchStrategy[Any]] = {
        "v": st.sampled_from([1, 2, 1.0, True, "1", None]),
        "type": st.sampled_from(["reported", "handled", "closed", " closed", "Closed", "bogus", "rated", None]),
        "satisfaction": st.sampled_from([1, 5, 0, 6, "3", 3.0, True, "satisfied", " satisfied", "满意", None]),
        "source": st.sampled_from(["supervisor", "hotline_12345", "nope", None]),
        "kind": st.sampled_from(["component", "event", "部件", None]),
        "urgency": st.sampled_from(["normal", "urgent", "high", None]),
        "occurred_at": TIMES,
        "deadline_at": st.one_of(TIMES, st.none()),
        "lon": st.one_of(st.floats(-200, 200), st.integers(-200, 200), st.booleans(), st.none()),
        "lat": st.one_of(st.floats(-100, 100), st.integers(-100, 100), st.sampled_from(["30.5"])),
    }
    return st.one_of(typed.get(field, STRINGS), ANY) if field in typed else st.one_of(STRINGS, ANY)


FIELDS = ["v", "event_id", "case_id", "type", "occurred_at", "source", "actor", "number", "kind",
          "class_code", "grid_code", "lon", "lat", "address", "description", "urgency", "unit_code",
          "deadline_at", "satisfaction"]


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": "e-1", "case_id": "c-1", "type": "reported",
                            "occurred_at": "2026-09-01T09:30:00+08:00"}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        body[name] = draw(_value(name))
    if draw(st.booleans()) and body:
        body.pop(draw(st.sampled_from(sorted(body))))
    if draw(st.integers(0, 20)) == 0:
        body["extra"] = 1
    return body


def _outcome(parse: Any, fields: dict[str, Any]) -> Any:
    try:
        event, source, actor, data = parse(fields)
    except FeedError as exc:
        return ("dead", exc.code, str(exc))
    values = {k: (v.isoformat(), v.utcoffset()) if hasattr(v, "isoformat") else (type(v), v)
              for k, v in event.fields.items()}
    return ("ok", event.event_id, event.case_id, event.type, event.occurred_at.isoformat(), values,
            source, actor, data)


def _slow(fields: dict[str, Any]) -> tuple[Any, ...]:
    message, data = parse_entry(fields)
    return message.to_lifecycle(), message.source and message.source.value, message.actor, data


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_fast_decode_agrees_with_the_model(body: dict[str, Any]) -> None:
    fields = {"event": orjson.dumps(body).decode()}
    assert _outcome(parse_event, fields) == _outcome(_slow, fields)


@pytest.mark.parametrize("raw", ["", "null", "[]", "{", '"x"', "{}", "x" * 70_000,
                                 '{"event_id": "a", "case_id": "c", "type": "reported", '
                                 '"occurred_at": "2026-09-01T09:30:00+08:00", "address": "' + "长" * 30_000 + '"}'])
def test_fast_decode_agrees_on_broken_entries(raw: str) -> None:
    assert _outcome(parse_event, {"event": raw}) == _outcome(_slow, {"event": raw})
    assert _outcome(parse_event, {"other": raw}) == _outcome(_slow, {"other": raw})
