"""The 12345 hotline bridge and the bridge framework (docs/sources.md), on the real feed.

Source records go through the bridge (feeds/bridges/) onto the real case stream, the real
ingest applies them to SQL (SQLite or PostgreSQL), and /explore and the wall's live view show
them. Checked: the worked example of docs/sources.md end to end (including the 工单回复 and
the 回访), hostile and unmappable input dead-lettered with a reason and personal data masked,
``deadletters retry`` mapping a bridge's dead letter again, re-runs changing nothing, the
stream inbox, and a real ``python -m cli bridge hotline`` SIGKILLed mid-file and restarted
losing and duplicating nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import feedkit
from dashboard.rules import classification
from dashboard.settings import Settings
from dashboard.store.models import Case, CaseEvent
from feeds.bridges.bridge import Bridge, letter_record, retry_bridge_letters
from feeds.bridges.hotline import (
    DEFAULT_KEYWORDS,
    DEFAULT_MAPPING,
    HOTLINE,
    HotlineMapper,
    HotlineRules,
    hotline_mapper,
    mask_name,
    mask_phone,
    scrub,
)
from feeds.bridges.inbox import FolderInbox, StreamInbox
from feeds.bridges.replies import ReplyWriter
from feeds.contract import CaseEventMessage
from feeds.deadletters import DeadLetters
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM, HOTLINE_INBOX_STREAM, HOTLINE_REPLY_STREAM, bridge_files_key

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "sources.md"
CASE = "hl12345-GD2026112400386"


def _blocks(lang: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Worked example", 1)[1].split("\n### ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def _bridge(client: Any, settings: Settings) -> Bridge:
    return Bridge(HOTLINE, hotline_mapper(settings), client, settings, scrub=scrub)


def _drain(ingest: Ingest) -> None:
    while ingest.step():
        pass


def _stream(client: Any, settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(f["event"]) for _, f in client.xrange(settings.key(CASE_STREAM))]


def _dead(client: Any, settings: Settings) -> list[Any]:
    return DeadLetters(client, settings).select()


def _write(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    path = folder / name
    os.replace(tmp, path)
    return path


@pytest.fixture
def ingest(settings: Settings, sessions: sessionmaker[Session], redis_client: Any, feed_city: Any) -> Ingest:
    worker = Ingest(settings, sessions, redis_client, feed_city, consumer="t-hotline", block_ms=5)
    worker.ensure_group()
    return worker


# -- the mapping data and the masking ----------------------------------------------------------------
def test_every_shipped_mapping_names_a_class_of_the_default_scheme() -> None:
    scheme = classification.load("gbt47678-2026")
    rules = HotlineRules.load()
    assert rules.table and rules.keywords
    for name, rule in [*rules.table.items(), *rules.keywords]:
        assert scheme.get(rule.kind, rule.class_code) is not None, (name, rule)
    assert DEFAULT_MAPPING.exists() and DEFAULT_KEYWORDS.exists()


def test_personal_data_is_masked() -> None:
    assert mask_name("张三") == "张**" and mask_name("欧阳娜娜") == "欧**"
    assert mask_phone("13812341234") == "138****1234"
    assert "3456789" not in mask_phone("025-83456789")
    kept = scrub({"工单编号": "A1", "诉求人": "李四 13912345678", "联系电话": "13812341234",
                  "诉求内容": "回电13700001111", "诉求地址": "88号"})
    assert kept == {"工单编号": "A1", "诉求人": "李** 139****5678", "联系电话": "138****1234",
                    "诉求内容": "回电137****1111", "诉求地址": "88号"}


# -- the worked example ------------------------------------------------------------------------------
def test_the_worked_example_end_to_end(settings: Settings, sessions: sessionmaker[Session], redis_client: Any,
                                       ingest: Ingest, feed_city: Any, dash_app: Any, tmp_path: Path) -> None:
    from authkit import make_user, signin_client
    from dashboard.figures.liveview import LiveView

    records = [b.strip() for b in _blocks("jsonl")]
    published, closed = (json.loads(b) for b in _blocks("json"))
    inbox_dir = tmp_path / "in"
    _write(inbox_dir, "12345-20261124-073100.jsonl", [records[0]])
    bridge = _bridge(redis_client, settings)
    inbox = FolderInbox(redis_client, settings, HOTLINE, inbox_dir, settle_s=0)
    assert bridge.run_once(inbox) == 1
    # on the stream exactly as the doc shows it (the caller masked)
    assert _stream(redis_client, settings) == [published]
    assert "13812341234" not in json.dumps(_stream(redis_client, settings), ensure_ascii=False)
    assert (inbox_dir / "done" / "12345-20261124-073100.jsonl").exists()
    _drain(ingest)
    with sessions() as s:
        case = s.scalars(select(Case).where(Case.case_id == CASE)).one()
        assert (case.stage, case.source, case.kind, case.class_code) == ("reported", "hotline_12345", "component",
                                                                          "01002")
        assert case.grid is not None and case.grid.code == feedkit.GRID_CODES[0]
        assert case.urgency == "urgent"
        payload = s.scalar(select(CaseEvent.payload).where(CaseEvent.event_id == f"{CASE}-rpt"))
        assert payload["deadline_at"] == "2026-11-25T07:31:00+08:00"  # the 处置 clock's (docs/lifecycle.md)
        # the wall's figures count it among the open cases
        view = LiveView.load(s, feed_city.timing, datetime.now(UTC))
        assert view.kpis().open == 1
    # /explore lists it (the table's CSV export)
    client = signin_client(dash_app.server.test_client(), make_user(sessions, "shift_lead"))
    rows = list(csv.reader(io.StringIO(client.get("/explore/export.csv?window=all").data.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == [CASE]
    assert "12345热线" in ",".join(rows[1]) or "hotline_12345" in ",".join(rows[1])

    # the city's case system handles it; the last event is the doc's 结案
    t = "2026-11-24T{}:00+08:00"
    steps = [("verified", "07:52", {}), ("filed", "08:03", {"number": "2026112400009"}),
             ("dispatched", "08:10", {"unit_code": "U-SZ"}), ("handled", "14:20", {}),
             ("checked_ok", "15:40", {})]
    own = [CaseEventMessage(event_id=f"egov-386-{n}", case_id=CASE, type=kind, occurred_at=t.format(at), **extra)
           for n, (kind, at, extra) in enumerate(steps)]
    feedkit.publish(redis_client, settings, [*own, CaseEventMessage.model_validate(closed)])
    _drain(ingest)
    writer = ReplyWriter(redis_client, settings, sessions, folder=tmp_path / "out")
    assert writer.run_once() == 1
    assert writer.run_once() == 0 and ReplyWriter(redis_client, settings, sessions).run_once() == 0
    replies = redis_client.xrange(settings.key(HOTLINE_REPLY_STREAM))
    assert len(replies) == 1
    sent = json.loads(replies[0][1]["record"])
    shown = json.loads(re.search(r"```json\n(\{\"工单编号\".*?\})\n```", DOC.read_text(encoding="utf-8")).group(1))
    assert sent == {**shown, "承办单位": "单位U-SZ"}  # the doc's unit name is its city's
    assert json.loads((tmp_path / "out" / "reply-GD2026112400386.jsonl").read_text(encoding="utf-8")) == sent

    # the 回访 → rated → 满意度 5 (社会评价)
    _write(inbox_dir, "12345-20261125-100000.jsonl", [records[1]])
    assert bridge.run_once(inbox) == 1
    _drain(ingest)
    with sessions() as s:
        case = s.scalars(select(Case).where(Case.case_id == CASE)).one()
        assert (case.stage, case.satisfaction) == ("closed", 5)
        stored = s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == CASE))
    # running the bridge again on both files changes nothing
    for name in ("12345-20261124-073100.jsonl", "12345-20261125-100000.jsonl"):
        shutil.move(inbox_dir / "done" / name, inbox_dir / name)
    assert bridge.run_once(inbox) == 2
    before = ingest.stats.duplicates
    _drain(ingest)
    assert ingest.stats.duplicates == before + 2
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == CASE)) == stored
    assert writer.run_once() == 0 and len(redis_client.xrange(settings.key(HOTLINE_REPLY_STREAM))) == 1
    assert _dead(redis_client, settings) == []


# -- hostile and unmappable input --------------------------------------------------------------------
GOOD = {"工单编号": "G1", "受理时间": "2026-11-24 09:00:00", "诉求内容": "路边有人摆摊占道经营",
        "诉求地址": "测试路1号", "诉求人": "王五", "联系电话": "13800002222"}
HOSTILE: list[tuple[str, str]] = [
    ("not json at all {", "bad_record"),
    ("[1, 2, 3]", "bad_record"),
    (json.dumps({**GOOD, "工单编号": ""}), "bad_record"),
    (json.dumps({**GOOD, "工单编号": "a b; drop table cases"}), "bad_record"),
    (json.dumps({**GOOD, "工单编号": "G3", "诉求内容": ["x"]}), "bad_record"),
    (json.dumps({**GOOD, "工单编号": "G4", "诉求内容": "a\u0000b"}), "bad_record"),
    (json.dumps({**GOOD, "工单编号": "G5", "受理时间": "昨天下午"}), "bad_time"),
    (json.dumps({**GOOD, "工单编号": "G6", "受理时间": "0001-01-01 00:00"}), "bad_time"),
    (json.dumps({**GOOD, "工单编号": "G7", "诉求地址": ""}), "no_place"),
    (json.dumps({**GOOD, "工单编号": "G8", "诉求分类": "城市管理/其他/宠物扰民"}), "unmapped_class"),
    (json.dumps({**GOOD, "工单编号": "G9", "诉求内容": "咨询公积金政策"}), "unmapped_class"),
    (json.dumps({**GOOD, "工单编号": "G10", "经度": "东经118度", "纬度": "32"}), "bad_record"),
    (json.dumps({**GOOD, "工单编号": "G11", "操作": "删除", "操作时间": "2026-11-25 10:00"}), "bad_record"),
    (json.dumps({**GOOD, "工单编号": "G12", "操作": "回访", "操作时间": "2026-11-25 10:00", "满意度": "还行"}),
     "bad_record"),
    (json.dumps({**GOOD, "工单编号": "G13" * 40}), "bad_record"),
]


def test_hostile_and_unmappable_input_is_dead_lettered_with_a_reason(
        settings: Settings, sessions: sessionmaker[Session], redis_client: Any, ingest: Ingest,
        tmp_path: Path) -> None:
    lines = [json.dumps(GOOD, ensure_ascii=False)] + [line for line, _ in HOSTILE]
    _write(tmp_path, "mixed.jsonl", lines)
    bridge = _bridge(redis_client, settings)
    bridge.run_once(FolderInbox(redis_client, settings, HOTLINE, tmp_path, settle_s=0))
    letters = _dead(redis_client, settings)
    assert [(letter.entry_id, letter.code) for letter in letters] == [
        (f"mixed.jsonl:{n}", code) for n, (_, code) in enumerate(HOSTILE, start=2)]
    for letter in letters:
        assert letter.bridge == HOTLINE and letter.reason and letter.stream == str(tmp_path)
        assert letter.consumer == "bridge:hotline"
        assert "13800002222" not in json.dumps(letter.data, ensure_ascii=False)  # masked when kept
    kept = letter_record(letters[9])
    assert kept is not None and kept["诉求人"] == "王**" and kept["联系电话"] == "138****2222"
    assert "宠物扰民" in letters[9].reason
    counts = DeadLetters(redis_client, settings).counts()
    assert counts["bad_record"] == 10 and counts["unmapped_class"] == 2
    _drain(ingest)
    with sessions() as s:
        assert s.scalars(select(Case.case_id)).all() == ["hl12345-G1"]
    # the same file again: no new dead letter, no new case
    shutil.move(tmp_path / "done" / "mixed.jsonl", tmp_path / "mixed.jsonl")
    bridge.run_once(FolderInbox(redis_client, settings, HOTLINE, tmp_path, settle_s=0))
    assert len(_dead(redis_client, settings)) == len(HOSTILE)
    # the ingest's own retry never re-sends a bridge's record
    result = DeadLetters(redis_client, settings).retry(letters)
    assert not result.requeued and len(result.bridged) == len(HOSTILE)


def test_a_hostile_csv_file(settings: Settings, redis_client: Any, tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_bytes(
        "工单编号,受理时间,诉求内容,诉求地址\nA1,2026-11-24 09:00,垃圾\x00堆积,x路\n"
        "A2,2026-11-24 09:00,\"未闭合引号,y路\nA3,2026-11-24 09:00,垃圾,z路,多余,列\n".encode()
        + b"\xff\xfe,broken utf-8\n")
    _bridge(redis_client, settings).run_once(FolderInbox(redis_client, settings, HOTLINE, tmp_path, settle_s=0))
    assert [(letter.entry_id, letter.code) for letter in _dead(redis_client, settings)] == [
        ("h.csv:2", "bad_record"), ("h.csv:5", "no_place")]  # NUL; the open quote swallows the rest
    assert _stream(redis_client, settings) == [] and (tmp_path / "done" / "h.csv").exists()


def test_retry_maps_an_unmapped_class_again(settings: Settings, sessions: sessionmaker[Session], redis_client: Any,
                                            ingest: Ingest, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import cli

    lines = [json.dumps({**GOOD, "工单编号": "G8", "诉求分类": "城市管理/其他/宠物扰民"}, ensure_ascii=False),
             json.dumps({**GOOD, "工单编号": "G9", "诉求内容": "咨询公积金政策"}, ensure_ascii=False)]
    _write(tmp_path / "in", "a.jsonl", lines)
    _bridge(redis_client, settings).run_once(FolderInbox(redis_client, settings, HOTLINE, tmp_path / "in",
                                                         settle_s=0))
    letters = _dead(redis_client, settings)
    assert [letter.code for letter in letters] == ["unmapped_class", "unmapped_class"]
    # unchanged mapping: still unmappable, kept
    result = retry_bridge_letters(redis_client, settings, letters)
    assert len(result.still) == 2 and not result.published
    # a person maps the category: the CLI maps the dead letter again; G9 stays
    table = tmp_path / "classes.csv"
    table.write_text(DEFAULT_MAPPING.read_text(encoding="utf-8") + "城市管理/其他/宠物扰民,event,06028,\n",
                     encoding="utf-8")
    env = feedkit.ingest_env(settings, GRIDHALL_HOTLINE_MAPPING=str(table))
    # listed for a person to map, the source record kept (masked)
    listed = CliRunner().invoke(cli.app, ["deadletters", "list", "--reason", "unmapped_class", "--format", "json"],
                                env=env)
    assert listed.exit_code == 0 and [row["id"] for row in json.loads(listed.stdout)] == [
        letter.id for letter in reversed(letters)]
    shown = CliRunner().invoke(cli.app, ["deadletters", "show", letters[0].id], env={**env, "COLUMNS": "200"})
    assert shown.exit_code == 0 and "bridge: hotline" in shown.output and "宠物扰民" in shown.output
    assert "王**" in shown.output and "13800002222" not in shown.output
    out = CliRunner().invoke(cli.app, ["deadletters", "retry", "--reason", "unmapped_class"], env=env)
    assert out.exit_code == 0, out.output
    assert "mapped 1 bridge dead letter(s) again: 1 event(s) published" in out.output
    assert "still unmappable" in out.output
    assert [letter.entry_id for letter in _dead(redis_client, settings)] == ["a.jsonl:2"]
    _drain(ingest)
    with sessions() as s:
        case = s.scalars(select(Case).where(Case.case_id == "hl12345-G8")).one()
        assert (case.kind, case.class_code, case.source) == ("event", "06028", "hotline_12345")


# -- later operations, the stream inbox --------------------------------------------------------------
def test_the_stream_inbox_and_the_later_operations(settings: Settings, sessions: sessionmaker[Session],
                                                   redis_client: Any, ingest: Ingest) -> None:
    key = settings.key(HOTLINE_INBOX_STREAM)
    records = [
        {**GOOD, "工单编号": "S1", "诉求分类": "占道经营"},
        {"工单编号": "S1", "操作": "补充", "操作时间": "2026-11-24 10:00", "诉求内容": "摊位还在，另有油烟",
         "办理时限": "3天"},
        {"工单编号": "S1", "操作": "催办", "操作编号": "CB-1", "操作时间": "2026-11-24 11:00"},
        {"工单编号": "S1", "操作": "撤单", "操作时间": "2026-11-24 12:00"},
    ]
    for record in records:
        redis_client.xadd(key, {"record": json.dumps(record, ensure_ascii=False)})
    redis_client.xadd(key, {"record": "{broken"})
    # a bridge that read the entries but died before publishing: nothing is acked
    first = StreamInbox(redis_client, settings, HOTLINE, key, block_ms=10)
    assert len(list(first.records())) == 5
    inbox = StreamInbox(redis_client, settings, HOTLINE, key, block_ms=10)
    bridge = _bridge(redis_client, settings)
    assert bridge.run_once(inbox) == 5 and bridge.run_once(inbox) == 0
    assert redis_client.xpending(key, inbox.group)["pending"] == 0
    ids = [e["event_id"] for e in _stream(redis_client, settings)]
    assert ids == ["hl12345-S1-rpt", "hl12345-S1-supp-20261124100000", "hl12345-S1-urge-CB-1",
                   "hl12345-S1-void-20261124120000"]
    assert [letter.code for letter in _dead(redis_client, settings)] == ["bad_record"]
    _drain(ingest)
    with sessions() as s:
        case = s.scalars(select(Case).where(Case.case_id == "hl12345-S1")).one()
        assert case.stage == "voided" and case.description == "摊位还在，另有油烟"
        actors = s.scalars(select(CaseEvent.actor).where(CaseEvent.case_id == "hl12345-S1")
                           .order_by(CaseEvent.occurred_at)).all()
        assert actors == ["12345", "12345:补充", "12345:催办", "12345:撤单"]


def test_a_csv_file_and_the_geocoder(settings: Settings, sessions: sessionmaker[Session], redis_client: Any,
                                     ingest: Ingest, tmp_path: Path) -> None:
    class Found:
        lon, lat, grid_code, score = *feedkit.GRID_POINTS[feedkit.GRID_CODES[2]], None, 0.9

    class Geo:
        def geocode(self, text: str) -> Any:
            return Found() if "定位路" in text else None

    (tmp_path / "x.csv").write_text(
        "\ufeff工单编号,受理时间,诉求内容,诉求地址,诉求分类\n"
        "C1,2026-11-24 09:00,井盖松动,定位路1号,\n"
        "C2,2026-11-24 09:05,垃圾堆积,不知道路2号,城市管理/市容环境/暴露垃圾\n", encoding="utf-8")
    bridge = Bridge(HOTLINE, HotlineMapper(HotlineRules.load(), settings.tz, Geo()), redis_client, settings)
    bridge.run_once(FolderInbox(redis_client, settings, HOTLINE, tmp_path, settle_s=0))
    _drain(ingest)
    with sessions() as s:
        got = {c.case_id: (c.class_code, c.grid.code if c.grid else None) for c in s.scalars(select(Case))}
    assert got == {"hl12345-C1": ("01002", feedkit.GRID_CODES[2]), "hl12345-C2": ("06010", None)}  # C2: 未定位


def test_a_file_still_being_written_is_not_read(settings: Settings, redis_client: Any, tmp_path: Path) -> None:
    (tmp_path / "a.jsonl.tmp").write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps(GOOD) + "\n", encoding="utf-8")  # just now
    inbox = FolderInbox(redis_client, settings, HOTLINE, tmp_path, settle_s=30)
    assert list(inbox.records()) == []


# -- a real bridge process, SIGKILLed mid-file ---------------------------------------------------------
def _record(n: int) -> dict[str, Any]:
    if n % 50 == 7:
        return {**GOOD, "工单编号": f"K{n}", "诉求分类": "没有这一类"}  # unmapped_class
    x, y = feedkit.GRID_POINTS[feedkit.GRID_CODES[n % 6]]
    return {**GOOD, "工单编号": f"K{n}", "经度": str(x), "纬度": str(y)}


def test_a_bridge_killed_mid_file_loses_and_duplicates_nothing(settings: Settings, sessions: sessionmaker[Session],
                                                                redis_client: Any, ingest: Ingest,
                                                                tmp_path: Path) -> None:
    total = 3000
    inbox_dir = tmp_path / "in"
    _write(inbox_dir, "big.jsonl", [json.dumps(_record(n), ensure_ascii=False) for n in range(total)])
    os.utime(inbox_dir / "big.jsonl", (time.time() - 60, time.time() - 60))
    env = feedkit.ingest_env(settings)
    cmd = [sys.executable, "-m", "cli", "bridge", "hotline", "--dir", str(inbox_dir), "--no-replies", "--settle", "0"]
    log = tmp_path / "bridge.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    progress = settings.key(bridge_files_key(HOTLINE))
    try:
        assert feedkit.wait_until(lambda: int(redis_client.hget(progress, "big.jsonl") or 0) >= 200, 60), \
            log.read_text(errors="replace")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    done_at_kill = int(redis_client.hget(progress, "big.jsonl") or 0)
    assert 0 < done_at_kill < total, "the kill must land mid-file"
    assert (inbox_dir / "big.jsonl").exists()
    # restart: the rest, once
    again = subprocess.run([*cmd, "--once"], cwd=REPO, env=env, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stdout.decode(errors="replace") + again.stderr.decode(errors="replace")
    assert (inbox_dir / "done" / "big.jsonl").exists() and redis_client.hget(progress, "big.jsonl") is None
    unmapped = sum(1 for n in range(total) if n % 50 == 7)
    ids = [e["event_id"] for e in _stream(redis_client, settings)]
    assert len(ids) == len(set(ids)) == total - unmapped  # nothing lost, nothing published twice
    origins = [letter.entry_id for letter in _dead(redis_client, settings)]
    assert origins == [f"big.jsonl:{n + 1}" for n in range(total) if n % 50 == 7]
    _drain(ingest)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == total - unmapped
        assert s.scalar(select(func.count()).select_from(Case).where(Case.grid_id.is_(None))) == 0


def test_the_bridge_command_needs_a_folder_that_exists(settings: Settings, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "cli", "bridge", "hotline", "--dir", str(tmp_path / "nope"),
                          "--once", "--no-replies"], cwd=REPO, env=feedkit.ingest_env(settings),
                         capture_output=True, timeout=60)
    assert out.returncode == 2 and b"--dir" in out.stderr



def test_the_city_geocoder_is_used_when_the_project_has_one(settings: Settings, sessions: sessionmaker[Session],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from feeds.bridges import hotline

    class Point:
        lon, lat, grid_code, score = 118.7005, 31.9995, "990201001001001", 1.0

    class Geocoder:
        loaded_with: Any = None

        @classmethod
        def load(cls, session: Session) -> Geocoder:
            cls.loaded_with = session
            return cls()

        def geocode(self, text: str) -> Point | None:
            return Point() if text.startswith("测试") else None

    assert hotline.load_geocoder(settings) is None  # none on this branch: addresses go without a point
    monkeypatch.setitem(sys.modules, hotline.GEOCODER_MODULE, types.SimpleNamespace(Geocoder=Geocoder))
    [event] = hotline_mapper(settings)({**GOOD, "诉求地址": "测试路1号"})
    assert (event.lon, event.lat, event.grid_code) == (118.7005, 31.9995, "990201001001001")
    assert Geocoder.loaded_with is not None
    [event] = hotline_mapper(settings)({**GOOD, "诉求地址": "别处"})
    assert (event.lon, event.grid_code, event.address) == (None, None, "别处")
