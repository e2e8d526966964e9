"""The limits tables: shipped defaults load and cite their origin; specificity; ties; bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.rules import classification
from dashboard.rules.classification import GENERIC_RULE, SHIPPED_SCHEMES, Classification
from dashboard.rules.limits import (
    ANY,
    STAGES,
    LimitsError,
    default_path,
    load_limits,
    read_table,
)

GB = classification.load("gbt47678-2026")
HEADER = "stage,kind,major_code,minor_code,urgency,area_class,limit,unit,source,note\n"
CATCH_ALL = "".join(f"{s},*,*,*,*,*,1,work_hours,gridhall default,\n" for s in STAGES)


def write(tmp_path: Path, body: str, name: str = "limits.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


# -- the shipped tables ------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", SHIPPED_SCHEMES)
def test_default_tables_load_and_every_row_cites_its_origin(scheme: str) -> None:
    scheme_ = classification.load(scheme)
    table = load_limits(scheme_)
    assert table.name == f"default-{scheme}.csv"
    assert len(table) > len(STAGES)
    for row in table:
        assert row.source.strip(), f"{row.where} has no source"
        assert row.source == "gridhall default" or "http" in row.source, row.where
        if row.source == "gridhall default":
            assert row.note.strip(), f"{row.where}: a default must say why in its note"
    assert default_path(scheme) is not None and default_path(scheme).is_file()


def test_gbt_default_values_come_from_the_reference() -> None:
    t = load_limits(GB)

    def handle(minor: str | None, kind: str = "event", urgency: str = "normal", area: str = "B") -> str:
        entry = GB.get(kind, minor) if minor else None
        return t.lookup("handle", kind, entry.major_code if entry else None, minor, urgency, area).describe()

    # 济源 事件 table (standards.md §4.3), mapped by name to GB/T 47678.5 codes.
    assert handle("06001") == "15 工作日"  # 违法搭建 → 私搭乱建
    assert handle("06010") == "1 工作日"  # 暴露垃圾
    assert handle("06011") == "4 工作日"  # 积存垃圾渣土
    assert handle("06012") == "5 工作时"  # 道路不洁
    assert handle("06025") == "15 工作日"  # 水域不洁
    # The unnamed city's 4 工作时 for 暴露垃圾 applies to the core area (A).
    assert handle("06010", area="A") == "4 工作时"
    # Manhole covers: 6 自然时 (Tianjin, Guangzhou), urgent 2 自然时; 部件 and its 事项 alike.
    assert handle("01002", kind="component") == "6 自然时"
    assert handle("01002", kind="event") == "6 自然时"
    assert handle("01002", kind="component", urgency="urgent") == "2 自然时"
    # gridhall defaults.
    assert handle(None) == "2 工作日"
    assert handle("06007") == "2 工作日"  # 沿街晾挂: no class row
    assert handle("06007", area="A") == "1 工作日"
    assert handle("06007", urgency="urgent") == "2 工作时"
    assert handle("06010", urgency="urgent") == "2 工作时"
    assert handle("05003", kind="component") == "3 工作日"
    # Desk steps (issue 12: Taiyuan's 立案/派遣 30 min and 核查 1 h; urgent cases and safety
    # classes round the clock).
    assert t.lookup("verify").describe() == "1 工作时"
    assert t.lookup("file").describe() == "0.5 工作时"
    assert t.lookup("dispatch").describe() == "0.5 工作时"
    assert t.lookup("dispatch", urgency="urgent").describe() == "0.5 自然时"
    assert t.lookup("check", "event", "06", "06010").describe() == "1 工作时"
    assert t.lookup("check", urgency="urgent").describe() == "0.5 自然时"
    assert t.lookup("close").describe() == "1 工作时"


def test_beijing_default_maps_the_same_classes() -> None:
    bj = classification.load("cjt214-beijing")
    t = load_limits(bj)
    assert t.lookup("handle", "event", "2001", "200102").describe() == "1 工作日"
    assert t.lookup("handle", "event", "2001", "200104").describe() == "5 工作时"
    assert t.lookup("handle", "component", "1001", "100102").describe() == "6 自然时"


def test_a_city_scheme_without_a_limits_file_gets_the_class_independent_rows() -> None:
    own = Classification("city311", GENERIC_RULE, [])
    t = load_limits(own)
    assert all(r.major_code == ANY and r.minor_code == ANY for r in t)
    assert t.lookup("handle", "event").describe() == "2 工作日"


@pytest.mark.parametrize("scheme", SHIPPED_SCHEMES)
def test_desk_steps_of_safety_classes_and_urgent_cases_run_round_the_clock(scheme: str) -> None:
    """Issue 12 point 5: every centre step (核实 立案 派遣 核查 结案) runs in 自然时 for a
    safety class (ClassEntry.safety) and for an urgent case; the others keep working time."""
    scheme_ = classification.load(scheme)
    t = load_limits(scheme_)
    safe = [e for e in scheme_ if e.safety]
    plain = [e for e in scheme_ if not e.safety]
    assert safe and all("井盖" in e.minor_name or "箅子" in e.minor_name or e.kind.value == "event" for e in safe)
    for stage in ("verify", "file", "dispatch", "check", "close"):
        for e in safe:
            for urgency in ("normal", "urgent"):
                row = t.lookup(stage, e.kind.value, e.major_code, e.minor_code, urgency, "B", e.safety)
                assert row.unit == "calendar_hours", (stage, e.minor_code, urgency, row.where)
        e = plain[0]
        assert t.lookup(stage, e.kind.value, e.major_code, e.minor_code, "normal", "B", False).working
        assert not t.lookup(stage, e.kind.value, e.major_code, e.minor_code, "urgent", "B", False).working
        # An urgent safety case gets the urgent (shorter or equal) limit.
        s = safe[0]
        urgent = t.lookup(stage, s.kind.value, s.major_code, s.minor_code, "urgent", "B", True)
        assert urgent.urgency == "urgent" and urgent.limit <= t.lookup(stage, safety=True).limit


def test_a_no_limit_row(tmp_path: Path) -> None:
    """Issue 12 point 3: 不限时 rows, even as the catch-all; a unit with it is an error."""
    body = CATCH_ALL.replace("handle,*,*,*,*,*,1,work_hours", "handle,*,*,*,*,*,不限时,") + \
        "handle,event,06,*,*,*,2,work_days,s,\nhandle,event,10,*,*,*,none,,s,information requests\n"
    t = read_table(write(tmp_path, body), GB)
    assert t.lookup("handle").unlimited and t.lookup("handle").describe() == "不限时"
    assert t.lookup("handle", "event", "10", "10002").unlimited
    assert not t.lookup("handle", "event", "06", "06010").unlimited
    with pytest.raises(LimitsError, match=r"limits.csv:\d+: limit 不限时 没有单位"):
        read_table(write(tmp_path, CATCH_ALL + "handle,event,*,*,*,*,不限时,work_days,s,\n"), GB)
    with pytest.raises(LimitsError, match=r"应为正数（没有时限写 不限时）"):
        read_table(write(tmp_path, CATCH_ALL + "handle,event,*,*,*,*,0,work_days,s,\n"), GB)


def test_safety_selector_ranks_after_urgency(tmp_path: Path) -> None:
    body = CATCH_ALL + (
        "verify,*,*,*,urgent,*,0.5,work_hours,s,urgent\n"
        "verify,*,*,*,*,A,3,work_hours,s,area A\n"
    )
    header = HEADER.replace("area_class,", "area_class,safety,")
    rows = "".join(",".join(line.split(",")[:6] + ["*"] + line.split(",")[6:]) + "\n"
                   for line in body.splitlines()) + "verify,*,*,*,*,*,yes,1,calendar_hours,s,safety\n"
    path = tmp_path / "safety.csv"
    path.write_text(header + rows, encoding="utf-8")
    t = read_table(path, GB)
    assert t.lookup("verify", safety=True).note == "safety"
    assert t.lookup("verify", urgency="urgent", safety=True).note == "urgent"  # urgency first
    assert t.lookup("verify", area_class="A", safety=True).note == "safety"  # then safety, then area
    assert t.lookup("verify", area_class="A", safety=False).note == "area A"
    assert t.lookup("verify").is_catch_all  # unknown class: only * matches
    path.write_text(header + "verify,*,*,*,*,*,maybe,1,work_hours,s,\n", encoding="utf-8")
    with pytest.raises(LimitsError, match=r"safety 'maybe' 无效"):
        read_table(path, GB)


# -- specificity -----------------------------------------------------------------------------------
def test_most_specific_row_wins(tmp_path: Path) -> None:
    body = CATCH_ALL + (
        "handle,event,*,*,*,*,2,work_days,s,kind\n"
        "handle,event,06,*,*,*,3,work_days,s,major\n"
        "handle,event,*,06010,*,*,4,work_days,s,minor\n"
        "handle,*,*,06010,*,*,5,work_days,s,minor any kind\n"
        "handle,*,*,*,urgent,*,6,work_hours,s,urgent any class\n"
        "handle,event,06,*,urgent,*,7,work_hours,s,major urgent\n"
        "handle,event,06,*,*,A,8,work_hours,s,major area A\n"
        "handle,event,06,*,urgent,A,9,work_hours,s,major urgent A\n"
    )
    t = read_table(write(tmp_path, body), GB)

    def note(minor: str | None, major: str | None = "06", urgency: str = "normal", area: str = "B",
             kind: str = "event") -> str:
        return t.lookup("handle", kind, major, minor, urgency, area).note

    assert note("06010") == "minor"  # minor beats major
    assert note("06010", urgency="urgent", area="A") == "minor"  # ... even with urgency/area rows
    assert note("06011") == "major"  # major beats kind
    assert note("06011", urgency="urgent") == "major urgent"  # then urgency
    assert note("06011", area="A") == "major area A"  # then area
    assert note("06011", urgency="urgent", area="A") == "major urgent A"
    assert note("07001", major="07") == "kind"  # kind beats any
    assert note(None, major=None, kind="", urgency="urgent") == "urgent any class"
    assert t.lookup("handle", "component", "01", "01002").is_catch_all  # no component rows
    assert note("06010", kind="component") == "minor any kind"  # a minor row of kind event does not match


def test_rows_are_normalised_and_chinese_names_accepted(tmp_path: Path) -> None:
    body = CATCH_ALL + "处置,事件,06,06012,紧急,A,2,工作时,s,\n"
    t = read_table(write(tmp_path, body), GB)
    row = t.lookup("handle", "event", "06", "06012", "urgent", "A")
    assert (row.stage, row.kind, row.major_code, row.minor_code, row.unit) == \
        ("handle", "event", ANY, "06012", "work_hours")
    assert row.minutes(450) == 120
    assert t.lookup("handle", "event", "06", "06012", "normal", "A").is_catch_all


def test_units_convert_to_minutes(tmp_path: Path) -> None:
    body = CATCH_ALL.replace("handle,*,*,*,*,*,1,work_hours", "handle,*,*,*,*,*,1.5,work_days") + \
        "dispatch,component,*,*,*,*,6,calendar_hours,s,\n"
    t = read_table(write(tmp_path, body))
    assert t.lookup("handle").minutes(450) == 675
    row = t.lookup("dispatch", "component")
    assert row.minutes(450) == 360 and not row.working


# -- errors ------------------------------------------------------------------------------------------
def test_a_tie_is_a_load_error_naming_both_lines(tmp_path: Path) -> None:
    body = CATCH_ALL + "handle,event,*,06010,*,*,1,work_days,a,\nhandle,event,06,06010,*,*,2,work_days,b,\n"
    with pytest.raises(LimitsError) as exc:
        read_table(write(tmp_path, body), GB)
    assert "limits.csv:9" in str(exc.value) and "limits.csv:8" in str(exc.value)
    assert "平局" in str(exc.value)


def test_every_stage_needs_a_catch_all(tmp_path: Path) -> None:
    body = CATCH_ALL.replace("check,*,*,*,*,*,1,work_hours,gridhall default,\n",
                             "check,event,*,*,*,*,1,work_hours,s,\n")
    with pytest.raises(LimitsError, match=r"check（核查） 缺少兜底行"):
        read_table(write(tmp_path, body))


@pytest.mark.parametrize(
    "row, message",
    [
        ("handle,event,*,06010,*,*,1,work_days,,", "source 为空"),
        ("deliver,*,*,*,*,*,1,work_hours,s,", "stage 'deliver' 无效"),
        ("handle,thing,*,*,*,*,1,work_hours,s,", "kind 'thing' 无效"),
        ("handle,event,*,*,soon,*,1,work_hours,s,", "urgency 'soon' 无效"),
        ("handle,event,*,*,*,D,1,work_hours,s,", "area_class 'D' 无效"),
        ("handle,event,*,*,*,*,one,work_hours,s,", "limit 'one' 不是数字"),
        ("handle,event,*,*,*,*,0,work_hours,s,", "应为正数"),
        ("handle,event,*,*,*,*,-2,work_hours,s,", "应为正数"),
        ("handle,event,*,*,*,*,1,fortnights,s,", "unit 'fortnights' 无效"),
        ("handle,event,*,99999,*,*,1,work_hours,s,", "小类代码 '99999' 不在分类方案"),
        ("handle,event,07,06010,*,*,1,work_hours,s,", "小类 06010 属于大类 06"),
        ("handle,component,*,06010,*,*,1,work_hours,s,", "不在分类方案"),
        ("handle,event,42,*,*,*,1,work_hours,s,", "大类代码 '42'"),
        ("handle,event,*,*,*,*,1,work_hours,s,,extra", "个字段"),
    ],
)
def test_bad_rows_are_rejected_with_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path, "# a comment line\n\n" + CATCH_ALL + row + "\n", name="city.csv")
    with pytest.raises(LimitsError) as exc:
        read_table(path, GB)
    text = str(exc.value)
    assert text.startswith("city.csv:10: "), text  # header 1, comment 2, blank 3, 6 catch-alls
    assert message in text


def test_bad_header_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("stage,kind,limit\n", encoding="utf-8")
    with pytest.raises(LimitsError, match=r"x.csv:1: 缺少列"):
        read_table(path)
    with pytest.raises(LimitsError, match="无法读取"):
        read_table(tmp_path / "nope.csv")


def test_limits_file_setting_replaces_the_table_and_errors_name_the_setting(tmp_path: Path) -> None:
    good = write(tmp_path, CATCH_ALL)
    assert len(load_limits(GB, good)) == len(STAGES)
    bad = write(tmp_path, CATCH_ALL + "handle,event,*,*,*,*,x,work_hours,s,\n", name="bad.csv")
    with pytest.raises(LimitsError, match=r"^GRIDHALL_LIMITS_FILE: bad.csv:8: "):
        load_limits(GB, bad)


def test_multiline_cells_keep_line_numbers_right(tmp_path: Path) -> None:
    body = CATCH_ALL + 'handle,event,*,*,*,*,1,work_days,s,"a note\nover two lines"\n' + \
        "handle,event,*,*,*,*,2,work_days,s,\n"
    with pytest.raises(LimitsError, match=r"limits.csv:10: .*limits.csv:8"):
        read_table(write(tmp_path, body))
