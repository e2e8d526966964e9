"""Shared kit: run ``python -m cli`` as a child process, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m cli ARGS`` from the repository root; only the given GRIDHALL_* settings apply."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          env=full, timeout=120, cwd=REPO)
