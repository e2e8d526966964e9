"""What the overdue-risk model (超期风险) sees of an open case, one row per case and instant.

Two ways to get the rows, one way to turn them into features:

- :func:`open_cases` — every open case now, from the ``cases`` table in one query (scoring);
- :func:`snapshots` — cases of a past period as they stood at many instants of their life,
  rebuilt from the event store (``case_events``, the truth) with the lifecycle's fold and the
  stage clocks; each with its label, whether the case went overdue later (training);
- :func:`feature_matrix` — both kinds of :class:`CaseFrame` to the same numeric matrix,
  vectorised (working time through the calendar's offsets, categories by the model's codes).

A case is **overdue** (超期) when any of its stage clocks ran past its deadline, as the wall's
overdue queue shows it. A case already overdue is not scored (its risk is 1, 已超期); the
model answers for the others "will it still go overdue before it ends?". docs/foresight.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from dashboard.rules.deadlines import CALENDAR_UNIT, CaseTimer, Timing
from dashboard.rules.lifecycle import CaseState, EventType, LifecycleEvent, Stage, canonical
from dashboard.rules.limits import STAGES
from dashboard.store.models import Case, CaseEvent, Grid, Unit
from dashboard.store.queries import OPEN_STAGES

_OPEN_VALUES = [s.value for s in OPEN_STAGES]
# How far before the window training folds cases, for their periods in 派遣 (the backlog).
QUEUE_LOOKBACK = timedelta(days=30)
_OPEN_END = timedelta(days=3650)  # a period in 派遣 not ended yet ends "never" (far ahead)
_CHUNK = 2000  # case ids per IN (...) list

# The categorical inputs and the numeric ones, in the matrix's column order.
CATEGORICAL = ("major", "minor", "unit", "clock", "area_class", "source", "urgency")
NUMERIC = ("backlog", "hour", "weekday", "stage_share", "case_share", "remaining_h", "limit_h",
           "age_h", "rework", "extension", "returned", "paused")
FEATURES = CATEGORICAL + NUMERIC
# What each input is, in the shift lead's words (docs/foresight.md, /explore's reasons).
LABELS: dict[str, str] = {
    "major": "大类", "minor": "小类", "unit": "处置单位", "clock": "所处阶段", "area_class": "网格区域类别",
    "source": "来源", "urgency": "紧急程度", "backlog": "单位当前积压", "hour": "时段",
    "weekday": "星期",
    "stage_share": "本阶段时限已用", "case_share": "全程时限已用", "remaining_h": "本阶段剩余工作时",
    "limit_h": "本阶段时限", "age_h": "已用工作时", "rework": "返工次数", "extension": "延期次数",
    "returned": "回退次数", "paused": "挂账中",
}


@dataclass
class CaseFrame:
    """Cases at instants, column-wise: the raw inputs of :func:`feature_matrix`.

    Times are naive-UTC ``datetime64[us]`` (NaT: none); strings are object arrays ("" for none).
    ``label`` (1: went overdue later) is set for training snapshots only.
    """

    case_id: np.ndarray
    at: np.ndarray
    kind: np.ndarray
    class_code: np.ndarray
    unit: np.ndarray
    clock: np.ndarray
    area_class: np.ndarray
    source: np.ndarray
    urgency: np.ndarray
    reported: np.ndarray
    deadline: np.ndarray
    limit_minutes: np.ndarray
    working: np.ndarray
    paused: np.ndarray
    rework: np.ndarray
    extension: np.ndarray
    returned: np.ndarray
    backlog: np.ndarray
    label: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.case_id.shape[0])

    def take(self, index: np.ndarray) -> CaseFrame:
        """The rows at ``index`` (a boolean mask or positions)."""
        values: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        taken: dict[str, Any] = {k: (v[index] if v is not None else None) for k, v in values.items()}
        return CaseFrame(**taken)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [v if v is not None else "" for v in values]
    return out


def _utc64(values: list[datetime | None]) -> np.ndarray:
    """Aware datetimes (None → NaT) as naive-UTC datetime64[us], without a per-value astimezone
    for values already in UTC (what the store returns)."""
    return np.array([None if v is None else (v if v.tzinfo is UTC else v.astimezone(UTC)).replace(tzinfo=None)
                     for v in values], dtype="datetime64[us]")


# -- scoring: every open case now, in one query ---------------------------------------------------
def open_cases(session: Session, now: datetime, case_id: str | None = None) -> CaseFrame:
    """Every open case with a running clock (or only ``case_id``), as it stands at ``now`` (the stored picture).

    One query: the case, its grid's area class, its unit and the unit's backlog (its cases
    in 派遣 now, waiting for 处置), the same count :func:`snapshots` rebuilds for the past.
    """
    g, u = aliased(Grid), aliased(Unit)
    backlog = (select(Case.unit_id.label("unit_id"), func.count().label("n"))
               .where(Case.stage == Stage.DISPATCHED.value, Case.unit_id.is_not(None))
               .group_by(Case.unit_id).subquery())
    rows = session.execute(
        select(Case.case_id, Case.kind, Case.class_code, u.code, Case.clock_stage, g.area_class, Case.source,
               Case.urgency, Case.reported_at, Case.deadline_at, Case.limit_minutes, Case.limit_unit,
               Case.paused_at, Case.rework_count, Case.extension_count, Case.return_count, backlog.c.n)
        .outerjoin(g, Case.grid_id == g.id).outerjoin(u, Case.unit_id == u.id)
        .outerjoin(backlog, backlog.c.unit_id == Case.unit_id)
        .where(Case.stage.in_(_OPEN_VALUES), Case.deadline_at.is_not(None),
               *([Case.case_id == case_id] if case_id is not None else []))
    ).all()
    cols = list(zip(*rows, strict=True)) if rows else [()] * 17
    n = len(rows)
    at = np.full(n, np.datetime64(now.astimezone(UTC).replace(tzinfo=None), "us"))
    paused = _utc64(list(cols[12]))
    return CaseFrame(
        case_id=_objects(list(cols[0])), at=at, kind=_objects(list(cols[1])), class_code=_objects(list(cols[2])),
        unit=_objects(list(cols[3])), clock=_objects(list(cols[4])), area_class=_objects(list(cols[5])),
        source=_objects(list(cols[6])), urgency=_objects(list(cols[7])), reported=_utc64(list(cols[8])),
        deadline=_utc64(list(cols[9])), limit_minutes=np.array([v or 0.0 for v in cols[10]], dtype=np.float64),
        working=np.array([v != CALENDAR_UNIT for v in cols[11]], dtype=bool),
        paused=~np.isnat(paused) & (paused <= at),
        rework=np.array(cols[13], dtype=np.float64), extension=np.array(cols[14], dtype=np.float64),
        returned=np.array(cols[15], dtype=np.float64),
        backlog=np.array([v or 0 for v in cols[16]], dtype=np.float64),
    )


# -- training: the past rebuilt from the event store ------------------------------------------
@dataclass
class _Rows:
    """Snapshot rows as lists while the fold runs; :meth:`frame` makes the arrays."""

    values: dict[str, list[Any]] = field(default_factory=lambda: {f.name: [] for f in fields(CaseFrame)})

    def add(self, **row: Any) -> None:
        for key, value in row.items():
            self.values[key].append(value)


def _histories(session: Session, reported_from: datetime, reported_to: datetime, known_until: datetime
               ) -> Iterator[tuple[str, list[LifecycleEvent]]]:
    """Each case reported in [reported_from, reported_to) with its events up to ``known_until``."""
    ids = list(session.scalars(select(Case.case_id).where(
        Case.reported_at >= reported_from, Case.reported_at < reported_to).order_by(Case.case_id)))
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        histories: dict[str, list[LifecycleEvent]] = {cid: [] for cid in chunk}
        for r in session.execute(
            select(CaseEvent.event_id, CaseEvent.case_id, CaseEvent.type, CaseEvent.occurred_at, CaseEvent.payload)
            .where(CaseEvent.case_id.in_(chunk), CaseEvent.occurred_at <= known_until, CaseEvent.problem.is_(None))
        ):
            histories[r.case_id].append(
                LifecycleEvent(r.event_id, r.case_id, EventType(r.type), r.occurred_at, r.payload or {}))
        yield from histories.items()


def snapshots(session: Session, timing: Timing, reported_from: datetime, reported_to: datetime,
              known_until: datetime, *, step_minutes: float = 97.0, unlabelled: bool = False) -> CaseFrame:
    """Cases reported in [reported_from, reported_to), seen every ``step_minutes`` of their life.

    Each case's history up to ``known_until`` is folded in canonical order (the lifecycle's
    fold with the stage clocks); at every instant of a fixed grid (``step_minutes`` apart,
    97 by default so the instants drift through the hours of the day) at which the case is
    open, has a running clock and has not gone overdue yet, one row: the case as it stood
    then. The rows are those the model would have scored at that instant, so open cases at
    an instant are weighted as they come (a slow case is seen more often, as on the wall).

    Label: 1 when the case went overdue (a clock judged late, or running past its deadline
    at ``known_until``). A case neither ended nor overdue by ``known_until`` has no label
    yet and gives no rows (with ``unlabelled``: its rows, label −1 — every case open at an
    instant, as scoring saw them then). The unit's backlog at each instant is counted afterwards from the
    periods the cases spent in 派遣 (the same count as :func:`open_cases`).
    """
    tz_step = timedelta(minutes=step_minutes)
    grid0 = reported_from.astimezone(UTC)
    rows = _Rows()
    labels: list[int] = []
    in_dispatch_by_unit: dict[str, list[tuple[datetime, datetime]]] = {}  # unit -> [start, end) in 派遣
    area = timing.area_classes
    # Cases reported up to QUEUE_LOOKBACK earlier are folded too, for their periods in 派遣 only:
    # the backlog of the window's first days counts them, as scoring counts every case in 派遣.
    for case_id, history in _histories(session, reported_from - QUEUE_LOOKBACK, reported_to, known_until):
        label = 0
        events = canonical(history)
        if not events:
            continue
        rows_wanted = events[0].occurred_at >= reported_from
        timer = CaseTimer(CaseState(case_id=case_id), timing)
        case_rows: list[dict[str, Any]] = []
        spans: list[tuple[str, datetime, datetime]] = []
        in_dispatch: tuple[str, datetime] | None = None
        overdue = False
        for i, event in enumerate(events):
            try:
                timer.apply(event)
            except ValueError:
                continue  # skipped by the fold, as in the casebook
            state = timer.state
            if any(v is False for v in timer.on_time.values()):
                overdue = True
            unit = state.values.get("unit_code") or ""
            if in_dispatch is not None and (state.stage is not Stage.DISPATCHED or unit != in_dispatch[0]):
                spans.append((in_dispatch[0], in_dispatch[1], event.occurred_at))
                in_dispatch = None
            if in_dispatch is None and state.stage is Stage.DISPATCHED and unit:
                in_dispatch = (unit, event.occurred_at)
            if overdue or not state.is_open or not rows_wanted:
                if not state.is_open:
                    break
                continue
            clock = timer.clock()
            if clock is None:
                continue
            # the state holds until the next event; the last one's up to known_until included
            until = events[i + 1].occurred_at if i + 1 < len(events) else known_until + timedelta(microseconds=1)
            k = max(0, -(-(event.occurred_at - grid0) // tz_step))  # first grid instant at or after the event
            t = grid0 + k * tz_step
            paused_at = clock.paused_at
            while t < until and t <= known_until:
                paused = paused_at is not None and paused_at <= t
                if not paused and t > clock.deadline_at:
                    break  # overdue from here on: no more rows of this case
                v = state.values
                case_rows.append(dict(
                    case_id=case_id, at=t, kind=v.get("kind"), class_code=v.get("class_code"), unit=unit,
                    clock=clock.stage, area_class=area.get(v.get("grid_code") or ""), source=v.get("source"),
                    urgency=v.get("urgency") or "normal", reported=state.reported_at, deadline=clock.deadline_at,
                    limit_minutes=clock.limit_minutes, working=clock.working, paused=paused,
                    rework=state.rework_count, extension=state.extension_count, returned=state.return_count,
                ))
                t += tz_step
        state = timer.state
        if in_dispatch is not None:
            spans.append((in_dispatch[0], in_dispatch[1], known_until + _OPEN_END))
        for unit, start, end in spans:
            in_dispatch_by_unit.setdefault(unit, []).append((start, end))
        if state.is_open and not overdue:
            clock = timer.clock()
            if clock is not None and (clock.paused_at is None or clock.paused_at > known_until) \
                    and known_until > clock.deadline_at:
                overdue = True
            elif not unlabelled:
                continue  # neither ended nor overdue yet: no label, no rows
            else:
                label = -1
        for row in case_rows:
            rows.add(**row)
            labels.append(label if label < 0 else int(overdue))
    v = rows.values
    at = _utc64(v["at"])
    units = _objects(v["unit"])
    return CaseFrame(
        case_id=_objects(v["case_id"]), at=at, kind=_objects(v["kind"]), class_code=_objects(v["class_code"]),
        unit=units, clock=_objects(v["clock"]), area_class=_objects(v["area_class"]), source=_objects(v["source"]),
        urgency=_objects(v["urgency"]), reported=_utc64(v["reported"]), deadline=_utc64(v["deadline"]),
        limit_minutes=np.array(v["limit_minutes"], dtype=np.float64), working=np.array(v["working"], dtype=bool),
        paused=np.array(v["paused"], dtype=bool), rework=np.array(v["rework"], dtype=np.float64),
        extension=np.array(v["extension"], dtype=np.float64), returned=np.array(v["returned"], dtype=np.float64),
        backlog=_backlog(in_dispatch_by_unit, units, at), label=np.array(labels, dtype=np.int8),
    )


def _backlog(spans: Mapping[str, list[tuple[datetime, datetime]]], units: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Each row's unit's cases in 派遣 at the row's instant: started at or before it, not ended."""
    out = np.zeros(len(units), dtype=np.float64)
    for unit, periods in spans.items():
        mine = np.flatnonzero(units == unit)
        if not mine.size:
            continue
        starts = np.sort(_utc64([s for s, _ in periods]))
        ends = np.sort(_utc64([e for _, e in periods]))
        t = at[mine]
        out[mine] = np.searchsorted(starts, t, side="right") - np.searchsorted(ends, t, side="right")
    return out


def subsample(frame: CaseFrame, limit: int, seed: int = 0) -> CaseFrame:
    """At most ``limit`` rows, drawn without replacement with ``seed`` (in their order)."""
    if len(frame) <= limit:
        return frame
    pick = np.sort(np.random.default_rng(seed).choice(len(frame), size=limit, replace=False))
    return frame.take(pick)


# -- features ----------------------------------------------------------------------------------
@dataclass
class Vocabulary:
    """The codes of the categorical inputs: the values seen in training, most frequent first.

    HistGradientBoosting takes a category as a small integer code; an unseen value is missing
    (NaN), which the trees route like the training's missing values.
    """

    codes: dict[str, dict[str, int]]

    MAX: int = 250  # HistGradientBoosting's categories per feature stay below max_bins (255)

    @classmethod
    def learn(cls, columns: Mapping[str, np.ndarray]) -> Vocabulary:
        codes: dict[str, dict[str, int]] = {}
        for name, values in columns.items():
            seen, counts = np.unique(values.astype(str), return_counts=True)
            order = sorted(zip(seen.tolist(), counts.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
            codes[name] = {value: i for i, (value, _) in enumerate(order[:cls.MAX])}
        return cls(codes)

    def encode(self, name: str, values: np.ndarray) -> np.ndarray:
        table = self.codes.get(name, {})
        seen, inverse = factorize(values)
        mapped = np.array([table.get(str(v), np.nan) for v in seen], dtype=np.float64)
        return mapped[inverse] if len(seen) else np.zeros(0)


def factorize(values: np.ndarray | list[Any]) -> tuple[list[Any], np.ndarray]:
    """The distinct values (first seen first) and each row's index among them.

    Vectorised: the values' hashes (``map(hash, …)`` runs in C, a str keeps its hash) are
    factorized as integers by numpy, then every row is checked equal to its group's first row,
    so a hash collision (or a NaN, unequal to itself) falls back to one dict pass. Several times
    faster than the dict pass, and than sorting strings (np.unique), on 100,000 rows."""
    items = values.tolist() if isinstance(values, np.ndarray) else values
    n = len(items)
    if not n:
        return [], np.zeros(0, dtype=np.int64)
    try:
        hashes = np.fromiter(map(hash, items), dtype=np.int64, count=n)
    except TypeError:  # unhashable values
        return _factorize_dict(items)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    inverse = rank[inverse.ravel()]
    firsts = first[order]
    column = np.empty(n, dtype=object)
    column[:] = items
    if not bool((column == column[firsts[inverse]]).all()):
        return _factorize_dict(items)
    return [items[i] for i in firsts.tolist()], inverse


def _factorize_dict(items: list[Any]) -> tuple[list[Any], np.ndarray]:
    index: dict[Any, int] = {}
    inverse = np.fromiter((index.setdefault(v, len(index)) for v in items), dtype=np.int64, count=len(items))
    return list(index), inverse


@dataclass
class ClassLimits:
    """A class's whole time limit (the limits of the stages it runs, summed) and its 大类, cached."""

    timing: Timing
    _cache: dict[tuple[str, str, str, str, bool], tuple[float, str]] = field(default_factory=dict)

    def of(self, kind: str, code: str, urgency: str, area_class: str, supervisor: bool) -> tuple[float, str]:
        key = (kind, code, urgency, area_class, supervisor)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        timing = self.timing
        grid = next((g for g, a in timing.area_classes.items() if a == area_class), "")
        values = {"kind": kind or None, "class_code": code or None, "urgency": urgency or "normal", "grid_code": grid}
        total = 0.0
        for stage in STAGES:
            if stage == "verify" and supervisor:
                continue
            row = timing.row_for(stage, values)
            if not row.unlimited:
                total += row.minutes(timing.calendar.minutes_per_day)
        major = ""
        if kind and code and timing.classification is not None:
            try:
                entry = timing.classification.get(kind, code)
            except ValueError:
                entry = None
            major = f"{kind}:{entry.major_code}" if entry is not None else ""
        self._cache[key] = (total, major)
        return total, major


# The raw columns that decide a row's categories and whole limit, factorized together in one pass.
_RAW = ("kind", "class_code", "urgency", "area_class", "source", "unit", "clock")


@dataclass
class _Distinct:
    """The distinct combinations of a frame's :data:`_RAW` columns: per combination its
    categorical values (``cats``, object arrays) and whole limit (``total``); ``inverse`` maps
    each row to its combination. A city's open cases share a few thousand combinations at most,
    so everything per combination is cheap and the rows are only indexed (numpy ``take``)."""

    inverse: np.ndarray
    cats: dict[str, np.ndarray]
    total: np.ndarray


def _distinct(frame: CaseFrame, limits: ClassLimits) -> _Distinct:
    # each column factorized on its own (vectorised), the codes combined column by column
    n = len(frame)
    combined = np.zeros(n, dtype=np.int64)
    for name in _RAW:
        seen, codes = factorize(getattr(frame, name))
        _, combined = np.unique(combined * len(seen) + codes, return_inverse=True)
        combined = combined.ravel()
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    columns = [getattr(frame, name)[first].tolist() for name in _RAW]
    keys = list(zip(*columns, strict=True)) if n else []
    looked = [limits.of(kind, code, urgency, area, source == "supervisor")
              for kind, code, urgency, area, source, _unit, _clock in keys]
    cats: dict[str, np.ndarray] = {}
    for name, values in (
        ("major", [m for _, m in looked]),
        ("minor", [f"{key[0]}:{key[1]}" for key in keys]),
        ("unit", [key[5] for key in keys]), ("clock", [key[6] for key in keys]),
        ("area_class", [key[3] for key in keys]), ("source", [key[4] for key in keys]),
        ("urgency", [key[2] for key in keys]),
    ):
        column = np.empty(len(keys), dtype=object)
        column[:] = values
        cats[name] = column
    return _Distinct(inverse, cats, np.array([t for t, _ in looked], dtype=np.float64))


def raw_categories(frame: CaseFrame, limits: ClassLimits) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The categorical columns as strings, and each row's whole limit (working minutes)."""
    d = _distinct(frame, limits)
    if not len(frame):
        return {name: np.empty(0, dtype=object) for name in CATEGORICAL}, np.empty(0, dtype=np.float64)
    return {name: d.cats[name][d.inverse] for name in CATEGORICAL}, d.total[d.inverse]


def _local_hour_weekday(at: np.ndarray, timing: Timing) -> tuple[np.ndarray, np.ndarray]:
    """Local hour and weekday (0 = Monday) of each instant, the zone's offset taken per UTC hour."""
    hours = at.astype("datetime64[h]")
    seen, inverse = np.unique(hours, return_inverse=True)
    tz = timing.calendar.tz
    offsets = np.array([int(datetime.fromisoformat(str(h)).replace(tzinfo=UTC).astimezone(tz)
                            .utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
                        for h in seen], dtype=np.int64)
    local = at.astype("datetime64[m]") + offsets[inverse].astype("timedelta64[m]")
    hour = (local.astype("datetime64[h]").astype(np.int64) % 24).astype(np.float64)
    # 1970-01-01 was a Thursday (weekday 3)
    weekday = ((local.astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(np.float64)
    return hour, weekday


def feature_matrix(frame: CaseFrame, timing: Timing, vocabulary: Vocabulary, limits: ClassLimits | None = None
                   ) -> np.ndarray:
    """The model's input: one row per case and instant, the columns of :data:`FEATURES`."""
    n = len(frame)
    limits = limits or ClassLimits(timing)
    out = np.empty((n, len(FEATURES)), dtype=np.float64)
    if not n:
        return out
    # one pass over the rows for all the categories; codes are looked up per distinct combination
    d = _distinct(frame, limits)
    for j, name in enumerate(CATEGORICAL):
        out[:, j] = vocabulary.encode(name, d.cats[name])[d.inverse]
    whole = d.total[d.inverse]
    cal = timing.calendar
    # a 挂账 case's clock stands still at its pause; its remaining time is frozen there
    off_at = cal.offsets(frame.at)
    off_deadline = cal.offsets(frame.deadline)
    calendar_min = (frame.deadline - frame.at).astype("timedelta64[us]").astype(np.float64) / 60e6
    remaining = np.where(frame.working, off_deadline - off_at, calendar_min)
    limit = frame.limit_minutes
    with np.errstate(divide="ignore", invalid="ignore"):
        stage_share = np.where(limit > 0, 1.0 - remaining / limit, np.nan)
        age = off_at - cal.offsets(frame.reported)
        case_share = np.where(whole > 0, age / whole, np.nan)
    hour, weekday = _local_hour_weekday(frame.at, timing)
    numeric = {
        "backlog": frame.backlog, "hour": hour, "weekday": weekday, "stage_share": stage_share,
        "case_share": case_share, "remaining_h": remaining / 60, "limit_h": limit / 60, "age_h": age / 60,
        "rework": frame.rework, "extension": frame.extension, "returned": frame.returned,
        "paused": frame.paused.astype(np.float64),
    }
    for j, name in enumerate(NUMERIC, start=len(CATEGORICAL)):
        out[:, j] = numeric[name]
    return out

