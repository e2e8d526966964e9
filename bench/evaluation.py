"""综合考评 of a megacity month: every object kind evaluated in PostgreSQL, against a baseline.

    python bench/evaluation.py                         # 100k grids, 1,000,000 cases in October 2026
    python bench/evaluation.py --cases 100000 --grids 10000   # 1/10
    python bench/evaluation.py --keep                  # keep the schema, print its URL
    python bench/evaluation.py --smoke                 # tiny (seconds): checks it runs

Builds (in a fresh schema of ``--pg-url``'s database, dropped afterwards; default
``benchkit.DEFAULT_PG_URL``, created when missing, never CI's ``test``) the megacity of
``bench/bigcity.py`` — regions, unit grids, units — plus staff (a supervisor per ~100 grids
with those grids as beat, acceptors, shift leads, dispatchers) and one month of case history:
``--cases`` cases reported in October 2026 (local time), each with the events of its path
through the loop (~6 per case: 上报, 核实 for public reports, 立案, 派遣, 回退 and re-dispatch, 挂账, 处置,
返工, 核查, 结案, 作废, 不予立案, 自处理, and call-backs for a fifth of the closed cases), stored as the
casebook stores them: the case rows with their stage, timestamps, counters, satisfaction and
on-time flags (drawn from the synthetic times with plain calendar limits — the bench times
queries, not the fold), and the events in ``case_events``. Events later than "now" (2026-11-05
12:00) are left out, so cases reported at the end of the month are still open, as in a real
report.

Then it times :func:`dashboard.figures.evaluation.evaluate` for every object kind in the city scope
and in one district (median of 3 runs, plus the first), and, as the baseline, the same
figures computed the naive way for two kinds: the period's rows fetched from SQL and counted
per case in Python (regions: per-grid roll-up; supervisors: per-event loop). The baseline also
checks that both give the same figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402
from bigcity import _secondary_ddl, build  # noqa: E402
from dashboard.figures.evaluation import ObjectKind, Period, evaluate  # noqa: E402
from dashboard.rules.evalspec import load_weights  # noqa: E402
from dashboard.rules.vocab import PUBLIC_SOURCES  # noqa: E402
from dashboard.settings import load_settings  # noqa: E402
from dashboard.store import db  # noqa: E402
from dashboard.store.models import Grid, Region, Unit  # noqa: E402
from dashboard.store.scope import CITY, get_scope  # noqa: E402

US = 1_000_000
MIN = 60 * US
HOUR = 60 * MIN
NULL = "\\N"
PUBLIC = sorted(s.value for s in PUBLIC_SOURCES)


def _us(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * US


def _ts(values: np.ndarray) -> np.ndarray:
    """µs since the epoch → COPY text (naive UTC ISO); NaT (−1) → \\N."""
    out = np.datetime_as_string(values.astype("datetime64[us]"), unit="us").astype(object)
    out[values < 0] = NULL
    return out


class Month:
    """The synthetic month: case columns and the events, as numpy arrays."""

    def __init__(self, n: int, grid_ids: np.ndarray, grid_sup: np.ndarray, units: list[tuple[int, str]],
                 staff: dict[str, list[str]], start_us: int, end_us: int, now_us: int, seed: int,
                 prefix: str = "ev") -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.prefix = prefix  # of case and event ids: unique per generated month
        w = rng.lognormal(0, 0.9, len(grid_ids))
        gi = rng.choice(len(grid_ids), size=n, p=w / w.sum())
        self.grid = grid_ids[gi]
        sup = np.array(staff["supervisor"], dtype=object)[grid_sup[gi]]
        pick = lambda role: np.array(staff[role], dtype=object)[rng.integers(0, len(staff[role]), n)]  # noqa: E731
        acc, lead, disp = pick("acceptor"), pick("shift_lead"), pick("dispatcher")
        lead2, disp2 = pick("shift_lead"), pick("dispatcher")
        u = rng.integers(0, len(units), n)
        u2 = rng.integers(0, len(units), n)
        self.unit = np.array([uid for uid, _ in units])[u2]  # the last 派遣 target
        ucode = np.array([c for _, c in units], dtype=object)
        first_unit, last_unit = ucode[u], ucode[u2]

        public = rng.random(n) < 0.05
        self.source = np.where(public, np.array(PUBLIC, dtype=object)[rng.integers(0, len(PUBLIC), n)], "supervisor")
        rep = start_us + rng.integers(0, end_us - start_us, n)
        exp = lambda mean: (rng.exponential(mean, n)).astype(np.int64)  # noqa: E731
        rejected = rng.random(n) < 0.02
        selfh = ~public & ~rejected & (rng.random(n) < 0.03)
        main = ~rejected & ~selfh
        voided = main & (rng.random(n) < 0.01)
        returned = main & ~voided & (rng.random(n) < 0.025)
        suspended = main & ~voided & (rng.random(n) < 0.01)
        rework = main & ~voided & ~suspended & (rng.random(n) < 0.04)
        ver = np.where(public, rep + exp(40 * MIN), -1)
        fil = np.where(main, np.where(public, ver, rep) + exp(15 * MIN), -1)
        dis1 = fil + exp(15 * MIN)
        ret = np.where(returned, dis1 + exp(HOUR), -1)
        dis2 = np.where(returned, ret + exp(20 * MIN), dis1)
        han1 = dis2 + rng.lognormal(np.log(5 * HOUR), 0.9, n).astype(np.int64)
        rw = np.where(rework, han1 + exp(HOUR), -1)
        han2 = np.where(rework, rw + rng.lognormal(np.log(3 * HOUR), 0.7, n).astype(np.int64), han1)
        chk = han2 + exp(45 * MIN)
        clo = np.where(selfh, rep + exp(40 * MIN), chk + exp(10 * MIN))
        rated = (main | selfh) & ~voided & ~suspended & (rng.random(n) < 0.2)
        rat = clo + rng.integers(HOUR * 18, HOUR * 72, n)
        score = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.04, 0.06, 0.15, 0.35, 0.40])

        ev: list[tuple[np.ndarray, str, np.ndarray, np.ndarray]] = []  # (mask, type, at, actor)

        def add(mask: np.ndarray, type_: str, at: np.ndarray, actor: np.ndarray) -> None:
            ev.append((mask & (at <= now_us), type_, at, actor))

        everyone = np.ones(n, dtype=bool)
        reporter = np.where(public, acc, sup)
        add(everyone, "reported", rep, reporter)
        add(public, "verified", ver, sup)
        add(rejected, "rejected", np.where(public, ver, rep) + exp(20 * MIN), lead)
        add(selfh, "self_handled", rep + exp(10 * MIN), sup)
        add(selfh, "closed", clo, lead2)
        add(main, "filed", fil, lead)
        add(main & ~voided, "dispatched", dis1, disp)
        add(voided, "voided", fil + exp(20 * MIN), lead)
        add(returned, "returned", ret, first_unit)
        add(returned, "dispatched", dis2, disp2)
        add(suspended, "suspended", dis2 + exp(2 * HOUR), disp2)
        live = main & ~voided & ~suspended
        add(live, "handled", han1, last_unit)
        add(rework, "rework", rw, sup)
        add(rework, "handled", han2, last_unit)
        add(live, "checked_ok", chk, sup)
        add(live, "closed", clo, lead2)
        add(rated, "rated", rat, acc)
        self.events = ev
        # What the fold stores: the time of the case's latest event (the evaluation's period bound, 0012).
        self.last_event_at = np.maximum.reduce([np.where(mask, at, -1) for mask, _t, at, _a in ev])

        # The case rows the fold would store (what happened by now).
        def by_now(at: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return np.where(mask & (at >= 0) & (at <= now_us), at, -1)

        self.reported_at = rep
        self.verified_at = by_now(ver, public)
        self.filed_at = by_now(fil, main)
        self.dispatched_at = by_now(dis2, main & ~voided)
        self.returned = returned & (ret <= now_us)
        self.handled_at = np.where(selfh, by_now(rep + 1, selfh), by_now(han2, live))
        self.checked_at = by_now(chk, live)
        closed_at = np.where(selfh | live, by_now(clo, selfh | live), -1)
        void_at = by_now(fil + 1, voided)
        rej_at = by_now(rep + 1, rejected)
        self.closed_at = np.maximum.reduce([closed_at, void_at, rej_at])
        self.rated_at = by_now(rat, rated & (closed_at >= 0))
        self.satisfaction = np.where(self.rated_at >= 0, score, -1)
        self.rework = (rework & (rw <= now_us)).astype(int)
        self.paused_at = by_now(dis2 + 1, suspended)
        stage = np.full(n, "reported", dtype=object)
        for mask, name in ((self.verified_at >= 0, "verified"), (self.filed_at >= 0, "filed"),
                           (self.dispatched_at >= 0, "dispatched"), (self.handled_at >= 0, "handled"),
                           (self.checked_at >= 0, "checked"), (closed_at >= 0, "closed"),
                           (self.paused_at >= 0, "suspended"), (void_at >= 0, "voided"), (rej_at >= 0, "rejected")):
            stage[mask] = name
        self.stage = stage
        # On-time flags with plain calendar limits: 1 h per step, 24 h for 处置, 2 h for 核查.
        def flag(done: np.ndarray, took: np.ndarray, limit: int) -> np.ndarray:
            return np.where(done >= 0, np.where(took <= limit, "t", "f"), NULL).astype(object)

        self.on_time = {
            "verify": flag(self.verified_at, ver - rep, HOUR),
            "file": flag(self.filed_at, fil - np.where(public, ver, rep), HOUR),
            "dispatch": flag(self.dispatched_at, dis1 - fil, HOUR),
            "handle": flag(self.handled_at, np.maximum(han1 - dis2, np.where(rework, han2 - rw, 0)), 24 * HOUR),
            "check": flag(self.checked_at, chk - han2, 2 * HOUR),
            "close": flag(np.where(selfh | live, closed_at, -1), clo - np.where(selfh, rep, chk), HOUR),
        }

    def case_copy(self, first_id: int) -> tuple[tuple[str, ...], list[bytes]]:
        cols = ("id", "case_id", "source", "kind", "class_code", "grid_id", "unit_id", "urgency", "stage",
                "reported_at", "verified_at", "filed_at", "dispatched_at", "handled_at", "checked_at",
                "closed_at", "last_event_at", "rework_count", "return_count", "extension_count", "satisfaction",
                "rated_at", "paused_at", *(f"on_time_{k}" for k in self.on_time))
        n = self.n
        ids = np.arange(first_id, first_id + n)
        unit = np.where(self.dispatched_at >= 0, self.unit.astype(object), NULL)
        sat = np.where(self.satisfaction > 0, self.satisfaction.astype(object), NULL)
        columns = [ids.astype(str), [f"{self.prefix}{i:07d}" for i in range(n)], self.source, ["event"] * n,
                   ["06010"] * n,
                   self.grid.astype(str), unit.astype(str), ["normal"] * n, self.stage,
                   *(_ts(a) for a in (self.reported_at, self.verified_at, self.filed_at, self.dispatched_at,
                                      self.handled_at, self.checked_at, self.closed_at, self.last_event_at)),
                   self.rework.astype(str), self.returned.astype(int).astype(str), ["0"] * n, sat.astype(str),
                   _ts(self.rated_at), _ts(self.paused_at), *self.on_time.values()]
        return cols, _chunks(columns)

    EVENT_COLUMNS = ("event_id", "case_id", "type", "occurred_at", "received_at", "actor", "payload")

    def event_count(self) -> int:
        return sum(int(mask.sum()) for mask, *_ in self.events)

    def event_copy(self, received: str, size: int = 200_000) -> Any:
        """COPY text of the events, one type and slice at a time (bounded memory)."""
        p = self.prefix
        for k, (mask, type_, at, actor) in enumerate(self.events):
            idx = np.flatnonzero(mask)
            for lo in range(0, len(idx), size):
                part = idx[lo:lo + size]
                stamps = _ts(at[part])
                yield ("\n".join(f"{p}{i:07d}-{k:02d}\t{p}{i:07d}\t{type_}\t{t}\t{received}\t{a}\t{{}}"
                                  for i, t, a in zip(part, stamps, actor[part], strict=False)) + "\n").encode()

    def id_copy(self, size: int = 200_000) -> Any:
        """COPY text of ``case_event_ids`` (event_id, occurred_at): what the ingest stores beside each event."""
        p = self.prefix
        for k, (mask, _type, at, _actor) in enumerate(self.events):
            idx = np.flatnonzero(mask)
            for lo in range(0, len(idx), size):
                part = idx[lo:lo + size]
                yield ("\n".join(f"{p}{i:07d}-{k:02d}\t{t}" for i, t in zip(part, _ts(at[part]), strict=False))
                       + "\n").encode()


def _chunks(columns: list[Any], size: int = 200_000) -> list[bytes]:
    rows = list(zip(*columns, strict=False))
    return [("\n".join("\t".join(map(str, r)) for r in rows[lo:lo + size]) + "\n").encode()
            for lo in range(0, len(rows), size)]


def _copy(conn: Any, table: str, cols: tuple[str, ...], chunks: Any) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
        for chunk in chunks:
            copy.write(chunk)


def populate(settings: Any, n_cases: int, n_grids: int, seed: int, say: Callable[[str], None],
             months: tuple[tuple[int, int], ...] = ((2026, 10),),
             prepare: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """The city (bigcity.build, a handful of open cases), staff, and ``n_cases`` cases a month of ``months``.

    ``prepare(settings)`` runs once the schema is built, before the history is written (the
    history bench turns the table back into today's unpartitioned one, or makes its partitions).
    """
    t0 = time.perf_counter()
    build(settings, n_grids, 1000, seed, progress=lambda m: say("  city " + m))
    if prepare is not None:
        prepare(settings)
    engine = db.make_engine(settings)
    with engine.begin() as conn:
        grids = np.array(conn.execute(select(Grid.id).order_by(Grid.code)).scalars().all())
        units = [(r.id, r.code) for r in conn.execute(select(Unit.id, Unit.code).where(Unit.kind == "disposal"))]
        streets = conn.execute(select(Region.id).where(Region.level == "street").order_by(Region.code)).scalars().all()
        n_sup = max(1, len(grids) // 100)
        staff = {"supervisor": [f"JDY{i:05d}" for i in range(n_sup)], "acceptor": [f"SLY{i:03d}" for i in range(30)],
                 "shift_lead": [f"ZBZ{i:03d}" for i in range(12)], "dispatcher": [f"PQY{i:03d}" for i in range(20)]}
        people = [f"{code}\t员工{code}\t{role}\t"
                  f"{streets[i * len(streets) // n_sup] if role == 'supervisor' else NULL}"
                  for role, codes in staff.items() for i, code in enumerate(codes)]
        _copy(conn, "people", ("code", "name", "role", "region_id"), [("\n".join(people) + "\n").encode()])
        pid: dict[str, int] = dict(conn.execute(text("SELECT code, id FROM people")).all())
        grid_sup = np.arange(len(grids)) * n_sup // len(grids)  # beats: runs of ~100 grids in code order
        beat = [f"{pid[staff['supervisor'][s]]}\t{g}" for g, s in zip(grids, grid_sup, strict=False)]
        _copy(conn, "person_grids", ("person_id", "grid_id"), [("\n".join(beat) + "\n").encode()])
        first_id = conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM cases")).scalar_one()
        with_ids = conn.execute(text("SELECT to_regclass('case_event_ids') IS NOT NULL")).scalar_one()
    say(f"city and staff: {time.perf_counter() - t0:.1f}s ({len(grids):,} grids, {len(units)} units, "
        f"{sum(map(len, staff.values())):,} staff)")

    tz = settings.tz
    last = max(months)
    now = datetime(*_next(*last), 5, 12, tzinfo=tz)
    n_events = 0
    t2 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        ddl = {t: _secondary_ddl(conn, t) for t in ("cases", "case_events")}
        for drops, _ in ddl.values():
            for stmt in drops:
                conn.execute(text(stmt))
        if with_ids:  # its primary key is made again once the ids are in (faster than kept up row by row)
            conn.execute(text("ALTER TABLE case_event_ids DROP CONSTRAINT pk_case_event_ids"))
        for k, (year, month) in enumerate(sorted(months)):
            t1 = time.perf_counter()
            start = _us(datetime(year, month, 1, tzinfo=tz))
            end = _us(datetime(*_next(year, month), 1, tzinfo=tz))
            m = Month(n_cases, grids, grid_sup, units, staff, start, end, _us(now), seed + k,
                      prefix="ev" if len(months) == 1 else f"m{year % 100:02d}{month:02d}-")
            case_cols, case_chunks = m.case_copy(first_id)
            first_id += n_cases
            _copy(conn, "cases", case_cols, case_chunks)
            _copy(conn, "case_events", Month.EVENT_COLUMNS,
                  m.event_copy(datetime.now(UTC).replace(tzinfo=None).isoformat()))
            if with_ids:
                _copy(conn, "case_event_ids", ("event_id", "occurred_at"), m.id_copy())
            n_events += m.event_count()
            say(f"month {year}-{month:02d} generated and written: {time.perf_counter() - t1:.1f}s "
                f"({n_cases:,} cases, {m.event_count():,} events)")
        if with_ids:
            conn.execute(text("ALTER TABLE case_event_ids ADD CONSTRAINT pk_case_event_ids PRIMARY KEY (event_id)"))
        for _, creates in ddl.values():
            for stmt in creates:
                # A partitioned table's index reads ON ONLY the parent; made on the parent, every partition gets it.
                conn.execute(text(stmt.replace(" ON ONLY ", " ON ")))
        conn.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        tables = ["cases", "case_events", "people", "person_grids"] + (["case_event_ids"] if with_ids else [])
        for table in tables:
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    say(f"history written and indexed: {time.perf_counter() - t2:.1f}s ({n_events:,} events)")
    engine.dispose()
    return {"now": now, "events": n_events}


def _next(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


# -- the baseline: fetch the rows, count per case in Python -----------------------------------
def naive_districts(session: Session, period: Period, now: datetime) -> dict[str, tuple[int, int, int, int]]:
    """District → (立案数, 应结案数, 结案数, 按期结案数), per case in Python."""
    end = min(period.end, now)
    # Only a region's parent is looked up: community → street → district (a district has none).
    parent = {r: p for r, p in session.execute(select(Region.id, Region.parent_id)).all() if p is not None}
    code = dict(session.execute(select(Region.id, Region.code)).all())
    community = dict(session.execute(select(Grid.id, Grid.community_id)).all())
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    rows = session.execute(text(
        "SELECT grid_id, stage, closed_at, paused_at, on_time_dispatch, on_time_handle, on_time_check, "
        "on_time_close FROM cases WHERE filed_at >= :s AND filed_at < :e AND grid_id IS NOT NULL"),
        {"s": period.start.replace(tzinfo=None), "e": end.astimezone(UTC).replace(tzinfo=None)})
    e = end.astimezone(UTC).replace(tzinfo=None)
    for grid_id, stage, closed_at, paused_at, *flags in rows:
        acc = out[code[parent[parent[community[grid_id]]]]]
        acc[0] += 1
        if (stage == "voided" and closed_at < e) or (stage == "suspended" and paused_at < e):
            continue
        acc[1] += 1
        if stage == "closed" and closed_at < e:
            acc[2] += 1
            if all(f is not False for f in flags):
                acc[3] += 1
    return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items()}


def naive_supervisors(session: Session, period: Period, now: datetime) -> dict[str, tuple[int, int, int]]:
    """Supervisor → (上报数, 应核实数, 应核查数), per event in Python."""
    end = min(period.end, now).astimezone(UTC).replace(tzinfo=None)
    sups = set(session.execute(text("SELECT code FROM people WHERE role = 'supervisor'")).scalars())
    seen: dict[str, tuple[set[str], set[str], set[str]]] = defaultdict(lambda: (set(), set(), set()))
    rows = session.execute(text(
        "SELECT e.actor, e.type, e.case_id FROM case_events e WHERE e.occurred_at >= :s AND e.occurred_at < :e "
        "AND e.problem IS NULL AND e.type IN ('reported', 'verified', 'checked_ok', 'rework')"),
        {"s": period.start.astimezone(UTC).replace(tzinfo=None), "e": end})
    for actor, type_, case_id in rows:
        if actor in sups:
            sets = seen[actor]
            sets[0 if type_ == "reported" else 1 if type_ == "verified" else 2].add(case_id)
    return {a: (len(s[0]), len(s[1]), len(s[2])) for a, s in seen.items()}


def timed(fn: Callable[[], Any], runs: int = 3) -> tuple[float, float, Any]:
    """(first, median of ``runs``) seconds and the last result."""
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times[0], statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    benchkit.add_megacity(parser, seed=7)
    parser.add_argument("--keep", action="store_true", help="keep the schema and print its URL")
    parser.add_argument("--url", help="reuse a database built before with --keep (skip the build)")
    benchkit.add_smoke(parser, cases=3000, grids=400)
    args = benchkit.parse(parser)
    if sa.engine.make_url(args.pg_url).database == "test":
        parser.error("never the database 'test' (CI's); use another one, e.g. …/test_bench")
    say = lambda m: print(m, flush=True)  # noqa: E731

    schema = admin = None
    if args.url:
        url = args.url
    else:
        admin, schema, url = benchkit.pg_schema(args.pg_url, "gh_evalbench")
    settings = load_settings(database_url=url)
    now = datetime(2026, 11, 5, 12, tzinfo=settings.tz)
    engine = None
    try:
        if not args.url:
            built = populate(settings, args.cases, args.grids, args.seed, say)
            now = built["now"]
        engine = db.make_engine(settings)
        period = Period.month(2026, 10, settings.tz)
        weights = load_weights()
        with Session(engine) as s:
            n_cases = s.execute(text("SELECT count(*) FROM cases")).scalar_one()
            n_events = s.execute(text("SELECT count(*) FROM case_events")).scalar_one()
            district = s.execute(select(Region.code).where(Region.level == "district")
                                 .order_by(Region.code)).scalars().first()
            scopes = {"city": CITY, f"district {district}": get_scope(s, district)}
        print(f"\n{n_cases:,} cases, {n_events:,} events; period {period.label}, as of {now:%Y-%m-%d %H:%M}")
        print(f"{'kind':<12}{'scope':<18}{'rows':>8}{'first s':>10}{'median s':>10}")
        total = 0.0
        results: dict[tuple[str, str], Any] = {}
        results_s: dict[tuple[str, str], float] = {}
        for kind in ObjectKind:
            for name, scope in scopes.items():
                with Session(engine) as s:
                    first, med, ev = timed(partial(evaluate, s, scope, kind, period, weights, now=now))
                results[(kind.value, name)] = ev
                results_s[(kind.value, name)] = med
                total += med if name == "city" else 0
                print(f"{kind.value:<12}{name:<18}{len(ev.rows):>8,}{first:>10.2f}{med:>10.2f}", flush=True)
        print(f"all nine kinds, city scope: {total:.2f}s (sum of medians; target ≤ 10 s per kind)")

        print("\nbaseline: the same figures from the period's rows, counted per case/event in Python")
        with Session(engine) as s:
            b_first, b_med, naive = timed(lambda: naive_districts(s, period, now), runs=1)
        dist_naive = b_med
        ev = results[("district", "city")]
        ours = {r.code: (r.indicators["filed"], r.indicators["due_close"], r.indicators["closed"],
                         r.indicators["closed_on_time"]) for r in ev.rows if r.indicators["filed"]}
        assert ours == naive, "the baseline and evaluate() disagree on the districts"
        with Session(engine) as s:
            sql_s = timed(lambda: evaluate(s, CITY, ObjectKind.DISTRICT, period, weights, now=now))[1]
        print(f"  districts:   naive {b_med:6.2f}s  evaluate() {sql_s:6.2f}s  ratio {b_med / sql_s:5.1f}×"
              "  (same figures)")
        dist_sql = sql_s
        with Session(engine) as s:
            b_first, b_med, naive_s = timed(lambda: naive_supervisors(s, period, now), runs=1)
        ev = results[("supervisor", "city")]
        ours_s = {r.code: (r.indicators["reports"], r.indicators["to_verify"], r.indicators["to_check"])
                  for r in ev.rows if r.indicators["reports"] or r.indicators["to_check"]}
        assert ours_s == naive_s, "the baseline and evaluate() disagree on the supervisors"
        with Session(engine) as s:
            sql_s = timed(lambda: evaluate(s, CITY, ObjectKind.SUPERVISOR, period, weights, now=now))[1]
        print(f"  supervisors: naive {b_med:6.2f}s  evaluate() {sql_s:6.2f}s  ratio {b_med / sql_s:5.1f}×"
              "  (same figures)")
        sup_naive, sup_sql = b_med, sql_s
        if args.keep:
            print(f"\nkept. GRIDHALL_DATABASE_URL='{url}'")
        slowest = max(results_s.values())
        benchkit.result(cases=n_cases, events=n_events, city_all_kinds_s=total, slowest_kind_s=slowest,
                        districts_s=dist_sql, districts_naive_s=dist_naive,
                        supervisors_s=sup_sql, supervisors_naive_s=sup_naive)
    finally:
        if engine is not None:
            engine.dispose()  # before DROP SCHEMA, which waits for every open session
        benchkit.release_schema(admin, schema, args.keep)


if __name__ == "__main__":
    main()
