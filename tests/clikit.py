"""Shared kit for CLI tests: run ``python -m cli`` as a child process, as an operator would, on
a free local port (:func:`free_port`) when it serves.

A pytest plugin (registered in tests/conftest.py): the ``wide_console`` fixture needs no import.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def gunicorn_served(settings: Any, access_format: str, *, drop: tuple[str, ...] = (), port: int | None = None,
                    **extra_env: str) -> Iterator[tuple[str, list[str]]]:
    """The production command (``gunicorn -c gunicorn.conf.py app:server``), 2 workers on a free
    port (or ``port``: a server started again where it was) with ``settings``' database, Redis
    and data dir; yields (base URL, its output lines) once ``/healthz`` has answered 200 exactly
    once. ``drop``: environment names to leave out."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_") and k not in drop}
    env.update(GRIDHALL_DATA_DIR=str(settings.data_dir), GRIDHALL_DATABASE_URL=settings.effective_database_url,
               GRIDHALL_REDIS_PREFIX=settings.redis_prefix, GRIDHALL_PORT=str(port), GRIDHALL_WEB_WORKERS="2",
               **extra_env)
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:server",
                             "--access-logformat", access_format],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace"))

    threading.Thread(target=read, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s\n" + "".join(lines)
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=10) as resp:
                    if resp.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.3)
        yield base, lines
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a master stuck in its stop must not outlive the test
            proc.kill()
            proc.wait(timeout=10)
            raise

