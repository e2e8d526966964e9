"""The leaders' read-only view (/view): figures, scope (属地), tampering, no write controls,
综合考评, and the page in Chromium at desktop and phone widths.

A two-district city (青山区 990101, 白石区 990102; tests/apicitykit.py's, in its view variant)
with open, overdue, due-soon and closed cases in both, and cases filed and closed earlier in the
month (综合考评: 江东街道 and 松岗街道 are ranked, 白石区 has too few cases: 样本不足). A district
leader of 青山区 must see only 青山区 — KPIs, grid codes and geometry, units, overdue cases —
whatever the browser sends; a city leader sees both.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from apicitykit import NOW, VIEW_PLAN, add_cases, add_districts, count_of, district_cases
from authkit import make_user, signin_client, signin_page
from browserkit import PageWatch, shots_dir
from callbacks import view as viewcb
from citykit import add_case
from dashboard.figures import readapi, scopemap
from dashboard.figures.evaluation import ObjectKind, Period, evaluate
from dashboard.rules.evalspec import weights_from_settings
from dashboard.settings import Settings
from dashboard.store import reference
from dashboard.store import scope as scopes
from dashboard.store.db import transaction
from dashboard.store.models import Case, Grid, Region
from layouts import view as viewpage

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'

# Strings of the other district that must never reach a 青山区 leader.
OTHER = ("990102", "白石", "U-BS", "C-B1", "C-B2", "C-B3", "NB1", "NB2", "NB3")
OPEN = ["reported", "verified", "filed", "dispatched", "returned", "handled", "checked", "suspended"]


pytestmark = pytest.mark.usefixtures("fresh_scope_cache")


@pytest.fixture
def view_city(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """apicitykit's city in its view variant (VIEW_PLAN, C-A6), November's closed cases, two leaders."""
    out: dict[str, Any] = {}
    with transaction(sessions) as s:
        out["grids"], units = add_districts(s, VIEW_PLAN)
        gids = out["grids"]
        a1, a2, a4 = gids["990101001001001"], gids["990101001001002"], gids["990101002001001"]
        b1 = gids["990102001001001"]
        qs, bs = units["U-QS"], units["U-BS"]
        add_cases(s, gids, units, xss=XSS, second_street=True, b1_description="白石路护栏损坏")

        def case(cid: str, grid_id: int | None, stage: str, **kw: Any) -> None:
            add_case(s, NOW, cid, grid_id, stage, **kw)

        # 综合考评 of November: filed and closed days ago (not today's figures), dispatched to the
        # district's unit. 江东 12 on time (+ C-A2 filed, open), 松岗 11 with 3 handled late and
        # reworked, 白石 4 (样本不足).
        def month_case(cid: str, grid_id: int, unit_id: int, days: int, late: bool) -> None:
            filed = NOW - timedelta(days=days, hours=2)
            case(cid, grid_id, "closed", unit_id=unit_id, reported_at=filed - timedelta(hours=1), filed_at=filed,
                 dispatched_at=filed + timedelta(minutes=20), handled_at=filed + timedelta(hours=3),
                 closed_at=filed + timedelta(hours=5), on_time_dispatch=True, on_time_handle=not late,
                 on_time_check=True, on_time_close=True, rework_count=int(late))

        for i in range(12):
            month_case(f"C-Q{i:02d}", (a1, a2)[i % 2], qs, 2 + i, False)
        for i in range(11):
            month_case(f"C-S{i:02d}", a4, qs, 2 + i, i < 3)
        for i in range(4):
            month_case(f"C-W{i:02d}", b1, bs, 2 + i, False)
    out["district"] = make_user(sessions, "leader", region="990101", display_name="青山区李领导")
    out["city"] = make_user(sessions, "leader", display_name="市领导")
    return out


def _timing(settings: Settings, session: Session) -> Any:
    return reference.timing_for(settings, session)


def _sql(sessions: sessionmaker[Session], district: str | None) -> dict[str, Any]:
    """The figures computed independently: cases joined up to their district."""
    with sessions() as s:
        comm, st, dist = (select(Region).subquery() for _ in range(3))
        base = district_cases(district)

        def count(*where: Any) -> int:
            return count_of(s, base, *where)

        overdue_cond = (Case.stage.in_(OPEN), Case.deadline_at < NOW,
                        (Case.paused_at.is_(None)) | (Case.paused_at > NOW))
        per_grid: dict[str, int] = {}
        for code, n in s.execute(
                select(Grid.code, func.count()).join(Case, Case.grid_id == Grid.id)
                .join(comm, comm.c.id == Grid.community_id).join(st, st.c.id == comm.c.parent_id)
                .join(dist, dist.c.id == st.c.parent_id)
                .where(Case.stage.in_(OPEN), *([dist.c.code == district] if district else []))
                .group_by(Grid.code)):
            per_grid[code] = int(n)
        return {"open": count(Case.stage.in_(OPEN)), "overdue": count(*overdue_cond), "per_grid": per_grid}


def _scope(sessions: sessionmaker[Session], code: str | None) -> scopes.Scope:
    with sessions() as s:
        return scopes.get_scope(s, code)


# -- figures (service level) --------------------------------------------------------------------
@pytest.mark.parametrize("district", [None, "990101"])
def test_figures_equal_sql_and_readapi(settings: Settings, sessions: sessionmaker[Session], redis_client: Any,
                                       view_city: dict[str, Any], district: str | None) -> None:
    service = viewcb.ViewService(settings, sessions, redis_client, clock=lambda: NOW)
    scope = _scope(sessions, district)
    truth = _sql(sessions, district)
    with sessions() as s:
        fig = service.figures(s, scope, "open")
        timing = _timing(settings, s)
        summary = readapi.summary(s, scope, timing, NOW)
        queue = readapi.overdue(s, scope, timing, NOW, limit=1000)
        board = readapi.units(s, scope, timing, NOW)
        over = service.figures(s, scope, "overdue")
    kpis = dict(zip((k for k, _, _ in viewpage.KPIS), fig.kpis, strict=False))
    assert kpis["open"] == str(truth["open"]) == str(summary.open)
    assert kpis["overdue"] == str(truth["overdue"]) == str(summary.overdue)
    assert kpis["due_soon"] == str(summary.due_soon)
    assert kpis["urgent"] == str(summary.urgent)
    assert kpis["reported"] == str(summary.reported)
    assert kpis["closed"] == str(summary.closed)
    assert fig.values == truth["per_grid"]  # the map: open cases per grid, in scope only
    assert fig.hot[0]["code"] == max(truth["per_grid"], key=lambda c: (truth["per_grid"][c], -int(c)))
    assert [r["id"] for r in fig.overdue] == [c.case_id for c in queue.cases][:viewpage.OVERDUE_ROWS]
    assert fig.overdue_count.endswith(viewpage.count_text(len(queue.cases), queue.overdue_total + queue.due_soon_total))
    assert [u["unit"] for u in fig.units] == [u.name for u in board.units]
    assert sum(a["open"] for a in fig.areas) == sum(truth["per_grid"].values())
    assert sum(over.values.values()) == sum(a["overdue"] for a in over.areas) == \
        sum(1 for c in queue.cases if c.overdue and c.grid_code)
    text = json.dumps([fig.kpis, fig.values, fig.hot, fig.areas, fig.overdue, fig.units], ensure_ascii=False)
    if district:
        assert fig.scope.startswith("青山区")
        assert fig.areas_title == "各街道概况" and {a["code"] for a in fig.areas} == {"990101001", "990101002"}
        assert {r["id"] for r in fig.overdue} == {"C-A1", "C-A2", "C-A6"}
        assert [u["unit"] for u in fig.units] == ["青山区环卫所"]
        for other in OTHER:
            assert other not in text, other
        assert all(code.startswith("990101") for code in fig.values)
    else:
        assert fig.scope == "全市" and {a["code"] for a in fig.areas} == {"990101", "990102"}
        assert {"C-B1", "C-B2", "C-X", "C-A1"} <= {r["id"] for r in fig.overdue}
        assert int(kpis["open"]) == truth["open"] == 9  # the case without a grid counts for the city


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


@pytest.mark.parametrize("district", [None, "990101"])
def test_ranking_equals_evaluate(settings: Settings, sessions: sessionmaker[Session], redis_client: Any,
                                 view_city: dict[str, Any], district: str | None, monkeypatch: Any) -> None:
    """综合考评: the panel's figures are evaluate()'s for the scope's sub-regions and units in
    the current month, judged as of now; computed once a minute per scope."""
    calls: list[tuple[str | None, str]] = []
    real = viewcb.run_evaluation

    def counted(session: Session, scope: scopes.Scope, kind: Any, *a: Any, **k: Any) -> Any:
        calls.append((scope.code, ObjectKind(kind).value))
        return real(session, scope, kind, *a, **k)

    monkeypatch.setattr(viewcb, "run_evaluation", counted)
    service = viewcb.ViewService(settings, sessions, redis_client, clock=lambda: NOW)
    scope = _scope(sessions, district)
    kind = ObjectKind.STREET if district else ObjectKind.DISTRICT
    with sessions() as s:
        fig = service.figures(s, scope, "open")
        again = service.figures(s, scope, "overdue")
        weights = weights_from_settings(settings)
        period = Period.parse("2026-11", settings.tz)
        regions = evaluate(s, scope, kind, period, weights, now=NOW)
        units = evaluate(s, scope, ObjectKind.UNIT, period, weights, now=NOW)
    assert calls == [(district, kind.value), (district, "unit")]  # once a minute, not per refresh
    ranking = fig.ranking
    assert ranking is not None and again.ranking is ranking and ranking.error is None
    assert ranking.kind == kind.value and ranking.note.startswith("2026年11月 · 截至 11-25 11:00")
    for shown, ev, keys in ((ranking.regions, regions, ("filed", "close_rate", "on_time_close_rate")),
                            (ranking.units, units, ("assigned", "on_time_handle_rate", "rework_rate"))):
        assert [r["id"] for r in shown] == [r.code for r in ev.rows]
        for row, want in zip(shown, ev.rows, strict=False):
            assert row["name"] == want.name
            assert row["rank"] == (want.rank if want.rank is not None else "样本不足")
            assert row["composite"] == ("—" if want.composite is None else f"{want.composite:.2f}")
            assert row["grade"] == (want.grade or "—")
            for key in keys:
                value = want.indicators[key]
                assert row[key] == (_pct(value) if key.endswith("_rate") else value), key
    by_name = {r["name"]: r for r in ranking.regions}
    units_by_name = {r["name"]: r for r in ranking.units}
    assert units_by_name["青山区环卫所"]["assigned"] == 23 and units_by_name["青山区环卫所"]["rework_rate"] == "13.0%"
    if district:
        assert set(by_name) == {"江东街道", "松岗街道"} and set(units_by_name) == {"青山区环卫所"}
        assert by_name["江东街道"]["filed"] == 13 and by_name["江东街道"]["close_rate"] == "92.3%"
        assert by_name["松岗街道"]["on_time_close_rate"] == "72.7%"
        assert {by_name["江东街道"]["rank"], by_name["松岗街道"]["rank"]} <= {1, 2}
        text = json.dumps([ranking.view(), _texts(json.loads(json.dumps(viewcb.render_ranking(ranking),
                                                                          default=lambda c: c.to_plotly_json())))],
                          ensure_ascii=False)
        for other in OTHER + ("C-W",):
            assert other not in text, other
    else:
        assert set(by_name) == {"青山区", "白石区"}
        assert by_name["青山区"]["rank"] == 1 and by_name["白石区"]["rank"] == "样本不足"
        assert by_name["白石区"]["grade"] == "—" and units_by_name["白石区市政所"]["rank"] == "样本不足"
        assert [r["name"] for r in ranking.regions] == ["青山区", "白石区"]  # ranked first


def test_ranking_failure_is_said_in_chinese(settings: Settings, sessions: sessionmaker[Session], redis_client: Any,
                                            view_city: dict[str, Any], monkeypatch: Any) -> None:
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(viewcb, "run_evaluation", boom)
    service = viewcb.ViewService(settings, sessions, redis_client, clock=lambda: NOW)
    with sessions() as s:
        fig = service.figures(s, _scope(sessions, "990101"), "open")
    assert fig.kpis and fig.ranking is not None and fig.ranking.error == viewcb.MSG_EVAL_FAILED
    out = json.dumps(viewcb.render_ranking(fig.ranking), default=lambda c: c.to_plotly_json(), ensure_ascii=False)
    assert "综合考评暂时无法计算" in out and "secret" not in out


def test_geometry_is_the_scope_only_and_decodes_exactly(sessions: sessionmaker[Session],
                                                        view_city: dict[str, Any]) -> None:
    with sessions() as s:
        district = scopemap.load_geo(s, _scope(sessions, "990101"))
        whole = scopemap.load_geo(s, _scope(sessions, None))
        stored = {code: json.loads(g) for code, g in s.execute(select(Grid.code, Grid.geometry))}
    assert district.grids == 5 and whole.grids == 7
    assert "990102" not in json.dumps(district.compact)
    assert set(district.parents.values()) == {"990101001", "990101002"}
    decoded = _decode(whole.compact)
    assert set(decoded) == set(stored)
    for code, rings in decoded.items():
        want = stored[code]["coordinates"]
        assert len(rings) == len(want)
        for got, exp in zip(rings, want, strict=False):
            assert len(got) == len(exp)
            for (x, y), (ex, ey) in zip(got, exp, strict=False):
                assert abs(x - ex) <= 0.6e-5 and abs(y - ey) <= 0.6e-5


def _decode(compact: dict[str, Any]) -> dict[str, list[list[tuple[float, float]]]]:
    """What view.js does, in Python (Polygons only, as the test city has)."""
    scale = 10 ** compact["d"]
    ox, oy = compact["o"]
    out = {}
    for prefix, items in compact["g"]:
        for suffix, polys in items:
            rings = []
            for flat in polys[0]:
                x, y, pts = ox, oy, []
                for i in range(0, len(flat), 2):
                    x += flat[i]
                    y += flat[i + 1]
                    pts.append((x / scale, y / scale))
                pts.append(pts[0])
                rings.append(pts)
            out[prefix + suffix] = rings
    return out


# -- over HTTP, signed in -----------------------------------------------------------------------
@pytest.fixture
def view_app(dash_app: Any) -> Any:
    import app as appmod

    dash_app.server.extensions[appmod.EXTENSION_KEY].services.view.clock = lambda: NOW
    return dash_app


def _refresh_body(config: Any = None, state: Any = None, n: Any = 1) -> dict[str, Any]:
    outs = [{"id": o.component_id, "property": o.component_property} for o in viewcb.outputs()]
    return {
        "output": ".." + "...".join(f"{o['id']}.{o['property']}" for o in outs) + "..",
        "outputs": outs,
        "inputs": [{"id": "view-tick", "property": "n_intervals", "value": n}],
        "state": [{"id": "view-config", "property": "data", "value": config},
                  {"id": "view-state", "property": "data", "value": state}],
        "changedPropIds": ["view-tick.n_intervals"],
    }


def _geometry_body(config: Any = None) -> dict[str, Any]:
    return {
        "output": "..view-geo.data...view-map-note.children..",
        "outputs": [{"id": "view-geo", "property": "data"}, {"id": "view-map-note", "property": "children"}],
        "inputs": [{"id": "view-config", "property": "data", "value": config}],
        "changedPropIds": ["view-config.data"],
    }


def _post(client: Any, body: Any) -> Any:
    from authkit import csrf_header

    try:
        headers = csrf_header(client)
    except AssertionError:
        headers = {}
    return client.post("/_dash-update-component", json=body, headers=headers)


def _texts(node: Any) -> list[str]:
    """Every string inside a Dash component tree (as JSON)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [t for n in node for t in _texts(n)]
    if isinstance(node, dict):
        return [t for v in node.values() for t in _texts(v)]
    return []


def _signed_in(view_app: Any, who: Any) -> Any:
    client = view_app.server.test_client()
    signin_client(client, who)
    assert client.get("/view").status_code == 200
    return client


@pytest.mark.parametrize("who", ["district", "city"])
def test_page_figures_for_signed_in_leaders(view_app: Any, view_city: dict[str, Any], sessions: sessionmaker[Session],
                                            settings: Settings, who: str) -> None:
    client = _signed_in(view_app, view_city[who])
    district = "990101" if who == "district" else None
    truth = _sql(sessions, district)
    r = _post(client, _refresh_body({"metric": "open"}))
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    resp = r.get_json()["response"]
    assert resp["view-banner"]["className"] == "gh-banner"
    assert resp["view-kpi-open"]["children"] == str(truth["open"])
    assert resp["view-kpi-overdue"]["children"] == str(truth["overdue"])
    assert resp["view-values"]["data"] == {"values": truth["per_grid"]}
    assert re.fullmatch(r"\d\d:\d\d:\d\d", resp["view-updated"]["children"])
    overdue_text = " ".join(_texts(resp["view-overdue"]["children"]))
    assert XSS in overdue_text  # the description travels as a text prop, not markup
    assert "/explore?case=C-A1" in overdue_text
    geo = _post(client, _geometry_body({"metric": "open"}))
    assert geo.status_code == 200
    codes = set(_decode(geo.get_json()["response"]["view-geo"]["data"]))
    with sessions() as s:
        in_scope = set(s.scalars(select(Grid.code).where(scopes.grid_condition(_scope(sessions, district)))))
    assert codes == in_scope
    if who == "district":
        body = r.get_data(as_text=True) + geo.get_data(as_text=True)
        for other in OTHER:
            assert other not in body, other
        assert resp["view-scope"]["children"].startswith("青山区")
        assert "/explore?region=990101001" in json.dumps(resp["view-areas"]["children"])
        ranking = " ".join(_texts(resp["view-eval-regions"]["children"]))
        assert "江东街道" in ranking and "/explore?region=990101002" in ranking
        assert resp["view-eval-tab"]["children"] == "各街道"
        assert "青山区环卫所" in " ".join(_texts(resp["view-eval-units"]["children"]))
    else:
        ranking = " ".join(_texts(resp["view-eval-regions"]["children"]))
        assert "白石区" in ranking and "样本不足" in ranking and "/explore?region=990101" in ranking
    assert resp["view-eval-note"]["children"].startswith("2026年11月")
    # unchanged figures are not sent again; the time is
    again = _post(client, _refresh_body({"metric": "open"}, resp["view-state"]["data"], 2)).get_json()["response"]
    assert "view-overdue" not in again and "view-kpi-open" not in again and "view-updated" in again


def test_tampered_payloads_never_leave_the_scope(view_app: Any, view_city: dict[str, Any]) -> None:
    client = _signed_in(view_app, view_city["district"])
    garbage: list[Any] = [None, "x", 1, [], {}, {"metric": "../../etc"}, {"metric": ["open"]},
                          {"metric": "overdue", "region": "990102", "scope": None, "grid": "990102001001001"},
                          {"region": "990102"}, "990102"]
    states: list[Any] = [None, "x", [], {"d": "x"}, {"d": {"kpis": 1}}, {"region": "990102"}]
    answers = []
    for config in garbage:
        for state in states:
            answers.append(_post(client, _refresh_body(config, state, n=config if not isinstance(config, dict)
                                                                 else None)))
        answers.append(_post(client, _geometry_body(config)))
    for r in answers:  # garbage values: the callback answers, in scope
        text = r.get_data(as_text=True)
        assert r.status_code in (200, 204), (r.status_code, text[:300])
        assert "Traceback" not in text and 'File "' not in text
        for other in OTHER:
            assert other not in text, (other, text[:300])
    # Payloads that do not match the callbacks (extra inputs, made-up structure) are refused by
    # Dash itself before any callback runs: never data, never a traceback.
    malformed = []
    body = _refresh_body({"metric": "open"})
    body["inputs"].append({"id": "view-region", "property": "value", "value": "990102"})
    malformed.append(body)
    body = _geometry_body({"region": "990102"})
    body["state"] = [{"id": "view-scope", "property": "children", "value": "990102"}]
    malformed.append(body)
    malformed.append({"output": "view-geo.data", "inputs": "x"})
    malformed.append({"output": "..view-geo.data...view-map-note.children..", "outputs": "x",
                      "inputs": [{"id": "view-config"}]})
    for body in malformed:
        r = _post(client, body)
        text = r.get_data(as_text=True)
        # Dash answers its own generic 500 page (CallbackException) or the guard a 403
        assert r.status_code in (400, 403, 500), (r.status_code, text[:300])
        assert "Traceback" not in text and 'File "' not in text
        for other in OTHER:
            assert other not in text, (other, text[:300])


def test_refused_and_failed_refreshes_say_so_in_chinese(view_app: Any, view_city: dict[str, Any],
                                                        sessions: sessionmaker[Session], monkeypatch: Any) -> None:
    import app as appmod

    # a wall screen (display user) is not a leader: the guard refuses, and so would the callback
    anonymous = view_app.server.test_client()
    r = _post(anonymous, _refresh_body({"metric": "open"}))
    assert r.status_code in (401, 403) and "青山" not in r.get_data(as_text=True)
    assert anonymous.get("/view").status_code in (302, 303, 401)

    client = _signed_in(view_app, view_city["district"])
    service = view_app.server.extensions[appmod.EXTENSION_KEY].services.view

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("secret internals at /srv/db")

    monkeypatch.setattr(service, "figures", boom)
    r = _post(client, _refresh_body({"metric": "open"}))
    assert r.status_code == 200
    resp = r.get_json()["response"]
    assert resp["view-banner"]["className"] == "gh-banner is-on"
    banner = " ".join(_texts(resp["view-banner"]["children"]))
    assert "数据已停止更新" in banner and "服务器内部错误" in banner
    assert "secret" not in r.get_data(as_text=True) and "Traceback" not in r.get_data(as_text=True)
    assert resp["view-root"]["className"] == "gh-page view is-stale"
    monkeypatch.setattr(service, "geo", boom)
    geo = _post(client, _geometry_body({"metric": "open"})).get_json()["response"]
    assert geo["view-geo"]["data"] is None and "地图暂时无法载入" in geo["view-map-note"]["children"]


def test_callbacks_refuse_without_a_leader(settings: Settings, sessions: sessionmaker[Session], redis_client: Any,
                                           view_city: dict[str, Any]) -> None:
    """Defence in depth: even if a request reached the callback unguarded, nobody → no data."""
    import flask

    service = viewcb.ViewService(settings, sessions, redis_client, clock=lambda: NOW)
    app = flask.Flask("bare")
    with app.test_request_context("/_dash-update-component"):
        out = service.refresh("open", None)
        geo, note = service.geometry()
    banner = " ".join(_texts(json.loads(json.dumps(out[0], default=lambda c: c.to_plotly_json()))))
    assert "未登录" in banner and out[2] == "gh-page view is-refused"
    assert all(v == "—" for v in out[5:5 + len(viewpage.KPIS)])
    assert geo is None and "未登录" in note


def test_layout_has_no_write_controls(view_app: Any, view_city: dict[str, Any]) -> None:
    client = _signed_in(view_app, view_city["district"])
    layout = client.get("/_dash-layout", headers={"Referer": "http://localhost/view"})
    assert layout.status_code == 200
    tree = layout.get_json()
    found: list[tuple[str, str, dict[str, Any]]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict) and "type" in node and "props" in node:
            found.append((node["namespace"], node["type"], node["props"]))
            walk(node["props"].get("children"))

    walk(tree)
    types = {(ns, t) for ns, t, _ in found}
    assert ("dash_html_components", "Div") in types and any(p.get("id") == "view-root" for _, _, p in found)
    controls = {("dash_core_components", t) for t in ("Input", "Dropdown", "Checklist", "RadioItems", "Slider",
                                                       "RangeSlider", "Textarea", "DatePickerSingle",
                                                       "DatePickerRange", "Upload")}
    controls |= {("dash_html_components", t) for t in ("Button", "Form", "Input", "Select", "Textarea")}
    forms = [p for ns, t, p in found if (ns, t) == ("dash_html_components", "Form")]
    # The only form is 退出 (sign-out, POST /logout), in the user bar.
    assert [f.get("action") for f in forms] == ["/logout"]
    for ns, t, p in found:
        if (ns, t) in controls and (ns, t) != ("dash_html_components", "Form"):
            assert p.get("type") in ("hidden", "submit"), (t, p)  # the sign-out form's token and button
    assert sum(1 for ns, t, _ in found if (ns, t) in controls) == 3
    assert not any(t == "AgGrid" or "Edit" in t for _, t, _ in found)


def test_layout_metric_comes_from_the_url_only_as_one_of_two(settings: Settings) -> None:
    for query, metric in (("metric=overdue", "overdue"), ("metric=<script>", "open"), ("", "open"),
                          ("metric=open&metric=overdue", "open"), ("%ZZ", "open")):
        root = viewpage.layout(settings, query)
        config = next(c for c in root.children if getattr(c, "id", None) == "view-config")
        assert config.data["metric"] == metric


# -- in Chromium ----------------------------------------------------------------------------------
def _start(live_server: Any, who: Any, browser: Any, width: int, height: int) -> tuple[Any, PageWatch]:
    live_server.runtime.services.view.clock = lambda: NOW
    page = browser.new_page(viewport={"width": width, "height": height})
    watch = PageWatch(page)
    signin_page(page, live_server.url, who, next_path="/view")
    if not page.url.endswith("/view"):
        page.goto(live_server.url + "/view")
    return page, watch


@pytest.mark.browser
@pytest.mark.parametrize("width,height", [(1920, 1080), (390, 844)])
def test_view_in_browser_district_leader(browser: Any, live_server: Any, view_city: dict[str, Any],
                                         sessions: sessionmaker[Session], settings: Settings,
                                         tmp_path: Any, width: int, height: int) -> None:
    from playwright.sync_api import expect

    truth = _sql(sessions, "990101")
    page, watch = _start(live_server, view_city["district"], browser, width, height)
    expect(page.locator("#view-kpi-open")).to_have_text(str(truth["open"]), timeout=15_000)
    expect(page.locator("#view-kpi-overdue")).to_have_text(str(truth["overdue"]))
    expect(page.locator("#view-scope")).to_contain_text("青山区")
    expect(page.locator("#view-updated")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(page.locator("html")).to_have_attribute("data-view-grids", "5", timeout=15_000)
    expect(page.locator("html")).to_have_attribute("data-view-painted", str(len(truth["per_grid"])))
    assert page.get_attribute("html", "lang") == "zh-CN"
    expect(page.locator("#view-banner")).to_be_hidden()
    # every panel is there and shows its figures
    for panel in ("#view-areas .view-areas__row", "#view-hot .view-hot__item",
                  "#view-units .view-units__row:not(.view-units__row--head)", "#view-overdue .view-case"):
        expect(page.locator(panel).first).to_be_visible()
    expect(page.locator("#view-overdue .view-case")).to_have_count(3)
    expect(page.locator("#view-overdue-count")).to_contain_text("显示 3 / 共 3")
    expect(page.locator("#view-units")).to_contain_text("青山区环卫所")
    # 综合考评: the streets of 青山区 (linked), then the units — a tab on one screen, below on a phone
    expect(page.locator("#view-eval-regions .view-eval__row:not(.view-eval__row--head)")).to_have_count(2)
    expect(page.locator("#view-eval-regions")).to_contain_text("江东街道")
    expect(page.locator("#view-eval-note")).to_contain_text("2026年11月")
    if width >= 1600:
        expect(page.locator("#view-eval-units")).to_be_hidden()
        page.click("#view-eval-panel a.view-eval__tab[data-tab=units]")
        expect(page.locator("#view-eval-units")).to_be_visible()
        expect(page.locator("#view-eval-regions")).to_be_hidden()
        expect(page.locator("#view-eval-units")).to_contain_text("青山区环卫所")
        assert page.url.endswith("/view")  # a tab changes what is shown, not the address
        page.click("#view-eval-panel a.view-eval__tab[data-tab=regions]")
    else:
        expect(page.locator("#view-eval-units")).to_contain_text("青山区环卫所")
    expect(page.locator("#view-eval-regions")).to_be_visible()
    body = page.inner_text("body")
    for other in OTHER:
        assert other not in body
    assert page.content().count("990102") == 0
    expect(page.locator("#view-mapview .leaflet-control-zoom-in")).to_have_attribute("title", "放大")
    # the drill-down links
    # most overdue first
    assert page.get_attribute("#view-overdue a.view-case__no >> nth=0", "href") == "/explore?case=C-A6"
    hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.getAttribute('href'))")
    assert "/explore?region=990101001" in hrefs and "/explore?region=990101001001001" in hrefs
    # the map: canvas paths drawn, the scope's cells only (bounds fitted)
    page.wait_for_timeout(400)
    for sel in ("#view-mapview", ".view-kpis", "#view-units-panel", "#view-overdue-panel", "#view-areas-panel",
                "#view-hot-panel", "#view-eval-panel"):
        box = page.locator(sel).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 40, sel
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, sel
    # no horizontal scrolling, legible text
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    smallest = page.evaluate("""() => Math.min(...[...document.querySelectorAll('#view-root *')]
        .filter(e => e.offsetParent && e.childNodes.length && [...e.childNodes].some(n => n.nodeType === 3
                && n.textContent.trim()))
        .map(e => parseFloat(getComputedStyle(e).fontSize)))""")
    assert smallest >= 11.5, smallest
    if width < 500:
        page.screenshot(path=str(shots_dir(tmp_path) / f"view-{width}x{height}.png"), full_page=True)
        # one column: the panels are stacked, each as wide as the page
        lefts = {round(page.locator(s).bounding_box()["x"]) for s in
                 ("#view-units-panel", "#view-overdue-panel", "#view-areas-panel", "#view-hot-panel",
                  "#view-eval-panel")}
        assert len(lefts) == 1
    else:
        page.screenshot(path=str(shots_dir(tmp_path) / f"view-{width}x{height}.png"))
    # no write controls in the rendered page either: only the sign-out form
    controls = page.eval_on_selector_all(
        "form, button, input, select, textarea, [contenteditable=true]",
        "els => els.map(e => [e.tagName, e.getAttribute('type'), e.closest('form') && e.closest('form')"
        ".getAttribute('action')])")
    assert controls and all(action == "/logout" for _, _, action in controls), controls
    assert watch.dialogs == [] and watch.errors == [] and watch.failures == [], (watch.errors, watch.failures)
    watch.assert_local_only()
    page.close()


@pytest.mark.browser
def test_view_in_browser_markup_is_text(browser: Any, live_server: Any, view_city: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    page, watch = _start(live_server, view_city["city"], browser, 1366, 768)
    desc = page.locator("#view-overdue .view-case__desc").filter(has_text="<script>")
    expect(desc).to_have_count(1, timeout=15_000)
    assert desc.inner_text() == XSS
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#view-overdue script, #view-overdue img").count() == 0
    # the city leader sees both districts
    expect(page.locator("#view-areas")).to_contain_text("白石区")
    expect(page.locator("html")).to_have_attribute("data-view-grids", "7", timeout=15_000)
    # a metric is a link (a new address), not an input
    page.click("a.view-metric >> text=超期案件")
    page.wait_for_url(re.compile(r"/view\?metric=overdue$"))
    expect(page.locator("#view-map-panel-title, .view-map .gh-panel__title")).to_contain_text("超期案件")
    expect(page.locator("#view-hot .view-hot__item").first).to_be_visible(timeout=15_000)
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert watch.dialogs == [] and watch.errors == [], watch.errors
    watch.assert_local_only()
    page.close()
