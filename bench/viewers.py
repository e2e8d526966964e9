"""Concurrent viewers: wall screens, /view sessions and API clients against ``gridhall serve``.

    python bench/viewers.py                          # PostgreSQL (test_bench) + Redis server; N = 50,100,200,400
    python bench/viewers.py --sizes 50,100 --duration 30 --pg-url postgresql://postgres@127.0.0.1:5432/mine
    python bench/viewers.py --no-baseline            # the normal server only
    python bench/viewers.py --smoke                  # tiny (seconds): checks it runs

It builds the demo city in a fresh schema of ``--pg-url`` (``wall_latency.prepare_city``, with
``--history-days`` of history), starts ``gridhall ingest`` and ``gridhall serve --workers N``
(gunicorn) as subprocesses, and keeps a background load of ``--rate`` new cases per second
flowing into the feed so the screens have something to update; besides, every
``--probe-every`` seconds it XADDs a new case on one of ``--probe-grids`` grids the background
load never touches, noting the time, so each wall's ``XADD → answer`` can be measured. Then,
for each N of ``--sizes``, ``--loaders`` load processes (asyncio + aiohttp, each with its share
of the N viewers) open the screens the way their clients do, each viewer from its own
loopback address (127.1.x.y: per-client limits see N clients, as in a hall) —
``bench/screens.py`` says how each kind speaks:

- **wall screens**: display-token sign-in, the page, the geometry, then the wall's push
  protocol: the ``/wall/events`` stream (server-sent events, one gunicorn thread each while
  open) whose ``update`` events it applies, a refresh (with the screen's state and painted
  coordinate) on a ``change`` event or an update it cannot apply, the ``health`` events it
  applies, the 5 s safety poll while pushed (500 ms while the stream is down), the health poll
  (30 s while pushed, 2 s while the stream is down);
- **/view sessions**: a leader's sign-in (CSRF), the page, the geometry, the 30 s refresh;
- **API clients**: ``/api/v1/summary`` and ``/api/v1/overdue`` once a second each (a leader's
  bearer token per client).

``--mix`` splits N (default 2:1:2 walls : /view : API). Each viewer starts at a random point of
the first 60 % of ``--warmup`` (18 s at the default 30 s: a hall's screens come on over
seconds; sign-ins and page loads are the one-off figures, reported apart); answers are measured
for ``--duration`` seconds after it. A shorter warm-up measures the start-up burst instead: at
``--warmup 10`` (200 viewers starting within 6 s, each loading a 400 KB page and signing in)
the steady answers of the first seconds wait behind the start-ups.

The server's threads are sized for the streams: ``GRIDHALL_WEB_THREADS`` = the largest size's
wall screens + 4 reserved + 8 spare (``screens.threads_for``), so any one worker could hold
every stream (the kernel does not spread connections evenly); the figure is printed.

Figures per size: p50/p95/p99/max of each kind of answer — for walls, ``push→answer`` (a
change event's (or an unappliable update's) arrival → the answer of the refresh it caused), ``XADD → answer`` (a probe's
XADD → the first answer carrying its grid's new value, per screen), the refresh request
itself and the health poll — errors (anything but 2xx/304, timeouts after ``--timeout`` s,
failed sign-ins, a refused or dropped push stream), the server's CPU (gunicorn master +
workers, from /proc) per viewer, the workers' RSS sampled every second over the run and their
OS threads, the load generator's own CPU and the machine's busy share.

The **baseline** is the per-request-SQL path of the read API and /view: the same sizes up to
``--baseline-max`` again against a server started with ``GRIDHALL_READ_CACHE_S=0`` (the
per-(scope, second) read cache off).

Target (2 workers, this machine): 200 viewers at p95 ≤ 200 ms (the worst kind of steady
answer), 0 errors.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

import benchkit
import screens
from procstat import cpu_seconds, machine_busy, process_tree, rss_mb
from screens import Credentials, Tally, make_credentials, report_tally, split_of
from wall_latency import Env, Load, Prober

TARGET_N = 200
TARGET_P95_MS = 200.0


# -- one measured size -----------------------------------------------------------------------------
@dataclass
class Measured:
    mode: str
    n: int
    split: tuple[int, int, int]
    tally: Tally
    cpu_s: float  # server CPU seconds in the window
    window_s: float
    rss: list[float]  # MB, every second over the run (master + workers)
    busy: float  # machine busy share in the window
    loader_cpu_s: float
    loadavg: float  # the machine's 1-minute load average at the end (other work shows here)
    threads: list[int]  # each worker's OS threads at the end of the window (streams + others)

    @property
    def worst_p95(self) -> float:
        return self.tally.worst_p95

    @property
    def errors(self) -> int:
        return self.tally.n_errors

    @property
    def met(self) -> bool:
        return self.errors == 0 and self.worst_p95 <= TARGET_P95_MS


def worker_threads(web_pid: int) -> list[int]:
    """The OS threads of each gunicorn worker (gthread starts them as requests need them)."""
    out = []
    for pid in process_tree(web_pid):
        if pid == web_pid:
            continue
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Threads:"):
                    out.append(int(line.split()[1]))
        except OSError:
            pass
    return sorted(out)


def measure(args: argparse.Namespace, mode: str, n: int, base: str, creds: Credentials, web_pid: int,
            probes: Prober) -> Measured:
    loaders = max(1, min(args.loaders, n))
    begin = time.time() + 3.0  # the load processes' start-up (spawn, imports)
    window = (begin + args.warmup, begin + args.warmup + args.duration)
    ctx = multiprocessing.get_context("spawn")
    rss: list[float] = []
    threads: list[int] = []
    cpu0: tuple[float, dict[int, float], tuple[int, int]] | None = None
    cpu1: tuple[float, dict[int, float], tuple[int, int]] | None = None
    with ctx.Pool(loaders) as pool:
        pending = screens.start_loaders(pool, base, screens.viewer_list(n, args.mix, creds), loaders, begin,
                                        args.warmup * 0.6, window, args.timeout, args.seed,
                                        redis_url=args.redis_url, probe_key=probes.key, probe_grids=probes.grids)
        while not pending.ready():
            now = time.time()
            pids = process_tree(web_pid)
            rss.append(rss_mb(pids))
            if cpu0 is None and now >= window[0]:
                cpu0 = (now, cpu_seconds(pids), machine_busy())
            elif cpu0 is not None and cpu1 is None and now >= window[1]:
                cpu1 = (now, cpu_seconds(pids), machine_busy())
            if cpu0 is not None and cpu1 is None:
                threads = worker_threads(web_pid)  # the last sample in the window
            pending.wait(0.5 if cpu1 is None else 1.0)
        total, loader_cpu = screens.merged(pending.get(), window)
    if cpu0 is None:
        cpu0 = (window[0], {}, (0, 0))
    if cpu1 is None:
        cpu1 = (time.time(), cpu_seconds(process_tree(web_pid)), machine_busy())
    cpu = sum(v - cpu0[1].get(pid, 0.0) for pid, v in cpu1[1].items() if v >= cpu0[1].get(pid, 0.0))
    (ta, _, busy0), (tb, _, busy1) = cpu0, cpu1
    busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    return Measured(mode, n, split_of(n, args.mix), total, cpu, max(tb - ta, 1e-3), rss, busy, loader_cpu,
                    os.getloadavg()[0], threads)


def report(m: Measured) -> None:
    walls, views, apis = m.split
    print(f"\n== {m.mode}, N={m.n}: {walls} wall screens, {views} /view sessions, {apis} API clients; "
          f"{m.window_s:.0f} s measured")
    report_tally(m.tally)
    cpu_share = m.cpu_s / max(m.window_s, 1e-9)
    rss = m.rss or [float("nan")]
    print(f"  server: CPU {100 * cpu_share:.0f}% of a core = {1000 * cpu_share / m.n:.2f} ms CPU per viewer-second; "
          f"RSS (master + workers) {rss[0]:.0f} → {rss[-1]:.0f} MB, max {max(rss):.0f} MB; "
          f"OS threads per worker {'/'.join(map(str, m.threads)) or '?'}")
    print(f"  load generator: {m.loader_cpu_s:.1f} s CPU in all; machine busy {100 * m.busy:.0f}% in the window, "
          f"load average {m.loadavg:.1f} on {os.cpu_count()} cores at its end")
    verdict = "MET" if m.met else "missed"
    print(f"  worst steady p95 {m.worst_p95:.0f} ms, {m.errors} error(s): p95 ≤ {TARGET_P95_MS:.0f} ms and "
          f"0 errors {verdict}")


# -- setup -----------------------------------------------------------------------------------------
class ViewersEnv(Env):
    """wall_latency's environment, restarting the web server with other variables (the baseline mode)."""

    def restart_web(self, workers: int, extra: dict[str, str]) -> int:
        old = self.procs.pop("web", None)
        if old is not None and old.poll() is None:
            old.send_signal(signal.SIGTERM)
            try:
                old.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(old.pid, signal.SIGKILL)  # its own session (start_new_session)
                old.wait()
        self.extra = extra
        self.start("web", ["serve", "--workers", str(workers), "--no-access-log"])
        self.wait_http("/healthz", 90)
        return self.procs["web"].pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,100,200,400", help="viewer counts N, comma-separated")
    parser.add_argument("--mix", default="2:1:2", help="walls : /view sessions : API clients")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per size")
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="seconds before the measurement (viewers sign in during its first 60%%)")
    parser.add_argument("--baseline-max", type=int, default=TARGET_N,
                        help="also measure the per-request-SQL baseline at the sizes up to this")
    parser.add_argument("--no-baseline", action="store_true", help="measure the normal server only")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--loaders", type=int, default=2, help="load processes (asyncio, aiohttp)")
    parser.add_argument("--rate", type=float, default=20.0, help="background new cases per second")
    parser.add_argument("--probe-every", type=float, default=1.0,
                        help="seconds between probe cases (XADD → answer on every wall)")
    parser.add_argument("--probe-grids", type=int, default=40, help="grids reserved for the probes")
    parser.add_argument("--history-days", type=int, default=1, help="days of demo history (0: none)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request counts as an error")
    parser.add_argument("--pg-url", default=benchkit.DEFAULT_PG_URL,
                        help="PostgreSQL (a fresh schema, dropped after; the database is created when missing)")
    parser.add_argument("--redis-url", default=benchkit.DEFAULT_REDIS_URL,
                        help="a Redis server (the web workers share it); keys under a prefix deleted after")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp data dir (with the process logs)")
    benchkit.add_smoke(parser, sizes="5", duration=3.0, warmup=3.0, workers=1, loaders=1, rate=5.0,
                       history_days=0)
    args = benchkit.parse(parser)
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        benchkit.needs("the aiohttp package; install the test extras: pip install -e '.[test]'")
    sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    args.mix = tuple(int(x) for x in args.mix.split(":"))
    if len(args.mix) != 3 or min(sizes) < 1:
        parser.error("--mix is three numbers a:b:c and --sizes positive")
    benchkit.require_redis(args.redis_url)

    env = ViewersEnv(args)
    client: redis.Redis | None = None
    load: Load | None = None
    prober: Prober | None = None
    results: list[Measured] = []
    args.prog = "viewers bench"
    try:
        settings, grids, _token = env.prepare(args.history_days)
        creds = make_credentials(settings, max(split_of(n, args.mix)[0] for n in sizes),
                                 max(split_of(n, args.mix)[2] for n in sizes))
        print(f"  {len(creds.walls)} display tokens, {len(creds.leaders)} leaders, {len(creds.api)} API tokens")
        client = redis.Redis.from_url(args.redis_url)
        env.start("ingest", ["ingest"])
        prober = Prober(client, settings, grids, args.probe_grids, args.probe_every, args.seed)
        load = Load(redis.Redis.from_url(args.redis_url), settings, prober.others, args.rate, args.seed)
        load.start()
        prober.start()
        base = f"http://127.0.0.1:{env.port}"
        # Sign-ins come from up to N addresses within seconds; the per-address limit stays on.
        # Every worker can hold every wall's push stream (screens.threads_for).
        threads = screens.threads_for(len(creds.walls))
        common = {"GRIDHALL_LOGIN_RATE_PER_MINUTE": "1000", "GRIDHALL_WEB_THREADS": str(threads)}
        modes: list[tuple[str, dict[str, str], list[int]]] = [("read cache on", {}, sizes)]
        if not args.no_baseline:
            base_sizes = [n for n in sizes if n <= args.baseline_max]
            if base_sizes:
                modes.append(("baseline: per-request SQL", {"GRIDHALL_READ_CACHE_S": "0"}, base_sizes))
        for mode, extra, mode_sizes in modes:
            web_pid = env.restart_web(args.workers, {**common, **extra})
            print(f"\n{mode}: web ({args.workers} workers × {threads} threads) up at {base}"
                  + (f" with {' '.join(f'{k}={v}' for k, v in extra.items())}" if extra else ""))
            for n in mode_sizes:
                m = measure(args, mode, n, base, creds, web_pid, prober)
                report(m)
                results.append(m)
                time.sleep(2.0)  # the last connections close
        load.stop_ev.set()
        prober.stop_ev.set()

        # -- summary ------------------------------------------------------------------------------
        print(f"\nsummary ({args.workers} workers, {args.loaders} load processes on the same machine, "
              f"{threads} threads each; background {args.rate:g} new cases/s, a probe every {args.probe_every:g} s; "
              f"p95 = the worst steady kind's)")
        print(f"  {'':<26} {'':>4} {'all steady answers (ms)':^39} {'worst':>7} {'wall p95 (ms)':^15}")
        print(f"  {'mode':<26} {'N':>4} {benchkit.DIST_HEAD} {'p95':>7} {'push':>7} {'XADD':>7} {'errors':>6}"
              f" {'ms CPU/viewer-s':>15} {'RSS max MB':>10}  target")
        for m in results:
            print(f"  {m.mode:<26} {m.n:>4} {benchkit.dist(m.tally.steady)} {m.worst_p95:7.1f}"
                  f" {m.tally.p('wall push→answer', 95):7.1f} {m.tally.p('wall XADD→answer', 95):7.1f} {m.errors:>6}"
                  f" {1000 * m.cpu_s / m.window_s / m.n:15.2f} {max(m.rss or [0.0]):10.0f}"
                  f"  {'MET' if m.met else 'missed'}")
        normal = [m for m in results if m.mode == "read cache on"]
        baseline = {m.n: m for m in results if m.mode != "read cache on"}
        if not normal or not normal[0].tally.steady:
            print("no answer was measured")
            sys.exit(1)
        met = [m.n for m in normal if m.met]
        at = max((m for m in normal if m.n <= TARGET_N), key=lambda m: m.n, default=normal[0])
        print(f"target: {TARGET_N} viewers at p95 ≤ {TARGET_P95_MS:.0f} ms with 0 errors — "
              + (f"at N={at.n}: p95 {at.worst_p95:.0f} ms, {at.errors} error(s): {'MET' if at.met else 'MISSED'}"))
        figures: dict[str, float | int] = {"viewers": max(met, default=0), "at_n": at.n,
                                           "p95_ms": at.worst_p95, "errors": at.errors}
        if at.n in baseline:  # no baseline_p95_ms when the baseline answered nothing in time at that size
            if baseline[at.n].tally.steady:
                figures["baseline_p95_ms"] = baseline[at.n].worst_p95
            figures["baseline_errors"] = baseline[at.n].errors
        for name, kind in (("push_p95_ms", "wall push→answer"), ("xadd_p95_ms", "wall XADD→answer")):
            if at.tally.times.get(kind):
                figures[name] = at.tally.p(kind, 95)
        figures["threads"] = threads
        figures["cpu_ms_per_viewer_s"] = 1000 * at.cpu_s / at.window_s / at.n
        figures["rss_max_mb"] = max(at.rss or [0.0])
        benchkit.result(**figures)
    finally:
        env.finish(client, load, prober)


if __name__ == "__main__":
    main()
