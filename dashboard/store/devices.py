"""The video/IoT device registry: cameras and sensors (device → point → grid) and alarm types
(type → 小类 and urgency), imported by ``gridhall import devices`` and read by the alarm bridge
(feeds/bridges/alarms.py). File formats: docs/sources.md ("Alarms").

An import replaces the whole registry, all or nothing: every problem of the files is listed and
nothing is written while there is one.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.vocab import DeviceKind, Kind
from dashboard.store.db import transaction
from dashboard.store.models import AlarmType, Device, Grid
from dashboard.store.reference import Reference

__all__ = ["AlarmTypeInfo", "DeviceInfo", "DeviceRegistry", "DevicesError", "import_devices", "load_registry",
           "read_alarm_types", "read_devices"]

_YES = {"yes", "y", "true", "1", "是", "紧急"}
_NO = {"no", "n", "false", "0", "否", "", "一般"}


class DevicesError(ValueError):
    """The registry files cannot be imported; ``problems`` lists every one (file:line: what)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    kind: str  # camera / sensor
    name: str
    lon: float
    lat: float
    grid_code: str


@dataclass(frozen=True)
class AlarmTypeInfo:
    code: str
    name: str
    kind: str  # component / event: the kind of the 小类
    class_code: str
    urgent: bool


@dataclass
class DeviceRegistry:
    """What the alarm bridge maps with: devices by id, alarm types by code."""

    devices: dict[str, DeviceInfo] = field(default_factory=dict)
    types: dict[str, AlarmTypeInfo] = field(default_factory=dict)


def read_devices(path: Path, ref: Reference) -> tuple[list[DeviceInfo], list[str]]:
    """Devices of a CSV (header: device_id,kind,name,lon,lat) or GeoJSON (Point features whose
    properties hold device_id, kind, name) file, each located in its grid; and the problems."""
    problems: list[str] = []
    out: list[DeviceInfo] = []
    seen: set[str] = set()
    for where, props, lon, lat in _device_rows(path, problems):
        device_id = str(props.get("device_id") or "").strip()
        kind = str(props.get("kind") or "").strip().lower()
        name = str(props.get("name") or "").strip() or device_id
        if not device_id or len(device_id) > 64:
            problems.append(f"{where}: device_id is missing or longer than 64 characters")
            continue
        if device_id in seen:
            problems.append(f"{where}: device {device_id} appears twice")
            continue
        seen.add(device_id)
        if kind not in DeviceKind.labels():
            problems.append(f"{where}: kind {kind!r} of {device_id} is not camera or sensor")
            continue
        if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
            problems.append(f"{where}: {device_id} has no valid lon/lat")
            continue
        grid = ref.locate(lon, lat)
        if grid is None:
            problems.append(f"{where}: {device_id} at {lon}, {lat} is in no unit grid of the city")
            continue
        out.append(DeviceInfo(device_id, kind, name[:100], lon, lat, grid))
    return out, problems


def _device_rows(path: Path, problems: list[str]) -> Iterable[tuple[str, dict[str, Any], float | None, float | None]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: cannot read: {exc}")
        return
    if path.suffix.lower() in (".geojson", ".json"):
        try:
            data = json.loads(text)
            features = data["features"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"{path.name}: not a GeoJSON FeatureCollection")
            return
        for i, feature in enumerate(features, 1):
            where = f"{path.name}: feature {i}"
            try:
                geometry = feature["geometry"]
                if geometry["type"] != "Point":
                    raise ValueError
                lon, lat = (_number(v) for v in geometry["coordinates"][:2])
                props = dict(feature.get("properties") or {})
            except (KeyError, TypeError, ValueError):
                problems.append(f"{where}: not a Point feature")
                continue
            yield where, props, lon, lat
        return
    reader = csv.DictReader(text.splitlines())
    for i, row in enumerate(reader, 2):
        yield f"{path.name}:{i}", row, _number(row.get("lon")), _number(row.get("lat"))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and value.__class__ is not bool else None


def read_alarm_types(path: Path, ref: Reference) -> tuple[list[AlarmTypeInfo], list[str]]:
    """Alarm types of a CSV file (header: alarm_type,name,kind,class_code,urgent), each 小类 checked
    against the active classification; and the problems."""
    problems: list[str] = []
    out: list[AlarmTypeInfo] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path.name}: cannot read: {exc}"]
    seen: set[str] = set()
    for i, row in enumerate(csv.DictReader(text.splitlines()), 2):
        where = f"{path.name}:{i}"
        code = (row.get("alarm_type") or "").strip()
        kind = (row.get("kind") or "").strip().lower()
        class_code = (row.get("class_code") or "").strip()
        urgent = (row.get("urgent") or "").strip().lower()
        if not code or len(code) > 32 or code in seen:
            problems.append(f"{where}: alarm_type {code!r} is missing, longer than 32 characters or repeated")
            continue
        seen.add(code)
        if kind not in Kind.labels():
            problems.append(f"{where}: kind {kind!r} of {code} is not component or event")
            continue
        if ref.classification.get(kind, class_code) is None:
            problems.append(f"{where}: class_code {class_code!r} ({kind}) of {code} is not in the "
                            f"classification {ref.classification.name}")
            continue
        if urgent not in _YES | _NO:
            problems.append(f"{where}: urgent {urgent!r} of {code} is not yes or no")
            continue
        name = (row.get("name") or "").strip() or code
        out.append(AlarmTypeInfo(code, name[:100], kind, class_code, urgent in _YES))
    return out, problems


def import_devices(sessions: sessionmaker[Session], ref: Reference, devices_path: Path,
                   types_path: Path) -> tuple[int, int]:
    """Replace the registry with the two files' devices and alarm types; (devices, types).

    Raises DevicesError listing every problem; nothing is written then.
    """
    devices, problems = read_devices(devices_path, ref)
    types, type_problems = read_alarm_types(types_path, ref)
    problems += type_problems
    if problems:
        raise DevicesError(problems)
    with transaction(sessions) as session:
        grid_ids = dict(session.execute(select(Grid.code, Grid.id)).all())
        session.execute(delete(Device))
        session.execute(delete(AlarmType))
        if devices:
            session.execute(insert(Device), [
                {"device_id": d.device_id, "kind": d.kind, "name": d.name, "lon": d.lon, "lat": d.lat,
                 "grid_id": grid_ids[d.grid_code]} for d in devices])
        if types:
            session.execute(insert(AlarmType), [
                {"code": t.code, "name": t.name, "kind": t.kind, "class_code": t.class_code, "urgent": t.urgent}
                for t in types])
    return len(devices), len(types)


def load_registry(session: Session) -> DeviceRegistry:
    """The registry as stored (what the alarm bridge maps with)."""
    registry = DeviceRegistry()
    for d in session.execute(select(Device.device_id, Device.kind, Device.name, Device.lon, Device.lat, Grid.code)
                             .join(Grid, Grid.id == Device.grid_id)):
        registry.devices[d.device_id] = DeviceInfo(d.device_id, d.kind, d.name, d.lon, d.lat, d.code)
    for t in session.scalars(select(AlarmType)):
        registry.types[t.code] = AlarmTypeInfo(t.code, t.name, t.kind, t.class_code, t.urgent)
    return registry
