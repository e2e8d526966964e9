"""A month's 综合考评 out of a year of history on the partitioned ``case_events``, against that month alone today.

    python bench/history.py                                 # 12 months, ~12,000,000 events, 100k grids
    python bench/history.py --months 12 --events 2000000    # ~2M events
    python bench/history.py --smoke                         # tiny (seconds): checks it runs

Two databases (fresh schemas of ``--pg-url``'s database, dropped afterwards) of the megacity of
``bench/evaluation.py`` (``bench/bigcity.py``'s regions, grids and units, its staff, and cases
with their events written by COPY, not through the ingest), in the same run:

- the baseline, today's layout: the schema migrated to 0010 (one unpartitioned ``case_events``,
  unique ``event_id``) holding October 2026 alone;
- the history: the schema at head (``case_events`` partitioned by month, migration 0011, and
  ``case_event_ids``) holding ``--months`` months ending with October 2026, the same number of
  cases each month (``--events`` in all), so October is the same size in both.

It times :func:`dashboard.figures.evaluation.evaluate` of October 2026 for the nine object kinds
(city scope; median of 3 runs) in both, shows the EXPLAIN of a period query on the partitioned
table (only October's partition is scanned) and measures the disk per event: ``case_events``
with its indexes over all partitions, and ``case_event_ids`` with its primary key.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text
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


def _time_month(settings: Settings, now: datetime) -> tuple[float, float, int, int]:
    """(sum of the nine kinds' medians, slowest kind's median, events of the month, events in all)."""
    engine = db.make_engine(settings)
    period = Period.month(*MONTH, settings.tz)
    weights = load_weights()
    total = slowest = 0.0
    try:
        with Session(engine) as s:
            month_events = s.execute(text("SELECT count(*) FROM case_events WHERE occurred_at >= :a AND "
                                          "occurred_at < :b"), {"a": period.start.replace(tzinfo=None),
                                                                "b": period.end.replace(tzinfo=None)}).scalar_one()
            all_events = s.execute(text("SELECT count(*) FROM case_events")).scalar_one()
        for kind in ObjectKind:
            with Session(engine) as s:
                _first, med, _ev = timed(partial(evaluate, s, CITY, kind, period, weights, now=now))
            total += med
            slowest = max(slowest, med)
            print(f"  {kind.value:<12}{med:>8.3f}s", flush=True)
    finally:
        engine.dispose()
    return total, slowest, month_events, all_events


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--months", type=int, default=12, help="months of history ending with 2026-10")
    parser.add_argument("--events", type=int, default=12_000_000, help="events in the whole history (about)")
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url", default=benchkit.DEFAULT_PG_URL,
                        help="PostgreSQL database (created when missing) for the bench's schemas")
    benchkit.add_smoke(parser, months=3, events=30_000, grids=400)
    args = benchkit.parse(parser)
    if args.months < 1:
        parser.error("--months: at least 1")
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
    for name, months, prepare in (("baseline", (MONTH,), today), ("history", _months(args.months), partitions)):
        admin, schema, url = benchkit.pg_schema(args.pg_url, f"gh_hist_{name[:4]}")
        try:
            settings = load_settings(database_url=url)
            print(f"\n{name}: {'today' if name == 'baseline' else 'partitioned'} case_events, "
                  f"{len(months)} month(s)", flush=True)
            t0 = time.perf_counter()
            built = populate(settings, per_month, args.grids, args.seed, lambda m: say("  " + m), months, prepare)
            build_s = time.perf_counter() - t0
            total, slowest, month_events, all_events = _time_month(settings, built["now"])
            print(f"  nine kinds, city scope: {total:.2f}s (sum of medians); slowest {slowest:.2f}s; "
                  f"{month_events:,} of {all_events:,} events in the month; built in {build_s:.0f}s", flush=True)
            figures[name] = {"total": total, "slowest": slowest, "events": all_events, "month_events": month_events,
                             "build_s": build_s}
            if name == "history":
                events_b, ids_b, n_parts = _sizes(settings)
                figures["sizes"] = (events_b, ids_b, n_parts)
                print(f"\nEXPLAIN of a period query (October 2026) on the partitioned table:\n{_explain(settings)}")
        finally:
            benchkit.release_schema(admin, schema, False)

    base, hist = figures["baseline"], figures["history"]
    events_b, ids_b, n_parts = figures["sizes"]
    n = max(1, hist["events"])
    ratio = hist["total"] / base["total"] if base["total"] else 0.0
    print(f"\nOctober 2026, nine kinds: {hist['total']:.2f}s out of {args.months} partitioned months "
          f"vs {base['total']:.2f}s for the month alone today (ratio {ratio:.2f}; target ≤ 1, no slower)")
    print(f"disk: case_events {events_b / n:.0f} bytes/event with its indexes ({n_parts} partitions), "
          f"case_event_ids {ids_b / n:.0f} bytes/event; {(events_b + ids_b) / n:.0f} bytes/event in all "
          "(payloads '{}' here: add the average payload of real events)")
    benchkit.result(months=args.months, events=hist["events"], month_events=hist["month_events"],
                    month_all_kinds_s=hist["total"], baseline_all_kinds_s=base["total"], ratio=ratio,
                    slowest_kind_s=hist["slowest"], baseline_slowest_kind_s=base["slowest"],
                    bytes_per_event=(events_b + ids_b) / n, events_bytes_per_event=events_b / n,
                    ids_bytes_per_event=ids_b / n, build_s=hist["build_s"])


if __name__ == "__main__":
    main()
