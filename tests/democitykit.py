"""Shared kit: the demo city (dashboard.demo.democity) imported with a few days of history.

A pytest plugin (registered in tests/conftest.py): the ``demo_city_dir`` fixture needs no
import; :func:`build_demo` does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dashboard.demo.democity import generate_city
from dashboard.rules import classification
from dashboard.settings import Settings
from dashboard.store.cityimport import import_city
from dashboard.store.reference import Reference
from feeds.history import import_with_history
from feeds.scenario import CityModel


@pytest.fixture(scope="session")
def demo_city_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo city's import folder, generated once for the run (about 8 s on 2 idle cores).

    Session-scoped, not per module: the generator is deterministic (a fixed seed) and the tests
    only read the folder (import_city, build_demo), so ten modules share one copy."""
    out = tmp_path_factory.mktemp("demo-city")
    generate_city(out)
    return out


def build_demo(settings: Settings, sessions: sessionmaker[Session], city_dir: Path, days: int = 4, *,
               daily: float = 300, now: datetime | None = None) -> Reference:
    """The demo city imported, with ``days`` of history up to ``now`` at ``daily`` cases a day."""
    ref, _cases, _events = import_with_history(settings, sessions, city_dir,
                                               now or datetime.now(UTC) - timedelta(minutes=1),
                                               days=days, daily_cases=daily)
    return ref


@pytest.fixture
def demo_city_model(sessions: sessionmaker[Session], demo_city_dir: Path) -> CityModel:
    """The demo city imported (no history) and its simulator model: the standard classification, Asia/Shanghai."""
    import_city(demo_city_dir, sessions)
    with sessions() as s:
        return CityModel.load(s, classification.load("gbt47678-2026"), ZoneInfo("Asia/Shanghai"))
