"""Compute once per scope, not per reader: the read API and /view share scoped figures
(dashboard/figures/readcache.py) and the API limits each token's rate (auth/throttle.py).

apicitykit's two-district city (青山区 990101, 白石区 990102). What is checked: every reader gets
its own scope's figures — equal to readapi's uncached SQL answer — while each scope's figure is
computed once for all of them (API and /view together); concurrent identical requests compute
once; a change shows after at most the TTL (0: at once); one token over its rate gets 429 with
Retry-After while another token goes on.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import flask
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api import v1
from apicitykit import NOW
from authkit import TestUser, api_token, csrf_header, make_user, signin_client
from callbacks import view as viewcb
from citykit import add_case
from dashboard.figures import readapi
from dashboard.figures.readcache import CachedReads, ReadCache
from dashboard.settings import Settings
from dashboard.store import reference
from dashboard.store import scope as scopes
from dashboard.store.db import transaction
from layouts import view as viewpage

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")

DISTRICTS = {"qs": "990101", "bs": "990102", "city": None}
FIGURES = ("summary", "grids", "overdue", "units")


@dataclass
class Reader:
    """A leader reading both ways: an API token and a browser signed in to /view."""

    who: TestUser
    token: str
    browser: Any


def _api(client: Any, path: str, token: str) -> Any:
    return client.get(f"{v1.PREFIX}/{path}", headers={"Authorization": f"Bearer {token}"})


def _refresh(browser: Any) -> dict[str, Any]:
    """/view's refresh callback as the page posts it (metric: open cases)."""
    outs = [{"id": o.component_id, "property": o.component_property} for o in viewcb.outputs()]
    body = {
        "output": ".." + "...".join(f"{o['id']}.{o['property']}" for o in outs) + "..",
        "outputs": outs,
        "inputs": [{"id": "view-tick", "property": "n_intervals", "value": 1}],
        "state": [{"id": "view-config", "property": "data", "value": {"metric": "open"}},
                  {"id": "view-state", "property": "data", "value": None}],
        "changedPropIds": ["view-tick.n_intervals"],
    }
    r = browser.post("/_dash-update-component", json=body, headers=csrf_header(browser))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.get_json()["response"]  # type: ignore[no-any-return]


def _truth(sessions: sessionmaker[Session], settings: Settings, code: str | None) -> dict[str, Any]:
    """readapi's answers for the scope of ``code`` at NOW, straight from SQL, as the API's JSON."""
    with sessions() as s:
        scope = scopes.get_scope(s, code)
        timing = reference.timing_for(settings, s)
        answers = {"summary": readapi.summary(s, scope, timing, NOW), "grids": readapi.grids(s, scope, timing, NOW),
                   "overdue": readapi.overdue(s, scope, timing, NOW, limit=v1.DEFAULT_OVERDUE_LIMIT),
                   "units": readapi.units(s, scope, timing, NOW)}
    return {name: json.loads(v1.json_text(value)) for name, value in answers.items()}


@pytest.fixture
def shared_hall(api_city: dict[str, Any], settings: Settings, engine: Any,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real app, its API and /view at NOW; a long TTL, so the whole test is one instant."""
    import app as appmod

    monkeypatch.setattr(v1, "utcnow", lambda: NOW)
    application = appmod.create_app(settings.model_copy(update={"read_cache_s": 60.0}))
    application.server.extensions[appmod.EXTENSION_KEY].services.view.clock = lambda: NOW
    yield application
    application.server.extensions[appmod.EXTENSION_KEY].close()


# -- (a) per scope, never across scopes ------------------------------------------------------------
def test_each_scope_gets_its_own_figures_computed_once_for_api_and_view(
        shared_hall: Any, sessions: sessionmaker[Session], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    readers = {}
    for name, code in DISTRICTS.items():
        who = make_user(sessions, "leader", region=code)
        browser = signin_client(shared_hall.server.test_client(), who)
        assert browser.get("/view").status_code == 200
        readers[name] = Reader(who, api_token(sessions, who), browser)
    truth = {name: _truth(sessions, settings, code) for name, code in DISTRICTS.items()}
    assert truth["qs"]["summary"]["open"] != truth["bs"]["summary"]["open"]  # the scopes differ

    computed: Counter[tuple[str, str | None]] = Counter()
    for figure in FIGURES:
        real = getattr(readapi, figure)

        def counted(session: Session, scope: scopes.Scope, *a: Any, _real: Any = real, _f: str = figure,
                    **k: Any) -> Any:
            computed[(_f, scope.code)] += 1
            return _real(session, scope, *a, **k)

        monkeypatch.setattr(readapi, figure, counted)

    # Interleaved, twice: each reader's request comes right after another scope's.
    for _ in range(2):
        for name, reader in readers.items():
            client = shared_hall.server.test_client()
            for figure in FIGURES:
                r = _api(client, figure, reader.token)
                assert r.status_code == 200, (name, figure, r.get_data(as_text=True)[:300])
                assert r.get_json() == truth[name][figure], (name, figure)
            shown = _refresh(reader.browser)
            summary = truth[name]["summary"]
            assert shown["view-kpi-open"]["children"] == str(summary["open"]), name
            assert shown["view-kpi-overdue"]["children"] == str(summary["overdue"]), name
            per_grid = {g["code"]: g["open"] for g in truth[name]["grids"]["grids"] if g["open"]}
            assert shown["view-values"]["data"] == {"values": per_grid}, name
            text = json.dumps(shown, ensure_ascii=False)
            code = DISTRICTS[name]
            if code is not None:  # nothing of the other district
                other = "990102" if code == "990101" else "990101"
                assert other not in text and all(g["code"].startswith(code) for g in truth[name]["grids"]["grids"])
                assert {c["case_id"] for c in truth[name]["overdue"]["cases"]} <= \
                    {f"C-{'A' if code == '990101' else 'B'}{i}" for i in range(1, 7)}
    # Once per scope and figure for 3 readers × 2 rounds × (API + /view); /view's overdue list is
    # its own page size (20), the API's default is 50: two keys.
    want = Counter({(f, c): 1 for f in FIGURES for c in DISTRICTS.values()})
    for code in DISTRICTS.values():
        want[("overdue", code)] = 2
    assert computed == want
    assert viewpage.OVERDUE_ROWS != v1.DEFAULT_OVERDUE_LIMIT


def test_the_key_is_the_scope_not_the_user() -> None:
    cache = ReadCache(60.0)
    a, b = scopes.Scope(1, "990101", "青山区", "district"), scopes.Scope(2, "990102", "白石区", "district")
    same_as_a = scopes.Scope(1, "990101", "青山区", "district", grid_ids=frozenset({7}))
    assert cache.get("summary", a, (), NOW, lambda: "A") == "A"
    assert cache.get("summary", b, (), NOW, lambda: "B") == "B"
    assert cache.get("summary", same_as_a, (), NOW, lambda: "other") == "A"  # another reader of 青山区
    assert cache.get("summary", scopes.CITY, (), NOW, lambda: "city") == "city"
    assert cache.get("grids", a, (None,), NOW, lambda: "grids A") == "grids A"  # figure and parameters count
    assert cache.get("grids", a, ("990101001",), NOW, lambda: "street") == "street"


# -- (b) concurrent identical requests: one computation ------------------------------------------------
def test_concurrent_identical_requests_compute_once() -> None:
    cache = ReadCache(60.0)
    scope = scopes.Scope(1, "990101", "青山区", "district")
    calls = []
    start = threading.Barrier(12)

    def compute() -> object:
        calls.append(1)
        time.sleep(0.3)  # long enough for every other thread to arrive while it runs
        return object()

    results: list[object] = []

    def read() -> None:
        start.wait()
        results.append(cache.get("summary", scope, (), NOW, compute))

    threads = [threading.Thread(target=read) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 12 and len({id(r) for r in results}) == 1
    assert (cache.computed, cache.served) == (1, 11)


def test_concurrent_api_requests_of_one_district_compute_once(api_city: dict[str, Any], sessions: sessionmaker[Session],
                                                              settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    app = flask.Flask("read-cache")
    app.register_blueprint(v1.create_blueprint(sessions, settings, lambda s: reference.timing_for(settings, s),
                                               clock=lambda: NOW, reads=CachedReads(ReadCache(60.0))))
    real = readapi.summary
    computed: list[str | None] = []

    def slow(session: Session, scope: scopes.Scope, *a: Any, **k: Any) -> Any:
        computed.append(scope.code)
        time.sleep(0.3)
        return real(session, scope, *a, **k)

    monkeypatch.setattr(readapi, "summary", slow)
    tokens = [api_city["tokens"]["qs.leader"], api_city["tokens"]["qs.shift"]] * 4  # two users, one district
    start = threading.Barrier(len(tokens))
    bodies: list[tuple[int, bytes]] = []

    def read(token: str) -> None:
        client = app.test_client()
        start.wait()
        r = _api(client, "summary", token)
        bodies.append((r.status_code, r.get_data()))

    threads = [threading.Thread(target=read, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert computed == ["990101"]
    assert {status for status, _ in bodies} == {200} and len({body for _, body in bodies}) == 1
    assert json.loads(bodies[0][1])["scope_code"] == "990101"


def test_an_error_is_shared_by_waiters_but_never_kept() -> None:
    cache = ReadCache(60.0)
    scope = scopes.CITY

    def boom() -> str:
        raise RuntimeError("database away")

    with pytest.raises(RuntimeError):
        cache.get("summary", scope, (), NOW, boom)
    assert cache.get("summary", scope, (), NOW, lambda: "back") == "back"  # computed again


def test_memory_is_bounded_least_recently_used_first() -> None:
    cache = ReadCache(60.0, max_entries=3)
    districts = [scopes.Scope(i, f"99010{i}", f"区{i}", "district") for i in range(1, 6)]
    for d in districts:
        cache.get("summary", d, (), NOW, lambda: "x")
        cache.get("summary", districts[0], (), NOW, lambda: "first")  # kept in use
    assert len(cache) == 3
    assert cache.get("summary", districts[0], (), NOW, lambda: "recomputed") == "x"
    assert cache.get("summary", districts[1], (), NOW, lambda: "recomputed") == "recomputed"


# -- (c) a change shows after at most the TTL -------------------------------------------------------------
def test_a_change_shows_after_at_most_the_ttl(api_city: dict[str, Any], sessions: sessionmaker[Session],
                                              settings: Settings, redis_client: Any) -> None:
    monotonic = [1000.0]
    reads = CachedReads(ReadCache(1.0, clock=lambda: monotonic[0]))
    instant = [NOW]
    app = flask.Flask("read-cache")
    app.register_blueprint(v1.create_blueprint(sessions, settings, lambda s: reference.timing_for(settings, s),
                                               clock=lambda: instant[0], reads=reads))
    uncached = flask.Flask("read-cache-off")
    uncached.register_blueprint(v1.create_blueprint(
        sessions, settings.model_copy(update={"read_cache_s": 0.0}), lambda s: reference.timing_for(settings, s),
        clock=lambda: NOW))
    view = viewcb.ViewService(settings, sessions, redis_client, clock=lambda: NOW)
    view.reads = reads  # as app.py shares it
    view.figure_cache = ReadCache(viewcb.FIGURES_SHARE_S, clock=lambda: monotonic[0])
    token = api_city["tokens"]["qs.leader"]
    client, off = app.test_client(), uncached.test_client()

    def api_open() -> int:
        return int(_api(client, "summary", token).get_json()["open"])

    kpi_index = [key for key, _, _ in viewpage.KPIS].index("open")

    def view_open() -> str:
        with sessions() as s:
            return view.figures(s, scopes.get_scope(s, "990101"), "open").kpis[kpi_index]

    before = api_open()
    assert view_open() == str(before) and int(_api(off, "summary", token).get_json()["open"]) == before
    with transaction(sessions) as s:
        add_case(s, NOW, "C-A9", api_city["grids"]["990101001001002"], "reported")
    monotonic[0] += 0.5
    assert api_open() == before  # within the TTL: the shared answer
    assert view_open() == str(before)
    assert int(_api(off, "summary", token).get_json()["open"]) == before + 1  # TTL 0: straight from SQL
    monotonic[0] += 0.5  # the TTL has passed since the answer was computed
    assert api_open() == before + 1
    assert view_open() == str(before)  # a /view page is shared FIGURES_SHARE_S (its refresh: 30 s)
    # A later instant is a new slot even before the TTL has passed on this process's clock.
    with transaction(sessions) as s:
        add_case(s, NOW, "C-A8", api_city["grids"]["990101001001002"], "reported")
    assert api_open() == before + 1
    instant[0] = NOW.replace(second=1)
    assert api_open() == before + 2
    monotonic[0] += viewcb.FIGURES_SHARE_S  # and after it, the page is computed again
    assert view_open() == str(before + 2)


# -- (d) the per-token rate limit ---------------------------------------------------------------------------
@pytest.fixture
def limited_hall(api_city: dict[str, Any], settings: Settings, engine: Any) -> Iterator[Any]:
    """The real app with 3 API requests per second and token."""
    import app as appmod

    application = appmod.create_app(settings.model_copy(update={"api_rate_per_second": 3}))
    yield application
    application.server.extensions[appmod.EXTENSION_KEY].close()


def test_a_token_over_its_rate_gets_429_and_another_token_goes_on(limited_hall: Any, api_city: dict[str, Any],
                                                                   sessions: sessionmaker[Session]) -> None:
    client = limited_hall.server.test_client()
    a, b = api_city["tokens"]["qs.leader"], api_city["tokens"]["city.leader"]
    assert [_api(client, "summary", a).status_code for _ in range(3)] == [200, 200, 200]
    refused = _api(client, "units", a)
    assert refused.status_code == 429
    assert refused.get_json()["error"] == v1.ERRORS[429] and "3" in refused.get_json()["detail"]
    retry = int(refused.headers["Retry-After"])
    assert retry == 1  # a one-second window
    assert refused.headers["Cache-Control"] == "no-store"
    assert _api(client, "summary", b).status_code == 200  # another token: its own count
    assert _api(client, "summary", "gh_not-a-token").status_code == 401
    # A browser session counts per user.
    who = make_user(sessions, "leader", region="990102")
    browser = signin_client(limited_hall.server.test_client(), who)
    assert [browser.get(f"{v1.PREFIX}/summary").status_code for _ in range(4)] == [200, 200, 200, 429]
    time.sleep(retry + 0.05)
    assert _api(client, "summary", a).status_code == 200  # after Retry-After, served again


def test_no_limit_without_redis_or_at_zero(api_city: dict[str, Any], sessions: sessionmaker[Session],
                                           settings: Settings, redis_client: Any) -> None:
    token = api_city["tokens"]["qs.leader"]
    for config, client_of_redis in ((settings, None), (settings.model_copy(update={"api_rate_per_second": 0}),
                                                       redis_client)):
        app = flask.Flask("unlimited")
        app.register_blueprint(v1.create_blueprint(sessions, config, lambda s: reference.timing_for(settings, s),
                                                   clock=lambda: NOW, redis_client=client_of_redis))
        client = app.test_client()
        assert {_api(client, "summary", token).status_code for _ in range(settings.api_rate_per_second + 5)} == {200}


def test_openapi_documents_429_everywhere() -> None:
    doc = v1.OPENAPI
    for path, item in doc["paths"].items():
        assert item["get"]["responses"]["429"] == {"$ref": "#/components/responses/TooManyRequests"}, path
    assert "Retry-After" in doc["components"]["responses"]["TooManyRequests"]["headers"]


def test_the_limit_lets_requests_through_while_redis_is_away(api_city: dict[str, Any], sessions: sessionmaker[Session],
                                                            settings: Settings) -> None:
    import redis

    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    app = flask.Flask("redis-away")
    app.register_blueprint(v1.create_blueprint(
        sessions, settings.model_copy(update={"api_rate_per_second": 1}), lambda s: reference.timing_for(settings, s),
        clock=lambda: NOW, redis_client=away))
    client = app.test_client()
    assert [_api(client, "summary", api_city["tokens"]["qs.leader"]).status_code for _ in range(5)] == [200] * 5


@pytest.mark.browser
def test_two_district_leaders_in_chromium_and_the_api_at_once_see_only_their_own(
        browser: Any, shared_hall: Any, sessions: sessionmaker[Session], settings: Settings) -> None:
    """Issue 14, acceptance 2: the shared per-(scope, second) answers, read at the same instant by
    two district leaders through /view in Chromium and through the API from threads (all in one
    cache period): each sees its own district's figures, never the other's."""
    import requests
    from playwright.sync_api import expect

    from authkit import signin_page
    from browserkit import serve

    names = ("qs", "bs")
    truth = {name: _truth(sessions, settings, DISTRICTS[name]) for name in names}
    assert truth["qs"]["summary"]["open"] != truth["bs"]["summary"]["open"]
    leaders = {name: make_user(sessions, "leader", region=DISTRICTS[name]) for name in names}
    tokens = {name: api_token(sessions, who) for name, who in leaders.items()}
    district_names = {"qs": "青山区", "bs": "白石区"}
    answers: list[tuple[str, str, int, Any]] = []
    stop = threading.Event()

    with serve(shared_hall.server) as url:
        def poll(name: str) -> None:
            with requests.Session() as client:
                while not stop.is_set():
                    for figure in FIGURES:
                        r = client.get(f"{url}{v1.PREFIX}/{figure}", timeout=10,
                                       headers={"Authorization": f"Bearer {tokens[name]}"})
                        answers.append((name, figure, r.status_code, r.json()))
                    stop.wait(0.3)  # about 13 requests a second: under the token's rate limit (20/s)

        pollers = [threading.Thread(target=poll, args=(name,), daemon=True) for name in names]
        for t in pollers:
            t.start()
        pages = {}
        for name in names:
            pages[name] = browser.new_page(viewport={"width": 1440, "height": 900})
            signin_page(pages[name], url, leaders[name], "/view")
        try:
            for name, page in pages.items():
                summary = truth[name]["summary"]
                expect(page.locator("#view-kpi-open")).to_have_text(str(summary["open"]), timeout=20_000)
                expect(page.locator("#view-kpi-overdue")).to_have_text(str(summary["overdue"]))
                other = district_names["bs" if name == "qs" else "qs"]
                expect(page.locator("#view-overdue")).not_to_contain_text(other)
                assert other not in page.locator("body").inner_text(), name
        finally:
            stop.set()
            for t in pollers:
                t.join(15)
        for page in pages.values():
            page.close()
    assert {name for name, *_ in answers} == set(names) and len(answers) >= 4 * len(FIGURES)
    for name, figure, status, body in answers:
        assert status == 200, (name, figure, body)
        assert body == truth[name][figure], (name, figure)
