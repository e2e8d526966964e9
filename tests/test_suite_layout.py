"""The test suite's own layout: shared fixtures live in kits, and a fixture's name says one thing.

A test module never imports another test module (nor does a bench): what two modules share is in
a kit (``tests/*kit.py``, registered in tests/conftest.py's ``pytest_plugins`` when it holds
fixtures) or in tests/conftest.py. Fixtures are never imported by name; pytest finds them. And
two different fixtures never share a name, so ``city`` cannot mean six different cities: each
city is named for what it is (``api_city``, ``feed_city``, ``view_city``, …).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TEST_MODULES = {p.stem for p in TESTS.glob("test_*.py")}
# Fixtures a conftest.py may define again on purpose, to override one for its folder: none today.
OVERRIDES: set[str] = set()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of ``path`` names (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return ast.unparse(target) in ("pytest.fixture", "fixture")


def fixtures_of(path: Path) -> dict[str, int]:
    """Fixture name → line, for every ``@pytest.fixture`` function of ``path`` (``name=`` honoured)."""
    found: dict[str, int] = {}
    for node in ast.walk(_tree(path)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if not _is_fixture(decorator):
                continue
            name = node.name
            if isinstance(decorator, ast.Call):
                for keyword in decorator.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        name = str(keyword.value.value)
            found[name] = node.lineno
    return found


def _suite_files() -> list[Path]:
    return sorted(TESTS.glob("*.py"))


def test_no_test_module_is_imported() -> None:
    files = _suite_files() + sorted((REPO / "bench").glob("*.py"))
    assert len(files) > 50, "the walk found the suite and the benches"
    bad = {}
    for path in files:
        hits = {name for name in imported_modules(path)
                if name.split(".")[0] in TEST_MODULES or name.startswith("tests.")}
        if hits:
            bad[str(path.relative_to(REPO))] = sorted(hits)
    assert bad == {}, "share through a kit (tests/*kit.py) or tests/conftest.py, not a test module"


def test_a_fixture_name_is_defined_once() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in _suite_files():
        for name, line in fixtures_of(path).items():
            where[name].append(f"{path.name}:{line}")
    assert len(where) > 30, "the walk found the fixtures"
    twice = {name: places for name, places in where.items() if len(places) > 1}
    allowed = {name: places for name, places in twice.items()
               if name in OVERRIDES and any(p.startswith("conftest.py:") for p in places)}
    assert {k: v for k, v in twice.items() if k not in allowed} == {}, (
        "two fixtures share a name: name each for what it is, or share one through a kit")


def test_fixtures_are_not_imported_by_name() -> None:
    """A module that imports a kit's fixture gets a second copy that pytest may not use."""
    fixtures = {path.stem: set(fixtures_of(path)) for path in _suite_files()}
    bad = {}
    for path in _suite_files():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in fixtures:
                hits = {alias.name for alias in node.names} & fixtures[node.module]
                if hits:
                    bad[path.name] = sorted(hits)
    assert bad == {}


def test_every_kit_with_fixtures_is_a_registered_plugin() -> None:
    conftest = _tree(TESTS / "conftest.py")
    plugins = next(ast.literal_eval(node.value) for node in conftest.body
                   if isinstance(node, ast.Assign)
                   and any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets))
    with_fixtures = {path.stem for path in _suite_files()
                     if path.stem not in TEST_MODULES and path.stem != "conftest" and fixtures_of(path)}
    assert with_fixtures - set(plugins) == set()
    assert all((TESTS / f"{name}.py").is_file() for name in plugins)


def _conftest_value(name: str) -> object:
    """The literal assigned to ``name`` in tests/conftest.py (a frozenset({...}) call's set too)."""
    for node in _tree(TESTS / "conftest.py").body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == name and node.value is not None:
            value = node.value
            if isinstance(value, ast.Call) and ast.unparse(value.func) == "frozenset":
                value = value.args[0]
            return ast.literal_eval(value)
    raise AssertionError(f"tests/conftest.py assigns no {name}")


def test_the_ci_pass_file_lists_name_real_files() -> None:
    """A misspelt name in conftest's lists would silently move a file to the wrong CI pass.

    The tests of the feed's cluster pass never run on one backend only, and a file listed for
    its tests with a marker has some (.ci/run deselects ``one_backend`` in pass 1)."""
    cluster = _conftest_value("CLUSTER_PASS_FILES")
    one_backend = _conftest_value("ONE_BACKEND_FILES")
    assert isinstance(cluster, set) and isinstance(one_backend, dict) and cluster and one_backend
    names = cluster | set(one_backend)
    assert {name for name in names if not (TESTS / name).is_file()} == set()
    assert cluster & set(one_backend) == set()
    assert set(one_backend.values()) <= {"browser", "slow", "all"}
    assert {name for name, which in one_backend.items() if which != "all"
            and f"pytest.mark.{which}" not in (TESTS / name).read_text(encoding="utf-8")} == set()


def test_the_longest_files_list_names_real_files_once() -> None:
    """conftest's LONGEST_FILES puts files first on CI's workers: a misspelt or stale name would
    silently send a long file to the end of a pass again."""
    longest = _conftest_value("LONGEST_FILES")
    assert isinstance(longest, tuple) and longest and len(set(longest)) == len(longest)
    assert {name for name in longest if not (TESTS / name).is_file()} == set()
