"""Defaults are defined once and documented where they are defined (issue 13).

The command line's option defaults are the workers' own, read from ``feeds/defaults.py`` or
``Settings``: no second literal in ``cli/``, and docs/cli.md states the same numbers. Every
module-level constant of ``dashboard/settings.py`` and ``feeds/defaults.py`` says what it is
in a docstring under it (as rq's ``defaults.py``).
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main

import cli
from dashboard.settings import Settings
from feeds import defaults
from feeds.deadletters import DeadLetters
from feeds.health import FeedState
from feeds.history import build_history
from feeds.ingest import Ingest
from feeds.simulator import Simulator

REPO = Path(__file__).resolve().parent.parent


def _command(path: str) -> Any:
    """A command (or group) of ``gridhall`` by its words; typer ships its own click-like core."""
    command: Any = typer.main.get_command(cli.app)
    for name in path.split():
        command = command.commands[name]
    return command


def _option(path: str, name: str) -> Any:
    [param] = [p for p in _command(path).params if p.name == name]
    return param


def _keyword_default(func: Callable[..., Any], name: str) -> Any:
    return inspect.signature(func).parameters[name].default


# (command, option, the worker that takes it, its keyword, option unit per keyword unit)
SHARED = [
    ("ingest", "batch_size", Ingest.__init__, "batch_size", 1),
    ("ingest", "claim_idle", Ingest.__init__, "claim_idle_ms", 1000),  # the option in s, the worker in ms
    ("ingest", "illegal_grace", Ingest.__init__, "illegal_grace_s", 1),
    ("simulate", "daily", Simulator.__init__, "daily_cases", 1),
    ("simulate", "speedup", Simulator.__init__, "speedup", 1),
    ("demo", "daily", build_history, "daily_cases", 1),
    ("demo", "daily", Simulator.__init__, "daily_cases", 1),
    ("demo", "speedup", Simulator.__init__, "speedup", 1),
    ("deadletters list", "limit", DeadLetters.newest, "limit", 1),
]


@pytest.mark.parametrize(("command", "option", "worker", "keyword", "scale"), SHARED)
def test_an_option_default_is_the_workers_own(command: str, option: str, worker: Callable[..., Any], keyword: str,
                                             scale: int) -> None:
    assert _option(command, option).default * scale == _keyword_default(worker, keyword)


def test_no_option_default_is_a_number_literal() -> None:
    """A number typed as an option default in cli/ is a copy: read it where it is defined."""
    found = []
    for path in sorted((REPO / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("Option", "Argument") and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and type(node.args[0].value) in (int, float)):
                found.append(f"{path.name}:{node.lineno} {node.args[0].value!r}")
    assert found == []


def test_help_states_the_values_in_force() -> None:
    assert f"last {defaults.INGEST_ALIVE_S:g} s" in (_option("check", "require_ingest").help or "")
    assert _keyword_default(FeedState.alive, "max_age_s") == defaults.INGEST_ALIVE_S
    assert f"GRIDHALL_PORT, {Settings.model_fields['port'].default})" in (_option("demo", "port").help or "")
    # The token lifetimes live with the users (SQL): stated in the help, checked here.
    from dashboard.store.users import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS

    expires = _option("users token", "expires_days").help or ""
    assert f"1–{MAX_TOKEN_DAYS};" in expires and f"{DEFAULT_TOKEN_DAYS} for others" in expires


def test_docs_state_the_same_defaults() -> None:
    """docs/cli.md's option tables: a number in the default column is the option's default."""
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    checked = 0
    for section in re.split(r"\n## ", text)[1:]:
        heading = section.split("\n", 1)[0]
        words = re.match(r"`gridhall ([a-z0-9 -]+)", heading)
        if words is None:
            continue
        # A section on a group's commands has their tables ("list, show ID, retry"): look in all.
        top = _command(words.group(1).split()[0])
        commands = list(top.commands.values()) if hasattr(top, "commands") else [top]
        for opt, default in re.findall(r"^\| `(--[a-z-]+)[^|]*\| ([0-9][0-9_.,]*) \|", section, re.M):
            params = [p for c in commands for p in c.params if opt in getattr(p, "opts", [])]
            assert params, f"docs/cli.md {heading}: {opt} is no option of the command"
            assert {p.default for p in params} == {float(default.replace(",", "").replace("_", ""))}, (heading, opt)
            checked += 1
    assert checked >= 7, "the walk found the option tables"


@pytest.mark.parametrize("module", ["dashboard/settings.py", "feeds/defaults.py"])
def test_every_module_constant_is_documented_where_it_is_defined(module: str) -> None:
    body = ast.parse((REPO / module).read_text(encoding="utf-8")).body
    bare = []
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            documented = (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                          and isinstance(after.value.value, str))
            bare += [t.id for t in targets if isinstance(t, ast.Name) and not documented]
    assert bare == [], f"{module}: module-level constants without a docstring under them"
