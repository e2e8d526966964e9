"""Simulated screens for the benches: wall screens, /view sessions and API clients (asyncio + aiohttp).

Shared by ``viewers.py`` (N viewers, the sweep) and ``wall_latency.py --viewers N`` (N viewers
connected while a real browser measures). Not a bench itself: no ``main``.

Each simulated viewer has its own cookie jar, connections and loopback address (127.1.x.y),
and speaks to ``gridhall serve`` exactly as its client does:

- a **wall screen** signs in with its display token (``/wall?token=…`` → redirect → page,
  ``/_dash-layout``, ``/_dash-dependencies``, the map geometry), then runs the page's protocol
  as ``layouts/assets/wall.js`` and Dash's renderer do: an ``EventSource``-like stream on
  ``/wall/events`` (server-sent events); it applies each ``update`` event's answer as wall.js
  does (when it has everything up to the update's ``from``), and on a ``change`` event, or an
  update it cannot apply, it calls the refresh callback
  (``/_dash-update-component``, input ``wall-push.data``) at once with its real states
  (``wall-state``, ``wall-applied``: the coordinate it painted, ``wall-rows-applied``: the row
  sets it shows, ``wall-config``); it applies each ``health`` event (header, stale banner and
  the fingerprint ``wall-health-fp`` its health poll sends; counted); the poll
  (``wall-tick``) runs at the page's ``pushedPollMs`` (5 s) while the stream is open and at
  ``pollMs`` (500 ms) while it is down, the health poll (``wall-health-tick``) likewise at
  ``pushedHealthMs`` (30 s) and ``healthMs`` (2 s), each interval restarting when it changes,
  as ``dcc.Interval`` does; a dropped stream is reopened after its ``retry``, a refused one
  (503) after a minute, as the page does. Like Dash's renderer, each tick sends a request at
  once, even with one in flight, and only the newest refresh request's answer is applied: an
  older one is dropped when it comes (counted). Like wall.js, a pushed
  change that arrives while a refresh is in flight is asked for once that answer is in (a
  burst of changes costs one refresh, and answers are not discarded one after another).
- a **/view session** signs in with a leader's username and password (the form's CSRF
  token), loads the page, asks for the scope's geometry once and refreshes at ``view-tick``;
- an **API client** polls ``/api/v1/summary`` and ``/api/v1/overdue`` once a second each.

What a screen sees goes into a :class:`Tally`: answer times per kind, errors, counters, and for
walls the arrival of each probe grid's new value (``XADD → answer`` once matched with the probe
list the bench writes to Redis, see :func:`run_loader`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import re
import resource
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

import benchkit
from benchkit import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auth import CSRF_COOKIE  # noqa: E402
from dashboard.settings import Settings  # noqa: E402

API_MS = 1000  # the API clients' poll (the screens' cadences are their pages' own: dcc.Interval)
#: The steady answers a target is judged on (page loads and sign-ins are reported apart).
#: "wall push→answer": a change event's (or an update's it could not apply) arrival → the answer
#: of the refresh it caused; "wall XADD→answer": a probe case's XADD → the first pushed update
#: or refresh answer carrying its grid's value.
STEADY = ("wall push→answer", "wall XADD→answer", "wall refresh", "wall health", "view refresh",
          "api summary", "api overdue")
ONE_OFF = ("wall sign-in", "wall page", "view sign-in", "view page", "view geometry")
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
STREAM_READ_S = 35.0  # a stream silent this long is dead (the server writes at least every 10 s)
REFUSED_RETRY_S = 60.0  # a refused stream (503) is tried again after this (wall.js)
KEEPALIVE_S = 8.0  # idle connections closed after this: below the server's keep-alive (app.py)


@dataclass
class Tally:
    """What one load process saw: answer times per kind (ms, in the window), errors, bytes, counts."""

    window: tuple[float, float]
    times: dict[str, list[float]] = field(default_factory=dict)
    nbytes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: (viewer, probe grid, wall-clock ms) of each refresh answer that carried a probe grid's value
    arrivals: list[tuple[int, str, float]] = field(default_factory=list)

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

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def merge(self, other: Tally) -> None:
        for k, xs in other.times.items():
            self.times.setdefault(k, []).extend(xs)
        for src, dst in ((other.nbytes, self.nbytes), (other.errors, self.errors), (other.late, self.late),
                         (other.counts, self.counts)):
            for k, v in src.items():
                dst[k] = dst.get(k, 0) + v
        for k, e in other.examples.items():
            self.examples.setdefault(k, e)
        for k, by in other.statuses.items():
            into = self.statuses.setdefault(k, {})
            for s, c in by.items():
                into[s] = into.get(s, 0) + c
        self.arrivals.extend(other.arrivals)

    # -- judged figures --------------------------------------------------------------------------
    def p(self, kind: str, q: float) -> float:
        return percentile(self.times.get(kind, []), q)

    @property
    def steady(self) -> list[float]:
        return [x for k in STEADY for x in self.times.get(k, [])]

    @property
    def worst_p95(self) -> float:
        vals = [self.p(k, 95) for k in STEADY if self.times.get(k)]
        return max(vals) if vals else float("nan")

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())


def report_tally(t: Tally, indent: str = "  ") -> None:
    """The table of answer times per kind (steady kinds, then one-offs), errors and counters."""
    print(f"{indent}{'answer time (ms)':<18} {benchkit.DIST_HEAD} {'errors':>6} {'late':>5} {'KB/ans':>7}  statuses")
    for kind in (*STEADY, *ONE_OFF):
        xs = t.times.get(kind, [])
        err = t.errors.get(kind, 0)
        if not xs and not err:
            continue
        kb = t.nbytes.get(kind, 0) / 1024 / max(1, len(xs))
        st = " ".join(f"{s}×{c}" for s, c in sorted(t.statuses.get(kind, {}).items()))
        print(f"{indent}{kind:<18} {benchkit.dist(xs)} {err:>6} {t.late.get(kind, 0):>5} {kb:7.1f}  {st}")
    print(f"{indent}{'all steady':<18} {benchkit.dist(t.steady)}")
    for kind, n_err in t.errors.items():
        if kind not in STEADY and kind not in ONE_OFF:
            print(f"{indent}{kind}: {n_err} error(s)")
    for kind, example in t.examples.items():
        print(f"{indent}first error of {kind}: {example}")
    if t.counts:
        print(f"{indent}" + ", ".join(f"{k} {v}" for k, v in sorted(t.counts.items())))


# -- Dash's wire format -----------------------------------------------------------------------------
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

    def body(self, values: dict[tuple[str, str], Any], changed: tuple[str, str] | None = None) -> bytes:
        def dep(cid: str, prop: str) -> dict[str, Any]:
            d: dict[str, Any] = {"id": cid, "property": prop}
            if (cid, prop) in values:
                d["value"] = values[(cid, prop)]
            return d

        cid, prop = changed or self.inputs[0]
        return orjson.dumps({"output": self.output, "outputs": _outputs(self.output),
                             "inputs": [dep(*x) for x in self.inputs],
                             "changedPropIds": [f"{cid}.{prop}"],
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


# -- one viewer ---------------------------------------------------------------------------------------
class Clock:
    """The end of a load process's run: fixed, or moved to now when the bench says stop."""

    def __init__(self, end: float) -> None:
        self.end = end

    def left(self) -> float:
        return self.end - time.time()


class Viewer:
    """One simulated screen or client: its own cookie jar, connections and loopback address."""

    def __init__(self, vid: int, base: str, address: str, tally: Tally, timeout: float, clock: Clock,
                 probe_grids: frozenset[str] = frozenset()) -> None:
        import aiohttp

        self.vid = vid
        self.base = base
        self.tally = tally
        self.clock = clock
        self.probe_grids = probe_grids
        self.http = aiohttp.ClientSession(
            # Idle connections dropped before the server drops them (gunicorn keepalive 10 s,
            # app.py): a browser resends a request whose reused connection the server had just
            # closed, aiohttp does not, so without this a poll racing the server's close counted
            # as an error that no screen would see.
            connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=6, keepalive_timeout=KEEPALIVE_S),
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
        while self.clock.left() > 0:
            await step(n)
            n += 1
            due += period_s
            now = time.time()
            if due < now:
                missed = int((now - due) // period_s) + 1
                self.tally.late[kind] = self.tally.late.get(kind, 0) + missed
                n += missed - 1
                due += missed * period_s
            await asyncio.sleep(max(0.0, min(due, self.clock.end) - time.time()))

    async def page(self, kind: str, path: str) -> tuple[Any, list[dict[str, Any]]] | None:
        """The page's layout and callback graph, asked for as Dash's renderer does."""
        headers = {"Referer": self.base + path}
        layout = await self.call(kind, "GET", "/_dash-layout", headers=headers)
        deps = await self.call(kind, "GET", "/_dash-dependencies", headers=headers)
        if layout is None or deps is None:
            return None
        return orjson.loads(layout[1]), cast(list[dict[str, Any]], orjson.loads(deps[1]))

    async def poll(self, kind: str, path: str, cb: Callback, values: dict[tuple[str, str], Any],
                   changed: tuple[str, str] | None = None, current: Callable[[], bool] | None = None) -> bool | None:
        """One callback request with the page's current values; applies what comes back.

        False when it failed; None when ``current`` says, once the answer is in, that a newer
        request superseded it (the answer is dropped unapplied, as Dash's renderer does).
        """
        headers = {"Content-Type": "application/json", "X-CSRFToken": self.cookie(CSRF_COOKIE),
                   "Referer": self.base + path}
        res = await self.call(kind, "POST", "/_dash-update-component", data=cb.body(values, changed),
                              headers=headers)
        if res is None:
            return False
        if current is not None and not current():
            return None
        if res[0] == 200 and res[1]:
            self.apply(cb, values, orjson.loads(res[1]).get("response", {}))
        return True

    def apply(self, cb: Callback, values: dict[tuple[str, str], Any], response: dict[str, Any]) -> None:
        """Take a refresh answer (a polled one or a pushed update) into the page's values."""
        # As wall.js: an answer older than what is painted (overtaken by pushed updates) is not
        # painted; once it painted the cells, it records their coordinate (wall-applied).
        grid = response.get("wall-grid", {}).get("data")
        coord = values.get(("wall-applied", "data"))
        if isinstance(grid, dict) and grid.get("nid") and coord and coord_le(grid, coord) \
                and not coord_le(coord, grid):
            response = {k: v for k, v in response.items() if k != "wall-grid"}
            grid = None
        for cid, props in response.items():
            for prop, value in props.items():
                if (cid, prop) in values or any(cid == s[0] and prop == s[1] for s in cb.state):
                    values[(cid, prop)] = value
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
        if isinstance(grid, dict) and not grid.get("full") and self.probe_grids:
            at = time.time() * 1000
            self.tally.arrivals.extend((self.vid, code, at) for code in grid.get("values") or {}
                                       if code in self.probe_grids)

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
        screen = WallScreen.of(self, path, layout, deps)
        if screen is None:
            return
        await screen.run()

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


class Pace:
    """A ``dcc.Interval``'s period: a new one restarts its timer."""

    def __init__(self, ms: float) -> None:
        self.ms = ms
        self.reset = asyncio.Event()

    def set(self, ms: float) -> None:
        if ms != self.ms:
            self.ms = ms
            self.reset.set()


class WallScreen:
    """A wall page's refresh protocol: push stream, refresh on each change, safety polls."""

    PUSH = ("wall-push", "data")
    TICK = ("wall-tick", "n_intervals")
    HEALTH_TICK = ("wall-health-tick", "n_intervals")

    def __init__(self, v: Viewer, path: str, cb: Callback, values: dict[tuple[str, str], Any],
                 config: dict[str, Any], health: Callback, health_values: dict[tuple[str, str], Any]) -> None:
        self.v, self.path, self.cb, self.values = v, path, cb, values
        self.health_cb, self.health_values = health, health_values
        self.config = config
        self.poll = Pace(float(config["pollMs"]))
        self.health_poll = Pace(float(config["healthMs"]))
        self.events_url = str(config["events"])
        self.waiting: list[float] = []  # arrival times of change events not yet answered
        self.inflight: set[asyncio.Task[None]] = set()
        self.gen = 0  # the newest refresh request's number
        self.running = 0  # refresh requests in flight (wall.js counts them the same way)
        self.due: str | None = None  # a pushed change not yet asked for (its version)
        self.pushed = 0

    @classmethod
    def of(cls, v: Viewer, path: str, layout: Any, deps: list[dict[str, Any]]) -> WallScreen | None:
        cb = Callback.find(deps, "wall-tick")
        values = _props(layout, {c for c, _ in cb.inputs + cb.state}) if cb else {}
        config = values.get(("wall-config", "data"))
        paces = ("pollMs", "pushedPollMs", "healthMs", "pushedHealthMs")
        if cb is None or cls.PUSH not in cb.inputs or not isinstance(config, dict) \
                or any(k not in config for k in paces):
            v.tally.error("wall refresh", "no refresh callback on wall-tick + wall-push, or no push config")
            return None
        health = Callback.find(deps, cls.HEALTH_TICK[0])
        if health is None:
            v.tally.error("wall health", "no callback on wall-health-tick")
            return None
        return cls(v, path, cb, values, config, health,
                   _props(layout, {c for c, _ in health.inputs + health.state}))

    def set_pushed(self, pushed: bool) -> None:
        """wall.js setPace: both polls slow while the stream is open, back to normal when it is down."""
        self.poll.set(float(self.config["pushedPollMs" if pushed else "pollMs"]))
        self.health_poll.set(float(self.config["pushedHealthMs" if pushed else "healthMs"]))

    async def run(self) -> None:
        stream = asyncio.create_task(self.stream())
        try:
            await asyncio.gather(self.ticker(self.poll, self.tick), self.ticker(self.health_poll, self.health_tick))
        finally:
            stream.cancel()
            try:
                await stream
            except asyncio.CancelledError:
                pass
            if self.inflight:
                await asyncio.gather(*self.inflight, return_exceptions=True)

    async def ticker(self, pace: Pace, tick: Callable[[int], None]) -> None:
        """``dcc.Interval``: ``tick(n)`` at once and every period; a new period restarts the timer."""
        clock = self.v.clock
        n = 0
        tick(n)  # the page's first call, at once
        while clock.left() > 0:
            try:
                await asyncio.wait_for(pace.reset.wait(), timeout=max(0.0, min(pace.ms / 1000, clock.left())))
                pace.reset.clear()
            except TimeoutError:
                if clock.left() > 0:
                    n += 1
                    tick(n)

    def tick(self, n: int) -> None:
        self.values[self.TICK] = n
        self.trigger(self.TICK)

    def health_tick(self, n: int) -> None:
        """The health callback, sent at once even with one in flight (its answer is applied)."""
        self.health_values[self.HEALTH_TICK] = n
        task = asyncio.create_task(self._health())
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def _health(self) -> None:
        await self.v.poll("wall health", self.path, self.health_cb, self.health_values)

    def trigger(self, changed: tuple[str, str]) -> None:
        """An input of the refresh changed: Dash's renderer asks at once with the page's values
        now; an answer to an older request still in flight is dropped when it comes (only the
        newest request of a callback is applied), as the browser does."""
        self.gen += 1
        task = asyncio.create_task(self._refresh(self.gen, changed))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    def update(self, u: dict[str, Any]) -> None:
        """wall.js applyUpdate: apply a pushed answer when the page has everything up to its
        ``from``; ask a refresh when it lacks something; ignore it when the page is already
        ahead. (A refresh answer older than the painted coordinate is not painted: apply.)"""
        coord = self.values.get(("wall-applied", "data"))
        if u.get("to") and coord and coord_le(u["to"], coord) and not coord_le(coord, u["to"]):
            self.v.tally.count("updates ignored (page ahead)")
            return
        if not coord_le(u.get("from"), coord):
            self.v.tally.count("updates answered by a refresh")
            self.waiting.append(time.time())
            self.due = "update"
            self.ask_if_due()
            return
        self.v.apply(self.cb, self.values, u.get("response") or {})

    def ask_if_due(self) -> None:
        """wall.js: a pushed change is asked for only when no refresh is in flight, once."""
        if self.running == 0 and self.due is not None:
            self.values[self.PUSH] = {"version": self.due, "n": self.pushed}
            self.due = None
            self.trigger(self.PUSH)

    async def _refresh(self, gen: int, changed: tuple[str, str]) -> None:
        tally = self.v.tally
        sent = time.time()
        self.running += 1
        try:
            applied = await self.v.poll("wall refresh", self.path, self.cb, self.values, changed,
                                        current=lambda: gen == self.gen)
        finally:
            self.running -= 1
        self.ask_if_due()
        if applied is None:
            tally.count("refresh answers dropped (a newer request was in flight)")
        elif applied and self.waiting:
            done = time.time()
            for t in self.waiting:  # the changes that arrived before this request was sent
                if t <= sent:
                    tally.ok("wall push→answer", t, 1000 * (done - t), 200, 0)
            self.waiting = [t for t in self.waiting if t > sent]

    async def stream(self) -> None:
        """``EventSource`` on /wall/events: reconnect after ``retry``; refused → a minute of polling."""
        import aiohttp

        clock, tally = self.v.clock, self.v.tally
        retry_s = 3.0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=STREAM_READ_S)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", "Referer": self.v.base + self.path}
        while clock.left() > 0:
            wait_s = retry_s
            try:
                async with self.v.http.get(self.v.base + self.events_url, headers=headers, timeout=timeout) as r:
                    if r.status != 200:
                        tally.error("wall stream", f"HTTP {r.status} (refused: polling for a minute)")
                        wait_s = REFUSED_RETRY_S
                    else:
                        tally.count("streams opened")
                        self.set_pushed(True)
                        retry_s = await self._read(r.content, retry_s)
                        if clock.left() > 0:
                            tally.error("wall stream", "closed by the server")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if clock.left() > 0:
                    tally.error("wall stream", f"{type(exc).__name__}: {exc}")
            self.set_pushed(False)
            await asyncio.sleep(max(0.0, min(wait_s, clock.left())))

    async def _read(self, content: Any, retry_s: float) -> float:
        """Dispatch the stream's events until it ends; returns its last ``retry`` (seconds)."""
        event, data = "message", ""
        async for raw in content:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                if event == "change":
                    self.pushed += 1
                    self.v.tally.count("change events")
                    self.waiting.append(time.time())
                    self.due = data
                    self.ask_if_due()
                elif event == "update":
                    self.pushed += 1
                    self.v.tally.count("update events")
                    self.update(orjson.loads(data))
                elif event == "health":  # wall.js: set_props of each id, wall-health-fp too
                    self.v.tally.count("health events")
                    self.v.apply(self.health_cb, self.health_values, orjson.loads(data))
                event, data = "message", ""
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    event = value
                elif name == "data":
                    data = value
                elif name == "retry" and value.isdigit():
                    retry_s = int(value) / 1000
        return retry_s


def coord_le(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Grid coordinates ({nid: "ms-seq", tick}) ordered part by part, as wall.js coordLE."""
    if not a:
        return True
    if not b:
        return False
    x = tuple(int(p) for p in str(a["nid"]).split("-"))
    y = tuple(int(p) for p in str(b["nid"]).split("-"))
    return x <= y and int(a["tick"]) <= int(b["tick"])


# -- a load process -----------------------------------------------------------------------------------
def probe_times(redis_url: str, key: str) -> dict[str, list[float]]:
    """The probes the bench XADDed: per grid, the wall-clock ms of each (ascending)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        out: dict[str, list[float]] = {}
        for item in cast(list[bytes], client.lrange(key, 0, -1)):
            grid, _, ms = item.decode().partition("|")
            out.setdefault(grid, []).append(float(ms))
    finally:
        client.close()
    for xs in out.values():
        xs.sort()
    return out


def match_probes(tally: Tally, probes: dict[str, list[float]]) -> None:
    """``wall XADD→answer``: each wall's first answer carrying a probe grid's value after its XADD."""
    import bisect

    seen: set[tuple[int, str, float]] = set()
    for vid, grid, at in sorted(tally.arrivals, key=lambda a: a[2]):
        xs = probes.get(grid, [])
        i = bisect.bisect_right(xs, at) - 1
        if i < 0 or (vid, grid, xs[i]) in seen:
            continue
        seen.add((vid, grid, xs[i]))
        tally.ok("wall XADD→answer", xs[i] / 1000, at - xs[i], 200, 0)
    tally.arrivals.clear()


async def _load(spec: dict[str, Any]) -> Tally:
    tally = Tally((spec["measure_start"], spec["measure_end"]))
    rng = random.Random(spec["seed"])
    clock = Clock(spec["measure_end"])
    probe_grids = frozenset(spec.get("probe_grids") or ())

    async def one(vid: int, kind: str, cred: list[str], address: str) -> None:
        await asyncio.sleep(max(0.0, spec["begin"] + rng.uniform(0, spec["ramp"]) - time.time()))
        if clock.left() <= 0:
            return
        v = Viewer(vid, spec["base"], address, tally, spec["timeout"], clock, probe_grids)
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

    async def stopper(path: str) -> None:  # the bench says stop (an open-ended run)
        while clock.left() > 0 and not os.path.exists(path):
            await asyncio.sleep(0.25)
        clock.end = min(clock.end, time.time())

    tasks = [one(vid, kind, cred, addr) for vid, kind, cred, addr in spec["viewers"]]
    if spec.get("stop_file"):
        tasks.append(stopper(spec["stop_file"]))
    await asyncio.gather(*tasks)
    tally.window = (tally.window[0], min(tally.window[1], clock.end))
    if spec.get("probe_key"):
        match_probes(tally, probe_times(spec["redis_url"], spec["probe_key"]))
    return tally


def run_loader(spec: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """A load process: its viewers in one event loop; (what it saw, its own CPU seconds).

    The tally goes back as a plain dict: a class of a script run as ``__main__`` is not
    importable by that name in the other process.
    """
    tally = asyncio.run(_load(spec))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return dataclasses.asdict(tally), ru.ru_utime + ru.ru_stime


# -- who the viewers are -------------------------------------------------------------------------------
@dataclass
class Credentials:
    walls: list[str]  # display tokens, one per wall screen
    leaders: list[tuple[str, str]]  # (username, password): the city's leader and one per district
    api: list[str]  # bearer tokens, one per API client


def split_of(n: int, mix: tuple[int, ...]) -> tuple[int, int, int]:
    """N viewers as (walls, /view sessions, API clients) by ``mix``."""
    total = sum(mix)
    walls = round(n * mix[0] / total) if mix[0] else 0
    views = round(n * mix[1] / total) if mix[1] else 0
    return walls, views, max(0, n - walls - views)


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


def viewer_list(n: int, mix: tuple[int, ...], creds: Credentials) -> list[tuple[int, str, list[str], str]]:
    """(id, kind, credentials, loopback address) of N viewers, shuffled; each its own 127.1.x.y."""
    walls, views, apis = split_of(n, mix)
    kinds = ([("wall", [creds.walls[i]]) for i in range(walls)]
             + [("view", list(creds.leaders[i % len(creds.leaders)])) for i in range(views)]
             + [("api", [creds.api[i]]) for i in range(apis)])
    out = [(i, k, c, f"127.1.{i // 250}.{i % 250 + 1}") for i, (k, c) in enumerate(kinds)]
    random.Random(n).shuffle(out)
    return out


def start_loaders(pool: Any, base: str, viewers: list[tuple[int, str, list[str], str]], loaders: int,
                  begin: float, ramp: float, window: tuple[float, float], timeout: float, seed: int,
                  **extra: Any) -> Any:
    """Spread the viewers over ``loaders`` processes of ``pool``: the AsyncResult of their tallies."""
    specs = [{"base": base, "viewers": viewers[i::loaders], "begin": begin, "ramp": ramp,
              "measure_start": window[0], "measure_end": window[1], "timeout": timeout, "seed": seed + i, **extra}
             for i in range(loaders)]
    return pool.map_async(run_loader, specs)


def merged(results: list[tuple[dict[str, Any], float]], window: tuple[float, float]) -> tuple[Tally, float]:
    """The load processes' tallies as one, and their CPU seconds."""
    total = Tally(window)
    for t, _ in results:
        total.merge(Tally(**t))
    return total, sum(c for _, c in results)


def threads_for(walls: int) -> int:
    """GRIDHALL_WEB_THREADS for ``walls`` pushed screens: any worker can hold all of them.

    The kernel does not spread connections evenly over gunicorn's workers, so each worker is
    sized for every stream, plus the 4 threads a worker keeps for everything else
    (``callbacks.wall.RESERVED_THREADS``) and 8 spare (the measuring browser, reconnects).
    """
    from callbacks.wall import RESERVED_THREADS

    return max(32, min(512, walls + RESERVED_THREADS + 8))


__all__ = ["Clock", "Credentials", "Tally", "Viewer", "WallScreen", "make_credentials", "merged",
           "report_tally", "run_loader", "split_of", "start_loaders", "threads_for", "viewer_list"]
