"""Build the demo's past: N days of case history up to now, written straight to SQL.

The same planner as the live simulator draws the cases; events that would happen after
``now`` are left out, and the simulator resumes those cases when it starts.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.classification import Classification
from dashboard.rules.lifecycle import LifecycleEvent
from dashboard.settings import Settings
from dashboard.store.casebook import Incoming, apply_events
from dashboard.store.cityimport import import_city
from dashboard.store.db import transaction
from dashboard.store.reference import Reference, sync_classification

from .defaults import DAILY_CASES
from .scenario import CityModel, Planner

Progress = Callable[[int, int], None]


def build_history(
    sessions: sessionmaker[Session],
    ref: Reference,
    city: CityModel,
    now: datetime,
    *,
    days: int = 30,
    daily_cases: float = DAILY_CASES,
    seed: int = 2026,
    batch_size: int = 4000,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Write ``days`` of history ending at ``now``; returns (cases, events)."""
    rng = random.Random(seed)
    planner = Planner(city, rng)
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    hours = int((now - start).total_seconds() // 3600)
    counters: dict[str, int] = {}
    batch: list[Incoming] = []
    cases = events = 0
    for h in range(hours + 1):
        hour_start = start + timedelta(hours=h)
        hour_end = min(hour_start + timedelta(hours=1), now)
        if hour_end <= hour_start:
            break
        for at, surge in planner.hour_arrivals(hour_start, hour_end, daily_cases):
            day = at.astimezone(city.tz).strftime("%Y%m%d")
            counters[day] = counters.get(day, 0) + 1
            case_id = uuid.UUID(int=rng.getrandbits(128)).hex[:20]
            plan = planner.new_case(case_id, f"{day}{counters[day]:05d}", at, surge)
            cases += 1
            for i, planned in enumerate(p for p in plan if p.at <= now):
                fields = dict(planned.fields)
                actor = fields.pop("actor", None)
                batch.append(Incoming(
                    LifecycleEvent(f"hist-{case_id}-{i}", case_id, planned.type, planned.at, fields),
                    source=fields.get("source"), actor=actor, payload={"actor": actor} if actor else {},
                ))
        if len(batch) >= batch_size:
            events += _flush(sessions, batch, ref)
            batch = []
        if progress:
            progress(h + 1, hours + 1)
    events += _flush(sessions, batch, ref)
    return cases, events


def import_with_history(settings: Settings, sessions: sessionmaker[Session], city_dir: Path, now: datetime, *,
                        days: int, daily_cases: float, seed: int | None = None) -> tuple[Reference, int, int]:
    """The city folder ``city_dir`` imported (its classification synced), then ``days`` of history up to
    ``now`` at ``daily_cases`` a day: (the reference, cases, events). The demo city of the tests'
    ``democitykit``, of tests/test_risk.py (``seed``: its work model and history, else the defaults) and
    of ``bench/sizing.py``."""
    seeds: dict[str, Any] = {} if seed is None else {"seed": seed}  # else each function's own default
    import_city(city_dir, sessions)
    scheme = Classification.from_settings(settings)
    with transaction(sessions) as s:
        sync_classification(s, scheme)
    ref = Reference.load(sessions, scheme, settings)
    with sessions() as s:
        city = CityModel.load(s, scheme, settings.tz, **seeds)
    cases, events = build_history(sessions, ref, city, now, days=days, daily_cases=daily_cases, **seeds)
    return ref, cases, events


def _flush(sessions: sessionmaker[Session], batch: list[Incoming], ref: Reference) -> int:
    if not batch:
        return 0
    with transaction(sessions) as session:
        result = apply_events(session, batch, ref)
    if result.rejected:
        first = result.rejected[0][2]
        raise RuntimeError(f"history builder produced {len(result.rejected)} bad events, e.g. {first}")
    return result.applied
