"""``gridhall screens`` and ``gridhall banners`` (cli/screens.py, cli/banners.py) on the real
database and Redis: what they change, what they print, their one-line errors, the record under
the operator's name and the control notice each change sends."""

from __future__ import annotations

import json
import queue
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import cli
from citykit import Plan, build_plan
from dashboard.settings import Settings
from dashboard.store import hallscreens as hs
from dashboard.store.db import transaction
from dashboard.store.hallcontrol import changes
from dashboard.store.models import Banner
from dashboard.store.users import create_user, verify_token
from feeds.control import ControlFollower, ControlNotice

PLAN: Plan = {
    ("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 1}},
    ("990102", "白石区"): {("990102001", "白石街道"): {("990102001001", "白石社区"): 1}},
}


@pytest.fixture
def cli_city(sessions: sessionmaker[Session], fresh_scope_cache: None) -> sessionmaker[Session]:
    with transaction(sessions) as s:
        build_plan(s, PLAN)
        create_user(s, "qs.shift", "shift_lead", scope="990101")
        create_user(s, "li", "leader")
    return sessions


@pytest.fixture
def screens_cli(settings: Settings, engine: Any):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"GRIDHALL_DATABASE_URL": settings.effective_database_url, "GRIDHALL_DATA_DIR": str(settings.data_dir),
           "COLUMNS": "200", "GRIDHALL_REDIS_PREFIX": settings.redis_prefix, "GRIDHALL_REDIS_URL": settings.redis_url}

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]  # noqa: A002
        return runner.invoke(cli.app, list(args), input=input, env=env)

    return invoke


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def _error(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code != 0, (result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def test_add_binds_a_new_display_user_and_prints_its_token(screens_cli, cli_city: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    result = _ok(screens_cli("screens", "add", "青山-1", "--region", "990101", "--layout", "wall", "--user", "wall-qs",
                     "--title", "青山区指挥大厅 1号屏", "--token"))
    assert "added display user wall-qs" in result.stdout and "bound to wall-qs" in result.stdout
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("gh_") and "shown only now" in result.stderr
    with cli_city() as s:
        checked = verify_token(s, token, now=datetime.now(UTC))
        assert checked is not None and checked.user.username == "wall-qs" and checked.user.role == "display"
        screen = hs.require_screen(s, "青山-1")
        assert screen.display_user_id == checked.user_id and screen.title == "青山区指挥大厅 1号屏"
        assert screen.created_by == "cli" and screen.region is not None and screen.region.code == "990101"
    # an existing display user is bound, not made again
    _ok(screens_cli("users", "add", "wall-bs", "--role", "display"))
    result = _ok(screens_cli("screens", "add", "白石-1", "--region", "990102", "--user", "wall-bs"))
    assert "added display user" not in result.stdout
    assert "is not a display user" in _error(screens_cli("screens", "add", "x", "--user", "li"))
    assert "--token needs --user" in _error(screens_cli("screens", "add", "x", "--token"))


def test_set_list_and_remove(screens_cli, cli_city: sessionmaker[Session], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _ok(screens_cli("screens", "add", "青山-1", "--region", "990101"))
    _ok(screens_cli("screens", "add", "墙-左", "--layout", "mosaic", "--tile", "2x1:1,1"))
    result = _ok(screens_cli("screens", "set", "青山-1", "--layout", "map", "--metric", "overdue", "--sound",
                     "--playlist", "map@990101001:30, map@990101/new_hour:45"))
    said = " ".join(result.stdout.split())  # as one line: a narrow console may wrap it
    assert "playlist map@990101001:30,map@990101/new_hour:45" in said and "sound on" in said
    listed = json.loads(_ok(screens_cli("screens", "list", "--format", "json")).stdout)
    assert [r["name"] for r in listed] == ["墙-左", "青山-1"]
    row = listed[1]
    assert (row["region"], row["layout"], row["metric"], row["sound"]) == ("990101", "map", "overdue", True)
    assert row["playlist"] == "map@990101001:30,map@990101/new_hour:45" and row["updated_by"] == "cli"
    assert listed[0]["tile"] == "2x1:1,1" and listed[0]["region"] is None
    tsv = _ok(screens_cli("screens", "list")).stdout.splitlines()  # piped: TSV
    assert tsv[0].split("\t")[:4] == ["name", "title", "region", "layout"] and len(tsv) == 3
    table = _ok(screens_cli("screens", "list", "--format", "table")).stdout
    assert "网格热力图" in table and "青山区 990101" in table and "全市" in table

    playlist = tmp_path / "rota.json"
    playlist.write_text(json.dumps([{"layout": "districts", "dwell_s": 60},
                                    {"layout": "map", "region": "990102", "metric": "overdue", "dwell_s": 30}]))
    result = _ok(screens_cli("screens", "set", "青山-1", "--region", "city", "--playlist-file", str(playlist)))
    assert "region city" in result.stdout and "districts:60,map@990102/overdue:30" in result.stdout
    _ok(screens_cli("screens", "set", "青山-1", "--playlist", ""))
    with cli_city() as s:
        assert hs.require_screen(s, "青山-1").playlist == []
        assert [c.action for c in changes(s, obj="青山-1")] == ["set", "set", "set", "add"]
    log = json.loads(_ok(screens_cli("screens", "log", "青山-1", "--format", "json")).stdout)
    assert log[-1]["action"] == "add" and log[0]["new"] == {"playlist": []} and log[0]["actor"] == "cli"
    _ok(screens_cli("screens", "remove", "墙-左"))
    assert "no screen named '墙-左'" in _error(screens_cli("screens", "remove", "墙-左"))
    assert [r["name"] for r in json.loads(_ok(screens_cli("screens", "list", "--format", "json")).stdout)] == ["青山-1"]


def test_errors_are_one_line(screens_cli, cli_city: sessionmaker[Session], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _ok(screens_cli("screens", "add", "青山-1", "--region", "990101"))
    for args, message in [
        (("screens", "add", "x", "--layout", "mosaic"), "a mosaic screen needs its tile"),
        (("screens", "add", "x", "--region", "990199"), "no region with code '990199'"),
        (("screens", "add", "x y"), "screen name 'x y'"),
        (("screens", "add", "青山-1"), "exists already"),
        (("screens", "set", "青山-1", "--playlist", "map:2,wall:30"), "dwell must be 5–3600 seconds"),
        (("screens", "set", "青山-1", "--playlist", "map:30"), "needs 2 entries"),
        (("screens", "set", "青山-1", "--playlist-file", str(tmp_path / "none.json")), "--playlist-file"),
        (("screens", "set", "青山-1", "--layout", "tv"), "unknown layout 'tv'"),
        (("screens", "set", "无此屏", "--layout", "map"), "no screen named"),
        (("screens", "set", "青山-1", "--as", "ghost"), "--as: no user 'ghost'"),
        (("banners", "post", "x", "--expires", "9d"), "1 minute to 7 days"),
        (("banners", "post", "x", "--level", "red"), "unknown banner level 'red'"),
        (("banners", "clear", "99"), "no banner 99"),
    ]:
        assert message in _error(screens_cli(*args)), args


def test_acting_as_a_user_applies_their_rules_and_records_their_name(  # type: ignore[no-untyped-def]
        screens_cli, cli_city: sessionmaker[Session]) -> None:
    _ok(screens_cli("screens", "add", "青山-1", "--region", "990101"))
    _ok(screens_cli("screens", "add", "白石-1", "--region", "990102"))
    _ok(screens_cli("screens", "set", "青山-1", "--layout", "queue", "--as", "qs.shift"))
    denied = _error(screens_cli("screens", "set", "白石-1", "--layout", "queue", "--as", "qs.shift"))
    assert "值班长只能操作其辖区内的屏幕" in denied
    assert "only admins" in _error(screens_cli("screens", "add", "青山-2", "--as", "qs.shift"))
    assert "此角色不能操作屏幕" in _error(screens_cli("screens", "set", "青山-1", "--layout", "map", "--as", "li"))
    listed = json.loads(_ok(screens_cli("screens", "list", "--format", "json", "--as", "qs.shift")).stdout)
    assert [r["name"] for r in listed] == ["青山-1"] and listed[0]["updated_by"] == "qs.shift"
    posted = _ok(screens_cli("banners", "post", "青山区暴雨预警", "--level", "warning", "--as", "qs.shift"))
    assert "posted banner" in posted.stdout and "预警" in posted.stdout
    assert "may not post" in _error(screens_cli("banners", "post", "x", "--screen", "白石-1", "--as", "qs.shift"))
    with cli_city() as s:
        banner = s.scalars(select(Banner)).one()
        assert banner.posted_by == "qs.shift" and banner.region is not None and banner.region.code == "990101"


def test_banners_post_list_clear(screens_cli, cli_city: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    _ok(screens_cli("screens", "add", "青山-1", "--region", "990101"))
    _ok(screens_cli("screens", "add", "白石-1", "--region", "990102"))
    _ok(screens_cli("banners", "post", "暴雨红色预警，各单位注意积水点", "--level", "warning", "--expires", "90m"))
    _ok(screens_cli("banners", "post", "两块屏", "--screen", "青山-1", "--screen", "白石-1"))
    listed = json.loads(_ok(screens_cli("banners", "list", "--format", "json")).stdout)
    assert [(r["text"], r["target"], r["state"]) for r in listed] == [
        ("两块屏", "青山-1,白石-1", "active"), ("暴雨红色预警，各单位注意积水点", "全市", "active")]
    first = listed[1]["id"]
    assert "预警" in _ok(screens_cli("banners", "list", "--format", "table")).stdout
    _ok(screens_cli("banners", "clear", str(first)))
    assert [r["text"] for r in json.loads(_ok(screens_cli("banners", "list", "--format", "json")).stdout)] == ["两块屏"]
    every = json.loads(_ok(screens_cli("banners", "list", "--all", "--format", "json")).stdout)
    assert {r["state"] for r in every} == {"active", "cleared"}
    log = json.loads(_ok(screens_cli("screens", "log", "--banners", "--format", "json")).stdout)
    assert [(r["object"], r["action"]) for r in log][:1] == [(str(first), "clear")]
    with cli_city() as s:
        view = hs.screen_view(s, name="青山-1")
        assert view is not None and [b.text for b in view.banners] == ["两块屏"]


def test_a_change_by_the_command_line_reaches_a_follower(screens_cli, settings: Settings, redis_client: redis.Redis,  # type: ignore[no-untyped-def]
                                                         cli_city: sessionmaker[Session]) -> None:
    _ok(screens_cli("screens", "add", "青山-1", "--region", "990101"))
    got: queue.Queue[ControlNotice] = queue.Queue()
    follower = ControlFollower(settings, redis_client, got.put)
    follower.start()
    try:
        _ok(screens_cli("screens", "set", "青山-1", "--layout", "board"))
        notice = got.get(timeout=2)
        assert (notice.kind, notice.ref) == ("screen", "青山-1")
        _ok(screens_cli("banners", "post", "通知"))
        assert got.get(timeout=2).kind == "banner"
    finally:
        follower.stop()
