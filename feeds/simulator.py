"""A live producer that behaves like a city: new cases arrive, open cases move on.

``gridhall simulate`` (and ``gridhall demo``) run it. It resumes the open cases it finds in
the database, so a restarted demo keeps moving instead of leaving cases stranded.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.classification import Classification
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import OPEN, EventType, Stage
from dashboard.rules.vocab import Kind, Source
from dashboard.store.models import Case, Grid, Unit

from .behaviour import poisson
from .contract import CaseEventMessage
from .defaults import DAILY_CASES, SPEEDUP
from .producer import Producer
from .scenario import CityModel, PlannedEvent, Planner

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    case_id: str
    event: PlannedEvent


def new_event_id() -> str:
    return uuid.uuid4().hex


class CaseNumbers:
    """案件编号: local date + 5-digit daily sequence, continuing what the database has."""

    def __init__(self, sessions: sessionmaker[Session], city: CityModel) -> None:
        self.sessions = sessions
        self.tz = city.tz
        self.day = ""
        self.seq = 0

    def next(self, at: datetime) -> str:
        day = at.astimezone(self.tz).strftime("%Y%m%d")
        if day != self.day:
            self.day = day
            with self.sessions() as session:
                top = session.scalar(select(func.max(Case.number)).where(Case.number.like(f"{day}%")))
            self.seq = int(top[8:]) if top and top[8:].isdigit() else 0
        self.seq += 1
        return f"{self.day}{self.seq:05d}"


class Simulator:
    """Emit new cases at a realistic, time-of-day rate and advance open cases."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        producer: Producer,
        classification: Classification,
        city: CityModel,
        *,
        daily_cases: float = DAILY_CASES,
        speedup: float = SPEEDUP,
        seed: int | None = None,
    ) -> None:
        self.sessions = sessions
        self.producer = producer
        self.classification = classification
        self.city = city
        self.daily_cases = daily_cases
        self.speedup = speedup
        self.rng = random.Random(seed)
        self.planner = Planner(city, self.rng, speedup)
        self.numbers = CaseNumbers(sessions, city)
        self.queue: list[_Due] = []
        self._seq = itertools.count()
        self.emitted = 0
        self.known: set[str] = set()  # the cases this simulator has planned

    def schedule(self, case_id: str, plan: list[PlannedEvent]) -> None:
        self.known.add(case_id)
        for event in plan:
            heapq.heappush(self.queue, _Due(event.at, next(self._seq), case_id, event))

    def resume_open_cases(self, now: datetime, *, source: Source | None = None) -> int:
        """Plan the rest of every open case in the database (of one source), starting from ``now``.

        Cases already planned are left alone: with ``source`` it takes over the new cases another
        producer reported (the demo's 12345 bridge), as the city's case system would.
        """
        grids = {g.code: g for g in self.city.grids}
        query = (select(Case.case_id, Case.stage, Case.kind, Case.class_code, Case.source, Grid.code, Unit.code)
                 .join(Grid, Case.grid_id == Grid.id, isouter=True)
                 .join(Unit, Case.unit_id == Unit.id, isouter=True)
                 .where(Case.stage.in_([s.value for s in OPEN])))
        if source is not None:
            query = query.where(Case.source == source.value)
        with self.sessions() as session:
            rows = session.execute(query).all()
        count = 0
        for case_id, stage, kind, class_code, source_, grid_code, unit_code in rows:
            if case_id in self.known:
                continue
            grid = grids.get(grid_code or "")
            entry = self.classification.get(Kind(kind), class_code) if kind and class_code else None
            if grid is None or entry is None or stage is None:  # stage: never None among open cases
                continue
            start = now + timedelta(seconds=self.rng.uniform(5, 600) / self.speedup)
            plan = self.planner.plan_from(Stage(stage), start, entry, grid,
                                          Source(source_ or "supervisor"), unit_code)
            self.schedule(case_id, plan)
            count += 1
        return count

    def _arrivals(self, start: datetime, end: datetime) -> None:
        hours = (end - start).total_seconds() / 3600
        expected = self.planner.hourly_rate(start, self.daily_cases) * hours * self.speedup
        for _ in range(poisson(self.rng, expected)):
            at = start + (end - start) * self.rng.random()
            case_id = uuid.uuid4().hex[:20]
            self.schedule(case_id, self.planner.new_case(case_id, self.numbers.next(at), at))
        for at, surge in self.planner.surge_arrivals(start, end, self.daily_cases):
            case_id = uuid.uuid4().hex[:20]
            self.schedule(case_id, self.planner.new_case(case_id, self.numbers.next(at), at, surge))

    def step(self, now: datetime, last: datetime) -> int:
        """Plan arrivals for (last, now] and publish every event now due."""
        self._arrivals(last, now)
        due: list[CaseEventMessage] = []
        while self.queue and self.queue[0].at <= now:
            item = heapq.heappop(self.queue)
            due.append(to_message(item.case_id, item.event))
        if due:
            self.producer.publish_many(due)
            self.emitted += len(due)
        return len(due)

    def run(self, stop: threading.Event, tick: float = 0.5, adopt_every: float = 10.0) -> None:
        last = utcnow()
        adopted = time.monotonic()
        while not stop.is_set():
            stop.wait(tick)
            now = utcnow()
            try:
                if time.monotonic() - adopted >= adopt_every:  # the 12345 bridge's new cases
                    adopted = time.monotonic()
                    self.resume_open_cases(now, source=Source.HOTLINE_12345)
                self.step(now, last)
            except Exception:  # Redis away: keep the plan, try again next tick
                log.exception("simulator could not publish; retrying")
                continue
            last = now


def to_message(case_id: str, event: PlannedEvent) -> CaseEventMessage:
    fields = dict(event.fields)
    return CaseEventMessage(
        event_id=new_event_id(),
        case_id=case_id,
        type=event.type,
        occurred_at=event.at,
        **fields,
    )


__all__ = ["Simulator", "CaseNumbers", "to_message", "poisson", "EventType"]
