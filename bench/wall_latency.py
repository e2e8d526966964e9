"""Wall latency: XADD of a case event → the change visible on /wall in a real browser.

    python bench/wall_latency.py                      # SQLite + Redis server, 200 probes at 200 events/s
    python bench/wall_latency.py --pg-url postgresql://postgres@127.0.0.1:5432/test_bench
    python bench/wall_latency.py --probes 400 --rate 200 --workers 2
    python bench/wall_latency.py --smoke              # tiny (seconds): checks it runs
    python bench/wall_latency.py --mode push          # only the wall as it runs (default: both)

It builds a fresh environment (a temp GRIDHALL_DATA_DIR; SQLite in it, or a fresh schema of
``--pg-url`` that is dropped afterwards; the Redis server of ``--redis-url`` under a unique
GRIDHALL_REDIS_PREFIX whose keys are deleted afterwards), imports the demo city
(``dashboard.demo.democity.generate_city`` + ``dashboard.store.cityimport.import_city``, optionally
``--history-days`` of history), starts ``gridhall ingest`` and ``gridhall serve --workers N
--no-access-log`` as subprocesses, and opens ``/wall?metric=open`` in headless Chromium.

Then, with a background load of ``--rate`` new cases per second reported on random grids (via
``feeds.producer.Producer``), it runs ``--probes`` probes one after another. A probe picks a
grid reserved for probes (the background load never touches those, so nothing else changes
their value), reads the value the page shows for it (``window.gridhall.wall.values[code]``,
the map's "open cases" colour), XADDs a ``reported`` event of a new case on it, and waits for
the page to show the new value. The page watches the value in a ``requestAnimationFrame``
loop, so the time it records (``performance.timeOrigin + performance.now()``) is the frame in
which the restyled cell is painted. Latency = that time − the wall-clock time just before the
XADD (same machine, same clock).

Breakdown per probe:

- **ingest**: XADD → the change notice that names the probe's case (the notice's stream id
  is the Redis clock when the ingest appended it, right after the SQL commit);
- **to answer**: notice → the arrival of the pushed update that brought the value (the
  follower's apply, the hub's wait for its next update, its computation, the write), or the
  start of the ``_dash-update-component`` request that brought it (with push blocked: waiting
  for the next 500 ms poll; pushed: a page that had missed an update asks); measured with
  wrappers around ``window.EventSource`` and ``window.fetch``;
- **request**: request start → response headers (server time + loopback); 0 for a pushed update;
- **render**: the answer's arrival → the frame that shows the value (JSON parse, Dash, wall.js).

Two modes in one run (``--mode both``, the default): first the baseline, the page with its
push stream (``/wall/events``) blocked so it polls every 500 ms, then the wall as it runs,
pushed. The RESULT line gives the pushed figures and the baseline's (``poll_p50_ms``,
``poll_p95_ms``).

Meanwhile ``--viewers`` simulated viewers (default 200: walls speaking the push protocol,
/view sessions and API clients, ``--mix`` 2:1:2; the clients of ``bench/screens.py``, in
``--loaders`` processes) stay connected from before the first page opens to after the last
probe, so the browser measures a wall among many; the web server's threads are sized for
their streams plus the browser's (``screens.threads_for``). Their answer times, errors and
XADD → answer (the same probes) are printed after the browser's figures. ``--viewers 0``
measures the browser alone.

Target: p95 ≤ 1 s; goal: ≤ 250 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import redis

import benchkit
from benchkit import CHROMIUM, free_port, percentile
from screens import Tally, make_credentials, merged, report_tally, split_of, start_loaders, threads_for, viewer_list

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.output.pdf import CHROMIUM_ARGS  # noqa: E402
from dashboard.settings import Settings, load_settings  # noqa: E402
from feeds.contract import CaseEventMessage  # noqa: E402
from feeds.keys import CHANGES_STREAM, HEALTH_KEY, stream_id  # noqa: E402
from feeds.producer import Producer  # noqa: E402

CLASSES = [("event", "07001"), ("event", "06010"), ("event", "09005"), ("component", "01002")]
# XREAD's reply (decode_responses): per stream, its entries; an entry trimmed meanwhile has no fields.
_ReadReply = list[tuple[str, list[tuple[str, dict[str, str] | None]]]]
TARGET_P95_MS = 1000.0
GOAL_MS = 250.0

# Installed before the page's own scripts: records the wall refresh requests (fetch) and the
# pushed updates (EventSource "update" events: arrival = start = end, kind "push"), and
# watches one grid's value in a requestAnimationFrame loop.
INIT_JS = r"""
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const G = window.__ghbench = { reqs: [], watch: null };
  const orig = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === "string" ? input : (input && input.url) || "";
    const body = init && typeof init.body === "string" ? init.body : "";
    if (url.indexOf("_dash-update-component") !== -1 && body.indexOf("wall-grid.data") !== -1) {
      const rec = { start: now(), end: null, status: null };
      G.reqs.push(rec);
      if (G.reqs.length > 400) { G.reqs.splice(0, G.reqs.length - 400); }
      return orig.apply(this, arguments).then((r) => { rec.end = now(); rec.status = r.status; return r; },
                                               (e) => { rec.end = now(); rec.status = -1; throw e; });
    }
    return orig.apply(this, arguments);
  };
  const Real = window.EventSource;
  if (Real) {
    class Timed extends Real {
      addEventListener(type, listener, options) {
        if (type === "update") {
          const inner = listener;
          listener = function (e) {
            const t = now();
            G.reqs.push({ start: t, end: t, status: 200, kind: "push" });
            if (G.reqs.length > 400) { G.reqs.splice(0, G.reqs.length - 400); }
            return inner.call(this, e);
          };
        }
        return super.addEventListener(type, listener, options);
      }
    }
    window.EventSource = Timed;
  }
  const loop = () => {
    const w = G.watch;
    if (w && w.seen === null) {
      const vals = window.gridhall && window.gridhall.wall && window.gridhall.wall.values;
      const v = vals ? (vals[w.code] || 0) : 0;
      if (v !== w.v0) { w.seen = now(); w.v = v; }
    }
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
})();
"""

ARM_JS = """([code]) => {
  const vals = (window.gridhall && window.gridhall.wall && window.gridhall.wall.values) || {};
  const v0 = vals[code] || 0;
  window.__ghbench.watch = { code: code, v0: v0, seen: null, v: null };
  return v0;
}"""

RESULT_JS = """() => {
  const G = window.__ghbench, w = G.watch;
  let req = null;
  for (const r of G.reqs) {  // the last refresh answered (200) before the value showed
    if (r.status === 200 && r.end !== null && r.end <= w.seen) { req = r; }
  }
  return { seen: w.seen, v0: w.v0, v: w.v, req: req };
}"""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def new_case(prefix: str, n: int, grid: str, rng: random.Random) -> CaseEventMessage:
    """A ``reported`` event of a new case on ``grid`` (contract v1, docs/feed.md)."""
    cid = f"{prefix}{n:07d}"
    kind, klass = rng.choice(CLASSES)
    return CaseEventMessage(event_id=f"{cid}-1", case_id=cid, type="reported", occurred_at=_now_iso(),
                            source="supervisor", actor="BENCH", kind=kind, class_code=klass, grid_code=grid,
                            description="wall latency bench", urgency="normal")


# -- environment -----------------------------------------------------------------------------------
class Env:
    """Temp data dir, database (SQLite or a PG schema), Redis prefix, and the child processes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir = Path(tempfile.mkdtemp(prefix="gh-wall-latency-"))
        self.prefix = f"ghbench-{uuid.uuid4().hex[:8]}:"
        self.port = free_port()
        self.schema: str | None = None
        self.database_url: str | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.extra: dict[str, str] = {}  # more variables for the children (GRIDHALL_WEB_THREADS, ...)
        self.logs: dict[str, Path] = {}
        if args.pg_url:
            admin, self.schema, self.database_url = benchkit.pg_schema(args.pg_url, "gh_wall")
            admin.dispose()

    def settings(self) -> Settings:
        # database_url always given: None means this run's SQLite, whatever GRIDHALL_DATABASE_URL
        # says (the children get no GRIDHALL_* but these).
        return load_settings(data_dir=self.data_dir, redis_url=self.args.redis_url, redis_prefix=self.prefix,
                             port=self.port, host="127.0.0.1", database_url=self.database_url)

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
        env.update(GRIDHALL_DATA_DIR=str(self.data_dir), GRIDHALL_REDIS_URL=self.args.redis_url,
                   GRIDHALL_REDIS_PREFIX=self.prefix, GRIDHALL_PORT=str(self.port), GRIDHALL_HOST="127.0.0.1",
                   PYTHONUNBUFFERED="1")
        if self.database_url:
            env["GRIDHALL_DATABASE_URL"] = self.database_url
        return {**env, **self.extra}

    def start(self, name: str, argv: list[str]) -> None:
        log = self.data_dir / f"{name}.log"
        self.logs[name] = log
        fh = open(log, "wb")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "cli", *argv], cwd=str(ROOT),
                                            env=self.child_env(), stdout=fh, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait_http(self, path: str, timeout: float) -> None:
        benchkit.wait_http(f"http://127.0.0.1:{self.port}{path}", timeout,
                           lambda: benchkit.check_children(self.procs, self.logs))

    def prepare(self, history_days: int) -> tuple[Settings, list[str], str]:
        """Say where the bench runs, then build the city: (settings, grid codes, a display token)."""
        print(f"{self.args.prog}: data dir {self.data_dir}, Redis {self.args.redis_url} prefix {self.prefix!r}, "
              f"database {'PostgreSQL schema ' + self.schema if self.schema else 'SQLite'}, port {self.port}")
        settings = self.settings()
        t0 = time.perf_counter()
        grids, token = prepare_city(settings, history_days)
        print(f"  city ready in {time.perf_counter() - t0:.1f}s: {len(grids)} grids")
        return settings, grids, token

    def close(self, client: redis.Redis | None) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _name, p in self.procs.items():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # the session this script started for it
                p.wait()
        if client is not None:
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        if self.schema:
            import sqlalchemy as sa

            url = self.args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
            benchkit.drop_schema(sa.create_engine(url), self.schema)
        if not self.args.keep_logs:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def finish(self, client: redis.Redis | None, *threads: Load | Prober | NoticeWatch | None) -> None:
        """The end of a bench, however it ends: its threads stopped, then :meth:`close`."""
        for t in threads:
            if t is not None:
                t.stop_ev.set()
                if t.ident is not None:  # started
                    t.join(5)
        self.close(client)
        if self.args.keep_logs:
            print(f"logs kept in {self.data_dir}")


def prepare_city(settings: Settings, history_days: int) -> tuple[list[str], str]:
    """Schema, classification, the demo city (and some history); the grid codes and a display token."""
    from sqlalchemy import select

    from dashboard.demo.democity import generate_city
    from dashboard.rules.classification import Classification
    from dashboard.store import db, users
    from dashboard.store.cityimport import import_city
    from dashboard.store.models import Grid
    from dashboard.store.reference import Reference, set_meta, sync_classification

    db.upgrade(settings)
    engine = db.make_engine(settings)
    sessions = db.session_factory(engine)
    scheme = Classification.from_settings(settings)
    with db.transaction(sessions) as session:
        sync_classification(session, scheme)
    city_dir = settings.data_dir / "demo-city"
    summary = generate_city(city_dir)
    import_city(city_dir, sessions)
    with db.transaction(sessions) as session:
        set_meta(session, "built_by", "demo")
    if history_days > 0:
        from feeds.history import build_history
        from feeds.scenario import CityModel

        ref = Reference.load(sessions, scheme, settings)
        with sessions() as session:
            city = CityModel.load(session, scheme, settings.tz)
        n_cases, n_events = build_history(sessions, ref, city, datetime.now(UTC), days=history_days,
                                          daily_cases=300)
        print(f"  history: {history_days} day(s), {n_cases} cases, {n_events} events")
    with sessions() as session:
        grids = list(session.scalars(select(Grid.code).order_by(Grid.code)))
    with db.transaction(sessions) as session:
        # The browser opens the wall as a wall screen does: signed in by a display token.
        token = users.screen_token(session, "bench-wall")
    engine.dispose()
    print(f"  demo city: {summary}")
    return grids, token


# -- background load and the change-notice watcher -------------------------------------------------
class Load(threading.Thread):
    """``rate`` new cases per second on random grids, in ticks of 50 ms (one pipeline each)."""

    def __init__(self, client: redis.Redis, settings: Settings, grids: list[str], rate: float, seed: int) -> None:
        super().__init__(daemon=True, name="bench-load")
        self.producer = Producer(client, settings)
        self.grids, self.rate = grids, rate
        self.rng = random.Random(seed)
        self.stop_ev = threading.Event()
        self.sent = 0
        self.prefix = f"bgl{uuid.uuid4().hex[:6]}-"

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop_ev.is_set():
            due = int((time.monotonic() - t0) * self.rate) - self.sent
            if due > 0:
                msgs = [new_case(self.prefix, self.sent + i, self.rng.choice(self.grids), self.rng) for i in range(due)]
                self.producer.publish_many(msgs)
                self.sent += due
            self.stop_ev.wait(0.05)


PROBES_KEY = "bench:probes"  # under the run's Redis prefix: "grid|XADD ms" of each probe


class Prober(threading.Thread):
    """Probe cases on grids reserved for them (the background load leaves them alone).

    Each probe's XADD time goes to the Redis list :data:`PROBES_KEY`, so the simulated walls
    can time XADD → answer (``screens.match_probes``). As a thread it sends one every
    ``period`` seconds; ``wall_latency`` sends its own through :meth:`publish`.
    """

    def __init__(self, client: redis.Redis, settings: Settings, grids: list[str], n: int, period: float,
                 seed: int) -> None:
        super().__init__(daemon=True, name="bench-probes")
        self.rng = random.Random(seed)
        self.grids = self.rng.sample(grids, min(n, len(grids) // 4))
        reserved = set(self.grids)
        self.others = [g for g in grids if g not in reserved]  # for the background load
        self.client, self.period = client, period
        self.producer = Producer(client, settings)
        self.key = settings.key(PROBES_KEY)
        self.stop_ev = threading.Event()
        self.prefix = f"prb{uuid.uuid4().hex[:6]}-"

    def publish(self, msg: CaseEventMessage) -> float:
        """XADD ``msg`` and list it; the wall-clock ms just before the XADD."""
        t_ms = time.time() * 1000
        self.producer.publish(msg)
        self.client.rpush(self.key, f"{msg.grid_code}|{t_ms:.1f}")
        return t_ms

    def run(self) -> None:
        i = 0
        while not self.stop_ev.wait(self.period):
            self.publish(new_case(self.prefix + "t", i, self.grids[i % len(self.grids)], self.rng))
            i += 1


class NoticeWatch(threading.Thread):
    """Reads ``<prefix>changes`` and remembers when (stream id ms) each probe case was announced."""

    def __init__(self, client: redis.Redis, settings: Settings, case_prefix: str) -> None:
        super().__init__(daemon=True, name="bench-notices")
        self.client = redis.Redis(connection_pool=client.connection_pool.__class__(
            connection_class=client.connection_pool.connection_class,
            **{**client.connection_pool.connection_kwargs, "decode_responses": True, "socket_timeout": 5}))
        self.key = settings.key(CHANGES_STREAM)
        self.case_prefix = case_prefix
        self.stop_ev = threading.Event()
        self.seen: dict[str, float] = {}
        self.notices = 0

    def run(self) -> None:
        last = "$"
        while not self.stop_ev.is_set():
            try:
                resp = cast(_ReadReply | None, self.client.xread({self.key: last}, block=500, count=1000))
            except redis.RedisError:
                time.sleep(0.1)
                continue
            for _, items in resp or []:
                for entry_id, fields in items:
                    last = entry_id
                    self.notices += 1
                    ms = float(stream_id(entry_id)[0])
                    for cid in (fields or {}).get("cases", "").split(","):
                        if cid.startswith(self.case_prefix) and cid not in self.seen:
                            self.seen[cid] = ms


# -- probes --------------------------------------------------------------------------------------------
# Which pages a run measures: the wall as it runs (push, polling behind it) and, as the baseline
# in the same run, the same page with its push stream blocked (polling every 500 ms).
MODES = {"both": ("poll", "push"), "push": ("push",), "poll": ("poll",)}


def run_probes(page: Any, prober: Prober, prefix: str, rng: random.Random,
               args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """``args.probes`` probes one after another on ``page``: (results, lost)."""
    results = []
    lost = 0
    for i in range(args.probes):
        grid = prober.grids[i % len(prober.grids)]
        msg = new_case(prefix, i, grid, rng)
        v0 = page.evaluate(ARM_JS, [grid])
        t_x = prober.publish(msg)
        try:
            page.wait_for_function("() => window.__ghbench.watch.seen !== null", polling=20,
                                   timeout=args.timeout * 1000)
        except Exception:
            lost += 1
            print(f"  probe {i} on {grid}: not visible within {args.timeout:g}s")
            continue
        r = page.evaluate(RESULT_JS)
        results.append({"grid": grid, "case": msg.case_id, "xadd": t_x, "seen": r["seen"], "v0": v0, "v": r["v"],
                        "req": r["req"]})
        time.sleep(rng.uniform(0.0, 0.3))  # do not lock the probes to the poll phase
    return results, lost


def report_mode(mode: str, results: list[dict[str, Any]], lost: int, watch: NoticeWatch,
                args: argparse.Namespace) -> list[float]:
    """Print one mode's figures; returns its latencies (ms)."""
    lat = [r["seen"] - r["xadd"] for r in results]
    wrong = [r for r in results if r["v"] != r["v0"] + 1]
    ingest, to_req, request, render = [], [], [], []
    pushed = sum(1 for r in results if r["req"] and r["req"].get("kind") == "push")
    for r in results:
        n_ms = watch.seen.get(r["case"])
        if n_ms is not None:
            ingest.append(n_ms - r["xadd"])
        req = r["req"]
        if n_ms is not None and req:
            to_req.append(req["start"] - n_ms)
        if req:
            request.append(req["end"] - req["start"])
            render.append(r["seen"] - req["end"])
    print(f"[{mode}] probes: {len(results)} measured, {lost} lost (> {args.timeout:g}s)"
          + (f", {len(wrong)} showed a value other than before+1" if wrong else ""))
    if not lat:
        return lat
    print(f"[{mode}] XADD → visible on /wall (ms):  {benchkit.DIST_HEAD} {'mean':>7} {'min':>7}")
    print(f"  {'':<34} {benchkit.dist(lat)} {statistics.fmean(lat):7.0f} {min(lat):7.0f}")
    p95 = percentile(lat, 95)
    verdict = "MET" if p95 <= TARGET_P95_MS else "MISSED"
    goal = "met" if p95 <= GOAL_MS else "not met"
    print(f"  target p95 ≤ {TARGET_P95_MS:.0f} ms: {verdict} (p95 {p95:.0f} ms); goal ≤ {GOAL_MS:.0f} ms: {goal}")
    print(f"  {'breakdown (ms)':<44} {benchkit.DIST_HEAD}")
    print(f"  delivered by a pushed update: {pushed} of {len(results)} (the rest by a refresh answer)")
    ask = "pushed update arrival or refresh start" if mode == "push" else "refresh (poll) start"
    for name, xs in (("ingest: XADD → change notice (SQL commit)", ingest),
                     (f"to answer: notice → {ask}", to_req),
                     ("request: start → response headers (0: pushed)", request),
                     ("render: answer → painted frame", render)):
        if xs:
            print(f"  {name:<44} {benchkit.dist(xs)}")
    return lat


class Crowd:
    """``--viewers`` simulated viewers (bench/screens.py) connected while the browser measures.

    Sizes the web server's threads for their walls' push streams and the browser's
    (``screens.threads_for``); they run in ``--loaders`` processes until :meth:`stop`.
    """

    def __init__(self, env: Env, settings: Settings, prober: Prober, args: argparse.Namespace) -> None:
        self.args, self.prober = args, prober
        walls, _views, apis = split_of(args.viewers, args.mix)
        self.creds = make_credentials(settings, walls, apis)
        env.extra["GRIDHALL_WEB_THREADS"] = str(threads_for(walls + 1))
        env.extra["GRIDHALL_LOGIN_RATE_PER_MINUTE"] = "1000"  # N sign-ins within seconds
        self.base = f"http://127.0.0.1:{env.port}"
        self.stop_file = env.data_dir / "viewers.stop"
        self.pool: Any = None
        self.pending: Any = None
        self.window = (0.0, 0.0)

    def start(self) -> None:
        """Start the load processes; return once every viewer has had time to sign in."""
        import multiprocessing

        loaders = max(1, min(self.args.loaders, self.args.viewers))
        ramp = min(10.0, 0.05 * self.args.viewers)
        begin = time.time() + 3.0  # spawn, imports
        self.window = (begin + ramp + 2.0, float("inf"))  # measured until stop()
        self.pool = multiprocessing.get_context("spawn").Pool(loaders)
        self.pending = start_loaders(self.pool, self.base, viewer_list(self.args.viewers, self.args.mix, self.creds),
                                     loaders, begin, ramp, self.window, self.args.timeout, self.args.seed,
                                     stop_file=str(self.stop_file), redis_url=self.args.redis_url,
                                     probe_key=self.prober.key, probe_grids=self.prober.grids)
        time.sleep(max(0.0, self.window[0] - time.time()))
        print(f"  {self.args.viewers} protocol viewers connected ({loaders} load processes)")

    def stop(self) -> Tally | None:
        """Stop the viewers: what they saw, or None when they were never started or already stopped."""
        if self.pool is None:
            return None
        self.stop_file.touch()
        try:
            seen, _cpu = merged(self.pending.get(timeout=120), self.window)
        finally:
            self.pool.terminate()
            self.pool.join()
            self.pool = None
        return seen


# -- main ---------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=200.0, help="background events per second")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--probe-grids", type=int, default=40, help="grids reserved for the probes")
    parser.add_argument("--history-days", type=int, default=1, help="days of demo history (0: none)")
    parser.add_argument("--redis-url", default=benchkit.DEFAULT_REDIS_URL,
                        help="a Redis server (the web workers share it); keys under a prefix deleted after")
    parser.add_argument("--pg-url", default=None,
                        help="PostgreSQL instead of SQLite (a fresh schema, dropped after; "
                             "the database is created when missing)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of background load before the probes")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds a probe may take before it counts as lost")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mode", choices=sorted(MODES), default="both",
                        help="push (the wall as it runs), poll (push blocked: the baseline) or both in one run")
    parser.add_argument("--viewers", type=int, default=200,
                        help="simulated viewers connected meanwhile (bench/screens.py; 0: none)")
    parser.add_argument("--mix", default="2:1:2", help="their walls : /view sessions : API clients")
    parser.add_argument("--loaders", type=int, default=2, help="load processes of the viewers (asyncio, aiohttp)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp data dir (with the process logs)")
    benchkit.add_smoke(parser, probes=5, rate=20.0, workers=1, probe_grids=5, history_days=0, warmup=1.0,
                       viewers=4, loaders=1)
    args = benchkit.parse(parser)
    args.mix = tuple(int(x) for x in args.mix.split(":"))
    if len(args.mix) != 3 or args.viewers < 0:
        parser.error("--mix is three numbers a:b:c and --viewers not negative")
    benchkit.require_chromium()
    benchkit.require_redis(args.redis_url)

    from playwright.sync_api import sync_playwright

    rng = random.Random(args.seed)
    env = Env(args)
    client: redis.Redis | None = None
    load: Load | None = None
    watch: NoticeWatch | None = None
    crowd: Crowd | None = None
    args.prog = "wall latency bench"
    try:
        settings, grids, token = env.prepare(args.history_days)
        client = redis.Redis.from_url(args.redis_url)
        prober = Prober(client, settings, grids, args.probe_grids, 0.0, args.seed)
        load_grids = prober.others
        crowd = Crowd(env, settings, prober, args) if args.viewers else None

        env.start("ingest", ["ingest"])
        env.start("web", ["serve", "--workers", str(args.workers), "--no-access-log"])
        env.wait_http("/healthz", 90)
        print(f"  ingest and web ({args.workers} workers"
              + (f" × {env.extra['GRIDHALL_WEB_THREADS']} threads" if env.extra else "")
              + f") up at http://127.0.0.1:{env.port}/wall")
        if crowd is not None:
            crowd.start()

        probe_prefix = f"prb{uuid.uuid4().hex[:6]}-"
        watch = NoticeWatch(client, settings, probe_prefix)
        watch.start()
        load = Load(redis.Redis.from_url(args.redis_url), settings, load_grids, args.rate, args.seed)

        runs: dict[str, tuple[list[dict[str, Any]], int]] = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ta = time.monotonic()
            applied0 = int(client.hget(settings.key(HEALTH_KEY), "applied_total") or 0)
            for mode in MODES[args.mode]:
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.add_init_script(INIT_JS)
                if mode == "poll":  # the baseline: the push stream blocked, as a proxy might
                    page.route("**/wall/events*", lambda route: route.abort())
                t_nav = time.perf_counter()
                page.goto(f"http://127.0.0.1:{env.port}/wall?metric=open&token={token}", wait_until="commit",
                          timeout=120_000)  # among --viewers on a busy machine the first answer may be slow
                page.wait_for_function("() => document.documentElement.hasAttribute('data-wall-grids')",
                                       timeout=120_000)
                page.wait_for_function("() => !!document.documentElement.getAttribute('data-wall-version')",
                                       timeout=120_000)
                drawn = page.evaluate("() => document.documentElement.getAttribute('data-wall-grids')")
                want = "open" if mode == "push" else "down"
                page.wait_for_function(f"() => document.documentElement.getAttribute('data-wall-push') === '{want}'",
                                       timeout=30_000)
                print(f"  [{mode}] /wall drawn ({drawn} grids) in {time.perf_counter() - t_nav:.1f}s")
                if not load.is_alive():
                    load.start()
                time.sleep(args.warmup)
                print(f"  [{mode}] background load {args.rate:g} events/s on {len(load_grids)} grids; "
                      f"{args.probes} probes on {len(prober.grids)} reserved grids")
                runs[mode] = run_probes(page, prober, probe_prefix + mode[:2], rng, args)
                page.close()
            applied1 = int(client.hget(settings.key(HEALTH_KEY), "applied_total") or 0)
            elapsed = time.monotonic() - ta
            load.stop_ev.set()
            load.join(5)
            time.sleep(1.0)  # late notices of the last probes
            browser.close()
        seen = crowd.stop() if crowd is not None else None

        # -- figures ------------------------------------------------------------------------------
        print()
        print(f"background load: {load.sent:,} events sent in {elapsed:.1f}s ({load.sent / elapsed:.0f}/s), "
              f"ingest applied {applied1 - applied0:,} ({(applied1 - applied0) / elapsed:.0f}/s); "
              f"{watch.notices:,} change notices seen")
        lats = {mode: report_mode(mode, results, lost, watch, args) for mode, (results, lost) in runs.items()}
        print(f"setup: {args.workers} web workers, poll 500 ms without push (5 s with it), "
              f"{'PostgreSQL' if env.schema else 'SQLite'}, Redis {args.redis_url}")
        if crowd is not None and seen is not None:
            walls, views, apis = split_of(args.viewers, args.mix)
            print(f"\nmeanwhile {args.viewers} protocol viewers ({walls} walls, {views} /view, {apis} API; "
                  f"bench/screens.py), from the first probe to the last:")
            report_tally(seen)
        if not all(lats.values()):
            print("a mode measured no probe")
            sys.exit(1)
        main_mode = "push" if "push" in lats else "poll"
        lat = lats[main_mode]
        lost_n = sum(lost for _, lost in runs.values())
        figures: dict[str, float | int] = {"pushed": int(main_mode == "push"), "probes": len(lat), "lost": lost_n,
                                                 "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
                                                 "max_ms": max(lat)}
        if "poll" in lats and main_mode == "push":
            base = lats["poll"]
            figures["poll_p50_ms"] = percentile(base, 50)
            figures["poll_p95_ms"] = percentile(base, 95)
            print(f"push vs poll (same run): p50 {percentile(lat, 50):.0f} vs {percentile(base, 50):.0f} ms, "
                  f"p95 {percentile(lat, 95):.0f} vs {percentile(base, 95):.0f} ms "
                  f"({percentile(base, 95) / max(percentile(lat, 95), 1e-9):.1f}× at p95)")
        if seen is not None:
            figures.update(viewers=args.viewers, viewer_errors=seen.n_errors)
            if seen.steady:
                figures["viewer_p95_ms"] = seen.worst_p95
            if seen.times.get("wall XADD→answer"):
                figures["viewer_xadd_p95_ms"] = seen.p("wall XADD→answer", 95)
        benchkit.result(**figures)
    finally:
        if crowd is not None:
            crowd.stop()
        env.finish(client, load, watch)


if __name__ == "__main__":
    main()
