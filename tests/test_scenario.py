"""The simulated city behaves like the city figures in the reference, and only legally."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.rules import classification
from dashboard.rules.lifecycle import LifecycleEvent, fold
from dashboard.store.models import Case, CaseEvent
from dashboard.store.reference import Reference
from feeds.history import build_history
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM, DEAD_LETTER_STREAM
from feeds.producer import Producer
from feeds.scenario import WATER_CLASS, Planner
from feeds.simulator import Simulator

TZ = ZoneInfo("Asia/Shanghai")
SCHEME = classification.load("gbt47678-2026")
pytestmark = pytest.mark.slow


def test_case_mix_follows_the_city_figures(demo_city_model) -> None:  # type: ignore[no-untyped-def]
    planner = Planner(demo_city_model, random.Random(1))
    at = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 local, a Tuesday
    plans = [planner.new_case(f"c{i}", f"2026112400{i:03d}", at) for i in range(4000)]
    first = [p[0].fields for p in plans]
    sources = Counter(f["source"] for f in first)
    assert 0.93 < sources["supervisor"] / len(first) < 0.97
    names = Counter(SCHEME.require(f["kind"], f["class_code"]).minor_name for f in first)
    top = [name for name, _ in names.most_common(2)]
    assert top == ["非法小广告", "暴露垃圾"]
    grids = {g.code: g for g in demo_city_model.grids}
    for f in first:
        wet = bool(WATER_CLASS.search(SCHEME.require(f["kind"], f["class_code"]).minor_name))
        assert wet == grids[f["grid_code"]].water, f
    # Hot spots are hot: the 10 busiest grids hold far more than their share.
    per_grid = Counter(f["grid_code"] for f in first)
    assert sum(n for _, n in per_grid.most_common(10)) > 10 * 10 * len(first) / len(demo_city_model.grids)


def test_every_planned_case_is_a_legal_history(demo_city_model) -> None:  # type: ignore[no-untyped-def]
    planner = Planner(demo_city_model, random.Random(2))
    at = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    stages = Counter()
    for i in range(1500):
        plan = planner.new_case(f"c{i}", f"x{i}", at)
        events = [LifecycleEvent(f"c{i}-{n}", f"c{i}", p.type, p.at, p.fields) for n, p in enumerate(plan)]
        state, rejected = fold(f"c{i}", events)
        assert rejected == [], rejected
        assert [p.at for p in plan] == sorted(p.at for p in plan)
        stages[state.stage.value] += 1
    assert stages["closed"] > 0.9 * sum(stages.values())
    assert stages["rejected"] > 0 and stages["suspended"] > 0


def test_patrol_rhythm_day_night_weekday_weekend(demo_city_model) -> None:  # type: ignore[no-untyped-def]
    planner = Planner(demo_city_model, random.Random(3))
    day = planner.hourly_rate(datetime(2026, 11, 24, 10, tzinfo=TZ), 300)
    night = planner.hourly_rate(datetime(2026, 11, 24, 3, tzinfo=TZ), 300)
    weekend = planner.hourly_rate(datetime(2026, 11, 28, 10, tzinfo=TZ), 300)
    assert day > 10 * night
    assert 0.4 * day < weekend < 0.8 * day
    total = sum(planner.hourly_rate(datetime(2026, 11, 24, h, tzinfo=TZ), 300) for h in range(24))
    assert total == pytest.approx(300, rel=0.01)


def test_history_is_written_and_open_cases_resume(sessions, demo_city_model, settings, redis_client) -> None:  # type: ignore[no-untyped-def]
    ref = Reference.load(sessions, SCHEME)
    now = datetime.now(UTC)
    n_cases, n_events = build_history(sessions, ref, demo_city_model, now, days=2, daily_cases=200)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == n_cases
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == n_events
        assert s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.problem.is_not(None))) == 0
        assert s.scalar(select(func.max(CaseEvent.occurred_at))) <= now
    # The rate follows the week (fewer on a weekend or holiday), so the bounds follow the
    # planner's own expectation for these 48 hours rather than a fixed weekday count.
    planner = Planner(demo_city_model, random.Random(0))
    start = (now - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    expected = sum(planner.hourly_rate(start + timedelta(hours=h), 200) for h in range(49))
    assert 0.75 * expected < n_cases < 1.25 * expected, (n_cases, expected)

    producer = Producer(redis_client, settings)
    sim = Simulator(sessions, producer, SCHEME, demo_city_model, daily_cases=200, speedup=1000, seed=5)
    resumed = sim.resume_open_cases(now)
    assert resumed > 0
    # Within the ingest's 10-minute tolerance for clock skew; speedup compresses the loop.
    emitted = sim.step(now + timedelta(minutes=5), now)
    assert emitted > 0 and redis_client.xlen(settings.key(CASE_STREAM)) == emitted
    ingest = Ingest(settings, sessions, redis_client, ref, consumer="t", block_ms=10)
    ingest.ensure_group()
    while ingest.step():
        pass
    assert ingest.stats.dead == 0, redis_client.xrange(settings.key(DEAD_LETTER_STREAM))
    assert ingest.stats.applied == emitted
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.problem.is_not(None))) == 0
