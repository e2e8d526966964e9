"""The monthly 通报 (`gridhall report`, dashboard.output.report): XLSX and HTML show exactly the figures
of dashboard.figures.evaluation.evaluate for the same scope and period; the CLI end to end; the demo's
last month rendered in Chromium (first page kept as a PNG in the shots dir).

The demo city (dashboard.demo.democity) gets a history that covers the whole previous month, as
`gridhall demo` builds it, but at 60 cases a day instead of 300 to keep the test quick.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

import cli
from browserkit import shots_dir
from dashboard.figures.evaluation import Evaluation, ObjectKind, Period, evaluate
from dashboard.output import pdf
from dashboard.output import report as rpt
from dashboard.rules.evalspec import INDICATORS, INSUFFICIENT
from dashboard.settings import Settings
from dashboard.store import db
from dashboard.store.cityname import city_name
from dashboard.store.models import Region, Unit
from dashboard.store.scope import CITY, clear_cache, get_scope
from democitykit import build_demo

REPO = Path(__file__).resolve().parent.parent
XSS_UNIT = '<script>window.__xss=1</script>市政"处"'


def previous_month(now: datetime, settings: Settings) -> Period:
    today = now.astimezone(settings.tz).date()
    first = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
    return Period.month(first.year, first.month, settings.tz)


def build_last_month(settings: Settings, sessions: sessionmaker[Session], city_dir: Path, now: datetime,
                     *, daily: float = 60, days: int | None = None) -> None:
    """The demo city and the history `gridhall demo` builds by default (at a lower rate)."""
    clear_cache()
    build_demo(settings, sessions, city_dir, days or cli.demo.demo_history_days(now, settings.tz), daily=daily, now=now)


def test_demo_history_reaches_back_over_the_previous_month() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    for text, expected in [("2026-11-25T22:03:00+00:00", 57), ("2026-11-25T15:59:00+00:00", 56),
                           ("2026-01-10T00:00:00+00:00", 41), ("2026-08-31T12:00:00+00:00", 62),
                           ("2026-03-01T00:30:00+08:00", 29)]:
        now = datetime.fromisoformat(text)
        days = cli.demo.demo_history_days(now, tz)
        assert days == expected, text
        first_local = (now.astimezone(tz).replace(day=1) - timedelta(days=1)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0)
        # build_history starts at (now − days) rounded down to the hour: before the month began
        assert (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0) <= first_local
        assert now - timedelta(days=days - 1) > first_local  # and not a day more than needed


# -- reading the HTML back ------------------------------------------------------------------
class _Rows(HTMLParser):
    """Rows of each section's ranking table: data-* attributes and cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.kind: str | None = None
        self.sections: dict[str, list[dict[str, Any]]] = {}
        self.row: dict[str, Any] | None = None
        self.cell: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-kind"):
            self.kind = a["data-kind"]
            self.sections[self.kind] = []
        elif tag == "tr" and self.kind and "data-rank" in a:
            self.row = {**a, "cells": []}
            self.sections[self.kind].append(self.row)
        elif tag == "td" and self.row is not None:
            self.cell = []
        elif tag == "span" and self.cell is not None and a.get("class") == "code":
            self.cell.append("|")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.row is not None and self.cell is not None:
            self.row["cells"].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr":
            self.row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def assert_html_matches(html: str, evaluations: list[Evaluation]) -> None:
    parsed = _Rows()
    parsed.feed(html)
    for ev in evaluations:
        shown = parsed.sections[ev.kind.value]
        if ev.kind is ObjectKind.GRID:
            ranked = [r for r in ev.rows if r.rank is not None]
            assert len(shown) == min(len(ranked), 2 * rpt.GRID_SHOWN)
            n = rpt.GRID_SHOWN
            expected = ranked[:n] + ranked[-n:] if len(ranked) > 2 * n else ranked
        else:
            expected = list(ev.rows)
        assert [s["data-code"] for s in shown] == [r.code for r in expected], ev.kind
        columns = rpt.HTML_COLUMNS[ev.kind.group]
        measures = {i.key: i.measure for i in INDICATORS[ev.kind.group]}
        for s, r in zip(shown, expected, strict=False):
            assert s["data-rank"] == ("" if r.rank is None else str(r.rank))
            assert s["data-composite"] == ("" if r.composite is None else str(r.composite))
            assert s["data-grade"] == (r.grade or "")
            assert s["data-sample-ok"] == ("true" if r.sample_ok else "false")
            cells = s["cells"]
            assert cells[0] == ("—" if r.rank is None else str(r.rank))
            name = cells[1].split("|")
            assert name[0] == r.name and (len(name) == 1 or name[1] == r.code)
            assert cells[2:2 + len(columns)] == [rpt.fmt(r.indicators[k], measures[k]) for k in columns]
            assert cells[-2] == ("—" if r.composite is None else f"{r.composite:.2f}")
            assert cells[-1] == (r.grade or rpt.remark(r) or "—")


def assert_xlsx_matches(path: Path, evaluations: list[Evaluation]) -> None:
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == [ev.kind.label.replace("/", "、") for ev in evaluations] + ["说明"]
    for ev in evaluations:
        ws = wb[ev.kind.label.replace("/", "、")]
        assert ws.freeze_panes == f"D{rpt.HEADER_ROW + 1}"
        indicators = INDICATORS[ev.kind.group]
        header = [c.value for c in ws[rpt.HEADER_ROW]]
        assert header == ["排名", "编码", "名称", *(i.label for i in indicators), "综合指标值", "等级", rpt.REMARK]
        rows = list(ws.iter_rows(min_row=rpt.HEADER_ROW + 1, values_only=True))
        assert len(rows) == len(ev.rows), ev.kind
        for got, r in zip(rows, ev.rows, strict=False):
            want = [r.rank, r.code, r.name, *(r.indicators[i.key] for i in indicators), r.composite, r.grade,
                    rpt.remark(r) or None]
            assert _same(got, want), (ev.kind, r.code, got, want)
        # rates carry a percentage format, counts a thousands format
        if ev.rows:
            for col, ind in enumerate(indicators, start=4):
                assert ws.cell(rpt.HEADER_ROW + 1, col).number_format == rpt.NUMBER_FORMATS[ind.measure] or \
                    ws.cell(rpt.HEADER_ROW + 1, col).value is None
    notes = "\n".join(str(c) for row in wb["说明"].iter_rows(values_only=True) for c in row if c is not None)
    for group in INDICATORS.values():
        for ind in group:
            assert ind.label in notes
    assert "≥ 90" in notes and INSUFFICIENT in notes


def _same(got: tuple[Any, ...], want: list[Any]) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=False):
        if isinstance(w, float) and g is not None:
            if abs(float(g) - w) > 1e-9 * max(1.0, abs(w)):
                return False
        elif g != w:
            return False
    return True


# -- (a) the report shows exactly evaluate()'s figures ----------------------------------------
def test_xlsx_and_html_hold_exactly_the_evaluation(settings: Settings, sessions, demo_city_dir: Path,
                                                   tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    build_last_month(settings, sessions, demo_city_dir, now)
    period = previous_month(now, settings)
    with db.transaction(sessions) as s:  # a name that must be escaped, not run
        s.execute(update(Unit).where(Unit.id == s.scalar(select(Unit.id).order_by(Unit.id).limit(1)))
                  .values(name=XSS_UNIT))
    with sessions() as s:
        built = rpt.build_report(s, CITY, period, city_name=city_name(settings, s), tz=settings.tz, now=now)
        evaluations = [evaluate(s, CITY, kind, period, now=now) for kind in rpt.KINDS]
        district = s.scalar(select(Region.code).where(Region.level == "district").order_by(Region.code))
        dscope = get_scope(s, district)
        dreport = rpt.build_report(s, dscope, period, city_name=city_name(settings, s), tz=settings.tz, now=now)
        devaluations = [evaluate(s, dscope, kind, period, now=now) for kind in rpt.report_kinds(dscope)]
    assert [e.kind for e in built.evaluations] == list(rpt.KINDS)
    assert built.evaluations == tuple(evaluations)
    districts = evaluations[0]
    assert len(districts.rows) == 3 and all(r.rank for r in districts.rows), "a meaningful district ranking"
    assert sum(r.indicators["filed"] for r in districts.rows) > 1000  # type: ignore[misc]

    paths, no_pdf = rpt.write_report(built, tmp_path / "out")
    assert no_pdf is None
    assert [p.name for p in paths] == [f"report-{period.label}.xlsx", f"report-{period.label}.html"]
    assert_xlsx_matches(paths[0], evaluations)
    html = paths[1].read_text(encoding="utf-8")
    assert_html_matches(html, evaluations)

    assert built.city_name == "演示市"  # the demo city's own name (its city.toml), not a setting
    title = f"{built.city_name}数字化城市管理 {period.first.year}年{period.first.month}月 综合考评通报"
    assert built.title == title and f"<h1>{title}</h1>" in html
    filed = sum(int(r.indicators["filed"]) for r in districts.rows)  # type: ignore[arg-type]
    assert f'<div class="label">立案数</div><div class="value">{filed:,}<' in html
    assert "<script" not in html and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "http://" not in html and "https://" not in html and "@import" not in html and "url(" not in html
    wb = openpyxl.load_workbook(paths[0])
    assert wb["区"]["A2"].value.startswith("考评周期：") and "权重来源" in wb["区"]["A5"].value

    # A district's report: its own level down, the same figures as evaluate() in that scope.
    assert [e.kind for e in dreport.evaluations][:4] == [ObjectKind.DISTRICT, ObjectKind.STREET,
                                                         ObjectKind.COMMUNITY, ObjectKind.GRID]
    assert dreport.evaluations == tuple(devaluations)
    assert dreport.top_kind is ObjectKind.STREET and dreport.slug == f"report-{period.label}-{district}"
    dpaths, _ = rpt.write_report(dreport, tmp_path / "district")
    assert_xlsx_matches(dpaths[0], devaluations)
    assert_html_matches(dpaths[1].read_text(encoding="utf-8"), devaluations)


def test_no_chromium_still_writes_xlsx_and_html(settings: Settings, sessions, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pdf, "chromium_path", lambda: None)
    period = Period.month(2026, 10, settings.tz)
    with sessions() as s:
        built = rpt.build_report(s, CITY, period, city_name="演示市", tz=settings.tz)
    paths, no_pdf = rpt.write_report(built, tmp_path, pdf=True)
    assert no_pdf is not None and "Chromium not found" in no_pdf
    assert [p.suffix for p in paths] == [".xlsx", ".html"] and all(p.stat().st_size > 0 for p in paths)
    assert "本范围内本期无区考评数据" in paths[1].read_text(encoding="utf-8")  # an empty city: said, not blank


# -- (b) the command line ---------------------------------------------------------------------
def run(settings: Settings, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(GRIDHALL_DATA_DIR=str(settings.data_dir), GRIDHALL_DATABASE_URL=settings.effective_database_url,
               GRIDHALL_REDIS_PREFIX=settings.redis_prefix)
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    # This checkout's cli package, from whatever folder the command runs in.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env,
                          timeout=180, cwd=cwd or REPO)


def test_cli_writes_the_report_and_refuses_bad_input(settings: Settings, sessions, demo_city_dir: Path,
                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    build_last_month(settings, sessions, demo_city_dir, now, days=3)
    month = f"{now.astimezone(settings.tz):%Y-%m}"  # the running month: partial, 截至 now
    with sessions() as s:
        district = s.scalar(select(Region.code).where(Region.level == "district").order_by(Region.code))
    out = tmp_path / "out"
    result = run(settings, "report", "--month", month, "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    written = [Path(line) for line in result.stdout.split() if line.strip()]
    assert written == [out / f"report-{month}.xlsx", out / f"report-{month}.html"]
    assert all(p.exists() for p in written)
    html = written[1].read_text(encoding="utf-8")
    assert "本期尚未结束" in html
    parsed = _Rows()
    parsed.feed(html)
    assert len(parsed.sections["district"]) == 3

    # default --out: the current directory; --scope a district
    here = tmp_path / "here"
    here.mkdir()
    result = run(settings, "report", "--month", month, "--scope", district, cwd=here)
    assert result.returncode == 0, result.stderr
    assert (here / f"report-{month}-{district}.xlsx").exists() and (here / f"report-{month}-{district}.html").exists()
    assert openpyxl.load_workbook(here / f"report-{month}-{district}.xlsx").sheetnames[0] == "区"

    for args, words in [(["--month", "2026-13"], "--month"), (["--month", "10-2026"], "--month"),
                        (["--month", "2026-1"], "--month"), (["--month", "2999-01"], "has not begun"),
                        (["--month", month, "--scope", "999999"], "--scope")]:
        result = run(settings, "report", *args, "--out", str(tmp_path / "bad"))
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1, (args, result.stderr)
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr, (args, result.stderr)
    assert not (tmp_path / "bad").exists()


# -- (c) the demo's last month in Chromium ------------------------------------------------------
@pytest.mark.browser
def test_last_month_first_page_renders(settings: Settings, sessions, demo_city_dir: Path, tmp_path: Path,
                                       browser: Any) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    build_last_month(settings, sessions, demo_city_dir, now)
    period = previous_month(now, settings)
    with sessions() as s:
        built = rpt.build_report(s, CITY, period, city_name=city_name(settings, s), tz=settings.tz, now=now)
    # the command prints it to PDF with its own Chromium
    result = run(settings, "report", "--month", period.label, "--out", str(tmp_path / "out"), "--pdf")
    assert result.returncode == 0, result.stdout + result.stderr
    paths = [Path(line) for line in result.stdout.split()]
    assert [p.suffix for p in paths] == [".xlsx", ".html", ".pdf"]
    assert paths[2].read_bytes()[:5] == b"%PDF-" and paths[2].stat().st_size > 20_000
    png = pdf.screenshot_first_page(paths[1], shots_dir(tmp_path) / "report-page1.png", browser=browser)
    assert png.stat().st_size > 50_000

    page = browser.new_page(viewport={"width": 794, "height": 1123})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(paths[1].resolve().as_uri())
    title = page.locator("h1")
    assert title.inner_text() == built.title
    rows = page.locator("#top-ranking tbody tr")
    assert rows.count() == 3
    districts = built.evaluation(ObjectKind.DISTRICT)
    assert districts is not None
    for i, r in enumerate(districts.rows):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == str(r.rank) and cells[1] == r.name and cells[-2] == f"{r.composite:.2f}"
        box = rows.nth(i).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 1123, "the district ranking is on page 1"
    assert page.locator("svg.chart rect").count() >= 3
    # the cover fits one A4 sheet and no text is cut at its right edge
    cover = page.locator("section.sheet").first.bounding_box()
    assert cover is not None and cover["height"] <= 1124 and cover["width"] <= 795
    overflow = page.evaluate("""() => [...document.querySelectorAll('section.sheet')].filter(
        s => s.scrollWidth > s.clientWidth + 1).map(s => s.id || 'cover')""")
    assert overflow == []
    # printed (A4 less the @page margins: 182 × 267 mm), the cover still fits its page
    page.set_viewport_size({"width": 688, "height": 1009})
    page.emulate_media(media="print")
    height = page.evaluate("() => document.querySelector('section.sheet').getBoundingClientRect().height")
    assert height <= 1009, f"the printed cover is {height:.0f}px high and spills onto page 2"
    assert all(u.startswith("file:") for u in requests), requests
    page.close()
