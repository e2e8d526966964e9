"""Settings: every knob is documented, sources take effect in order, bad values fail readably."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard.settings import META_VARIABLES, ConfigError, Settings, load_settings
from dashboard.store import db
from feeds.connection import check_redis

REPO = Path(__file__).resolve().parent.parent
CONFIG_DOC = REPO / "docs" / "configuration.md"
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/x"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No GRIDHALL_* variables and an empty working directory (no stray .env/gridhall.toml).

    CI sets GRIDHALL_DATABASE_URL etc. for the whole run; these tests need a blank slate.
    """
    import os

    for name in list(os.environ):
        if name.startswith("GRIDHALL_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


# -- (a) documentation --------------------------------------------------------------------
def _documented_sections() -> dict[str, str]:
    """``### GRIDHALL_X`` heading → the text up to the next heading."""
    text = CONFIG_DOC.read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    parts = re.split(r"^###\s+`?(GRIDHALL_[A-Z0-9_]+)`?\s*$", text, flags=re.MULTILINE)
    for name, body in zip(parts[1::2], parts[2::2], strict=False):
        sections[name] = re.split(r"^#{1,3}\s", body, maxsplit=1, flags=re.MULTILINE)[0]
    return sections


def _expected_names() -> set[str]:
    return {f"GRIDHALL_{name.upper()}" for name in Settings.model_fields} | set(META_VARIABLES)


def test_every_setting_is_documented() -> None:
    sections = _documented_sections()
    missing = sorted(_expected_names() - set(sections))
    assert not missing, f"undocumented in docs/configuration.md: {missing}"


def test_documentation_names_no_setting_that_does_not_exist() -> None:
    stale = sorted(set(_documented_sections()) - _expected_names())
    assert not stale, f"docs/configuration.md documents settings that do not exist: {stale}"


def test_documented_defaults_match_the_code() -> None:
    sections = _documented_sections()
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            continue  # computed per machine (e.g. the XDG data folder); described in words
        default = "unset" if field.default is None else str(field.default)
        body = sections[f"GRIDHALL_{name.upper()}"]
        assert re.search(rf"Default:\s*\*{{0,2}}\s*`{re.escape(default)}`", body), (
            f"GRIDHALL_{name.upper()}: docs should say Default: `{default}`"
        )


# -- (b) sources and precedence -----------------------------------------------------------
def test_defaults_without_any_configuration(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(clean_env / "xdg"))
    s = load_settings()
    assert s.data_dir == clean_env / "xdg" / "gridhall"
    assert s.database_url is None and s.redis_url is None
    assert s.effective_database_url == f"sqlite:///{clean_env / 'xdg' / 'gridhall' / 'gridhall.db'}"
    assert s.port == 8050 and s.host == "127.0.0.1"
    assert s.timezone == "Asia/Shanghai"
    assert s.classification == "gbt47678-2026"
    assert s.key("cases") == "gridhall:cases"


def test_environment_overrides_defaults(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDHALL_PORT", "9123")
    monkeypatch.setenv("GRIDHALL_CITY_NAME", "扬州市")
    monkeypatch.setenv("GRIDHALL_REDIS_PREFIX", "yz:")
    monkeypatch.setenv("GRIDHALL_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setenv("GRIDHALL_DATABASE_URL", "postgresql://u@db.example/gh")
    monkeypatch.setenv("GRIDHALL_LOG_LEVEL", "debug")
    s = load_settings()
    assert s.port == 9123
    assert s.city_name == "扬州市"
    assert s.key("changes") == "yz:changes"
    assert s.data_dir == clean_env / "data"
    assert s.effective_database_url == "postgresql://u@db.example/gh"
    assert s.log_level == "DEBUG"


def test_toml_file_named_by_gridhall_config(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = clean_env / "elsewhere" / "city.toml"
    toml.parent.mkdir()
    toml.write_text('port = 8100\ncity_name = "苏州市"\ntimezone = "Asia/Urumqi"\n', encoding="utf-8")
    assert load_settings().port == 8050  # not read until named
    monkeypatch.setenv("GRIDHALL_CONFIG", str(toml))
    s = load_settings()
    assert (s.port, s.city_name, s.timezone) == (8100, "苏州市", "Asia/Urumqi")


def test_gridhall_toml_in_working_directory_is_the_default_file(clean_env: Path) -> None:
    (clean_env / "gridhall.toml").write_text("web_workers = 5\n", encoding="utf-8")
    assert load_settings().web_workers == 5


def test_dotenv_file(clean_env: Path) -> None:
    (clean_env / ".env").write_text("GRIDHALL_PORT=8200\nGRIDHALL_HOST=0.0.0.0\n", encoding="utf-8")
    s = load_settings()
    assert (s.port, s.host) == (8200, "0.0.0.0")


def test_precedence_arguments_env_dotenv_toml(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / "gridhall.toml").write_text(
        'port = 1001\nhost = "10.0.0.1"\ncity_name = "toml"\nlog_level = "ERROR"\n', encoding="utf-8"
    )
    (clean_env / ".env").write_text(
        "GRIDHALL_PORT=1002\nGRIDHALL_HOST=10.0.0.2\nGRIDHALL_CITY_NAME=dotenv\n", encoding="utf-8"
    )
    monkeypatch.setenv("GRIDHALL_PORT", "1003")
    monkeypatch.setenv("GRIDHALL_HOST", "10.0.0.3")
    s = load_settings(port=1004)
    assert s.port == 1004  # explicit argument beats everything
    assert s.host == "10.0.0.3"  # environment beats .env and TOML
    assert s.city_name == "dotenv"  # .env beats TOML
    assert s.log_level == "ERROR"  # TOML beats the default


# -- (c) bad values -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GRIDHALL_TIMEZONE", "Mars/Olympus_Mons"),
        ("GRIDHALL_TIMEZONE", "UTC+8"),
        ("GRIDHALL_PORT", "0"),
        ("GRIDHALL_PORT", "65536"),
        ("GRIDHALL_PORT", "eighty"),
        ("GRIDHALL_WEB_WORKERS", "0"),
        ("GRIDHALL_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_value_names_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{variable}: "), message
    assert "\n" not in message


def test_bad_value_in_toml_names_the_variable(clean_env: Path) -> None:
    (clean_env / "gridhall.toml").write_text('timezone = "Nowhere/City"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^GRIDHALL_TIMEZONE: .*Nowhere/City"):
        load_settings()


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Shanghai", "UTC"])
def test_real_zones_are_accepted_including_dst(clean_env: Path, zone: str) -> None:
    from datetime import datetime

    s = load_settings(timezone=zone)
    assert s.timezone == zone
    if zone == "Europe/Berlin":  # DST: +01:00 in winter, +02:00 in summer
        assert datetime(2026, 1, 15, 12, tzinfo=s.tz).utcoffset().total_seconds() == 3600
        assert datetime(2026, 7, 15, 12, tzinfo=s.tz).utcoffset().total_seconds() == 7200


# -- (d) unreachable services -------------------------------------------------------------
def test_unreachable_database_names_the_setting(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        db.check_database(load_settings(database_url=UNREACHABLE_DB, data_dir=clean_env))
    message = str(info.value)
    assert message.startswith("GRIDHALL_DATABASE_URL: "), message
    assert "127.0.0.1" in message
    assert "\n" not in message


def test_unreachable_database_hides_the_password(clean_env: Path) -> None:
    url = "postgresql://gh:s3cret-pw@127.0.0.1:1/x"
    with pytest.raises(ConfigError) as info:
        db.check_database(load_settings(database_url=url, data_dir=clean_env))
    assert "s3cret-pw" not in str(info.value)


def test_reachable_embedded_database_passes(clean_env: Path) -> None:
    db.check_database(load_settings(data_dir=clean_env / "data"))
    assert (clean_env / "data" / "gridhall.db").exists()


def test_malformed_database_url_names_the_setting(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match=r"^GRIDHALL_DATABASE_URL: "):
        db.check_database(load_settings(database_url="not a url", data_dir=clean_env))


def test_unreachable_redis_names_the_setting(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_redis(load_settings(redis_url=UNREACHABLE_REDIS, data_dir=clean_env))
    message = str(info.value)
    assert message.startswith("GRIDHALL_REDIS_URL: "), message
    assert "127.0.0.1:1" in message
    assert "\n" not in message


def test_redis_url_with_wrong_scheme_names_the_setting(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match=r"^GRIDHALL_REDIS_URL: "):
        check_redis(load_settings(redis_url="http://127.0.0.1:6379/0", data_dir=clean_env))


def test_unreachable_redis_hides_the_password(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_redis(load_settings(redis_url="redis://:s3cret-pw@127.0.0.1:1/0", data_dir=clean_env))
    assert "s3cret-pw" not in str(info.value)


def test_named_config_file_that_is_missing_is_an_error(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDHALL_CONFIG", str(clean_env / "nope.toml"))
    with pytest.raises(ConfigError, match=r"^GRIDHALL_CONFIG: no such file"):
        load_settings()
