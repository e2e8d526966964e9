"""Surge alerts (突增预警): the detector on hand-made counts (dashboard/rules/surges.py), and the store's
evaluation (dashboard/store/surges.py) against the real database: raised once while it lasts, with
an alert the halls acknowledge, ended when quiet."""

from __future__ import annotations

import math
import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callbacks.surges import render_list
from citykit import Plan, add_case, build_plan
from dashboard.rules import classification
from dashboard.rules.alerts import AlertReason, AlertRules
from dashboard.rules.surges import (
    Arrival,
    Baseline,
    PlaceLevel,
    SurgeBook,
    SurgeSettings,
    find_surges,
    surge_text,
    tail,
)
from dashboard.store.alerts import acknowledge, active_alerts
from dashboard.store.db import transaction
from dashboard.store.models import Alert, Grid
from dashboard.store.models import Surge as SurgeRow
from dashboard.store.scope import get_scope
from dashboard.store.surges import SurgeWatch, list_surges
from dashboard.store.users import create_user, get_user
from feeds.behaviour import poisson

TZ = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 2, tzinfo=TZ)  # a Monday, local midnight
GROUP = "小广告"
RATE = 4.0  # cases an hour, 08:00–18:00, in the calm street


def calm(start: datetime, days: int, rng: random.Random, rate: float = RATE, street: str = "S1",
         grids: tuple[str, ...] = ("G1", "G2", "G3", "G4")) -> list[Arrival]:
    """Poisson arrivals of one group in one street: ``rate`` an hour from 08:00 to 18:00, 0.2 at night."""
    out = []
    for h in range(days * 24):
        t = start + timedelta(hours=h)
        lam = rate if 8 <= t.astimezone(TZ).hour < 18 else 0.2
        n = poisson(rng, lam)
        out += [Arrival(t + timedelta(hours=rng.random()), rng.choice(grids), street, GROUP) for _ in range(n)]
    return sorted(out, key=lambda a: a.at)



DEFAULTS = SurgeSettings()


def learnt(history: list[Arrival], settings: SurgeSettings = DEFAULTS) -> Baseline:
    return Baseline.learn(history, MONDAY, MONDAY + timedelta(weeks=4), TZ, settings)


# -- the detector ----------------------------------------------------------------------------
def test_tail_is_poisson_without_overdispersion_and_wider_with_it() -> None:
    # P(X ≥ 3 | Poisson 1) = 1 − e⁻¹(1 + 1 + 1/2)
    assert tail(3, 1.0, math.inf) == pytest.approx(1 - math.exp(-1) * 2.5)
    assert tail(0, 1.0, 2.0) == 1.0
    assert tail(12, 1.0, 2.0) > tail(12, 1.0, 50.0) > tail(12, 1.0, math.inf)  # fewer weeks: wider
    assert 0 < tail(60, 1.0, math.inf) < 1e-40  # far in the tail: still a number, not 0 from 1 − cdf


def test_calm_poisson_weeks_give_no_surge() -> None:
    rng = random.Random(18)
    history = calm(MONDAY, 35, rng)
    base = learnt(history)
    now, end = MONDAY + timedelta(weeks=4), MONDAY + timedelta(days=35)
    found = []
    while now < end:  # a whole calm week, every 5 minutes
        found += find_surges(base, [a for a in history if now - timedelta(hours=1) <= a.at < now], now)
        now += timedelta(minutes=5)
    assert found == []


def test_a_five_fold_hour_is_a_surge_of_the_street_with_its_usual_count() -> None:
    rng = random.Random(18)
    history = calm(MONDAY, 29, rng)
    base = learnt(history)
    start = MONDAY + timedelta(weeks=4, hours=10)  # Monday 10:00 of the fifth week
    extra = [Arrival(start + timedelta(minutes=60 * i / 16), f"G{1 + i % 4}", "S1", GROUP) for i in range(16)]
    recent = sorted([a for a in history if start <= a.at < start + timedelta(hours=1)] + extra, key=lambda a: a.at)
    found = find_surges(base, recent, start + timedelta(hours=1))
    street = [f for f in found if f.level is PlaceLevel.STREET]
    assert len(street) == 1 and street[0].place == "S1" and street[0].group == GROUP
    f = street[0]
    assert f.observed >= 16 and 2.5 < f.expected < 6  # usually about 4 at that hour
    assert f.chance < SurgeSettings().threshold
    assert surge_text(20, 4.04) == "20 件 / 通常 4.0 件" and surge_text(5, 0.01) == "5 件 / 通常 <0.1 件"


def test_the_usual_count_follows_the_hour_of_the_week() -> None:
    base = learnt(calm(MONDAY, 28, random.Random(5)))
    key = (PlaceLevel.STREET, "S1", GROUP)
    day, _ = base.expected(key, MONDAY + timedelta(hours=10), MONDAY + timedelta(hours=11))
    night, _ = base.expected(key, MONDAY + timedelta(hours=3), MONDAY + timedelta(hours=4))
    assert 3 < day < 5 and night < 0.6
    unseen, _ = base.expected((PlaceLevel.STREET, "S9", GROUP), MONDAY, MONDAY + timedelta(hours=1))
    assert 0 < unseen < 0.05  # a place never seen: small, never zero


def test_a_past_surge_is_not_learnt_as_usual() -> None:
    rng = random.Random(7)
    history = calm(MONDAY, 28, rng)
    market = [Arrival(MONDAY + timedelta(days=5 + 7 * w, hours=8, minutes=3 * i), "G1", "S1", GROUP)
              for w in range(4) for i in range(40)]  # every Saturday 08:00–10:00, 40 more cases
    history = sorted(history + market, key=lambda a: a.at)
    key = (PlaceLevel.STREET, "S1", GROUP)
    sat = MONDAY + timedelta(weeks=4, days=5, hours=8)
    learnt_with, _ = learnt(history).expected(key, sat, sat + timedelta(hours=1))
    past = [(key, MONDAY + timedelta(days=5 + 7 * w, hours=8), MONDAY + timedelta(days=5 + 7 * w, hours=10))
            for w in range(4)]
    left_out = Baseline.learn(history, MONDAY, MONDAY + timedelta(weeks=4), TZ, SurgeSettings(), past)
    without, _ = left_out.expected(key, sat, sat + timedelta(hours=1))
    assert learnt_with > 10 and without < 6


def test_a_surge_is_raised_once_while_it_lasts_and_ends_when_quiet() -> None:
    settings = SurgeSettings(quiet_minutes=30)
    rng = random.Random(18)
    history = calm(MONDAY, 28, rng)
    base = learnt(history, settings)
    book = SurgeBook(settings)
    start = MONDAY + timedelta(weeks=4, hours=10)
    burst = [Arrival(start + timedelta(minutes=2 * i), "G1", "S1", GROUP) for i in range(45)]  # 90 min
    raised, ended = [], []
    now = start
    while now < start + timedelta(hours=4):
        new, gone = book.update(now, find_surges(base, [a for a in burst if now - settings.window <= a.at < now], now))
        raised += [(o.first.key, now) for o in new]
        ended += [(o.first.key, now) for o in gone]
        now += timedelta(minutes=5)
    keys = [k for k, _ in raised]
    assert sorted(keys) == [(PlaceLevel.GRID, "G1", GROUP), (PlaceLevel.STREET, "S1", GROUP)]  # once each
    assert all(at <= start + timedelta(minutes=30) for _, at in raised), raised
    assert sorted(k for k, _ in ended) == sorted(keys) and not book.open


# -- the store: housekeeping's evaluation, the alert, its acknowledgement ------------------------
SCHEME = "gbt47678-2026"
PLAN: Plan = {("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 3}}}
ADS = "07001"  # 非法小广告


@pytest.fixture
def surge_city(sessions: sessionmaker[Session], fresh_scope_cache: None) -> list[int]:
    """One street of three grids, four calm weeks of 小广告 (2 an hour by day), a shift lead; the grid ids."""
    rng = random.Random(3)
    now = datetime.now(UTC).replace(microsecond=0)
    with transaction(sessions) as s:
        grids = [g.id for g, _ in build_plan(s, PLAN)]
        create_user(s, "jd.shift", "shift_lead", scope="990101001")
        first = now - timedelta(weeks=4, days=1)
        for i, a in enumerate(calm(first, 29, rng, rate=2.0, street="990101001")):
            if a.at < now - timedelta(hours=2):
                add_case(s, now, f"C-H{i}", rng.choice(grids), "closed", class_code=ADS, reported_at=a.at)
    return grids


def test_housekeeping_evaluation_raises_one_alert_per_surge_and_it_is_acknowledged(
        sessions: sessionmaker[Session], surge_city: list[int]) -> None:
    scheme = classification.load(SCHEME)
    watch = SurgeWatch(SurgeSettings(), scheme, AlertRules.build(scheme), TZ)
    now = datetime.now(UTC).replace(microsecond=0)
    with transaction(sessions) as s:  # calm: nothing
        assert watch.evaluate(s, now - timedelta(minutes=40)).raised == []
        for i in range(25):  # 25 小广告 in the street's first grid within 20 minutes
            add_case(s, now, f"C-S{i}", surge_city[0], "dispatched", class_code=ADS,
                     reported_at=now - timedelta(minutes=20) + timedelta(seconds=45 * i))
    with transaction(sessions) as s:
        first = watch.evaluate(s, now)
    with transaction(sessions) as s:
        again = watch.evaluate(s, now + timedelta(minutes=5))  # still surging: nothing new
    assert {(f.level, f.place) for f in first.raised} == {(PlaceLevel.GRID, "990101001001001"),
                                                         (PlaceLevel.STREET, "990101001")}
    assert again.raised == [] and again.findings == 2
    with sessions() as s:
        alerts = list(s.scalars(select(Alert).where(Alert.reason == AlertReason.SURGE.value)))
        assert len(alerts) == 2 and len({a.case_id for a in alerts}) == 2  # one each, on different cases
        shown = list_surges(s, now - timedelta(hours=1), open_only=True)
        assert [v.place_name for v in shown if v.level is PlaceLevel.STREET] == ["江东街道"]
        assert all(v.text.startswith(f"{v.observed} 件 / 通常 ") for v in shown)
        listed = str(render_list(shown, TZ))  # /explore's 突增预警 section
        assert "江东街道 · 小广告" in listed and "持续中" in listed and " 件 / 通常 " in listed
        wall = active_alerts(s, get_scope(s, "990101001"), now + timedelta(minutes=5))
        assert sorted(a.reason_label for a in wall) == ["突增预警", "突增预警"]
        assert all(a.headline.startswith("突增预警 小广告 ") and " 件 / 通常 " in a.headline for a in wall)
        grid_ids = {a.grid_id for a in alerts}
        assert grid_ids <= set(surge_city) and s.get(Grid, surge_city[0]) is not None
    with transaction(sessions) as s:
        lead = get_user(s, "jd.shift")
        assert lead is not None
        done = acknowledge(s, alerts[0].id, lead, now + timedelta(minutes=6))
        assert done.done_now and done.by == "jd.shift"
        assert not acknowledge(s, alerts[0].id, lead, now + timedelta(minutes=7)).done_now  # once
    # Quiet for an hour: both end; the unacknowledged alert is cleared, the acknowledged one stays so.
    with transaction(sessions) as s:
        late = watch.evaluate(s, now + timedelta(minutes=70))
    assert late.ended == 2
    with sessions() as s:
        rows = {a.id: a for a in s.scalars(select(Alert).where(Alert.reason == AlertReason.SURGE.value))}
        assert rows[alerts[0].id].acknowledged_at is not None and rows[alerts[0].id].cleared_at is None
        assert rows[alerts[1].id].cleared_at is not None
        assert all(r.ended_at is not None for r in s.scalars(select(SurgeRow)))


@pytest.mark.browser
def test_explore_lists_the_surges_in_chromium(browser: Any, live_server: Any, sessions: sessionmaker[Session],
                                              surge_city: list[int], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from authkit import make_user, signin_page
    from browserkit import PageWatch, shots_dir

    scheme = classification.load(SCHEME)
    watch = SurgeWatch(SurgeSettings(), scheme, AlertRules.build(scheme), TZ)
    now = datetime.now(UTC).replace(microsecond=0)
    with transaction(sessions) as s:
        for i in range(25):
            add_case(s, now, f"C-S{i}", surge_city[0], "dispatched", class_code=ADS,
                     reported_at=now - timedelta(minutes=20) + timedelta(seconds=45 * i))
    with transaction(sessions) as s:
        assert len(watch.evaluate(s, now).raised) == 2
    shots = shots_dir(tmp_path)
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=1, locale="zh-CN")
    page = context.new_page()
    seen = PageWatch(page)
    signin_page(page, live_server.url, make_user(sessions, "shift_lead"))
    for scale in (1, 2):  # 2×: a 3840×2160 screen
        page.set_viewport_size({"width": 1920, "height": 1080})
        if scale == 2:
            view = browser.new_context(viewport={"width": 1920, "height": 1080}, device_scale_factor=2,
                                       locale="zh-CN", storage_state=context.storage_state())
            page = view.new_page()
            seen = PageWatch(page)
        page.goto(live_server.url + "/explore")
        rows = page.locator("#explore-surges .explore-surge")
        expect(rows).to_have_count(2, timeout=20_000)
        expect(rows.filter(has_text="江东街道 · 小广告")).to_contain_text(" 件 / 通常 ")
        expect(rows.first).to_contain_text("持续中")
        page.locator("#explore-surges").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"explore-surges-{1920 * scale}x{1080 * scale}.png"))
        assert seen.errors == []
    context.close()


def test_housekeeping_runs_the_surge_task_between_its_passes(settings: Any, engine: Any, redis_client: Any) -> None:
    from feeds.housekeeping import TASKS, Task, run

    assert [t.name for t in TASKS if t.frequent] == ["surge_alerts"]
    calls: list[str] = []

    def task(name: str) -> Task:
        def work(_settings: Any, _engine: Any) -> str:
            calls.append(name)
            return name
        return Task(name, work, name, frequent=name == "often")

    stop = threading.Event()
    timer = threading.Timer(2.6, stop.set)
    timer.start()
    run(settings.model_copy(update={"housekeeping_interval_s": 60}), engine, redis_client, stop,
        report=lambda _line: None, tasks=(task("hourly"), task("often")), frequent_s=0.5)
    timer.join()
    assert calls.count("hourly") == 1  # the pass
    assert 4 <= calls.count("often") <= 7  # the pass, then every half second between passes
