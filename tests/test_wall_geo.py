"""The wall's map geometry (/wall/geo/<name>.json) in the browser's cache across reloads.

A reload must not fetch the grid GeoJSON's body again: the browser revalidates by ETag and
the worker answers 304 — also a worker that has just started and not built the layer yet
(the ETag is a hash of the layer's rows, ``dashboard.store.mapdata.layer_etag``). Real parts:
the app on a werkzeug thread, SQL, Redis, Chromium.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from authkit import display_token
from browserkit import LiveServer, PageWatch
from callbacks.wall import GEO_RULE, MapLayers
from dashboard.store import db, mapdata
from dashboard.store.models import Grid
from dashboard.store.reference import Reference

GEO = "/wall/geo/grids.json"
ENTRY_JS = ("() => performance.getEntriesByType('resource').filter(e => e.name.includes('/wall/geo/grids.json'))"
            ".map(e => ({transfer: e.transferSize, body: e.encodedBodySize}))")


def geo_answers(server: LiveServer) -> dict[str, int]:
    """The map GeoJSON's answers so far (grids and boundaries) by status, from the server's /metrics (loopback)."""
    text = requests.get(f"{server.url}/metrics", timeout=30).text
    out: dict[str, int] = {}
    for m in re.finditer(r'^gridhall_http_request_duration_seconds_count\{([^}]*)\} ([0-9.e+]+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("route") == GEO_RULE and float(m.group(2)):
            out[labels["status"]] = out.get(labels["status"], 0) + int(float(m.group(2)))
    return out


@pytest.mark.browser
def test_a_reload_takes_the_grid_geometry_from_the_browser_cache(
        browser: Any, live_server: LiveServer, sessions: sessionmaker[Session], feed_city: Reference) -> None:
    from playwright.sync_api import expect

    with sessions() as s:
        n_grids = len(s.scalars(select(Grid.code)).all())
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        page = context.new_page()
        watch = PageWatch(page)
        # /metrics counts for the whole test process (earlier tests' walls too): compare the growth.
        before = geo_answers(live_server)

        def grown() -> dict[str, int]:
            now = geo_answers(live_server)
            return {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0)}

        page.goto(f"{live_server.url}/wall?token={display_token(sessions)}")
        expect(page.locator("html")).to_have_attribute("data-wall-grids", str(n_grids), timeout=20_000)
        first = page.evaluate(ENTRY_JS)
        assert len(first) == 1 and first[0]["body"] > 0 and first[0]["transfer"] > first[0]["body"]  # the body came
        assert grown() == {"200": 2}  # grids and boundaries
        page.reload()
        expect(page.locator("html")).to_have_attribute("data-wall-grids", str(n_grids), timeout=20_000)
        again = page.evaluate(ENTRY_JS)
        assert len(again) == 1
        # the same body, from the cache: what crossed the wire is a 304's headers, not the body
        assert grown() == {"200": 2, "304": 2}  # each body sent once, then revalidated
        assert again[0]["body"] == first[0]["body"] and again[0]["transfer"] < first[0]["transfer"]
        assert watch.errors == []
    finally:
        context.close()


def test_a_revalidation_is_answered_304(live_server: LiveServer, sessions: sessionmaker[Session],
                                        feed_city: Reference) -> None:
    client = requests.Session()
    assert client.get(f"{live_server.url}/wall?token={display_token(sessions)}", timeout=30).ok
    full = client.get(live_server.url + GEO, timeout=30)
    assert full.status_code == 200 and full.headers["Cache-Control"] == "no-cache"
    etag = full.headers["ETag"]
    assert json.loads(full.content)["type"] == "FeatureCollection"
    again = client.get(live_server.url + GEO, headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    stale = client.get(live_server.url + GEO, headers={"If-None-Match": '"not-it"'}, timeout=30)
    assert stale.status_code == 200 and stale.content == full.content


def test_the_etag_is_known_before_the_layer_is_built(sessions: sessionmaker[Session], feed_city: Reference) -> None:
    fresh = MapLayers(sessions)  # a worker that has just started
    etag = fresh.etag("grids")
    assert fresh._built == {}  # answered from the rows, nothing built
    assert fresh.layer("grids").etag == etag
    with sessions() as s:
        assert mapdata.grid_layer(s).etag == etag
        code, geometry = s.execute(select(Grid.code, Grid.geometry).order_by(Grid.code).limit(1)).one()
    # A city re-import that moves one vertex changes the ETag: the wall gets the new body.
    moved = json.loads(geometry)
    ring = moved["coordinates"][0]
    ring[0] = ring[-1] = [ring[0][0] + 1e-5, ring[0][1]]
    try:
        with db.transaction(sessions) as s:
            s.execute(update(Grid).where(Grid.code == code).values(geometry=json.dumps(moved)))
        assert MapLayers(sessions).etag("grids") != etag
    finally:
        with db.transaction(sessions) as s:
            s.execute(update(Grid).where(Grid.code == code).values(geometry=geometry))
    assert MapLayers(sessions).etag("grids") == etag
