"""Deadline throughput: 1,000,000 open cases evaluated "as of now" with numpy.

    python bench/deadlines.py                     # 1,000,000 cases, 10,000-case baseline
    python bench/deadlines.py --cases 200000 --now 2026-10-09T09:00+08:00
    python bench/deadlines.py --smoke             # tiny (seconds): checks it runs

Builds open cases with random dispatch times over the last 60 days and random stage limits
(a mix of 工作时, 工作日 and 自然时), then computes, fully vectorised through
``WorkCalendar.offsets``/``from_offsets``: every deadline, the working minutes remaining at
"now", the overdue duration (working and calendar minutes), overdue flags and due-soon
flags (less than GRIDHALL_DUE_SOON_RATIO of the limit left). It prints the timing build
time (calendar, scheme and limits table), the time for all cases (target: ≤ 2 s for 1M on
the 2-core machine), and — measured in the same run — the per-case Python
``add()``/``add_days()`` rate on a sample of 工作时/工作日 cases with the ratio of the two.
The sample's deadlines are checked against the vectorised ones.

The calendar and the due-soon ratio are the deployment's (``Timing.from_settings``):
GRIDHALL_TIMEZONE, GRIDHALL_WORKING_PERIODS, GRIDHALL_HOLIDAY_FILE and GRIDHALL_DUE_SOON_RATIO apply.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchkit  # noqa: E402
from dashboard.rules.deadlines import Timing  # noqa: E402
from dashboard.rules.workcalendar import US_PER_MIN, WorkCalendar, as_utc64  # noqa: E402
from dashboard.settings import load_settings  # noqa: E402

# Limit units as the limits table has them.
WORK_HOURS, WORK_DAYS, NATURAL_HOURS = 0, 1, 2
UNIT_NAMES = {WORK_HOURS: "工作时", WORK_DAYS: "工作日", NATURAL_HOURS: "自然时"}
UNIT_SHARE = [0.5, 0.3, 0.2]
# Values seen in city tables (紧急 0.5 h … 违法搭建 15 工作日), see docs/lifecycle.md.
UNIT_VALUES = {
    WORK_HOURS: np.array([0.5, 1, 2, 4, 8, 24, 48]),
    WORK_DAYS: np.array([1, 2, 3, 5, 10, 15]),
    NATURAL_HOURS: np.array([0.5, 2, 24, 48, 72]),
}


def generate(n: int, now_us: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dispatch instants (datetime64[us], naive UTC), limit units and limit values."""
    rng = np.random.default_rng(seed)
    dispatched = now_us - rng.integers(0, 60 * 24 * 60 * US_PER_MIN, size=n)
    unit = rng.choice(3, size=n, p=UNIT_SHARE).astype(np.int8)
    value = np.empty(n)
    for code, values in UNIT_VALUES.items():
        mask = unit == code
        value[mask] = rng.choice(values, size=int(mask.sum()))
    return dispatched.view("datetime64[us]"), unit, value


def evaluate(
    cal: WorkCalendar, dispatched: np.ndarray, unit: np.ndarray, value: np.ndarray,
    now: np.datetime64, due_soon_ratio: float,
) -> dict[str, np.ndarray]:
    """Everything the overdue view shows, for all cases at once (no Python loop per case)."""
    working = unit != NATURAL_HOURS
    # 工作时 and 自然时 are 60 minutes an hour (working minutes for the first, real minutes for
    # the second); N 工作日 are N whole working days (WorkCalendar.day_offsets), which is
    # N × minutes_per_day working minutes when every working day is alike.
    limit = value * 60.0
    now_off = cal.offsets(np.array([now]))[0]

    deadline = np.empty(dispatched.shape, dtype="datetime64[us]")
    remaining = np.empty(dispatched.shape)
    overdue_work = np.empty(dispatched.shape)

    w_start_off = cal.offsets(dispatched[working])
    w_due_off = w_start_off + limit[working]
    days = unit[working] == WORK_DAYS
    w_due_off[days] = cal.day_offsets(w_start_off[days], value[working][days])
    limit[working] = w_due_off - w_start_off  # the working minutes each limit gives (due soon)
    deadline[working] = cal.from_offsets(w_due_off)
    remaining[working] = w_due_off - now_off
    overdue_work[working] = now_off - w_due_off

    natural = ~working
    n_deadline = dispatched[natural] + (limit[natural] * US_PER_MIN).astype("timedelta64[us]")
    deadline[natural] = n_deadline
    remaining[natural] = (n_deadline - now).astype(np.int64) / US_PER_MIN
    overdue_work[natural] = now_off - cal.offsets(n_deadline)

    # Overdue is decided on instants: a case due at 18:00 is overdue at 20:00 although no
    # working minute has passed since (its remaining working time is 0, not negative).
    overdue = now > deadline
    overdue_calendar = np.maximum((now - deadline).astype(np.int64) / US_PER_MIN, 0)
    np.maximum(overdue_work, 0, out=overdue_work)
    due_soon = ~overdue & (remaining < due_soon_ratio * limit)
    return {
        "deadline": deadline, "remaining": remaining, "overdue": overdue, "due_soon": due_soon,
        "overdue_work_min": overdue_work, "overdue_calendar_min": overdue_calendar,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000, help="cases for the per-case add() baseline")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of the vectorised evaluation")
    parser.add_argument("--now", help="ISO instant with offset (default: the current time)")
    parser.add_argument("--seed", type=int, default=1)
    benchkit.add_smoke(parser, cases=20_000, sample=1000, repeat=2)
    args = benchkit.parse(parser)

    settings = load_settings()
    t0 = time.perf_counter()
    timing = Timing.from_settings(settings)  # the scheme and limits table are read too, and timed
    cal = timing.calendar
    build = time.perf_counter() - t0
    table = cal._table  # for the size line only
    print(f"calendar: {cal!r}")
    print(f"timing build (calendar, scheme, limits): {build * 1000:.1f} ms "
          f"(calendar {(table.last - table.first).days + 1} days "
          f"{table.first}..{table.last}, {len(table.starts_l)} working intervals)")

    now_dt = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    now = as_utc64(now_dt)
    dispatched, unit, value = generate(args.cases, int(now.astype(np.int64)), args.seed)
    mix = ", ".join(f"{UNIT_NAMES[c]} {np.mean(unit == c):.0%}" for c in UNIT_NAMES)
    print(f"cases: {args.cases:,} open, dispatched over the 60 days before "
          f"{now_dt.astimezone(cal.tz):%Y-%m-%d %H:%M %Z}; limits {mix}")

    times = []
    result: dict[str, np.ndarray] = {}
    for _ in range(max(args.repeat, 1)):
        t0 = time.perf_counter()
        result = evaluate(cal, dispatched, unit, value, now, timing.due_soon_ratio)
        times.append(time.perf_counter() - t0)
    verdict = "OK" if min(times) <= 2.0 * args.cases / 1_000_000 else "OVER TARGET"
    print(f"vectorised, {args.cases:,} cases: first {times[0]:.3f} s, best {min(times):.3f} s, "
          f"median {statistics.median(times):.3f} s of {len(times)} "
          f"(target ≤ 2 s per 1M: {verdict})")
    print(f"  overdue {int(result['overdue'].sum()):,}, due soon {int(result['due_soon'].sum()):,}, "
          f"on track {int((~result['overdue'] & ~result['due_soon']).sum()):,}")

    # Baseline: the same deadlines one case at a time through the Python API.
    rng = np.random.default_rng(args.seed + 1)
    pool = np.flatnonzero(unit != NATURAL_HOURS)
    picked = rng.choice(pool, size=min(args.sample, pool.size), replace=False)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    starts = [epoch + timedelta(microseconds=int(t)) for t in dispatched[picked].astype(np.int64)]
    values = value[picked].tolist()
    by_days = (unit[picked] == WORK_DAYS).tolist()
    t0 = time.perf_counter()
    deadlines = [cal.add_days(s, v) if d else cal.add(s, v * 60)
                 for s, v, d in zip(starts, values, by_days, strict=False)]
    per_case = time.perf_counter() - t0
    rate = len(picked) / per_case
    projected = args.cases / rate
    print(f"per-case add(), {len(picked):,} 工作时/工作日 cases: {per_case:.3f} s = {rate:,.0f} cases/s "
          f"→ {projected:.1f} s per {args.cases:,}; vectorised is {projected / min(times):.0f}× faster")

    expected = result["deadline"][picked]
    got = np.array([as_utc64(d) for d in deadlines])
    mismatches = int((got != expected).sum())
    print(f"check: {len(picked) - mismatches:,}/{len(picked):,} sampled deadlines identical "
          "(vectorised vs add())")
    benchkit.result(cases=args.cases, vectorised_best_s=min(times), per_case_projected_s=projected,
                    speedup=projected / min(times), mismatches=mismatches)
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
