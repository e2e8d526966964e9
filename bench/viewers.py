"""Concurrent viewers: wall screens, /view sessions and API clients against ``gridhall serve``.

    python bench/viewers.py                          # PostgreSQL (test_bench) + Redis server; N = 50,100,200,400
    python bench/viewers.py --sizes 50,100 --duration 30 --pg-url postgresql://postgres@127.0.0.1:5432/mine
    python bench/viewers.py --no-baseline            # the normal server only
    python bench/viewers.py --smoke                  # tiny (seconds): checks it runs

It builds the demo city in a fresh schema of ``--pg-url`` (``wall_latency.prepare_city``, with
``--history-days`` of history), starts ``gridhall ingest`` and ``gridhall serve --workers N``
(gunicorn) as subprocesses, and keeps a background load of ``--rate`` new cases per second
flowing into the feed so the screens have something to update. Then, for each N of
``--sizes``, ``--loaders`` load processes (asyncio + aiohttp, each with its share of the N
viewers) open the screens the way their clients do, each viewer from its own loopback address
(127.1.x.y: per-client limits see N clients, as in a hall):

- **wall screens** sign in with their own display token (``/wall?token=…`` → redirect → page,
  ``/_dash-layout``, ``/_dash-dependencies``, the map geometry) and then speak the page's refresh
  protocol: Dash's ``/_dash-update-component`` with the page's real inputs and states
  (``wall-tick`` every 500 ms with ``wall-state``, ``wall-applied``, ``wall-rows-applied`` and
  ``wall-config``; ``wall-health-tick`` every 2 s), keeping the stores the server returns as the
  browser does, so the server sees each screen's true coordinate and digests (204 when nothing changed);
- **/view sessions** sign in with a leader's username and password (the form's CSRF token),
  load the page, ask for the scope's geometry once and refresh every 30 s (``view-tick``);
  leaders are the city's and one per district, shared round-robin;
- **API clients** poll ``/api/v1/summary`` and ``/api/v1/overdue`` once a second each, with a
  bearer token of a leader (one token per client).

``--mix`` splits N (default 2:1:2 walls : /view : API). Each viewer starts at a random point of
the first part of ``--warmup``; answers are measured for ``--duration`` seconds after it. A
viewer never has two requests of one poll in flight: when an answer takes longer than the
period, the missed ticks are skipped (counted as "late") and the next request goes at once.

Figures per size: p50/p95/p99/max of the answer time of each kind of request (request sent →
body read), errors (anything but 2xx/304, timeouts after ``--timeout`` s, failed sign-ins),
the server's CPU (gunicorn master + workers, from /proc) per viewer, the workers' RSS sampled
every second over the run, the load generator's own CPU and the machine's busy share.

The **baseline** is the per-request-SQL path of the read API and /view: the same sizes up to
``--baseline-max`` again against a server started with ``GRIDHALL_READ_CACHE_S=0`` (the
per-(scope, second) read cache off; harmless where the setting does not exist yet, when both
modes measure the same code).

Target (2 workers, this machine): 200 viewers at p95 ≤ 200 ms (the worst kind of steady
answer), 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import os
import random
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import redis

import benchkit
from benchkit import percentile
from wall_latency import Env, Load, prepare_city

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auth import CSRF_COOKIE  # noqa: E402
from dashboard.settings import Settings  # noqa: E402

TARGET_N = 200
TARGET_P95_MS = 200.0
API_MS = 1000  # the API clients' poll (the screens' cadences are their pages' own: dcc.Interval)
#: The steady answers the target is judged on (page loads and sign-ins are reported apart).
STEADY = ("wall refresh", "wall health", "view refresh", "api summary", "api overdue")
ONE_OFF = ("wall sign-in", "wall page", "view sign-in", "view page", "view geometry")
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


# -- the load processes ----------------------------------------------------------------------------
@dataclass
class Tally:
    """What one load process saw: answer times per kind (ms, in the window), errors, bytes."""

    window: tuple[float, float]
    times: dict[str, list[float]] = field(default_factory=dict)
    nbytes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)

    def ok(self, kind: str, sent: float, ms: float, status: int, size: int) -> None:
        # Page loads happen before the window (during the warm-up): always kept, reported apart.
        if kind in ONE_OFF or self.window[0] <= sent < self.window[1]:
            self.times.setdefault(kind, []).append(ms)
            self.nbytes[kind] = self.nbytes.get(kind, 0) + size
            by = self.statuses.setdefault(kind, {})
            by[status] = by.get(status, 0) + 1

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.examples.setdefault(kind, what[:200])


def _outputs(output: str) -> list[dict[str, str]] | dict[str, str]:
    """The ``outputs`` of a callback request, from its output string (as Dash's renderer sends)."""
    def one(text: str) -> dict[str, str]:
        cid, prop = text.rsplit(".", 1)
        return {"id": cid, "property": prop}

    if output.startswith(".."):
        return [one(part) for part in output[2:-2].split("...")]
    return one(output)


@dataclass
class Callback:
    """One server callback of a page, from ``/_dash-dependencies``."""

    output: str
    inputs: list[tuple[str, str]]
    state: list[tuple[str, str]]

    @classmethod
    def find(cls, deps: list[dict[str, Any]], input_id: str) -> Callback | None:
        for d in deps:
            if d.get("clientside_function") is None and d["inputs"] and d["inputs"][0]["id"] == input_id:
                return cls(d["output"], [(x["id"], x["property"]) for x in d["inputs"]],
                           [(x["id"], x["property"]) for x in d.get("state", [])])
        return None

    def body(self, values: dict[tuple[str, str], Any]) -> bytes:
        def dep(cid: str, prop: str) -> dict[str, Any]:
            d: dict[str, Any] = {"id": cid, "property": prop}
            if (cid, prop) in values:
                d["value"] = values[(cid, prop)]
            return d

        return orjson.dumps({"output": self.output, "outputs": _outputs(self.output),
                             "inputs": [dep(*x) for x in self.inputs],
                             "changedPropIds": [f"{self.inputs[0][0]}.{self.inputs[0][1]}"],
                             "state": [dep(*x) for x in self.state]})


def _props(layout: Any, wanted: set[str]) -> dict[tuple[str, str], Any]:
    """The props of the components in ``wanted`` (by id) in a Dash layout tree."""
    out: dict[tuple[str, str], Any] = {}
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict) and isinstance(props.get("id"), str) and props["id"] in wanted:
                for k, v in props.items():
                    out[(props["id"], k)] = v
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


class Viewer:
    """One simulated screen or client: its own cookie jar, connections and loopback address."""

    def __init__(self, base: str, address: str, tally: Tally, timeout: float, end: float) -> None:
        import aiohttp

        self.base = base
        self.tally = tally
        self.end = end
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=6),
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies of a numeric host (127.0.0.1)
            timeout=aiohttp.ClientTimeout(total=timeout))

    async def close(self) -> None:
        await self.http.close()

    def cookie(self, name: str) -> str:
        for c in self.http.cookie_jar:
            if c.key == name:
                return c.value
        return ""

    async def call(self, kind: str, method: str, path: str, **kw: Any) -> tuple[int, bytes, str] | None:
        """One request: (status, body, final URL), or None after recording the error."""
        import aiohttp

        sent = time.time()
        t0 = time.perf_counter()
        try:
            async with self.http.request(method, self.base + path, **kw) as r:
                body = await r.read()
                status, url = r.status, str(r.url)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.tally.error(kind, f"{type(exc).__name__}: {exc}")
            return None
        ms = 1000 * (time.perf_counter() - t0)
        if status >= 400 or status in (301, 302, 303, 307, 308):
            self.tally.error(kind, f"HTTP {status}: {body[:120]!r}")
            return None
        self.tally.ok(kind, sent, ms, status, len(body))
        return status, body, url

    async def every(self, period_s: float, kind: str, step: Callable[[int], Awaitable[object]]) -> None:
        """Run ``step(n)`` at n·period from now (the first at once) until the end; skip missed ticks."""
        n = 0
        due = time.time()
        while time.time() < self.end:
            await step(n)
            n += 1
            due += period_s
            now = time.time()
            if due < now:
                missed = int((now - due) // period_s) + 1
                self.tally.late[kind] = self.tally.late.get(kind, 0) + missed
                n += missed - 1
                due += missed * period_s
            await asyncio.sleep(max(0.0, min(due, self.end) - time.time()))

    async def page(self, kind: str, path: str) -> tuple[Any, list[dict[str, Any]]] | None:
        """The page's layout and callback graph, asked for as Dash's renderer does."""
        headers = {"Referer": self.base + path}
        layout = await self.call(kind, "GET", "/_dash-layout", headers=headers)
        deps = await self.call(kind, "GET", "/_dash-dependencies", headers=headers)
        if layout is None or deps is None:
            return None
        return orjson.loads(layout[1]), cast(list[dict[str, Any]], orjson.loads(deps[1]))

    async def poll(self, kind: str, path: str, cb: Callback, values: dict[tuple[str, str], Any]) -> bool:
        """One callback request with the page's current values; applies what comes back."""
        headers = {"Content-Type": "application/json", "X-CSRFToken": self.cookie(CSRF_COOKIE),
                   "Referer": self.base + path}
        res = await self.call(kind, "POST", "/_dash-update-component", data=cb.body(values), headers=headers)
        if res is None:
            return False
        if res[0] == 200 and res[1]:
            response = orjson.loads(res[1]).get("response", {})
            for cid, props in response.items():
                for prop, value in props.items():
                    if (cid, prop) in values or any(cid == s[0] and prop == s[1] for s in cb.state):
                        values[(cid, prop)] = value
            # What wall.js does once it painted the cells: record their coordinate (wall-applied).
            grid = response.get("wall-grid", {}).get("data")
            if isinstance(grid, dict) and grid.get("nid") and ("wall-applied", "data") in values:
                values[("wall-applied", "data")] = {"nid": grid["nid"], "tick": grid["tick"]}
            # ... and once it applied the queue's and the board's rows: their digests (wall-rows-applied).
            rows = response.get("wall-rows", {}).get("data")
            if isinstance(rows, dict) and ("wall-rows-applied", "data") in values:
                shown = dict(values[("wall-rows-applied", "data")] or {})
                for panel, delta in rows.items():
                    if isinstance(delta, dict) and (delta.get("full") or delta.get("from") == shown.get(panel)):
                        shown[panel] = delta.get("to")
                values[("wall-rows-applied", "data")] = shown
        return True

    # -- the three kinds ---------------------------------------------------------------------------
    async def wall(self, token: str) -> None:
        path = "/wall?metric=open"
        if await self.call("wall sign-in", "GET", f"{path}&token={token}") is None:
            return
        got = await self.page("wall page", path)
        if got is None:
            return
        layout, deps = got
        for name in ("grids", "boundaries"):
            await self.call("wall page", "GET", f"/wall/geo/{name}.json")
        await asyncio.gather(self._ticker("wall refresh", path, layout, deps, "wall-tick"),
                             self._ticker("wall health", path, layout, deps, "wall-health-tick"))

    async def _ticker(self, kind: str, path: str, layout: Any, deps: list[dict[str, Any]], tick_id: str) -> None:
        """The page's callback on the interval ``tick_id``, at that interval's own period."""
        cb = Callback.find(deps, tick_id)
        values = _props(layout, {c for c, _ in cb.inputs + cb.state}) if cb else {}
        period_ms = values.get((tick_id, "interval"))
        if cb is None or not isinstance(period_ms, int | float):
            self.tally.error(kind, f"no callback on {tick_id} or no interval in the layout")
            return
        tick = cb.inputs[0]

        async def step(n: int) -> None:
            values[tick] = n
            await self.poll(kind, path, cb, values)

        await self.every(period_ms / 1000, kind, step)

    async def view(self, username: str, password: str) -> None:
        form = await self.call("view sign-in", "GET", "/login")
        match = CSRF_RE.search(form[1].decode()) if form else None
        if match is None:
            if form is not None:
                self.tally.error("view sign-in", "no CSRF token on /login")
            return
        signed = await self.call("view sign-in", "POST", "/login", data={
            "csrf_token": match.group(1), "next": "", "username": username, "password": password})
        if signed is None:
            return
        path = "/view"
        if not signed[2].split("?")[0].endswith(path):
            self.tally.error("view sign-in", f"ended at {signed[2]}")
            return
        got = await self.page("view page", path)
        if got is None:
            return
        layout, deps = got
        geo = Callback.find(deps, "view-config")
        if geo is None:
            self.tally.error("view geometry", "no callback on view-config")
            return
        await self.poll("view geometry", path, geo, _props(layout, {c for c, _ in geo.inputs + geo.state}))
        await self._ticker("view refresh", path, layout, deps, "view-tick")

    async def api(self, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}

        def poller(what: str) -> Callable[[int], Awaitable[object]]:
            return lambda _n: self.call(f"api {what}", "GET", f"/api/v1/{what}", headers=headers)

        await asyncio.gather(self.every(API_MS / 1000, "api summary", poller("summary")),
                             self.every(API_MS / 1000, "api overdue", poller("overdue")))


async def _load(spec: dict[str, Any]) -> Tally:
    tally = Tally((spec["measure_start"], spec["measure_end"]))
    rng = random.Random(spec["seed"])

    async def one(kind: str, cred: list[str], address: str) -> None:
        await asyncio.sleep(max(0.0, spec["begin"] + rng.uniform(0, spec["ramp"]) - time.time()))
        v = Viewer(spec["base"], address, tally, spec["timeout"], spec["measure_end"])
        try:
            if kind == "wall":
                await v.wall(cred[0])
            elif kind == "view":
                await v.view(cred[0], cred[1])
            else:
                await v.api(cred[0])
        except Exception as exc:  # a bug or an answer of the wrong shape: one error, not a dead loader
            tally.error(f"{kind} (client)", f"{type(exc).__name__}: {exc}")
        finally:
            await v.close()

    await asyncio.gather(*(one(kind, cred, addr) for kind, cred, addr in spec["viewers"]))
    return tally


def run_loader(spec: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """A load process: its viewers in one event loop; (what it saw, its own CPU seconds).

    The tally goes back as a plain dict: a class of a script run as ``__main__`` is not
    importable by that name in the other process.
    """
    tally = asyncio.run(_load(spec))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return dataclasses.asdict(tally), ru.ru_utime + ru.ru_stime


# -- the server side: CPU and RSS from /proc ------------------------------------------------------
CLK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from the 3rd (state) on


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (gunicorn's master and workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                children.setdefault(int(st[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        st = _stat(pid)
        if st is not None:
            out[pid] = (int(st[11]) + int(st[12])) / CLK  # utime + stime
    return out


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


# -- one measured size -----------------------------------------------------------------------------
@dataclass
class Credentials:
    walls: list[str]  # display tokens, one per wall screen
    leaders: list[tuple[str, str]]  # (username, password): the city's leader and one per district
    api: list[str]  # bearer tokens, one per API client


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

    def p(self, kind: str, q: float) -> float:
        return percentile(self.tally.times.get(kind, []), q)

    @property
    def steady(self) -> list[float]:
        return [x for k in STEADY for x in self.tally.times.get(k, [])]

    @property
    def worst_p95(self) -> float:
        vals = [self.p(k, 95) for k in STEADY if self.tally.times.get(k)]
        return max(vals) if vals else float("nan")

    @property
    def errors(self) -> int:
        return sum(self.tally.errors.values())

    @property
    def met(self) -> bool:
        return self.errors == 0 and self.worst_p95 <= TARGET_P95_MS


def split_of(n: int, mix: tuple[int, int, int]) -> tuple[int, int, int]:
    total = sum(mix)
    walls = round(n * mix[0] / total) if mix[0] else 0
    views = round(n * mix[1] / total) if mix[1] else 0
    return walls, views, max(0, n - walls - views)


def measure(args: argparse.Namespace, mode: str, n: int, base: str, creds: Credentials, web_pid: int) -> Measured:
    walls, views, apis = split_of(n, args.mix)
    viewers: list[tuple[str, list[str], str]] = []
    for i in range(walls):
        viewers.append(("wall", [creds.walls[i]], ""))
    for i in range(views):
        viewers.append(("view", list(creds.leaders[i % len(creds.leaders)]), ""))
    for i in range(apis):
        viewers.append(("api", [creds.api[i]], ""))
    # Each viewer from its own loopback address (127.1.x.y), as screens in a hall have.
    viewers = [(k, c, f"127.1.{i // 250}.{i % 250 + 1}") for i, (k, c, _) in enumerate(viewers)]
    random.Random(n).shuffle(viewers)
    loaders = max(1, min(args.loaders, n))
    begin = time.time() + 3.0  # the load processes' start-up (spawn, imports)
    measure_start = begin + args.warmup
    measure_end = measure_start + args.duration
    specs = [{"base": base, "viewers": viewers[i::loaders], "begin": begin, "ramp": args.warmup * 0.6,
              "measure_start": measure_start, "measure_end": measure_end, "timeout": args.timeout,
              "seed": args.seed + i} for i in range(loaders)]
    ctx = multiprocessing.get_context("spawn")
    rss: list[float] = []
    cpu0: tuple[float, dict[int, float], tuple[int, int]] | None = None
    cpu1: tuple[float, dict[int, float], tuple[int, int]] | None = None
    with ctx.Pool(loaders) as pool:
        pending = pool.map_async(run_loader, specs)
        while not pending.ready():
            now = time.time()
            pids = process_tree(web_pid)
            rss.append(rss_mb(pids))
            if cpu0 is None and now >= measure_start:
                cpu0 = (now, cpu_seconds(pids), machine_busy())
            elif cpu0 is not None and cpu1 is None and now >= measure_end:
                cpu1 = (now, cpu_seconds(pids), machine_busy())
            pending.wait(0.5 if cpu1 is None else 1.0)
        results = [(Tally(**t), c) for t, c in pending.get()]
    if cpu0 is None:
        cpu0 = (measure_start, {}, (0, 0))
    if cpu1 is None:
        cpu1 = (time.time(), cpu_seconds(process_tree(web_pid)), machine_busy())
    cpu = sum(v - cpu0[1].get(pid, 0.0) for pid, v in cpu1[1].items() if v >= cpu0[1].get(pid, 0.0))
    total = Tally((measure_start, measure_end))
    for t, _ in results:
        for k, xs in t.times.items():
            total.times.setdefault(k, []).extend(xs)
        for src, dst in ((t.nbytes, total.nbytes), (t.errors, total.errors), (t.late, total.late)):
            for k, v in src.items():
                dst[k] = dst.get(k, 0) + v
        for k, e in t.examples.items():
            total.examples.setdefault(k, e)
        for k, by in t.statuses.items():
            into = total.statuses.setdefault(k, {})
            for s, c in by.items():
                into[s] = into.get(s, 0) + c
    (ta, _, busy0), (tb, _, busy1) = cpu0, cpu1
    busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    return Measured(mode, n, (walls, views, apis), total, cpu, max(tb - ta, 1e-3), rss, busy,
                    sum(c for _, c in results), os.getloadavg()[0])


def report(m: Measured) -> None:
    walls, views, apis = m.split
    print(f"\n== {m.mode}, N={m.n}: {walls} wall screens, {views} /view sessions, {apis} API clients; "
          f"{m.window_s:.0f} s measured")
    print(f"  {'answer time (ms)':<18} {'answers':>8} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}"
          f" {'errors':>6} {'late':>5} {'KB/ans':>7}  statuses")
    for kind in (*STEADY, *ONE_OFF):
        xs = m.tally.times.get(kind, [])
        err = m.tally.errors.get(kind, 0)
        if not xs and not err:
            continue
        kb = m.tally.nbytes.get(kind, 0) / 1024 / max(1, len(xs))
        st = " ".join(f"{s}×{c}" for s, c in sorted(m.tally.statuses.get(kind, {}).items()))
        print(f"  {kind:<18} {len(xs):>8} {m.p(kind, 50):7.1f} {m.p(kind, 95):7.1f} {m.p(kind, 99):7.1f}"
              f" {max(xs) if xs else float('nan'):7.0f} {err:>6} {m.tally.late.get(kind, 0):>5} {kb:7.1f}  {st}")
    steady = m.steady
    print(f"  {'all steady':<18} {len(steady):>8} {percentile(steady, 50):7.1f} {percentile(steady, 95):7.1f}"
          f" {percentile(steady, 99):7.1f}")
    for kind, n_err in m.tally.errors.items():
        if kind not in STEADY and kind not in ONE_OFF:
            print(f"  {kind}: {n_err} error(s)")
    for kind, example in m.tally.examples.items():
        print(f"  first error of {kind}: {example}")
    cpu_share = m.cpu_s / max(m.window_s, 1e-9)
    rss = m.rss or [float("nan")]
    print(f"  server: CPU {100 * cpu_share:.0f}% of a core = {1000 * cpu_share / m.n:.2f} ms CPU per viewer-second; "
          f"RSS (master + workers) {rss[0]:.0f} → {rss[-1]:.0f} MB, max {max(rss):.0f} MB")
    print(f"  load generator: {m.loader_cpu_s:.1f} s CPU in all; machine busy {100 * m.busy:.0f}% in the window, "
          f"load average {m.loadavg:.1f} on {os.cpu_count()} cores at its end")
    verdict = "MET" if m.met else "missed"
    print(f"  worst steady p95 {m.worst_p95:.0f} ms, {m.errors} error(s): p95 ≤ {TARGET_P95_MS:.0f} ms and "
          f"0 errors {verdict}")


# -- setup -----------------------------------------------------------------------------------------
class ViewersEnv(Env):
    """wall_latency's environment, with extra variables for the web server (the baseline mode)."""

    extra: dict[str, str] = {}

    def child_env(self) -> dict[str, str]:
        return {**super().child_env(), **self.extra}

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


def make_credentials(settings: Settings, walls: int, api: int) -> Credentials:
    """Display users (one per wall), leaders (city + each district) and API tokens."""
    from sqlalchemy import select

    from dashboard.rules.vocab import RegionLevel
    from dashboard.store import db, users
    from dashboard.store.models import Region

    engine = db.make_engine(settings)
    sessions = db.session_factory(engine)
    with db.transaction(sessions) as session:
        tokens = [users.screen_token(session, f"bench-wall-{i:03d}") for i in range(walls)]
        districts = list(session.scalars(select(Region.code).where(Region.level == RegionLevel.DISTRICT.value)
                                         .order_by(Region.code)))
        leaders: list[tuple[str, str]] = []
        made = []
        for code in (None, *districts):
            name = "bench.leader" + (f".{code}".lower() if code else "")
            password = secrets.token_urlsafe(12)
            made.append(users.create_user(session, name, "leader", scope=code, password=password))
            leaders.append((name, password))
        api_tokens = [users.issue_token(session, made[i % len(made)], name=f"bench-api-{i}")[1] for i in range(api)]
    engine.dispose()
    return Credentials(tokens, leaders, api_tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,100,200,400", help="viewer counts N, comma-separated")
    parser.add_argument("--mix", default="2:1:2", help="walls : /view sessions : API clients")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per size")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds before the measurement (viewers sign in during its first 60%%)")
    parser.add_argument("--baseline-max", type=int, default=TARGET_N,
                        help="also measure the per-request-SQL baseline at the sizes up to this")
    parser.add_argument("--no-baseline", action="store_true", help="measure the normal server only")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--loaders", type=int, default=2, help="load processes (asyncio, aiohttp)")
    parser.add_argument("--rate", type=float, default=20.0, help="background new cases per second")
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
    results: list[Measured] = []
    print(f"viewers bench: data dir {env.data_dir}, Redis {args.redis_url} prefix {env.prefix!r}, "
          f"PostgreSQL schema {env.schema}, port {env.port}")
    try:
        settings = env.settings()
        t0 = time.perf_counter()
        grids, _token = prepare_city(settings, args.history_days)
        creds = make_credentials(settings, max(split_of(n, args.mix)[0] for n in sizes),
                                 max(split_of(n, args.mix)[2] for n in sizes))
        print(f"  city ready in {time.perf_counter() - t0:.1f}s: {len(grids)} grids, {len(creds.walls)} display "
              f"tokens, {len(creds.leaders)} leaders, {len(creds.api)} API tokens")
        client = redis.Redis.from_url(args.redis_url)
        env.start("ingest", ["ingest"])
        load = Load(redis.Redis.from_url(args.redis_url), settings, grids, args.rate, args.seed)
        load.start()
        base = f"http://127.0.0.1:{env.port}"
        # Sign-ins come from up to N addresses within seconds; the per-address limit stays on.
        common = {"GRIDHALL_LOGIN_RATE_PER_MINUTE": "1000"}
        modes: list[tuple[str, dict[str, str], list[int]]] = [("read cache on", {}, sizes)]
        if not args.no_baseline:
            base_sizes = [n for n in sizes if n <= args.baseline_max]
            if base_sizes:
                modes.append(("baseline: per-request SQL", {"GRIDHALL_READ_CACHE_S": "0"}, base_sizes))
        for mode, extra, mode_sizes in modes:
            web_pid = env.restart_web(args.workers, {**common, **extra})
            print(f"\n{mode}: web ({args.workers} workers) up at {base}"
                  + (f" with {' '.join(f'{k}={v}' for k, v in extra.items())}" if extra else ""))
            for n in mode_sizes:
                m = measure(args, mode, n, base, creds, web_pid)
                report(m)
                results.append(m)
                time.sleep(2.0)  # the last connections close
        load.stop_ev.set()

        # -- summary ------------------------------------------------------------------------------
        print(f"\nsummary ({args.workers} workers, {args.loaders} load processes on the same machine, "
              f"background {args.rate:g} new cases/s; p95 = the worst steady kind's)")
        print(f"  {'':<26} {'':>4} {'all steady answers (ms)':^31} {'worst':>7}")
        print(f"  {'mode':<26} {'N':>4} {'n':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'p95':>7} {'errors':>6}"
              f" {'ms CPU/viewer-s':>15} {'RSS max MB':>10}  target")
        for m in results:
            steady = m.steady
            print(f"  {m.mode:<26} {m.n:>4} {len(steady):>7} {percentile(steady, 50):7.1f}"
                  f" {percentile(steady, 95):7.1f} {percentile(steady, 99):7.1f} {m.worst_p95:7.1f} {m.errors:>6}"
                  f" {1000 * m.cpu_s / m.window_s / m.n:15.2f} {max(m.rss or [0.0]):10.0f}"
                  f"  {'MET' if m.met else 'missed'}")
        normal = [m for m in results if m.mode == "read cache on"]
        baseline = {m.n: m for m in results if m.mode != "read cache on"}
        if not normal or not normal[0].steady:
            print("no answer was measured")
            sys.exit(1)
        met = [m.n for m in normal if m.met]
        at = max((m for m in normal if m.n <= TARGET_N), key=lambda m: m.n, default=normal[0])
        print(f"target: {TARGET_N} viewers at p95 ≤ {TARGET_P95_MS:.0f} ms with 0 errors — "
              + (f"at N={at.n}: p95 {at.worst_p95:.0f} ms, {at.errors} error(s): {'MET' if at.met else 'MISSED'}"))
        figures: dict[str, float | int] = {"viewers": max(met, default=0), "at_n": at.n,
                                           "p95_ms": at.worst_p95, "errors": at.errors}
        if at.n in baseline:  # no baseline_p95_ms when the baseline answered nothing in time at that size
            if baseline[at.n].steady:
                figures["baseline_p95_ms"] = baseline[at.n].worst_p95
            figures["baseline_errors"] = baseline[at.n].errors
        figures["cpu_ms_per_viewer_s"] = 1000 * at.cpu_s / at.window_s / at.n
        figures["rss_max_mb"] = max(at.rss or [0.0])
        benchkit.result(**figures)
    finally:
        if load is not None:
            load.stop_ev.set()
            load.join(5)
        env.close(client)
        if args.keep_logs:
            print(f"logs kept in {env.data_dir}")


if __name__ == "__main__":
    main()
