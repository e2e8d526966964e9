"""The command line: every command documented, `check` exit codes, clear start-up errors."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import typer.main

import cli
from clikit import run
from feeds.keys import DEAD_COUNTS_KEY, DEAD_LETTER_STREAM

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _commands(group: object, prefix: str = "gridhall") -> list[tuple[str, object]]:
    found = []
    # typer ships its own click-like core, so look for sub-commands rather than a class.
    if hasattr(group, "commands"):
        for name, sub in group.commands.items():  # type: ignore[attr-defined]
            found += _commands(sub, f"{prefix} {name}")
    else:
        found.append((prefix, group))
    return found


def test_every_command_and_option_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    commands = _commands(typer.main.get_command(cli.app))
    assert len(commands) >= 8
    for name, command in commands:
        assert f"`{name}" in text, f"{name} is not documented in docs/cli.md"
        for param in command.params:  # type: ignore[attr-defined]
            for opt in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
                if opt.startswith("--") and opt != "--help":
                    assert opt in text, f"{name} {opt} is not documented in docs/cli.md"


def test_check_exit_code_names_what_failed(tmp_path: Path) -> None:
    result = run("check", GRIDHALL_DATA_DIR=str(tmp_path),
                 GRIDHALL_DATABASE_URL="postgresql://postgres@127.0.0.1:1/nope",
                 GRIDHALL_REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 2 | 4, result.stdout + result.stderr
    assert "GRIDHALL_DATABASE_URL" in result.stderr and "GRIDHALL_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_passes_on_embedded_defaults(tmp_path: Path) -> None:
    result = run("check", GRIDHALL_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "redis" in result.stdout and "database" in result.stdout


def test_bad_setting_fails_in_one_line(tmp_path: Path) -> None:
    result = run("check", GRIDHALL_DATA_DIR=str(tmp_path), GRIDHALL_TIMEZONE="Mars/Olympus")
    assert result.returncode == 1
    assert "GRIDHALL_TIMEZONE" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_unreachable_database_with_one_line(tmp_path: Path) -> None:
    result = run("serve", GRIDHALL_DATA_DIR=str(tmp_path),
                 GRIDHALL_DATABASE_URL="postgresql://postgres@127.0.0.1:1/nope")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "GRIDHALL_DATABASE_URL" in lines[0], result.stderr


def test_check_reports_the_feed_and_can_require_an_ingest(tmp_path: Path) -> None:
    result = run("check", "--require-ingest", GRIDHALL_DATA_DIR=str(tmp_path))
    assert result.returncode == 8, result.stdout + result.stderr
    assert "no live ingest" in result.stderr and "last heartbeat never" in result.stderr
    relaxed = run("check", GRIDHALL_DATA_DIR=str(tmp_path))
    assert relaxed.returncode == 0 and "no live ingest" in relaxed.stdout


def test_check_sees_a_live_ingest(settings, redis_client) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    redis_client.hset(settings.key("ingest:health"), mapping={
        "heartbeat_at": datetime.now(UTC).isoformat(), "applied_total": "42"})
    redis_client.xadd(settings.key(DEAD_LETTER_STREAM), {"reason": "x", "reason_code": "schema"})
    redis_client.hset(settings.key(DEAD_COUNTS_KEY), "schema", 3)
    env = {"GRIDHALL_DATA_DIR": str(settings.data_dir), "GRIDHALL_REDIS_PREFIX": settings.redis_prefix,
           "GRIDHALL_DATABASE_URL": settings.effective_database_url}
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    result = run("check", "--require-ingest", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ ingest" in result.stdout and "applied 42" in result.stdout
    assert "dead letters 1 (schema 3)" in result.stdout
