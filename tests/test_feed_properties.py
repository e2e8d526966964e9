"""Property tests of the feed, black-box: real Redis stream → real Ingest → real database.

1. Order independence: any permutation, duplication, batching and drain rhythm of a set of
   valid case histories gives the same ``cases`` rows as ingesting them in order, and both
   equal ``dashboard.rules.lifecycle.fold`` of the histories.
2. Hostile entries: garbage interleaved with valid events never makes ``step()`` raise;
   every valid event is applied, every bad entry is dead-lettered exactly once with a
   reason, and nothing stays pending. Type confusion included (issue 12): whatever the
   published JSON Schema rejects (the ``jsonschema`` library decides) is never applied.
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from dashboard.rules.lifecycle import EventType
from feedkit import (
    GRID_CODES,
    GRID_POINTS,
    OUTSIDE_POINT,
    T0,
    UNITS,
    Ledger,
    check_db_matches,
    clear_cases,
    confused_event,
    db_cases,
    db_events,
    dead_event_id,
    dead_letters,
    diff_cases,
    group_status,
    random_ledger,
    validator,
)
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM

PROPERTY_SETTINGS = hsettings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
    print_blob=True,
)
# The reason codes of feeds.contract.DeadReason (spelled out: the contract may not have them yet;
# Z for oversized, as O reads like a zero).
U, Z, S, F = "undecodable", "oversized", "schema", "future"
C, G, N, X, T = "unknown_class", "unknown_grid", "unknown_unit", "outside_city", "transition"
ALL_CODES = frozenset({U, Z, S, F, C, G, N, X, T})


def _example_settings(settings):  # type: ignore[no-untyped-def]
    """A fresh Redis prefix per hypothesis example (under the test's own prefix)."""
    return settings.model_copy(update={"redis_prefix": f"{settings.redis_prefix}x{uuid.uuid4().hex[:8]}:"})


def _forget(client, ex_settings) -> None:  # type: ignore[no-untyped-def]
    for key in client.scan_iter(match=f"{ex_settings.redis_prefix}*"):
        client.delete(key)


def _drain(ingest: Ingest, client, settings, what: str, limit: int = 5_000) -> None:  # type: ignore[no-untyped-def]
    """Step until the group has delivered and acknowledged everything.

    Asks Redis whether work is left instead of stepping until an empty read: a blocking
    XREADGROUP that times out costs up to 100 ms (the server's timer resolution).
    A raising step fails the test with context.
    """
    idle = 0
    for _ in range(limit):
        status = group_status(client, settings)
        if status["group"] and status["pending"] == 0 and not status["undelivered"]:
            return
        try:
            handled = ingest.step()
        except Exception as exc:
            raise AssertionError(f"Ingest.step() raised {type(exc).__name__}: {exc} ({what})") from exc
        idle = idle + 1 if not handled else 0
        if idle >= 30:
            raise AssertionError(f"ingest stuck: 30 empty steps with work left {status} ({what})")
    raise AssertionError(f"ingest did not drain after {limit} steps ({what})")


def _run(settings, sessions, client, ref, entries: list[dict[str, Any]], *, batch_size: int,  # type: ignore[no-untyped-def]
         drain_after: frozenset[int] = frozenset(), what: str = "") -> list[str]:
    """XADD ``entries`` in order (draining after the given positions) and drain; returns entry ids."""
    ingest = Ingest(settings, sessions, client, ref, consumer="prop", batch_size=batch_size, block_ms=5)
    ingest.ensure_group()
    stream = settings.key(CASE_STREAM)
    ids = []
    for i, fields in enumerate(entries):
        ids.append(str(client.execute_command("XADD", stream, "*", *[x for kv in fields.items() for x in kv])))
        if i in drain_after:
            _drain(ingest, client, settings, what)
    _drain(ingest, client, settings, what)
    return ids


# -- 1. order independence ------------------------------------------------------------------
@st.composite
def arrivals(draw: st.DrawFn) -> tuple[Ledger, list[CaseEventMessage], int, frozenset[int]]:
    """A ledger of valid histories; an arrival sequence (permuted, with re-sent events);
    a batch size; the positions after which the ingest drains what has arrived so far."""
    rng = draw(st.randoms(use_true_random=False), label="history rng")
    n_cases = draw(st.integers(1, 5), label="cases")
    ledger = random_ledger(rng, n_cases, prefix="o", max_len=10, tie_prob=0.3, spread_hours=3)
    ordered = list(ledger.messages.values())
    perm = draw(st.permutations(range(len(ordered))), label="permutation")
    seq = [ordered[i] for i in perm]
    dups = draw(st.lists(st.tuples(st.sampled_from(range(len(ordered))), st.integers(0, 10**6)),
                         max_size=len(ordered)), label="re-sent (event, position)")
    for idx, pos in dups:
        seq.insert(pos % (len(seq) + 1), ordered[idx])
    batch = draw(st.one_of(st.sampled_from([1, 2, 3, 500]), st.integers(1, 12)), label="batch size")
    drains = draw(st.frozensets(st.integers(0, len(seq) - 1), max_size=len(seq)), label="drain after")
    return ledger, seq, batch, drains


@PROPERTY_SETTINGS
@given(case=arrivals())
def test_any_arrival_order_duplication_and_batching_give_the_fold(  # type: ignore[no-untyped-def]
        case, settings, engine, sessions, redis_client, feed_city):
    ledger, seq, batch, drains = case
    note(f"{len(ledger)} events in {len({m.case_id for m in seq})} cases; {len(seq)} arrivals; "
         f"batch {batch}; drains after {sorted(drains)}")
    note("arrival order: " + ", ".join(f"{m.event_id}/{m.type.value}@{m.occurred_at.isoformat()}" for m in seq))

    # Reference run: every event once, in generated order, one drain at the end.
    clear_cases(engine)
    ref_settings = _example_settings(settings)
    try:
        ids = _run(ref_settings, sessions, redis_client, feed_city,
                   [m.to_entry() for m in ledger.messages.values()], batch_size=batch, what="in order")
        dead = dead_letters(redis_client, ref_settings)
        by_entry = dict(zip(ids, ledger.messages, strict=False))
        check_db_matches(ledger, sessions, dead_ids={dead_event_id(d, by_entry) for d in dead})
        in_order = db_cases(sessions)
    finally:
        _forget(redis_client, ref_settings)

    # The run under test: permuted, re-sent, batched, drained at random points.
    clear_cases(engine)
    ex_settings = _example_settings(settings)
    try:
        ids = _run(ex_settings, sessions, redis_client, feed_city, [m.to_entry() for m in seq],
                   batch_size=batch, drain_after=drains, what="permuted")
        dead = dead_letters(redis_client, ex_settings)
        for d in dead:
            assert d.get("reason"), f"dead letter without a reason: {d}"
            if "reason_code" in d:
                assert d["reason_code"] == T, f"valid event dead-lettered as {d['reason_code']}: {d}"
        by_entry = dict(zip(ids, (m.event_id for m in seq), strict=False))
        check_db_matches(ledger, sessions, dead_ids={dead_event_id(d, by_entry) for d in dead})
        permuted = db_cases(sessions)
        differences = diff_cases(in_order, permuted)
        assert not differences, "permuted arrival differs from in-order arrival:\n  " + "\n  ".join(differences)
        status = group_status(redis_client, ex_settings)
        assert status["pending"] == 0 and not status["undelivered"], status
    finally:
        _forget(redis_client, ex_settings)


def test_late_report_and_equal_timestamps(settings, engine, sessions, redis_client, feed_city):  # type: ignore[no-untyped-def]
    """A fixed example of the property: the whole loop at one instant, arriving backwards."""
    when = T0 + timedelta(hours=1)
    types = [EventType.REPORTED, EventType.FILED, EventType.DISPATCHED, EventType.RETURNED,
             EventType.DISPATCHED, EventType.HANDLED, EventType.REWORK, EventType.HANDLED,
             EventType.CHECKED_OK, EventType.CLOSED]
    ledger = Ledger()
    for i, t in enumerate(types):
        extra: dict[str, Any] = {}
        if t is EventType.REPORTED:
            extra = {"kind": "event", "class_code": "06010", "grid_code": GRID_CODES[1]}
        if t is EventType.DISPATCHED:
            extra = {"unit_code": UNITS[i % len(UNITS)]}
        ledger.add(CaseEventMessage(event_id=f"tie-{i:02d}", case_id="tie", type=t,
                                    occurred_at=when if i % 2 else when.astimezone(UTC), **extra))
    seq = list(reversed(list(ledger.messages.values())))
    ids = _run(settings, sessions, redis_client, feed_city, [m.to_entry() for m in seq], batch_size=1)
    by_entry = dict(zip(ids, (m.event_id for m in seq), strict=False))
    dead = dead_letters(redis_client, settings)
    check_db_matches(ledger, sessions, dead_ids={dead_event_id(d, by_entry) for d in dead})


# -- 2. hostile entries ------------------------------------------------------------------------
@dataclass(frozen=True)
class Hostile:
    """One stream entry to publish. ``@ID@`` in str values is replaced by a unique id.
    ``codes``: the acceptable reason codes (it must be dead-lettered); None: either applied
    or dead-lettered is acceptable, but exactly one of them and no crash."""

    label: str
    fields: tuple[tuple[str | bytes, str | bytes], ...]
    codes: frozenset[str] | None

    def entry(self, uid: str) -> dict[str | bytes, str | bytes]:
        return {k: v.replace("@ID@", uid) if isinstance(v, str) else v for k, v in self.fields}


def _base(**changes: Any) -> dict[str, Any]:
    """A valid report of an isolated case, to be broken in one way."""
    data: dict[str, Any] = {
        "v": 1, "event_id": "bad-@ID@", "case_id": "bad-@ID@", "type": "reported",
        "occurred_at": "2026-11-21T10:00:00+08:00", "kind": "event", "class_code": "06010",
        "grid_code": GRID_CODES[0], "source": "supervisor",
    }
    for k, v in changes.items():
        if v is _DROP:
            data.pop(k, None)
        else:
            data[k] = v
    return data


_DROP = object()


def _json(label: str, data: Any, codes: frozenset[str] | None) -> Hostile:
    return Hostile(label, (("event", json.dumps(data, ensure_ascii=False, allow_nan=True)),), codes)


def _raw(label: str, text: str | bytes, codes: frozenset[str] | None) -> Hostile:
    return Hostile(label, (("event", text),), codes)


_far_future = st.builds(
    lambda days, off: (datetime.now(UTC) + timedelta(days=days)).astimezone(
        timezone(timedelta(hours=off))).isoformat(),
    st.one_of(st.integers(1, 3650), st.just(36500)), st.integers(-12, 14),
) | st.sampled_from(["9999-12-31T23:59:59+14:00", "9999-12-31T23:59:59-08:00", "2999-01-01T00:00:00Z"])

_WRONG_TYPES = [
    ("event_id", 42), ("event_id", None), ("event_id", ["a"]), ("event_id", ""), ("event_id", "   "),
    ("event_id", "x" * 129), ("case_id", 7), ("case_id", {"id": 1}), ("case_id", "y" * 65),
    ("case_id", True), ("type", 3), ("type", None), ("occurred_at", "yesterday"),
    ("occurred_at", ["2026-11-21"]), ("occurred_at", {"t": 1}), ("occurred_at", True),
    ("occurred_at", "2026-13-45T99:00:00+08:00"), ("lon", "abc"), ("lat", [1, 2]),
    ("lon", 200.0), ("lat", -91), ("kind", "thing"), ("urgency", "very"), ("source", "pigeon"),
    ("v", 2), ("v", 0), ("v", "two"), ("description", 123), ("description", {"a": 1}),
    ("address", "路" * 257), ("grid_code", "9" * 16), ("unit_code", ["U-HW"]), ("number", 12),
    ("deadline_at", "soon"), ("actor", {"name": "x"}),
    # Type confusion that pydantic's lax mode once converted (issue 12, point 6).
    ("v", "1"), ("v", True), ("v", 1.5), ("lon", True), ("lat", False), ("lon", "118.7"),
    ("occurred_at", 1700000000), ("occurred_at", 1700000000.5), ("deadline_at", 1700000000),
    ("occurred_at", "2026-11-21 10:00:00+08:00"), ("occurred_at", "2026-11-21T10:00+08:00"),
    ("occurred_at", "2026-11-21T10:00:00+0800"), ("occurred_at", "1989-12-31T23:59:59Z"),
    ("grid_code", 990201001001001), ("class_code", 6010), ("kind", True), ("urgency", 1),
    ("source", ["supervisor"]), ("address", "路" * 256 + " "), ("actor", "a\x00b"),
]


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def _decodes(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


BAD_ENTRIES = st.one_of(
    st.text(max_size=200).map(lambda s: _raw("random text", s, frozenset({U, S}))),
    st.binary(max_size=200).map(lambda b: _raw("random bytes", b, frozenset({U, S}))),
    st.binary(min_size=1, max_size=30).filter(lambda b: not _decodes(b)).map(
        lambda b: Hostile("non-UTF-8 field name", ((b, b"x"),), frozenset({U}))),
    st.just(Hostile("no event field", (("evnt", json.dumps(_base())),), frozenset({U}))),
    st.just(_raw("empty event", "", frozenset({U}))),
    st.sampled_from(["event_id", "case_id", "type", "occurred_at"]).map(
        lambda f: _json(f"missing {f}", _base(**{f: _DROP}), frozenset({S}))),
    st.tuples(st.text(min_size=1, max_size=20).filter(lambda k: k.strip() not in CaseEventMessage.model_fields),
              st.one_of(st.none(), st.integers(), st.text(max_size=10))).map(
        lambda kv: _json(f"extra field {kv[0]!r}", {**_base(), kv[0]: kv[1]}, frozenset({S}))),
    st.sampled_from(_WRONG_TYPES).map(lambda fv: _json(f"wrong {fv[0]}={fv[1]!r:.30}", _base(**{fv[0]: fv[1]}),
                                                       frozenset({S}))),
    st.integers(64 * 1024 + 1, 80 * 1024).map(
        lambda n: _json(f"description of {n} chars", _base(description="长" * (n // 3 + 1)), frozenset({Z}))),
    st.integers(64 * 1024 + 1, 70 * 1024).map(lambda n: _raw(f"{n} bytes of x", "x" * n, frozenset({Z}))),
    st.one_of(st.lists(st.integers(), max_size=5), st.integers(), st.text(max_size=10), st.none(),
              st.booleans(), st.floats(allow_nan=False, allow_infinity=False)).map(
        lambda v: _json(f"non-object JSON {v!r:.30}", v, frozenset({U}))),
    st.text(min_size=1, max_size=20).filter(lambda t: t not in {e.value for e in EventType}).map(
        lambda t: _json(f"unknown type {t!r}", _base(type=t), frozenset({S}))),
    st.sampled_from(["occurred_at", "deadline_at"]).map(
        lambda f: _json(f"naive {f}", _base(**{f: "2026-11-21T10:00:00"}), frozenset({S}))),
    _far_future.map(lambda t: _json(f"future {t}", _base(occurred_at=t), frozenset({F}))),
    st.sampled_from([("event", "99999"), ("component", "06010"), ("event", "01999")]).map(
        lambda kc: _json(f"unknown class {kc}", _base(kind=kc[0], class_code=kc[1]), frozenset({C}))),
    st.just(_json("class_code without kind", _base(kind=_DROP), frozenset({S}))),
    st.just(_json("numbers as strings", _base(grid_code=_DROP, lon=str(GRID_POINTS[GRID_CODES[2]][0]),
                                              lat=str(GRID_POINTS[GRID_CODES[2]][1])), frozenset({S}))),
    st.sampled_from(["990201001001999", "99020100100199", "110101001001001"]).map(
        lambda g: _json(f"unknown grid {g}", _base(grid_code=g), frozenset({G}))),
    st.sampled_from(["U-NOPE", "u-hw", "U-HW-2"]).map(
        lambda u: _json(f"unknown unit {u}", _base(type="reported", unit_code=u), frozenset({N}))),
    st.sampled_from([OUTSIDE_POINT, (118.0, 32.0), (-73.98, 40.75), (0.0, 0.0)]).map(
        # an update: a report in no grid is kept 未定位 (docs/feed.md "Location"), not dead-lettered
        lambda p: _json(f"outside {p}", _base(type="updated", grid_code=_DROP, lon=p[0], lat=p[1]), frozenset({X}))),
    st.sampled_from(['{"event_id": NaN}', '{"lon": Infinity}', '[1e999]', 'NaN']).map(
        lambda t: _raw(f"non-JSON number {t}", t, frozenset({U}))),
    st.sampled_from(["NaN", "nan", "Infinity", "-inf"]).map(
        lambda t: _json(f"lon={t!r}", _base(grid_code=_DROP, lon=t, lat=32.0), frozenset({S}))),
    st.integers(1100, 20000).map(lambda d: _raw(f"array nested {d} deep", "[" * d + "]" * d, frozenset({U}))),
    st.integers(2, 200).map(lambda d: _json(f"description nested {d} deep", _base(description=_nested(d)),
                                            frozenset({S}))),
    st.sampled_from(['{"event_id": "\\ud800"}', '\ufeff{}', '{"a": 1}x', "{'event_id': 'x'}"]).map(
        lambda t: _raw(f"broken JSON {t!r}", t, frozenset({U, S}))),
)


def _note(text: str) -> None:
    with contextlib.suppress(InvalidArgument):  # outside a hypothesis test (the parametrized cases)
        note(text)


# Valid by the contract's letter but awkward for storage: applied or dead-lettered both fine.
ODD_ENTRIES = st.one_of(
    st.text(min_size=1, max_size=20).map(
        lambda t: _json("NUL in description", _base(event_id="odd-@ID@", case_id="odd-@ID@",
                                                    description=t + "\x00" + t), None)),
    st.sampled_from(["0001-01-01T00:00:00+08:00", "0001-01-01T00:00:00-01:00", "1900-01-01T00:00:00+08:00"]).map(
        lambda t: _json(f"ancient {t}", _base(event_id="odd-@ID@", case_id="odd-@ID@", occurred_at=t), None)),
)


_SCHEMA = validator()


def _confused(rng: random.Random) -> Hostile:
    """A report with type confusion (tests/feedkit.py): schema-rejected ones must be schema
    dead letters; schema-valid ones may be applied or dead-lettered for a later reason."""
    data = confused_event(rng, 0)
    for name in ("event_id", "case_id"):
        if isinstance(data.get(name), str):
            data[name] = data[name].replace("cc-0", "odd-@ID@")
    codes = None if _SCHEMA.is_valid(data) else frozenset({S})
    return _json(f"confused {json.dumps(data, ensure_ascii=False)[:160]}", data, codes)


CONFUSED_ENTRIES = st.randoms(use_true_random=False).map(_confused)

_safe_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                     min_size=1, max_size=60)


@st.composite
def unicode_reports(draw: st.DrawFn, n: int) -> list[CaseEventMessage]:
    """Valid reports whose ids and texts are unicode oddities; they must be applied as sent."""
    out = []
    for i in range(n):
        case_id = f"案\u200b🚧-{i}-" + draw(st.sampled_from(["ẞ", "ﷺ", "\u202e", "\u0301e", "𝔘", "\t"]))
        out.append(CaseEventMessage(
            event_id=f"{case_id}:r", case_id=case_id, type=EventType.REPORTED,
            occurred_at=T0 + timedelta(minutes=i), kind="component", class_code="01002",
            grid_code=GRID_CODES[i % len(GRID_CODES)], description=draw(_safe_text),
            address=draw(_safe_text), actor=draw(st.text(max_size=20).map(lambda s: s.replace("\x00", "")) | st.none()),
        ))
    return out


@st.composite
def hostile_streams(draw: st.DrawFn) -> tuple[Ledger, list[Any], int]:
    rng = draw(st.randoms(use_true_random=False), label="history rng")
    ledger = random_ledger(rng, draw(st.integers(1, 3)), prefix="h", max_len=8, tie_prob=0.0, spread_hours=5)
    ledger.extend(draw(unicode_reports(draw(st.integers(0, 3)))))
    valid = list(ledger.messages.values())
    rng.shuffle(valid)
    bad = draw(st.lists(st.one_of(BAD_ENTRIES, BAD_ENTRIES, BAD_ENTRIES, ODD_ENTRIES, CONFUSED_ENTRIES,
                                  CONFUSED_ENTRIES), min_size=1, max_size=10),
               label="hostile entries")
    items: list[Any] = list(valid)
    for h in bad:
        items.insert(draw(st.integers(0, len(items))), h)
    batch = draw(st.sampled_from([1, 3, 7, 500]), label="batch size")
    return ledger, items, batch


def _json_object(entry: dict[Any, Any]) -> dict[str, Any] | None:
    """The JSON object an entry's event field holds, as the JSON Schema sees it (else None)."""
    raw = entry.get("event")
    try:
        data = json.loads(raw) if raw is not None else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _check_hostile(settings, sessions, client, ref, ledger: Ledger, items: list[Any], batch: int) -> None:  # type: ignore[no-untyped-def]
    entries, kinds, uids = [], [], []
    for n, item in enumerate(items):
        kinds.append(item)
        uids.append(f"{n:03d}")
        entries.append(item.to_entry() if isinstance(item, CaseEventMessage) else item.entry(uids[-1]))
    _note("stream: " + " | ".join(getattr(k, "label", None) or f"valid {k.event_id}" for k in kinds))
    ids = _run(settings, sessions, client, ref, entries, batch_size=batch, what="hostile stream")
    entry_of = dict(zip(ids, entries, strict=False))

    dead = dead_letters(client, settings)
    per_entry: dict[str, list[dict[str, Any]]] = {}
    for d in dead:
        per_entry.setdefault(d.get("entry_id", ""), []).append(d)
    unknown = set(per_entry) - set(ids)
    assert not unknown, f"dead letters for entries never published: {sorted(unknown)}"
    problems = []
    valid_dead: set[str] = set()
    stored, _ = db_events(sessions)
    for entry_id, kind, uid in zip(ids, kinds, uids, strict=False):
        letters = per_entry.get(entry_id, [])
        if isinstance(kind, CaseEventMessage):
            if letters:
                valid_dead.add(kind.event_id)
            continue
        for d in letters:
            if not d.get("reason"):
                problems.append(f"{kind.label}: dead letter without reason: {d}")
            code = d.get("reason_code")
            if code is not None and kind.codes is not None and code not in kind.codes:
                problems.append(f"{kind.label}: reason_code {code!r}, expected one of {sorted(kind.codes)} "
                                f"(reason {d.get('reason')!r})")
            if code is not None and code not in ALL_CODES:
                problems.append(f"{kind.label}: unknown reason_code {code!r}")
        if kind.codes is not None:
            if len(letters) != 1:
                problems.append(f"{kind.label}: {len(letters)} dead letters (expected exactly 1)")
        else:
            applied = f"odd-{uid}" in stored
            if applied + len(letters) != 1:
                problems.append(f"{kind.label}: applied={applied}, dead letters={len(letters)} (expected exactly one)")
        # The published contract is the oracle: nothing the JSON Schema rejects is applied.
        # Refused at decode (schema; or oversized, not JSON to orjson), never applied.
        sent = _json_object(entry_of[entry_id])
        if sent is not None and not _SCHEMA.is_valid(sent):
            codes = [d.get("reason_code", S) for d in letters]
            if len(codes) != 1 or codes[0] not in {S, Z, U}:
                problems.append(f"{kind.label}: the JSON Schema rejects it, yet dead letters are {codes} "
                                "(expected one, refused at decode: schema)")
    assert not problems, "hostile entries mishandled:\n  " + "\n  ".join(problems)
    check_db_matches(ledger, sessions, dead_ids=valid_dead, allow_dead_skipped=False, ignore_prefix="odd-")
    strays = {eid for eid in stored if eid not in ledger.messages and not eid.startswith("odd-")}
    assert not strays, f"bad entries were stored: {sorted(strays)}"
    cases = db_cases(sessions)
    assert not [c for c in cases if c.startswith("bad-")], "a bad entry created a case"
    status = group_status(client, settings)
    assert status["pending"] == 0 and not status["undelivered"], f"entries left in the group: {status}"


@PROPERTY_SETTINGS
@given(case=hostile_streams())
def test_hostile_entries_never_stop_the_consumer(case, settings, engine, sessions, redis_client, feed_city):  # type: ignore[no-untyped-def]
    ledger, items, batch = case
    clear_cases(engine)
    ex_settings = _example_settings(settings)
    try:
        _check_hostile(ex_settings, sessions, redis_client, feed_city, ledger, items, batch)
    finally:
        _forget(redis_client, ex_settings)


# Single entries that, on their own, once wedged a consumer: each must be dead-lettered (or,
# for the contract-valid oddities, applied) while the good traffic around it flows on.
POISON = [
    Hostile("invalid UTF-8 in the event value", (("event", b'{"event_id": "\xff\xfe"}'),), frozenset({U})),
    Hostile("invalid UTF-8 field name", ((b"\xc3\x28", b"x"),), frozenset({U})),
    _json("NUL in description", _base(event_id="odd-@ID@", case_id="odd-@ID@", description="a\x00b"), None),
    _json("year 1 with +08:00 (before 0001-01-01 UTC)",
          _base(event_id="odd-@ID@", case_id="odd-@ID@", occurred_at="0001-01-01T00:00:00+08:00"), None),
    _json("year 1 with -01:00 (within the UTC range)",
          _base(event_id="odd-@ID@", case_id="odd-@ID@", occurred_at="0001-01-01T00:00:00-01:00"), None),
    _json("year 9999 with -08:00 (after 9999-12-31 UTC)", _base(occurred_at="9999-12-31T23:59:59-08:00"),
          frozenset({F})),
    _json("description nested 200 deep", _base(description=_nested(200)), frozenset({S})),
    _raw("array nested 5000 deep", "[" * 5000 + "]" * 5000, frozenset({U})),
]


@pytest.mark.parametrize("hostile", POISON, ids=[h.label for h in POISON])
def test_poison_entry_does_not_wedge_the_consumer(hostile, settings, engine, sessions, redis_client, feed_city):  # type: ignore[no-untyped-def]
    ledger = random_ledger(random.Random(7), 2, prefix="g", tie_prob=0.0)
    valid = list(ledger.messages.values())
    items = valid[: len(valid) // 2] + [hostile] + valid[len(valid) // 2:]
    _check_hostile(settings, sessions, redis_client, feed_city, ledger, items, batch=500)
