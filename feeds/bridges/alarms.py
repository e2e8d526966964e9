"""The video/IoT alarm bridge: camera and sensor alarms → ``reported`` / ``updated`` case events.

An alarm record (docs/sources.md, "Alarms"): ``alarm_id`` (the platform's own id), ``device_id``,
``alarm_type``, ``time`` (RFC 3339 with an offset), optional ``lon``/``lat`` (else the device's
point), ``image_url``, ``severity`` (1–5) and ``cleared`` (true: the device reports the
condition ended). The device registry (``gridhall import devices``, dashboard/store/devices.py)
gives the device's kind, point and grid, and the alarm type's 小类 and urgency.

**Merging.** A new alarm of a device and type that already has an alarm case whose latest alarm
is at most ``GRIDHALL_ALARM_MERGE_MINUTES`` away (or of the same grid and 小类), and which is
not ended in SQL, becomes an ``updated`` event on that case carrying the new ``alarm_count``;
anything else opens a new case (``reported``, source ``video_iot``, with ``device_id``,
``device_kind`` and ``alarm_type``). A ``cleared`` alarm is an ``updated`` event carrying
``alarm_cleared_at`` on the open case of that device and type: it is recorded, the case stays
open (核查 still applies).

**Deterministic and kill-safe.** The decision depends only on the alarm and on state kept in
Redis (which alarm case is open per device/type and per grid/小类; per case its latest alarm
time and count, kept a day past the window) plus the case's stage in SQL. The state changes of
one alarm, the memo of its decision (``alarms:seen:<alarm_id>``: the events it produced) and
the events themselves are committed in
the one MULTI/EXEC transaction of the bridge, with the inbox checkpoint. A kill before it
changes nothing; a re-read of the same alarm (a re-run of the same file) replays the memo: the
same events with the same ids, which the ingest absorbs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.lifecycle import TERMINAL, EventType, Stage
from dashboard.rules.vocab import DeviceKind, Source, Urgency
from dashboard.settings import Settings
from dashboard.store.devices import AlarmTypeInfo, DeviceInfo, DeviceRegistry, load_registry
from dashboard.store.models import Case
from dashboard.store.reference import Reference

from ..connection import is_cluster
from ..contract import CaseEventMessage, DeadReason, parse_time
from ..keys import ALARM_OPEN_KEY, alarm_case_key, alarm_seen_key
from .bridge import Bridge, BridgeSpec, Unmappable, register
from .inbox import Inbox, InboxRecord

log = logging.getLogger(__name__)

ALARMS = "alarms"
SEEN_TTL_S = 30 * 86_400  # how long a decision is remembered (a re-run within this replays it)
REGISTRY_STALE_S = 30  # an unknown device or type reloads a registry older than this, once
MAX_ID = 48  # case ids are "iot:" + the alarm id (64 at most)
_TRUE = {"true", "1", "yes", "y", "是"}
_FALSE = {"false", "0", "no", "n", "否", ""}


class AlarmMapper:
    """Map one alarm record to its case events; the state changes wait in :attr:`pending`.

    ``stage(pipe)`` queues them (and the decision's memo) on the bridge's transaction. With
    ``autocommit`` (a dead letter mapped again by ``gridhall deadletters retry``) they are
    written at once instead.
    """

    def __init__(self, client: redis.Redis, settings: Settings, sessions: sessionmaker[Session], ref: Reference,
                 *, autocommit: bool = False) -> None:
        self.client = client
        self.settings = settings
        self.sessions = sessions
        self.ref = ref
        self.window = timedelta(minutes=settings.alarm_merge_minutes)
        self.open_key = settings.key(ALARM_OPEN_KEY)
        # A case's state outlives the window by a day: after that no alarm can merge into it anyway.
        self.case_ttl_s = int(self.window.total_seconds()) + 86_400
        self.autocommit = autocommit
        self.registry = DeviceRegistry()
        self.loaded_at = -math.inf
        self.pending: list[tuple[str, tuple[Any, ...]]] = []  # (redis method, args)
        self._reload()

    # -- the registry ---------------------------------------------------------------------
    def _reload(self) -> None:
        with self.sessions() as session:
            self.registry = load_registry(session)
        if self.loaded_at > -math.inf:  # devices placed in grids imported since
            self.ref.reload(self.sessions)
        self.loaded_at = time.monotonic()

    def _device(self, device_id: str) -> DeviceInfo:
        device = self.registry.devices.get(device_id)
        if device is None and time.monotonic() - self.loaded_at > REGISTRY_STALE_S:
            self._reload()
            device = self.registry.devices.get(device_id)
        if device is None:
            raise Unmappable(DeadReason.UNKNOWN_DEVICE, f"device_id {device_id!r} is not in the device registry "
                             "(gridhall import devices); import it, then retry")
        return device

    def _type(self, code: str) -> AlarmTypeInfo:
        info = self.registry.types.get(code)
        if info is None and time.monotonic() - self.loaded_at > REGISTRY_STALE_S:
            self._reload()
            info = self.registry.types.get(code)
        if info is None:
            raise Unmappable(DeadReason.UNKNOWN_ALARM_TYPE, f"alarm_type {code!r} is not in the registry's alarm "
                             "types (no 小类 for it); add it, then retry")
        return info

    # -- mapping --------------------------------------------------------------------------
    def __call__(self, raw: dict[str, Any]) -> list[CaseEventMessage]:
        self.pending = []
        messages = self._map(raw)
        if self.autocommit:
            pipe = self.client.pipeline(transaction=not is_cluster(self.client))  # several slots in a cluster
            self.stage(pipe)
            pipe.execute()
        return messages

    def _map(self, raw: dict[str, Any]) -> list[CaseEventMessage]:
        alarm_id = _text(raw, "alarm_id", required=True, limit=MAX_ID)
        seen = cast(str | None, self.client.get(self.settings.key(alarm_seen_key(alarm_id))))
        if seen is not None:  # decided before (a re-run, or a re-read after a kill): the same events
            return [CaseEventMessage.model_validate(m) for m in orjson.loads(seen)]
        device = self._device(_text(raw, "device_id", required=True, limit=64))
        atype = self._type(_text(raw, "alarm_type", required=True, limit=32))
        at = _time(raw)
        lon, lat = _point(raw)
        if lon is None or lat is None:
            lon, lat, grid = device.lon, device.lat, device.grid_code
        else:
            located = self.ref.locate(lon, lat)
            if located is None:
                raise Unmappable(DeadReason.OUTSIDE_CITY, f"lon/lat {lon}, {lat} of the alarm is in no unit grid")
            grid = located
        cleared = _flag(raw, "cleared")
        image_url = _url(raw)
        severity = _severity(raw)
        dev_key = f"dev|{device.device_id}|{atype.code}"
        grid_key = f"grid|{grid}|{atype.kind}|{atype.class_code}"
        if cleared:
            case_id = cast(str | None, self.client.hget(self.open_key, dev_key))
            if case_id is None:
                raise Unmappable(DeadReason.NOTHING_TO_CLEAR, f"cleared alarm of {device.device_id} ({atype.code}): "
                                 "no alarm case of that device and type to record it on")
            messages = [CaseEventMessage(
                event_id=f"iot:{alarm_id}", case_id=case_id, type=EventType.UPDATED, occurred_at=at,
                source=Source.VIDEO_IOT, actor=device.device_id[:64], alarm_cleared_at=at)]
        else:
            merge = self._open_case(dev_key, grid_key, at)
            if merge is not None:
                case_id, count, last = merge
                messages = [CaseEventMessage(
                    event_id=f"iot:{alarm_id}", case_id=case_id, type=EventType.UPDATED, occurred_at=at,
                    source=Source.VIDEO_IOT, actor=device.device_id[:64], alarm_count=count + 1)]
                self._later("set", self.settings.key(alarm_case_key(case_id)),
                            orjson.dumps({"last": max(last, at).isoformat(), "count": count + 1}).decode(),
                            self.case_ttl_s)
            else:
                case_id = f"iot:{alarm_id}"
                kind_label = DeviceKind(device.kind).label
                text = f"{kind_label}告警：{atype.name}（{device.name}，{device.device_id}）"
                if severity is not None:
                    text += f"；严重程度 {severity}"
                if image_url is not None:
                    text += f"；图片 {image_url}"
                messages = [CaseEventMessage(
                    event_id=f"iot:{alarm_id}", case_id=case_id, type=EventType.REPORTED, occurred_at=at,
                    source=Source.VIDEO_IOT, actor=device.device_id[:64], kind=atype.kind,
                    class_code=atype.class_code, grid_code=grid, lon=lon, lat=lat, address=device.name[:256],
                    description=text, urgency=Urgency.URGENT if atype.urgent else Urgency.NORMAL,
                    device_id=device.device_id, device_kind=device.kind, alarm_type=atype.code, alarm_count=1)]
                self._later("set", self.settings.key(alarm_case_key(case_id)),
                            orjson.dumps({"last": at.isoformat(), "count": 1}).decode(), self.case_ttl_s)
            self._later("hset", self.open_key, dev_key, case_id)
            self._later("hset", self.open_key, grid_key, case_id)
        memo = orjson.dumps([m.model_dump(mode="json", exclude_none=True) for m in messages]).decode()
        self._later("set", self.settings.key(alarm_seen_key(alarm_id)), memo, SEEN_TTL_S)
        return messages

    def _open_case(self, dev_key: str, grid_key: str, at: datetime) -> tuple[str, int, datetime] | None:
        """The alarm case this alarm merges into: (case id, alarms so far, latest alarm time), or None."""
        if self.window <= timedelta(0):
            return None
        for case_id in dict.fromkeys(c for c in cast(list[str | None], self.client.hmget(
                self.open_key, [dev_key, grid_key])) if c):
            state = cast(str | None, self.client.get(self.settings.key(alarm_case_key(case_id))))
            if state is None:
                continue
            info = orjson.loads(state)
            last = datetime.fromisoformat(info["last"])
            if abs(at - last) > self.window or self._ended(case_id):
                continue
            return case_id, int(info["count"]), last
        return None

    def _ended(self, case_id: str) -> bool:
        """Whether SQL has the case ended (结案, 作废 …); one not there yet (the ingest lags) is open."""
        with self.sessions() as session:
            stage = session.scalar(select(Case.stage).where(Case.case_id == case_id))
        return stage is not None and Stage(stage) in TERMINAL

    def _later(self, method: str, *args: Any) -> None:
        self.pending.append((method, args))

    def stage(self, pipe: Any) -> None:
        """Queue the pending state changes of the last mapped alarm on ``pipe``."""
        for method, args in self.pending:
            if method == "set":
                key, value, ttl = args
                pipe.set(key, value, ex=ttl)
            else:
                getattr(pipe, method)(*args)
        self.pending = []


class AlarmBridge(Bridge):
    """The framework's bridge, with the mapper's state changes in the record's transaction."""

    mapper: AlarmMapper

    def handle(self, inbox: Inbox, record: InboxRecord) -> None:
        self.mapper.pending = []
        super().handle(_StagingInbox(inbox, self.mapper), record)


class _StagingInbox:
    """The inbox, whose checkpoint also queues the mapper's state changes (same transaction)."""

    def __init__(self, inbox: Inbox, mapper: AlarmMapper) -> None:
        self.inbox = inbox
        self.mapper = mapper
        self.source = inbox.source

    def records(self) -> Iterator[InboxRecord]:
        return self.inbox.records()

    def done(self, record: InboxRecord, pipe: Any) -> None:
        self.mapper.stage(pipe)  # empty when the record was dead-lettered
        self.inbox.done(record, pipe)

    def finish(self) -> None:
        self.inbox.finish()


# -- reading the record's fields -------------------------------------------------------------------
def _text(raw: dict[str, Any], name: str, *, required: bool = False, limit: int = 64) -> str:
    value = raw.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Unmappable(DeadReason.BAD_RECORD, f"{name} is missing")
        return ""
    if not isinstance(value, str):
        raise Unmappable(DeadReason.BAD_RECORD, f"{name} must be text (got {type(value).__name__})")
    value = value.strip()
    if len(value) > limit or "\x00" in value or any(c.isspace() for c in value):
        raise Unmappable(DeadReason.BAD_RECORD, f"{name} must be at most {limit} characters without spaces or NUL")
    return value


def _time(raw: dict[str, Any]) -> datetime:
    value = raw.get("time")
    parsed = parse_time(value) if isinstance(value, str) else None
    if parsed is None:
        raise Unmappable(DeadReason.BAD_TIME, f"time {str(value)[:40]!r} is not an RFC 3339 time with seconds "
                         "and a UTC offset, e.g. 2026-12-07T09:30:00+08:00")
    return parsed


def _number(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Unmappable(DeadReason.BAD_RECORD, f"lon/lat {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise Unmappable(DeadReason.BAD_RECORD, "lon/lat must be finite")
    return number


def _point(raw: dict[str, Any]) -> tuple[float | None, float | None]:
    lon, lat = _number(raw.get("lon")), _number(raw.get("lat"))
    if (lon is None) != (lat is None):
        raise Unmappable(DeadReason.BAD_RECORD, "lon and lat go together: give both or neither")
    if lon is not None and lat is not None and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise Unmappable(DeadReason.OUTSIDE_CITY, f"lon/lat {lon}, {lat} is not on the earth")
    return lon, lat


def _flag(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise Unmappable(DeadReason.BAD_RECORD, f"{name} must be true or false (got {str(value)[:20]!r})")


def _url(raw: dict[str, Any]) -> str | None:
    value = raw.get("image_url")
    if value is None or value == "":
        return None
    if (not isinstance(value, str) or len(value) > 500 or not value.startswith(("http://", "https://"))
            or any(c.isspace() or ord(c) < 32 for c in value)):
        raise Unmappable(DeadReason.BAD_RECORD, "image_url must be an http(s) URL of at most 500 characters")
    return value


def _severity(raw: dict[str, Any]) -> int | None:
    value = raw.get("severity")
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
        raise Unmappable(DeadReason.BAD_RECORD, f"severity must be 1–5 (got {str(value)[:20]!r})")
    return value


def make_mapper(settings: Settings, client: redis.Redis | None = None, *, autocommit: bool = False) -> AlarmMapper:
    """The mapper on the deployment's database and Redis."""
    from dashboard.rules.classification import Classification
    from dashboard.store.db import make_engine, session_factory

    from ..connection import connect

    sessions = session_factory(make_engine(settings))
    ref = Reference.load(sessions, Classification.from_settings(settings), settings)
    return AlarmMapper(client if client is not None else connect(settings), settings, sessions, ref,
                       autocommit=autocommit)


SPEC = register(BridgeSpec(ALARMS, lambda settings: make_mapper(settings, autocommit=True)))
