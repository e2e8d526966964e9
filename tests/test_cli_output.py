"""What the command line prints for people and for programs (issue 12, point 14).

Every listing command takes ``--format table|tsv|json`` (TSV when piped), its table stays
readable at 80 columns, ``-`` means standard output (or input), and summaries are sentences,
not Python reprs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import typer.main
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

import cli
from dashboard.output.tabular import Column, fit_table
from dashboard.settings import Settings
from feeds.contract import DeadReason
from feeds.keys import CASE_STREAM, DEAD_COUNTS_KEY, DEAD_LETTER_STREAM

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
LONG_REASON = ("unknown grid: 单元网格 990101001001002 不存在; the producer sent a grid code that the "
               "imported city does not have, import it and re-drive")
LISTING_COMMANDS = ("deadletters list", "users list", "screens list", "screens log", "banners list", "overdue",
                    "archive")


def _env(settings: Settings) -> dict[str, str]:
    env = {"GRIDHALL_DATA_DIR": str(settings.data_dir), "GRIDHALL_REDIS_PREFIX": settings.redis_prefix,
           "GRIDHALL_DATABASE_URL": settings.effective_database_url}
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    return env


def _invoke(settings: Settings, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]  # noqa: A002
    return CliRunner().invoke(cli.app, list(args), env=_env(settings), input=input, catch_exceptions=False)


def _subprocess(settings: Settings, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """The real ``gridhall`` with standard output a pipe (not a terminal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(_env(settings), COLUMNS=str(columns))
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


def _dead_letters(settings: Settings, redis_client, n: int = 3) -> list[str]:  # type: ignore[no-untyped-def]
    """Dead letters as the ingest writes them, with a long reason and long ids."""
    ids = []
    for i in range(n):
        event = {"event_id": f"evt-2026-11-01-{i:06d}-0123456789abcdef", "case_id": f"CASE-2026110100{i}"}
        ids.append(redis_client.xadd(settings.key(DEAD_LETTER_STREAM), {
            "entry_id": f"1700000000{i}-0", "stream": settings.key(CASE_STREAM) + ":990101",
            "reason": LONG_REASON, "reason_code": "unknown_grid", "consumer": "host-4242",
            "at": "2026-11-01T09:00:00+08:00", "fields": json.dumps({"event": json.dumps(event)})}))
    redis_client.hset(settings.key(DEAD_COUNTS_KEY), "unknown_grid", n)
    return ids


# -- the table at 80 columns -------------------------------------------------------------------
def test_deadletters_table_is_readable_at_80_columns(settings, redis_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ids = _dead_letters(settings, redis_client)
    monkeypatch.setattr(cli.console, "width", 80)
    result = _invoke(settings, "deadletters", "list", "--format", "table")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(cell_len(line.rstrip()) <= 80 for line in lines), result.stdout
    for dead_id in ids:  # every row on one line, the id whole, the reason readable
        [row] = [line for line in lines if dead_id in line]
        assert "unknown_grid" in row and "unknown grid: 单元网格" in row and "…" in row
    # No column squeezed into a few characters: every cell of a row is at least 8 wide.
    header = next(line for line in lines if line.startswith("┃"))
    assert min(cell_len(cell) for cell in header.strip("┃").split("┃")) >= 8, header
    assert "unknown_grid 3" in result.stdout  # the counters


def test_fit_table_drops_and_shortens_rather_than_squeezing() -> None:
    columns = (Column("id", "id"), Column("text", "text", flex=True), Column("extra", "extra", drop=1),
               Column("more", "more", flex=True, drop=2))
    rows = [{"id": "X" * 20, "text": "word " * 40, "extra": "E" * 25, "more": "M" * 60}]
    for width in (60, 80, 120, 300):
        out = Console(width=width, file=io.StringIO(), color_system=None)
        out.print(fit_table(columns, rows, width))
        text = out.file.getvalue()  # type: ignore[attr-defined]
        assert all(cell_len(line) <= width for line in text.splitlines()), (width, text)
        assert "X" * 20 in text  # a fixed column is never cut
    narrow = Console(width=60, file=io.StringIO(), color_system=None)
    narrow.print(fit_table(columns, rows, 60))
    assert "extra" not in narrow.file.getvalue() and "more" not in narrow.file.getvalue()  # type: ignore[attr-defined]


# -- TSV when piped, JSON on request --------------------------------------------------------------
def test_piped_deadletters_list_is_tsv_and_json_has_stable_keys(settings, redis_client) -> None:  # type: ignore[no-untyped-def]
    ids = _dead_letters(settings, redis_client, n=2)
    piped = _subprocess(settings, "deadletters", "list")
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[0].split("\t") == ["id", "time", "reason_code", "reason", "event_id", "case_id", "stream"]
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == ids[::-1]  # newest first
    assert all(len(r) == 7 and r[3] == LONG_REASON and r[1] == "2026-11-01T09:00:00+08:00" for r in rows)
    assert "counters" in piped.stderr and "counters" not in piped.stdout  # stdout: the rows only

    as_json = _subprocess(settings, "deadletters", "list", "--format", "json")
    data = json.loads(as_json.stdout)
    assert [set(d) for d in data] == [{"id", "time", "reason_code", "reason", "event_id", "case_id", "stream"}] * 2
    assert data[0]["case_id"] == "CASE-20261101001" and data[0]["reason"] == LONG_REASON

    bad = _subprocess(settings, "deadletters", "list", "--format", "xml")
    assert bad.returncode == 2 and "table, tsv, json" in bad.stderr and "Traceback" not in bad.stderr


def test_users_list_and_overdue_take_every_format(settings, engine) -> None:  # type: ignore[no-untyped-def]
    added = _invoke(settings, "users", "add", "li.ming", "--role", "leader", "--name", "李明",
                    "--password-stdin", input="a-long-password-1\n")
    assert added.exit_code == 0, added.output
    tsv = _invoke(settings, "users", "list")  # CliRunner's output is no terminal: TSV
    assert tsv.stdout.splitlines() == ["username\tname\trole\tscope\tdisabled\tlast_login",
                                       "li.ming\t李明\tleader\t全市\tfalse\t"]
    data = json.loads(_invoke(settings, "users", "list", "--format", "json").stdout)
    assert data == [{"username": "li.ming", "name": "李明", "role": "leader", "scope": "全市",
                     "disabled": False, "last_login": None}]
    table = _invoke(settings, "users", "list", "--format", "table")
    assert "领导" in table.stdout and "┃" in table.stdout

    empty = _invoke(settings, "overdue", "--at", "2026-11-02T09:00", "--format", "json")
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.stdout) == [] and "0 overdue" in empty.stderr
    header = _invoke(settings, "overdue", "--at", "2026-11-02T09:00", "--format", "tsv").stdout.splitlines()[0]
    assert header.split("\t") == [c.key for c in cli.overdue.OVERDUE_TABLE]


def test_every_listing_command_has_format_and_it_is_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    commands = dict(_commands(typer.main.get_command(cli.app)))
    for name in LISTING_COMMANDS:
        command = commands[f"gridhall {name}"]
        assert any("--format" in getattr(p, "opts", []) for p in command.params), name  # type: ignore[attr-defined]
        assert f"`gridhall {name}`" in text.split("## Output formats", 1)[1].split("\n## ", 1)[0], name


def _commands(group: object, prefix: str = "gridhall") -> list[tuple[str, object]]:
    if hasattr(group, "commands"):
        return [c for name, sub in group.commands.items() for c in _commands(sub, f"{prefix} {name}")]  # type: ignore[attr-defined]
    return [(prefix, group)]


# -- "-" is standard output / input -----------------------------------------------------------
def test_overdue_csv_dash_writes_to_standard_output(settings, engine, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = _invoke(settings, "overdue", "--at", "2026-11-02T09:00", "--csv", "-")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "-").exists()
    assert list(csv.reader(io.StringIO(result.stdout))) == [list(cli.overdue.OVERDUE_COLUMNS)]
    assert "0 overdue" in result.stderr


def test_publish_dash_reads_standard_input(settings, redis_client) -> None:  # type: ignore[no-untyped-def]
    events = [{"v": 1, "event_id": f"e{i}", "case_id": f"c{i}", "type": "reported",
               "occurred_at": "2026-11-02T09:00:00+08:00", "source": "supervisor", "kind": "event",
               "class_code": "06010", "grid_code": "990101001001001"} for i in range(3)]
    lines = "".join(orjson.dumps(e).decode() + "\n" for e in events)
    result = _invoke(settings, "publish", "-", "--format", "jsonl", "--stream", settings.key(CASE_STREAM),
                     input=lines)
    assert result.exit_code == 0, result.output
    assert "published 3 of 3" in result.stdout
    assert redis_client.xlen(settings.key(CASE_STREAM)) == 3
    unknown = _invoke(settings, "publish", "-", input=lines)
    assert unknown.exit_code == 1 and "--format" in unknown.stderr


def test_report_refuses_dash_for_its_folder(settings, engine, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = _invoke(settings, "report", "--month", "2026-10", "--out", "-")
    assert result.exit_code == 1 and "--out" in result.stderr
    assert not (tmp_path / "-").exists()


# -- summaries, not reprs ---------------------------------------------------------------------------
def test_import_city_prints_a_readable_summary(settings, engine) -> None:  # type: ignore[no-untyped-def]
    result = _invoke(settings, "import", "city", str(REPO / "tests" / "data" / "city-small"))
    assert result.exit_code == 0, result.output
    assert "ImportSummary(" not in result.stdout and "KindCounts(" not in result.stdout
    assert "imported regions" in result.stdout and " new" in result.stdout


def test_demo_city_summary_is_readable() -> None:
    from dashboard.demo.democity import CitySummary

    summary = CitySummary(out_dir="/data/demo-city", seed=2026, districts=3, streets=15, communities=60,
                          grids=5012, water_grids=40, units=20, people=60, city_area_km2=50.2,
                          grid_area_min_m2=5000, grid_area_median_m2=10010, grid_area_mean_m2=10020,
                          grid_area_max_m2=20000, grids_per_community_min=50, grids_per_community_max=120)
    text = str(summary)
    assert "CitySummary(" not in text and "=" not in text
    assert "3 districts" in text and "5,012 grids" in text and "/data/demo-city" in text


def test_ingest_stop_line_is_readable() -> None:
    """What `gridhall ingest` and `gridhall demo` print when the ingest stops."""
    from feeds.ingest import IngestStats

    text = f"ingest stopped: {IngestStats(applied=12345, duplicates=2, dead=3, batches=40, retries=1)}"
    assert "IngestStats(" not in text and "=" not in text
    assert text == ("ingest stopped: applied 12,345, duplicates 2, dead letters 3, batches 40, retries 1")


# -- docs ---------------------------------------------------------------------------------------------
def test_every_dead_letter_reason_is_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for code in DeadReason:
        assert f"`{code.value}`" in text, code


def test_every_check_exit_bit_is_in_configuration_md() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    section = text.split("`gridhall check` tests", 1)[1].split("\n## ", 1)[0]
    for bit, what in ((1, "configuration"), (2, "database"), (4, "Redis"), (8, "ingest")):
        assert f"{bit} (" in section and what in section, bit


@pytest.mark.parametrize("command", LISTING_COMMANDS)
def test_format_help_mentions_the_choices(command: str) -> None:
    result = CliRunner().invoke(cli.app, [*command.split(), "--help"], env={"COLUMNS": "200"})
    assert "table|tsv|json" in result.stdout
