"""Shared kit: the demo city served by a real app, as a command hall sees it (region walls, scenes).

A pytest plugin (registered in tests/conftest.py): the ``command_hall`` fixture needs no import;
:class:`Hall` and :func:`districts_by_load` do. The demo city (several districts, two days of
history) in the test's database, the real ingest on the test's Redis (driven by the test, its
heartbeat kept alive), the app on a werkzeug thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from dashboard.settings import Settings
from dashboard.store import scope as scopes
from dashboard.store.models import Case, Region
from dashboard.store.reference import Reference
from democitykit import build_demo
from feeds.ingest import Ingest
from feeds.producer import Producer


@dataclass
class Hall:
    """The demo city served by a real app, with an ingest the test drives."""

    url: str
    ref: Reference
    ingest: Ingest
    producer: Producer
    runtime: Any


@pytest.fixture
def command_hall(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
         demo_city_dir: Path, engine: Any) -> Iterator[Hall]:
    import app as appmod

    ref = build_demo(settings, sessions, demo_city_dir, days=2)
    ingest = Ingest(settings, sessions, redis_client, ref, consumer="t", block_ms=10)
    ingest.ensure_group()
    alive = threading.Event()
    alive.set()

    def beat() -> None:  # the feed is alive: a heartbeat every second, as a running ingest sends
        while alive.is_set():
            ingest.heartbeat()
            time.sleep(1)

    threading.Thread(target=beat, daemon=True).start()
    application = appmod.create_app(settings)
    server = make_server("127.0.0.1", 0, application.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime = application.server.extensions[appmod.EXTENSION_KEY]
    try:
        yield Hall(f"http://127.0.0.1:{server.server_port}", ref, ingest, Producer(redis_client, settings), runtime)
    finally:
        alive.clear()
        server.shutdown()
        runtime.close()


def districts_by_load(sessions: sessionmaker[Session]) -> list[tuple[str, str, int]]:
    """(code, name, open cases) of every district, busiest first."""
    with sessions() as s:
        out = []
        for code, name in s.execute(select(Region.code, Region.name).where(Region.level == "district")):
            scope = scopes.get_scope(s, code)
            n = s.scalar(select(func.count()).select_from(Case).where(
                scopes.case_condition(scope), Case.closed_at.is_(None))) or 0
            out.append((code, name, int(n)))
    return sorted(out, key=lambda d: (-d[2], d[0]))


