"""The shift handover (交接班报告, docs/handover.md) on a small scripted city, through the real ingest,
database and Redis: the report's figures equal SQL recounts of the same shift; it is written once
(again at the boundary and by a second housekeeping owner: the same stored report); notes are the
current shift's, by a shift lead or an admin; ``gridhall handover`` writes HTML, XLSX (and PDF) and
lists past handovers."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from citykit import Plan, build_plan
from dashboard.figures.handover import write_handover
from dashboard.output.handover import render_html, render_xlsx
from dashboard.rules import classification
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType
from dashboard.rules.shifts import Shift, ShiftPlan, parse_boundaries
from dashboard.settings import Settings
from dashboard.store.alerts import acknowledge
from dashboard.store.db import transaction
from dashboard.store.handovers import NotesRefused, save_notes, stored
from dashboard.store.models import Alert, Case, Grid, Region, ShiftHandover, User
from dashboard.store.reference import Reference, timing_for
from dashboard.store.users import create_user, get_user
from feedkit import ingest_pusher
from feeds.contract import CaseEventMessage
from feeds.housekeeping import run

REPO = Path(__file__).resolve().parent.parent
SCHEME = "gbt47678-2026"
PLAN: Plan = {
    ("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 2}},
    ("990102", "白石区"): {("990102001", "白石街道"): {("990102001001", "白石社区"): 1}},
}
QS1, QS2, BS = "990101001001001", "990101001001002", "990102001001001"
NORMAL = ("event", "06001")  # 私搭乱建
MANHOLE = ("component", "01001")  # 供水井盖 (safety-critical: an alert)


def test_shift_boundaries_and_names() -> None:
    from zoneinfo import ZoneInfo

    plan = ShiftPlan.parse("08:00,16:00,24:00", ZoneInfo("Asia/Shanghai"))
    assert parse_boundaries("24:00, 08:00,16:00") == (0, 480, 960)
    night = plan.named("2026-11-20T00:00")
    assert (night.label, plan.previous(night).key) == ("2026-11-20 00:00—08:00", "2026-11-19T16:00")
    assert plan.shift_at(night.end).key == "2026-11-20T08:00"  # the end belongs to the next shift
    assert plan.named("2026-11-20T16:00").label == "2026-11-20 16:00—24:00"
    for bad in ("25:00", "8", "", "12:60"):
        with pytest.raises(ValueError):
            parse_boundaries(bad)
    with pytest.raises(ValueError, match="no shift starts at 2026-11-20T09:00"):
        plan.named("2026-11-20T09:00")


@pytest.fixture
def handover_city(sessions: sessionmaker[Session], fresh_scope_cache: None) -> Reference:
    """Two districts and three grids; a city shift lead, an admin and a leader."""
    with transaction(sessions) as s:
        build_plan(s, PLAN)
        for name, role in (("city.shift", "shift_lead"), ("admin", "admin"), ("leader", "leader")):
            create_user(s, name, role)
    return Reference.load(sessions, classification.load(SCHEME))


def _report(case: str, grid: str, at: datetime, cls: tuple[str, str] = NORMAL, urgency: str = "normal",
            **fields: Any) -> CaseEventMessage:
    return CaseEventMessage(event_id=f"{case}-r", case_id=case, type=EventType.REPORTED, occurred_at=at,
                            source="supervisor", kind=cls[0], class_code=cls[1], urgency=urgency,
                            number=f"N{case}", grid_code=grid, **fields)


def _step(case: str, n: int, type_: EventType, at: datetime, **fields: Any) -> CaseEventMessage:
    return CaseEventMessage(event_id=f"{case}-{n}", case_id=case, type=type_, occurred_at=at, **fields)


def _script(shift: Shift) -> list[CaseEventMessage]:
    """A shift: cases before, in and across it; some closed in it, one goes overdue, two alerts."""
    s0, m = shift.start, timedelta(minutes=1)
    before = s0 - 90 * m
    out = [
        _report("a1", QS1, s0 + 10 * m), _report("a2", QS1, s0 + 20 * m, MANHOLE),
        _report("a3", QS2, s0 + 30 * m), _report("b1", BS, s0 + 40 * m),
        _report("b2", BS, s0 + 50 * m, urgency="urgent"),
        _report("o1", QS2, before, deadline_at=s0 + 60 * m),  # goes overdue in the shift, stays open
        _report("o2", BS, before, deadline_at=s0 - 5 * m),  # overdue before the shift: not "new"
        _report("c0", QS1, before),  # reported before, closed in the shift
        _report("u0", BS, before, urgency="urgent"),  # urgent, still open
        _report("late", QS1, shift.end + m),  # after the shift: in none of its figures
    ]
    # The source deadline is the 处置 clock's (docs/lifecycle.md): o1 and o2 are filed and dispatched
    # before the shift, so their deadlines are the given ones whatever the hour (a 立案 clock's
    # working-hour deadline falls in the shift or not by the time of day the test runs).
    for case in ("o1", "o2"):
        out += [_step(case, 2, EventType.FILED, before + m),
                _step(case, 3, EventType.DISPATCHED, before + 2 * m)]
    for case, start in (("a1", 15), ("a3", 35), ("c0", 5)):
        out += [_step(case, 2, EventType.SELF_HANDLED, s0 + start * m),
                _step(case, 3, EventType.CLOSED, s0 + (start + 5) * m)]
    out += [_step("b1", 2, EventType.SELF_HANDLED, shift.end - m),
            _step("b1", 3, EventType.CLOSED, shift.end + 2 * m)]  # closed after the shift ended
    return out


def _load(settings: Settings, sessions: sessionmaker[Session], client: redis.Redis, ref: Reference) -> Shift:
    shift = settings.shift_plan.previous(settings.shift_plan.last_ended(utcnow()))  # ended, and so did its next
    ingest_pusher(settings, sessions, client, ref, consumer="h1")(_script(shift))
    with transaction(sessions) as s:
        # The ingest stamps raised_at with its own clock (now): as if it had run live, raise each alert
        # when its case was reported.
        for alert in s.scalars(select(Alert)):
            alert.raised_at = alert.case.reported_at
        lead = get_user(s, "city.shift")
        assert lead is not None
        a2 = s.scalar(select(Alert.id).where(Alert.case_id == "a2"))
        assert a2 is not None
        acknowledge(s, a2, lead, shift.start + timedelta(minutes=25))
    return shift


def _recount(s: Session, condition: Any) -> tuple[int, dict[str, int], set[str]]:
    street, district = aliased(Region), aliased(Region)
    rows = s.execute(select(Case.case_id, district.name).outerjoin(Grid, Grid.id == Case.grid_id)
                     .outerjoin(Region, Region.id == Grid.community_id)
                     .outerjoin(street, street.id == Region.parent_id)
                     .outerjoin(district, district.id == street.parent_id).where(condition)).all()
    by_district: dict[str, int] = {}
    for _, d in rows:
        by_district[d] = by_district.get(d, 0) + 1
    return len(rows), by_district, {r[0] for r in rows}


def test_figures_equal_sql_recounts(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
                                    handover_city: Reference) -> None:
    shift = _load(settings, sessions, redis_client, handover_city)
    start, end = shift.start, shift.end
    with transaction(sessions) as s:
        content, new = write_handover(s, timing_for(settings, s), shift, city_name="演示市", now=utcnow())
    assert new
    with sessions() as s:
        for key, cond in (
            ("came_in", and_(Case.reported_at >= start, Case.reported_at < end)),
            ("closed", and_(Case.stage == "closed", Case.closed_at >= start, Case.closed_at < end)),
            ("urgent_open", and_(Case.urgency == "urgent", Case.reported_at < end,
                                 or_(Case.closed_at.is_(None), Case.closed_at >= end))),
        ):
            total, by_district, ids = _recount(s, cond)
            part = content[key]
            assert part["total"] == total and dict(map(tuple, part["by_district"])) == by_district, key
            assert {r["case_id"] for r in part["cases"]} == ids, key
            assert sum(n for _, n in part["by_group"]) == total
        # Still-open cases whose (source) deadline fell inside the shift: overdue at its end.
        overdue_ids = set(s.scalars(select(Case.case_id).where(Case.closed_at.is_(None), Case.deadline_at >= start,
                                                               Case.deadline_at < end)))
        alert_rows = s.execute(select(Alert.case_id, Alert.acknowledged_at, User.username)
                               .outerjoin(User, User.id == Alert.acknowledged_by)
                               .where(Alert.raised_at >= start, Alert.raised_at < end)).all()
        hot = s.execute(select(Grid.code, func.count()).join(Case, Case.grid_id == Grid.id)
                        .where(Case.reported_at >= start, Case.reported_at < end)
                        .group_by(Grid.code).order_by(func.count().desc(), Grid.code)).all()
    # Folded from the events (gridhall overdue --at) vs the clocks stored on the rows: the same cases.
    assert {r["case_id"] for r in content["went_overdue"]["cases"]} == overdue_ids
    assert "o1" in overdue_ids and "o2" not in overdue_ids and "late" not in overdue_ids
    assert content["went_overdue"]["total"] == len(overdue_ids)
    assert content["came_in"]["total"] == 5 and content["closed"]["total"] == 3  # the script, as a sanity floor
    assert {a["case_id"] for a in content["alerts"]} == {r[0] for r in alert_rows} == {"a2", "b2"}
    acked = {a["case_id"]: (a["acknowledged_by"], a["acknowledged_at"]) for a in content["alerts"]}
    tz = settings.tz
    assert acked["a2"] == ("city.shift", (start + timedelta(minutes=25)).astimezone(tz).strftime("%Y-%m-%d %H:%M"))
    assert acked["b2"] == ("", "")
    assert [(h["grid"], h["value"]) for h in content["hot_spots"]] == [(g, n) for g, n in hot]
    html = render_html(content)
    assert f'id="kpi-came-in">{content["came_in"]["total"]}<' in html and "city.shift" in html
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(render_xlsx(content)))
    assert wb.sheetnames == ["本班来件", "本班结案", "本班新增超期", "紧急案件（交班时仍在办）", "预警", "热点网格"]
    assert {wb["本班来件"].cell(r, 1).value for r in range(2, wb["本班来件"].max_row + 1)} == \
        {r["case_id"] for r in content["came_in"]["cases"]}


def test_written_once_at_the_boundary_and_notes(settings: Settings, sessions: sessionmaker[Session],
                                                redis_client: redis.Redis, handover_city: Reference) -> None:
    shift = _load(settings, sessions, redis_client, handover_city)
    with transaction(sessions) as s:
        lead, leader = get_user(s, "city.shift"), get_user(s, "leader")
        assert lead is not None and leader is not None
        with pytest.raises(NotesRefused, match="当前班次"):
            save_notes(s, lead.id, shift, "晚了", utcnow())
        with pytest.raises(NotesRefused, match="值班长或管理员"):
            save_notes(s, leader.id, shift, "领导", shift.start + timedelta(minutes=1))
        save_notes(s, lead.id, shift, "松岗路井盖已报修，待回复。", shift.start + timedelta(hours=1))
    with transaction(sessions) as s:  # the boundary: written at the end of the shift…
        first, new = write_handover(s, timing_for(settings, s), shift, city_name="演示市", now=shift.end)
    assert new and first["notes"]["text"] == "松岗路井盖已报修，待回复。"
    ingest_pusher(settings, sessions, redis_client, handover_city, consumer="h2")(
        [_report("z9", QS1, shift.start + timedelta(minutes=3))])  # a late report of a case in that shift
    with transaction(sessions) as s:  # …and again later: the same report, not a second one
        again, new = write_handover(s, timing_for(settings, s), shift, city_name="演示市", now=utcnow())
        lead = get_user(s, "city.shift")
        assert lead is not None
        with pytest.raises(NotesRefused):
            save_notes(s, lead.id, shift, "改", shift.start + timedelta(hours=2))
    assert not new and again == first
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ShiftHandover)) == 1


def test_two_housekeeping_owners_write_each_handover_once(settings: Settings, engine: Engine,
                                                          sessions: sessionmaker[Session], redis_client: redis.Redis,
                                                          handover_city: Reference) -> None:
    shift = _load(settings, sessions, redis_client, handover_city)
    lines: list[str] = []
    stop = threading.Event()
    owners = [threading.Thread(target=run, args=(settings, engine, redis_client, stop),
                               kwargs={"once": True, "report": lines.append}) for _ in range(2)]
    for t in owners:
        t.start()
    for t in owners:
        t.join(timeout=120)
    written = [line for line in lines if "shift_handovers: wrote" in line]
    assert len(written) == 1, lines  # one owner ran the pass, the other waited
    assert any("owned by" in line for line in lines) or len([x for x in lines if "pass 1" in x]) == 2, lines
    with sessions() as s:
        keys = s.scalars(select(ShiftHandover.shift_start).where(ShiftHandover.content.is_not(None))).all()
        first = stored(s, shift)
    assert len(keys) == len(set(keys)) and shift.start in keys and first is not None
    run(settings, engine, redis_client, stop, once=True, report=lines.append)  # a later pass: nothing new
    assert "all" in lines[-1] and "shifts of the last day written" in lines[-1]
    with sessions() as s:
        assert stored(s, shift) == first


def _cli(settings: Settings, *args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(GRIDHALL_DATA_DIR=str(settings.data_dir), GRIDHALL_REDIS_PREFIX=settings.redis_prefix,
               GRIDHALL_DATABASE_URL=settings.effective_database_url, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "cli", "handover", *args], cwd=cwd, env=env, capture_output=True,
                          timeout=180)


def test_cli_writes_files_and_lists(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
                                    handover_city: Reference, tmp_path: Path) -> None:
    shift = _load(settings, sessions, redis_client, handover_city)
    done = _cli(settings, "--shift", shift.key, "--format", "xlsx", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    xlsx = tmp_path / f"handover-{shift.key.replace(':', '')}.xlsx"
    assert xlsx.stat().st_size > 0
    html = _cli(settings, "--shift", shift.key, "--out", "-", cwd=tmp_path)
    assert html.returncode == 0 and "交接班报告" in html.stdout.decode()
    listed = _cli(settings, "--format", "json", cwd=tmp_path)
    rows = json.loads(listed.stdout)
    assert [(r["shift"], r["came_in"], r["closed"]) for r in rows] == [(shift.key, 5, 3)]
    tsv = _cli(settings, cwd=tmp_path).stdout.decode().splitlines()  # piped: TSV
    assert tsv[0].split("\t")[:3] == ["shift", "label", "came_in"]
    for bad, code, says in ((("--shift", "2026-13-01T08:00"), 2, "YYYY-MM-DDTHH:MM"),
                            (("--shift", shift.key, "--format", "doc"), 2, "html, pdf, xlsx"),
                            (("--shift", settings.shift_plan.shift_at(utcnow()).key), 1, "has not ended")):
        wrong = _cli(settings, *bad, cwd=tmp_path)
        assert wrong.returncode == code and says in wrong.stderr.decode(), wrong.stderr.decode()
        assert "Traceback" not in wrong.stderr.decode()
    pdf = _cli(settings, "--shift", shift.key, "--format", "pdf", "--out", str(tmp_path / "h.pdf"), cwd=tmp_path)
    assert pdf.returncode == 0, pdf.stderr.decode()
    assert (tmp_path / "h.pdf").read_bytes()[:5] == b"%PDF-"


# -- /explore in Chromium -------------------------------------------------------------------------------
@pytest.mark.browser
def test_explore_lists_handovers_and_the_page_renders(browser: Any, live_server: Any, settings: Settings,
                                                      sessions: sessionmaker[Session], redis_client: redis.Redis,
                                                      handover_city: Reference, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from authkit import make_user, signin_page
    from browserkit import PageWatch, shots_dir

    shift = _load(settings, sessions, redis_client, handover_city)
    with transaction(sessions) as s:
        content, _ = write_handover(s, timing_for(settings, s), shift, city_name="演示市", now=utcnow())
    shots = shots_dir(tmp_path)
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=1, locale="zh-CN")
    page = context.new_page()
    watch = PageWatch(page)
    signin_page(page, live_server.url, make_user(sessions, "shift_lead"))
    page.goto(live_server.url + "/explore")
    box = page.locator("#explore-handover-box")
    expect(box).to_be_visible(timeout=20_000)
    row = page.locator("#explore-handover .explore-handover").first
    expect(row).to_contain_text(shift.label)
    expect(row).to_contain_text(f"来件 {content['came_in']['total']} · 结案 {content['closed']['total']}")
    # The current shift's notes: written here, kept, and shown again after a reload.
    page.locator("#explore-handover-editor textarea").fill("白石街道积水点已安排巡查，接班后请跟进。")
    page.locator("#explore-handover-editor button", has_text="保存备注").click()
    expect(page.locator("#explore-handover-msg")).to_have_text("备注已保存", timeout=10_000)
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "explore-handover-1920x1080.png"))
    with sessions() as s:
        current = settings.shift_plan.shift_at(utcnow())
        from dashboard.store.handovers import notes_of

        assert notes_of(s, current)[0] == "白石街道积水点已安排巡查，接班后请跟进。"
    href = row.locator("a", has_text="网页").get_attribute("href")
    assert href == f"/explore/handover/{shift.key.replace(':', '')}.html"
    for width, height, scale in ((1920, 1080, 1), (1920, 1080, 2)):  # 2×: a 3840×2160 screen
        view = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale,
                                   locale="zh-CN", storage_state=context.storage_state())
        sheet = view.new_page()
        sheet_watch = PageWatch(sheet)
        sheet.goto(live_server.url + href)
        expect(sheet.locator("h1")).to_have_text("演示市数字化城市管理指挥中心 交接班报告")
        expect(sheet.locator("#kpi-came-in")).to_contain_text(str(content["came_in"]["total"]))
        expect(sheet.locator("main")).to_contain_text("city.shift")  # who acknowledged the alert
        sheet.screenshot(path=str(shots / f"handover-{width * scale}x{height * scale}.png"))
        for fmt, magic in (("pdf", b"%PDF-"), ("xlsx", b"PK")):
            got = view.request.get(live_server.url + href.replace(".html", f".{fmt}"))
            assert got.status == 200 and got.body()[:len(magic)] == magic, (fmt, got.status)
        sheet_watch.assert_local_only()
        assert sheet_watch.errors == []
        view.close()
    # A leader reads the list but has no notes editor; a district's viewer sees neither, nor the files.
    for role, region, shown in (("leader", None, True), ("shift_lead", "990101", False)):
        other = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        p = other.new_page()
        signin_page(p, live_server.url, make_user(sessions, role, region=region))
        p.goto(live_server.url + "/explore")
        expect(p.locator("#explore-children")).not_to_be_empty(timeout=20_000)
        if shown:
            expect(p.locator("#explore-handover .explore-handover").first).to_be_visible(timeout=20_000)
            assert p.locator("#explore-handover-box textarea, #explore-handover-box button").count() == 0
        else:
            p.wait_for_timeout(1500)
            expect(p.locator("#explore-handover-box")).to_be_hidden()
            assert other.request.get(live_server.url + href).status == 404
        other.close()
    assert watch.errors == []
    context.close()


@pytest.mark.browser
def test_the_page_fits_one_a4_sheet_with_full_lists(browser: Any) -> None:
    """Every list longer than the page shows, 500 characters of notes: still one printed sheet."""
    import re

    from dashboard.output.handover import SHOWN_ROWS, render_pdf

    case = {"case_id": "C-1", "number": "N20261207000123", "major": "市容环境类", "minor": "私搭乱建",
            "district": "青山区", "street": "江东街道", "unit": "青山区城管执法局", "clock_stage": "处置",
            "deadline_at": "2026-12-07 09:00", "overdue_hours": 7.0, "stage": "处置", "status": "超期"}
    part = {"total": 120, "by_group": [[f"事件·市容环境类{i}", 10] for i in range(12)],
            "by_district": [[f"青山区{i}", 10] for i in range(12)], "cases": [case] * 20}
    alert = {"id": 1, "case_id": "C", "number": "N20261207000124", "reason": "安全隐患类", "level": "区级",
             "klass": "市政公用设施 · 供水井盖", "district": "青山区", "grid": "990101001001001",
             "raised_at": "2026-12-07 08:20", "escalated_at": "2026-12-07 08:30",
             "acknowledged_at": "2026-12-07 08:40", "acknowledged_by": "city.shift", "cleared_at": ""}
    content = {"version": 1, "shift": {"key": "2026-12-07T08:00", "label": "2026-12-07 08:00—16:00"}, "city": "演示市",
               "written_at": "2026-12-07 16:00", "came_in": part, "closed": part, "urgent_open": part,
               "went_overdue": {"total": 20, "cases": [case] * 20}, "alerts": [alert] * 20, "alerts_acknowledged": 20,
               "hot_spots": [{"grid": "990101001001001", "community": "江东社区", "street": "江东街道",
                              "district": "青山区", "value": 9}] * 10,
               "hot_metric": "新增（本班）",
               "notes": {"text": "交接事项" * 125, "by": "值班长1", "at": "2026-12-07 15:00"}}
    pdf = render_pdf(content, browser=browser)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    assert SHOWN_ROWS < 20  # the lists above are longer than the page shows
