"""Classification of 部件 (components) and 事件 (events): schemes, code rules and loading.

A scheme is a CSV file with the columns ``kind, major_code, major_name, minor_code,
minor_name, source`` (the layout of the project's reference table) and an optional
``safety`` column (``yes`` for a safety-critical class: see :attr:`ClassEntry.safety`). Two schemes ship with
gridhall; a city may point GRIDHALL_CLASSIFICATION at its own file (a 311 service with its
own request types works the same way) and add extension classes (扩展部件/扩展事件) from a
second file in the same format. Every row keeps its provenance; gridhall invents no codes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dashboard.rules.vocab import Kind

if TYPE_CHECKING:
    from dashboard.settings import Settings

DATA_DIR = Path(__file__).parent / "data" / "classification"
COLUMNS = ("kind", "major_code", "major_name", "minor_code", "minor_name", "source")
# Optional: a table without it has no safety-critical class.
SAFETY_COLUMN = "safety"
_SAFETY = {"yes": True, "是": True, "": False, "no": False, "否": False}


class ClassificationError(ValueError):
    """A classification row or code breaks the scheme's rules."""


@dataclass(frozen=True)
class CodeRule:
    """How codes of one scheme are formed."""

    description: str
    major: re.Pattern[str]
    minor: re.Pattern[str]
    minor_extends_major: bool
    # Allowed major codes per kind (None: any code that matches the pattern).
    majors: dict[Kind, re.Pattern[str]] | None = None

    def check(self, kind: Kind, major_code: str, minor_code: str) -> None:
        """Raise ClassificationError naming the broken rule."""
        if not self.major.fullmatch(major_code):
            raise ClassificationError(
                f"大类代码 {major_code!r} 不符合规则：{self.description}"
            )
        if not self.minor.fullmatch(minor_code):
            raise ClassificationError(
                f"小类代码 {minor_code!r} 不符合规则：{self.description}"
            )
        if self.minor_extends_major and not minor_code.startswith(major_code):
            raise ClassificationError(
                f"小类代码 {minor_code!r} 必须以其大类代码 {major_code!r} 开头（{self.description}）"
            )
        if self.majors is not None and not self.majors[kind].fullmatch(major_code):
            raise ClassificationError(
                f"大类代码 {major_code!r} 不是{kind.label}的大类（{self.description}）"
            )


RULES: dict[str, CodeRule] = {
    # GB/T 47678.5-2026: 5-digit type code = 2 大类 + 3 小类; components 01–05, matters 01–10.
    "gbt47678-2026": CodeRule(
        description="GB/T 47678.5-2026：大类2位数字，小类5位数字（大类2位+小类3位）；部件大类01–05，事项大类01–10",
        major=re.compile(r"[0-9]{2}"),
        minor=re.compile(r"[0-9]{5}"),
        minor_extends_major=True,
        majors={Kind.COMPONENT: re.compile(r"0[1-5]"), Kind.EVENT: re.compile(r"0[1-9]|10")},
    ),
    # Beijing local codes: 1 (部件) / 2 (事件) + 2-digit major, then + 2-digit minor.
    "cjt214-beijing": CodeRule(
        description="北京CJ/T 214式本地代码：大类4位（部件1xxx、事件2xxx），小类6位（大类4位+2位）",
        major=re.compile(r"[12][0-9]{3}"),
        minor=re.compile(r"[0-9]{6}"),
        minor_extends_major=True,
        majors={Kind.COMPONENT: re.compile(r"1[0-9]{3}"), Kind.EVENT: re.compile(r"2[0-9]{3}")},
    ),
}

GENERIC_RULE = CodeRule(
    description="自定义分类：代码为1–32位字母、数字、点、下划线或连字符",
    major=re.compile(r"[A-Za-z0-9._-]{1,32}"),
    minor=re.compile(r"[A-Za-z0-9._-]{1,32}"),
    minor_extends_major=False,
)

SHIPPED_SCHEMES = tuple(sorted(RULES))


@dataclass(frozen=True)
class ClassEntry:
    """One minor class (小类) and the major class (大类) it belongs to."""

    kind: Kind
    major_code: str
    major_name: str
    minor_code: str
    minor_name: str
    provenance: str
    extension: bool = False
    # Safety-critical (安全类): a problem that can hurt someone at any hour, e.g. an open
    # manhole. The one definition every rule reads: the centre's steps of such a case run
    # round the clock (the limits table's ``safety`` selector, docs/lifecycle.md).
    safety: bool = False


class Classification:
    """The active scheme: look up classes by (kind, minor code)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Classification:
        """The deployment's scheme: GRIDHALL_CLASSIFICATION plus GRIDHALL_CLASSIFICATION_EXTENSION.

        The one reading of the two settings (``Timing.from_settings`` calls it), so no caller
        can forget the city's extension file.
        """
        return load(settings.classification, settings.classification_extension)

    def __init__(self, name: str, rule: CodeRule, entries: Iterable[ClassEntry]) -> None:
        self.name = name
        self.rule = rule
        self._by_key: dict[tuple[Kind, str], ClassEntry] = {}
        for entry in entries:
            self._add(entry)

    def _add(self, entry: ClassEntry) -> None:
        key = (entry.kind, entry.minor_code)
        if key in self._by_key:
            raise ClassificationError(
                f"{entry.kind.label}小类代码 {entry.minor_code} 重复（已有“{self._by_key[key].minor_name}”）"
            )
        self._by_key[key] = entry

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[ClassEntry]:
        return iter(self._by_key.values())

    def get(self, kind: Kind | str, minor_code: str) -> ClassEntry | None:
        return self._by_key.get((Kind(kind), minor_code))

    def require(self, kind: Kind | str, minor_code: str) -> ClassEntry:
        entry = self.get(kind, minor_code)
        if entry is None:
            raise ClassificationError(
                f"分类方案 {self.name} 中没有{Kind(kind).label}小类 {minor_code!r}"
            )
        return entry

    def count(self, kind: Kind | str) -> int:
        return sum(1 for k, _ in self._by_key if k == Kind(kind))

    def extend(self, entries: Iterable[ClassEntry]) -> None:
        """Add a city's extension classes; they must follow the scheme's code rule."""
        for entry in entries:
            self.rule.check(entry.kind, entry.major_code, entry.minor_code)
            self._add(entry)


def read_rows(path: Path, rule: CodeRule, *, extension: bool = False) -> list[ClassEntry]:
    """Read and validate a classification CSV; errors name file:line and the rule."""
    entries: list[ClassEntry] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ClassificationError(f"{path}: 缺少列 {', '.join(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                kind = _kind(row["kind"])
                values = {c: (row[c] or "").strip() for c in COLUMNS}
                for column in ("major_code", "major_name", "minor_code", "minor_name", "source"):
                    if not values[column]:
                        raise ClassificationError(f"{column} 为空")
                rule.check(kind, values["major_code"], values["minor_code"])
                flag = (row.get(SAFETY_COLUMN) or "").strip().lower()
                if flag not in _SAFETY:
                    raise ClassificationError(f"safety {flag!r} 应为 yes/是 或 留空/no/否")
            except ClassificationError as exc:
                raise ClassificationError(f"{path.name}:{line}: {exc}") from None
            entries.append(
                ClassEntry(
                    kind=kind,
                    major_code=values["major_code"],
                    major_name=values["major_name"],
                    minor_code=values["minor_code"],
                    minor_name=values["minor_name"],
                    provenance=values["source"],
                    extension=extension,
                    safety=_SAFETY[flag],
                )
            )
    return entries


def _kind(value: str | None) -> Kind:
    aliases = {"component": Kind.COMPONENT, "部件": Kind.COMPONENT, "event": Kind.EVENT, "事件": Kind.EVENT}
    kind = aliases.get((value or "").strip())
    if kind is None:
        raise ClassificationError(f"kind {value!r} 应为 component/部件 或 event/事件")
    return kind


def load(scheme: str, extension_file: Path | None = None) -> Classification:
    """Load a shipped scheme by name, or a city's own scheme from a CSV path."""
    if scheme in RULES:
        path, rule, name = DATA_DIR / f"{scheme}.csv", RULES[scheme], scheme
    else:
        path, rule = Path(scheme), GENERIC_RULE
        if not path.is_file():
            raise ClassificationError(
                f"未知分类方案 {scheme!r}：可选 {', '.join(SHIPPED_SCHEMES)}，或一个CSV文件路径"
            )
        name = path.stem
    classification = Classification(name, rule, read_rows(path, rule))
    if extension_file is not None:
        try:
            classification.extend(read_rows(Path(extension_file), rule, extension=True))
        except ClassificationError as exc:
            raise ClassificationError(f"扩展分类 {exc}") from None
    return classification


# -- code structures of GB/T 47678.5-2026 ---------------------------------------------
_ADMIN = re.compile(r"[0-9]{6}")


def event_code(admin_code: str, type_code: str) -> str:
    """11-digit 事项代码: 6-digit administrative division + 5-digit type code."""
    if not _ADMIN.fullmatch(admin_code):
        raise ClassificationError(f"行政区划代码 {admin_code!r} 应为6位数字")
    if not re.fullmatch(r"[0-9]{5}", type_code):
        raise ClassificationError(f"类型代码 {type_code!r} 应为5位数字（大类2位+小类3位）")
    return admin_code + type_code


def component_id(admin_code: str, type_code: str, sequence: int) -> str:
    """17-digit 管理部件标识码: 6 admin + 2 major + 3 minor + 6-digit sequence."""
    if not 0 < sequence < 1_000_000:
        raise ClassificationError(f"顺序代码 {sequence} 应在 1–999999 之间")
    return event_code(admin_code, type_code) + f"{sequence:06d}"


def parse_component_id(value: str) -> tuple[str, str, int]:
    """Split a 17-digit component id into (admin code, 5-digit type code, sequence)."""
    if not re.fullmatch(r"[0-9]{17}", value):
        raise ClassificationError(
            f"管理部件标识码 {value!r} 应为17位数字（行政区划6+大类2+小类3+顺序6）"
        )
    return value[:6], value[6:11], int(value[11:])
