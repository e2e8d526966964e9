"""The pure rules of hall screens and banners (dashboard/rules/screenspec.py): layouts, tiles,
playlists, banner text and expiry, with their one-line zh-CN / English errors."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dashboard.figures.heat import GRID_METRICS, labels
from dashboard.rules.screenspec import (
    DWELL_MAX_S,
    DWELL_MIN_S,
    PLAYLIST_MAX,
    BannerLevel,
    PlaylistEntry,
    ScreenLayout,
    ScreenSetting,
    SpecError,
    Tile,
    check_banner_text,
    check_name,
    check_title,
    parse_entry,
    parse_layout,
    parse_metric,
    parse_playlist,
    parse_region,
    parse_tile,
    parse_ttl,
    playlist_from_json,
    playlist_text,
    playlist_to_json,
)
from dashboard.rules.vocab import GridMetric


def test_the_metrics_are_the_heatmaps() -> None:
    """One definition: a screen's metrics and labels are the heatmap's."""
    assert tuple(m.value for m in GridMetric) == GRID_METRICS
    assert {m.value: m.label for m in GridMetric} == {k: v[0] for k, v in labels().items()}


def test_layouts_have_chinese_labels() -> None:
    assert [m.value for m in ScreenLayout] == ["wall", "map", "queue", "board", "evaluation", "districts",
                                               "kpis", "mosaic"]
    assert ScreenLayout.DISTRICTS.label == "各区对比"
    assert parse_layout(" Map ") is ScreenLayout.MAP
    with pytest.raises(SpecError, match="未知的版式 .* / unknown layout 'tv'; one of wall"):
        parse_layout("tv")
    with pytest.raises(SpecError, match="unknown metric"):
        parse_metric("closed")


def test_a_playlist_reads_its_documented_syntax_and_writes_it_back() -> None:
    text = "map@320102:30, map@320104/overdue:30,wall:60,districts@city/new_hour:15"
    entries = parse_playlist(text)
    assert entries == (
        PlaylistEntry(ScreenLayout.MAP, "320102", GridMetric.OPEN, 30),
        PlaylistEntry(ScreenLayout.MAP, "320104", GridMetric.OVERDUE, 30),
        PlaylistEntry(ScreenLayout.WALL, None, GridMetric.OPEN, 60),
        PlaylistEntry(ScreenLayout.DISTRICTS, None, GridMetric.NEW_HOUR, 15),
    )
    assert playlist_text(entries) == "map@320102:30,map@320104/overdue:30,wall:60,districts/new_hour:15"
    assert parse_playlist(playlist_text(entries)) == entries
    assert playlist_from_json(json.loads(json.dumps(playlist_to_json(entries)))) == entries
    assert parse_playlist("") == () and parse_playlist(" , ") == ()


@pytest.mark.parametrize(("text", "message"), [
    ("map@320102", "write LAYOUT"),
    ("map:4", f"停留时间须为 {DWELL_MIN_S}–{DWELL_MAX_S} 秒"),
    (f"map:{DWELL_MAX_S + 1}", "dwell must be"),
    ("mosaic:30,wall:30", "a playlist entry cannot be a mosaic tile"),
    ("map@3201:30,wall:30", "region '3201': a district"),
    ("map/closed:30,wall:30", "unknown metric 'closed'"),
    ("tv:30,wall:30", "unknown layout 'tv'"),
    ("map:30", "a playlist needs 2 entries or more"),
    (",".join(["map:30"] * (PLAYLIST_MAX + 1)), f"at most {PLAYLIST_MAX} entries"),
])
def test_a_bad_playlist_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        parse_playlist(text)
    assert "\n" not in str(info.value) and " / " in str(info.value)


def test_a_json_playlist_is_checked_like_the_text_one() -> None:
    ok = [{"layout": "map", "region": "320102", "dwell_s": 30}, {"layout": "kpis", "metric": "overdue", "dwell_s": 5}]
    assert playlist_from_json(ok)[1] == PlaylistEntry(ScreenLayout.KPIS, None, GridMetric.OVERDUE, 5)
    for bad, message in [({"layout": "map"}, "a JSON list"),
                         ([{"layout": "map"}, {"layout": "map", "dwell_s": 5}], "entry 1: an object"),
                         ([{"layout": "map", "dwell_s": "30"}, ok[0]], "dwell must be"),
                         ([{"layout": "map", "dwell_s": True}, ok[0]], "dwell must be"),
                         ([{"layout": "map", "dwell_s": 30, "colour": "red"}, ok[0]], "entry 1: an object"),
                         ([{"layout": "map", "region": 320102, "dwell_s": 30}, ok[0]], "region must be")]:
        with pytest.raises(SpecError, match=message):
            playlist_from_json(bad)


def test_a_mosaic_screen_knows_its_tile_and_only_a_mosaic_has_one() -> None:
    tile = parse_tile("3x2:2,1")
    assert tile == Tile(cols=3, rows=2, col=2, row=1) and tile.text() == "3x2:2,1"
    assert parse_tile(" 2 × 1 : 2 , 1 ") == Tile(2, 1, 2, 1)
    for bad, message in [("3x2:4,1", "tile 4,1 lies outside 3x2"), ("1x1:1,1", "at least 2 screens"),
                         ("9x1:1,1", "1–8 columns"), ("3x2", "write COLSxROWS:COL,ROW")]:
        with pytest.raises(SpecError, match=message):
            parse_tile(bad)
    ScreenSetting(layout=ScreenLayout.MOSAIC, tile=tile)
    with pytest.raises(SpecError, match="a mosaic screen needs its tile"):
        ScreenSetting(layout=ScreenLayout.MOSAIC)
    with pytest.raises(SpecError, match="only a mosaic screen has a tile"):
        ScreenSetting(layout=ScreenLayout.MAP, tile=tile)
    with pytest.raises(SpecError, match="a mosaic tile cannot run a playlist"):
        ScreenSetting(layout=ScreenLayout.MOSAIC, tile=tile, playlist=parse_playlist("map:30,wall:30"))


def test_regions_names_and_titles() -> None:
    assert parse_region(None) is None and parse_region("city") is None and parse_region(" 全市 ") is None
    assert parse_region("320106") == "320106" and parse_region("320106001") == "320106001"
    with pytest.raises(SpecError, match="district .6 digits. or street .9."):
        parse_region("320106001001")  # a community: too small for a screen
    setting = ScreenSetting(region="320106", playlist=parse_playlist("map@320102:30,wall:30"))
    assert setting.regions() == {"320106", "320102", None}
    assert check_name(" 鼓楼-1 ") == "鼓楼-1"
    for bad in ("", "a b", "a,b", "a@b", "a/b", "a:b", "x" * 65, "a\x00b"):
        with pytest.raises(SpecError, match="screen name"):
            check_name(bad)
    assert check_title("  鼓楼区  1号屏 ") == "鼓楼区 1号屏"
    with pytest.raises(SpecError, match="title"):
        check_title(" ")


def test_banner_text_level_and_expiry() -> None:
    assert check_banner_text(" 暴雨红色预警，\n各单位注意积水点 ") == "暴雨红色预警， 各单位注意积水点"
    check_banner_text("警" * 200)
    with pytest.raises(SpecError, match="at most 200 characters, this one 201"):
        check_banner_text("警" * 201)
    with pytest.raises(SpecError, match="needs text"):
        check_banner_text("   ")
    with pytest.raises(SpecError, match="control characters"):
        check_banner_text("a\u202eb")
    assert [m.label for m in BannerLevel] == ["通知", "预警"]
    assert parse_ttl("90m") == timedelta(minutes=90) and parse_ttl("2h") == timedelta(hours=2)
    assert parse_ttl("7d") == timedelta(days=7) and parse_ttl("60s") == timedelta(minutes=1)
    for bad, message in [("59s", "1 minute to 7 days"), ("8d", "1 minute to 7 days"), ("2 hours", "e.g. 2h")]:
        with pytest.raises(SpecError, match=message):
            parse_ttl(bad)


def test_an_entry_alone() -> None:
    assert parse_entry("QUEUE@320106001:3600") == PlaylistEntry(ScreenLayout.QUEUE, "320106001", GridMetric.OPEN,
                                                               3600)
