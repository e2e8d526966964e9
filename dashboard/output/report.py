"""The monthly 通报 (综合考评通报): XLSX, printable HTML and optionally PDF of one period.

Domain only (no Dash). Every figure comes from :func:`dashboard.figures.evaluation.evaluate` — one
call per object kind, for the same scope, period and weights — so the report shows exactly
what the wall, /view, /explore and the API show for that scope and period::

    report = build_report(session, scope, Period.month(2026, 10, tz), city_name="演示市", tz=tz)
    paths = write_report(report, Path("out"), pdf=True)

- **XLSX**: one sheet per object kind (every object, every indicator with its zh-CN label;
  rates as shares with a percentage number format), and a 说明 sheet (definitions, weights,
  grade bands).
- **HTML** (``dashboard/output/templates/report.html.j2``, autoescaped): A4 print CSS, inline SVG
  charts (no JavaScript), system fonts, nothing loaded from the network. Grids show only the
  best and worst :data:`GRID_SHOWN` ranked grids (the XLSX has all of them).
- **PDF**: that HTML printed by headless Chromium (:mod:`dashboard.output.pdf`), when available.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from dashboard.figures.evaluation import Evaluation, EvaluationRow, ObjectKind, Period, evaluate
from dashboard.output.pdf import PdfUnavailable, html_to_pdf
from dashboard.rules.clock import utcnow
from dashboard.rules.evalspec import GRADES, INDICATORS, INSUFFICIENT, SAMPLE_OF, Indicator, Weights, load_weights
from dashboard.store.scope import Scope

__all__ = ["KINDS", "Report", "build_report", "render_html", "write_html", "write_report", "write_xlsx"]

# The sheets and sections, in order.
KINDS = (ObjectKind.DISTRICT, ObjectKind.STREET, ObjectKind.COMMUNITY, ObjectKind.GRID, ObjectKind.UNIT,
         ObjectKind.SUPERVISOR, ObjectKind.ACCEPTOR, ObjectKind.SHIFT_LEAD, ObjectKind.DISPATCHER)
_LEVELS = (ObjectKind.DISTRICT, ObjectKind.STREET, ObjectKind.COMMUNITY, ObjectKind.GRID)
_LEVEL_OF_SCOPE = {"city": -1, "district": 0, "street": 1, "community": 2}
GRID_SHOWN = 10  # best and worst ranked grids in the HTML
# Staff kinds with few objects: their rankings share one printed page.
_SHARED_PAGE = frozenset({ObjectKind.ACCEPTOR, ObjectKind.SHIFT_LEAD, ObjectKind.DISPATCHER})
UNITS_CHARTED = 5  # best and worst ranked units in the unit chart
REMARK = "备注"
NO_COMPOSITE = "无综合指标值"

# The columns of each group's HTML table (the XLSX has every indicator).
HTML_COLUMNS: dict[str, tuple[str, ...]] = {
    "region": ("filed", "due_close", "report_rate", "filed_per_grid", "close_rate", "on_time_close_rate",
               "satisfaction"),
    "unit": ("assigned", "on_time_handle_rate", "handled_late", "close_rate", "rework_rate", "return_rate",
             "suspended", "satisfaction_rate"),
    "supervisor": ("reports", "valid_rate", "on_time_verify_rate", "on_time_check_rate", "missed", "missed_rate"),
    "acceptor": ("accepted", "verify_dispatch_rate", "check_dispatch_rate", "callbacks"),
    "shift_lead": ("filed", "on_time_file_rate", "accurate_file_rate", "closed", "on_time_close_rate"),
    "dispatcher": ("dispatched", "on_time_dispatch_rate", "returned", "accurate_dispatch_rate"),
}
GROUP_LABELS = {"region": "区域（区、街道、社区、网格）", "unit": "部门/处置单位", "supervisor": "监督员",
                "acceptor": "受理员", "shift_lead": "值班长", "dispatcher": "派遣员"}
MEASURE_LABELS = {"count": "件数", "rate": "比率(%)", "score": "分值(0–100)", "density": "密度", "area": "面积"}
SCORING_LABELS = {"rate": "比率×100", "inverse_rate": "(1−比率)×100", "score": "分值直接计入", "bands": "分档计分"}
GRADE_COLORS = {"A": "#2e7d32", "B": "#7cb342", "C": "#f9a825", "D": "#ef6c00", "E": "#c62828", None: "#9e9e9e"}
NUMBER_FORMATS = {"count": "#,##0", "rate": "0.0%", "score": "0.0", "density": "0.00", "area": "0.00"}


# -- the report -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    """Every evaluation of one period and scope, and what the title page needs."""

    city_name: str
    period: Period
    scope: Scope
    tz: tzinfo
    generated_at: datetime  # aware
    weights: Weights
    evaluations: tuple[Evaluation, ...]
    summary: Mapping[str, float | int | None] = field(default_factory=dict)

    @property
    def month_label(self) -> str:
        """``2026年10月`` for a calendar month, else ``2026年10月1日至2026年10月15日``."""
        p = self.period
        last = date.fromordinal(p.end_day.toordinal() - 1)
        if p.first.day == 1 and p.label == f"{p.first:%Y-%m}":
            return f"{p.first.year}年{p.first.month}月"
        return f"{_zh_date(p.first)}至{_zh_date(last)}"

    @property
    def title(self) -> str:
        return f"{self.city_name}数字化城市管理 {self.month_label} 综合考评通报"

    @property
    def period_text(self) -> str:
        last = date.fromordinal(self.period.end_day.toordinal() - 1)
        text = f"{_zh_date(self.period.first)}—{_zh_date(last)}"
        if self.as_of < self.period.end:
            text += f"（数据截至 {self.as_of.astimezone(self.tz):%Y-%m-%d %H:%M}，本期尚未结束）"
        return text

    @property
    def as_of(self) -> datetime:
        return self.evaluations[0].as_of

    @property
    def generated_text(self) -> str:
        return f"{self.generated_at.astimezone(self.tz):%Y-%m-%d %H:%M}"

    @property
    def scope_text(self) -> str:
        return self.scope.name if self.scope.is_city else f"{self.scope.name}（{self.scope.code}）"

    @property
    def slug(self) -> str:
        """File name stem: ``report-2026-10`` (city) or ``report-2026-10-110101`` (a region)."""
        label = self.period.label.replace("..", "_")
        return f"report-{label}" + ("" if self.scope.is_city else f"-{self.scope.code}")

    def evaluation(self, kind: ObjectKind) -> Evaluation | None:
        return next((e for e in self.evaluations if e.kind is kind), None)

    @property
    def top_kind(self) -> ObjectKind:
        """The region level charted on the first page: the level below the scope."""
        return _LEVELS[min(_LEVEL_OF_SCOPE.get(self.scope.level, -1) + 1, len(_LEVELS) - 1)]


def _zh_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def report_kinds(scope: Scope) -> tuple[ObjectKind, ...]:
    """The kinds a scope's report covers: region levels from the scope's own level down."""
    level = _LEVEL_OF_SCOPE.get(scope.level, -1)
    return tuple(k for k in KINDS if k not in _LEVELS or _LEVELS.index(k) >= max(level, 0))


def build_report(session: Session, scope: Scope, period: Period, weights: Weights | None = None, *,
                 city_name: str, tz: tzinfo, now: datetime | None = None) -> Report:
    """Evaluate every object kind of ``scope`` for ``period`` (one :func:`evaluate` call each)."""
    now = now or utcnow()
    weights = weights or load_weights()
    evaluations = tuple(evaluate(session, scope, kind, period, weights, now=now) for kind in report_kinds(scope))
    report = Report(city_name, period, scope, tz, now, weights, evaluations)
    return Report(city_name, period, scope, tz, now, weights, evaluations, _summary(report))


def _summary(report: Report) -> dict[str, float | int | None]:
    """The month's figures of the whole scope: the sums of the first-page level's rows."""
    ev = report.evaluation(report.top_kind)
    keys = ("filed", "public_filed", "due_close", "closed", "closed_on_time", "rated", "satisfied", "grids")
    total = {k: sum(int(r.indicators.get(k) or 0) for r in (ev.rows if ev else ())) for k in keys}
    area = sum(float(r.indicators.get("area_km2") or 0.0) for r in (ev.rows if ev else ()))
    return {
        **total,
        "close_rate": _ratio(total["closed"], total["due_close"]),
        "on_time_close_rate": _ratio(total["closed_on_time"], total["due_close"]),
        "report_rate": _ratio(total["public_filed"], total["filed"]),
        "satisfaction_rate": _ratio(total["satisfied"], total["rated"]),
        "incidence": total["filed"] / area if area > 0 else None,
    }


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


# -- formatting -----------------------------------------------------------------------------
def fmt(value: float | int | None, measure: str) -> str:
    """A figure as the HTML shows it: rates as ``93.4%``, counts with thousands separators."""
    if value is None:
        return "—"
    if measure == "count":
        return f"{int(value):,}"
    if measure == "rate":
        return f"{100 * value:.1f}%"
    if measure == "score":
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_composite(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def remark(row: EvaluationRow) -> str:
    if not row.sample_ok:
        return INSUFFICIENT
    return NO_COMPOSITE if row.composite is None else ""


def _indicators(group: str) -> dict[str, Indicator]:
    return {i.key: i for i in INDICATORS[group]}


# -- XLSX ------------------------------------------------------------------------------------
HEADER_ROW = 7  # the column header; data from the next row


def write_xlsx(report: Report, path: Path) -> Path:
    """One sheet per object kind and a 说明 sheet; written in openpyxl's write-only mode."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold, title_font = Font(bold=True), Font(bold=True, size=14)
    head_fill = PatternFill("solid", fgColor="DCE6F1")
    centred = Alignment(horizontal="center", vertical="center", wrap_text=True)

    def cell(ws: Any, value: Any, *, font: Any = None, number_format: str | None = None,
             fill: Any = None, align: Any = None) -> Any:
        c = WriteOnlyCell(ws, value=value)
        if font is not None:
            c.font = font
        if number_format:
            c.number_format = number_format
        if fill is not None:
            c.fill = fill
        if align is not None:
            c.alignment = align
        return c

    for ev in report.evaluations:
        group = ev.kind.group
        indicators = INDICATORS[group]
        ws = wb.create_sheet(ev.kind.label.replace("/", "、"))  # '/' is not allowed in sheet names
        widths = [6, 17 if ev.kind is ObjectKind.GRID else 14, 16 if ev.kind is ObjectKind.GRID else 22,
                  *(max(10, min(2 * len(i.label) + 2, 20)) for i in indicators), 11, 6, 10]
        for i, width in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = f"D{HEADER_ROW + 1}"
        sample = _indicators(group)[SAMPLE_OF[group]].label
        ws.append([cell(ws, f"{report.title} — {ev.kind.label}", font=title_font)])
        ws.append([f"考评周期：{report.period_text}"])
        ws.append([f"考评范围：{report.scope_text}"])
        ws.append([f"生成时间：{report.generated_text}"])
        ws.append([f"权重来源：{ev.weights_source}；{sample}少于 {ev.min_cases} 的对象标记{INSUFFICIENT}，"
                   "不排名、不评等级"])
        ws.append([])
        header = ["排名", "编码", "名称", *(i.label for i in indicators), "综合指标值", "等级", REMARK]
        ws.append([cell(ws, h, font=bold, fill=head_fill, align=centred) for h in header])
        for row in ev.rows:
            values: list[Any] = [row.rank, row.code, row.name]
            for ind in indicators:
                v = row.indicators.get(ind.key)
                values.append(v if v is None else cell(ws, v, number_format=NUMBER_FORMATS[ind.measure]))
            values += [row.composite if row.composite is None else cell(ws, row.composite, number_format="0.00"),
                       row.grade, remark(row) or None]
            ws.append(values)
        if not ev.rows:
            ws.append([None, None, "（本范围内无考评对象）"])
    _notes_sheet(wb, report, cell, bold, title_font, head_fill)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _notes_sheet(wb: Any, report: Report, cell: Any, bold: Any, title_font: Any, head_fill: Any) -> None:
    ws = wb.create_sheet("说明")
    for letter, width in zip("ABCDEF", (26, 22, 12, 9, 30, 40), strict=False):
        ws.column_dimensions[letter].width = width
    ws.append([cell(ws, f"{report.title} — 说明", font=title_font)])
    ws.append([f"考评周期：{report.period_text}；考评范围：{report.scope_text}；生成时间：{report.generated_text}"])
    ws.append([f"权重来源：{report.weights.source}"])
    ws.append([])
    for line in notes(report):
        ws.append([line])
    ws.append([])
    ws.append([cell(ws, "等级", font=bold, fill=head_fill), cell(ws, "综合指标值", font=bold, fill=head_fill)])
    for letter, band in grade_bands():
        ws.append([letter, band])
    ws.append([INSUFFICIENT, "样本数少于门槛，不评等级、不排名"])
    for group, label in GROUP_LABELS.items():
        ws.append([])
        ws.append([cell(ws, label, font=bold)])
        ws.append([cell(ws, h, font=bold, fill=head_fill)
                   for h in ("指标", "键", "度量", "权重(%)", "计分方式", "来源")])
        terms = {t.indicator: t for t in report.weights.terms[group]}
        for ind in INDICATORS[group]:
            term = terms.get(ind.key)
            extra = "（样本数）" if ind.key == SAMPLE_OF[group] else ""
            ws.append([ind.label + extra, ind.key, MEASURE_LABELS[ind.measure],
                       term.weight if term else None, scoring_text(term) if term else None,
                       term.source if term else None])


def grade_bands() -> list[tuple[str, str]]:
    out, upper = [], None
    for letter, lower in GRADES:
        out.append((letter, f"≥ {lower:g}" if upper is None else f"≥ {lower:g} 且 < {upper:g}"))
        upper = lower
    out.append(("E", f"< {upper:g}"))
    return out


def scoring_text(term: Any) -> str:
    text = SCORING_LABELS[term.scoring]
    if term.bands is not None:
        steps = [f"{'≤' if s.inclusive else '<'}{s.limit:g}→{s.score:g}" for s in term.bands.steps]
        text += "：" + "，".join(steps) + f"，其余→{term.bands.otherwise:g}"
    return text


def notes(report: Report) -> list[str]:
    w = report.weights
    return [
        "1. 比率类指标以本期立案（受理）的案件为样本，按其截至本期末（或生成时）的处理结果计算；"
        "事件类指标（上报、核实、派遣等）按事件发生时间计入本期；满意度按回访时间计入本期。",
        "2. 应结案数：本期立案、期末既未作废也未挂账的案件数；结案率 = 结案数 ÷ 应结案数；"
        "按期结案率 = 按期结案数 ÷ 应结案数（派遣、处置、核查、结案各环节均未超时）。",
        "3. 分母为零的比率记为“—”（不适用），不计入综合指标值，其余指标的权重按比例放大到 100%。",
        f"4. 综合指标值 = Σ(指标得分 × 权重) ÷ Σ权重，取两位小数；样本数少于 {w.min_cases} 的对象标记"
        f"“{INSUFFICIENT}”，不排名、不评等级；回访少于 {w.min_ratings} 次时满意度不计入综合指标值。",
        "5. 满意度：回访评分 1–5 分折算为 0–100 分（1→0，3→50，5→100）；满意率 = 满意及基本满意数 ÷ 回访数。",
        "6. 并列者名次相同；完整定义见 docs/evaluation.md。",
    ]


# -- HTML ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    label: str
    sub: str
    value: float
    text: str
    color: str
    y: float
    width: float


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart 0–100, laid out for the template (sizes in SVG user units)."""

    bars: tuple[Bar, ...]
    width: float
    height: float
    left: float  # label column
    plot: float  # plot width
    row: float
    ticks: tuple[tuple[float, str], ...]
    gap_after: int | None = None  # a separator after this many bars (best … worst)


def bar_chart(rows: Sequence[EvaluationRow], *, width: float = 680, left: float = 150, row: float = 22,
              gap_after: int | None = None, with_rank: bool = True) -> BarChart:
    plot = width - left - 60
    bars = []
    y = 4.0
    for i, r in enumerate(rows):
        if gap_after is not None and i == gap_after:
            y += row * 0.6
        value = r.composite or 0.0
        label = f"{r.rank}. {r.name}" if with_rank and r.rank is not None else r.name
        bars.append(Bar(label[:14], r.grade or INSUFFICIENT, value, fmt_composite(r.composite) + (
            f" {r.grade}" if r.grade else ""), GRADE_COLORS.get(r.grade, GRADE_COLORS[None]), y, plot * value / 100))
        y += row
    ticks = tuple((left + plot * t / 100, f"{t}") for t in (0, 20, 40, 60, 80, 100))
    return BarChart(tuple(bars), width, y + 18, left, plot, row, ticks, gap_after)


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    count: int
    color: str
    label: str


@dataclass(frozen=True)
class GradeRow:
    label: str
    total: int
    y: float
    segments: tuple[Segment, ...]


def grade_chart(evaluations: Iterable[Evaluation], *, width: float = 680, left: float = 110,
                row: float = 24) -> dict[str, Any]:
    """Stacked bars: per kind, how many objects got A … E and how many are 样本不足."""
    plot = width - left - 50
    rows = []
    y = 4.0
    for ev in evaluations:
        counts = [(g, sum(1 for r in ev.rows if r.grade == g)) for g in "ABCDE"]
        counts.append((INSUFFICIENT, sum(1 for r in ev.rows if r.grade is None)))
        total = sum(n for _, n in counts)
        if total == 0:
            continue
        x, segments = left, []
        for g, n in counts:
            if n:
                w = plot * n / total
                segments.append(Segment(x, w, n, GRADE_COLORS.get(g, GRADE_COLORS[None]), g))
                x += w
        rows.append(GradeRow(ev.kind.label, total, y, tuple(segments)))
        y += row
    legend = [(g, GRADE_COLORS[g], f"{g} 级 {band}") for g, band in grade_bands()] + [
        (INSUFFICIENT, GRADE_COLORS[None], INSUFFICIENT)]
    return {"rows": rows, "width": width, "height": y + 8, "left": left, "plot": plot, "row": row,
            "legend": legend}


def _table(report: Report, ev: Evaluation) -> dict[str, Any]:
    group = ev.kind.group
    known = _indicators(group)
    columns = [known[k] for k in HTML_COLUMNS[group]]
    rows = list(ev.rows)
    note = ""
    if ev.kind is ObjectKind.GRID:
        ranked = [r for r in rows if r.rank is not None]
        unranked = len(rows) - len(ranked)
        if len(ranked) > 2 * GRID_SHOWN:
            rows = ranked[:GRID_SHOWN] + ranked[-GRID_SHOWN:]
            note = (f"共 {len(ev.rows):,} 个网格，其中 {len(ranked):,} 个参与排名；此处列出排名前 {GRID_SHOWN} 位"
                    f"和后 {GRID_SHOWN} 位，全部网格见 XLSX。")
        else:
            rows = ranked
            note = f"共 {len(ev.rows):,} 个网格，其中 {len(ranked):,} 个参与排名；全部网格见 XLSX。"
        if unranked:
            note += f"{unranked:,} 个网格{INSUFFICIENT}，未排名。"
    body = [{
        "row": r,
        "cells": [fmt(r.indicators.get(c.key), c.measure) for c in columns],
        "composite": fmt_composite(r.composite),
        "remark": remark(r),
        "color": GRADE_COLORS.get(r.grade, GRADE_COLORS[None]),
        "show_code": r.code != r.name,
    } for r in rows]
    split = GRID_SHOWN if ev.kind is ObjectKind.GRID and note and len(rows) == 2 * GRID_SHOWN else None
    return {"columns": columns, "body": body, "note": note, "split": split}


def _highlights(report: Report) -> list[str]:
    s = report.summary
    top = report.evaluation(report.top_kind)
    out = [f"本期{report.scope.name}立案 {fmt(s['filed'], 'count')} 件，应结案 {fmt(s['due_close'], 'count')} 件，"
           f"结案 {fmt(s['closed'], 'count')} 件，结案率 {fmt(s['close_rate'], 'rate')}，"
           f"按期结案率 {fmt(s['on_time_close_rate'], 'rate')}。"]
    if top:
        ranked = [r for r in top.rows if r.rank is not None]
        if len(ranked) >= 2:
            best, worst = ranked[0], ranked[-1]
            out.append(f"{top.kind.label}综合指标值最高的是{best.name}"
                       f"（{fmt_composite(best.composite)}，{best.grade} 级），"
                       f"最低的是{worst.name}（{fmt_composite(worst.composite)}，{worst.grade} 级）。")
    unit = report.evaluation(ObjectKind.UNIT)
    if unit:
        ranked = [r for r in unit.rows if r.rank is not None]
        grades = {g: sum(1 for r in ranked if r.grade == g) for g in "ABCDE"}
        if ranked:
            parts = "，".join(f"{g} 级 {n} 个" for g, n in grades.items() if n)
            out.append(f"参与排名的处置单位 {len(ranked)} 个：{parts}。")
    if s.get("rated"):
        out.append(f"回访 {fmt(s['rated'], 'count')} 次，满意及基本满意 {fmt(s['satisfied'], 'count')} 次，"
                   f"满意率 {fmt(s['satisfaction_rate'], 'rate')}。")
    return out


def render_html(report: Report) -> str:
    """The printable page (A4), autoescaped; no script, no network resources."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("dashboard.output", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    top = report.evaluation(report.top_kind)
    top_rows = [r for r in top.rows if r.rank is not None] if top else []
    top_rows += [r for r in (top.rows if top else ()) if r.rank is None]
    unit = report.evaluation(ObjectKind.UNIT)
    unit_ranked = [r for r in unit.rows if r.rank is not None] if unit else []
    if len(unit_ranked) > 2 * UNITS_CHARTED:
        unit_chart = bar_chart(unit_ranked[:UNITS_CHARTED] + unit_ranked[-UNITS_CHARTED:], gap_after=UNITS_CHARTED,
                               left=190)
    else:
        unit_chart = bar_chart(unit_ranked, left=190)
    s = report.summary
    kpis = [("立案数", fmt(s["filed"], "count"), "件"), ("应结案数", fmt(s["due_close"], "count"), "件"),
            ("结案数", fmt(s["closed"], "count"), "件"), ("按期结案数", fmt(s["closed_on_time"], "count"), "件"),
            ("结案率", fmt(s["close_rate"], "rate"), ""), ("按期结案率", fmt(s["on_time_close_rate"], "rate"), ""),
            ("监督举报率", fmt(s["report_rate"], "rate"), ""),
            ("满意率", fmt(s["satisfaction_rate"], "rate"), f"回访 {fmt(s['rated'], 'count')} 次")]
    sections = [{"ev": ev, "table": _table(report, ev), "number": _CN_NUMBERS[i + 3]}
                for i, ev in enumerate(report.evaluations)]
    sheets: list[list[dict[str, Any]]] = []
    for section in sections:  # the short staff rankings share a page
        if sheets and section["ev"].kind in _SHARED_PAGE and sheets[-1][-1]["ev"].kind in _SHARED_PAGE:
            sheets[-1].append(section)
        else:
            sheets.append([section])
    return env.get_template("report.html.j2").render(
        report=report, kpis=kpis, highlights=_highlights(report), top=top,
        top_chart=bar_chart(top_rows, left=150), unit=unit, unit_chart=unit_chart,
        unit_count=len(unit_ranked), grades=grade_chart(report.evaluations), sheets=sheets,
        notes=notes(report), grade_bands=grade_bands(), INSUFFICIENT=INSUFFICIENT,
        notes_number=_CN_NUMBERS[len(sections) + 3], weight_tables=_weight_tables(report),
        unit_number=next((x["number"] for x in sections if x["ev"].kind is ObjectKind.UNIT), ""),
        fmt_rate=lambda v: fmt(v, "rate"), grade_color=lambda g: GRADE_COLORS.get(g, GRADE_COLORS[None]),
    )


def _weight_tables(report: Report) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    out = []
    for group, label in GROUP_LABELS.items():
        known = _indicators(group)
        rows = [(known[t.indicator].label, f"{t.weight:g}", scoring_text(t))
                for t in report.weights.terms[group] if t.weight > 0]
        out.append((group, label, rows))
    return out


_CN_NUMBERS = [*"一二三四五六七八九十", *(f"十{d}" for d in "一二三四五六七八九")]


def write_html(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path


def write_report(report: Report, out_dir: Path, *, pdf: bool = False) -> tuple[list[Path], str | None]:
    """Write ``<slug>.xlsx`` and ``<slug>.html`` (and ``<slug>.pdf``) into ``out_dir``.

    Returns the paths written and, when ``pdf`` was asked for but could not be made, why not
    (the XLSX and the HTML are written either way).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_xlsx(report, out_dir / f"{report.slug}.xlsx"), write_html(report, out_dir / f"{report.slug}.html")]
    if pdf:
        try:
            paths.append(html_to_pdf(paths[1], out_dir / f"{report.slug}.pdf"))
        except PdfUnavailable as exc:
            return paths, str(exc)
    return paths, None
