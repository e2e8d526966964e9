"""How city-like the simulated city is: its month judged by the project's own evaluation.

    python bench/simcity.py                # the demo city, 35 days at 300 cases/day, seed 2026
    python bench/simcity.py --days 60 --daily 1000 --seed 5
    python bench/simcity.py --smoke        # tiny (seconds): checks it runs

Builds the demo city (``dashboard.demo.democity``) twice in SQLite files of a temporary folder
and writes ``--days`` of history into each with ``feeds.history`` (the demo's own builder):

- **modelled**: the work model of ``feeds/behaviour.py`` (units that differ, a backlog queue,
  per-unit 返工/延期, injected surges — docs/simulator.md);
- **baseline**: the same city, seed and arrivals with every unit typical and no surges.

Printed for each: 结案率 and 按期结案率 of the city and its districts over the last whole
days (ending two days before now, so cases had time to close), the units' grades and the
spread of their 按时处置率, 返工/延期 shares; for the modelled city, each injected surge's cases
against the same hours a day earlier. Documented band: 按期结案率 85–95 %, unit grades spread.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

import benchkit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.demo.democity import generate_city  # noqa: E402
from dashboard.figures.evaluation import ObjectKind, Period, evaluate  # noqa: E402
from dashboard.rules.classification import Classification  # noqa: E402
from dashboard.rules.evalspec import weights_from_settings  # noqa: E402
from dashboard.settings import Settings, load_settings  # noqa: E402
from dashboard.store import db  # noqa: E402
from dashboard.store.cityimport import import_city  # noqa: E402
from dashboard.store.models import Case, Grid  # noqa: E402
from dashboard.store.reference import Reference, sync_classification  # noqa: E402
from dashboard.store.scope import get_scope  # noqa: E402
from feeds.behaviour import UnitProfile  # noqa: E402
from feeds.history import build_history  # noqa: E402
from feeds.scenario import CityModel  # noqa: E402

GRADES = "ABCDE"


def run(city_dir: Path, folder: Path, *, flat: bool, days: int, daily: float, seed: int,
        now: datetime) -> dict[str, float | int]:
    """Build one city with ``days`` of history and return its figures (and print them)."""
    # Each city in its own SQLite file, whatever GRIDHALL_DATABASE_URL says: the modelled city and
    # its baseline share their case ids (one seed), so one shared database would mix the two.
    settings: Settings = load_settings(data_dir=folder, database_url=f"sqlite:///{folder / 'gridhall.db'}")
    db.upgrade(settings)
    sessions = db.session_factory(db.make_engine(settings))
    import_city(city_dir, sessions)
    scheme = Classification.from_settings(settings)
    with db.transaction(sessions) as s:
        sync_classification(s, scheme)
    ref = Reference.load(sessions, scheme, settings)
    with sessions() as s:
        city = CityModel.load(s, scheme, settings.tz)
    assert city.behaviour is not None
    if flat:
        typical = {c: UnitProfile(c, "typical", 0.65, 35.0, 0.035, 0.02) for c in city.behaviour.units}
        city = dataclasses.replace(city, behaviour=dataclasses.replace(city.behaviour, units=typical, rules=()))
    t0 = time.perf_counter()
    n_cases, n_events = build_history(sessions, ref, city, now, days=days, daily_cases=daily, seed=seed)
    built = time.perf_counter() - t0
    tz = settings.tz
    last = (now - timedelta(days=2)).astimezone(tz).date()
    first = max((now - timedelta(days=days - 1)).astimezone(tz).date(), last - timedelta(days=27))
    period = Period.days(first, last, tz)
    weights = weights_from_settings(settings)
    with sessions() as s:
        scope = get_scope(s, None)
        districts = evaluate(s, scope, ObjectKind.DISTRICT, period, weights, now=now).rows
        units = evaluate(s, scope, ObjectKind.UNIT, period, weights, now=now).rows
        total = s.scalar(select(func.count()).select_from(Case)) or 1
        reworked = s.scalar(select(func.count()).select_from(Case).where(Case.rework_count > 0)) or 0
        extended = s.scalar(select(func.count()).select_from(Case).where(Case.extension_count > 0)) or 0
    name = "baseline (every unit typical, no surges)" if flat else "modelled (feeds/behaviour.py)"
    print(f"\n{name}: {n_cases} cases, {n_events} events in {built:.1f} s; judged {first}..{last}")
    due = sum(r.indicators["due_close"] or 0 for r in districts)
    closed = sum(r.indicators["closed"] or 0 for r in districts)
    on_time = sum(r.indicators["closed_on_time"] or 0 for r in districts)
    for r in districts:
        i = r.indicators
        print(f"  {r.name:<6} 应结案 {i['due_close']:>5}  结案率 {_pct(i['close_rate'])}  "
              f"按期结案率 {_pct(i['on_time_close_rate'])}  综合 {r.composite}  {r.grade or '样本不足'}")
    print(f"  city   应结案 {due:>5}  结案率 {_pct(closed / max(due, 1))}  按期结案率 {_pct(on_time / max(due, 1))}")
    graded = [r for r in units if r.grade]
    grades = Counter(r.grade for r in graded)
    rates = [r.indicators["on_time_handle_rate"] for r in units
             if (r.indicators["assigned"] or 0) >= 50 and r.indicators["on_time_handle_rate"] is not None]
    shown = ", ".join(f"{g} {grades[g]}" for g in GRADES)
    print(f"  units graded: {shown} (样本不足 {len(units) - len(graded)})")
    for r in sorted(graded, key=lambda r: r.composite or 0):
        i = r.indicators
        if (i["assigned"] or 0) >= 50:
            print(f"    {r.name:<16} 应处置 {i['assigned']:>5}  按时处置率 {_pct(i['on_time_handle_rate'])}  "
                  f"返工率 {_pct(i['rework_rate'])}  综合 {r.composite}  {r.grade}")
    spread = (max(rates) - min(rates)) if rates else 0.0
    print(f"  按时处置率 of units with ≥ 50 cases: {_pct(min(rates, default=0))} … {_pct(max(rates, default=0))}")
    print(f"  返工 {_pct(reworked / total)} of cases, 延期 {_pct(extended / total)}")
    excess = 0
    if not flat:
        assert city.behaviour is not None
        surges = city.behaviour.surges(now - timedelta(days=days - 1), now)
        with sessions() as s:
            for surge in surges:
                inside, before = (_count(s, surge.grids, surge.classes, surge.start + d, surge.end + d)
                                  for d in (timedelta(0), timedelta(days=-1)))
                excess += inside - before
                print(f"  surge {surge.name} {surge.start:%m-%d %H:%M}–{surge.end:%H:%M} street {surge.street} "
                      f"×{surge.multiplier}: {inside} 件 / a day earlier {before} 件")
        print(f"  {len(surges)} surges, excess {excess} cases")
    return {"on_time_close_rate": on_time / max(due, 1), "close_rate": closed / max(due, 1),
            "grades": len(grades), "handle_rate_spread": spread, "rework_share": reworked / total,
            "surge_excess": excess}


def _count(session, grids, classes, start: datetime, end: datetime) -> int:  # type: ignore[no-untyped-def]
    kinds = {k for k, _ in classes}
    rows = session.execute(select(Case.kind, Case.class_code).join(Grid, Case.grid_id == Grid.id)
                           .where(Grid.code.in_(grids), Case.kind.in_(kinds),
                                  Case.reported_at >= start, Case.reported_at < end)).all()
    wanted = set(classes)
    return sum(1 for row in rows if (row[0], row[1]) in wanted)


def _pct(x: float | None) -> str:
    return "   —  " if x is None else f"{100 * x:5.1f}%"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=35, help="days of history (default 35)")
    parser.add_argument("--daily", type=float, default=300.0, help="new cases a day (default 300)")
    parser.add_argument("--seed", type=int, default=2026, help="the history's seed (default 2026)")
    benchkit.add_smoke(parser, days=4, daily=120.0)
    args = benchkit.parse(parser, argv)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory(prefix="simcity-") as tmp:
        root = Path(tmp)
        generate_city(root / "city")
        figures = run(root / "city", root / "modelled", flat=False, days=args.days, daily=args.daily,
                      seed=args.seed, now=now)
        base = run(root / "city", root / "baseline", flat=True, days=args.days, daily=args.daily,
                   seed=args.seed, now=now)
    print(f"\n按期结案率 {_pct(figures['on_time_close_rate'])} (baseline {_pct(base['on_time_close_rate'])}; "
          f"band 85–95 %); unit grades {figures['grades']} (baseline {base['grades']})")
    benchkit.result(on_time_close_rate=figures["on_time_close_rate"], close_rate=figures["close_rate"],
                    unit_grades=int(figures["grades"]), handle_rate_spread=figures["handle_rate_spread"],
                    rework_share=figures["rework_share"], surge_excess=int(figures["surge_excess"]),
                    baseline_on_time_close_rate=base["on_time_close_rate"], baseline_unit_grades=int(base["grades"]))


if __name__ == "__main__":
    main()
