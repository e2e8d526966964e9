"""docs/ follows the code: every product module is in docs/architecture.md, every vocabulary in
docs/glossary.md.

Both walks find their subjects in the source tree (modules by file, vocabularies by AST), so a
module or an enum added anywhere in the product fails here until it is documented, and a
module or enum moved to another package is still found.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dashboard", "feeds", "layouts", "callbacks", "api", "auth", "cli")
TOP_MODULES = ("app.py",)
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
GLOSSARY = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")


def product_modules() -> list[Path]:
    """Every product .py module, relative to the root; no __init__.py, no migration scripts."""
    found = [ROOT / name for name in TOP_MODULES if (ROOT / name).exists()]
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if path.name == "__init__.py" or ("migrations" in rel.parts and "versions" in rel.parts):
                continue
            found.append(path)
    return sorted(p.relative_to(ROOT) for p in found)


def dotted(rel: Path) -> str:
    return ".".join(rel.with_suffix("").parts)


# -- docs/architecture.md names every module ------------------------------------------------


def test_the_walk_finds_the_product() -> None:
    """Guards the walk itself: a broken walk would pass the next test with nothing to check."""
    names = {rel.as_posix() for rel in product_modules()}
    assert {"app.py", "cli/demo.py", "feeds/ingest.py", "callbacks/wall.py", "auth/guard.py", "api/v1.py"} <= names
    assert len(names) > 60
    assert not any(n.endswith("__init__.py") or "/versions/" in n for n in names)


def test_architecture_names_every_module() -> None:
    missing = [rel.as_posix() for rel in product_modules()
               if rel.as_posix() not in ARCHITECTURE and dotted(rel) not in ARCHITECTURE]
    assert not missing, f"docs/architecture.md does not name these modules (path or dotted name): {missing}"


def test_architecture_names_no_module_that_is_gone() -> None:
    """A path in backticks that looks like a product module must exist (moves leave no ghosts)."""
    packages = "|".join(PACKAGES)
    named = set(re.findall(rf"`((?:{packages})/[\w/]+\.py|(?:app|cli)\.py)`", ARCHITECTURE))
    gone = sorted(n for n in named if not (ROOT / n).exists())
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


def test_walk_of_one_event_names_modules_in_order() -> None:
    """The walk of one case event names each module once, producer first, the browser last."""
    section = ARCHITECTURE.split("\n## The walk of one case event\n", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"`([\w/]+\.(?:py|js))`", section)
    assert len(steps) == len(set(steps)), f"a module is named twice in the walk: {steps}"
    gone = [path for path in steps if not (ROOT / path).exists()]
    assert not gone, f"the walk names files that do not exist: {gone}"
    # By the path's tail: moving a dashboard module into a subpackage keeps the order checked.
    order = ["feeds/producer.py", "feeds/ingest.py", "feeds/contract.py", "casebook.py", "lifecycle.py",
             "feeds/follower.py", "liveview.py", "callbacks/wall.py", "wall.js"]

    def step_of(path: str) -> str | None:
        return next((tail for tail in order if path == tail or path.endswith("/" + tail)), None)

    present = [s for s in map(step_of, steps) if s is not None]
    assert present == order, f"the walk's order is {present}"


# -- docs/glossary.md has every vocabulary ---------------------------------------------------


def _definitions() -> Iterator[tuple[str, str, ast.stmt]]:
    """(dotted module, top-level name, node) of every class and assignment in the product."""
    for rel in product_modules():
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                yield dotted(rel), node.name, node
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        yield dotted(rel), target.id, node


def _base_names(node: ast.ClassDef) -> set[str]:
    return {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases if isinstance(b, ast.Name | ast.Attribute)}


# StrEnums that are no vocabulary of the domain (no standards term): a sign-in attempt's result
# (users.LoginOutcome) and a command's output format (tabular.Format).
NOT_VOCABULARY = {"LoginOutcome", "Format"}
# Vocabularies kept as dicts or lists: (module file stem, name).
DATA_VOCABULARIES = (("limits", "STAGES"), ("limits", "UNITS"), ("evalspec", "INDICATORS"))


def _load(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def enum_vocabularies() -> dict[str, type[Enum]]:
    """Every LabelledEnum subclass and every other StrEnum of the product, by class name."""
    found: dict[str, type[Enum]] = {}
    for module, name, node in _definitions():
        if isinstance(node, ast.ClassDef) and _base_names(node) & {"LabelledEnum", "StrEnum"}:
            if name in NOT_VOCABULARY or name == "LabelledEnum":
                continue
            assert name not in found, f"two enums named {name}: the glossary's headings need distinct names"
            found[name] = _load(module, name)
    return found


def data_vocabularies() -> dict[str, set[tuple[str, str, str]]]:
    """The dict vocabularies as (code, label, groups) rows, by ``stem.NAME``; groups only for
    the evaluation's indicators, whose key may mean a different figure in another group."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    for module, name, _ in _definitions():
        stem = module.rsplit(".", 1)[-1]
        if (stem, name) in DATA_VOCABULARIES:
            value = _load(module, name)
            if name == "INDICATORS":  # {group: (Indicator(key, label, measure), …)}
                groups: dict[tuple[str, str], list[str]] = {}
                for group, indicators in value.items():
                    for i in indicators:
                        groups.setdefault((i.key, i.label), []).append(group)
                out[f"{stem}.{name}"] = {(k, lab, ", ".join(g)) for (k, lab), g in groups.items()}
            else:
                out[f"{stem}.{name}"] = {(code, label, "") for code, label in value.items()}
    assert len(out) == len(DATA_VOCABULARIES), f"not found: {set(DATA_VOCABULARIES)} vs {set(out)}"
    return out


def glossary_tables() -> dict[str, list[dict[str, str]]]:
    """The code-backed tables of the glossary: heading "### `Name` …" → rows by column header."""
    tables: dict[str, list[dict[str, str]]] = {}
    for chunk in re.split(r"\n### ", GLOSSARY)[1:]:
        heading, _, body = chunk.partition("\n")
        match = re.match(r"`([\w.]+)`", heading)
        if match is None:
            continue  # a free-text section
        name = match.group(1)
        assert name not in tables, f"two glossary sections for {name}"
        lines = [ln for ln in body.split("\n## ")[0].splitlines() if ln.startswith("|")]
        assert len(lines) >= 3, f"glossary section {name} has no table"
        header = [c.strip() for c in lines[0].strip().strip("|").split("|")]
        rows = []
        for line in lines[2:]:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert len(cells) == len(header), f"{name}: a row with {len(cells)} cells: {line}"
            rows.append(dict(zip(header, cells, strict=True)))
        tables[name] = rows
    return tables


def _code(cell: str) -> str:
    match = re.fullmatch(r"`([^`]*)`", cell)
    assert match, f"a code cell must be one `code`: {cell!r}"
    return match.group(1)


def test_the_enum_walk_finds_the_vocabularies() -> None:
    names = set(enum_vocabularies())
    assert {"Stage", "EventType", "Kind", "Source", "Urgency", "Role", "DeadReason", "UserRole"} <= names
    assert "LoginOutcome" not in names


def test_glossary_has_every_enum_member() -> None:
    tables = glossary_tables()
    problems: list[str] = []
    for name, enum in enum_vocabularies().items():
        rows = tables.get(name)
        if rows is None:
            problems.append(f"no section ### `{name}`")
            continue
        labelled = all(hasattr(m, "label") for m in enum)
        want: set[tuple[str, ...]] = {(m.name, str(m.value), m.label if labelled else "") for m in enum}
        have: set[tuple[str, ...]] = set()
        for row in rows:
            if not row.get("English") or not row.get("中文"):
                problems.append(f"{name}: a row without 中文 or English: {row}")
            have.add((_code(row["member"]), _code(row["value"]), row["中文"] if labelled else ""))
        for m in sorted(want - have):
            problems.append(f"{name}: missing or different in the glossary: {m}")
        for m in sorted(have - want):
            problems.append(f"{name}: in the glossary but not in the code: {m}")
    assert not problems, "\n".join(problems)


def test_glossary_has_every_data_vocabulary() -> None:
    tables = glossary_tables()
    problems: list[str] = []
    vocabularies: Mapping[str, set[tuple[str, str, str]]] = data_vocabularies()
    for name, want in vocabularies.items():
        rows = tables.get(name)
        if rows is None:
            problems.append(f"no section ### `{name}`")
            continue
        have = {(_code(row["code"]), row["中文"], row.get("groups", "")) for row in rows}
        problems += [f"{name}: missing or different: {p}" for p in sorted(want - have)]
        problems += [f"{name}: not in the code: {p}" for p in sorted(have - want)]
        problems += [f"{name}: no English for {row['code']}" for row in rows if not row.get("English")]
    assert not problems, "\n".join(problems)


def test_glossary_has_no_table_without_code() -> None:
    """Every code-backed section is one the code has: a renamed or removed enum leaves none."""
    known = set(enum_vocabularies()) | set(data_vocabularies())
    stale = sorted(set(glossary_tables()) - known)
    assert not stale, f"docs/glossary.md has sections for vocabularies the code does not have: {stale}"
