"""The drill-down's selection: the whole state of /explore, read from and written back to the URL.

A link reproduces the view: every field of :class:`Selection` is a query parameter of the same
name, checked here (zh-CN messages listing every bad parameter) before any query sees it. Pure
Python; ``dashboard.figures.explore`` turns a selection into SQL conditions and figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

from dashboard.rules.lifecycle import Stage
from dashboard.rules.text import is_case_id
from dashboard.rules.vocab import Kind, Source

WINDOWS: dict[str, str] = {
    "today": "今日", "24h": "近24小时", "7d": "近7天", "30d": "近30天", "90d": "近90天", "all": "全部",
}
DEFAULT_WINDOW = "7d"
FLAGS: dict[str, str] = {"overdue": "超期", "due_soon": "临期", "urgent": "急件"}
STAGE_OPTIONS: dict[str, str] = {"open": "在办(全部未结)", **{s.value: s.label for s in Stage}}
# 综合考评 (docs/evaluation.md): whom the ranking panel ranks (URL ``ranking``; None = regions).
RANKINGS: dict[str, str] = {"regions": "下级区域", "unit": "处置单位", "supervisor": "监督员", "acceptor": "受理员",
                            "shift_lead": "值班长", "dispatcher": "派遣员"}
DEFAULT_RANKING = "regions"
_MONTH = re.compile(r"(20[0-9]{2})-(0[1-9]|1[0-2])")

# A region code (6/9/12-digit 区划代码) or a unit-grid code (14/15 digits).
REGION_CODE = re.compile(r"[0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{14,15}")
_CODE = re.compile(r"[0-9A-Za-z]{1,32}")
_UNIT = re.compile(r"[0-9A-Za-z_.\-]{1,32}")


class SelectionError(ValueError):
    """A query string the page cannot show; the message lists every bad parameter (zh-CN)."""


# -- the selection ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """What the page shows; every field is a URL parameter of the same name (None: not set)."""

    region: str | None = None  # region (6/9/12 digits) or grid code (14/15); None: the scope's root
    window: str = DEFAULT_WINDOW
    kind: str | None = None  # component / event
    major: str | None = None  # 大类 code (needs kind)
    minor: str | None = None  # 小类 code (needs kind)
    source: str | None = None
    stage: str | None = None  # a Stage value, or "open"
    unit: str | None = None  # unit code
    flag: str | None = None  # overdue / due_soon / urgent
    month: str | None = None  # 综合考评's month, YYYY-MM; None: the current month
    ranking: str | None = None  # 综合考评's objects (RANKINGS); None: the child regions
    case: str | None = None  # the case whose detail is open

    @classmethod
    def parse(cls, query: str | None) -> Selection:
        """Parse a query string (with or without "?"); raises :class:`SelectionError`.

        Unknown parameters are ignored (a link may carry others); an empty value is "not set".
        """
        if query is not None and not isinstance(query, str):
            raise SelectionError("地址参数无效")
        text = (query or "").lstrip("?")
        if len(text) > 2000:
            raise SelectionError("地址参数过长")
        try:
            raw = parse_qs(text, keep_blank_values=False, strict_parsing=False, max_num_fields=50)
        except ValueError:
            raise SelectionError("地址参数过多或无效") from None
        values: dict[str, str] = {}
        for f in fields(cls):
            got = raw.get(f.name)
            if got:
                values[f.name] = got[0].strip()
        return cls.from_values(values)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Selection:
        """A selection from loose values (form controls or parsed URL); raises SelectionError."""
        problems: list[str] = []
        clean: dict[str, Any] = {}
        for f in fields(cls):
            v = values.get(f.name)
            if v is None or v == "":
                continue
            if not isinstance(v, str):
                problems.append(f"参数 {f.name} 无效")
                continue
            clean[f.name] = v.strip()

        def check(name: str, ok: bool, message: str) -> None:
            if name in clean and not ok:
                problems.append(message)
                clean.pop(name)

        check("region", bool(REGION_CODE.fullmatch(clean.get("region", ""))),
              "区域代码应为6/9/12位区划代码或14/15位网格代码")
        check("window", clean.get("window") in WINDOWS, f"时间范围应为 {'、'.join(WINDOWS)} 之一")
        check("kind", clean.get("kind") in Kind.labels(), "类别应为 component（部件）或 event（事件）")
        check("major", bool(_CODE.fullmatch(clean.get("major", ""))), "大类代码无效")
        check("minor", bool(_CODE.fullmatch(clean.get("minor", ""))), "小类代码无效")
        check("source", clean.get("source") in Source.labels(), "案件来源无效")
        check("stage", clean.get("stage") in STAGE_OPTIONS, "案件阶段无效")
        check("unit", bool(_UNIT.fullmatch(clean.get("unit", ""))), "处置单位代码无效")
        check("flag", clean.get("flag") in FLAGS, "状态筛选应为 overdue（超期）、due_soon（临期）或 urgent（急件）")
        check("month", bool(_MONTH.fullmatch(clean.get("month", ""))), "考评月份应为 YYYY-MM（如 2026-10）")
        check("ranking", clean.get("ranking") in RANKINGS,
              "考评对象应为 regions（下级区域）、unit（处置单位）、supervisor（监督员）、acceptor（受理员）、"
              "shift_lead（值班长）或 dispatcher（派遣员）")
        check("case", is_case_id(clean.get("case", "")), "案件编号无效")
        if ("major" in clean or "minor" in clean) and "kind" not in clean:
            problems.append("按大类或小类筛选时须先选择部件或事件")
        if problems:
            raise SelectionError("；".join(problems))
        return cls(**clean)

    @classmethod
    def lenient(cls, query: str | None) -> Selection:
        """The selection, or the default one when the query string is invalid (for controls)."""
        try:
            return cls.parse(query)
        except SelectionError:
            return cls()

    def to_query(self) -> str:
        """The canonical query string (no "?"; defaults left out; fixed parameter order)."""
        pairs = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or (f.name == "window" and v == DEFAULT_WINDOW) or (
                    f.name == "ranking" and v == DEFAULT_RANKING):
                continue
            pairs.append((f.name, v))
        return urlencode(pairs)

    def href(self, path: str = "/explore") -> str:
        q = self.to_query()
        return f"{path}?{q}" if q else path

    def at(self, region: str | None) -> Selection:
        """The same filters at another place (the open case is closed)."""
        return replace(self, region=region, case=None)

    def with_case(self, case_id: str | None) -> Selection:
        return replace(self, case=case_id)

    @property
    def view_key(self) -> str:
        """Everything but the open case and 综合考评's month and objects: what the figures depend on."""
        return replace(self, case=None, month=None, ranking=None).to_query()

    @property
    def ranking_key(self) -> str:
        """What the 综合考评 panel depends on: the place, the month and the objects."""
        return Selection(region=self.region, month=self.month, ranking=self.ranking).to_query()
