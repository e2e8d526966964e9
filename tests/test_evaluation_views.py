"""The same 综合考评 everywhere: the JSON API, the wall's ranking panel and the monthly report
give the figures of ``dashboard.figures.evaluation.evaluate`` for the same scope and period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flask
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api import v1
from callbacks.wall import WallService
from dashboard.figures.evaluation import ObjectKind, Period, evaluate
from dashboard.output.report import build_report
from dashboard.rules.evalspec import weights_from_settings
from dashboard.settings import Settings
from dashboard.store import reference
from dashboard.store.cityname import city_name
from dashboard.store.scope import CITY, get_scope
from dashboard.store.users import create_user, issue_token
from layouts.kit.ranking import ranking_rows

NOW = datetime(2026, 10, 20, 4, 0, tzinfo=UTC)  # September is over: figures are final


def _api(sessions: sessionmaker[Session], settings: Settings, scope: str | None) -> Any:
    app = flask.Flask("evaluation-views")
    app.register_blueprint(v1.create_blueprint(
        sessions, settings, lambda s: reference.timing_for(settings, s), clock=lambda: NOW))
    with sessions() as s:
        user = create_user(s, f"ev.{scope or 'city'}", "leader", scope=scope)
        token = issue_token(s, user)[1]
        s.commit()
    client = app.test_client()
    return lambda path: client.get(path, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("scope_code", [None, "990101"])
def test_api_wall_panel_and_report_agree(september_city: sessionmaker[Session], settings: Settings,
                                         redis_client: Any, scope_code: str | None) -> None:
    sessions = september_city  # the worked example's September (evaluationkit)
    period = Period.parse("2026-09", settings.tz)
    weights = weights_from_settings(settings)
    get = _api(sessions, settings, scope_code)
    with sessions() as s:
        scope = CITY if scope_code is None else get_scope(s, scope_code)
        report = build_report(s, scope, period, weights, city_name=city_name(settings, s), tz=settings.tz, now=NOW)
        kinds = [ObjectKind.DISTRICT, ObjectKind.STREET, ObjectKind.UNIT] if scope_code is None \
            else [ObjectKind.STREET, ObjectKind.UNIT]
        for kind in kinds:
            truth = evaluate(s, scope, kind, period, weights, now=NOW)
            assert truth.rows, kind
            api = get(f"/api/v1/evaluation?kind={kind.value}&period=2026-09").get_json()
            from_report = report.evaluation(kind)
            assert from_report is not None
            for row in truth.rows:
                a = next(x for x in api["rows"] if x["code"] == row.code)
                r = from_report.row(row.code)
                assert r is not None
                assert (a["composite"], a["grade"], a["rank"], a["sample_ok"]) == \
                    (r.composite, r.grade, r.rank, r.sample_ok) == (row.composite, row.grade, row.rank, row.sample_ok)
                assert a["indicators"] == dict(r.indicators) == dict(row.indicators)
            assert [x["code"] for x in api["rows"]] == [r.code for r in from_report.rows] == \
                [r.code for r in truth.rows]

    if scope_code is not None:
        return
    # The wall is city-wide: its panel shows districts and units, formatted from the same rows.
    wall = WallService(settings, sessions, redis_client)
    label, regions, units = wall.rankings("2026-09", NOW)
    assert label.startswith("2026年9月")
    with sessions() as s:
        for shown, kind in ((regions, ObjectKind.DISTRICT), (units, ObjectKind.UNIT)):
            truth = evaluate(s, CITY, kind, period, weights, now=NOW)
            assert shown == ranking_rows(truth)
            for row, cells in zip(truth.rows, shown, strict=False):
                assert cells["id"] == row.code and cells["name"] == row.name
                assert cells["composite"] == ("—" if row.composite is None else f"{row.composite:.2f}")
                rate = "close_rate" if kind is ObjectKind.DISTRICT else "on_time_handle_rate"
                value = row.indicators[rate]
                assert cells[rate] == ("—" if value is None else f"{100 * value:.1f}%")
