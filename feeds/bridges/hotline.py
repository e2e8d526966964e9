"""The 12345 hotline bridge: 工单 records → ``reported`` / ``updated`` / ``voided`` / ``rated``.

The 工单 format, the mapping and the reason codes are in docs/sources.md ("12345 hotline").
One record is one 工单 operation (``操作``): 受理 (the new 工单: ``reported``), 补充 and 催办
(``updated``), 撤单 (``voided``) and 回访 (``rated``, which feeds 社会评价). The case of a
工单 is ``hl12345-<工单编号>``; every event id is derived from the 工单编号 and the
operation (its ``操作编号``, else its time), so the same record always gives the same events.

诉求人 and 联系电话 are personal data: they are masked (张** / 138****1234) before anything
is published or kept in a dead letter (:func:`scrub`), and mobile numbers inside the free
text are masked too.

Classification: the mapping table (诉求分类 → kind + 小类) first; a 工单 without 诉求分类
by the keyword rules over 诉求内容; else the dead letter ``unmapped_class``, for a person to
add the 诉求分类 to the table and ``gridhall deadletters retry --reason unmapped_class``.

Addresses: an optional geocoder (:class:`Geocoder`) turns 诉求地址 into a point and a grid;
without one (or without an answer) the address alone is published and the ingest keeps the
case as 未定位 until the centre locates it.
"""

from __future__ import annotations

import csv
import importlib
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from dashboard.rules.lifecycle import EventType
from dashboard.rules.vocab import Kind, Satisfaction, Source, Urgency
from dashboard.settings import Settings

from ..contract import CaseEventMessage, DeadReason
from .bridge import BridgeSpec, Mapper, Unmappable, register

log = logging.getLogger(__name__)

HOTLINE = "hotline"
CASE_PREFIX = "hl12345-"
ACTOR = "12345"
_ORDER_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,47}$")
_OP_NO = re.compile(r"^[A-Za-z0-9._:-]{1,40}$")

# The canonical field names, each with the names also accepted for it (first found wins).
FIELDS: dict[str, tuple[str, ...]] = {
    "工单编号": ("工单编号", "order_no"),
    "操作": ("操作", "operation"),
    "操作编号": ("操作编号", "operation_id"),
    "操作时间": ("操作时间", "回访时间", "operated_at"),
    "受理时间": ("受理时间", "来电时间", "来电/受理时间", "received_at"),
    "诉求人": ("诉求人", "caller"),
    "联系电话": ("联系电话", "phone"),
    "诉求内容": ("诉求内容", "content"),
    "诉求地址": ("诉求地址", "address"),
    "经度": ("经度", "lon"),
    "纬度": ("纬度", "lat"),
    "诉求分类": ("诉求分类", "category"),
    "承办单位": ("承办单位", "unit"),
    "办理时限": ("办理时限", "deadline"),
    "紧急程度": ("紧急程度", "urgency"),
    "满意度": ("满意度", "回访结果", "回访结果/满意度", "satisfaction"),
}

# 操作 → what it becomes. 受理 is the default when the field is empty.
OPERATIONS: dict[str, EventType] = {
    "受理": EventType.REPORTED, "新建": EventType.REPORTED, "派单": EventType.REPORTED,
    "补充": EventType.UPDATED, "催办": EventType.UPDATED,
    "撤单": EventType.VOIDED,
    "回访": EventType.RATED,
}
SATISFACTION: dict[str, Satisfaction | int] = {
    "满意": Satisfaction.SATISFIED, "非常满意": Satisfaction.SATISFIED,
    "基本满意": Satisfaction.BASICALLY_SATISFIED,
    "不满意": Satisfaction.DISSATISFIED, "非常不满意": Satisfaction.DISSATISFIED,
    **{str(n): n for n in range(1, 6)},
}
URGENCY = {"紧急": Urgency.URGENT, "特急": Urgency.URGENT, "加急": Urgency.URGENT,
           "一般": Urgency.NORMAL, "普通": Urgency.NORMAL, "": Urgency.NORMAL}


# -- personal data -------------------------------------------------------------------------------
_PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_DIGITS = re.compile(r"[0-9]{7,}")


def mask_name(name: str) -> str:
    """张三 → 张**: the first character, then two stars whatever the length."""
    name = name.strip()
    return f"{name[0]}**" if name else ""


def mask_phone(text: str) -> str:
    """13812341234 → 138****1234; any other run of 7 digits or more keeps its first 3 and last 2."""
    text = _PHONE.sub(lambda m: m.group(0)[:3] + "****" + m.group(0)[-4:], text)
    return _DIGITS.sub(lambda m: m.group(0)[:3] + "*" * (len(m.group(0)) - 5) + m.group(0)[-2:], text)


def mask_mobiles(text: str) -> str:
    """Mobile numbers inside free text → 138****1234 (other digits, e.g. house numbers, kept)."""
    return _PHONE.sub(lambda m: m.group(0)[:3] + "****" + m.group(0)[-4:], text)


def scrub(raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of a 工单 record fit to keep: 诉求人 and 联系电话 masked, mobiles in text masked."""
    out: dict[str, Any] = {}
    person = set(FIELDS["诉求人"])
    phone = set(FIELDS["联系电话"])
    for key, value in raw.items():
        if isinstance(value, str):
            if key in person:
                value = " ".join(mask_phone(part) if any(c.isdigit() for c in part) else mask_name(part)
                                 for part in value.split())
            elif key in phone:
                value = mask_phone(value)
            else:
                value = mask_mobiles(value)
        elif key in person or key in phone:
            value = "**"
        out[key] = value
    return out


# -- the mapping table and keyword rules ---------------------------------------------------------
@dataclass(frozen=True)
class ClassRule:
    kind: Kind
    class_code: str


def _data_file(name: str) -> Path:
    return Path(str(resources.files("feeds.bridges").joinpath("data", name)))


DEFAULT_MAPPING = _data_file("hotline_classes.csv")
DEFAULT_KEYWORDS = _data_file("hotline_keywords.csv")


def _read_rules(path: Path, key: str) -> list[tuple[str, ClassRule]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    rows: list[tuple[str, ClassRule]] = []
    reader = csv.DictReader(text.splitlines())
    missing = {key, "kind", "class_code"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"{path}: needs the columns {key}, kind, class_code (missing {', '.join(sorted(missing))})")
    for row in reader:
        name = (row.get(key) or "").strip()
        if not name:
            continue
        try:
            kind = Kind((row.get("kind") or "").strip())
        except ValueError:
            raise ValueError(f"{path}:{reader.line_num}: kind must be component or event") from None
        code = (row.get("class_code") or "").strip()
        if not code:
            raise ValueError(f"{path}:{reader.line_num}: class_code is empty")
        rows.append((name, ClassRule(kind, code)))
    return rows


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text).replace("／", "/").replace("-", "/").replace(">", "/")


@dataclass(frozen=True)
class HotlineRules:
    """诉求分类 → 小类 (exact, after white space is removed; or its last segment), then keywords."""

    table: dict[str, ClassRule]
    keywords: list[tuple[str, ClassRule]]

    @classmethod
    def load(cls, mapping: Path | None = None, keywords: Path | None = None) -> HotlineRules:
        table = {_norm(name): rule for name, rule in _read_rules(mapping or DEFAULT_MAPPING, "诉求分类")}
        words = _read_rules(keywords or DEFAULT_KEYWORDS, "keyword")
        return cls(table, words)

    def by_leaf(self) -> dict[str, ClassRule]:
        """The table by the last segment of its 诉求分类 (a segment two rows share is left out)."""
        leaves: dict[str, ClassRule | None] = {}
        for name, rule in self.table.items():
            leaf = name.rsplit("/", 1)[-1]
            leaves[leaf] = rule if leaf not in leaves or leaves[leaf] == rule else None
        return {leaf: rule for leaf, rule in leaves.items() if rule is not None}

    def classify(self, category: str, content: str) -> ClassRule:
        if category:
            name = _norm(category)
            rule = self.table.get(name) or self.by_leaf().get(name.rsplit("/", 1)[-1])
            if rule is None:
                raise Unmappable(DeadReason.UNMAPPED_CLASS,
                                 f"诉求分类 {category[:80]!r} is not in the mapping table: add it, then retry")
            return rule
        for word, rule in self.keywords:
            if word in content:
                return rule
        raise Unmappable(DeadReason.UNMAPPED_CLASS,
                         "no 诉求分类 and no keyword rule matches 诉求内容: map it, then retry")


# -- addresses ------------------------------------------------------------------------------------
class Geocoded(Protocol):
    @property
    def lon(self) -> float: ...
    @property
    def lat(self) -> float: ...
    @property
    def grid_code(self) -> str | None: ...


class Geocoder(Protocol):
    """Address text → a point (dashboard/geocode's ``Geocoder`` fits)."""

    def geocode(self, text: str) -> Geocoded | None: ...


# -- times ---------------------------------------------------------------------------------------
_LOCAL_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
                  "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M")
_SPAN = re.compile(r"^([0-9]{1,3})\s*(小时|个?工作日|天|日)$")


def parse_local_time(text: str, tz: ZoneInfo, field: str) -> datetime:
    """A 工单 time: ``2026-11-24 07:31[:00]`` (city time), ``2026/11/24 07:31`` or RFC 3339."""
    text = text.strip()
    if not text:
        raise Unmappable(DeadReason.BAD_TIME, f"{field} is missing")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None:
        for fmt in _LOCAL_FORMATS:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if value is None:
        raise Unmappable(DeadReason.BAD_TIME, f"{field} {text[:40]!r} is not a time (e.g. 2026-11-24 07:31:00)")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    if not 1990 <= value.year <= 2999:
        raise Unmappable(DeadReason.BAD_TIME, f"{field} {text[:40]!r} is out of range")
    return value


def parse_deadline(text: str, start: datetime, tz: ZoneInfo) -> datetime | None:
    """办理时限: a time, or a span from 受理时间 (24小时, 3天, 5个工作日: weekends skipped)."""
    text = text.strip()
    if not text:
        return None
    match = _SPAN.match(text)
    if match is None:
        return parse_local_time(text, tz, "办理时限")
    n, unit = int(match.group(1)), match.group(2)
    if unit == "小时":
        return start + timedelta(hours=n)
    if unit in ("天", "日"):
        return start + timedelta(days=n)
    day: date = start.date()
    left = n
    while left:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return datetime.combine(day, start.timetz())


# -- the mapper ----------------------------------------------------------------------------------
def _get(raw: dict[str, Any], name: str) -> str:
    for key in FIELDS[name]:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Unmappable(DeadReason.BAD_RECORD, f"{name} must be text (got {type(value).__name__})")
        text = str(value).strip()
        if "\x00" in text:
            raise Unmappable(DeadReason.BAD_RECORD, f"{name} contains a NUL character")
        if text:
            return text
    return ""


def _compact(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


class HotlineMapper:
    """One 工单 record → its case events (a :data:`Mapper`)."""

    def __init__(self, rules: HotlineRules, tz: ZoneInfo, geocoder: Geocoder | None = None) -> None:
        self.rules = rules
        self.tz = tz
        self.geocoder = geocoder

    def __call__(self, raw: dict[str, Any]) -> list[CaseEventMessage]:
        order_no = _get(raw, "工单编号")
        if not order_no:
            raise Unmappable(DeadReason.BAD_RECORD, "工单编号 is missing")
        if not _ORDER_NO.match(order_no):
            raise Unmappable(DeadReason.BAD_RECORD,
                             f"工单编号 {order_no[:60]!r} must be letters, digits and ._:- (at most 48)")
        op_name = _get(raw, "操作") or "受理"
        op = OPERATIONS.get(op_name)
        if op is None:
            raise Unmappable(DeadReason.BAD_RECORD,
                             f"操作 {op_name[:20]!r} is not one of {', '.join(OPERATIONS)}")
        case_id = CASE_PREFIX + order_no
        if op is EventType.REPORTED:
            return [self._reported(raw, case_id)]
        at = parse_local_time(_get(raw, "操作时间"), self.tz, "操作时间")
        op_no = _get(raw, "操作编号")
        if op_no and not _OP_NO.match(op_no):
            raise Unmappable(DeadReason.BAD_RECORD, f"操作编号 {op_no[:60]!r} must be letters, digits and ._:-")
        tag = {"补充": "supp", "催办": "urge", "撤单": "void", "回访": "rate"}[op_name]
        event_id = f"{case_id}-{tag}-{op_no or _compact(at)}"
        common: dict[str, Any] = {"v": 1, "event_id": event_id, "case_id": case_id, "type": op,
                                  "occurred_at": at, "source": Source.HOTLINE_12345,
                                  "actor": f"{ACTOR}:{op_name}"}
        if op is EventType.VOIDED:  # the case keeps its 诉求内容: a 撤单's reason is not a new description
            return [CaseEventMessage(**common)]
        if op is EventType.RATED:
            answer = _get(raw, "满意度")
            score = SATISFACTION.get(answer)
            if score is None:
                raise Unmappable(DeadReason.BAD_RECORD,
                                 f"满意度 {answer[:20]!r} is not 满意/基本满意/不满意 or 1–5")
            return [CaseEventMessage(**common, satisfaction=score)]
        # 补充 / 催办: what the record carries changes the case (a 补充 carries the whole current
        # 诉求内容); a 催办 with nothing else is kept in the case's timeline only.
        fields: dict[str, Any] = {}
        content = _get(raw, "诉求内容")
        if content:
            fields["description"] = self._description(raw, content)
        address = _get(raw, "诉求地址")
        if address:
            fields.update(self._place(raw, address))
        if _get(raw, "诉求分类"):
            rule = self.rules.classify(_get(raw, "诉求分类"), content)
            fields.update(kind=rule.kind, class_code=rule.class_code)
        deadline = parse_deadline(_get(raw, "办理时限"), at, self.tz)
        if deadline is not None:
            fields["deadline_at"] = deadline
        urgency = _get(raw, "紧急程度")
        if urgency:
            fields["urgency"] = self._urgency(urgency)
        return [CaseEventMessage(**common, **fields)]

    def _urgency(self, text: str) -> Urgency:
        value = URGENCY.get(text)
        if value is None:
            raise Unmappable(DeadReason.BAD_RECORD, f"紧急程度 {text[:20]!r} is not 紧急 or 一般")
        return value

    def _description(self, raw: dict[str, Any], content: str) -> str:
        person = " ".join(part for part in (scrub({"诉求人": _get(raw, "诉求人")})["诉求人"],
                                            mask_phone(_get(raw, "联系电话"))) if part)
        text = mask_mobiles(content)
        return f"{text}（诉求人：{person}）" if person else text

    def _place(self, raw: dict[str, Any], address: str) -> dict[str, Any]:
        """The address; the point the 工单 gives (经度/纬度, WGS84), else the geocoder's, else none."""
        place: dict[str, Any] = {"address": mask_mobiles(address)[:256]}
        lon, lat = _get(raw, "经度"), _get(raw, "纬度")
        if lon or lat:
            try:
                x, y = float(lon), float(lat)
            except ValueError:
                raise Unmappable(DeadReason.BAD_RECORD,
                                 f"经度/纬度 {lon[:20]!r}, {lat[:20]!r} are not numbers") from None
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                raise Unmappable(DeadReason.BAD_RECORD, f"经度/纬度 {x}, {y} are out of range")
            place.update(lon=x, lat=y)
        elif self.geocoder is not None:
            found = self.geocoder.geocode(address)
            if found is not None:
                place.update(lon=float(found.lon), lat=float(found.lat))
                grid = getattr(found, "grid_code", None)
                if grid:
                    place["grid_code"] = grid
        return place

    def _reported(self, raw: dict[str, Any], case_id: str) -> CaseEventMessage:
        at = parse_local_time(_get(raw, "受理时间"), self.tz, "受理时间")
        content = _get(raw, "诉求内容")
        if not content:
            raise Unmappable(DeadReason.BAD_RECORD, "诉求内容 is missing")
        address = _get(raw, "诉求地址")
        if not address:
            raise Unmappable(DeadReason.NO_PLACE, "诉求地址 is missing: the 工单 has no place")
        rule = self.rules.classify(_get(raw, "诉求分类"), content)
        deadline = parse_deadline(_get(raw, "办理时限"), at, self.tz)
        return CaseEventMessage(
            v=1, event_id=f"{case_id}-rpt", case_id=case_id, type=EventType.REPORTED, occurred_at=at,
            source=Source.HOTLINE_12345, actor=ACTOR, number=None, kind=rule.kind, class_code=rule.class_code,
            description=self._description(raw, content)[:4000], urgency=self._urgency(_get(raw, "紧急程度")),
            deadline_at=deadline, **self._place(raw, address))


GEOCODER_MODULE = "dashboard.geocode"  # Geocoder.load(session).geocode(text), when the project has it


def load_geocoder(settings: Settings) -> Geocoder | None:
    """The city's geocoder (``dashboard.geocode.Geocoder``, loaded from the database), or None
    when the project has none or it cannot be loaded (then addresses go without a point)."""
    try:
        module = importlib.import_module(GEOCODER_MODULE)
    except ImportError:
        return None
    factory = getattr(module, "Geocoder", None)
    if factory is None or not hasattr(factory, "load"):
        return None
    from dashboard.store.db import make_engine, session_factory

    engine = make_engine(settings)
    try:
        with session_factory(engine)() as session:
            return cast(Geocoder, factory.load(session))
    except Exception:
        log.warning("the geocoder could not be loaded: 工单 without 经度/纬度 go without a point", exc_info=True)
        return None
    finally:
        engine.dispose()


def hotline_mapper(settings: Settings, geocoder: Geocoder | None = None) -> Mapper:
    """The mapper of these settings (GRIDHALL_HOTLINE_MAPPING / _KEYWORDS, and the city's
    geocoder when there is one): the bridge's and ``deadletters retry``'s alike."""
    return HotlineMapper(HotlineRules.load(settings.hotline_mapping, settings.hotline_keywords),
                         settings.tz, geocoder if geocoder is not None else load_geocoder(settings))


register(BridgeSpec(HOTLINE, hotline_mapper, scrub))
