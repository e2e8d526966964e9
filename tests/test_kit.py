"""The component kit (``layouts/kit``) is what the pages share; no page is another page's kit.

Read from the source (AST), like tests/test_layers.py: who imports the /live page, which
module builds the shared pieces, and that the screens take the case loop's words from the
vocabulary instead of typing them again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dashboard.rules.evalspec import INSUFFICIENT, LABELS
from dashboard.rules.lifecycle import Stage
from dashboard.rules.limits import STAGES

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("dashboard", "feeds", "layouts", "callbacks", "auth", "api", "cli", "bench", "tests")
PAGES = ("live", "wall", "view", "explore")

# The /live page is imported by its own callbacks and by the page registry, nobody else.
LIVE_IMPORTERS = {"callbacks/live.py", "layouts/__init__.py"}


def python_files() -> list[Path]:
    files = [REPO / "app.py"]
    for package in PRODUCT:
        files += sorted((REPO / package).rglob("*.py"))
    return [p for p in files if p.exists()]


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Dotted names of every module ``path`` imports (relative imports resolved; for ``from x
    import y`` both ``x`` and ``x.y``, since ``y`` may be a module)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def importers_of(module: str) -> set[str]:
    return {path.relative_to(REPO).as_posix() for path in python_files()
            if any(name == module or name.startswith(f"{module}.") for name in imported_modules(path))}


def test_the_import_walk_resolves_relative_imports(tmp_path: Path) -> None:
    assert "layouts.kit.fmt" in imported_modules(REPO / "layouts" / "live.py")
    assert "layouts.live" in imported_modules(REPO / "layouts" / "__init__.py")
    assert "layouts.live" in imported_modules(REPO / "callbacks" / "live.py")


def test_only_the_live_page_s_own_code_imports_it() -> None:
    assert importers_of("layouts.live") == LIVE_IMPORTERS


@pytest.mark.parametrize("page", PAGES)
def test_no_page_is_another_page_s_kit(page: str) -> None:
    """A page's layout is imported by its own callbacks and the registry, a page's callbacks by
    the registry only: what two pages share (the legend, the hall's KPI strip, the ranking rows)
    lives in the kit."""
    product = {p for p in importers_of(f"layouts.{page}") | importers_of(f"callbacks.{page}")
               if not p.startswith(("tests/", "bench/"))}
    assert product <= {f"callbacks/{page}.py", "layouts/__init__.py", "callbacks/__init__.py"}


@pytest.mark.parametrize("page", PAGES)
def test_the_kit_imports_no_page(page: str) -> None:
    kit = sorted((REPO / "layouts" / "kit").glob("*.py"))
    assert len(kit) > 5
    assert {p.name for p in kit if f"layouts.{page}" in imported_modules(p)} == set()


# Pieces built once, in the kit: a page composes them instead of building its own copy.
# (class name or dash-leaflet component) → the one kit module that may write it.
KIT_PIECES = {
    "gh-header__titles": "layouts/kit/header.py",
    "gh-header__time": "layouts/kit/clock.py",
    "gh-updated": "layouts/kit/clock.py",
    "gh-kpi__value": "layouts/kit/tiles.py",
    "gh-banner__title": "layouts/kit/health.py",
    "gh-feed__item": "layouts/kit/health.py",
    "TileLayer": "layouts/kit/basemap.py",
    "WMSTileLayer": "layouts/kit/basemap.py",
    "MapContainer": "layouts/kit/basemap.py",
    "gridhall.clock": "callbacks/clock.py",  # the header clock's clientside callback
}


def pieces_in(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(piece for piece in KIT_PIECES if piece in node.value.split())
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in KIT_PIECES:
            found.add(node.func.attr)
        elif isinstance(node, ast.Call):  # ClientsideFunction(namespace=…, function_name=…)
            words = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
            name = f"{words.get('namespace')}.{words.get('function_name')}"
            if name in KIT_PIECES:
                found.add(name)
    return found


def test_shared_pieces_are_built_in_the_kit_only() -> None:
    where: dict[str, set[str]] = {}
    for package in ("layouts", "callbacks"):
        for path in sorted((REPO / package).rglob("*.py")):
            for piece in pieces_in(path):
                where.setdefault(piece, set()).add(path.relative_to(REPO).as_posix())
    assert where == {piece: {module} for piece, module in KIT_PIECES.items()}


# Words the screens take from the vocabulary: the case loop's (Stage.label, the clock stages of
# limits.STAGES) and the evaluation's (indicator labels, 样本不足).
VOCABULARY = {
    "stage": {stage.label for stage in Stage} | set(STAGES.values()),
    "evaluation": {label for labels in LABELS.values() for label in labels.values()} | {INSUFFICIENT},
}


def typed_words(path: Path, words: set[str]) -> list[tuple[int, str]]:
    return sorted((node.lineno, node.value) for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in words)


@pytest.mark.parametrize("vocabulary", sorted(VOCABULARY))
def test_screens_take_labels_from_the_vocabulary(vocabulary: str) -> None:
    """A stage's name on a screen is ``Stage.label`` (or built from it, as 处置中 is), an
    indicator's its ``evalspec.LABELS`` entry: typed again in a layout or a callback, it could
    drift from the vocabulary (docs/glossary.md)."""
    typed = {path.relative_to(REPO).as_posix(): typed_words(path, VOCABULARY[vocabulary])
             for package in ("layouts", "callbacks") for path in sorted((REPO / package).rglob("*.py"))}
    assert {k: v for k, v in typed.items() if v} == {}


def test_the_label_scan_sees_a_typed_label(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('KPIS = (("filed", "立案", "今日"), ("x", f"{1}中", "当前"))\nHINT = "立案数"\n',
                      encoding="utf-8")
    assert typed_words(module, VOCABULARY["stage"]) == [(1, "立案")]
    assert typed_words(module, VOCABULARY["evaluation"]) == [(2, "立案数")]


def test_loop_tiles_read_as_the_stages() -> None:
    from layouts.kit.tiles import LOOP_KPIS

    labels = {key: label for key, label, _ in LOOP_KPIS}
    assert labels == {"reported": Stage.REPORTED.label, "filed": Stage.FILED.label,
                      "dispatched": Stage.DISPATCHED.label, "disposing": f"{STAGES['handle']}中",
                      "closed": Stage.CLOSED.label}
    assert labels["disposing"] == "处置中"  # the tile's text as the screens always showed it
