"""The JSON read API (/api/v1, api/v1.py over dashboard/figures/readapi.py): auth, roles, region scope.

A two-district city with cases in both (tests/apicitykit.py); users of every role hold tokens. The role rules are
tried on every route of the blueprint, taken from Flask's url_map, so a new route is covered
(and must be documented in api/openapi.json) the moment it exists.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import flask
import pytest
from sqlalchemy import and_, or_
from sqlalchemy.orm import Session, sessionmaker

from api import v1
from apicitykit import NOW, XSS, count_of, district_cases
from dashboard.settings import Settings
from dashboard.store import reference
from dashboard.store import scope as scopes
from dashboard.store.models import Case

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")


@pytest.fixture
def client(sessions: sessionmaker[Session], settings: Settings) -> Iterator[Any]:
    app = flask.Flask("api-test")
    timing = lambda session: reference.timing_for(settings, session)  # noqa: E731
    app.register_blueprint(v1.create_blueprint(sessions, settings, timing, clock=lambda: NOW))
    with app.test_client() as c:
        c.application = app  # type: ignore[attr-defined]
        yield c


def _get(client: Any, path: str, token: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, headers=headers, **kw)


def _routes(app: flask.Flask) -> list[str]:
    """The blueprint's routes as OpenAPI paths ("/cases/{case_id}"), from Flask's url_map."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api_v1."):
            path = rule.rule.removeprefix(v1.PREFIX)
            out.append(re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", path))
    return sorted(out)


def _concrete(path: str) -> str:
    return v1.PREFIX + path.replace("{case_id}", "C-A1")


# -- auth -------------------------------------------------------------------------------------
def test_every_route_refuses_anonymous_bad_and_display_tokens(client: Any, api_city: dict[str, Any]) -> None:
    routes = _routes(client.application)
    assert len(routes) == 7
    for path in routes:
        url = _concrete(path)
        for headers in ({}, {"Authorization": "Bearer gh_not-a-token"}, {"Authorization": "Basic Zm9vOmJhcg=="},
                        {"Authorization": "Bearer "}):
            r = client.get(url, headers=headers)
            assert r.status_code == 401, (url, headers)
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert r.headers["Cache-Control"] == "no-store"
            assert r.is_json and "unauthorized" in r.get_json()["error"] and "未认证" in r.get_json()["error"]
        r = _get(client, url, api_city["tokens"]["wall"])
        assert r.status_code == 403 and "forbidden" in r.get_json()["error"], url
        for user in ("qs.leader", "qs.shift", "admin", "city.leader"):
            r = _get(client, url, api_city["tokens"][user])
            assert r.status_code == 200, (url, user, r.get_data(as_text=True))
            assert r.headers["Cache-Control"] == "no-store"
            assert r.mimetype == "application/json"


def test_openapi_lists_exactly_the_blueprint_routes(client: Any, api_city: dict[str, Any]) -> None:
    doc = _get(client, "/api/v1/openapi.json", api_city["tokens"]["admin"]).get_json()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": v1.PREFIX}]
    assert sorted(doc["paths"]) == _routes(client.application)
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    # Either a bearer token or the browser session of a signed-in user (OpenAPI: alternatives).
    assert doc["security"] == [{"bearerAuth": []}, {"sessionCookie": []}]
    assert doc["components"]["securitySchemes"]["sessionCookie"]["name"] == "gridhall_session"
    schemas = doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        op = item["get"]
        assert "401" in op["responses"] and "403" in op["responses"], path
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ok.rsplit("/", 1)[1] in schemas
        for name in re.findall(r"{(\w+)}", path):
            assert any(p["name"] == name and p["in"] == "path" for p in op["parameters"])
    # the query parameters each view reads are documented
    params = {p["name"] for p in doc["paths"]["/grids"]["get"]["parameters"]}
    assert params == {"region", "include_idle", "limit", "offset"}
    assert {p["name"] for p in doc["paths"]["/overdue"]["get"]["parameters"]} == {"limit", "offset"}


# -- scope ------------------------------------------------------------------------------------
def _sql_counts(sessions: sessionmaker[Session], district: str | None) -> dict[str, int]:
    """The figures computed independently: cases joined up to their district."""
    open_stages = ["reported", "verified", "filed", "dispatched", "returned", "handled", "checked", "suspended"]
    with sessions() as s:
        base = district_cases(district)

        def count(*where: Any) -> int:
            return count_of(s, base, *where)

        return {
            "open": count(Case.stage.in_(open_stages)),
            "overdue": count(Case.stage.in_(open_stages), Case.deadline_at < NOW,
                             or_(Case.paused_at.is_(None), Case.paused_at > NOW)),
            "urgent": count(Case.stage.in_(open_stages), Case.urgency == "urgent"),
            "reported": count(and_(Case.reported_at >= NOW - timedelta(hours=11), Case.reported_at <= NOW)),
            "closed": count(Case.stage == "closed", Case.closed_at >= NOW - timedelta(hours=11)),
        }


def test_district_leader_sees_only_its_district(client: Any, api_city: dict[str, Any],
                                                sessions: sessionmaker[Session]) -> None:
    tok = api_city["tokens"]["qs.leader"]
    s = _get(client, "/api/v1/summary", tok).get_json()
    expected = _sql_counts(sessions, "990101")
    assert {k: s[k] for k in expected} == expected
    assert expected == {"open": 4, "overdue": 1, "urgent": 1, "reported": 4, "closed": 1}
    assert s["scope_code"] == "990101" and s["scope_name"] == "青山区" and s["due_soon"] == 1
    assert s["on_time_close_rate"] == 1.0 and s["disposing"] == 2  # C-A1 派遣, C-A5 挂账

    grids = _get(client, "/api/v1/grids", tok).get_json()
    assert {g["code"] for g in grids["grids"]} == {"990101001001001", "990101001001002"}
    assert all(g["district"] == "青山区" for g in grids["grids"])
    by_code = {g["code"]: g for g in grids["grids"]}
    assert by_code["990101001001001"] == {"code": "990101001001001", "community": "江东社区", "street": "江东街道",
                                          "district": "青山区", "open": 3, "overdue": 1, "new_hour": 2}

    queue = _get(client, "/api/v1/overdue", tok).get_json()
    assert [c["case_id"] for c in queue["cases"]] == ["C-A1", "C-A2"]
    assert (queue["overdue_total"], queue["due_soon_total"]) == (1, 1)
    first = queue["cases"][0]
    assert first["overdue"] and first["clock_stage"] == "handle" and first["unit_name"] == "青山区环卫所"
    assert first["overdue_calendar_minutes"] == pytest.approx(45) and first["district"] == "青山区"

    board = _get(client, "/api/v1/units", tok).get_json()["units"]
    assert [u["code"] for u in board] == ["U-QS"]
    u = board[0]
    assert (u["pending"], u["feedback"], u["overdue"], u["closed_today"]) == (2, 1, 1, 1)
    assert (u["handled_month"], u["on_time_month"]) == (2, 1)


def test_district_leader_cannot_reach_the_other_district(client: Any, api_city: dict[str, Any]) -> None:
    tok = api_city["tokens"]["qs.shift"]
    unknown = _get(client, "/api/v1/cases/C-NOPE", tok)
    other = _get(client, "/api/v1/cases/C-B1", tok)
    gridless = _get(client, "/api/v1/cases/C-X", tok)
    assert unknown.status_code == other.status_code == gridless.status_code == 404
    assert unknown.get_data() == other.get_data() == gridless.get_data()  # nothing tells them apart
    for code in ("990102", "990102001", "990102001001", "990102001001001", "990199", "abc", "990101' OR 1=1"):
        r = _get(client, "/api/v1/grids", tok, query_string={"region": code})
        assert r.status_code == 404, code
        assert r.get_json() == {"error": v1.ERRORS[404]}
    own = _get(client, "/api/v1/grids", tok, query_string={"region": "990101001001002"}).get_json()
    assert [g["code"] for g in own["grids"]] == ["990101001001002"]
    assert _get(client, "/api/v1/grids", tok, query_string={"region": "990101001"}).status_code == 200
    assert _get(client, "/api/v1/overdue", tok, query_string={"limit": "x"}).status_code == 400


def test_city_admin_sees_everything(client: Any, api_city: dict[str, Any], sessions: sessionmaker[Session]) -> None:
    tok = api_city["tokens"]["admin"]
    s = _get(client, "/api/v1/summary", tok).get_json()
    expected = _sql_counts(sessions, None)
    assert {k: s[k] for k in expected} == expected
    assert s["open"] == 8 and s["overdue"] == 4 and s["scope_level"] == "city"
    grids = _get(client, "/api/v1/grids", tok, query_string={"include_idle": "1"}).get_json()["grids"]
    codes = {g["code"] for g in grids}
    assert codes == set(api_city["grids"])
    assert _get(client, "/api/v1/grids", tok, query_string={"region": "990102"}).status_code == 200
    queue = _get(client, "/api/v1/overdue", tok).get_json()
    # most overdue (earliest deadline) first: B2 −90, A1 −45, B1 −10, X −5; then due soon A2, B3
    assert [c["case_id"] for c in queue["cases"]] == ["C-B2", "C-A1", "C-B1", "C-X", "C-A2", "C-B3"]
    page = _get(client, "/api/v1/overdue", tok, query_string={"limit": 2, "offset": 1}).get_json()
    assert [c["case_id"] for c in page["cases"]] == ["C-A1", "C-B1"] and page["overdue_total"] == 4
    assert {u["code"] for u in _get(client, "/api/v1/units", tok).get_json()["units"]} == {"U-QS", "U-BS"}
    assert _get(client, "/api/v1/cases/C-B1", tok).get_json()["district"] == "白石区"
    assert _get(client, "/api/v1/cases/C-X", tok).status_code == 200


def test_case_detail_timeline_and_plain_text(client: Any, api_city: dict[str, Any]) -> None:
    r = _get(client, "/api/v1/cases/C-A1", api_city["tokens"]["qs.leader"])
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert b"<script>" not in r.get_data() and b"<img" not in r.get_data()  # escaped as \u003c
    body = r.get_json()
    assert body["description"] == XSS  # the same text, as a JSON string
    assert [(e["type"], e["label"], e["actor"]) for e in body["events"]] == [
        ("reported", "上报", "P-0"), ("filed", "立案", "P-1"), ("dispatched", "派遣", "P-2")]
    assert [e["occurred_at"] for e in body["events"]] == sorted(e["occurred_at"] for e in body["events"])
    assert body["clock_stage"] == "handle" and body["overdue"] is True
    assert body["grid_code"] == "990101001001001" and body["unit_code"] == "U-QS"
    assert set(body["on_time"]) == {"verify", "file", "dispatch", "handle", "check", "close"}
    assert isinstance(body["deadlines"], list)


def test_errors_are_json_without_traceback(client: Any, api_city: dict[str, Any], monkeypatch: Any,
                                           caplog: Any) -> None:
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(v1.readapi, "summary", boom)
    with caplog.at_level("ERROR", logger="api.v1"):
        r = _get(client, "/api/v1/summary", api_city["tokens"]["admin"])
    assert r.status_code == 500 and r.get_json() == {"error": v1.ERRORS[500]}
    assert b"secret" not in r.get_data() and b"Traceback" not in r.get_data()
    assert any("secret internals" in rec.getMessage() for rec in caplog.records)


def test_create_app_mounts_the_api(settings: Settings, engine: Any, api_city: dict[str, Any]) -> None:
    import app as appmod

    application = appmod.create_app(settings)
    try:
        client = application.server.test_client()
        assert client.get("/api/v1/summary").status_code == 401
        r = _get(client, "/api/v1/summary", api_city["tokens"]["admin"])
        assert r.status_code == 200 and r.get_json()["scope_level"] == "city"
        assert _get(client, "/api/v1/openapi.json", api_city["tokens"]["wall"]).status_code == 403
    finally:
        application.server.extensions[appmod.EXTENSION_KEY].close()


# -- evaluation ---------------------------------------------------------------------------------
def test_evaluation_is_scoped_and_equals_the_domain(client: Any, api_city: dict[str, Any],
                                                    sessions: sessionmaker[Session], settings: Settings) -> None:
    from dashboard.figures.evaluation import Period, evaluate

    period = Period.parse("2026-11", settings.tz)
    r = _get(client, "/api/v1/evaluation?kind=district&period=2026-11", api_city["tokens"]["admin"])
    assert r.status_code == 200
    body = r.get_json()
    with sessions() as s:
        truth = evaluate(s, scopes.CITY, "district", period, now=NOW)
    assert [row["code"] for row in body["rows"]] == [row.code for row in truth.rows]
    assert sorted(row.code for row in truth.rows) == ["990101", "990102"]
    for row in truth.rows:
        got = next(x for x in body["rows"] if x["code"] == row.code)
        assert got["composite"] == row.composite and got["grade"] == row.grade and got["rank"] == row.rank
        assert got["indicators"] == {k: v for k, v in row.indicators.items()}
    assert {i["key"] for i in body["indicator_labels"]} >= set(truth.rows[0].indicators)
    # A district leader sees its district only; a region outside its scope is 404 like an unknown one.
    r = _get(client, "/api/v1/evaluation?kind=district&period=2026-11", api_city["tokens"]["qs.leader"])
    assert [row["code"] for row in r.get_json()["rows"]] == ["990101"]
    for region in ("990102", "999999", "990102001"):
        assert _get(client, f"/api/v1/evaluation?region={region}", api_city["tokens"]["qs.leader"]).status_code == 404
    leader = api_city["tokens"]["qs.leader"]
    assert _get(client, "/api/v1/evaluation?kind=street&region=990101", leader).status_code == 200
    assert _get(client, "/api/v1/evaluation?kind=planet", api_city["tokens"]["admin"]).status_code == 400
    assert _get(client, "/api/v1/evaluation?period=2026-13", api_city["tokens"]["admin"]).status_code == 400
    assert _get(client, "/api/v1/evaluation", api_city["tokens"]["wall"]).status_code == 403


# -- malformed input (issue 12 point 13) ------------------------------------------------------
MALFORMED = ["C-A1\x00", "\x00", "C-\x00-1", "C\u202eA1", "%", "x" * 65, " ", "C-A1\n", "\ud800"]


def test_malformed_ids_are_refused_without_a_traceback(settings: Settings, engine: Any, api_city: dict[str, Any],
                                                       sessions: sessionmaker[Session], caplog: Any) -> None:
    """A NUL byte (or another malformed id) in any id the app takes: 400/404, never 500, no traceback."""
    from urllib.parse import quote

    import app as appmod
    from authkit import make_user, signin_client

    # Many requests a second with one token: no rate limit here (tests/test_read_cache.py tests it).
    application = appmod.create_app(settings.model_copy(update={"api_rate_per_second": 0}))
    try:
        api = application.server.test_client()
        browser = signin_client(application.server.test_client(), make_user(sessions, "shift_lead"))
        token = api_city["tokens"]["admin"]
        with caplog.at_level("INFO"):
            for bad in MALFORMED:
                q = quote(bad.encode("utf-8", "surrogatepass"), safe="")
                api_paths = [f"/api/v1/cases/{q}", f"/api/v1/grids?region={q}",
                             f"/api/v1/evaluation?region={q}", f"/api/v1/evaluation?kind={q}",
                             f"/api/v1/evaluation?period={q}", f"/api/v1/overdue?limit={q}"]
                for path in api_paths:
                    r = _get(api, path, token)
                    blank_filter = not bad.strip() and "?" in path  # a blank filter is no filter
                    assert r.status_code in ((200, 400, 404) if blank_filter else (400, 404)), (path, r.status_code)
                    assert b"Traceback" not in r.get_data()
                for path in (f"/explore?case={q}", f"/explore?region={q}", f"/explore/export.csv?case={q}",
                             f"/explore/export.csv?region={q}", f"/explore/export.{q}", f"/wall/geo/{q}.json",
                             f"/view?grid={q}", f"/{q}", f"/login?next={q}"):
                    r = browser.get(path)
                    assert r.status_code in (200, 302, 400, 404), (path, r.status_code)
        # /explore's URL state (the callbacks parse it with the same check) refuses them too.
        from dashboard.figures.selection import Selection, SelectionError

        for bad in ("C-A1\x00", "\x00", "C-\x00-1", "C\u202eA1", "x" * 65):
            with pytest.raises(SelectionError):
                Selection.parse("case=" + quote(bad.encode("utf-8", "surrogatepass"), safe=""))
        errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info]
        assert errors == [], [rec.getMessage() for rec in errors]
    finally:
        application.server.extensions[appmod.EXTENSION_KEY].close()


def test_an_evaluation_period_spans_at_most_366_days(client: Any, api_city: dict[str, Any]) -> None:
    """Issue 12 point 13: a period over a year is a clear 400 (it would scan every case of a century)."""
    token = api_city["tokens"]["admin"]
    assert _get(client, "/api/v1/evaluation?period=2024-01-01..2024-12-31", token).status_code == 200  # 366 days
    for period in ("2024-01-01..2025-01-01", "1900-01-01..2099-12-31"):
        r = _get(client, f"/api/v1/evaluation?period={period}", token)
        assert r.status_code == 400, period
        assert "period too long" in r.get_json()["detail"] and "366" in r.get_json()["detail"]
