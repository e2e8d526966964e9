"""Region and unit-grid codes (GB/T 2260 + GB/T 10114 + CJ/T 213 / GB/T 30428.1).

区 6 digits → 街道(镇) 9 (district + 3) → 社区(村) 12 (street + 3) → 单元网格 15 (community
+ 3-digit sequence, numbered west→east, north→south within the community). The older
CJ/T 213-2005 form with a 2-digit sequence (14 digits) is accepted too and kept as given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dashboard.rules.vocab import RegionLevel

REGION_DIGITS = {RegionLevel.DISTRICT: 6, RegionLevel.STREET: 9, RegionLevel.COMMUNITY: 12}


class CodeError(ValueError):
    """A region or grid code that breaks the coding rules."""


@dataclass(frozen=True)
class GridCode:
    """A parsed unit-grid code."""

    code: str
    district: str
    street: str
    community: str
    sequence: int
    legacy: bool  # the 14-digit CJ/T 213-2005 form

    def __str__(self) -> str:
        return self.code


def parse_grid_code(code: str) -> GridCode:
    """Parse a 15-digit (or legacy 14-digit) grid code; raise CodeError naming the rule."""
    if not isinstance(code, str) or not re.fullmatch(r"[0-9]{14,15}", code):
        raise CodeError(
            f"单元网格代码 {code!r} 应为15位数字（区6+街道3+社区3+网格顺序码3），"
            "或旧版CJ/T 213的14位（顺序码2位）"
        )
    legacy = len(code) == 14
    sequence = int(code[12:])
    if sequence == 0:
        raise CodeError(f"单元网格代码 {code!r} 的顺序码不能为0")
    _check_region_parts(code[:12], code)
    return GridCode(code, code[:6], code[:9], code[:12], sequence, legacy)


def _check_region_parts(community: str, whole: str) -> None:
    if community[6:9] == "000":
        raise CodeError(f"代码 {whole!r} 的街道(镇)代码不能为000")
    if community[9:12] == "000":
        raise CodeError(f"代码 {whole!r} 的社区(村)代码不能为000")


def check_region_code(code: str, level: RegionLevel | str, parent_code: str | None = None) -> None:
    """A region code has the level's length and extends its parent's code."""
    level = RegionLevel(level)
    digits = REGION_DIGITS[level]
    if not isinstance(code, str) or not re.fullmatch(rf"[0-9]{{{digits}}}", code):
        raise CodeError(f"{level.label}代码 {code!r} 应为{digits}位数字")
    if level is not RegionLevel.DISTRICT and code[-3:] == "000":
        raise CodeError(f"{level.label}代码 {code!r} 的末3位不能为000")
    if parent_code is not None and not code.startswith(parent_code):
        raise CodeError(f"{level.label}代码 {code!r} 与上级代码 {parent_code!r} 不一致")


def check_grid_in_community(grid_code: str, community_code: str) -> GridCode:
    """The grid's first 12 digits must be its community's code."""
    parsed = parse_grid_code(grid_code)
    if parsed.community != community_code:
        raise CodeError(
            f"单元网格代码 {grid_code} 的前12位 {parsed.community} 与所属社区代码 "
            f"{community_code} 不一致"
        )
    return parsed


def make_grid_code(community_code: str, sequence: int) -> str:
    """The 15-digit code of the sequence-th grid in a community."""
    check_region_code(community_code, RegionLevel.COMMUNITY)
    if not 1 <= sequence <= 999:
        raise CodeError(f"网格顺序码 {sequence} 应在 1–999 之间")
    return f"{community_code}{sequence:03d}"
