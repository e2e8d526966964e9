"""The city's name comes from the imported city, with GRIDHALL_CITY_NAME as an override (issue 12, point 15)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from authkit import make_user, signin_client
from dashboard.settings import Settings
from dashboard.store.cityimport import import_city
from dashboard.store.cityname import CityNameSource, city_name

REPO = Path(__file__).resolve().parent.parent
SMALL_CITY = REPO / "tests" / "data" / "city-small"  # its city.toml: name = "测试市"
PAGES = ("/wall", "/explore", "/view", "/screens", "/live")
SUFFIX = "数字化城市管理 · 实时态势"


@pytest.fixture
def imported(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    import_city(SMALL_CITY, sessions)
    return sessions


def _app(settings: Settings) -> Iterator[Any]:
    import app as appmod

    application = appmod.create_app(settings)
    try:
        yield application
    finally:
        application.server.extensions[appmod.EXTENSION_KEY].close()


def _screens(application: Any, sessions: sessionmaker[Session]) -> dict[str, tuple[str, str]]:
    """Per page: (the index HTML with its <title>, the layout JSON with the header)."""
    client = signin_client(application.server.test_client(), make_user(sessions, "admin"))
    shown = {}
    for path in PAGES:
        index = client.get(path)
        assert index.status_code == 200, path
        layout = client.get("/_dash-layout", headers={"Referer": f"http://localhost{path}"})
        assert layout.status_code == 200, path
        shown[path] = (index.get_data(as_text=True), layout.get_data(as_text=True))
    return shown


def _header_city(layout_json: str) -> str:
    """The text of the header's city span (``gh-header__city``) in a layout's JSON."""
    import json

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            props = node.get("props", {})
            if isinstance(props, dict) and props.get("className") == "gh-header__city":
                yield str(props.get("children"))
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    found = list(walk(json.loads(layout_json)))
    assert len(found) == 1, found
    return found[0]


def test_an_imported_city_shows_its_own_name_on_every_screen(settings: Settings, imported, redis_client) -> None:  # type: ignore[no-untyped-def]
    assert settings.city_name is None  # nothing set: the city's own name is used
    with imported() as s:
        assert city_name(settings, s) == "测试市"
    for application in _app(settings):
        for path, (index, layout) in _screens(application, imported).items():
            assert f"<title>测试市{SUFFIX}</title>" in index, path
            assert "演示市" not in index and "演示市" not in layout, path
            assert _header_city(layout) == "测试市", path
        login = application.server.test_client().get("/login").get_data(as_text=True)
        assert "测试市数字化城市管理" in login and "演示市" not in login


def test_the_setting_overrides_the_imported_name(settings: Settings, imported, redis_client) -> None:  # type: ignore[no-untyped-def]
    named = settings.model_copy(update={"city_name": "扬州市"})
    with imported() as s:
        assert city_name(named, s) == "扬州市"
    for application in _app(named):
        for path, (index, layout) in _screens(application, imported).items():
            assert f"<title>扬州市{SUFFIX}</title>" in index and _header_city(layout) == "扬州市", path


def test_a_name_with_markup_is_text_in_the_title(settings: Settings, sessions, redis_client) -> None:  # type: ignore[no-untyped-def]
    named = settings.model_copy(update={"city_name": "<b>市</b>"})
    for application in _app(named):
        index = application.server.test_client().get("/login").get_data(as_text=True)
        assert "<b>市</b>" not in index and "&lt;b&gt;市&lt;/b&gt;" in index
        client = signin_client(application.server.test_client(), make_user(sessions, "admin"))
        page = client.get("/live").get_data(as_text=True)
        assert "<title>&lt;b&gt;市&lt;/b&gt;" in page


def test_reimport_without_a_name_keeps_it_and_the_web_sees_a_new_one(settings: Settings, imported,
                                                                      tmp_path: Path) -> None:
    clock = [0.0]
    source = CityNameSource(settings, imported, ttl_s=30, clock=lambda: clock[0])
    assert source() == "测试市"
    city = tmp_path / "city"
    shutil.copytree(SMALL_CITY, city)
    (city / "city.toml").write_text('name = "江城市"\n', encoding="utf-8")
    import_city(city, imported)
    assert source() == "测试市"  # cached for ttl_s …
    clock[0] = 31
    assert source() == "江城市"  # … then read again: no restart needed
    (city / "city.toml").unlink()
    import_city(city, imported)
    with imported() as s:
        assert city_name(settings, s) == "江城市"


def _cli(settings: Settings, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(GRIDHALL_DATA_DIR=str(settings.data_dir), GRIDHALL_DATABASE_URL=settings.effective_database_url,
               GRIDHALL_REDIS_PREFIX=settings.redis_prefix, **extra)
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env,
                          timeout=180, cwd=REPO)


def test_import_then_report_carries_the_name_and_the_setting_overrides(settings: Settings, engine,
                                                                       tmp_path: Path) -> None:
    imported = _cli(settings, "import", "city", str(SMALL_CITY))
    assert imported.returncode == 0, imported.stderr
    assert "测试市" in imported.stdout
    own = _cli(settings, "report", "--month", "2026-10", "--out", str(tmp_path / "own"))
    assert own.returncode == 0, own.stderr
    html = (tmp_path / "own" / "report-2026-10.html").read_text(encoding="utf-8")
    assert "<h1>测试市数字化城市管理 2026年10月 综合考评通报</h1>" in html and "演示市" not in html
    override = _cli(settings, "report", "--month", "2026-10", "--out", str(tmp_path / "set"),
                    GRIDHALL_CITY_NAME="扬州市")
    assert override.returncode == 0, override.stderr
    html = (tmp_path / "set" / "report-2026-10.html").read_text(encoding="utf-8")
    assert "<h1>扬州市数字化城市管理 2026年10月 综合考评通报</h1>" in html
