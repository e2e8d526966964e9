"""Open311 GeoReport v2 on the SQL side: client apps' API keys, the service list, and cases read
as service requests (also in the GeoReport **Bulk** shape for open-data export).

No web here: ``api/open311.py`` serves it, ``feeds/open311.py`` turns a POST into a ``reported``
event on the stream (a case exists only once the ingest applied it), ``cli/open311.py`` manages
the keys and writes the Bulk export. docs/open311.md states the mapping for people.

- **Services** (:func:`load_services`): by default one service per 小类 of the active scheme, code
  ``E`` + the event class code or ``C`` + the component class code (``E06010``, ``C01001``); or the
  city's mapping file (``GRIDHALL_OPEN311_SERVICES``, TOML ``[[service]]`` tables).
- **Status**: ``closed`` for a case in a terminal stage (结案, 作废, 不予立案), else ``open``;
  ``status_notes`` the stage's name and the latest note (the description sent with the latest
  event after the report); ``agency_responsible`` the unit's name; ``expected_datetime`` the
  case's deadline; ``updated_datetime`` its last event. Times ISO 8601 with the city's offset.
"""

from __future__ import annotations

import hashlib
import secrets
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from dashboard.rules.classification import Classification
from dashboard.rules.lifecycle import TERMINAL, EventType, Stage
from dashboard.rules.vocab import Kind
from dashboard.store.models import Case, CaseEvent, Open311Key, Region, Unit
from dashboard.store.scope import Scope, case_condition, get_scope

KIND_PREFIX = {Kind.EVENT.value: "E", Kind.COMPONENT.value: "C"}
MEDIA_MARK = "[media_url] "  # the contract has no photo field: the URL rides in the description
KEY_PREFIX = "o311_"
MAX_NAME = 64
LAST_USED_EVERY = timedelta(minutes=1)
BULK_FIELDS = (
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
    "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url",
)
PUBLIC_FIELDS = frozenset(BULK_FIELDS) - {"description", "media_url"}  # anonymous reads (docs/open311.md)
_CLOSED = frozenset(s.value for s in TERMINAL)


class Open311Error(ValueError):
    """A mapping file or key command that cannot be carried out."""


# -- services -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Service:
    """One Open311 service: a code the clients use and the 小类 a request of it becomes."""

    service_code: str
    service_name: str
    description: str
    kind: str
    class_code: str
    group: str
    keywords: str = ""
    metadata: bool = False  # no per-service attributes (``attribute[...]`` go into the description)
    type: str = "realtime"


@dataclass(frozen=True)
class Services:
    by_code: dict[str, Service]
    by_class: dict[tuple[str, str], Service]

    def __iter__(self) -> Any:
        return iter(self.by_code.values())


def load_services(scheme: Classification, mapping: Path | None = None) -> Services:
    """The service list: the mapping file's, else one service per 小类 of ``scheme``."""
    services: list[Service] = []
    if mapping is None:
        for entry in scheme:
            kind = entry.kind.value
            services.append(Service(KIND_PREFIX[kind] + entry.minor_code, entry.minor_name,
                                    f"{entry.major_name} / {entry.minor_name}", kind, entry.minor_code,
                                    entry.major_name))
    else:
        try:
            data = tomllib.loads(mapping.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise Open311Error(f"{mapping}: {exc}") from None
        rows = data.get("service")
        if not isinstance(rows, list) or not rows:
            raise Open311Error(f"{mapping}: needs [[service]] tables")
        for n, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                raise Open311Error(f"{mapping}: service {n} is not a table")
            try:
                code, kind, class_code = str(row["service_code"]), str(row["kind"]), str(row["class_code"])
            except KeyError as exc:
                raise Open311Error(f"{mapping}: service {n} lacks {exc.args[0]}") from None
            found = scheme.get(kind, class_code) if kind in KIND_PREFIX else None
            if found is None:
                raise Open311Error(f"{mapping}: service {code}: no {kind} class {class_code} in {scheme.name}")
            if not code or len(code) > 32 or not all(c.isalnum() or c in "-_." for c in code):
                raise Open311Error(f"{mapping}: service code {code!r}: 1–32 letters, digits, - _ .")
            services.append(Service(code, str(row.get("service_name") or found.minor_name),
                                    str(row.get("description") or found.minor_name), kind, class_code,
                                    str(row.get("group") or found.major_name), str(row.get("keywords") or "")))
    by_code: dict[str, Service] = {}
    by_class: dict[tuple[str, str], Service] = {}
    for service in services:
        if service.service_code in by_code:
            raise Open311Error(f"service code {service.service_code} twice")
        by_code[service.service_code] = service
        by_class.setdefault((service.kind, service.class_code), service)
    return Services(by_code, by_class)


# -- keys -----------------------------------------------------------------------------------------
def key_digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def add_key(session: Session, name: str, region_code: str | None, now: datetime) -> tuple[Open311Key, str]:
    """A new key for client app ``name`` (scoped to ``region_code``; None: the city); its plaintext once."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise Open311Error(f"name: 1–{MAX_NAME} characters")
    if session.scalar(select(Open311Key.id).where(Open311Key.name == name)) is not None:
        raise Open311Error(f"a key named {name!r} exists")
    region_id = None
    if region_code:
        region = session.scalar(select(Region).where(Region.code == region_code))
        if region is None or region.level not in ("district", "street"):
            raise Open311Error(f"region {region_code}: no district or street with that code")
        region_id = region.id
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    row = Open311Key(name=name, key_hash=key_digest(plaintext), scope_region_id=region_id, created_at=now,
                     revoked=False)
    session.add(row)
    session.flush()
    return row, plaintext


def list_keys(session: Session) -> list[Open311Key]:
    return list(session.scalars(select(Open311Key).order_by(Open311Key.name)))


def revoke_key(session: Session, name: str) -> bool:
    row = session.scalar(select(Open311Key).where(Open311Key.name == name))
    if row is None:
        return False
    row.revoked = True
    return True


def verify_key(session: Session, plaintext: str, now: datetime) -> Open311Key | None:
    """The usable key of this plaintext (its use recorded), else None."""
    if not isinstance(plaintext, str) or not plaintext or len(plaintext) > 256:
        return None
    row = session.scalar(select(Open311Key).where(Open311Key.key_hash == key_digest(plaintext)))
    if row is None or row.revoked:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        row.last_used_at = now  # at most once a minute: a polling client is not a write per call
    return row


def key_scope(session: Session, key: Open311Key | None) -> Scope:
    return get_scope(session, key.scope_region_id if key is not None else None)


# -- requests -------------------------------------------------------------------------------------
def iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    """ISO 8601 with the city's offset (``2026-12-07T09:30:00+08:00``)."""
    return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")


def split_media(description: str | None) -> tuple[str | None, str | None]:
    """(description, media_url): the URL a POST put on the description's last line, taken out."""
    if not description:
        return description, None
    head, sep, last = description.rpartition("\n")
    if last.startswith(MEDIA_MARK):
        return (head if sep else None) or None, last[len(MEDIA_MARK):].strip() or None
    return description, None


@dataclass(frozen=True)
class RequestQuery:
    ids: Sequence[str] = ()  # overrides everything else (spec)
    service_codes: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: Sequence[str] = ()  # "open", "closed"
    limit: int = 1000
    offset: int = 0


def find_requests(session: Session, scope: Scope, services: Services, query: RequestQuery,
                  tz: ZoneInfo) -> list[dict[str, Any]]:
    """Cases in ``scope`` as GeoReport v2 service requests, newest report first."""
    stmt = select(Case).where(case_condition(scope))
    if query.ids:
        stmt = stmt.where(Case.case_id.in_(list(query.ids)))
    else:
        if query.service_codes:
            classes = [(s.kind, s.class_code) for c in query.service_codes
                       if (s := services.by_code.get(c)) is not None]
            if not classes:
                return []
            stmt = stmt.where(or_(*(and_(Case.kind == k, Case.class_code == c) for k, c in classes)))
        if query.start is not None:
            stmt = stmt.where(Case.reported_at >= query.start)
        if query.end is not None:
            stmt = stmt.where(Case.reported_at <= query.end)
        if set(query.statuses) == {"closed"}:
            stmt = stmt.where(Case.stage.in_(sorted(_CLOSED)))
        elif set(query.statuses) == {"open"}:
            stmt = stmt.where(Case.stage.not_in(sorted(_CLOSED)) | Case.stage.is_(None))
    stmt = stmt.order_by(Case.reported_at.desc(), Case.case_id).limit(query.limit).offset(query.offset)
    cases = list(session.scalars(stmt))
    return as_requests(session, cases, services, tz)


def as_requests(session: Session, cases: Iterable[Case], services: Services, tz: ZoneInfo) -> list[dict[str, Any]]:
    cases = list(cases)
    ids = [c.case_id for c in cases]
    notes: dict[str, str] = {}
    reported: dict[str, str] = {}  # the citizen's words: later events may replace the case's description
    units: dict[int, str] = {}
    if ids:
        for chunk in range(0, len(ids), 500):
            rows = session.execute(
                select(CaseEvent.case_id, CaseEvent.type, CaseEvent.payload)
                .where(CaseEvent.case_id.in_(ids[chunk:chunk + 500]))
                .order_by(CaseEvent.occurred_at, CaseEvent.id))
            for case_id, type_, payload in rows:
                text = payload.get("description") if isinstance(payload, dict) else None
                if not isinstance(text, str) or not text.strip():
                    continue
                if type_ == EventType.REPORTED.value:
                    reported.setdefault(case_id, text.strip())
                else:
                    notes[case_id] = text.strip()
        unit_ids = {c.unit_id for c in cases if c.unit_id is not None}
        if unit_ids:
            units = {uid: name for uid, name in session.execute(select(Unit.id, Unit.name)
                                                                .where(Unit.id.in_(unit_ids)))}
    return [request_of(c, services, tz, notes.get(c.case_id), units.get(c.unit_id or -1),
                       reported.get(c.case_id, c.description)) for c in cases]


def request_of(case: Case, services: Services, tz: ZoneInfo, note: str | None, unit_name: str | None,
               reported_text: str | None) -> dict[str, Any]:
    service = services.by_class.get((case.kind or "", case.class_code or ""))
    stage_label = Stage(case.stage).label if case.stage else None
    status_notes = "：".join(p for p in (stage_label, note) if p) or None
    description, media_url = split_media(reported_text)
    return {
        "service_request_id": case.case_id,
        "status": "closed" if case.stage in _CLOSED else "open",
        "status_notes": status_notes,
        "service_name": service.service_name if service else None,
        "service_code": service.service_code if service else None,
        "description": description,
        "agency_responsible": unit_name,
        "service_notice": None,
        "requested_datetime": iso(case.reported_at, tz),
        "updated_datetime": iso(case.last_event_at, tz),
        "expected_datetime": iso(case.deadline_at, tz),
        "address": case.address,
        "address_id": None,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lon,
        "media_url": media_url,
    }


def case_exists(session: Session, case_id: str) -> bool:
    return session.scalar(select(Case.id).where(Case.case_id == case_id)) is not None
