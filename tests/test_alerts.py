"""Alerts for 突发事件 (dashboard/rules/alerts.py, dashboard/store/alerts.py, feeds/ingest.py) against the
real database and Redis: the ingest raises one alert per urgent or safety-critical case (never a
second under redelivery), none for a normal case; city-level classes and cases without a district
go to the city; the ingest loop escalates what nobody acknowledged in time (once, whatever the
number of ingests); who may acknowledge; the control notices; the case's timeline on /explore;
``gridhall alerts``."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import cli
from citykit import Plan, build_plan
from dashboard.figures.casedetail import case_detail
from dashboard.rules import classification
from dashboard.rules.alerts import AlertLevel, AlertReason, AlertRules, AlertStep, escalation_due
from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store.alerts import (
    AlertDenied,
    AlertError,
    acknowledge,
    active_alerts,
    escalate_due,
    list_alerts,
    parse_notice_ref,
)
from dashboard.store.db import transaction
from dashboard.store.models import Alert, Case
from dashboard.store.reference import Reference, timing_for
from dashboard.store.scope import CITY, get_scope
from dashboard.store.users import create_user, get_user
from feeds.contract import CaseEventMessage
from feeds.control import ControlFollower, ControlNotice, ControlPublisher
from feeds.ingest import Ingest
from feeds.keys import CONTROL_STREAM
from feeds.producer import Producer

SCHEME = "gbt47678-2026"
PLAN: Plan = {
    ("990101", "青山区"): {("990101001", "江东街道"): {("990101001001", "江东社区"): 2},
                        ("990101002", "松岗街道"): {("990101002001", "松岗社区"): 1}},
    ("990102", "白石区"): {("990102001", "白石街道"): {("990102001001", "白石社区"): 1}},
}
QS_GRID, SG_GRID, BS_GRID = "990101001001001", "990101002001001", "990102001001001"
NORMAL = ("event", "06001")  # 私搭乱建: not safety-critical
MANHOLE = ("component", "01001")  # 供水井盖: safety-critical in the shipped scheme
GAS = ("component", "01011")  # 燃气井盖: safety-critical, and city-level in these tests
PEOPLE = {  # username → (role, scope)
    "admin": ("admin", None), "city.shift": ("shift_lead", None), "qs.shift": ("shift_lead", "990101"),
    "jd.shift": ("shift_lead", "990101001"), "sg.shift": ("shift_lead", "990101002"),
    "bs.shift": ("shift_lead", "990102"), "qs.leader": ("leader", "990101"), "wall": ("display", None),
}
T0 = utcnow().replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def alert_city(sessions: sessionmaker[Session], fresh_scope_cache: None) -> Reference:
    """Two districts (青山区 with streets 江东 and 松岗, 白石区), a user of every role; the ingest's reference."""
    with transaction(sessions) as s:
        build_plan(s, PLAN)
        for name, (role, scope) in PEOPLE.items():
            create_user(s, name, role, scope=scope)
    return Reference.load(sessions, classification.load(SCHEME))


@pytest.fixture
def alert_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"alert_city_classes": [GAS[1]], "alert_escalate_s": 300})


def report(case: str, grid: str | None, cls: tuple[str, str] = NORMAL, urgency: str = "normal",
           minutes: int = 0, **fields: Any) -> CaseEventMessage:
    where: dict[str, Any] = {"grid_code": grid} if grid else {"lon": 100.0, "lat": 30.0}  # outside: 未定位
    return CaseEventMessage(event_id=f"{case}-r", case_id=case, type=EventType.REPORTED,
                            occurred_at=T0 + timedelta(minutes=minutes), source="supervisor", kind=cls[0],
                            class_code=cls[1], urgency=urgency, number=f"N{case}", **where, **fields)


def later(case: str, n: int, type_: EventType, minutes: int, **fields: Any) -> CaseEventMessage:
    return CaseEventMessage(event_id=f"{case}-{n}", case_id=case, type=type_,
                            occurred_at=T0 + timedelta(minutes=minutes), **fields)


def run_ingest(settings: Settings, sessions: sessionmaker[Session], client: redis.Redis, ref: Reference,
               messages: list[CaseEventMessage], consumer: str = "t1") -> Ingest:
    Producer(client, settings).publish_many(messages)
    ingest = Ingest(settings, sessions, client, ref, consumer=consumer, block_ms=10)
    ingest.ensure_group()
    while ingest.step():
        pass
    return ingest


def alerts_of(sessions: sessionmaker[Session]) -> dict[tuple[str, str], Alert]:
    with sessions() as s:
        rows = list(s.scalars(select(Alert)))
        s.expunge_all()
    return {(a.case_id, a.reason): a for a in rows}


def alert_notices(client: redis.Redis, settings: Settings) -> list[tuple[int, AlertStep]]:
    out = []
    for _, fields in client.xrange(settings.key(CONTROL_STREAM)):
        if fields.get("kind") == "alert":
            parsed = parse_notice_ref(fields["ref"])
            assert parsed is not None, fields
            out.append(parsed)
    return out


def user(s: Session, name: str) -> Any:
    found = get_user(s, name)
    assert found is not None
    return found


# -- the rules ------------------------------------------------------------------------------
def test_rules_reasons_levels_and_escalation() -> None:
    rules = AlertRules.build(classification.load(SCHEME), city_classes=[GAS[1]], escalate_s=60)
    assert rules.reasons("urgent", *NORMAL) == {AlertReason.URGENT}
    assert rules.reasons("normal", *MANHOLE) == {AlertReason.SAFETY}
    assert rules.reasons("urgent", *MANHOLE) == {AlertReason.URGENT, AlertReason.SAFETY}
    assert rules.reasons("normal", *NORMAL) == frozenset()
    assert rules.reasons("normal", "event", None) == frozenset()
    assert rules.level(MANHOLE[1], 7) is AlertLevel.DISTRICT
    assert rules.level(GAS[1], 7) is AlertLevel.CITY
    assert rules.level(MANHOLE[1], None) is AlertLevel.CITY  # no district (未定位): the city
    now = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
    assert escalation_due(AlertLevel.DISTRICT, now - timedelta(seconds=61), now, 60)
    assert not escalation_due(AlertLevel.DISTRICT, now - timedelta(seconds=59), now, 60)
    assert not escalation_due(AlertLevel.DISTRICT, now - timedelta(seconds=61), now, 60, acknowledged=True)
    assert not escalation_due(AlertLevel.CITY, now - timedelta(seconds=61), now, 60)
    assert AlertReason.URGENT.label == "紧急案件" and AlertStep.ACKNOWLEDGED.label == "确认"


# -- raising ---------------------------------------------------------------------------------
def test_urgent_and_safety_cases_raise_one_alert_each_and_redelivery_adds_none(
        alert_settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
        alert_city: Reference) -> None:
    first = [report("u1", QS_GRID, urgency="urgent"), report("s1", BS_GRID, MANHOLE),
             report("n1", SG_GRID), report("b1", QS_GRID, MANHOLE, urgency="urgent")]
    run_ingest(alert_settings, sessions, redis_client, alert_city, first)
    alerts = alerts_of(sessions)
    assert set(alerts) == {("u1", "urgent"), ("s1", "safety"), ("b1", "urgent"), ("b1", "safety")}
    with sessions() as s:
        qs, bs = get_scope(s, "990101"), get_scope(s, "990102")
        grid_id = {c.case_id: c.grid_id for c in s.scalars(select(Case))}
    u1, s1 = alerts[("u1", "urgent")], alerts[("s1", "safety")]
    assert (u1.level, u1.district_id, u1.grid_id) == ("district", qs.region_id, grid_id["u1"])
    assert (s1.level, s1.district_id, s1.grid_id) == ("district", bs.region_id, grid_id["s1"])
    assert all(a.escalated_at is None and a.acknowledged_at is None and a.cleared_at is None for a in alerts.values())
    notices = alert_notices(redis_client, alert_settings)
    assert sorted(notices) == sorted((a.id, AlertStep.RAISED) for a in alerts.values())

    # Redelivery (the same events again, as after a crash before XACK), and the cases moving on:
    # no second row, no second notice.
    again = [*first, later("u1", 2, EventType.VERIFIED, 5), later("s1", 2, EventType.VERIFIED, 5),
             later("u1", 3, EventType.UPDATED, 6, urgency="urgent", description="再次报告")]
    run_ingest(alert_settings, sessions, redis_client, alert_city, again, consumer="t2")
    assert {k: v.id for k, v in alerts_of(sessions).items()} == {k: v.id for k, v in alerts.items()}
    assert len(alert_notices(redis_client, alert_settings)) == len(notices)


def test_a_case_that_becomes_urgent_later_raises_then(
        alert_settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
        alert_city: Reference) -> None:
    run_ingest(alert_settings, sessions, redis_client, alert_city, [report("n2", QS_GRID)])
    assert alerts_of(sessions) == {}
    run_ingest(alert_settings, sessions, redis_client, alert_city,
               [later("n2", 2, EventType.UPDATED, 3, urgency="urgent")])
    assert set(alerts_of(sessions)) == {("n2", "urgent")}


def test_a_case_known_only_once_ended_and_a_case_from_before_alerts_raise_nothing(
        alert_settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
        alert_city: Reference) -> None:
    # Reported urgent and voided in one batch: it ended before anyone could see it.
    run_ingest(alert_settings, sessions, redis_client, alert_city,
               [report("v1", QS_GRID, urgency="urgent"), later("v1", 2, EventType.VOIDED, 1)])
    # A case that was urgent before alerts existed (its row written without the ingest's rules):
    # events for it raise nothing — no backfill.
    with transaction(sessions) as s:
        s.add(Case(case_id="old1", number="Nold1", stage="reported", kind="event", class_code=NORMAL[1],
                   urgency="urgent", reported_at=T0, max_key=""))
    run_ingest(alert_settings, sessions, redis_client, alert_city,
               [later("old1", 2, EventType.UPDATED, 2, description="补充")])
    assert alerts_of(sessions) == {}


def test_city_level_classes_and_unlocated_cases_go_to_the_city_hall(
        alert_settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
        alert_city: Reference) -> None:
    run_ingest(alert_settings, sessions, redis_client, alert_city,
               [report("g1", QS_GRID, GAS), report("x1", None, urgency="urgent"), report("d1", QS_GRID, MANHOLE),
                report("w1", BS_GRID, urgency="urgent")])
    alerts = alerts_of(sessions)
    with sessions() as s:
        qs = get_scope(s, "990101")
        now = utcnow()
        assert (alerts[("g1", "safety")].level, alerts[("g1", "safety")].district_id) == ("city", qs.region_id)
        assert (alerts[("x1", "urgent")].level, alerts[("x1", "urgent")].district_id) == ("city", None)
        city = active_alerts(s, CITY, now)
        assert {a.case_id for a in city} == {"g1", "x1"}  # city-level at once; district ones not yet
        district = active_alerts(s, qs, now, classification=alert_city.classification)
        assert {a.case_id for a in district} == {"g1", "d1"}  # its own ground, city-level ones too
        d1 = next(a for a in district if a.case_id == "d1")
        assert (d1.number, d1.minor_name, d1.grid_code, d1.street, d1.community, d1.district) == (
            "Nd1", "供水井盖", QS_GRID, "江东街道", "江东社区", "青山区")
        assert (d1.reason_label, d1.escalated, d1.level) == ("安全隐患类", False, AlertLevel.DISTRICT)
        assert {a.case_id for a in active_alerts(s, get_scope(s, "990102"), now)} == {"w1"}
        # A street's wall: only the alerts whose grid lies in the street.
        assert {a.case_id for a in active_alerts(s, get_scope(s, "990101001"), now)} == {"g1", "d1"}
        assert active_alerts(s, get_scope(s, "990101002"), now) == []


# -- escalation ------------------------------------------------------------------------------
def test_the_ingest_loop_escalates_what_nobody_acknowledged_in_time(
        alert_settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
        alert_city: Reference) -> None:
    quick = alert_settings.model_copy(update={"alert_escalate_s": 1})
    ingest = run_ingest(quick, sessions, redis_client, alert_city,
                        [report("e1", QS_GRID, urgency="urgent"), report("e2", BS_GRID, urgency="urgent"),
                         report("e3", QS_GRID, GAS)])
    ids = {k[0]: v.id for k, v in alerts_of(sessions).items()}
    with transaction(sessions) as s:
        assert acknowledge(s, ids["e2"], user(s, "bs.shift"), utcnow()).done_now
    assert ingest.escalate() == []  # not yet due
    time.sleep(1.1)
    other = Ingest(quick, sessions, redis_client, alert_city, consumer="t2", block_ms=10)
    ingest._last_escalation = 0.0  # due now: the next step escalates
    ingest.step()
    assert other.escalate() == []  # a second ingest finds nothing left to do
    alerts = {k[0]: v for k, v in alerts_of(sessions).items()}
    assert alerts["e1"].escalated_at is not None
    assert alerts["e2"].escalated_at is None  # acknowledged in time
    assert alerts["e3"].escalated_at is None  # city-level: at the city already
    assert [n for n in alert_notices(redis_client, quick) if n[1] is AlertStep.ESCALATED] == [
        (ids["e1"], AlertStep.ESCALATED)]
    with sessions() as s:
        city = active_alerts(s, CITY, utcnow())
        assert {(a.case_id, a.escalated) for a in city} == {("e1", True), ("e3", False)}
        assert {a.case_id for a in active_alerts(s, get_scope(s, "990101"), utcnow())} == {"e1", "e3"}
    with transaction(sessions) as s:  # acknowledged after escalation: the city's wall drops it too
        acknowledge(s, ids["e1"], user(s, "qs.shift"), utcnow())
    with sessions() as s:
        assert {a.case_id for a in active_alerts(s, CITY, utcnow())} == {"e3"}


def test_escalation_is_one_update_whatever_races_it(
        alert_settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
        alert_city: Reference) -> None:
    run_ingest(alert_settings, sessions, redis_client, alert_city, [report("r1", QS_GRID, urgency="urgent")])
    rules = AlertRules.from_settings(alert_settings, alert_city.classification)
    later_now = utcnow() + timedelta(seconds=alert_settings.alert_escalate_s + 1)
    with transaction(sessions) as s:
        assert escalate_due(s, rules, utcnow()) == []
        first = escalate_due(s, rules, later_now)
        assert len(first) == 1
        assert escalate_due(s, rules, later_now + timedelta(minutes=5)) == []  # set once


def test_the_escalation_update_agrees_with_the_rule(
        alert_settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
        alert_city: Reference) -> None:
    """escalate_due's SQL against the pure rule (escalation_due), alert by alert, over every state."""
    run_ingest(alert_settings, sessions, redis_client, alert_city,
               [report(f"q{i}", QS_GRID if i % 3 else BS_GRID, GAS if i % 4 == 0 else NORMAL, urgency="urgent")
                for i in range(12)])
    now = utcnow()
    with transaction(sessions) as s:
        for i, a in enumerate(s.scalars(select(Alert).order_by(Alert.id))):
            a.raised_at = now - timedelta(seconds=(290, 310, 600)[i % 3])
            if i % 5 == 1:
                a.acknowledged_at = now
            if i % 7 == 2:
                a.cleared_at = now
            if i == 5:
                a.escalated_at = now - timedelta(seconds=1)
    with sessions() as s:
        expected = {a.id for a in s.scalars(select(Alert)) if escalation_due(
            a.level, a.raised_at, now, alert_settings.alert_escalate_s, acknowledged=a.acknowledged_at is not None,
            escalated=a.escalated_at is not None, cleared=a.cleared_at is not None)}
    assert expected and len(expected) < 12  # the mix has both
    rules = AlertRules.from_settings(alert_settings, alert_city.classification)
    with transaction(sessions) as s:
        assert set(escalate_due(s, rules, now)) == expected


# -- acknowledging ----------------------------------------------------------------------------
def test_who_may_acknowledge(alert_settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
                             alert_city: Reference) -> None:
    run_ingest(alert_settings, sessions, redis_client, alert_city,
               [report("p1", QS_GRID, urgency="urgent"), report("p2", QS_GRID, GAS)])
    ids = {k[0]: v.id for k, v in alerts_of(sessions).items()}

    def ack(who: str, case: str) -> Any:
        with transaction(sessions) as s:
            return acknowledge(s, ids[case], user(s, who), utcnow())

    for who in ("qs.leader", "wall", "bs.shift", "sg.shift"):  # leaders, displays, other ground
        with pytest.raises(AlertDenied):
            ack(who, "p1")
    for who in ("qs.shift", "jd.shift"):  # a city-level alert is the city hall's
        with pytest.raises(AlertDenied, match="辖区"):
            ack(who, "p2")
    done = ack("jd.shift", "p1")  # the street's shift lead: the case lies in 江东街道
    assert (done.done_now, done.by, done.scope_level) == (True, "jd.shift", "street")
    again = ack("admin", "p1")  # already done: nothing changes, the answer says who did it
    assert (again.done_now, again.by, again.at) == (False, "jd.shift", done.at)
    assert ack("city.shift", "p2").scope_level == "city"
    with pytest.raises(AlertError, match="no alert 999999"):
        _ack_unknown(sessions)
    stored = alerts_of(sessions)
    with sessions() as s:
        assert stored[("p1", "urgent")].acknowledged_by == user(s, "jd.shift").id


def _ack_unknown(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        acknowledge(s, 999999, user(s, "admin"), utcnow())


# -- notices -----------------------------------------------------------------------------------
@pytest.fixture
def alert_follower(settings: Settings, redis_client: redis.Redis) -> Iterator[queue.Queue[ControlNotice]]:
    inbox: queue.Queue[ControlNotice] = queue.Queue()
    follower = ControlFollower(settings, redis_client, inbox.put)
    follower.start()
    yield inbox
    follower.stop()


def test_every_step_reaches_a_web_worker_within_a_second(
        settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis, alert_city: Reference,
        alert_follower: queue.Queue[ControlNotice]) -> None:
    quick = settings.model_copy(update={"alert_escalate_s": 1})
    started = time.monotonic()
    ingest = run_ingest(quick, sessions, redis_client, alert_city,
                        [report("k1", QS_GRID, urgency="urgent"), report("k2", QS_GRID, urgency="urgent")])
    raised = [alert_follower.get(timeout=1.0), alert_follower.get(timeout=1.0)]
    assert time.monotonic() - started < 1.5
    ids = sorted(parse_notice_ref(n.ref)[0] for n in raised)  # type: ignore[index]
    assert {(n.kind, parse_notice_ref(n.ref)[1]) for n in raised} == {("alert", AlertStep.RAISED)}  # type: ignore[index]

    sent = time.monotonic()
    done = ControlPublisher(redis_client, settings).commit(
        sessions, lambda s: acknowledge(s, ids[0], user(s, "qs.shift"), utcnow()))
    assert done.sent and done.notices == [("alert", f"{ids[0]}:acknowledged")]
    notice = alert_follower.get(timeout=1.0)
    assert notice.ref == f"{ids[0]}:acknowledged" and time.monotonic() - sent < 1.0

    time.sleep(1.1)
    ingest._last_escalation = 0.0
    ingest.step()
    assert alert_follower.get(timeout=1.0).ref == f"{ids[1]}:escalated"

    run_ingest(quick, sessions, redis_client, alert_city, [later("k2", 2, EventType.VOIDED, 9)])
    assert alert_follower.get(timeout=1.0).ref == f"{ids[1]}:cleared"
    with sessions() as s:
        assert active_alerts(s, CITY, utcnow()) == []
        assert [r.state for r in list_alerts(s, CITY, utcnow(), include_done=True)] == ["cleared", "acknowledged"]


# -- the case's timeline ---------------------------------------------------------------------------
def test_the_case_timeline_on_explore_shows_the_alert_steps(
        alert_settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
        alert_city: Reference) -> None:
    from dashboard.figures import selection
    from layouts.explore import render_detail

    run_ingest(alert_settings, sessions, redis_client, alert_city, [report("t1", QS_GRID, MANHOLE, urgency="urgent")])
    alerts = alerts_of(sessions)
    rules = AlertRules.from_settings(alert_settings, alert_city.classification)
    with transaction(sessions) as s:
        escalate_due(s, rules, utcnow() + timedelta(seconds=alert_settings.alert_escalate_s + 1))
        acknowledge(s, alerts[("t1", "urgent")].id, user(s, "qs.shift"), utcnow() + timedelta(seconds=400))
    with sessions() as s:
        timing = timing_for(alert_settings, s)
        detail = case_detail(s, get_scope(s, "990101"), timing, utcnow(), "t1")
        assert detail is not None
        steps = [(e.label, e.reason_label, e.actor) for e in detail.alerts]
        assert sorted(steps) == sorted([("预警", "紧急案件", None), ("预警", "安全隐患类", None),
                                        ("升级", "紧急案件", None), ("升级", "安全隐患类", None),
                                        ("确认", "紧急案件", "qs.shift")])
        assert [e.at for e in detail.alerts] == sorted(e.at for e in detail.alerts)
        assert case_detail(s, get_scope(s, "990102"), timing, utcnow(), "t1") is None  # not 白石's
    text = json.dumps([c.to_plotly_json() for c in render_detail(detail, selection.Selection(), alert_settings.tz)],
                      default=lambda o: o.to_plotly_json() if hasattr(o, "to_plotly_json") else str(o),
                      ensure_ascii=False)
    for label in ("预警", "升级", "确认", "确认人：qs.shift", "安全隐患类 · 区级"):
        assert label in text


# -- the command line --------------------------------------------------------------------------------
@pytest.fixture
def alerts_cli(settings: Settings, engine: Any):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"GRIDHALL_DATABASE_URL": settings.effective_database_url, "GRIDHALL_DATA_DIR": str(settings.data_dir),
           "COLUMNS": "200", "GRIDHALL_REDIS_PREFIX": settings.redis_prefix, "GRIDHALL_REDIS_URL": settings.redis_url}

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli.app, list(args), env=env)

    return invoke


def test_gridhall_alerts_list_and_ack(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
                                      alert_city: Reference, alerts_cli: Any) -> None:
    run_ingest(settings, sessions, redis_client, alert_city,
               [report("c1", QS_GRID, urgency="urgent"), report("c2", None, MANHOLE)])
    ids = {k[0]: v.id for k, v in alerts_of(sessions).items()}
    out = alerts_cli("alerts", "list", "--format", "json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [(r["id"], r["state"], r["reason"], r["level"], r["case"]) for r in rows] == [
        (ids["c2"], "raised", "safety", "city", "Nc2")]  # the city hall: city-level only, nothing escalated
    out = alerts_cli("alerts", "list", "--scope", "990101", "--format", "tsv")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["id", "state", "reason"] and len(lines) == 2 and "Nc1" in lines[1]

    denied = alerts_cli("alerts", "ack", str(ids["c1"]), "--as", "qs.leader")
    assert denied.exit_code == 1 and "只有值班长和管理员可以确认预警" in denied.stderr
    done = alerts_cli("alerts", "ack", str(ids["c1"]), "--as", "qs.shift")
    assert done.exit_code == 0 and f"acknowledged alert {ids['c1']} as qs.shift" in done.stdout
    again = alerts_cli("alerts", "ack", str(ids["c1"]), "--as", "admin")
    assert again.exit_code == 0 and "acknowledged already by qs.shift" in again.stdout
    assert (ids["c1"], AlertStep.ACKNOWLEDGED) in alert_notices(redis_client, settings)
    rows = json.loads(alerts_cli("alerts", "list", "--all", "--scope", "990101", "--format", "json").stdout)
    assert [(r["case"], r["state"], r["acknowledged_by"]) for r in rows] == [("Nc1", "acknowledged", "qs.shift")]
    assert alerts_cli("alerts", "list", "--scope", "123456").exit_code == 1


def test_deleting_a_case_deletes_its_alerts(sessions: sessionmaker[Session], alert_city: Reference,
                                           alert_settings: Settings, redis_client: redis.Redis) -> None:
    """ON DELETE CASCADE: tests (feedkit.clear_cases) and a city's clean-up empty the case tables."""
    run_ingest(alert_settings, sessions, redis_client, alert_city, [report("z1", QS_GRID, urgency="urgent")])
    assert set(alerts_of(sessions)) == {("z1", "urgent")}
    with transaction(sessions) as s:
        s.execute(delete(Case))
    assert alerts_of(sessions) == {}
