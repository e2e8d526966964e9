"""Region and unit-grid codes: 区 6 → 街道 9 → 社区 12 → 单元网格 15 (or legacy 14) digits."""

from __future__ import annotations

import pytest

from dashboard.rules.codes import (
    CodeError,
    GridCode,
    check_grid_in_community,
    check_region_code,
    make_grid_code,
    parse_grid_code,
)
from dashboard.rules.vocab import RegionLevel

DISTRICT = "320582"
STREET = "320582110"
COMMUNITY = "320582110152"
GRID = "320582110152102"  # a real 15-digit Suzhou grid id (standards.md §1.2)


# -- parse_grid_code ----------------------------------------------------------------------
def test_parse_fifteen_digit_grid_code() -> None:
    parsed = parse_grid_code(GRID)
    assert parsed == GridCode(
        code=GRID,
        district=DISTRICT,
        street=STREET,
        community=COMMUNITY,
        sequence=102,
        legacy=False,
    )
    assert str(parsed) == GRID


def test_parse_legacy_fourteen_digit_grid_code() -> None:
    parsed = parse_grid_code("11010100100107")
    assert parsed.legacy is True
    assert parsed.code == "11010100100107"  # kept as given, not widened to 15 digits
    assert (parsed.district, parsed.street, parsed.community) == ("110101", "110101001", "110101001001")
    assert parsed.sequence == 7


@pytest.mark.parametrize(
    "code", ["", "3205821101521", "3205821101521020", "32058211015210201"], ids=["0", "13", "16", "17"]
)
def test_wrong_length_is_rejected(code: str) -> None:
    with pytest.raises(CodeError, match=r"应为15位数字"):
        parse_grid_code(code)


@pytest.mark.parametrize(
    "code", ["32058211015210A", "320582-10152102", " 32058211015210", "32058211015210 ", "3.2058211015210"]
)
def test_non_digits_are_rejected(code: str) -> None:
    with pytest.raises(CodeError, match=r"应为15位数字"):
        parse_grid_code(code)


@pytest.mark.parametrize("value", [320582110152102, None, b"320582110152102"])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(CodeError):
        parse_grid_code(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("320582000152102", r"街道\(镇\)代码不能为000"),
        ("320582110000102", r"社区\(村\)代码不能为000"),
        ("320582110152000", r"顺序码不能为0"),
        ("32058211015200", r"顺序码不能为0"),  # legacy 2-digit sequence 00
        ("32058200015201", r"街道\(镇\)代码不能为000"),  # legacy form checked the same way
    ],
)
def test_zero_parts_are_rejected(code: str, expected: str) -> None:
    with pytest.raises(CodeError, match=expected) as info:
        parse_grid_code(code)
    assert code in str(info.value)


def test_full_width_digits_are_rejected() -> None:
    with pytest.raises(CodeError):
        parse_grid_code("３２０５８２１１０１５２１０２")


# -- check_grid_in_community --------------------------------------------------------------
def test_grid_in_its_community() -> None:
    assert check_grid_in_community(GRID, COMMUNITY).sequence == 102


def test_grid_in_another_community_names_both_codes() -> None:
    other = "320582110153"
    with pytest.raises(CodeError) as info:
        check_grid_in_community(GRID, other)
    message = str(info.value)
    assert GRID in message and COMMUNITY in message and other in message
    assert "前12位" in message and "不一致" in message


def test_check_grid_in_community_still_validates_the_grid() -> None:
    with pytest.raises(CodeError, match="顺序码不能为0"):
        check_grid_in_community("320582110152000", COMMUNITY)


# -- check_region_code --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        (DISTRICT, RegionLevel.DISTRICT, None),
        (STREET, RegionLevel.STREET, DISTRICT),
        (COMMUNITY, "community", STREET),
        ("110000", "district", None),  # a district-level code may end in 000
    ],
)
def test_valid_region_codes(code: str, level: RegionLevel | str, parent: str | None) -> None:
    check_region_code(code, level, parent)


@pytest.mark.parametrize(
    ("code", "level", "parent", "expected"),
    [
        ("32058", "district", None, r"区代码 '32058' 应为6位数字"),
        ("3205821", "district", None, r"应为6位数字"),
        ("32058211", "street", None, r"街道\(镇\)代码 '32058211' 应为9位数字"),
        ("3205821101", "community", None, r"社区\(村\)代码 .* 应为12位数字"),
        (COMMUNITY, "street", None, r"应为9位数字"),  # right digits, wrong level
        ("32058a", "district", None, r"应为6位数字"),
        ("320582000", "street", None, r"末3位不能为000"),
        ("320582110000", "community", None, r"末3位不能为000"),
        ("320583110", "street", DISTRICT, r"与上级代码 '320582' 不一致"),
        ("320582111152", "community", STREET, r"与上级代码 '320582110' 不一致"),
    ],
)
def test_invalid_region_codes(code: str, level: str, parent: str | None, expected: str) -> None:
    with pytest.raises(CodeError, match=expected):
        check_region_code(code, level, parent)


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError):
        check_region_code(GRID, "grid")


# -- make_grid_code -----------------------------------------------------------------------
@pytest.mark.parametrize(("sequence", "expected"), [(1, "001"), (42, "042"), (999, "999")])
def test_make_grid_code(sequence: int, expected: str) -> None:
    code = make_grid_code(COMMUNITY, sequence)
    assert code == COMMUNITY + expected
    parsed = parse_grid_code(code)
    assert (parsed.community, parsed.sequence, parsed.legacy) == (COMMUNITY, sequence, False)


@pytest.mark.parametrize("sequence", [0, -1, 1000])
def test_make_grid_code_rejects_sequence_out_of_range(sequence: int) -> None:
    with pytest.raises(CodeError, match=r"网格顺序码 .* 应在 1–999 之间"):
        make_grid_code(COMMUNITY, sequence)


@pytest.mark.parametrize(("community", "expected"), [(STREET, "应为12位数字"), ("320582110000", "末3位不能为000")])
def test_make_grid_code_rejects_bad_community(community: str, expected: str) -> None:
    with pytest.raises(CodeError, match=expected):
        make_grid_code(community, 1)
