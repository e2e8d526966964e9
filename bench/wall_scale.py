"""Wall at megacity scale: first paint, per-update server time and bytes, vs a GROUP BY per refresh.

    python bench/wall_scale.py                               # 100,000 grids, 1,000,000 open cases
    python bench/wall_scale.py --grids 20000 --cases 200000  # smaller
    python bench/wall_scale.py --batches 40 --pg-url postgresql://postgres@127.0.0.1:5432/other
    python bench/wall_scale.py --smoke                       # tiny (seconds): checks it runs
    python bench/wall_scale.py --keep-schema                 # keep the built city; its schema is printed
    python bench/wall_scale.py --schema gh_wallscale_1a2b3c4d  # reuse it (no build; kept)

Builds the city with ``bench/bigcity.py`` (``build``) in a fresh PostgreSQL schema of
``--pg-url`` (default ``benchkit.DEFAULT_PG_URL``, the database created when missing), starts
``gridhall ingest`` and ``gridhall serve --workers 1 --no-access-log`` (the Redis server of
``--redis-url`` under a unique GRIDHALL_REDIS_PREFIX; the web server runs with the
``callbacks.wall`` logger at DEBUG so that it logs "wall refresh in X ms" for each refresh that
sends data) and measures, in headless Chromium at 1920×1080:

(a) **first paint** of ``/wall``: navigation start → the grids drawn (``data-wall-grids`` equals
    the grid count), the first colours applied (``data-wall-version``), the KPI strip filled
    (上报 not "—") and the overdue queue filled (its count note and rows), each seen in a
    ``requestAnimationFrame`` loop of the page; "complete" is the latest of them. The server's
    view load is reported separately: the first refresh request's time to first byte (it
    waits for the worker's live view to load from SQL) and the follower's "live view loaded"
    log line minus that request's start; plus size and time of the grid GeoJSON.
(b) **per update**: ``--batches`` small batches of ``reported`` events of new cases, each on
    ``--batch-grids`` (default cycling 1, 10, 50, 100) distinct random grids, 2 s apart; every
    ``_dash-update-component`` response of the wall refresh is captured (status 200 / 204,
    time to first byte from the browser's resource timing, body bytes, the number of grid
    cells it carries). An idle phase before it shows what the clock alone causes (deadlines
    passing, the queue's minutes). The server's own compute time per update comes from the
    DEBUG log lines: for each pushed update the hub's ("wall push update in X ms", with its
    grid cells and its compressed size — the bytes every stream receives), for each poll that
    sent data the refresh callback's.
(d) **fast start** (docs/wall.md "Fast start"): the worker is restarted (SIGTERM, a new
    ``gridhall serve``) and loads its view from the snapshot the first worker wrote
    (``feeds/snapshot.py``) plus the change notices since — "worker ready" is its "live view
    loaded from snapshot in X s" log line, against the first worker's "loaded from SQL in Y s"
    (the baseline, same run and city) and against gunicorn's boot. Then the browser's paint:
    a reload right after the restart and one on a ready worker (geometry in the browser's
    cache: the versioned grid GeoJSON is not asked for again), and a cold one (a new browser
    context, empty cache), each to the complete wall as in (a).
(c) the SQL a query-per-refresh dashboard would run on every refresh
    (``bigcity.group_by_baseline``: open per grid, overdue per unit, the KPI counts) on the same
    PostgreSQL, and the ratio GROUP BY per refresh / our server time per update.

The schema (unless ``--keep-schema`` or ``--schema``), the Redis keys of the prefix and the
processes are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

import benchkit
from benchkit import CHROMIUM, free_port, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bigcity import BigCity, build, group_by_baseline  # noqa: E402
from dashboard.output.pdf import CHROMIUM_ARGS  # noqa: E402
from dashboard.settings import Settings, load_settings  # noqa: E402
from feeds.contract import CaseEventMessage  # noqa: E402
from feeds.keys import HEALTH_KEY  # noqa: E402
from feeds.producer import Producer  # noqa: E402

if TYPE_CHECKING:  # playwright is a test extra, imported in main()
    from playwright.sync_api import Response

CLASSES = [("event", "07001"), ("event", "06010"), ("event", "09005"), ("component", "01002")]
PLACEHOLDER = "—"

# `gridhall serve`, with the wall's refresh logger at DEBUG only (GRIDHALL_LOG_LEVEL=DEBUG would
# also turn on SQLAlchemy's statement logging, which would distort every figure).
SERVE_WRAPPER = (
    "import logging, sys\n"
    "sys.argv = ['gridhall'] + sys.argv[1:]\n"
    "import cli\n"
    "logging.getLogger('callbacks.wall').setLevel(logging.DEBUG)\n"
    "logging.getLogger('callbacks.wall_push').setLevel(logging.DEBUG)\n"
    "cli.app()\n"
)

# Installed before the page's scripts: the first frame in which each part of the wall is there.
INIT_JS = r"""
(() => {
  const M = window.__ghpaint = { marks: {} };
  const mark = (name) => { if (M.marks[name] === undefined) { M.marks[name] = performance.now(); } };
  const loop = () => {
    const html = document.documentElement;
    const grids = html.getAttribute("data-wall-grids");
    if (grids !== null && M.expect !== undefined && grids === String(M.expect)) { mark("grids"); }
    if (grids !== null) { mark("grids_any"); }
    if (html.getAttribute("data-wall-version")) { mark("colours"); }
    const kpi = document.getElementById("wall-kpi-reported");
    if (kpi && kpi.textContent && kpi.textContent.trim() !== "—") { mark("kpi"); }
    const note = document.getElementById("wall-queue-count");
    if (note && note.textContent.trim()) { mark("queue_note"); }
    if (document.querySelector("#wall-queue .ag-row")) { mark("queue_rows"); }
    const hot = document.querySelector("#wall-hot .wall-hot__item");
    if (hot) { mark("hot"); }
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
})();
"""

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _line(name: str, xs: list[float], unit: str = "ms", fmt: str = "8.1f") -> str:
    if not xs:
        return f"  {name:<46} (none)"
    return (f"  {name:<46} p50 {percentile(xs, 50):{fmt}}  p95 {percentile(xs, 95):{fmt}}  max {max(xs):{fmt}} {unit}"
            f"   (n={len(xs)})")


def _log_lines(path: Path, pattern: str) -> list[tuple[float, str]]:
    """(epoch seconds, line) of the log lines containing ``pattern``."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if pattern in line:
            m = LOG_TIME.match(line)
            if m:
                t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                out.append((t, line))
    return out


class Procs:
    """The ingest and the web server, each in a session of its own; their logs in a temp dir."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, argv: list[str]) -> None:
        self.logs[name] = self.log_dir / f"{name}.log"
        fh = open(self.logs[name], "wb")
        self.procs[name] = subprocess.Popen([sys.executable, *argv], cwd=str(ROOT), env=self.env, stdout=fh,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def check(self) -> None:
        benchkit.check_children(self.procs, self.logs)

    def wait_http(self, url: str, timeout: float) -> None:
        benchkit.wait_http(url, timeout, self.check)

    def stop_one(self, name: str) -> None:
        p = self.procs.pop(name)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the session this script started for it
            p.wait()

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=25)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # the session this script started for it
                p.wait()


def _refresh_responses(responses: list[Response], t_from: float, t_to: float) -> list[dict[str, Any]]:
    """The wall refresh responses whose request started in [t_from, t_to) (epoch ms)."""
    out: list[dict[str, Any]] = []
    for resp in responses:
        req = resp.request
        try:
            post = req.post_data or ""
        except Exception:
            continue
        if "wall-grid.data" not in post:
            continue
        timing = req.timing
        start = timing.get("startTime", 0)
        if not (t_from <= start < t_to):
            continue
        ttfb = timing["responseStart"] - timing["requestStart"] if timing.get("responseStart", -1) >= 0 else None
        rec: dict[str, Any] = {"start": start, "status": resp.status, "ttfb": ttfb, "body": 0, "wire": None,
                               "wire_body": None, "encoding": resp.headers.get("content-encoding", ""),
                               "cells": None, "full": False, "parts": [], "part_bytes": {}}
        try:
            sizes = req.sizes()  # as received: the encoded (compressed) body, and the headers
            rec["wire_body"] = sizes["responseBodySize"]
            rec["wire"] = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        except Exception:
            pass
        if resp.status == 200:
            try:
                body = resp.body()  # decoded
                rec["body"] = len(body)
                data = json.loads(body)["response"]
                grid = (data.get("wall-grid") or {}).get("data")
                if isinstance(grid, dict):
                    rec["cells"] = len(grid.get("values") or {})
                    rec["full"] = bool(grid.get("full"))
                    rec["hot"] = "hot" in grid
                rec["parts"] = sorted(k for k in data)
                rec["part_bytes"] = {k: len(json.dumps(v, separators=(",", ":")).encode()) for k, v in data.items()}
            except Exception:
                pass
        out.append(rec)
    return out


# What a KPI-only update may carry: the KPI tiles, the queue's counts, the state, and the grid's
# coordinate without cells or hot list (the clock moved, no cell changed).
# The hub's DEBUG line for each pushed update (callbacks/wall_push.py PushHub.publish).
PUSH_LINE = re.compile(r"wall push update in (?P<ms>[\d.]+) ms: metric \S+, region \S+, (?P<cells>\d+) grid cells, "
                       r"(?P<raw>\d+) B, (?P<gz>\d+) B compressed, outputs (?P<outputs>\S*)")
KPI_OUTPUTS = ("wall-state", "wall-kpi-", "wall-queue-count", "wall-grid")


def _part_name(key: str) -> str:
    """An output of the refresh as reported: the KPI tiles as one."""
    return "wall-kpi-* (each tile)" if key.startswith("wall-kpi-") else key


def _kpi_only(rec: dict[str, Any]) -> bool:
    """A 200 that carries no grid cells, no rows and no hot list: KPI tiles, counts, the state."""
    return (bool(rec["parts"]) and not rec["cells"] and not rec.get("hot")
            and all(k.startswith(KPI_OUTPUTS) for k in rec["parts"]))


def _new_reports(prefix: str, start: int, grids: list[str], rng: random.Random) -> list[CaseEventMessage]:
    now = datetime.now(UTC).isoformat()
    out = []
    for i, grid in enumerate(grids):
        cid = f"{prefix}{start + i:07d}"
        kind, klass = rng.choice(CLASSES)
        out.append(CaseEventMessage(event_id=f"{cid}-1", case_id=cid, type="reported", occurred_at=now,
                                    source="supervisor", actor="BENCH", kind=kind, class_code=klass,
                                    grid_code=grid, description="wall scale bench", urgency="normal"))
    return out


@dataclass
class ReusedCity:
    """What the bench reads of a city built by an earlier run (``--schema``)."""

    grids: int
    open_cases: int


def reused(settings: Settings) -> ReusedCity:
    import sqlalchemy as sa

    from dashboard.rules.lifecycle import OPEN
    from dashboard.store import db

    engine = db.make_engine(settings)
    try:
        with engine.connect() as conn:
            grids = conn.execute(sa.text("SELECT count(*) FROM grids")).scalar_one()
            stages = [s.value for s in OPEN]
            open_cases = conn.execute(sa.text("SELECT count(*) FROM cases WHERE stage = ANY(:s)"), {"s": stages}
                                      ).scalar_one()
    finally:
        engine.dispose()
    if not grids:
        benchkit.needs(f"a city in the schema of {settings.effective_database_url} (--schema)")
    return ReusedCity(int(grids), int(open_cases))


COMPLETE_JS = ("() => { const m = window.__ghpaint.marks; return m.grids !== undefined && m.kpi !== undefined"
               " && m.queue_note !== undefined && m.queue_rows !== undefined && m.colours !== undefined; }")
PAINT_KEYS = ("grids", "colours", "kpi", "queue_note", "queue_rows")


def _paint(page: Any, go: Any, timeout_s: float) -> dict[str, Any]:
    """Navigate with ``go()``; the complete paint (s from navigation start) and the grid GeoJSON's answer."""
    geo: list[Any] = []

    def on_response(r: Any) -> None:
        if "/wall/geo/grids.json" in r.url:
            geo.append(r)

    page.on("response", on_response)
    try:
        go()
        try:
            page.wait_for_function(COMPLETE_JS, polling=100, timeout=timeout_s * 1000)
        except Exception as exc:  # reported as not complete; the other figures still count
            print(f"  (paint not complete within {timeout_s:.0f} s: {type(exc).__name__})", flush=True)
            marks = page.evaluate("() => window.__ghpaint.marks")
            return {"complete_s": float("nan"), "marks": marks, "geo_requests": len(geo),
                    "geo_status": [r.status for r in geo], "geo": []}
        marks = page.evaluate("() => window.__ghpaint.marks")
        entries = page.evaluate("() => performance.getEntriesByType('resource')"
                                ".filter(e => e.name.includes('/wall/geo/grids.json'))"
                                ".map(e => ({transfer: e.transferSize, body: e.encodedBodySize,"
                                " start: e.startTime, end: e.responseEnd}))")
    finally:
        page.remove_listener("response", on_response)
    out: dict[str, Any] = {"complete_s": max(marks[k] for k in PAINT_KEYS) / 1000, "marks": marks,
                           "geo_requests": len(geo), "geo_status": [r.status for r in geo], "geo": entries}
    return out


def _geo_text(p: dict[str, Any]) -> str:
    if not p["geo"]:
        return "grid GeoJSON: not in the page's resource timing"
    e = p["geo"][0]
    how = ("from the browser's cache, no request" if not p["geo_requests"] and e["transfer"] == 0
           else f"{p['geo_requests']} request(s), status {p['geo_status']}, {e['transfer']:,} bytes transferred")
    return f"grid GeoJSON {how}, ready {e['end'] / 1000:.2f} s"


def fast_start(procs: Procs, page: Any, browser: Any, url: str, n_grids: int, timeout_s: float,
               health_url: str) -> dict[str, float]:
    """(d): restart the worker (snapshot + catch-up), then reload, ready reload and cold paints."""
    sql = [m for _, ln in _log_lines(procs.logs["web"], "live view loaded from SQL in")
           if (m := re.search(r"loaded from SQL in ([\d.]+) s", ln))]
    sql_s = float(sql[0].group(1)) if sql else float("nan")
    deadline = time.monotonic() + timeout_s
    while not _log_lines(procs.logs["web"], "live view snapshot written") and time.monotonic() < deadline:
        time.sleep(0.2)
    written = _log_lines(procs.logs["web"], "live view snapshot written")
    procs.stop_one("web")
    t_restart = time.time()
    procs.start("web2", ["-c", SERVE_WRAPPER, "serve", "--workers", "1", "--no-access-log"])
    procs.wait_http(health_url, 180)
    t_up = time.time()
    print()
    print("(d) fast start: the worker restarted, its view from the snapshot + the notices since", flush=True)
    if written:
        print(f"  snapshot: {written[-1][1].split(': ', 1)[-1]}")
    paint_restart = _paint(page, lambda: page.reload(wait_until="commit"), timeout_s)
    loaded = _log_lines(procs.logs["web2"], "live view loaded from")
    line = loaded[0][1] if loaded else ""
    m = re.search(r"loaded from (snapshot|SQL) in ([\d.]+) s", line)
    how, ready_s = (m.group(1), float(m.group(2))) if m else ("?", float("nan"))
    ready_wall = loaded[0][0] - t_restart if loaded else float("nan")
    print(f"  worker ready ({how}): {ready_s:8.2f} s   (its log: {line.split(': ', 1)[-1][:150]})")
    print(f"  baseline, the first worker's load from SQL (same city, same run): {sql_s:8.2f} s"
          + (f"  → {sql_s / ready_s:.1f}× faster" if ready_s == ready_s and ready_s > 0 else ""))
    print(f"  process start → view ready (imports, gunicorn boot, snapshot, catch-up): {ready_wall:8.2f} s"
          f"   (/healthz answered after {t_up - t_restart:.2f} s)")
    print(f"  reload right after the restart, complete paint: {paint_restart['complete_s']:8.2f} s   "
          f"({_geo_text(paint_restart)})", flush=True)
    page.wait_for_timeout(1500)
    paint_ready = _paint(page, lambda: page.reload(wait_until="commit"), timeout_s)
    print(f"  reload on a ready worker, complete paint:       {paint_ready['complete_s']:8.2f} s   "
          f"({_geo_text(paint_ready)})", flush=True)
    page.close()  # the cold browser alone: one page drawing the map at a time
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        cold_page = context.new_page()
        cold_page.add_init_script(INIT_JS)
        cold_page.add_init_script(f"window.__ghpaint.expect = {n_grids};")
        paint_cold = _paint(cold_page, lambda: cold_page.goto(url, wait_until="commit"), timeout_s)
    finally:
        context.close()
    print(f"  cold browser (empty cache), complete paint:     {paint_cold['complete_s']:8.2f} s   "
          f"({_geo_text(paint_cold)})", flush=True)
    figures = {"worker_ready_s": ready_s, "worker_ready_sql_s": sql_s, "restart_to_ready_s": ready_wall,
               "reload_after_restart_paint_s": paint_restart["complete_s"],
               "reload_paint_s": paint_ready["complete_s"], "cold_paint_s": paint_cold["complete_s"],
               "restored": int(how == "snapshot")}
    return {k: v for k, v in figures.items() if v == v}  # a paint not complete has no figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    benchkit.add_megacity(parser, seed=1)
    parser.add_argument("--redis-url", default=benchkit.DEFAULT_REDIS_URL,
                        help="a Redis server (the web worker and ingest share it); keys under a prefix deleted after")
    parser.add_argument("--batches", type=int, default=40, help="event batches in phase (b)")
    parser.add_argument("--batch-grids", default="1,10,50,100", help="grids per batch, cycled (each ≤ 100)")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between batches")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle phase before (b)")
    parser.add_argument("--paint-timeout", type=float, default=900.0)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--keep-schema", action="store_true",
                        help="keep the built city's schema (printed) for --schema")
    parser.add_argument("--schema", help="reuse a schema kept by --keep-schema (no build; it is kept again)")
    benchkit.add_smoke(parser, grids=400, cases=4000, batches=2, gap=1.0, idle=1.0, paint_timeout=120.0)
    args = benchkit.parse(parser)
    benchkit.require_chromium()
    benchkit.require_redis(args.redis_url)
    sizes = [min(100, max(1, int(x))) for x in args.batch_grids.split(",")]

    import sqlalchemy as sa
    from playwright.sync_api import sync_playwright

    from dashboard.store import db

    rng = random.Random(args.seed)
    prefix = f"ghbench-{uuid.uuid4().hex[:8]}:"
    data_dir = Path(tempfile.mkdtemp(prefix="gh-wall-scale-"))
    port = free_port()
    if args.schema:
        admin, schema, url = benchkit.pg_schema(args.pg_url, "gh_wallscale", reuse=args.schema)
    else:
        admin, schema, url = benchkit.pg_schema(args.pg_url, "gh_wallscale")
    settings: Settings = load_settings(database_url=url, redis_url=args.redis_url, redis_prefix=prefix,
                                       data_dir=data_dir, port=port, host="127.0.0.1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(GRIDHALL_DATABASE_URL=url, GRIDHALL_REDIS_URL=args.redis_url, GRIDHALL_REDIS_PREFIX=prefix,
               GRIDHALL_DATA_DIR=str(data_dir), GRIDHALL_PORT=str(port), GRIDHALL_HOST="127.0.0.1",
               PYTHONUNBUFFERED="1")
    procs = Procs(env, data_dir)
    client = redis.Redis.from_url(args.redis_url)
    print(f"wall scale bench: {args.grids:,} grids, {args.cases:,} open cases; PostgreSQL schema {schema}, "
          f"Redis prefix {prefix!r}, port {port}")
    try:
        # -- the city ------------------------------------------------------------------------------
        city: ReusedCity | BigCity
        if args.schema:
            city = reused(settings)
            print(f"  reusing schema {schema}: {city.grids:,} grids, {city.open_cases:,} open cases")
        else:
            built = build(settings, args.grids, args.cases, args.seed,
                          progress=lambda m: print("  build " + m, flush=True))
            print(f"  built in {built.total_s:.1f}s: {built.grids:,} grids, {built.open_cases:,} open cases "
                  f"(overdue now {built.overdue:,}, reported today {built.reported_today:,}, urgent {built.urgent:,})")
            city = built
        engine = db.make_engine(settings)
        with engine.connect() as conn:
            grid_codes = [r[0] for r in conn.execute(sa.text("SELECT code FROM grids"))]
        n_grids = len(grid_codes)
        from sqlalchemy.orm import Session as _Session

        from dashboard.store import users

        with _Session(engine) as session:  # the browser opens the wall as a wall screen does
            token = users.screen_token(session, "bench-wall")
            session.commit()

        # -- processes -----------------------------------------------------------------------------
        procs.start("ingest", ["-m", "cli", "ingest"])
        procs.start("web", ["-c", SERVE_WRAPPER, "serve", "--workers", "1", "--no-access-log"])
        t0 = time.monotonic()
        procs.wait_http(f"http://127.0.0.1:{port}/healthz", 180)
        print(f"  ingest and web (1 worker) up in {time.monotonic() - t0:.1f}s")
        producer = Producer(client, settings)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.add_init_script(INIT_JS)
            page.add_init_script(f"window.__ghpaint.expect = {n_grids};")
            responses: list[Response] = []
            page.on("response", lambda r: responses.append(r))

            # (a) first paint --------------------------------------------------------------------
            t_nav_ms = time.time() * 1000
            page.goto(f"http://127.0.0.1:{port}/wall?token={token}", wait_until="commit",
                      timeout=args.paint_timeout * 1000)
            page.wait_for_function(
                "() => { const m = window.__ghpaint.marks; return m.grids !== undefined && m.kpi !== undefined"
                " && m.queue_note !== undefined && m.queue_rows !== undefined && m.colours !== undefined; }",
                polling=100, timeout=args.paint_timeout * 1000)
            marks = page.evaluate("() => window.__ghpaint.marks")
            origin = page.evaluate("() => performance.timeOrigin")
            drawn = page.evaluate("() => document.documentElement.getAttribute('data-wall-grids')")
            page.wait_for_timeout(1500)  # let the first responses finish before reading their timing

            refresh = _refresh_responses(responses, 0, float("inf"))
            first = min(refresh, key=lambda r: r["start"]) if refresh else None
            geo = [r for r in responses if "/wall/geo/grids.json" in r.url]
            loaded = _log_lines(procs.logs["web"], "live view loaded")
            print()
            print(f"(a) first complete paint of /wall at 1920×1080 ({drawn} grids drawn, "
                  f"{city.open_cases:,} open cases), from navigation start:")
            for key, label in (("grids", "grids drawn (data-wall-grids = count)"),
                               ("colours", "first colours applied (data-wall-version)"),
                               ("kpi", "KPI strip filled"), ("hot", "hot spots listed"),
                               ("queue_note", "overdue queue count"), ("queue_rows", "overdue queue rows")):
                if key in marks:
                    print(f"  {label:<44} {marks[key] / 1000:8.2f} s")
            complete = max(marks[k] for k in ("grids", "colours", "kpi", "queue_note", "queue_rows"))
            print(f"  {'COMPLETE (latest of the above)':<44} {complete / 1000:8.2f} s")
            if first is not None:
                wait = first["ttfb"]
                print(f"  server view load: first refresh request started at {(first['start'] - origin) / 1000:.2f} s, "
                      f"answered (TTFB) after {wait / 1000 if wait is not None else float('nan'):.2f} s "
                      f"(status {first['status']}"
                      + (f", {first['body']:,} bytes, full grid of {first['cells']} cells)" if first["status"] == 200
                         else ": the view was not loaded yet)"))
            if loaded:
                print(f"  server view load: 'live view loaded' logged {loaded[0][0] - t_nav_ms / 1000:+.2f} s from "
                      f"navigation start ({loaded[0][1].split(': ', 1)[-1]})")
            boot = re.search(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ([+-]\d{4})\] \[\d+\] \[INFO\] Booting worker",
                             procs.logs["web"].read_text(errors="replace"))
            if boot and loaded:
                t_boot = datetime.strptime(" ".join(boot.groups()), "%Y-%m-%d %H:%M:%S %z").timestamp()
                print(f"  server view load: worker booted → view loaded {loaded[0][0] - t_boot:.1f} s "
                      f"(gunicorn logs whole seconds: ±1 s)")
            for g in geo:
                try:
                    s = g.request.sizes()
                    tm = g.request.timing
                    print(f"  grid GeoJSON: {s['responseBodySize']:,} bytes on the wire, "
                          f"TTFB {(tm['responseStart'] - tm['requestStart']) / 1000:.2f} s, "
                          f"done {(tm['responseEnd'] - tm['requestStart']) / 1000:.2f} s after its request")
                except Exception:
                    pass

            # (d) fast start (timed after (b), which another section of the file owns) ----------------
            def restart() -> dict[str, float]:
                return fast_start(procs, page, browser, f"http://127.0.0.1:{port}/wall?token={token}", n_grids,
                                  args.paint_timeout, f"http://127.0.0.1:{port}/healthz")

            # (b) updates --------------------------------------------------------------------------
            page.wait_for_timeout(2000)
            idle_from = time.time() * 1000
            page.wait_for_timeout(args.idle * 1000)
            idle_to = time.time() * 1000
            applied0 = int(client.hget(settings.key(HEALTH_KEY), "applied_total") or 0)
            case_prefix = f"scl{uuid.uuid4().hex[:6]}-"
            sent = 0
            touched = []
            b_from = time.time() * 1000
            for i in range(args.batches):
                n = sizes[i % len(sizes)]
                grids = rng.sample(grid_codes, n)
                producer.publish_many(_new_reports(case_prefix, sent, grids, rng))
                sent += n
                touched.append(n)
                page.wait_for_timeout(args.gap * 1000)
            page.wait_for_timeout(1500)
            b_to = time.time() * 1000
            applied1 = int(client.hget(settings.key(HEALTH_KEY), "applied_total") or 0)
            idle = _refresh_responses(responses, idle_from, idle_to)
            busy = _refresh_responses(responses, b_from, b_to - 1500)
            start_figures = restart()
            browser.close()

        refresh_log = [(t, float(m.group(1))) for t, ln in _log_lines(procs.logs["web"], "wall refresh in")
                       if (m := re.search(r"wall refresh in ([\d.]+) ms", ln))]
        srv_busy = [ms for t, ms in refresh_log if b_from / 1000 <= t < b_to / 1000]
        pushed = [(t, m) for t, ln in _log_lines(procs.logs["web"], "wall push update in")
                  if (m := PUSH_LINE.search(ln)) and b_from / 1000 <= t < b_to / 1000]
        srv_idle = [ms for t, ms in refresh_log if idle_from / 1000 <= t < idle_to / 1000]

        def summary(name: str, recs: list[dict[str, Any]], seconds: float) -> None:
            ok = [r for r in recs if r["status"] == 200]
            nc = [r for r in recs if r["status"] == 204]
            print(f"  {name}: {len(recs)} refresh polls in {seconds:.0f}s: {len(ok)} × 200 (data), "
                  f"{len(nc)} × 204 (nothing changed), {len(recs) - len(ok) - len(nc)} other")

        print()
        print(f"(b) per update ({args.batches} batches of new reports on {', '.join(map(str, sizes))} grids, "
              f"{args.gap:g}s apart; ingest applied {applied1 - applied0:,} of {sent:,}):")
        push_ms = [float(m.group("ms")) for _, m in pushed]
        push_grid = [float(m.group("gz")) for _, m in pushed if int(m.group("cells"))]
        push_kpi = [float(m.group("gz")) for _, m in pushed if not int(m.group("cells"))
                    and all(o.startswith(KPI_OUTPUTS) for o in m.group("outputs").split(","))]
        print("  pushed updates (the worker's hub computes each once; every open stream gets the same bytes):")
        print(_line("server compute per pushed update", push_ms))
        print(_line("grid updates (≤ 100 cells): compressed", push_grid, "B", "8.0f"))
        print(_line("KPI-only updates: compressed", push_kpi, "B", "8.0f"))
        print(_line("every pushed update: compressed", [float(m.group("gz")) for _, m in pushed], "B", "8.0f"))
        print("  the page's safety poll meanwhile (every 5 s while pushed; what a polling wall gets):")
        summary("idle phase (clock only)", idle, (idle_to - idle_from) / 1000)
        summary("event phase", busy, (b_to - b_from - 1500) / 1000)
        ev = [r for r in busy if r["status"] == 200 and r["cells"]]
        clock = [r for r in busy + idle if r["status"] == 200 and not r["cells"]]
        print("  server compute per update ('wall refresh in X ms', DEBUG log of the worker):")
        print(_line("event phase, every refresh that sent data", srv_busy))
        print(_line("idle phase, every refresh that sent data", srv_idle))
        print("  browser view of the same responses (TTFB = server + loopback):")
        print(_line("200 with grid cells (event-driven) TTFB", [r["ttfb"] for r in ev if r["ttfb"] is not None]))
        print(_line("200 without grid cells (clock/KPI) TTFB", [r["ttfb"] for r in clock if r["ttfb"] is not None]))
        print(_line("204 (nothing changed) TTFB", [r["ttfb"] for r in busy + idle
                                                    if r["status"] == 204 and r["ttfb"] is not None]))
        print(_line("200 with grid cells: body bytes", [float(r["body"]) for r in ev], "B", "8.0f"))
        print(_line("200 with grid cells: wire bytes (+headers)", [float(r["wire"]) for r in ev if r["wire"]],
                    "B", "8.0f"))
        print(_line("200 with grid cells: cells per update", [float(r["cells"]) for r in ev], "", "8.0f"))
        print(_line("200 without grid cells: body bytes", [float(r["body"]) for r in clock], "B", "8.0f"))
        kpi_only = [r for r in clock if _kpi_only(r)]
        encodings = sorted({r["encoding"] or "identity" for r in busy + idle if r["status"] == 200})
        print(f"  on the wire (compressed body as received; Content-Encoding {', '.join(encodings) or '-'}), "
              f"and with the response headers:")
        wire_ev = [float(r["wire_body"]) for r in ev if r["wire_body"] is not None]
        wire_clock = [float(r["wire_body"]) for r in clock if r["wire_body"] is not None]
        wire_kpi = [float(r["wire_body"]) for r in kpi_only if r["wire_body"] is not None]
        print(_line("grid updates (≤ 100 cells): wire body", wire_ev, "B", "8.0f"))
        print(_line("grid updates: wire body + headers", [float(r["wire"]) for r in ev if r["wire"]], "B", "8.0f"))
        print(_line("updates without grid cells: wire body", wire_clock, "B", "8.0f"))
        print(_line("KPI-only updates (KPI tiles, counts): wire body", wire_kpi, "B", "8.0f"))
        print(_line("KPI-only updates: wire body + headers", [float(r["wire"]) for r in kpi_only if r["wire"]],
                    "B", "8.0f"))
        print("  what the 200s carry, per output (JSON bytes before compression; p50 / p95 / max over the "
              "responses that carry it):")
        per_part: dict[str, list[float]] = {}
        for r in busy + idle:
            for k, n in r["part_bytes"].items():
                per_part.setdefault(_part_name(k), []).append(float(n))
        for k, xs in sorted(per_part.items(), key=lambda kv: -sum(kv[1])):
            print(_line(k, xs, "B", "8.0f"))
        fulls = sum(1 for r in busy if r["full"])
        if fulls:
            print(f"  note: {fulls} refresh(es) in the event phase sent the FULL grid ({n_grids:,} cells)")
        parts: dict[str, int] = {}
        for r in ev:
            for k in r["parts"]:
                parts[k] = parts.get(k, 0) + 1
        if parts:
            print("  outputs carried by the event-driven updates: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])))

        # the worker's view load, timed here with the same code (LiveView.load), warm caches
        from sqlalchemy.orm import Session

        from dashboard.figures.liveview import LiveView
        from dashboard.store.reference import timing_for

        with Session(engine) as session:
            timing = timing_for(settings, session)
            t0 = time.perf_counter()
            view = LiveView.load(session, timing, datetime.now(UTC), tz=settings.tz)
            load_s = time.perf_counter() - t0
        print()
        print(f"server-side view load (LiveView.load, as the worker's follower does, in this process): "
              f"{load_s:.2f} s for {view.open_cases:,} open cases")
        del view

        # (c) the GROUP BY baseline ------------------------------------------------------------------
        base = group_by_baseline(engine, tz=settings.tz)
        engine.dispose()
        print()
        print("(c) query-per-refresh baseline on the same PostgreSQL (bigcity.group_by_baseline, median of 5, ms):")
        for name, r in base.items():
            rows = f"  ({r['rows']:,} rows)" if r["rows"] else ""
            print(f"  {name:<17} {r['median_ms']:9.1f}{rows}")
        per_refresh = base["per_refresh"]["median_ms"]
        if push_ms:
            print(f"  ratio GROUP BY per refresh / our server time per pushed update: "
                  f"{per_refresh / percentile(push_ms, 95):,.0f}× (vs p95 {percentile(push_ms, 95):.1f} ms), "
                  f"{per_refresh / percentile(push_ms, 50):,.0f}× (vs p50 {percentile(push_ms, 50):.1f} ms)")
        if srv_busy:
            print(f"  ratio GROUP BY per refresh / our server time per polled update: "
                  f"{per_refresh / percentile(srv_busy, 95):,.0f}× (vs p95 {percentile(srv_busy, 95):.1f} ms), "
                  f"{per_refresh / percentile(srv_busy, 50):,.0f}× (vs p50 {percentile(srv_busy, 50):.1f} ms)")
        ttfb_ev = [r["ttfb"] for r in ev if r["ttfb"] is not None]
        if ttfb_ev:
            print(f"  ratio GROUP BY per refresh / update TTFB p95 ({percentile(ttfb_ev, 95):.1f} ms): "
                  f"{per_refresh / percentile(ttfb_ev, 95):,.0f}×")
        print("  (and a query-per-refresh wall pays it on every poll of every screen; ours answers an "
              "unchanged poll with 204)")
        figures: dict[str, float | int] = {**start_figures, "grids": n_grids, "open_cases": city.open_cases,
                                           "first_paint_s": complete / 1000, "view_load_s": load_s,
                                           "group_by_per_refresh_ms": per_refresh}
        if wire_ev:
            figures.update(grid_update_wire_p50_b=percentile(wire_ev, 50),
                           grid_update_wire_p95_b=percentile(wire_ev, 95))
        if wire_kpi:
            figures.update(kpi_update_wire_p50_b=percentile(wire_kpi, 50),
                           kpi_update_wire_p95_b=percentile(wire_kpi, 95))
        if push_ms:
            figures.update(push_update_server_p50_ms=percentile(push_ms, 50),
                           push_update_server_p95_ms=percentile(push_ms, 95),
                           ratio_group_by_to_push_p50=per_refresh / percentile(push_ms, 50))
        if push_grid:
            figures.update(push_grid_update_p50_b=percentile(push_grid, 50),
                           push_grid_update_p95_b=percentile(push_grid, 95))
        if push_kpi:
            figures.update(push_kpi_update_p50_b=percentile(push_kpi, 50),
                           push_kpi_update_p95_b=percentile(push_kpi, 95))
        if srv_busy:  # a smoke run may see no refresh that sent data
            figures.update(update_server_p50_ms=percentile(srv_busy, 50), update_server_p95_ms=percentile(srv_busy, 95),
                           ratio_group_by_to_update_p95=per_refresh / percentile(srv_busy, 95))
        benchkit.result(**figures)
    finally:
        procs.stop()
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        if args.keep_schema or args.schema:
            admin.dispose()
            print(f"schema kept: --schema {schema}")
        else:
            benchkit.drop_schema(admin, schema)
        if args.keep_logs:
            print(f"logs kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
