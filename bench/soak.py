"""A shift on the wall: memory of the screen and of the server over hours, unattended.

    python bench/soak.py                         # 2 h real time at 4× = an 8-hour shift
    python bench/soak.py --hours 3 --speedup 8   # longer, busier
    python bench/soak.py --smoke                 # tiny (about a minute): checks it runs

It runs ``gridhall demo`` (SQLite + the embedded Redis, its own data folder, the simulator at
``--speedup``: the cases of ``--speedup`` hours of the city arrive in each real hour) and
opens the wall in Debian's Chromium **as a plain process** (headless, 1920×1080, the display
token's URL), the way a hall's PC shows it: nothing is attached to the page. Every
``--sample-s`` seconds it reads from /proc:

- the **renderer** of the wall tab (resident memory of Chromium's ``--type=renderer``
  processes; the largest one is the page);
- the **web workers** (gunicorn's workers: the children of the ``serve`` process) and the
  ingest process.

Every ``--probe-every`` samples, and only right *after* the RSS was read, it attaches to the
page through the DevTools protocol (Playwright ``connect_over_cdp``), forces a garbage
collection and reads the **JS heap** in use, the **DOM nodes** and the **event listeners**
(``Performance.getMetrics``), plus the grid coordinate the page has painted (``data-wall-version``)
and whether the page was reloaded (``performance.timeOrigin``), then detaches: the attachment
that made the renderer grow in earlier soaks is not left on.

Figures: each series after ``--warmup-min`` minutes — its value at the start of the measured
part (median of the first quarter), at the end (median of the last quarter), the change in
per cent, and the least-squares slope per hour. **Flat** means every change within ±10 %
(``--tolerance``). The first quarter is the baseline of the same run. The samples are also
written as CSV (``--csv``) for a plot.

The last line: ``RESULT hours=… shift_hours=… renderer_rss_pct=… js_heap_pct=… dom_nodes_pct=…
listeners_pct=… worker_rss_pct=… wall_updates=… reloads=… flat=1|0``.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchkit
from benchkit import CHROMIUM, free_port
from procstat import cmdline, process_tree, rss_mb

ROOT = Path(__file__).resolve().parent.parent
WALL_URL = re.compile(r"(http://\S+/wall\?token=\S+)")

# the series judged for flatness, and their units
SERIES = {
    "renderer_rss": "MB",
    "js_heap": "MB",
    "dom_nodes": "",
    "listeners": "",
    "worker_rss": "MB",
    "ingest_rss": "MB",
}


@dataclass
class Sample:
    t_s: float  # seconds since the wall was opened
    renderer_rss: float | None
    worker_rss: float | None
    ingest_rss: float | None
    js_heap: float | None = None
    dom_nodes: float | None = None
    listeners: float | None = None
    version: str = ""
    time_origin: float | None = None


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)


def demo_processes(demo_pid: int) -> tuple[list[int], list[int]]:
    """(web worker pids, ingest pids) under the demo supervisor."""
    workers: list[int] = []
    ingest: list[int] = []
    tree = process_tree(demo_pid)
    for pid in tree:
        cmd = cmdline(pid)
        if "serve" in cmd and "cli" in cmd:
            workers.extend(p for p in process_tree(pid) if p != pid)
        elif "ingest" in cmd and "cli" in cmd:
            ingest.append(pid)
    return workers, ingest


def renderer_rss(browser_pid: int) -> float | None:
    """Resident MB of the largest renderer under the browser (the wall's tab)."""
    sizes = [rss_mb([p]) for p in process_tree(browser_pid) if "--type=renderer" in cmdline(p)]
    return max(sizes) if sizes else None


def probe_page(cdp_url: str) -> dict[str, Any]:
    """Attach, collect garbage, read the page's metrics, detach."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(cdp_url)
        try:
            page = next(p for c in browser.contexts for p in c.pages if "/wall" in p.url)
            cdp = page.context.new_cdp_session(page)
            cdp.send("HeapProfiler.collectGarbage")
            cdp.send("Performance.enable")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            cdp.send("Performance.disable")
            cdp.detach()
            version = page.evaluate("document.documentElement.getAttribute('data-wall-version') || ''")
            origin = page.evaluate("performance.timeOrigin")
        finally:
            browser.close()  # over CDP this only disconnects: the browser and the page stay
    return {
        "js_heap": metrics.get("JSHeapUsedSize", 0) / 2**20,
        "dom_nodes": metrics.get("Nodes"),
        "listeners": metrics.get("JSEventListeners"),
        "version": version,
        "time_origin": float(origin),
    }


def trend(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(start, end, change %, slope per hour) of a series after warm-up."""
    values = [v for _, v in points]
    q = max(1, len(values) // 4)
    start, end = statistics.median(values[:q]), statistics.median(values[-q:])
    pct = 100.0 * (end - start) / start if start else 0.0
    if len(points) >= 2:
        slope = statistics.linear_regression([t for t, _ in points], values).slope * 3600
    else:
        slope = 0.0
    return start, end, pct, slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=2.0, help="real time measured (after the city is built)")
    parser.add_argument("--speedup", type=float, default=4.0, help="the simulator's speed-up (4 × 2 h = 8 h)")
    parser.add_argument("--sample-s", type=float, default=60.0, help="seconds between RSS samples")
    parser.add_argument("--probe-every", type=int, default=5, help="attach to the page every this many samples")
    parser.add_argument("--warmup-min", type=float, default=10.0, help="minutes left out of the figures")
    parser.add_argument("--tolerance", type=float, default=10.0, help="per cent a flat series may move")
    parser.add_argument("--csv", type=Path, default=None, help="write the samples here")
    benchkit.add_smoke(parser, hours=0.015, sample_s=5.0, probe_every=2, warmup_min=0.3)
    args = benchkit.parse(parser)
    benchkit.require_chromium()

    work = Path(tempfile.mkdtemp(prefix="gridhall-soak-"))
    port = free_port()
    env = dict(os.environ, GRIDHALL_DATA_DIR=str(work / "data"), GRIDHALL_PORT=str(port))
    env.pop("GRIDHALL_DATABASE_URL", None)  # the demo's own SQLite and embedded Redis
    env.pop("GRIDHALL_REDIS_URL", None)
    log_path = work / "demo.log"
    demo = subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", "--speedup", str(args.speedup), "--port", str(port)],
        cwd=str(ROOT), env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    browser: subprocess.Popen[bytes] | None = None
    run = Run()
    try:
        built = time.monotonic()
        url = None
        while url is None:
            if demo.poll() is not None:
                benchkit.needs(f"a working `gridhall demo` (it exited; see {log_path})")
            m = WALL_URL.search(log_path.read_text(errors="replace"))
            url = m.group(1) if m else None
            if url is None:
                if time.monotonic() - built > 900:
                    benchkit.needs(f"`gridhall demo` to come up within 15 minutes (see {log_path})")
                time.sleep(1)
        print(f"demo live after {time.monotonic() - built:.0f} s at speed-up {args.speedup:g}: {url.split('?')[0]}")
        cdp_port = free_port()
        browser = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1920,1080",
             "--no-first-run", f"--user-data-dir={work / 'chromium'}", f"--remote-debugging-port={cdp_port}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        cdp_url = f"http://127.0.0.1:{cdp_port}"
        opened = time.monotonic()
        end = opened + args.hours * 3600
        n = 0
        while True:
            now = time.monotonic()
            if demo.poll() is not None or browser.poll() is not None:
                raise SystemExit(f"soak stopped early: {'demo' if demo.poll() is not None else 'chromium'} exited")
            workers, ingest = demo_processes(demo.pid)
            s = Sample(t_s=now - opened, renderer_rss=renderer_rss(browser.pid),
                       worker_rss=rss_mb(workers) if workers else None, ingest_rss=rss_mb(ingest) if ingest else None)
            if n % args.probe_every == 0:
                try:
                    for k, v in probe_page(cdp_url).items():
                        setattr(s, k, v)
                except Exception as exc:  # the page may be between loads: the next probe tries again
                    print(f"  probe failed at {s.t_s:.0f} s: {type(exc).__name__}: {exc}", flush=True)
            run.samples.append(s)
            print(f"  {s.t_s / 60:6.1f} min  renderer {s.renderer_rss or 0:6.1f} MB"
                  f"  workers {s.worker_rss or 0:6.1f} MB"
                  + (f"  heap {s.js_heap:5.1f} MB  nodes {s.dom_nodes:.0f}  listeners {s.listeners:.0f}  v {s.version}"
                     if s.js_heap is not None else ""), flush=True)
            n += 1
            if now >= end:
                break
            time.sleep(max(0.0, min(args.sample_s, end - time.monotonic())))
    finally:
        for proc in (browser, demo):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)

    report(run, args)


def report(run: Run, args: argparse.Namespace) -> None:
    if args.csv is not None:
        with args.csv.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["t_s", *SERIES, "version", "time_origin"])
            for s in run.samples:
                w.writerow([f"{s.t_s:.0f}", *(getattr(s, k) for k in SERIES), s.version, s.time_origin])
    warm = args.warmup_min * 60
    hours = run.samples[-1].t_s / 3600 if run.samples else 0.0
    print(f"\nsoak: {hours:.2f} h real at speed-up {args.speedup:g} (= {hours * args.speedup:.1f} h of the city), "
          f"{len(run.samples)} samples, figures after the first {args.warmup_min:g} min")
    print(f"  {'series':14} {'start':>10} {'end':>10} {'change':>8} {'per hour':>10}")
    pct: dict[str, float] = {}
    for name, unit in SERIES.items():
        points = [(s.t_s, float(v)) for s in run.samples if s.t_s >= warm and (v := getattr(s, name)) is not None]
        if not points:
            print(f"  {name:14} (no samples)")
            continue
        start, end, change, slope = trend(points)
        pct[name] = change
        print(f"  {name:14} {start:10.1f} {end:10.1f} {change:+7.1f}% {slope:+9.2f} {unit}")
    versions = {s.version for s in run.samples if s.version}
    origins = {s.time_origin for s in run.samples if s.time_origin is not None}
    reloads = max(0, len(origins) - 1)
    judged = ["renderer_rss", "js_heap", "dom_nodes", "listeners", "worker_rss"]
    flat = all(abs(pct.get(k, 0.0)) <= args.tolerance for k in judged)
    print(f"  the wall painted {len(versions)} distinct grid coordinates at the probes; page reloads: {reloads}")
    print(f"  flat within ±{args.tolerance:g} %: {'yes' if flat else 'no'}"
          + ("" if flat else " (" + ", ".join(k for k in judged if abs(pct.get(k, 0.0)) > args.tolerance) + ")"))
    benchkit.result(hours=round(hours, 3), shift_hours=round(hours * args.speedup, 2),
                    **{f"{k}_pct": round(pct.get(k, 0.0), 2) for k in [*judged, "ingest_rss"]},
                    wall_updates=len(versions), reloads=reloads, flat=int(flat))


if __name__ == "__main__":
    main()
