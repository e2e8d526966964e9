"""The wall at a random past minute (回放) of a city with a year of history: snapshots + events since vs a full re-fold.

    python bench/timetravel.py                         # 12 months, ~5,500,000 events, 20k grids
    python bench/timetravel.py --events 2000000        # smaller
    python bench/timetravel.py --smoke                 # tiny (seconds): checks it runs
    python bench/timetravel.py --keep-schema           # keep the built schema (printed) …
    python bench/timetravel.py --schema gh_tt_1a2b3c4d # … and time it again, no build

The city is ``bench/evaluation.py``'s megacity (``bench/bigcity.py``'s regions, grids and units; cases
and their events written by COPY, not through the ingest), here with the case fields in the events'
payloads (class, grid, unit: what the fold reads), ``--months`` months ending with October 2026 in
the partitioned ``case_events`` (fresh schema of ``--pg-url``'s database, dropped afterwards).

For each of ``--instants`` random minutes T (seeded) it builds the wall at T (every figure of the
live wall, :func:`dashboard.figures.timetravel.wall_at`) three ways, in the same run:

- **full re-fold**: no snapshot — every case that may count at T (open then, or with a fact of T's
  day or month) folded from its events;
- **thinned snapshot**: from the snapshot of the last whole ``GRIDHALL_REPLAY_SNAPSHOT_THIN_HOURS``
  (6 h: 00:00, 06:00 …) of the local day before T — what the housekeeping owner keeps for every day
  older than ``GRIDHALL_REPLAY_SNAPSHOT_DAYS``: the worst case the settings allow —, caught up with
  the cases that have events in (snapshot, T];
- **hourly snapshot**: from the snapshot of the whole hour before T (what it keeps for recent days);
- for information, **daily snapshot** (local midnight: ``GRIDHALL_REPLAY_SNAPSHOT_THIN_HOURS=24``).

Every way must give the same figures (KPIs, stages, every grid's figures, hot spots, the whole
overdue queue, the unit board). Target: the wall at T from a snapshot in ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402
import evaluation  # noqa: E402
from dashboard.figures.timetravel import SnapshotFolder, figures, wall_at  # noqa: E402
from dashboard.settings import Settings, load_settings  # noqa: E402
from dashboard.store import db, history  # noqa: E402
from dashboard.store.models import CaseEvent, Grid, Unit  # noqa: E402

EVENTS_PER_CASE = 6.15  # what evaluation.py's Month draws (≈ 6.15 events a case by "now")
LAST_MONTH = (2026, 10)
TARGET_S = 2.0


class PayloadMonth(evaluation.Month):
    """evaluation.py's month with the case's fields in its events' payloads (the fold reads them there)."""

    grid_codes: dict[int, str] = {}
    unit_codes: dict[int, str] = {}

    def event_copy(self, received: str, size: int = 200_000) -> Any:
        p = self.prefix
        grid = [self.grid_codes[int(g)] for g in self.grid]
        unit = [self.unit_codes[int(u)] for u in self.unit]
        for k, (mask, type_, at, actor) in enumerate(self.events):
            idx = [int(i) for i in (mask.nonzero()[0])]
            for lo in range(0, len(idx), size):
                part = idx[lo:lo + size]
                stamps = evaluation._ts(at[part])
                lines = []
                for i, t, a in zip(part, stamps, actor[part], strict=False):
                    if type_ == "reported":
                        payload = json.dumps({"kind": "event", "class_code": "06010", "grid_code": grid[i],
                                              "urgency": "normal", "source": str(self.source[i]),
                                              "number": f"{p}{i:07d}"})
                    elif type_ == "dispatched":
                        payload = json.dumps({"unit_code": unit[i]})
                    else:
                        payload = "{}"
                    lines.append(f"{p}{i:07d}-{k:02d}\t{p}{i:07d}\t{type_}\t{t}\t{received}\t{a}\t{payload}")
                yield ("\n".join(lines) + "\n").encode()


def _months(n: int) -> tuple[tuple[int, int], ...]:
    return tuple(history.add_months(*LAST_MONTH, -k) for k in reversed(range(n)))


def build(settings: Settings, months: int, events: int, grids: int, seed: int) -> datetime:
    first = _months(months)[0]

    def prepare(s: Settings) -> None:
        engine = db.make_engine(s)
        with engine.begin() as conn:
            history.ensure_partitions(conn, s.tz, 1, now=datetime(*LAST_MONTH, 15, tzinfo=s.tz), first=first)
            PayloadMonth.grid_codes = dict(conn.execute(select(Grid.id, Grid.code)).all())
            PayloadMonth.unit_codes = dict(conn.execute(select(Unit.id, Unit.code)).all())
        engine.dispose()

    per_month = max(100, round(events / months / EVENTS_PER_CASE))
    evaluation.Month = PayloadMonth  # type: ignore[misc]  # populate() builds its months with it
    built = evaluation.populate(settings, per_month, grids, seed, lambda m: print("  " + m, flush=True),
                                _months(months), prepare)
    now: datetime = built["now"]
    return now


def _snapshot(settings: Settings, engine: Any, folder: SnapshotFolder, at: datetime) -> float:
    """Write the snapshot at ``at`` (a full fold, as the housekeeping task's first one); its seconds."""
    t0 = time.perf_counter()
    with Session(engine) as s:
        after_id = s.scalar(select(func.max(CaseEvent.id))) or 0
        replay = wall_at(s, settings, at, folder=folder, use_snapshots=False)
    folder.write(replay.view, at, after_id=int(after_id), rules_version=replay.rules_version)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--months", type=int, default=12, help="months of history ending with 2026-10")
    parser.add_argument("--events", type=int, default=5_500_000, help="events in the whole history (about)")
    parser.add_argument("--grids", type=int, default=20_000)
    parser.add_argument("--instants", type=int, default=3, help="random past minutes replayed")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--pg-url", default=benchkit.DEFAULT_PG_URL,
                        help="PostgreSQL database (created when missing) for the bench's schema")
    parser.add_argument("--keep-schema", action="store_true", help="keep the built schema (printed) for --schema")
    parser.add_argument("--schema", help="time the schema kept by an earlier --keep-schema run again (no build)")
    benchkit.add_smoke(parser, months=2, events=20_000, grids=300, instants=2)
    args = benchkit.parse(parser)
    keep = bool(args.keep_schema or args.schema)
    admin, schema, url = benchkit.pg_schema(args.pg_url, "gh_tt", reuse=args.schema)
    data_dir = Path(tempfile.mkdtemp(prefix="gh-timetravel-"))
    settings = load_settings(database_url=url, data_dir=data_dir)
    engine = None
    try:
        t0 = time.perf_counter()
        if args.schema is None:
            print(f"{args.months} month(s) ending {LAST_MONTH[0]}-{LAST_MONTH[1]:02d}, ~{args.events:,} events, "
                  f"{args.grids:,} grids; schema {schema}", flush=True)
            now = build(settings, args.months, args.events, args.grids, args.seed)
            print(f"built in {time.perf_counter() - t0:.0f}s", flush=True)
        else:
            db.upgrade(settings)
            now = datetime(*history.add_months(*LAST_MONTH, 1), 5, 12, tzinfo=settings.tz)  # what populate() uses
        engine = db.make_engine(settings)
        with engine.connect() as conn:
            n_events = conn.execute(text("SELECT count(*) FROM case_events")).scalar_one()
            n_cases = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        print(f"{n_events:,} events of {n_cases:,} cases; the city's now: {now:%Y-%m-%d %H:%M}", flush=True)
        tz = settings.tz
        first = datetime(*_months(args.months)[0], 1, tzinfo=tz)
        rng = random.Random(args.seed)
        span = int((now - first).total_seconds() // 60) - 60
        instants = sorted(first + timedelta(minutes=rng.randrange(24 * 60, span)) for _ in range(args.instants))
        rows = []
        equal = 1
        for k, at in enumerate(instants):
            local = at.astimezone(tz)
            day = datetime(local.year, local.month, local.day, tzinfo=tz)
            hour = local.replace(minute=0, second=0, microsecond=0)
            thin_h = settings.replay_snapshot_thin_hours
            thinned = hour.replace(hour=hour.hour // thin_h * thin_h)
            with Session(engine) as s:
                full = wall_at(s, settings, at, use_snapshots=False)
            want = figures(full)
            got = {"full": (full.seconds, full.folded_cases, full.folded_events)}
            for name, snap_at in (("thinned", thinned), ("hour", hour), ("day", day)):
                folder = SnapshotFolder(settings, data_dir / f"{name}-{k}")
                write_s = _snapshot(settings, engine, folder, snap_at)
                with Session(engine) as s:
                    fast = wall_at(s, settings, at, folder=folder)
                assert fast.snapshot_at == snap_at, (fast.snapshot_at, snap_at)
                same = figures(fast) == want
                equal &= int(same)
                got[name] = (fast.seconds, fast.folded_cases, fast.folded_events)
                print(f"  {local:%Y-%m-%d %H:%M} from the {name} snapshot ({snap_at:%H:%M}, "
                      f"written in {write_s:.1f}s): "
                      f"{fast.seconds:.3f}s, {fast.folded_cases:,} cases / {fast.folded_events:,} events folded, "
                      f"figures {'equal' if same else 'DIFFER'}", flush=True)
            k_ = want["kpis"]
            print(f"  {local:%Y-%m-%d %H:%M} full re-fold: {full.seconds:.2f}s, {full.folded_cases:,} cases / "
                  f"{full.folded_events:,} events; open {k_['open']:,}, overdue {k_['overdue']:,}, "
                  f"reported today {k_['reported']:,}", flush=True)
            rows.append(got)
        full_s = [r["full"][0] for r in rows]
        day_s = [r["day"][0] for r in rows]
        thin_s = [r["thinned"][0] for r in rows]
        hour_s = [r["hour"][0] for r in rows]
        print(f"\nthe wall at a random past minute ({len(rows)} minutes of {n_events:,} events):")
        print(f"  full re-fold      median {statistics.median(full_s):.2f}s  max {max(full_s):.2f}s")
        print(f"  hourly snapshot   median {statistics.median(hour_s):.3f}s  max {max(hour_s):.3f}s")
        print(f"  {settings.replay_snapshot_thin_hours}-hourly snapshot median {statistics.median(thin_s):.3f}s  "
              f"max {max(thin_s):.3f}s  (the thinned history's worst case)")
        print(f"  daily snapshot    median {statistics.median(day_s):.3f}s  max {max(day_s):.3f}s")
        print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"  target ≤ {TARGET_S:.0f} s from a snapshot: {'met' if max(thin_s) <= TARGET_S else 'NOT met'}"
              f"{' (smoke size: not judged)' if args.smoke else ''}; figures equal in every way: "
              f"{'yes' if equal else 'NO'}", flush=True)
        if keep:
            print(f"schema kept: --schema {schema}")
        benchkit.result(events=int(n_events), instants=len(rows), full_s=statistics.median(full_s),
                        thinned_snapshot_s=max(thin_s), hour_snapshot_s=max(hour_s), day_snapshot_s=max(day_s),
                        speedup=statistics.median(full_s) / max(max(thin_s), 1e-9), equal=equal)
        if not equal:
            sys.exit(1)
    finally:
        if engine is not None:
            engine.dispose()
        benchkit.release_schema(admin, schema, keep)


if __name__ == "__main__":
    main()
