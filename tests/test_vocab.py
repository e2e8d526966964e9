"""LabelledEnum: the public API of the vocabularies, and that their members type-check (issue 13)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dashboard.rules.lifecycle import Stage
from dashboard.rules.vocab import Kind, LabelledEnum, RegionLevel

ROOT = Path(__file__).resolve().parents[1]


def test_members_carry_value_and_label() -> None:
    assert Kind.EVENT.value == "event" and Kind.EVENT.label == "事件"
    assert Kind.EVENT == "event" and isinstance(Kind.EVENT, str)
    assert Kind.labels() == {"component": "部件", "event": "事件"}


def test_lookup_by_value_returns_the_member() -> None:
    assert Kind("component") is Kind.COMPONENT
    assert Stage("closed") is Stage.CLOSED
    assert RegionLevel("street").label == "街道(镇)"
    with pytest.raises(ValueError, match="is not a valid Kind"):
        Kind("部件")


def test_member_without_label_is_refused_when_the_class_is_built() -> None:
    with pytest.raises(TypeError, match="'x' needs a label"):
        class Broken(LabelledEnum):
            X = "x"


# Calls the product code makes (lookups by value, labels of looked-up members); before the fix
# mypy read every lookup as a call of the two-argument ``__new__`` ("Missing positional argument
# "label" in call to "UserRole"") and the code silenced it or carried the errors.
TYPED_USE = textwrap.dedent('''
    from typing import assert_type
    from dashboard.rules.lifecycle import Stage
    from dashboard.rules.vocab import Kind

    def use(raw: str) -> str:
        kind = Kind(raw)
        assert_type(kind, Kind)
        assert_type(Kind.EVENT.value, str)
        assert_type(Stage(raw).label, str)
        labels: dict[str, str] = Kind.labels()
        return Stage(raw).label + labels[raw]
''')


def test_lookups_type_check(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    use = tmp_path / "use_vocab.py"
    use.write_text(TYPED_USE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), "--python-version", "3.11", str(use)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
