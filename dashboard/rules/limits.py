"""Time limits (时限) per stage × class × urgency × area class: data, not code.

A limits table is a CSV file with the columns

    stage, kind, major_code, minor_code, urgency, area_class, safety, limit, unit, source, note

- ``stage``: the clock the row is for: ``verify`` 核实, ``file`` 立案, ``dispatch`` 派遣,
  ``handle`` 处置, ``check`` 核查, ``close`` 结案 (the Chinese names are accepted too);
- ``kind`` (``component``/``event``/``*``), ``major_code`` and ``minor_code`` (a code of the
  active classification scheme, or ``*``), ``urgency`` (``normal``/``urgent``/``*``) and
  ``area_class`` (``A``/``B``/``C``/``*``) and ``safety`` (``yes``/``no``/``*``: the class is
  safety-critical, :attr:`dashboard.rules.classification.ClassEntry.safety`; optional column) say
  which cases the row applies to;
- ``limit`` (a positive number) and ``unit``: ``work_hours`` 工作时, ``work_days`` 工作日 or
  ``calendar_hours`` 自然时; or, for ``handle`` only, ``limit`` 不限时 (``none``) with no unit:
  no deadline, never overdue, left out of the 按期 rates (docs/lifecycle.md);
- ``source``: where the value comes from (a reference, or "gridhall default"); required;
- ``note``: free text.

Blank lines and lines whose first cell starts with ``#`` are comments.

Which row applies: the most specific one. A row naming a minor class (小类) beats one naming
a major class (大类), which beats one naming only the kind, which beats one naming no class;
among those, a specific urgency beats ``*``, then a specific safety flag, then a specific
area class, then a specific kind. Two rows that are equally specific for the same cases are a load
error (a tie), and so is a stage without a catch-all row (every selector ``*``), so every
case always finds a limit. Errors name ``file:line``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dashboard.rules.classification import SHIPPED_SCHEMES, Classification
from dashboard.rules.vocab import Kind
from dashboard.settings import ConfigError

DATA_DIR = Path(__file__).parent / "data" / "limits"
COLUMNS = ("stage", "kind", "major_code", "minor_code", "urgency", "area_class", "safety", "limit", "unit", "source",
           "note")
OPTIONAL_COLUMNS = frozenset({"safety", "note"})  # a table without them: safety * and no note
# ``limit`` of a row without a deadline (不限时): no deadline, never overdue, never judged.
UNLIMITED = frozenset({"none", "不限时"})
ANY = "*"

# Clock stages, in loop order, with their Chinese names.
STAGES: dict[str, str] = {
    "verify": "核实",
    "file": "立案",
    "dispatch": "派遣",
    "handle": "处置",
    "check": "核查",
    "close": "结案",
}
UNITS: dict[str, str] = {
    "work_hours": "工作时",
    "work_days": "工作日",
    "calendar_hours": "自然时",
}
WORKING_UNITS = frozenset({"work_hours", "work_days"})
_STAGE_ALIASES = {**{k: k for k in STAGES}, **{v: k for k, v in STAGES.items()}}
_UNIT_ALIASES = {**{k: k for k in UNITS}, **{v: k for k, v in UNITS.items()}}
_KIND_ALIASES = {"component": "component", "部件": "component", "event": "event", "事件": "event", ANY: ANY}
_URGENCY_ALIASES = {"normal": "normal", "一般": "normal", "urgent": "urgent", "紧急": "urgent", ANY: ANY}
_AREA_CLASSES = {"A", "B", "C", ANY}
_SAFETY_ALIASES = {"yes": "yes", "是": "yes", "no": "no", "否": "no", ANY: ANY}


class LimitsError(ConfigError, ValueError):
    """A limits table that cannot be used; the message names file:line.

    A ConfigError, like a bad setting or holiday file: commands report it in one line.
    """


@dataclass(frozen=True)
class LimitRow:
    """One row of a limits table (selectors normalised; ``minor_code`` set ⇒ ``major_code`` is ``*``)."""

    stage: str
    kind: str
    major_code: str
    minor_code: str
    urgency: str
    area_class: str
    limit: float  # math.inf: 不限时
    unit: str  # "" for 不限时
    source: str
    note: str = ""
    where: str = ""  # file:line, for messages
    safety: str = ANY  # yes / no / *: the case's class is safety-critical (ClassEntry.safety)

    @property
    def selector(self) -> tuple[str, str, str, str, str, str, str]:
        return (self.stage, self.kind, self.major_code, self.minor_code, self.urgency, self.area_class, self.safety)

    @property
    def unlimited(self) -> bool:
        """不限时: the clock has no deadline, is never overdue and its stage is never judged."""
        return math.isinf(self.limit)

    @property
    def specificity(self) -> tuple[int, int, int, int, int]:
        if self.minor_code != ANY:
            level = 3
        elif self.major_code != ANY:
            level = 2
        elif self.kind != ANY:
            level = 1
        else:
            level = 0
        return (level, self.urgency != ANY, self.safety != ANY, self.area_class != ANY, self.kind != ANY)

    @property
    def is_catch_all(self) -> bool:
        return self.selector[1:] == (ANY,) * 6

    @property
    def working(self) -> bool:
        """True for 工作时/工作日 (working time), False for 自然时 (calendar time)."""
        return self.unit in WORKING_UNITS

    def minutes(self, minutes_per_day: int) -> float:
        """The limit in minutes: working minutes for 工作时/工作日, calendar minutes for 自然时."""
        if self.unit == "work_days":
            return self.limit * minutes_per_day
        return self.limit * 60.0

    def describe(self) -> str:
        return "不限时" if self.unlimited else f"{self.limit:g} {UNITS[self.unit]}"


class LimitTable:
    """A validated limits table; :meth:`lookup` finds the row that applies to a case."""

    def __init__(self, rows: Iterable[LimitRow], name: str = "") -> None:
        self.name = name
        self.rows = list(rows)
        self._by_selector: dict[tuple[str, ...], LimitRow] = {}
        for row in self.rows:
            earlier = self._by_selector.get(row.selector)
            if earlier is not None:
                raise LimitsError(
                    f"{row.where}: 与 {earlier.where} 同样具体、适用于同一批案件（平局）："
                    f"{_show(row.selector)}"
                )
            self._by_selector[row.selector] = row
        missing = [s for s in STAGES if (s, ANY, ANY, ANY, ANY, ANY, ANY) not in self._by_selector]
        if missing:
            raise LimitsError(
                f"{name or '时限表'}: 环节 {', '.join(f'{s}（{STAGES[s]}）' for s in missing)} "
                "缺少兜底行（kind、major_code、minor_code、urgency、area_class、safety 均为 *；"
                "没有时限的环节写 limit 为 不限时）"
            )
        self._memo: dict[tuple[str, ...], LimitRow] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[LimitRow]:
        return iter(self.rows)

    def lookup(self, stage: str, kind: str | None = None, major_code: str | None = None,
               minor_code: str | None = None, urgency: str | None = None,
               area_class: str | None = None, safety: bool | None = None) -> LimitRow:
        """The most specific row for a case; unknown values (None) only match ``*``."""
        flag = "" if safety is None else ("yes" if safety else "no")
        key = (stage, kind or "", major_code or "", minor_code or "", urgency or "", area_class or "", flag)
        row = self._memo.get(key)
        if row is None:
            row = self._find(*key)
            self._memo[key] = row
        return row

    def _find(self, stage: str, kind: str, major: str, minor: str, urgency: str, area: str, safety: str) -> LimitRow:
        if stage not in STAGES:
            raise KeyError(f"unknown stage {stage!r}")
        kinds = [k for k in (kind, ANY) if k]
        classes: list[tuple[str, str, str]] = []
        if minor:
            classes += [(k, ANY, minor) for k in kinds]
        if major:
            classes += [(k, major, ANY) for k in kinds]
        classes += [(k, ANY, ANY) for k in kinds]
        best: LimitRow | None = None
        for k, maj, mnr in classes:
            for u in [x for x in (urgency, ANY) if x]:
                for a in [x for x in (area, ANY) if x]:
                    for f in [x for x in (safety, ANY) if x]:
                        row = self._by_selector.get((stage, k, maj, mnr, u, a, f))
                        if row is not None and (best is None or row.specificity > best.specificity):
                            best = row
        assert best is not None  # the catch-all row exists (checked at load)
        return best


def _show(selector: tuple[str, ...]) -> str:
    return ", ".join(f"{n}={v}" for n, v in zip(COLUMNS, selector, strict=False))


def default_path(scheme: str) -> Path | None:
    """The shipped default table of a shipped classification scheme (None for a city's own)."""
    if scheme in SHIPPED_SCHEMES:
        return DATA_DIR / f"default-{scheme}.csv"
    return None


def read_table(path: Path, classification: Classification | None = None) -> LimitTable:
    """Read and validate a limits CSV. Codes are checked against ``classification`` if given."""
    path = Path(path)
    rows: list[LimitRow] = []
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise LimitsError(f"{path}: 无法读取（{exc.strerror or exc}）") from None
    with fh:
        reader = csv.reader(fh)
        header: list[str] | None = None
        start = 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells or all(not c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL_COLUMNS]
                if missing:
                    raise LimitsError(f"{path.name}:{line}: 缺少列 {', '.join(missing)}（需要 {', '.join(COLUMNS)}）")
                unknown = [c for c in header if c not in COLUMNS]
                if unknown:
                    raise LimitsError(f"{path.name}:{line}: 未知列 {', '.join(unknown)}")
                continue
            if len(cells) > len(header):
                raise LimitsError(f"{path.name}:{line}: 有 {len(cells)} 个字段，表头只有 {len(header)} 列")
            raw = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
            try:
                rows.append(_row(raw, classification, f"{path.name}:{line}"))
            except LimitsError as exc:
                raise LimitsError(f"{path.name}:{line}: {exc}") from None
    if header is None:
        raise LimitsError(f"{path}: 空文件（需要表头 {', '.join(COLUMNS)}）")
    return LimitTable(rows, name=path.name)


def _row(raw: dict[str, str], classification: Classification | None, where: str) -> LimitRow:
    def pick(column: str, aliases: dict[str, str] | set[str], what: str) -> str:
        value = raw.get(column, "")
        if not value and column not in ("stage", "unit"):
            value = ANY  # an empty selector means "any"
        if isinstance(aliases, dict):
            if value not in aliases:
                raise LimitsError(f"{column} {value!r} 无效：应为 {what}")
            return aliases[value]
        if value not in aliases:
            raise LimitsError(f"{column} {value!r} 无效：应为 {what}")
        return value

    stage = pick("stage", _STAGE_ALIASES, "verify/file/dispatch/handle/check/close（或 核实/立案/派遣/处置/核查/结案）")
    kind = pick("kind", _KIND_ALIASES, "component/event/*（或 部件/事件）")
    urgency = pick("urgency", _URGENCY_ALIASES, "normal/urgent/*（或 一般/紧急）")
    area = pick("area_class", _AREA_CLASSES, "A/B/C/*")
    safety = pick("safety", _SAFETY_ALIASES, "yes/no/*（或 是/否）")
    major = raw.get("major_code", "") or ANY
    minor = raw.get("minor_code", "") or ANY
    text = raw.get("limit", "")
    if text.lower() in UNLIMITED:
        if stage != "handle":
            # The centre's own steps always have a limit; a class without one has no 处置 limit.
            raise LimitsError(f"limit {text}：只有处置（handle）环节可以不限时，{stage}（{STAGES[stage]}）必须有时限")
        if raw.get("unit", ""):
            raise LimitsError(f"limit {text} 没有单位：unit 应留空（不是 {raw['unit']!r}）")
        limit, unit = math.inf, ""
    else:
        unit = pick("unit", _UNIT_ALIASES, "work_hours/work_days/calendar_hours（或 工作时/工作日/自然时）")
        try:
            limit = float(text)
        except ValueError:
            raise LimitsError(f"limit {text!r} 不是数字（或 不限时/none）") from None
        if not (math.isfinite(limit) and limit > 0):
            raise LimitsError(f"limit {text!r} 应为正数（没有时限写 不限时）")
    source = raw.get("source", "")
    if not source:
        raise LimitsError("source 为空：每一行都要说明出处（参考文献或 gridhall default）")
    if classification is not None:
        major, minor = _check_codes(classification, kind, major, minor)
    elif minor != ANY:
        major = ANY
    return LimitRow(stage, kind, major, minor, urgency, area, limit, unit, source, raw.get("note", ""), where, safety)


def _check_codes(classification: Classification, kind: str, major: str, minor: str) -> tuple[str, str]:
    kinds = [Kind(kind)] if kind != ANY else list(Kind)
    if minor != ANY:
        entries = [e for k in kinds if (e := classification.get(k, minor)) is not None]
        if not entries:
            raise LimitsError(
                f"小类代码 {minor!r} 不在分类方案 {classification.name} 中"
                + (f"（{Kind(kind).label}）" if kind != ANY else "")
            )
        if major != ANY and all(e.major_code != major for e in entries):
            raise LimitsError(f"小类 {minor} 属于大类 {entries[0].major_code}，不是 {major}")
        return ANY, minor  # the minor class decides; its major is implied
    if major != ANY and not any(e.major_code == major and e.kind in kinds for e in classification):
        raise LimitsError(f"大类代码 {major!r} 不在分类方案 {classification.name} 中")
    return major, minor


def load_limits(classification: Classification, limits_file: Path | None = None) -> LimitTable:
    """The active table: ``limits_file`` (GRIDHALL_LIMITS_FILE) or the scheme's shipped default.

    A city's own classification scheme without a limits file gets the class-independent rows
    of the GB/T 47678.5 default (its class rows name codes that mean nothing in that scheme).
    """
    if limits_file is not None:
        try:
            return read_table(Path(limits_file), classification)
        except LimitsError as exc:
            raise LimitsError(f"GRIDHALL_LIMITS_FILE: {exc}") from None
    path = default_path(classification.name)
    if path is not None:
        return read_table(path, classification)
    generic = read_table(DATA_DIR / "default-gbt47678-2026.csv")
    return LimitTable([r for r in generic if r.major_code == ANY and r.minor_code == ANY],
                      name=f"{generic.name} (class-independent rows)")
