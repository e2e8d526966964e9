"""Where the web workers' metrics meet: prometheus-client's multiprocess mode under gunicorn.

Each gunicorn worker is its own process with its own counters; a scrape reaches one of them.
In multiprocess mode every worker writes its request timings and live-view figures to
memory-mapped files in one folder, and the worker that answers a scrape sums them all
(``api/metrics.py``), so one scrape of any worker covers every worker of the host.

prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is first imported, so
:func:`prepare` runs in gunicorn's master **before** anything imports it (``gunicorn.conf.py``
and ``gridhall serve`` call it before they import ``app``); the workers inherit the variable.
The folder is ``PROMETHEUS_MULTIPROC_DIR`` when set, else ``DATA_DIR/metrics``. The master's
hooks empty it once at start (:func:`on_starting`: counters of an earlier run would be summed
in) and drop a dead worker's live gauges (:func:`child_exit`). No import of prometheus-client
at module level here: this module is what runs before it may be imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from dashboard.settings import Settings

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(settings: Settings) -> Path:
    """Choose the folder and export it to this process and its workers; before prometheus_client is imported."""
    if "prometheus_client" in sys.modules and ENV not in os.environ:
        # Its metrics would stay per process: every scrape would see one worker only.
        raise RuntimeError("prometheus_client was imported before the multiprocess folder was set")
    path = Path(os.environ.get(ENV) or settings.data_dir / "metrics")
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    return path


def multiprocess_dir() -> Path | None:
    """The folder when this process runs under gunicorn in multiprocess mode, else None."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def on_starting(_server: Any) -> None:
    """gunicorn master, once before the first worker: forget the files of an earlier run."""
    path = multiprocess_dir()
    if path is None:
        return
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn master, after a worker exited: its live gauges go (its counters stay in the sums)."""
    if multiprocess_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def gunicorn_hooks() -> dict[str, Any]:
    """The server hooks for ``app.gunicorn_options``."""
    return {"on_starting": on_starting, "child_exit": child_exit}
