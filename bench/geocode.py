"""Benchmark geocoding (地理编码) on the committed test set of rewritten demo-gazetteer addresses.

Run: ``python bench/geocode.py [--limit N] [--repeat 3]`` (``--smoke``: 200 addresses, one pass)

Builds the demo city and its gazetteer in a temporary SQLite database (~15 s), checks that
the committed test set (``bench/data/geocode-testset.csv``, made by ``bench/geovariants.py``,
which never imports the matcher) was made from this gazetteer, then geocodes every address
with ``Geocoder.load(session).geocode(text)``. Figures: the share placed in the right grid,
the share placed in a wrong grid and the share left 未定位, overall and per kind of rewrite;
geocodes/s in one process (best of ``--repeat`` passes). Baseline, same run: exact match only
(the text as written, trimmed, looked up among the gazetteer's addresses and POI names).
Targets: ≥ 95 % right, ≤ 1 % wrong, ≥ 2,000 geocodes/s. Stress figure: the addresses of
``--missing-roads`` roads taken out of the gazetteer (a new road, another city's) must all stay
未定位.
"""

from __future__ import annotations

import argparse
import ast
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchkit  # noqa: E402
import geovariants  # noqa: E402

TARGET_RIGHT, TARGET_WRONG, TARGET_RATE = 0.95, 0.01, 2000.0
ROAD = re.compile(r"(?:区)?([一-鿿]+?(?:大道|街|路))\d")


def _generator_is_apart() -> None:
    """The test set's generator must not import the matcher (its rewrites would share its ideas)."""
    tree = ast.parse(Path(geovariants.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        assert not any(n.startswith("dashboard.geocode") for n in names), "bench/geovariants.py imports the matcher"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="only the first N addresses (0: all)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the best counts")
    parser.add_argument("--missing-roads", type=int, default=10,
                        help="roads taken out of the gazetteer for the stress figure (theirs must stay 未定位)")
    benchkit.add_smoke(parser, limit=200, repeat=1, missing_roads=2)
    args = benchkit.parse(parser)
    _generator_is_apart()
    from sqlalchemy import select

    from dashboard.geocode.gazetteer import load_divisions, load_places
    from dashboard.geocode.matcher import Geocoder
    from dashboard.store.models import GazetteerEntry

    started = time.perf_counter()
    cases = geovariants.read()
    if args.limit:
        cases = cases[: args.limit]
    with tempfile.TemporaryDirectory(prefix="geocode-bench-") as tmp:
        t = time.perf_counter()
        sessions = geovariants.demo_database(Path(tmp))
        t_build = time.perf_counter() - t
        with sessions() as session:
            t = time.perf_counter()
            geocoder = Geocoder.load(session)
            t_load = time.perf_counter() - t
            entries = session.execute(select(GazetteerEntry.kind, GazetteerEntry.address, GazetteerEntry.name,
                                             GazetteerEntry.grid_code)).all()
            places, divisions = load_places(session), load_divisions(session)
    known = {e.address for e in entries if e.kind == "house"} | {f"{e.name}（{e.address}）" for e in entries}
    stale = [c.source for c in cases if c.source not in known]
    if stale:
        sys.exit(f"the test set was not made from this gazetteer ({len(stale)} unknown sources, e.g. "
                 f"{stale[0]}): run python bench/geovariants.py")
    print(f"gazetteer: {len(geocoder):,} places (demo city and gazetteer built in {t_build:.1f} s, "
          f"matcher loaded in {t_load:.2f} s); test set: {len(cases):,} addresses")

    texts = [c.text for c in cases]
    best = float("inf")
    answers = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        answers = [geocoder.geocode(x) for x in texts]
        best = min(best, time.perf_counter() - t)
    rate = len(texts) / best

    exact: dict[str, str] = {}
    for e in entries:
        exact.setdefault(e.address, e.grid_code)
        if e.name:
            exact.setdefault(e.name, e.grid_code)
    t = time.perf_counter()
    base_answers = [exact.get(x.strip()) for x in texts]
    base_rate = len(texts) / max(time.perf_counter() - t, 1e-9)

    def tally(got: list[str | None], which: list[int]) -> tuple[float, float, float]:
        right = sum(1 for i in which if got[i] == cases[i].expected_grid)
        wrong = sum(1 for i in which if got[i] is not None and got[i] != cases[i].expected_grid)
        n = max(1, len(which))
        return right / n, wrong / n, (len(which) - right - wrong) / n

    grids = [a.grid_code if a else None for a in answers]
    everyone = list(range(len(cases)))
    shares = Counter(c.kind for c in cases)
    print(f"{'kind':<14}{'share':>7}{'right':>8}{'wrong':>8}{'未定位':>7}{'baseline right':>16}")
    for kind in geovariants.KINDS:
        which = [i for i in everyone if cases[i].kind == kind]
        r, w, u = tally(grids, which)
        br, _, _ = tally(base_answers, which)
        print(f"{kind:<14}{shares[kind] / len(cases):>7.0%}{r:>8.1%}{w:>8.1%}{u:>8.1%}{br:>16.1%}")
    right, wrong, unplaced = tally(grids, everyone)
    base_right, base_wrong, _ = tally(base_answers, everyone)
    print(f"{'all':<14}{1:>7.0%}{right:>8.1%}{wrong:>8.1%}{unplaced:>8.1%}{base_right:>16.1%}")
    methods = Counter(a.method for a in answers if a)
    wrongs = [i for i in everyone if grids[i] is not None and grids[i] != cases[i].expected_grid]
    print(f"methods: {dict(methods)}; wrongly placed: {len(wrongs)}{', first 5:' if wrongs else ''}")
    for i in wrongs[:5]:
        a = answers[i]
        assert a is not None
        print(f"  {cases[i].text} → {a.matched} ({a.score:.0f}, {a.method}); expected {cases[i].source}")
    print(f"geocoder: {rate:,.0f} geocodes/s (one process, best of {max(1, args.repeat)}); "
          f"baseline exact-only: {base_rate:,.0f}/s, {base_right:.1%} right, {base_wrong:.1%} wrong")
    # Stress: a road the gazetteer does not have (new, or another city's): every answer is wrong.
    rng = random.Random(7)
    road_of = {p.address: m.group(1) for p in places if p.kind == "house" and (m := ROAD.search(p.address))}
    missing_total = missing_placed = 0
    for road in rng.sample(sorted(set(road_of.values())), min(args.missing_roads, len(set(road_of.values())))):
        without = Geocoder([p for p in places if road not in p.address], divisions)
        gone = sorted(a for a, r in road_of.items() if r == road)
        for address in rng.sample(gone, min(40, len(gone))):
            missing_total += 1
            missing_placed += without.geocode(address) is not None
    missing_share = missing_placed / max(1, missing_total)
    print(f"stress: {missing_total} addresses on {args.missing_roads} roads taken out of the gazetteer: "
          f"{missing_share:.1%} placed (each a wrong grid; target 0)")
    ok = right >= TARGET_RIGHT and wrong <= TARGET_WRONG and rate >= TARGET_RATE and missing_placed == 0
    print(f"target ≥ {TARGET_RIGHT:.0%} right, ≤ {TARGET_WRONG:.0%} wrong, ≥ {TARGET_RATE:,.0f}/s: "
          f"{'OK' if ok else 'BELOW TARGET'}; total runtime {time.perf_counter() - started:.1f} s")
    benchkit.result(addresses=len(cases), right_pct=100 * right, wrong_pct=100 * wrong,
                    unplaced_pct=100 * unplaced, geocodes_per_s=rate, baseline_right_pct=100 * base_right,
                    baseline_wrong_pct=100 * base_wrong, baseline_per_s=base_rate,
                    missing_road_placed_pct=100 * missing_share)
    if not ok and not args.smoke:
        sys.exit(1)


if __name__ == "__main__":
    main()
