"""Classification schemes of 部件/事件: shipped data, code rules, extensions, custom schemes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dashboard.rules import classification as cls
from dashboard.rules.classification import ClassificationError
from dashboard.rules.vocab import Kind

REFERENCE_CSV = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "classification.csv"
HEADER = "kind,major_code,major_name,minor_code,minor_name,source\n"
GB = "gbt47678-2026"
BJ = "cjt214-beijing"

# Shipped scheme → (components, events, how its rows' `source` starts in the reference table).
SHIPPED = {
    GB: (153, 250, "GB/T 47678.5-2026 directory"),
    BJ: (100, 88, "Beijing Chaoyang"),
}


def _csv(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


# -- shipped schemes ----------------------------------------------------------------------
def test_shipped_schemes_are_exactly_the_two_we_document() -> None:
    assert set(cls.SHIPPED_SCHEMES) == set(SHIPPED)


@pytest.mark.parametrize("scheme", sorted(SHIPPED))
def test_shipped_scheme_loads_completely(scheme: str) -> None:
    components, events, _ = SHIPPED[scheme]
    loaded = cls.load(scheme)
    assert loaded.name == scheme
    assert loaded.count(Kind.COMPONENT) == components
    assert loaded.count("event") == events
    assert len(loaded) == components + events
    for entry in loaded:
        assert entry.provenance and entry.major_name and entry.minor_name
        assert entry.extension is False
        loaded.rule.check(entry.kind, entry.major_code, entry.minor_code)


def test_known_classes_of_each_scheme() -> None:
    gb = cls.load(GB)
    assert gb.require(Kind.COMPONENT, "01001").minor_name == "供水井盖"
    assert gb.require(Kind.EVENT, "06010").minor_name == "暴露垃圾"
    # Components and events have separate code spaces: 01001 is both a lid and its anomaly.
    assert gb.require(Kind.EVENT, "01001").minor_name == "供水井盖异常"
    bj = cls.load(BJ)
    assert bj.require("component", "100101").minor_name == "上水井盖"
    assert bj.require("event", "200102").minor_name == "暴露垃圾"
    assert bj.get("event", "100101") is None


def test_require_names_scheme_and_code_when_missing() -> None:
    with pytest.raises(ClassificationError, match=r"gbt47678-2026.*'99999'"):
        cls.load(GB).require("component", "99999")


def test_unknown_scheme_lists_the_shipped_ones() -> None:
    with pytest.raises(ClassificationError) as info:
        cls.load("gbt-nonexistent")
    assert GB in str(info.value) and BJ in str(info.value)


def _reference_rows(prefix: str) -> list[dict[str, str]]:
    with REFERENCE_CSV.open(encoding="utf-8-sig", newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["source"].startswith(prefix)]


@pytest.mark.parametrize("scheme", sorted(SHIPPED))
def test_shipped_scheme_matches_the_reference_table(scheme: str) -> None:
    if not REFERENCE_CSV.is_file():
        pytest.skip(f"reference table {REFERENCE_CSV} is not on this machine")
    components, events, prefix = SHIPPED[scheme]
    rows = _reference_rows(prefix)
    assert len(rows) == components + events, "reference table changed: update SHIPPED"
    loaded = cls.load(scheme)
    for row in rows:
        entry = loaded.get(row["kind"], row["minor_code"])
        assert entry is not None, f"{scheme} lacks {row['kind']} {row['minor_code']} {row['minor_name']}"
        assert (entry.major_code, entry.major_name, entry.minor_name, entry.provenance) == (
            row["major_code"],
            row["major_name"],
            row["minor_name"],
            row["source"],
        ), row["minor_code"]
    # gridhall invents no codes: nothing in the scheme is missing from the reference.
    assert len(loaded) == len(rows)


# -- code rules -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scheme", "row", "expected"),
    [
        # wrong digit count
        (GB, "component,1,市政公用设施,01001,供水井盖,test", r"大类代码 '1' 不符合规则"),
        (GB, "component,01,市政公用设施,0100,供水井盖,test", r"小类代码 '0100' 不符合规则"),
        (GB, "component,01,市政公用设施,010001,供水井盖,test", r"小类代码 '010001' 不符合规则"),
        (BJ, "component,101,部件-公共设施,100101,上水井盖,test", r"大类代码 '101' 不符合规则"),
        (BJ, "component,1001,部件-公共设施,1001011,上水井盖,test", r"小类代码 '1001011' 不符合规则"),
        # minor does not extend its major
        (GB, "component,01,市政公用设施,02001,供水井盖,test", r"必须以其大类代码 '01' 开头"),
        (BJ, "event,2001,市容环境,200201,暴露垃圾,test", r"必须以其大类代码 '2001' 开头"),
        # component major outside 01–05
        (GB, "component,06,市容环境类,06001,某部件,test", r"大类代码 '06' 不是部件的大类"),
        (GB, "component,00,无,00001,某部件,test", r"大类代码 '00' 不是部件的大类"),
        (GB, "event,11,其他,11001,某事项,test", r"大类代码 '11' 不是事件的大类"),
        # Beijing: events start with 2, components with 1
        (BJ, "event,1001,市容环境,100101,暴露垃圾,test", r"大类代码 '1001' 不是事件的大类"),
        (BJ, "component,2001,公共设施,200101,上水井盖,test", r"大类代码 '2001' 不是部件的大类"),
        # empty values
        (GB, "component,01,市政公用设施,01001,,test", r"minor_name 为空"),
        (GB, "component,01,,01001,供水井盖,test", r"major_name 为空"),
        (GB, "component,01,市政公用设施,01001,供水井盖,", r"source 为空"),
        (GB, "component,01,市政公用设施, ,供水井盖,test", r"minor_code 为空"),
        # bad kind
        (GB, "facility,01,市政公用设施,01001,供水井盖,test", r"kind 'facility' 应为 component/部件 或 event/事件"),
        (GB, ",01,市政公用设施,01001,供水井盖,test", r"kind '' 应为"),
    ],
)
def test_malformed_row_is_rejected_naming_the_rule(
    tmp_path: Path, scheme: str, row: str, expected: str
) -> None:
    path = _csv(tmp_path / "bad.csv", row)
    with pytest.raises(ClassificationError, match=expected) as info:
        cls.read_rows(path, cls.RULES[scheme])
    assert str(info.value).startswith("bad.csv:2: ")


def test_error_names_the_offending_line(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "lines.csv",
        "component,01,市政公用设施,01001,供水井盖,test",
        "event,06,市容环境类,06010,暴露垃圾,test",
        "event,06,市容环境类,6011,积存垃圾渣土,test",
    )
    with pytest.raises(ClassificationError, match=r"^lines\.csv:4: 小类代码 '6011'"):
        cls.read_rows(path, cls.RULES[GB])


def test_chinese_kind_aliases_and_whitespace(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "zh.csv",
        "部件,01,市政公用设施, 01001 ,供水井盖,test",
        "事件,06,市容环境类,06010,暴露垃圾,test",
    )
    rows = cls.read_rows(path, cls.RULES[GB])
    assert [(r.kind, r.minor_code) for r in rows] == [(Kind.COMPONENT, "01001"), (Kind.EVENT, "06010")]


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("kind,major_code,minor_code,minor_name\nevent,06,06010,暴露垃圾\n", encoding="utf-8")
    with pytest.raises(ClassificationError, match=r"缺少列 major_name, source"):
        cls.read_rows(path, cls.RULES[GB])


def test_duplicate_code_within_a_scheme_is_rejected(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "dup.csv",
        "event,SR,Streets,SR-POTHOLE,Pothole,test",
        "event,SR,Streets,SR-POTHOLE,Pothole again,test",
    )
    with pytest.raises(ClassificationError, match=r"SR-POTHOLE 重复"):
        cls.load(str(path))


# -- extension classes (扩展部件/扩展事件) -----------------------------------------------------
def test_extension_file_adds_classes(tmp_path: Path) -> None:
    ext = _csv(
        tmp_path / "ext.csv",
        "component,05,其他设施,05901,共享单车停放架,扬州市扩展部件",
        "event,10,其他事项类,10901,共享单车乱停放,扬州市扩展事件",
    )
    base = cls.load(GB)
    loaded = cls.load(GB, extension_file=ext)
    assert len(loaded) == len(base) + 2
    entry = loaded.require("component", "05901")
    assert entry.extension is True and entry.provenance == "扬州市扩展部件"
    assert loaded.require("event", "10901").minor_name == "共享单车乱停放"
    assert loaded.require("event", "06010").extension is False


def test_extension_reusing_a_code_is_rejected(tmp_path: Path) -> None:
    ext = _csv(tmp_path / "ext.csv", "component,01,市政公用设施,01001,我的井盖,扬州市扩展部件")
    with pytest.raises(ClassificationError) as info:
        cls.load(GB, extension_file=ext)
    message = str(info.value)
    assert message.startswith("扩展分类")
    assert "01001 重复" in message and "供水井盖" in message


def test_extension_must_follow_the_scheme_rule(tmp_path: Path) -> None:
    ext = _csv(tmp_path / "ext.csv", "event,1009,街面秩序,100901,乱摆卖,朝阳区扩展事件")
    with pytest.raises(ClassificationError, match=r"^扩展分类 ext\.csv:2: 大类代码 '1009' 不是事件的大类"):
        cls.load(BJ, extension_file=ext)


# -- a city's own scheme ------------------------------------------------------------------
def test_custom_311_scheme_loads_from_a_path(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "open311.csv",
        "event,SR-STREETS,Streets,SR-POTHOLE,Pothole in street,Open311 GeoReport v2 service list",
        "event,SR-STREETS,Streets,SR-STREETLIGHT,Street light out,Open311 GeoReport v2 service list",
        "component,ASSET,City assets,ASSET.HYDRANT_01,Fire hydrant,city asset register",
    )
    loaded = cls.load(str(path))
    assert loaded.name == "open311"
    assert loaded.rule is cls.GENERIC_RULE
    assert loaded.count("event") == 2 and loaded.count("component") == 1
    assert loaded.require("event", "SR-POTHOLE").major_name == "Streets"
    assert loaded.require("component", "ASSET.HYDRANT_01").provenance == "city asset register"


@pytest.mark.parametrize("code", ["SR POTHOLE", "SR/POTHOLE", "坑洼", "X" * 33])
def test_custom_scheme_rejects_codes_outside_the_generic_rule(tmp_path: Path, code: str) -> None:
    path = _csv(tmp_path / "custom.csv", f"event,SR,Streets,{code},Pothole,test")
    with pytest.raises(ClassificationError, match=r"custom\.csv:2: 小类代码 .*自定义分类"):
        cls.load(str(path))


def test_shipped_rules_are_not_applied_to_a_custom_file_named_like_one(tmp_path: Path) -> None:
    """A path is always a custom scheme, even if its rows would break the Chinese rules."""
    path = _csv(tmp_path / "my-gb.csv", "component,99,Other,X1,Thing,test")
    assert cls.load(str(path)).require("component", "X1").major_code == "99"


# -- GB/T 47678.5 code structures ---------------------------------------------------------
def test_event_code_is_eleven_digits() -> None:
    code = cls.event_code("320508", "06010")
    assert code == "32050806010"
    assert len(code) == 11


def test_component_id_is_seventeen_digits_and_parses_back() -> None:
    value = cls.component_id("320508", "01002", 48188)
    assert value == "32050801002048188"
    assert len(value) == 17
    assert cls.parse_component_id(value) == ("320508", "01002", 48188)
    assert cls.parse_component_id(cls.component_id("110105", "05003", 999_999)) == (
        "110105",
        "05003",
        999_999,
    )


@pytest.mark.parametrize(
    ("admin", "type_code", "expected"),
    [
        ("32050", "06010", "行政区划代码 '32050' 应为6位数字"),
        ("3205080", "06010", "行政区划代码"),
        ("32O508", "06010", "行政区划代码"),
        ("320508", "0601", "类型代码 '0601' 应为5位数字"),
        ("320508", "060100", "类型代码"),
        ("320508", "06O10", "类型代码"),
    ],
)
def test_event_code_rejects_bad_parts(admin: str, type_code: str, expected: str) -> None:
    with pytest.raises(ClassificationError, match=expected):
        cls.event_code(admin, type_code)


@pytest.mark.parametrize("sequence", [0, -1, 1_000_000])
def test_component_id_rejects_sequence_out_of_range(sequence: int) -> None:
    with pytest.raises(ClassificationError, match="顺序代码"):
        cls.component_id("320508", "01001", sequence)


@pytest.mark.parametrize(
    "value", ["3205080100104818", "320508010010481880", "3205080100104818x", "", " 32050801002048188"]
)
def test_parse_component_id_rejects_malformed(value: str) -> None:
    with pytest.raises(ClassificationError, match="应为17位数字"):
        cls.parse_component_id(value)


def test_full_width_digits_are_not_digits() -> None:
    with pytest.raises(ClassificationError):
        cls.event_code("３２０５０８", "06010")
