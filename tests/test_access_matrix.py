"""The role × route matrix, generated from the app's own route table (auth/policy.py).

Every Flask URL rule, every page and every server-side Dash callback of the real app is tried
as anonymous and as each role (city-wide and district-scoped): what the policy allows works
(no 401/403, no 5xx), the rest gets 401 (anonymous) or 403 — and nothing in the database
changes. A route, page or callback without a rule fails here before it can ship.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import layouts
from auth import policy
from authkit import csrf_header, display_token, make_user, signin_client
from dashboard.store.models import Base

DISTRICT = "990101"  # 青山区 of apicitykit's city; the other district is 990102 (白石区)
pytestmark = pytest.mark.usefixtures("fresh_scope_cache")


@dataclass
class Caller:
    name: str
    role: str | None  # None: anonymous
    city_scope: bool
    client: Any


@pytest.fixture
def api_city_app(api_city: dict[str, Any], dash_app: Any) -> Any:  # the city first, then the app
    return dash_app


def _callers(app: Any, sessions: sessionmaker[Session]) -> list[Caller]:
    callers = [Caller("anonymous", None, True, app.server.test_client())]
    for role in ("leader", "shift_lead", "admin"):
        for region in (None, DISTRICT):
            who = make_user(sessions, role, region=region)
            callers.append(Caller(f"{role}@{region or 'city'}", role, region is None,
                                  signin_client(app.server.test_client(), who)))
    client = app.server.test_client()
    token = display_token(sessions, make_user(sessions, "display"))  # wall screens are city-wide
    assert client.get(f"/wall?token={token}").status_code == 303
    callers.append(Caller("display@city", "display", True, client))
    for c in callers:
        if c.role is not None:
            c.client.get("/login")  # any page of a signed-in user sets the CSRF cookie
            c.client.get(policy.HOME[c.role])
    return callers


def _row_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) or 0
                for t in Base.metadata.sorted_tables}


def _samples(app: Any, case_id: str) -> list[tuple[str, str, str, Any]]:
    """(rule, method, url, the policy entry that should decide) for every URL rule of the app."""
    with app.server.test_request_context("/wall"):
        index = app.index()
    script = re.findall(r'<script src="(/_dash-component-suites/[^"]+)"', index)[0]
    fill = {
        "/assets/<path:filename>": ["/assets/login.css"],
        "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": [script],
        "/static/<path:filename>": ["/static/none.txt"],
        "/<path:path>": [f"/{p}" for p in policy.PAGES],
        "/wall/geo/<name>.json": ["/wall/geo/grids.json", "/wall/geo/boundaries.json"],
        "/explore/export.<fmt>": ["/explore/export.csv", "/explore/export.xlsx"],
        "/explore/handover/<shift>.<fmt>": ["/explore/handover/2026-11-20T0800.html"],
        "/api/v1/cases/<case_id>": [f"/api/v1/cases/{case_id}"],
        **{rule: [rule.replace("<fmt>", "json").replace("<service_code>", "E06010")
                  .replace("<request_id>", case_id).replace("<token>", "t0"),
                  rule.replace("<fmt>", "xml").replace("<service_code>", "E06010")
                  .replace("<request_id>", case_id).replace("<token>", "t0")]
           for rule, entry in policy.ROUTES.items() if isinstance(entry, policy.ApiKey)},
        "/open311/v2/<path:rest>": ["/open311/v2/nothing.json"],
    }
    out = []
    for rule in app.server.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if rule.rule == "/_dash-update-component":
                continue  # per callback, below
            for url in fill.get(rule.rule, [rule.rule]):
                out.append((rule.rule, method, url, policy.ROUTES.get(rule.rule)))
    return out


def _callback_body(key: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The body Dash's renderer posts for a callback, every input and state None."""
    def ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": i["id"], "property": i["property"], "value": None} for i in items]

    outputs = [{"id": o.split(".")[0], "property": o.split(".")[1]}
               for o in key.strip(".").split("...")] if key.startswith("..") else \
        {"id": key.split(".")[0], "property": key.split(".")[1]}
    return {"output": key, "outputs": outputs, "inputs": ids(spec["inputs"]),
            "state": ids(spec["state"]), "changedPropIds": []}


def _verdict(entry: Any, page: str | None, caller: Caller) -> bool:
    rule = policy.PAGES[page] if page is not None else entry
    return rule.allows(caller.role, caller.city_scope)


def _check(caller: Caller, allowed: bool, status: int, location: str, what: str) -> None:
    if allowed and what.startswith("POST /login"):
        assert status < 500 and status != 403, f"{caller.name} {what}: {status}"  # 401: bad password
    elif allowed:
        assert status < 500 and status not in (401, 403), f"{caller.name} {what}: {status}"
    elif caller.role is None:
        assert status == 401 or (status in (302, 303) and location.startswith("/login")), \
            f"anonymous {what}: {status} {location}"
    else:
        assert status == 403, f"{caller.name} {what}: {status}"


def test_every_route_page_and_callback_has_a_rule(api_city_app: Any) -> None:
    rules = {r.rule for r in api_city_app.server.url_map.iter_rules()}
    assert rules - set(policy.ROUTES) == set(), "routes without an access rule"
    assert set(policy.ROUTES) - rules == set(), "rules for routes that do not exist"
    assert set(layouts.LAYOUTS) == set(policy.PAGES)
    pages = api_city_app.server.extensions["gridhall"].services.callback_pages
    server_side = {k for k, spec in api_city_app.callback_map.items() if "callback" in spec}
    assert server_side == set(pages), "callbacks without an owning page"
    assert set(pages.values()) <= set(policy.PAGES)


def test_role_scope_matrix(api_city_app: Any, sessions: sessionmaker[Session], api_city: dict[str, Any]) -> None:
    callers = _callers(api_city_app, sessions)
    before = _row_counts(sessions)
    tried = 0
    for rule, method, url, entry in _samples(api_city_app, "C-A1"):
        for caller in callers:
            if rule == "/logout":
                continue  # below: it would end the caller's session
            if isinstance(entry, policy.Scrape):
                # Decided by the client's address (the test client is 127.0.0.1) or the scrape
                # token, never by a session: every caller reads it here, nobody from elsewhere.
                assert caller.client.get(url).status_code == 200, f"{caller.name} {url}"
                assert caller.client.get(url, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 403
                tried += 1
                continue
            if isinstance(entry, policy.ApiKey):
                # Open311: only an api_key counts, never a session or role; nobody here has one
                # (anonymous reads are off by default): the spec's error, 403 (404: no such path).
                r = caller.client.post(url, data={}) if method == "POST" else caller.client.get(url)
                assert r.status_code == (404 if rule.endswith("<path:rest>") else 403), f"{caller.name} {url}"
                assert (b"<errors>" in r.data) if url.endswith(".xml") else r.get_json()[0]["code"] == r.status_code
                tried += 1
                continue
            page = None
            if isinstance(entry, policy.PageOf):
                page = policy.page_of(url) if entry.how == "path" else None
            if rule == "/_dash-layout":
                for p in policy.PAGES:
                    r = caller.client.get(url, headers={"Referer": f"http://localhost/{p}"})
                    _check(caller, _verdict(None, p, caller), r.status_code, r.headers.get("Location", ""),
                           f"layout of /{p}")
                    tried += 1
                continue
            if method == "POST":
                r = caller.client.post(url, data={}, headers=csrf_header(caller.client) if caller.role else {})
            else:
                r = caller.client.get(url)
            _check(caller, _verdict(entry, page, caller), r.status_code, r.headers.get("Location", ""),
                   f"{method} {url}")
            tried += 1
    pages = api_city_app.server.extensions["gridhall"].services.callback_pages
    for key, spec in api_city_app.callback_map.items():
        body = _callback_body(key, spec)
        if key not in pages:  # a clientside callback: never the server's; refused if asked
            assert "callback" not in spec
            r = callers[1].client.post("/_dash-update-component", json=body, headers=csrf_header(callers[1].client))
            assert r.status_code == 403
            continue
        for caller in callers:
            headers = csrf_header(caller.client) if caller.role else {}
            r = caller.client.post("/_dash-update-component", json=body, headers=headers)
            _check(caller, _verdict(None, pages[key], caller), r.status_code, "", f"callback {key[:60]}")
            assert b"Traceback" not in r.data
            tried += 1
    assert tried > 200
    # Nothing anybody did above wrote a row (sign-in counters are updates, not rows).
    assert _row_counts(sessions) == before
    for caller in callers:
        if caller.role is not None:
            r = caller.client.post("/logout", data={"csrf_token": caller.client.get_cookie("_csrf_token").value})
            assert r.status_code == 303
            assert caller.client.get(policy.HOME[caller.role]).status_code == 302  # signed out
        else:
            assert caller.client.post("/logout").status_code == 401


def test_callbacks_need_the_csrf_token(api_city_app: Any, sessions: sessionmaker[Session]) -> None:
    client = signin_client(api_city_app.server.test_client(), make_user(sessions, "shift_lead"))
    client.get("/live")
    key = next(k for k, p in api_city_app.server.extensions["gridhall"].services.callback_pages.items() if p == "live")
    body = _callback_body(key, api_city_app.callback_map[key])
    assert client.post("/_dash-update-component", json=body).status_code == 400
    assert client.post("/_dash-update-component", json=body,
                       headers={"X-CSRFToken": "forged"}).status_code == 400
    assert client.post("/_dash-update-component", json=body, headers=csrf_header(client)).status_code in (200, 204)


def test_unknown_callback_and_unknown_page_are_refused(api_city_app: Any, sessions: sessionmaker[Session]) -> None:
    client = signin_client(api_city_app.server.test_client(), make_user(sessions, "admin"))
    client.get("/live")
    r = client.post("/_dash-update-component", json={"output": "made-up.children", "inputs": []},
                    headers=csrf_header(client))
    assert r.status_code == 403
    assert client.get("/nowhere").status_code == 404
    assert api_city_app.server.test_client().get("/nowhere").status_code == 404


def test_the_screens_page_by_role_and_scope(api_city_app: Any, sessions: sessionmaker[Session],
                                            redis_client: Any, settings: Any) -> None:
    """/screens (大屏管理): leaders and displays are refused the page and every callback of it; a
    district's shift lead sees and changes only its district's screens, and a crafted payload
    naming another district's screen is refused on the server; an admin sees and changes all."""
    from screenspagekit import HOME, HOME_SCREEN, OTHER_SCREEN, dash_call, hall_screens, texts

    hall_screens(sessions, redis_client, settings)
    pages = api_city_app.server.extensions["gridhall"].services.callback_pages
    keys = [k for k, page in pages.items() if page == "screens"]
    assert len(keys) == 8  # the overview, the editor, playlist rows, pick, save, banners, alerts, 确认
    leader = signin_client(api_city_app.server.test_client(), make_user(sessions, "leader"))
    display = api_city_app.server.test_client()
    assert display.get(f"/wall?token={display_token(sessions)}").status_code == 303
    for client in (leader, display):
        client.get("/login")
        assert client.get("/screens").status_code == 403
        for key in keys:
            body = _callback_body(key, api_city_app.callback_map[key])
            assert client.post("/_dash-update-component", json=body, headers=csrf_header(client)).status_code == 403

    save = {"screens-save.n_clicks": 1, "screens-e-layout.value": "kpis", "screens-e-region.value": "city",
            "screens-e-metric.value": "open", "screens-e-title.value": "改过的标题"}
    seen = {}
    for name, region in (("lead", HOME), ("admin", None)):
        who = make_user(sessions, "shift_lead" if name == "lead" else "admin", region=region)
        client = signin_client(api_city_app.server.test_client(), who)
        assert client.get("/screens").status_code == 200
        _, out = dash_call(client, api_city_app, "screens-table.children", {}, [], csrf_header(client))
        seen[name] = texts(out["screens-table.children"])
        _, out = dash_call(client, api_city_app, "screens-saved.data",
                           {**save, "screens-selected.data": OTHER_SCREEN, "screens-e-region.value": HOME if region
                            else "city"}, ["screens-save.n_clicks"], csrf_header(client))
        seen[f"{name}-save"] = out.get("screens-saved.data")
    assert HOME_SCREEN in seen["lead"] and OTHER_SCREEN not in seen["lead"]
    assert HOME_SCREEN in seen["admin"] and OTHER_SCREEN in seen["admin"]
    assert seen["lead-save"] is None and seen["admin-save"] == 1  # the lead's crafted save was refused
