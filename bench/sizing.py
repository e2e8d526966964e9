"""Disk per event and per case on PostgreSQL, for docs/deployment.md's sizing table.

    python bench/sizing.py                 # the demo city with 30 days of history at 300 cases/day
    python bench/sizing.py --days 60 --daily 1000
    python bench/sizing.py --smoke         # tiny (seconds): checks it runs

Builds the demo city (``dashboard.demo.democity``, imported by ``feeds.history.import_with_history``,
as the tests' democitykit does) in a fresh schema of ``--pg-url``'s database (created when missing,
default ``benchkit.DEFAULT_PG_URL``; the schema is dropped afterwards unless ``--keep``), writes
``--days`` of history through the casebook (``feeds.history``, the same rows the ingest writes:
one ``cases`` row per case, one ``case_events`` and one ``case_event_ids`` row per event),
runs ``VACUUM ANALYZE``, and reads the sizes with ``pg_total_relation_size`` (table + TOAST +
every index), ``pg_table_size`` (heap + TOAST, no index) and ``pg_indexes_size``.

Printed: rows, bytes per row of each table (total, of which indexes; the baseline is the heap
alone, so the indexes' share is visible), each index's size, and disk per year at 10k, 100k and
1M events a day. A year's cases are the events divided by the events per case measured here.
Live cases are rewritten by every event (dead tuples until vacuum); the figures are after
``VACUUM``, i.e. the steady state that autovacuum keeps, not the peak between two vacuums.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

import benchkit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.demo.democity import generate_city  # noqa: E402
from dashboard.settings import load_settings  # noqa: E402
from dashboard.store import db  # noqa: E402
from feeds.history import import_with_history  # noqa: E402

# case_event_ids (0011): one row per stored event, its id kept unique outside the partitioned case_events.
TABLES = ("cases", "case_events", "case_event_ids")
RATES = (10_000, 100_000, 1_000_000)  # events per day in the docs' table


def sizes(conn, table: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    # Summed over the partition tree: case_events is partitioned by month since 0011 (its parent holds nothing).
    row = conn.execute(text(
        "SELECT sum(pg_total_relation_size(p.relid)), sum(pg_table_size(p.relid)), sum(pg_indexes_size(p.relid)), "
        "(SELECT count(*) FROM " + table + ") "
        "FROM (SELECT relid FROM pg_partition_tree(to_regclass(:t)) UNION SELECT to_regclass(:t)) p"),
        {"t": table}).one()
    return {"total": int(row[0]), "heap": int(row[1]), "indexes": int(row[2]), "rows": int(row[3])}


def index_sizes(conn, table: str) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    rows = conn.execute(text(
        "SELECT i.indexrelid::regclass::text, (SELECT sum(pg_relation_size(p.relid)) "
        "FROM (SELECT relid FROM pg_partition_tree(i.indexrelid) UNION SELECT i.indexrelid::regclass) p) "
        "FROM pg_index i "
        "WHERE i.indrelid = to_regclass(:t) ORDER BY 2 DESC"), {"t": table}).all()
    return [(str(name).rsplit(".", 1)[-1], int(size)) for name, size in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--daily", type=float, default=300.0)
    parser.add_argument("--pg-url", default=benchkit.DEFAULT_PG_URL)
    parser.add_argument("--keep", action="store_true", help="keep the schema, print its URL")
    benchkit.add_smoke(parser, days=2, daily=100.0)
    args = benchkit.parse(parser, argv)

    admin, schema, url = benchkit.pg_schema(args.pg_url, "gh_sizing")
    engine = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(database_url=url, data_dir=Path(tmp) / "data")
            db.upgrade(settings)
            engine = db.make_engine(settings)
            sessions = db.session_factory(engine)
            city_dir = Path(tmp) / "city"
            generate_city(city_dir)
            now = datetime.now(UTC) - timedelta(minutes=1)
            _ref, n_cases, n_events = import_with_history(settings, sessions, city_dir, now, days=args.days,
                                                          daily_cases=args.daily)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in TABLES:
                conn.execute(text(f"VACUUM ANALYZE {table}"))
            measured = {t: sizes(conn, t) for t in TABLES}
            indexes = {t: index_sizes(conn, t) for t in TABLES}
    finally:
        if engine is not None:
            engine.dispose()
        if args.keep:
            print(f"kept: GRIDHALL_DATABASE_URL={url}")
        benchkit.release_schema(admin, schema, args.keep)

    print(f"\ndemo city, {args.days} days at {args.daily:g} cases/day: {n_cases:,} cases, {n_events:,} events "
          f"({n_events / max(n_cases, 1):.2f} events per case)")
    print(f"{'table':<13}{'rows':>9}{'total B/row':>13}{'heap B/row':>12}{'index B/row':>13}{'indexes':>9}")
    per_row = {}
    for table in TABLES:
        m = measured[table]
        rows = max(m["rows"], 1)
        per_row[table] = m["total"] / rows
        print(f"{table:<13}{m['rows']:>9,}{m['total'] / rows:>13.0f}{m['heap'] / rows:>12.0f}"
              f"{m['indexes'] / rows:>13.0f}{len(indexes[table]):>9}")
    for table in TABLES:
        print(f"\n{table} indexes (bytes per row):")
        for name, size in indexes[table]:
            print(f"  {name:<40}{size / max(measured[table]['rows'], 1):>8.1f}")
    events_per_case = n_events / max(n_cases, 1)
    per_event = per_row["case_events"] + per_row["case_event_ids"]
    print(f"\nper event: {per_event:.0f} B (case_events {per_row['case_events']:.0f} + case_event_ids "
          f"{per_row['case_event_ids']:.0f})")
    print("\ndisk per year (cases + case_events + case_event_ids, after vacuum; no WAL, no backups):")
    print(f"{'events/day':>12}{'cases/year':>14}{'GB/year':>10}")
    per_year = {}
    for rate in RATES:
        events = rate * 365
        cases = events / events_per_case
        gb = (events * per_event + cases * per_row["cases"]) / 1e9
        per_year[rate] = gb
        print(f"{rate:>12,}{cases:>14,.0f}{gb:>10.1f}")
    benchkit.result(events=n_events, cases=n_cases,
                    event_bytes=round(per_row["case_events"]), event_id_bytes=round(per_row["case_event_ids"]),
                    case_bytes=round(per_row["cases"]),
                    event_heap_bytes=round(measured["case_events"]["heap"] / max(measured["case_events"]["rows"], 1)),
                    gb_per_year_100k=round(per_year[100_000], 2))


if __name__ == "__main__":
    main()
