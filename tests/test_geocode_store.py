"""The gazetteer in the store and on the command line.

Import (CSV, GeoJSON, bad rows), ``Geocoder.load``, ``gridhall import gazetteer`` and ``gridhall geocode``.

Runs on SQLite and on PostgreSQL (GRIDHALL_DATABASE_URL), like the rest of the suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import cli
from citykit import COMMUNITY, LAT0, LON0, STEP, build_community, two_by_two
from dashboard.geocode.matcher import Geocoder
from dashboard.settings import Settings
from dashboard.store.gazetteer import GazetteerError, import_gazetteer
from dashboard.store.models import GazetteerEntry

# The centre of each grid of two_by_two(): 001 002 / 003 004.
CENTRE = {n: (LON0 + (col + 0.5) * STEP, LAT0 - (row + 0.5) * STEP)
          for n, (row, col) in {1: (0, 0), 2: (0, 1), 3: (1, 0), 4: (1, 1)}.items()}
HEADER = "kind,address,name,district,street,community,lon,lat\n"


def grid(n: int) -> str:
    return f"{COMMUNITY}{n:03d}"


def csv_text() -> str:
    rows = [("门牌", "青山区中山路1号", "", 1), ("门牌", "青山区中山路2号", "", 2), ("门牌", "青山区华山路1号", "", 3),
            ("POI", "青山区中山路2号", "翠竹小区", 2), ("POI", "", "江东公园", 4)]
    return HEADER + "".join(f"{k},{a},{n},,,,{CENTRE[g][0]:.6f},{CENTRE[g][1]:.6f}\n" for k, a, n, g in rows)


@pytest.fixture
def city(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    build_community(sessions, two_by_two())
    return sessions


def count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(GazetteerEntry)) or 0


def test_csv_import_resolves_grids_fills_regions_and_replaces(city: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "gazetteer.csv"
    path.write_text(csv_text(), encoding="utf-8-sig")  # Excel's BOM is fine
    summary = import_gazetteer(path, city)
    assert (summary.houses, summary.pois, summary.replaced, summary.outside) == (3, 2, 0, [])
    assert "3 门牌 and 2 POI" in str(summary)
    with city() as s:
        rows = {r.address: r for r in s.scalars(select(GazetteerEntry))}
    assert rows["青山区中山路1号"].grid_code == grid(1) and rows["青山区华山路1号"].grid_code == grid(3)
    park = rows["江东公园"]  # a POI without an address is known by its name
    assert (park.kind, park.grid_code, park.district, park.street, park.community) == (
        "poi", grid(4), "青山区", "江东街道", "江东社区")
    again = import_gazetteer(path, city)  # idempotent: the set is replaced, not added to
    assert again.replaced == 5 and count(city) == 5


def test_geojson_import_and_the_loaded_geocoder(city: sessionmaker[Session], tmp_path: Path) -> None:
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": list(CENTRE[n])},
                 "properties": {"kind": kind, "address": address, "name": name}}
                for n, kind, address, name in ((1, "门牌", "青山区中山路1号", None),
                                               (2, "门牌", "青山区中山路2号", None),
                                               (4, "POI", "青山区华山路9号", "江东公园"))]
    path = tmp_path / "gazetteer.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), "utf-8")
    assert import_gazetteer(path, city).houses == 2
    with city() as s:
        geocoder = Geocoder.load(s)
    got = geocoder.geocode("青山区中山路２号")
    assert got is not None and (got.grid_code, got.method, got.matched) == (grid(2), "exact", "青山区中山路2号")
    assert abs(got.lon - CENTRE[2][0]) < 1e-6 and abs(got.lat - CENTRE[2][1]) < 1e-6
    park = geocoder.geocode("江东公园门口")  # 江东社区 is a division: its name is not what matched
    assert park is not None and park.grid_code == grid(4)
    assert geocoder.geocode("中山路3号") is None


def test_bad_rows_are_listed_by_line_and_nothing_is_written(city: sessionmaker[Session], tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(csv_text(), encoding="utf-8")
    import_gazetteer(good, city)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "门牌,中山路1号,,,,,118.7805,32.0395\n"
                   "公交站,中山路2号,,,,,118.7805,32.0395\n"
                   "门牌,中山路3号,,,,,东经,32.0395\n"
                   "门牌,中山路4号,,,,,32.0395,118.7805\n"
                   "POI,,,,,,118.7805,32.0395\n"
                   "门牌,中山路5号,,,\n", encoding="utf-8")
    with pytest.raises(GazetteerError) as caught:
        import_gazetteer(bad, city)
    problems = caught.value.problems
    assert [p.split(":")[1] for p in problems] == ["3", "4", "5", "6", "7"], problems
    assert "kind '公交站'" in problems[0] and "应为数字" in problems[1] and "超出范围" in problems[2]
    assert "缺少 name" in problems[3] and "应有 8 个字段" in problems[4]
    assert count(city) == 5  # the stored set is untouched


@pytest.mark.parametrize(("name", "content", "message"), [
    ("no-header.csv", "kind,address\n门牌,中山路1号\n", "缺少列 lon, lat"),
    ("empty.csv", "", "文件为空"),
    ("broken.geojson", "{", "JSON格式错误"),
    ("list.geojson", "[]", "FeatureCollection"),
    ("polygon.geojson", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"kind": "门牌", "address": "x"},
         "geometry": {"type": "Polygon", "coordinates": []}}]}), "#feature 0: geometry 应为 Point"),
    ("gazetteer.txt", "x", "应为 .csv 或 .geojson"),
])
def test_unusable_files_are_one_problem_each(city: sessionmaker[Session], tmp_path: Path, name: str, content: str,
                                             message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(GazetteerError) as caught:
        import_gazetteer(path, city)
    assert any(message in p for p in caught.value.problems), caught.value.problems


def test_points_outside_every_grid_are_skipped_and_named(city: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text(csv_text() + "门牌,远处路1号,,,,,120.0,30.0\n", encoding="utf-8")
    summary = import_gazetteer(path, city)
    assert summary.outside == ["g.csv:7"] and "1 outside every grid skipped" in str(summary)


def test_no_grids_yet_is_one_clear_problem(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text(csv_text(), encoding="utf-8")
    with pytest.raises(GazetteerError, match="gridhall import city"):
        import_gazetteer(path, sessions)


# -- the command line ------------------------------------------------------------------------
def _env(settings: Settings) -> dict[str, str]:
    return {"GRIDHALL_DATA_DIR": str(settings.data_dir), "GRIDHALL_DATABASE_URL": settings.effective_database_url}


def test_cli_import_and_geocode_piped_tsv_json_and_table(settings: Settings, city: sessionmaker[Session],
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gazetteer.csv"
    path.write_text(csv_text(), encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(cli.app, ["import", "gazetteer", str(path)], env=_env(settings), catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "3 门牌 and 2 POI imported" in done.stdout

    # Piped (CliRunner's output is no terminal): TSV with the column keys, one row per address.
    placed = runner.invoke(cli.app, ["geocode", "中山路１号", "翠竹小区门口"], env=_env(settings),
                           catch_exceptions=False)
    assert placed.exit_code == 0, placed.output
    lines = placed.stdout.splitlines()
    assert lines[0].split("\t") == ["address", "grid_code", "score", "method", "matched", "lon", "lat"]
    assert lines[1].split("\t")[:4] == ["中山路１号", grid(1), "100.0", "exact"]
    assert lines[2].split("\t")[1] == grid(2)

    # 未定位 is listed, never guessed, and the exit code says so (the note on standard error).
    mixed = runner.invoke(cli.app, ["geocode", "--format", "json", "中山路2号", "中山路99号"], env=_env(settings))
    assert mixed.exit_code == 1
    data = json.loads(mixed.stdout)
    assert data[0]["grid_code"] == grid(2) and data[1]["grid_code"] is None and data[1]["method"] == "未定位"
    assert "1 of 2 未定位" in mixed.stderr

    # On a terminal: a readable table with the Chinese headings.
    import dashboard.output.tabular as tabular

    monkeypatch.setattr(tabular, "_isatty", lambda stream: True)
    monkeypatch.setattr(cli.console, "width", 120)
    table = runner.invoke(cli.app, ["geocode", "华山路1号"], env=_env(settings), catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "地理编码" in table.stdout and "单元网格" in table.stdout and grid(3) in table.stdout
    assert "\t" not in table.stdout


def test_cli_bad_file_is_listed_without_a_traceback(settings: Settings, city: sessionmaker[Session],
                                                    tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "门牌,中山路1号,,,,,x,y\n", encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["import", "gazetteer", str(path)], env=_env(settings))
    assert result.exit_code == 1
    assert "bad.csv:2: 经纬度" in result.stderr and "nothing was imported" in result.stderr
    assert "Traceback" not in result.output


def test_cli_geocode_on_an_empty_gazetteer_says_what_to_do(settings: Settings, city: sessionmaker[Session]) -> None:
    result = CliRunner().invoke(cli.app, ["geocode", "中山路1号"], env=_env(settings))
    assert result.exit_code == 1 and "gridhall import gazetteer" in result.stderr


def test_the_current_geocoder_follows_a_re_import(city: sessionmaker[Session], tmp_path: Path) -> None:
    """The process's geocoder (dashboard/geocode/current.py, what /open311 places addresses with)
    is built once, kept while the gazetteer is unchanged and rebuilt after a re-import."""
    from dashboard.geocode.current import CurrentGeocoder

    path = tmp_path / "g.csv"
    path.write_text(csv_text(), encoding="utf-8")
    import_gazetteer(path, city)
    current = CurrentGeocoder(check_s=0)
    with city() as s:
        first = current.get(s)
        assert current.get(s) is first  # unchanged: the same matcher
        found = first.geocode("中山路1号")
        assert found is not None and found.grid_code == grid(1)
        assert first.geocode("黄河路8号") is None
    lon, lat = CENTRE[4]
    path.write_text(csv_text() + f"门牌,青山区黄河路8号,,,,,{lon:.6f},{lat:.6f}\n", encoding="utf-8")
    import_gazetteer(path, city)
    with city() as s:
        second = current.get(s)
        assert second is not first
        found = second.geocode("黄河路8号")
        assert found is not None and found.grid_code == grid(4)
