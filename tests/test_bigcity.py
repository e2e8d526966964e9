"""bench/bigcity.py: a tiny megacity on SQLite keeps the invariants the wall benchmark relies on."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from shapely.geometry import shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dashboard.figures.overdue import overdue_stored
from dashboard.rules.classification import Classification
from dashboard.rules.codes import check_grid_in_community
from dashboard.rules.lifecycle import OPEN, EventType, LifecycleEvent
from dashboard.settings import load_settings
from dashboard.store import db
from dashboard.store.casebook import Incoming, apply_events
from dashboard.store.models import Case, Grid, Region, Unit
from dashboard.store.reference import Reference, timing_for

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bigcity():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bigcity", REPO / "bench" / "bigcity.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["bigcity"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def built(bigcity, tmp_path_factory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("bigcity") / "big.db"
    settings = load_settings(database_url=f"sqlite:///{path}", data_dir=path.parent)
    city = bigcity.build(settings, grids=500, open_cases=5_000, seed=3)
    engine = db.make_engine(settings)
    yield settings, city, engine
    engine.dispose()


def test_counts_and_codes(built) -> None:  # type: ignore[no-untyped-def]
    settings, city, engine = built
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Grid)) == 500 == city.grids
        assert s.scalar(select(func.count()).select_from(Case)) == 5_000 == city.open_cases
        communities = dict(s.execute(select(Region.id, Region.code).where(Region.level == "community")).all())
        seen = Counter()
        for code, community_id, geometry, area in s.execute(
                select(Grid.code, Grid.community_id, Grid.geometry, Grid.area_m2)):
            check_grid_in_community(code, communities[community_id])  # valid, and in its one community
            seen[code] += 1
            geom = shape(json.loads(geometry))
            assert geom.is_valid and 5_000 < area < 20_000
        assert max(seen.values()) == 1
        for _code, level, parent, geometry in s.execute(
                select(Region.code, Region.level, Region.parent_id, Region.geometry)):
            assert geometry and shape(json.loads(geometry)).is_valid
            assert (parent is None) == (level == "district")
        stages = dict(s.execute(select(Case.stage, func.count()).group_by(Case.stage)).all())
        assert set(stages) <= {st.value for st in OPEN} and stages == city.by_stage
        assert max(stages, key=stages.get) == "dispatched"
        assert s.scalar(select(func.count()).select_from(Case).where(
            Case.stage.in_(["dispatched", "suspended", "handled"]), Case.unit_id.is_(None))) == 0
        assert s.scalar(select(func.count()).select_from(Unit).where(Unit.kind == "disposal")) == 300
        assert s.scalar(select(func.count()).select_from(Case).where(
            Case.paused_at.is_not(None), Case.stage != "suspended")) == 0
        urgent = s.scalar(select(func.count()).select_from(Case).where(Case.urgency == "urgent"))
        assert 50 < urgent < 300


def test_overdue_and_baseline(bigcity, built) -> None:  # type: ignore[no-untyped-def]
    settings, city, engine = built
    timing = timing_for(settings)
    with Session(engine) as s:
        rows = overdue_stored(s, timing, city.now)
    assert sum(r.overdue for r in rows) == city.overdue > 0
    base = bigcity.group_by_baseline(engine, now=city.now, repeat=1)
    assert base["open_per_grid"]["rows"] > 100 and base["overdue_total"]["rows"] == city.overdue


def test_a_later_event_applies_incrementally(built) -> None:  # type: ignore[no-untyped-def]
    settings, city, engine = built
    sessions = db.session_factory(engine)
    ref = Reference.load(sessions, Classification.from_settings(settings), settings)
    with Session(engine) as s:
        before = s.execute(select(Case).where(Case.stage == "dispatched").limit(1)).scalar_one()
    at = max(city.now, before.last_event_at) + timedelta(minutes=5)
    event = LifecycleEvent(f"{before.case_id}:live", before.case_id, EventType.HANDLED, at, {})
    with db.transaction(sessions) as s:
        result = apply_events(s, [Incoming(event)], ref)
    assert result.applied == 1 and result.refolded == 0
    with Session(engine) as s:
        after = s.execute(select(Case).where(Case.case_id == before.case_id)).scalar_one()
    assert after.stage == "handled" and after.clock_stage == "check"
    for name in ("grid_id", "unit_id", "class_code", "kind", "number", "urgency", "reported_at", "dispatched_at",
                 "address", "lon", "lat"):
        assert getattr(after, name) == getattr(before, name), name
    assert after.on_time_handle == (at <= before.deadline_at)
    assert after.handled_at == at.astimezone(UTC)
