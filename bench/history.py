"""A month's 综合考评 out of a year of history on the partitioned ``case_events``, against that month alone today.

    python bench/history.py                                 # 12 months, ~12,000,000 events, 100k grids
    python bench/history.py --months 12 --events 2000000    # ~2M events
    python bench/history.py --smoke                         # tiny (seconds): checks it runs
    python bench/history.py --keep-schemas                  # keep the two built schemas (printed) …
    python bench/history.py --schemas gh_hist_base_1a2b3c4d gh_hist_hist_5e6f7a8b   # … and time them again, no build

Two databases (fresh schemas of ``--pg-url``'s database, dropped afterwards) of the megacity of
``bench/evaluation.py`` (``bench/bigcity.py``'s regions, grids and units, its staff, and cases
with their events written by COPY, not through the ingest), in the same run:

- the baseline, today's layout: the schema migrated to 0010 (one unpartitioned ``case_events``,
  unique ``event_id``) holding October 2026 alone;
- the history: the schema at head (``case_events`` partitioned by month, migration 0011, and
  ``case_event_ids``) holding ``--months`` months ending with October 2026, the same number of
  cases each month (``--events`` in all), so October is the same size in both.

It times :func:`dashboard.figures.evaluation.evaluate` of October 2026 for the nine object kinds
(city scope; median of ``--runs``, 5) in both, alternating run by run (a change of the shared
machine's load weighs on both alike), shows the EXPLAIN of a period query on the partitioned
table (only October's partition is scanned) and the EXPLAIN (ANALYZE, BUFFERS) of the 监督员 kind's
join of the month's events to their cases in both (``ix_cases_last_event_at``, 0012: the history's
other months of ``cases`` are not read; covering since 0017: an index-only scan), and measures
the disk per event: ``case_events`` with its indexes over all partitions, and ``case_event_ids``
with its primary key. Last, it runs migration 0011 on the baseline's populated table and times
the conversion in place (not with ``--keep-schemas`` or ``--schemas``: the kept baseline stays
today's layout for the next run).

Building 12M events takes 10 minutes or more: ``--keep-schemas`` keeps both schemas and
``--schemas BASELINE HISTORY`` times them again without building (the history is migrated to
head first, so a schema kept before a new migration gets it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402
from dashboard.figures.evaluation import ObjectKind, Period, evaluate  # noqa: E402
from dashboard.rules.evalspec import load_weights  # noqa: E402
from dashboard.settings import Settings, load_settings  # noqa: E402
from dashboard.store import db, history  # noqa: E402
from dashboard.store.scope import CITY  # noqa: E402
from evaluation import populate, timed  # noqa: E402

EVENTS_PER_CASE = 6.15  # what evaluation.py's Month draws (≈ 6.15 events a case by "now")
MONTH = (2026, 10)


def _months(n: int) -> tuple[tuple[int, int], ...]:
    return tuple(history.add_months(*MONTH, -k) for k in reversed(range(n)))


def _counts(settings: Settings) -> tuple[int, int]:
    """(events of the month, events in all)."""
    engine = db.make_engine(settings)
    period = Period.month(*MONTH, settings.tz)
    try:
        with Session(engine) as s:
            month_events = s.execute(text("SELECT count(*) FROM case_events WHERE occurred_at >= :a AND "
                                          "occurred_at < :b"), {"a": period.start.replace(tzinfo=None),
                                                                "b": period.end.replace(tzinfo=None)}).scalar_one()
            all_events = s.execute(text("SELECT count(*) FROM case_events")).scalar_one()
    finally:
        engine.dispose()
    return month_events, all_events


def _time_both(both: dict[str, Settings], now: datetime, runs: int) -> dict[str, dict[str, float]]:
    """name → kind → median seconds of ``runs`` evaluate() of the month; the two databases alternate run by run
    (A, B, B, A, A, B … within each kind), so that a change of the shared machine's load weighs on both alike."""
    engines = {name: db.make_engine(settings) for name, settings in both.items()}
    tz = next(iter(both.values())).tz
    period = Period.month(*MONTH, tz)
    weights = load_weights()
    out: dict[str, dict[str, float]] = {name: {} for name in both}
    try:
        print(f"  {'kind':<12}" + "".join(f"{name:>12}" for name in both), flush=True)
        for kind in ObjectKind:
            samples: dict[str, list[float]] = {name: [] for name in both}
            for run in range(runs):
                # A, B then B, A: neither always runs second (after the other's garbage, or its warm caches).
                for name, engine in list(engines.items())[::1 if run % 2 == 0 else -1]:
                    with Session(engine) as s:
                        _first, took, _ev = timed(partial(evaluate, s, CITY, kind, period, weights, now=now), runs=1)
                    samples[name].append(took)
            for name in both:
                out[name][kind.value] = statistics.median(samples[name])
            print(f"  {kind.value:<12}" + "".join(f"{out[name][kind.value]:>11.3f}s" for name in both), flush=True)
    finally:
        for engine in engines.values():
            engine.dispose()
    return out


def _sizes(settings: Settings) -> tuple[int, int, int]:
    """(bytes of case_events with its indexes, over every partition; of case_event_ids with its key; partitions)."""
    engine = db.make_engine(settings)
    try:
        with engine.connect() as conn:
            parts = [p.name for p in history.partitions(conn)]
            events = conn.execute(text("SELECT sum(pg_total_relation_size(c::regclass)) "
                                       "FROM unnest(CAST(:p AS text[])) AS c"), {"p": parts}).scalar_one() or 0
            ids = conn.execute(text("SELECT pg_total_relation_size('case_event_ids')")).scalar_one()
    finally:
        engine.dispose()
    return int(events), int(ids), len(parts)


def _explain(settings: Settings) -> str:
    period = Period.month(*MONTH, settings.tz)
    engine = db.make_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "EXPLAIN SELECT e.actor, count(*) FROM case_events e WHERE e.occurred_at >= :s AND e.occurred_at < :e "
                "AND e.problem IS NULL AND e.type IN ('reported', 'verified') GROUP BY e.actor"),
                {"s": period.start.astimezone(UTC).replace(tzinfo=None),
                 "e": period.end.astimezone(UTC).replace(tzinfo=None)}).scalars().all()
    finally:
        engine.dispose()
    return "\n".join(rows)


def _explain_join(settings: Settings, now: datetime) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement of the 监督员 kind that joins the month's events to ``cases``."""
    engine = db.make_engine(settings)
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "case_events" in statement and "JOIN cases" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with Session(engine) as s:
            evaluate(s, CITY, ObjectKind.SUPERVISOR, Period.month(*MONTH, settings.tz), load_weights(), now=now)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        statement, parameters = seen[0]
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        return "\n".join(r[0] for r in cur.fetchall())
    finally:
        raw.close()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--months", type=int, default=12, help="months of history ending with 2026-10")
    parser.add_argument("--events", type=int, default=12_000_000, help="events in the whole history (about)")
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url", default=benchkit.DEFAULT_PG_URL,
                        help="PostgreSQL database (created when missing) for the bench's schemas")
    parser.add_argument("--runs", type=int, default=5, help="evaluations of each kind in each database (median)")
    parser.add_argument("--keep-schemas", action="store_true",
                        help="keep the two built schemas (printed) for --schemas; the conversion is not timed")
    parser.add_argument("--schemas", nargs=2, metavar=("BASELINE", "HISTORY"),
                        help="time the schemas kept by an earlier --keep-schemas run again (no build; kept)")
    benchkit.add_smoke(parser, months=3, events=30_000, grids=400)
    args = benchkit.parse(parser)
    if args.months < 1:
        parser.error("--months: at least 1")
    keep = bool(args.keep_schemas or args.schemas)
    say = lambda m: print(m, flush=True)  # noqa: E731
    per_month = max(100, round(args.events / args.months / EVENTS_PER_CASE))
    print(f"{args.months} month(s) × {per_month:,} cases (~{args.events:,} events), {args.grids:,} grids; "
          f"evaluating {MONTH[0]}-{MONTH[1]:02d}", flush=True)

    def today(settings: Settings) -> None:  # the baseline: before 0011, one unpartitioned table
        db.downgrade(settings, "0010_open311")

    def partitions(settings: Settings) -> None:
        engine = db.make_engine(settings)
        with engine.begin() as conn:
            # every month of the history, and November (the bench's "now", 2026-11-05, is in it)
            history.ensure_partitions(conn, settings.tz, 1, now=datetime(*MONTH, 15, tzinfo=settings.tz),
                                      first=_months(args.months)[0])
        engine.dispose()

    figures: dict[str, Any] = {}
    schemas: list[tuple[Any, str]] = []
    both: dict[str, Settings] = {}
    now = datetime(2026, 11, 5, 12, tzinfo=UTC)
    try:
        for k, (name, months, prepare) in enumerate((("baseline", (MONTH,), today),
                                                     ("history", _months(args.months), partitions))):
            reuse = args.schemas[k] if args.schemas else None
            admin, schema, url = benchkit.pg_schema(args.pg_url, f"gh_hist_{name[:4]}", reuse=reuse)
            schemas.append((admin, schema))
            settings = load_settings(database_url=url)
            both[name] = settings
            print(f"\n{name}: {'today' if name == 'baseline' else 'partitioned'} case_events, "
                  f"{len(months)} month(s), schema {schema}{' (kept)' if keep else ''}", flush=True)
            t0 = time.perf_counter()
            if reuse is None:
                built = populate(settings, per_month, args.grids, args.seed, lambda m: say("  " + m), months, prepare)
                now = built["now"]
            else:
                if name == "history":
                    db.upgrade(settings)  # a schema kept before a newer migration gets it
                now = datetime(*history.add_months(*MONTH, 1), 5, 12, tzinfo=settings.tz)  # what populate() uses
            month_events, all_events = _counts(settings)
            figures[name] = {"events": all_events, "month_events": month_events, "build_s": time.perf_counter() - t0}
            print(f"  {month_events:,} of {all_events:,} events in {MONTH[0]}-{MONTH[1]:02d}; "
                  f"{'built' if reuse is None else 'reused'} in {figures[name]['build_s']:.0f}s", flush=True)
        events_b, ids_b, n_parts = _sizes(both["history"])
        print(f"\nEXPLAIN of a period query ({MONTH[0]}-{MONTH[1]:02d}) on the partitioned table:\n"
              f"{_explain(both['history'])}")
        for name, settings in both.items():
            print(f"\nEXPLAIN (ANALYZE, BUFFERS), {name}: the 监督员 kind's events of {MONTH[0]}-{MONTH[1]:02d} "
                  f"joined to their cases:\n{_explain_join(settings, now)}", flush=True)
        print(f"\nevaluate() of {MONTH[0]}-{MONTH[1]:02d}, city scope, median of {args.runs} "
              "(the two alternating run by run):")
        times = _time_both(both, now, args.runs)
        convert_s = float("nan")
        if keep:
            print(f"\nschemas kept: --schemas {schemas[0][1]} {schemas[1][1]} (the 0011 conversion not timed)")
        else:  # migration 0011 on the baseline's populated table: the conversion in place, timed
            t0 = time.perf_counter()
            db.upgrade(both["baseline"], "0011_partitioned_events")
            convert_s = time.perf_counter() - t0
            print(f"\n0011 on the baseline (today's table, {figures['baseline']['events']:,} events) converted in "
                  f"place in {convert_s:.1f}s ({figures['baseline']['events'] / max(convert_s, 1e-9):,.0f} events/s)")
    finally:
        for admin, schema in schemas:
            benchkit.release_schema(admin, schema, keep)

    hist = figures["history"]
    base_total, hist_total = sum(times["baseline"].values()), sum(times["history"].values())
    n = max(1, hist["events"])
    ratio = hist_total / base_total if base_total else 0.0
    print(f"\nOctober 2026, nine kinds: {hist_total:.2f}s out of {args.months} partitioned months "
          f"vs {base_total:.2f}s for the month alone today (ratio {ratio:.2f}; target ≤ 1, no slower)")
    print(f"disk: case_events {events_b / n:.0f} bytes/event with its indexes ({n_parts} partitions), "
          f"case_event_ids {ids_b / n:.0f} bytes/event; {(events_b + ids_b) / n:.0f} bytes/event in all "
          "(payloads '{}' here: add the average payload of real events)")
    benchkit.result(months=args.months, events=hist["events"], month_events=hist["month_events"],
                    month_all_kinds_s=hist_total, baseline_all_kinds_s=base_total, ratio=ratio,
                    slowest_kind_s=max(times["history"].values()),
                    baseline_slowest_kind_s=max(times["baseline"].values()),
                    bytes_per_event=(events_b + ids_b) / n, events_bytes_per_event=events_b / n,
                    ids_bytes_per_event=ids_b / n, build_s=hist["build_s"],
                    **({} if keep else {"convert_s": convert_s}))  # not timed on kept schemas


if __name__ == "__main__":
    main()
