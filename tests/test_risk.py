"""Overdue risk (超期风险, docs/foresight.md): trained on a simulated city's own past, stored in
versions, scoring every open case deterministically, from the same features as it learnt from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

import clikit
from dashboard.figures.riskfeatures import FEATURES, Vocabulary, feature_matrix, open_cases, snapshots
from dashboard.figures.riskmodel import NotEnoughHistory, RiskModel, case_risk, newest, save, train
from dashboard.store.cityimport import import_city
from dashboard.store.models import Case
from dashboard.store.reference import timing_for
from dashboard.store.riskmodels import versions
from feeds.history import import_with_history
from feeds.housekeeping import risk_model
from layouts.explore import risk_text

NOW = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 00:00 local on Dec 1
pytestmark = pytest.mark.slow


@pytest.fixture
def risk_city(settings, sessions, demo_city_dir):  # type: ignore[no-untyped-def]
    """The demo city with 45 days of history up to NOW (seed 99, not the development seed)."""
    import_with_history(settings, sessions, demo_city_dir, NOW, days=45, daily_cases=250, seed=99)
    with sessions() as s:
        return timing_for(settings, s)


def test_a_model_trained_on_the_city_beats_the_baseline_is_stored_and_scores_deterministically(
        settings, sessions, risk_city) -> None:  # type: ignore[no-untyped-def]
    timing = risk_city
    with sessions() as s:
        trained = train(s, timing, NOW, days=30)
        f = trained.figures
        # later cases it never saw, each counted once: better than "unit × 小类 historical rate"
        assert f.test_cases > 300 and 0.03 < f.positive_share < 0.4
        assert f.auc > f.baseline_auc + 0.02 and f.auc > 0.85, f
        assert f.brier < f.baseline_brier, f
        # calibrated: the riskiest tenth is far riskier than the safest, and near what it predicts
        top, bottom = f.deciles[-1], f.deciles[0]
        assert top["observed"] > 0.3 > bottom["observed"] and abs(top["predicted"] - top["observed"]) < 0.2
        first = save(s, trained, keep=1, now=NOW)
        second = save(s, trained, keep=1, now=NOW + timedelta(days=1))
        s.commit()
    assert second == first + 1
    with sessions() as s:
        kept = versions(s)
        assert [v.version for v in kept] == [second] and kept[0].auc == pytest.approx(f.auc)
        assert kept[0].figures["deciles"] == f.deciles and kept[0].n_cases == f.fit_cases
        loaded = newest(s)
        assert loaded is not None and loaded[0] == second
        frame = open_cases(s, NOW)
        assert len(frame) > 50
        p1 = trained.model.score(frame, timing)
        p2 = loaded[1].score(open_cases(s, NOW), timing)
        # the same cases, the same instant: the same risks, from the stored model as from the trained one
        assert np.array_equal(p1, p2) and ((p1 >= 0) & (p1 <= 1)).all()
        # a case already overdue is certain; the others are not all alike
        overdue = (frame.at > frame.deadline) & ~frame.paused
        assert (p1[overdue] == 1).all() and np.unique(p1[~overdue]).size > 10
        # the same history and seed train the same model
        again = train(s, timing, NOW, days=30)
        assert np.array_equal(again.model.score(frame, timing), p1)
        reasons = trained.model.reasons(feature_matrix(frame, timing, trained.model.vocabulary)[int(np.argmax(
            np.where(overdue, 0, p1)))])
        assert reasons and all(drop > 0 for _, drop in reasons)
        # /explore's case detail: the newest version's risk of one case, with its reasons
        calm = int(np.flatnonzero(~overdue)[int(np.argmax(p1[~overdue]))])
        risk = case_risk(s, timing, NOW, str(frame.case_id[calm]))
        assert risk is not None and risk.version == second and not risk.overdue
        assert risk.probability == pytest.approx(p1[calm]) and risk.reasons
        assert risk_text(risk).startswith(f"{100 * p1[calm]:.0f}%（主要因素：") and "模型第" in risk_text(risk)
        if overdue.any():
            late = case_risk(s, timing, NOW, str(frame.case_id[int(np.flatnonzero(overdue)[0])]))
            assert late is not None and risk_text(late) == "已超期"


def test_scoring_sees_an_open_case_as_training_saw_it(settings, sessions, risk_city) -> None:  # type: ignore[no-untyped-def]
    """The features of the cases table now equal those rebuilt from the event store at the same instant."""
    timing = risk_city
    step = 97.0
    start = NOW - timedelta(minutes=step * 200)  # NOW is an instant of the snapshot grid
    with sessions() as s:
        past = snapshots(s, timing, start, NOW, NOW, step_minutes=step, unlabelled=True)
        now_rows = open_cases(s, NOW)
        reported = dict(s.execute(select(Case.case_id, Case.reported_at)).all())
    voc = Vocabulary.learn({"unit": now_rows.unit})
    mine = {c: i for i, c in enumerate(now_rows.case_id.tolist())}
    at_now = np.flatnonzero(past.at == np.datetime64(NOW.replace(tzinfo=None), "us"))
    assert at_now.size > 10
    pairs = [(int(i), mine[c]) for i, c in zip(at_now, past.case_id[at_now].tolist(), strict=True)
             if c in mine and reported[c] >= start]
    assert len(pairs) > 10
    a = feature_matrix(past.take(np.array([i for i, _ in pairs])), timing, voc)
    b = feature_matrix(now_rows.take(np.array([j for _, j in pairs])), timing, voc)
    for j, name in enumerate(FEATURES):
        assert np.allclose(a[:, j], b[:, j], equal_nan=True), name


def test_too_short_a_history_is_one_line_and_housekeeping_retrains_when_due(settings, sessions, engine,
                                                                            demo_city_dir) -> None:  # type: ignore[no-untyped-def]
    import_city(demo_city_dir, sessions)
    with sessions() as s, pytest.raises(NotEnoughHistory, match="历史不足"):
        train(s, timing_for(settings, s), NOW, days=30)
    assert "历史不足" in risk_model(settings, engine)
    assert risk_model(settings.model_copy(update={"risk_retrain_days": 0}), engine).startswith("off")
    env = {"GRIDHALL_DATA_DIR": str(settings.data_dir), "GRIDHALL_DATABASE_URL": settings.effective_database_url}
    shown = clikit.run("risk", "show", "--format", "tsv", **env)
    assert shown.returncode == 0 and "0 version(s)" in shown.stderr, shown.stderr
    failed = clikit.run("risk", "train", "--days", "30", **env)
    assert failed.returncode == 1 and "历史不足" in failed.stderr and "Traceback" not in failed.stderr


def test_a_pickled_model_is_checked_on_load() -> None:
    with pytest.raises(TypeError):
        RiskModel.loads(b"\x80\x05N.")  # pickle of None


@pytest.mark.browser
def test_explore_shows_a_case_s_risk_and_its_reasons(browser, settings, engine, sessions, risk_city,  # type: ignore[no-untyped-def]
                                                     tmp_path) -> None:
    from playwright.sync_api import expect

    import app as appmod
    from authkit import make_user, signin_page
    from browserkit import PageWatch, serve, shots_dir

    timing = risk_city
    with sessions() as s:
        trained = train(s, timing, NOW, days=30)
        version = save(s, trained, keep=3, now=NOW)
        s.commit()
        frame = open_cases(s, NOW)
        p = trained.model.score(frame, timing)
    calm = np.flatnonzero(p < 1)
    case_id = str(frame.case_id[calm[int(np.argmax(p[calm]))]])  # the riskiest case not overdue yet
    application = appmod.create_app(settings)
    runtime = application.server.extensions[appmod.EXTENSION_KEY]
    runtime.services.explore.clock = lambda: NOW
    try:
        with serve(application.server) as url:
            for width, height in ((1920, 1080), (3840, 2160)):
                context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1,
                                              locale="zh-CN")
                page = context.new_page()
                watch = PageWatch(page)
                signin_page(page, url, make_user(sessions, "shift_lead"))
                page.goto(f"{url}/explore?case={case_id}")
                detail = page.locator("#explore-detail")
                expect(detail).to_contain_text("超期风险", timeout=20_000)
                expect(detail).to_contain_text(f"{100 * p[calm].max():.0f}%（主要因素：")
                expect(detail).to_contain_text(f"模型第{version}版")
                page.screenshot(path=str(shots_dir(tmp_path) / f"explore-case-risk-{width}x{height}.png"))
                assert watch.errors == [] and watch.dialogs == []
                context.close()
    finally:
        runtime.close()
