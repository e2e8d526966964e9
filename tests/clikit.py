"""Shared kit for CLI tests: run ``python -m cli`` as a child process, as an operator would, on
a free local port (:func:`free_port`) when it serves.

A pytest plugin (registered in tests/conftest.py): the ``wide_console`` fixture needs no import.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process CLI's console 250 columns wide, so that tables are not wrapped."""
    import cli

    monkeypatch.setattr(cli.console, "width", 250)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server the test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m cli ARGS`` from the repository root; only the given GRIDHALL_* settings apply."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          env=full, timeout=120, cwd=REPO)
