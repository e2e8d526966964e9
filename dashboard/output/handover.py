"""The shift handover as files (docs/handover.md): one printable A4 page (HTML, PDF) and the XLSX
of the cases behind it, all rendered from the report's stored content
(``dashboard/store/handovers.py``), so every rendering of a shift says the same.

Domain only (no Dash). The HTML (``templates/handover.html.j2``, autoescaped) has A4 print CSS,
system CJK fonts and nothing from the network; the PDF is that HTML printed by headless Chromium
(:mod:`dashboard.output.pdf`, the monthly report's printer); the XLSX has one sheet per case list
with the /explore case table's columns (:func:`dashboard.output.export.to_xlsx_sheets`).
"""

from __future__ import annotations

import tempfile
from itertools import zip_longest
from pathlib import Path
from typing import Any

from dashboard.figures.handover import SECTIONS
from dashboard.output.export import to_xlsx_sheets
from dashboard.output.pdf import html_to_pdf

__all__ = ["FORMATS", "MEDIA_TYPES", "SHOWN_ROWS", "filename", "render", "render_html", "render_pdf", "render_xlsx",
           "title"]

SHOWN_ROWS = 6  # rows of each list on the page (the XLSX has them all)
FORMATS = ("html", "pdf", "xlsx")
# The XLSX's columns beyond the case table's (the 新增超期 sheet).
EXTRA_COLUMNS = (("clock_stage", "超时环节"), ("overdue_hours", "已超时长（小时）"))
ALERT_COLUMNS = (("number", "案件编号"), ("case_id", "案件标识"), ("reason", "预警原因"), ("level", "预警层级"),
                 ("klass", "大类 · 小类"), ("district", "区"), ("grid", "网格"), ("raised_at", "预警时间"),
                 ("escalated_at", "升级时间"), ("acknowledged_by", "确认人"), ("acknowledged_at", "确认时间"),
                 ("cleared_at", "解除时间"))
HOT_COLUMNS = (("grid", "网格"), ("community", "社区"), ("street", "街道"), ("district", "区"),
               ("value", "本班新增（件）"))


def title(content: dict[str, Any]) -> str:
    return f"{content['city']}数字化城市管理指挥中心 交接班报告"


def filename(content: dict[str, Any], fmt: str) -> str:
    """``handover-2026-11-20T0800.pdf``: the shift's key without the colon (safe everywhere)."""
    return f"handover-{content['shift']['key'].replace(':', '')}.{fmt}"


def render_html(content: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("dashboard.output", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    # Times on the page without the year ("12-07 08:20"): one shift's page needs no more (the XLSX has it).
    env.filters["short"] = lambda text: text[5:] if isinstance(text, str) and len(text) == 16 else text
    pairs = {key: list(zip_longest(content[key]["by_group"], content[key]["by_district"]))[:SHOWN_ROWS]
             for key in ("came_in", "closed")}
    foot = ("口径：来件按上报时间、结案按结案时间计入本班；新增超期为时限在本班内届满且交班时仍超期的案件"
            "（与 gridhall overdue --at 交班时刻一致）；热点按本班新增案件数排列，并列按网格编码。"
            "本报告在交班时生成一次，此后不变。")
    return env.get_template("handover.html.j2").render(c=content, title=title(content), pairs=pairs,
                                                       shown_rows=SHOWN_ROWS, footnote=foot)


def render_xlsx(content: dict[str, Any]) -> bytes:
    """One sheet per case list (SECTIONS), a 预警 and a 热点网格 sheet."""
    sheets: list[tuple[str, Any]] = [(head, content[key]["cases"]) for key, head in SECTIONS]
    alerts = [{k: a.get(k, "") for k, _ in ALERT_COLUMNS} for a in content["alerts"]]
    return to_xlsx_sheets(sheets, EXTRA_COLUMNS, tables=[("预警", ALERT_COLUMNS, alerts),
                                                         ("热点网格", HOT_COLUMNS, content["hot_spots"])])


def render_pdf(content: dict[str, Any], *, browser: Any = None) -> bytes:
    """The page printed to A4 PDF; raises ``PdfUnavailable`` (with the reason) without Chromium.
    ``browser``: a Playwright browser to print with (default: start headless Chromium for this)."""
    with tempfile.TemporaryDirectory(prefix="gridhall-handover-") as tmp:
        html = Path(tmp) / "handover.html"
        html.write_text(render_html(content), encoding="utf-8")
        return html_to_pdf(html, Path(tmp) / "handover.pdf", browser=browser).read_bytes()


def render(content: dict[str, Any], fmt: str) -> bytes:
    """The report in ``fmt`` (html, pdf or xlsx) as bytes; ValueError for another format."""
    if fmt == "html":
        return render_html(content).encode("utf-8")
    if fmt == "pdf":
        return render_pdf(content)
    if fmt == "xlsx":
        return render_xlsx(content)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
