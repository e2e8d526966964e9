"""Small updates to the wall: panels computed once and shared, row deltas for the queue and the
board, gzip on the wire.

- ``RowHistory``: a delta applied onto the rows it was computed from gives exactly the new rows;
  a screen whose rows are unknown gets the whole set.
- In Chromium (the app on a werkzeug thread, the real ingest, Redis and SQL): after a series of
  random case histories, some of whose answers the page never received, the queue and the board
  the AG Grids hold are exactly the server's rows, in order; deltas were used, not only whole sets.
- Two screens in the same state get byte-identical answers; a KPI-only update is ≤ 1 KB and a
  grid update ≤ 10 KB compressed on the wire.
"""

from __future__ import annotations

import copy
import json
import random
import time
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from authkit import display_token
from browserkit import LiveServer, PageWatch, take_updates, watch_updates
from callbacks import wall as wallcb
from callbacks.wall_push import Sight
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store.reference import Reference
from feedkit import GRID_CODES, arrival_order, random_ledger
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.producer import Producer


def apply(rows: list[dict[str, Any]], delta: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """What wall.js does with a delta, in Python: the rows by id, then in the grid's sort order."""
    if delta.get("full"):
        return sorted(delta["rows"], key=lambda r: r[key])
    by_id = {r["id"]: r for r in rows}
    for i in delta["remove"]:
        del by_id[i]
    for r in delta["add"]:
        assert r["id"] not in by_id
        by_id[r["id"]] = r
    for u in delta["update"]:
        by_id[u["id"]] = {**by_id[u["id"]], **u}
    return sorted(by_id.values(), key=lambda r: r[key])


def test_row_deltas_rebuild_exactly_the_new_rows() -> None:
    rng = random.Random(14)
    history = wallcb.RowHistory(versions=8)
    sets = []
    rows = [{"id": f"c{i}", "k": f"{i:04d}", "late": f"{i}分", "stage": "待处置"} for i in range(40)]
    for _ in range(30):
        rows = copy.deepcopy(rows)
        for r in rng.sample(rows, 5):  # texts change
            r["late"] = f"{rng.randint(0, 999)}分"
        for r in rng.sample(rows, 3):  # rows leave
            rows.remove(r)
        for _ in range(3):  # rows come, anywhere in the order
            n = rng.randint(0, 10**6)
            rows.append({"id": f"n{n}", "k": f"{rng.randint(0, 9999):04d}n{n}", "late": "0分", "stage": "待核实"})
        rows.sort(key=lambda r: r["k"])
        digest = wallcb._digest(rows)
        history.record(digest, rows)
        sets.append((digest, rows))
    now_digest, now_rows = sets[-1]
    for digest, old in sets[-8:-1]:  # still known: a delta, and it rebuilds the rows exactly
        delta = history.delta(digest, now_digest, now_rows)
        assert delta is not None and not delta.get("full") and delta["from"] == digest
        assert apply(old, delta, "k") == now_rows
        # an update carries the id and the changed fields only
        assert all(set(u) <= {"id", "late", "stage", "k"} and "late" in u or "k" in u or "stage" in u
                   for u in delta["update"])
        assert history.delta(digest, now_digest, now_rows) is delta  # computed once, shared
    far = history.delta(sets[0][0], now_digest, now_rows)  # forgotten: the whole set
    assert far is not None and far["full"] and far["rows"] == now_rows
    assert history.delta(None, now_digest, now_rows)["full"]  # type: ignore[index]
    assert history.delta(now_digest, now_digest, now_rows) is None


# -- in Chromium ---------------------------------------------------------------------------------------
# What the grid draws on its current page: (row index in the sorted model, a column's text).
DOM_ROWS_JS = """([id, col]) => Array.from(document.querySelectorAll(
    `#${id} .ag-center-cols-container .ag-row`)).map(r => [Number(r.getAttribute("row-index")),
    (r.querySelector(`[col-id="${col}"]`) || {}).textContent || ""]).sort((a, b) => a[0] - b[0])"""
DOM_COLUMNS = {"queue": ("wall-queue", "number"), "board": ("wall-board", "unit")}

GRID_ROWS_JS = """(id) => {
    const api = window.dash_ag_grid.getApi(id), out = [];
    api.forEachNodeAfterFilterAndSort(n => out.push(n.data));
    return out;
}"""


def open_wall(browser: Any, sessions: sessionmaker[Session], url: str) -> Any:
    page = watch_updates(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{url}/wall?token={display_token(sessions)}")
    page.wait_for_function("() => { const r = document.documentElement.getAttribute('data-wall-rows');"
                           " return r && JSON.parse(r).queue && JSON.parse(r).board; }", timeout=30_000)
    return page


# The row panels this city fills (the 临期高风险 section stays empty without a stored risk model: its
# rows are checked in tests/test_wall_foresight.py).
CHECKED_PANELS = tuple(p for p in wallcb.ROW_PANELS if p != "risk")


def server_rows(service: wallcb.WallService) -> dict[str, list[dict[str, Any]]]:
    live = service.live
    assert live is not None
    panels = service.panels(live, Sight("open"))
    return {name: panels.parts[name] for name in CHECKED_PANELS}


def converged(page: Any, service: wallcb.WallService, timeout: float = 15.0) -> None:
    """The grids hold exactly the server's rows, in the server's order (retried while answers arrive)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        want = server_rows(service)
        have = {"queue": page.evaluate(GRID_ROWS_JS, "wall-queue"), "board": page.evaluate(GRID_ROWS_JS, "wall-board")}
        if have == want:
            drawn = {name: page.evaluate(DOM_ROWS_JS, list(DOM_COLUMNS[name])) for name in CHECKED_PANELS}
            if all(drawn[name] and all(text == str(want[name][i][DOM_COLUMNS[name][1]]) for i, text in drawn[name])
                   for name in CHECKED_PANELS):
                return
            last = (drawn, {name: [r[DOM_COLUMNS[name][1]] for r in want[name]] for name in CHECKED_PANELS})
            time.sleep(0.2)
            continue
        last = (have, want)
        time.sleep(0.2)
    have, want = last
    assert set(have) == set(CHECKED_PANELS) and isinstance(have["queue"], list)
    for name in CHECKED_PANELS:
        if have[name] != want[name]:
            diff = [(h, w) for h, w in zip(have[name], want[name], strict=False) if h != w][:3]
            raise AssertionError(f"{name}: {len(have[name])} rows shown, {len(want[name])} on the server; {diff}")


def ingest_all(ingest: Ingest) -> None:
    while ingest.step():
        pass


@pytest.mark.browser
def test_row_transactions_converge_on_the_servers_rows(browser: Any, live_server: LiveServer, settings: Settings,
                                                       sessions: sessionmaker[Session], redis_client: redis.Redis,
                                                       feed_city: Reference) -> None:
    service = live_server.runtime.services.wall
    page = open_wall(browser, sessions, live_server.url)
    watch = PageWatch(page)
    deltas: list[dict[str, Any]] = []

    def seen(response: Any) -> None:
        if response.url.split("?")[0].endswith("/_dash-update-component") and response.status == 200:
            try:
                rows = json.loads(response.body())["response"].get("wall-rows")
            except Exception:
                return
            if rows:
                deltas.extend(rows["data"].values())

    page.on("response", seen)
    ingest = Ingest(settings, sessions, redis_client, feed_city, consumer="rows", block_ms=10)
    ingest.ensure_group()
    producer = Producer(redis_client, settings)
    rng = random.Random(1414)
    # Histories that start days ago: cases become overdue, change stage and unit, close.
    msgs = arrival_order(random_ledger(rng, 80, prefix="rt", spread_hours=96), rng, dup_rate=0)
    chunks = [msgs[i::8] for i in range(8)]
    chunks = [sorted(c, key=lambda m: m.occurred_at) for c in chunks]
    blocked = False

    def block(on: bool) -> None:
        """The screen misses answers and pushed updates (a network hiccup)."""
        nonlocal blocked
        if on and not blocked:
            page.route("**/_dash-update-component", lambda route: route.abort())
        if not on and blocked:
            page.unroute("**/_dash-update-component")
        page.evaluate(f"window.__dropUpdates = {'true' if on else 'false'}")
        blocked = on

    def pushed() -> None:
        for _, answer in take_updates(page):
            deltas.extend((answer.get("wall-rows") or {}).get("data", {}).values())

    ordered = sorted(msgs, key=lambda m: (m.case_id, m.occurred_at))
    per_case: dict[str, list[CaseEventMessage]] = {}
    for m in ordered:
        per_case.setdefault(m.case_id, []).append(m)
    cases = list(per_case)
    steps = [cases[i::8] for i in range(8)]
    for i, step in enumerate(steps[:7]):
        block(i in (3, 4, 5))  # the screen misses these answers (a network hiccup)
        producer.publish_many(m for c in step for m in per_case[c])
        ingest_all(ingest)
        if not blocked:
            converged(page, service)
        else:
            time.sleep(1.2)
    block(False)
    converged(page, service)
    pushed()
    rows = server_rows(service)
    assert len(rows["queue"]) >= 10 and len(rows["board"]) >= 2, {k: len(v) for k, v in rows.items()}
    assert any("from" in d for d in deltas), [(sorted(d), len(d.get("rows", []))) for d in deltas]
    assert any(d.get("update") or d.get("add") or d.get("remove") for d in deltas if "from" in d)

    # A screen so far behind that the worker forgot the rows it shows gets the whole set.
    block(True)
    for history in service.rows_of("").values():
        history.versions = 1
        history.record("-", [])  # pushes out every set the screen could name
    producer.publish_many(m for c in steps[7] for m in per_case[c])
    ingest_all(ingest)
    time.sleep(1.2)
    pushed()
    n = len(deltas)
    block(False)
    converged(page, service)
    pushed()
    assert any(d.get("full") for d in deltas[n:]), deltas[n:]
    assert watch.errors == []
    page.close()


def refresh_request(page: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The next refresh request the page sends: its JSON body and headers."""
    with page.expect_request(lambda r: r.url.split("?")[0].endswith("/_dash-update-component")
                             and "wall-grid.data" in (r.post_data or ""), timeout=10_000) as info:
        pass
    req = info.value
    return json.loads(req.post_data), {k: v for k, v in req.headers.items() if not k.startswith(":")}


def as_fresh_screen(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for s in body.get("state", []):
        if s["id"] in ("wall-state", "wall-applied", "wall-rows-applied"):
            s["value"] = None
    return body


@pytest.mark.browser
def test_same_state_same_bytes_and_small_updates_on_the_wire(
    browser: Any, live_server: LiveServer, settings: Settings, sessions: sessionmaker[Session],
    redis_client: redis.Redis, feed_city: Reference,
) -> None:
    service = live_server.runtime.services.wall
    a = open_wall(browser, sessions, live_server.url)
    b = open_wall(browser, sessions, live_server.url)  # another screen, its own session
    body_a, headers_a = refresh_request(a)
    _, headers_b = refresh_request(b)
    fresh = as_fresh_screen(body_a)
    def where() -> tuple[Any, ...]:
        """The server's state: the view's version, the minute, the grid coordinate (notice, second)."""
        status = service.follower.status()  # type: ignore[union-attr]
        return (service.live.version, utcnow().replace(second=0, microsecond=0),  # type: ignore[union-attr]
                status.last_id, status.last_tick_at)

    for _ in range(5):  # both asks at the same server state (the coordinate moves each second)
        before = where()
        ra = a.request.post(f"{live_server.url}/_dash-update-component", data=json.dumps(fresh), headers=headers_a)
        rb = b.request.post(f"{live_server.url}/_dash-update-component", data=json.dumps(fresh), headers=headers_b)
        if where() == before:
            break
    assert where() == before, "the server never stood still for two requests"
    assert ra.status == rb.status == 200
    assert ra.headers.get("content-encoding") == "gzip" and rb.headers.get("content-encoding") == "gzip"
    assert ra.body() == rb.body()  # byte-identical answers for screens in the same state
    assert "wall-rows" in json.loads(ra.body())["response"]  # a whole answer, not an empty one

    # Updates as the page receives them: sizes as received (compressed body).
    sizes: list[tuple[int, dict[str, Any]]] = []

    def seen(response: Any) -> None:
        if response.url.split("?")[0].endswith("/_dash-update-component") and response.status == 200 \
                and "wall-grid.data" in (response.request.post_data or ""):
            sizes.append((response.request.sizes()["responseBodySize"], json.loads(response.body())["response"]))

    a.on("response", seen)
    a.wait_for_timeout(1500)
    sizes.clear()
    take_updates(a)
    ingest = Ingest(settings, sessions, redis_client, feed_city, consumer="bytes", block_ms=10)
    ingest.ensure_group()
    producer = Producer(redis_client, settings)
    for i in range(6):  # a new case on every grid: grid cells, KPIs, hot list
        producer.publish_many(CaseEventMessage(
            event_id=f"by{i}-{g}", case_id=f"by{i}-{g}", type=EventType.REPORTED, occurred_at=utcnow(),
            source="supervisor", kind="event", class_code="06010", grid_code=g, description="道路积水",
            number=f"by{i}-{g}") for g in GRID_CODES)
        ingest_all(ingest)
        a.wait_for_timeout(1200)
    pushed = take_updates(a)
    assert pushed, "no update came by push"
    sizes.extend(pushed)  # pushed updates: their compressed piece
    grid_updates = [n for n, r in sizes if (r.get("wall-grid") or {}).get("data", {}).get("values")]
    assert grid_updates, sizes
    assert max(grid_updates) <= 10_000, grid_updates
    # KPI-only: a case reported on no grid (上报 moves, no cell, row or hot spot does).
    sizes.clear()
    producer.publish(CaseEventMessage(
        event_id="by-kpi-1", case_id="by-kpi-1", type=EventType.REPORTED, occurred_at=utcnow(),
        source="supervisor", kind="event", class_code="06010", grid_code=None, description="无网格",
        number="by-kpi-1", lon=None, lat=None))
    ingest_all(ingest)
    a.wait_for_timeout(2000)
    sizes.extend(take_updates(a))
    kpi_only = [n for n, r in sizes if "wall-kpi-reported" in r and not (r.get("wall-grid") or {}).get("data", {}).get(
        "values") and "wall-rows" not in r and "wall-hot" not in r]
    assert kpi_only, [sorted(r) for _, r in sizes]
    assert max(kpi_only) <= 1_000, kpi_only
    a.close()
    b.close()
