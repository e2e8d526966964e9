"""Facts put together in one place, read from the source (issue 13, "one definition each").

- The timing of a deployment (scheme with its extension file, limits table, working calendar,
  due-soon ratio) is assembled by ``Timing.from_settings`` alone; the deployment's scheme is
  read by ``Classification.from_settings`` alone. Product code and benches call those (or
  ``dashboard.store.reference.timing_for``, which adds the grids' area classes); none loads a
  scheme, a limits table or a calendar by hand, so none can forget the extension file again.
- The change stream's cap, ``CHANGES_MAXLEN``, lives in ``feeds/keys.py``, which the ingest
  (writer) and the follower (reader) both import.
- The time zone is read as ``settings.tz``: the raw ``timezone`` field and ``ZoneInfo`` belong to
  ``dashboard/settings.py``; the web side, the API and the CLI never go through the calendar.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("dashboard", "feeds", "layouts", "callbacks", "api", "auth", "cli", "bench")
WEB_SIDE = ("layouts", "callbacks", "api", "auth", "cli", "app.py")

# What assembles a timing, and the one module allowed to call it.
TIMING_PARTS = {"load_limits": "dashboard/rules/deadlines.py", "Timing": "dashboard/rules/deadlines.py",
                "WorkCalendar.from_settings": "dashboard/rules/deadlines.py",
                "classification.load": "dashboard/rules/classification.py"}


def modules() -> Iterator[tuple[str, ast.Module]]:
    """Product modules and benches, as (path relative to the repo, syntax tree)."""
    paths = [REPO / "app.py"]
    for top in PRODUCT:
        if (REPO / top).is_dir():
            paths += sorted((REPO / top).rglob("*.py"))
    for path in paths:
        if path.is_file():
            yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name → what it stands for, among the timing parts (imports anywhere in the module)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                local = a.asname or a.name
                if node.module == "dashboard.rules" and a.name == "classification":
                    out[local] = "classification"
                elif node.module == "dashboard.rules.classification" and a.name == "load":
                    out[local] = "classification.load"
                elif a.name in ("load_limits", "Timing", "WorkCalendar"):
                    out[local] = a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "dashboard.rules.classification" and a.asname:
                    out[a.asname] = "classification"
    return out


def timing_calls(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(which timing part, line) of every call that assembles part of a timing."""
    names = _aliases(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and names.get(f.id) in ("load_limits", "Timing", "classification.load"):
            yield names[f.id], node.lineno
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            part = f"{names.get(f.value.id)}.{f.attr}"
            if part in ("classification.load", "WorkCalendar.from_settings"):
                yield part, node.lineno


def test_the_timing_is_assembled_in_one_place() -> None:
    found = {(path, part, line) for path, tree in modules() for part, line in timing_calls(tree)}
    assert found, "the walk reads the modules"
    assert {(p, part, line) for p, part, line in found if TIMING_PARTS[part] != p} == set()


def test_the_walk_would_catch_a_hand_built_timing() -> None:
    """The check itself: the pattern issue 13 found in six places is reported."""
    hand_built = ast.parse(
        "from dashboard.rules import classification\n"
        "from dashboard.rules.deadlines import Timing\n"
        "from dashboard.rules.limits import load_limits\n"
        "from dashboard.rules.workcalendar import WorkCalendar\n"
        "scheme = classification.load(settings.classification)\n"
        "Timing(load_limits(scheme), WorkCalendar.from_settings(settings), scheme)\n")
    assert sorted(part for part, _ in timing_calls(hand_built)) == [
        "Timing", "WorkCalendar.from_settings", "classification.load", "load_limits"]


def test_the_extension_setting_is_read_once() -> None:
    readers = {path for path, tree in modules() for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr == "classification_extension"}
    assert readers == {"dashboard/rules/classification.py"}


def test_the_time_zone_is_read_as_settings_tz() -> None:
    raw = set()
    for path, tree in modules():
        if path == "dashboard/settings.py" or path.startswith("bench/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "timezone":
                raw.add((path, node.lineno, "timezone"))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ZoneInfo":
                raw.add((path, node.lineno, "ZoneInfo"))
            elif (path.startswith(WEB_SIDE) and isinstance(node, ast.Attribute) and node.attr == "tz"
                  and isinstance(node.value, ast.Attribute) and node.value.attr == "calendar"):
                raw.add((path, node.lineno, "calendar.tz"))
    assert raw == set()


def test_the_change_stream_cap_is_the_keys_module_s() -> None:
    """The follower (reader) and the ingest (writer) both read CHANGES_MAXLEN from feeds/keys.py."""
    defined = {path for path, tree in modules() for node in ast.walk(tree)
               if isinstance(node, (ast.Assign, ast.AnnAssign))
               and any(isinstance(t, ast.Name) and t.id == "CHANGES_MAXLEN"
                       for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))}
    assert defined == {"feeds/keys.py"}
    follower = ast.parse((REPO / "feeds" / "follower.py").read_text(encoding="utf-8"))
    sources = {(n.level, n.module) for n in ast.walk(follower) if isinstance(n, ast.ImportFrom)}
    assert (1, "ingest") not in sources and (0, "feeds.ingest") not in sources
