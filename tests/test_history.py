"""Years of history (docs/history.md): event-id idempotency through case_event_ids, monthly partitions of
case_events on PostgreSQL (made ahead by one housekeeping owner, pruned by a month's queries), and
``gridhall archive``. Real Redis, real SQLite and PostgreSQL; the housekeeping and archive run as commands."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from citykit import COMMUNITY, build_community, two_by_two
from dashboard.figures.evaluation import ObjectKind, Period, evaluate
from dashboard.rules import classification
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store import archive, history
from dashboard.store.models import ACTIVE_COVERS, FILED_COVERS, RATED_COVERS, Case, CaseEvent, CaseEventId
from dashboard.store.reference import Reference
from dashboard.store.scope import CITY, get_scope
from feeds.contract import CaseEventMessage
from feeds.housekeeping import TASKS
from feeds.ingest import Ingest
from feeds.keys import HOUSEKEEPING_LAST_KEY, HOUSEKEEPING_LOCK_KEY
from feeds.producer import Producer

REPO = Path(__file__).resolve().parent.parent
CST = timezone(timedelta(hours=8))
PG = os.environ.get("GRIDHALL_DATABASE_URL", "").startswith("postgresql")
pg_only = pytest.mark.skipif(not PG, reason="partitions are PostgreSQL's (SQLite keeps one table)")


@pytest.fixture
def history_city(sessions: sessionmaker[Session]) -> Reference:
    """One community of 2×2 grids and one unit, as the feed tests have it."""
    build_community(sessions, two_by_two())
    return Reference.load(sessions, classification.load("gbt47678-2026"))


def _msg(case: str, n: int, type_: EventType, at: datetime, **fields: object) -> CaseEventMessage:
    return CaseEventMessage(event_id=f"{case}-{n}", case_id=case, type=type_, occurred_at=at, **fields)  # type: ignore[arg-type]


def _loop(case: str, t0: datetime, closed: bool = True, rated: datetime | None = None) -> list[CaseEventMessage]:
    out = [
        _msg(case, 1, EventType.REPORTED, t0, source="supervisor", kind="event", class_code="06010",
             grid_code=f"{COMMUNITY}001", description="暴露垃圾"),
        _msg(case, 2, EventType.FILED, t0 + timedelta(minutes=10)),
    ]
    if closed:
        out += [_msg(case, 3, EventType.DISPATCHED, t0 + timedelta(minutes=20), unit_code="U-HW"),
                _msg(case, 4, EventType.HANDLED, t0 + timedelta(minutes=90)),
                _msg(case, 5, EventType.CHECKED_OK, t0 + timedelta(minutes=120)),
                _msg(case, 6, EventType.CLOSED, t0 + timedelta(minutes=130))]
    if rated is not None:
        out.append(_msg(case, 7, EventType.RATED, rated, satisfaction=5))
    return out


def _ingest(settings: Settings, sessions: sessionmaker[Session], redis_client: object, ref: Reference,
            messages: list[CaseEventMessage]) -> Ingest:
    Producer(redis_client, settings).publish_many(messages)  # type: ignore[arg-type]
    ingest = Ingest(settings, sessions, redis_client, ref, consumer="h1", block_ms=10)  # type: ignore[arg-type]
    ingest.ensure_group()
    while ingest.step():
        pass
    return ingest


# -- idempotency: case_event_ids ---------------------------------------------------------------
def test_a_resent_event_id_with_another_time_is_a_duplicate(settings, sessions, redis_client,  # type: ignore[no-untyped-def]
                                                           history_city) -> None:
    """The id decides, not (id, time): a re-send 40 days later (another partition on PostgreSQL) is ignored."""
    t0 = datetime(2026, 10, 20, 9, 0, tzinfo=CST)
    first = _ingest(settings, sessions, redis_client, history_city, _loop("h1", t0))
    assert (first.stats.applied, first.stats.duplicates) == (6, 0)
    again = _msg("h1", 4, EventType.HANDLED, t0 + timedelta(days=40))  # same id, November
    other = _msg("h1", 1, EventType.REPORTED, t0 - timedelta(days=1), source="supervisor", kind="event",
                 class_code="06010", grid_code=f"{COMMUNITY}002")  # same id, another grid, the day before
    later = _ingest(settings, sessions, redis_client, history_city, [again, other])
    assert (later.stats.applied, later.stats.duplicates, later.stats.dead) == (0, 2, 0)
    with sessions() as s:
        stored = dict(s.execute(select(CaseEvent.event_id, CaseEvent.occurred_at)
                                .where(CaseEvent.event_id.in_(["h1-1", "h1-4"]))).all())
        assert stored == {"h1-1": t0.astimezone(UTC), "h1-4": (t0 + timedelta(minutes=90)).astimezone(UTC)}
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == 6
        assert s.scalar(select(func.count()).select_from(CaseEventId)) == 6
        assert s.scalar(select(Case.stage).where(Case.case_id == "h1")) == "closed"


def test_an_impossible_event_leaves_no_id_behind(settings, sessions, redis_client, history_city) -> None:  # type: ignore[no-untyped-def]
    """An event rejected after it was stored (closed before its report) gives its id back: sent again
    (corrected), it is a new event, as before case_event_ids."""
    t0 = datetime(2026, 10, 20, 9, 0, tzinfo=CST)
    early = _msg("h2", 9, EventType.CLOSED, t0 - timedelta(minutes=30))
    ingest = _ingest(settings, sessions, redis_client, history_city, [*_loop("h2", t0, closed=False), early])
    assert ingest.stats.dead == 1
    with sessions() as s:
        assert s.scalar(select(CaseEventId.event_id).where(CaseEventId.event_id == "h2-9")) is None
        assert s.scalar(select(func.count()).select_from(CaseEventId)) == 2


# -- partitions (PostgreSQL) ---------------------------------------------------------------------
@pg_only
def test_partitions_are_made_idempotently_and_take_their_rows_from_the_default(engine: Engine) -> None:
    far = (2031, 5)
    name = history.partition_name(*far)
    at = history.month_start(*far, CST) + timedelta(days=3)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        conn.execute(text("INSERT INTO case_events (event_id, case_id, type, occurred_at, received_at, payload) "
                          "VALUES ('far-1', 'far', 'reported', :at, :at, '{}')"), {"at": at})
        assert conn.execute(text("SELECT tableoid::regclass::text FROM case_events WHERE event_id = 'far-1'")
                            ).scalar() == history.DEFAULT_PARTITION
    now = datetime(2031, 4, 10, tzinfo=UTC)
    with engine.begin() as conn:
        made = history.ensure_partitions(conn, CST, 1, now=now)
    assert name in made
    with engine.begin() as conn:
        assert history.ensure_partitions(conn, CST, 1, now=now) == []  # idempotent
        assert conn.execute(text("SELECT tableoid::regclass::text FROM case_events WHERE event_id = 'far-1'")
                            ).scalar() == name
        bounds = {p.name: (p.lower, p.upper) for p in history.partitions(conn)}
    assert bounds[name] == (datetime(2031, 4, 30, 16, 0), datetime(2031, 5, 31, 16, 0))  # city-time month
    with engine.begin() as conn:  # made with the append-only vacuum settings (a parent refuses them)
        options = conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = :n"), {"n": name}).scalar()
    assert "autovacuum_vacuum_insert_threshold=100000" in options
    with engine.begin() as conn:
        for y, m in ((2031, 4), far):
            conn.execute(text(f"DROP TABLE {history.partition_name(y, m)}"))


@pg_only
def test_a_months_evaluation_reads_only_that_months_partition(settings, engine, sessions, redis_client,  # type: ignore[no-untyped-def]
                                                              history_city) -> None:
    """Every statement evaluate() sends about case_events is pruned to the month's partition (EXPLAIN)."""
    with engine.begin() as conn:
        history.ensure_partitions(conn, settings.tz, 0, now=datetime(2026, 12, 1, tzinfo=UTC),
                                  first=(2026, 8))
    _ingest(settings, sessions, redis_client, history_city,
            _loop("p1", datetime(2026, 9, 10, 9, tzinfo=CST)) + _loop("p2", datetime(2026, 10, 10, 9, tzinfo=CST))
            + _loop("p3", datetime(2026, 11, 10, 9, tzinfo=CST)))
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "case_events" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with sessions() as s:
            for kind in (ObjectKind.SUPERVISOR, ObjectKind.DISPATCHER, ObjectKind.UNIT):
                evaluate(s, CITY, kind, Period.month(2026, 10, settings.tz), now=datetime(2026, 12, 1, tzinfo=UTC))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen, "evaluate() reads case_events"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for statement, parameters in seen:
            cur.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(r[0] for r in cur.fetchall())
            scanned = {w for w in plan.replace("(", " ").split() if w.startswith("case_events_")}
            scanned = {w for w in scanned if history.is_partition_name(w)}
            assert scanned == {"case_events_2026_10"}, plan
    finally:
        raw.close()



@pg_only
def test_a_months_evaluation_reads_cases_from_the_covering_indexes(settings, engine, sessions,  # type: ignore[no-untyped-def]
                                                                   redis_client, history_city) -> None:
    """Every statement evaluate() sends about ``cases`` is bounded by the key of one of the three covering
    indexes (0017) and reads no column that index does not hold, so it can be an index-only scan (on a year
    of history the planner takes it: docs/history.md); and the migration made the indexes the model says."""
    _ingest(settings, sessions, redis_client, history_city,
            _loop("c1", datetime(2026, 9, 28, 9, tzinfo=CST), rated=datetime(2026, 10, 2, 9, tzinfo=CST))
            + _loop("c2", datetime(2026, 10, 10, 9, tzinfo=CST), rated=datetime(2026, 10, 12, 9, tzinfo=CST))
            + _loop("c3", datetime(2026, 10, 20, 9, tzinfo=CST), closed=False))
    covers = {"filed_at": ("ix_cases_filed_at", FILED_COVERS),
              "last_event_at": ("ix_cases_last_event_at", ACTIVE_COVERS),
              "rated_at": ("ix_cases_rated_at", RATED_COVERS)}
    with engine.connect() as conn:
        for key, (name, columns) in covers.items():
            made = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                                     "AND indexname = :n"), {"n": name}).scalar_one()
            assert f"USING btree ({key}) INCLUDE ({', '.join(columns)})" in made, made
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "cases" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with sessions() as s:
            for scope in (CITY, get_scope(s, COMMUNITY)):
                for kind in ObjectKind:
                    evaluate(s, scope, kind, Period.month(2026, 10, settings.tz), now=datetime(2026, 12, 1, tzinfo=UTC))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(seen) == 2 * 16, "evaluate() reads cases"
    used: set[str] = set()
    for statement in seen:
        where = statement[statement.index("WHERE"):]
        keys = [k for k in covers if f"cases.{k} >= " in where]
        assert len(keys) == 1, statement
        read = set(re.findall(r"\bcases\.(\w+)", statement))
        assert read <= {keys[0], *covers[keys[0]][1]}, (read - {keys[0], *covers[keys[0]][1]}, statement)
        used.add(keys[0])
    assert used == set(covers)

# -- housekeeping: one owner -----------------------------------------------------------------------
def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(GRIDHALL_DATA_DIR=str(settings.data_dir), GRIDHALL_REDIS_PREFIX=settings.redis_prefix,
               GRIDHALL_DATABASE_URL=settings.effective_database_url, **extra)
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    return env


@pytest.fixture
def housekeepers(settings: Settings, engine: Engine, redis_client: object) -> Iterator[list[subprocess.Popen[str]]]:
    """Two ``gridhall housekeeping --interval 1`` processes on one database and Redis (stopped afterwards)."""
    procs: list[subprocess.Popen[str]] = []
    env = _env(settings, GRIDHALL_PARTITIONS_AHEAD="7")
    for _ in range(2):
        procs.append(subprocess.Popen([sys.executable, "-m", "cli", "housekeeping", "--interval", "1"], cwd=REPO,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        time.sleep(0.5)
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_two_housekeepers_one_owner_and_the_other_takes_over(settings, engine, redis_client,  # type: ignore[no-untyped-def]
                                                             housekeepers) -> None:
    lock_key = settings.key(HOUSEKEEPING_LOCK_KEY)
    deadline = time.monotonic() + 60
    while redis_client.hget(settings.key(HOUSEKEEPING_LAST_KEY), TASKS[-1].name) is None:  # a whole pass
        assert time.monotonic() < deadline, "no housekeeping pass"
        time.sleep(0.2)
    time.sleep(3)  # several passes of the owner, while the other waits
    owner_pid = int((redis_client.get(lock_key) or "::").split(":")[1])
    by_pid = {p.pid: p for p in housekeepers}
    assert owner_pid in by_pid  # one of the two (whichever started first under the machine's load)
    first = by_pid.pop(owner_pid)
    (second,) = by_pid.values()
    first.send_signal(signal.SIGTERM)  # it releases the lock as it stops
    out_first, _ = first.communicate(timeout=15)
    deadline = time.monotonic() + 20
    while (redis_client.get(lock_key) or "").split(":")[1:2] != [str(second.pid)]:
        assert time.monotonic() < deadline, "the second housekeeper did not take over"
        time.sleep(0.2)
    time.sleep(1.5)
    second.send_signal(signal.SIGTERM)
    out_second, _ = second.communicate(timeout=15)
    assert "pass 2 by" in out_first and "waiting: housekeeping is owned by" in out_second
    before_takeover, _, after = out_second.partition("owner:")
    assert "pass" not in before_takeover  # no pass while the first owned it
    assert "pass 1 by" in after
    assert redis_client.get(lock_key) is None  # released on stop
    if PG:
        with engine.connect() as conn:
            names = {p.name for p in history.partitions(conn)}
        y, m = history.local_month(datetime.now(UTC), settings.tz)
        assert {history.partition_name(*history.add_months(y, m, k)) for k in range(8)} <= names
        assert "made case_events_" in out_first


def _owner_pid(redis_client: object, key: str) -> int | None:
    value = redis_client.get(key)  # type: ignore[attr-defined]
    return int(value.split(":")[1]) if value else None


def test_a_killed_housekeeper_is_taken_over_when_its_lock_lapses(settings, engine, redis_client,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    """kill -9 of the owner while it holds the lock: a second housekeeper, already waiting on it, waits while the
    dead owner's lock lives (at least two thirds of GRIDHALL_HOUSEKEEPING_LOCK_S: renewed every third), takes over
    within 1.1 of it (it retries every tenth), and runs the tasks (docs/history.md).

    The second process is started, and seen waiting, before the kill: what is timed from the kill is the lock's
    lapse and the takeover, not a Python process starting on a busy machine (a loaded CI, two test workers)."""
    lock_s = 8.0
    env = _env(settings, GRIDHALL_HOUSEKEEPING_LOCK_S=str(lock_s))
    lock_key, last_key = settings.key(HOUSEKEEPING_LOCK_KEY), settings.key(HOUSEKEEPING_LAST_KEY)
    args = [sys.executable, "-m", "cli", "housekeeping", "--interval", "1"]
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = subprocess.Popen(args, cwd=REPO, env=env, stdout=logs[0].open("w"), stderr=subprocess.STDOUT)
    second: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while (_owner_pid(redis_client, lock_key) != first.pid
               or redis_client.hget(last_key, "partitions_ahead") is None):
            assert first.poll() is None and time.monotonic() < deadline, logs[0].read_text()
            time.sleep(0.1)
        second = subprocess.Popen(args, cwd=REPO, env=env, stdout=logs[1].open("w"), stderr=subprocess.STDOUT)
        while "waiting: " not in logs[1].read_text():  # up, and finding the lock held by the first
            assert second.poll() is None and time.monotonic() < deadline, logs[1].read_text()
            time.sleep(0.1)
        time.sleep(lock_s / 2)  # passes, and renewals of the lock, under way
        dead_token = redis_client.get(lock_key)
        assert _owner_pid(redis_client, lock_key) == first.pid
        first.send_signal(signal.SIGKILL)  # no release: the lock stays until it lapses
        killed = time.monotonic()
        first.wait(timeout=10)
        assert redis_client.get(lock_key) == dead_token
        while _owner_pid(redis_client, lock_key) != second.pid:
            assert second.poll() is None and time.monotonic() - killed < 3 * lock_s, logs[1].read_text()
            time.sleep(0.05)
        took_over = time.monotonic() - killed
        deadline = time.monotonic() + 30
        while dead_token in (redis_client.hget(last_key, "partitions_ahead") or dead_token):
            assert time.monotonic() < deadline, "the new owner ran no pass"
            time.sleep(0.1)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    out = logs[1].read_text()
    assert 2 / 3 * lock_s - 0.5 <= took_over <= 1.1 * lock_s + 0.5, (took_over, out)
    waiting, _, owning = out.partition("owner:")
    assert f"waiting: housekeeping is owned by {dead_token}" in waiting and "pass" not in waiting
    assert "pass 1 by" in owning and "partitions_ahead" in owning
    assert str(second.pid) in redis_client.hget(last_key, "partitions_ahead")


def test_housekeeping_once_does_nothing_while_another_owns_it(settings, engine, redis_client) -> None:  # type: ignore[no-untyped-def]
    redis_client.set(settings.key(HOUSEKEEPING_LOCK_KEY), "elsewhere:1:abc", px=30_000)
    busy = subprocess.run([sys.executable, "-m", "cli", "housekeeping", "--once"], cwd=REPO, env=_env(settings),
                          capture_output=True, text=True, timeout=120)
    assert busy.returncode == 0, busy.stderr
    assert "owned by elsewhere:1:abc" in busy.stdout and "pass" not in busy.stdout
    redis_client.delete(settings.key(HOUSEKEEPING_LOCK_KEY))
    done = subprocess.run([sys.executable, "-m", "cli", "housekeeping", "--once"], cwd=REPO, env=_env(settings),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pass 1 by" in done.stdout and "partitions_ahead" in done.stdout
    assert redis_client.get(settings.key(HOUSEKEEPING_LOCK_KEY)) is None


# -- archive -------------------------------------------------------------------------------------
@pytest.fixture
def archive_settings(settings: Settings, engine: Engine) -> Iterator[Settings]:
    """Settings with an archive of this test's own (a PostgreSQL schema, or the SQLite file), removed afterwards."""
    own = settings.model_copy(update={"archive_schema": f"arch_{uuid.uuid4().hex[:10]}"})
    path = archive.sqlite_archive_path(own)
    path.unlink(missing_ok=True)
    yield own
    if PG:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{own.archive_schema}" CASCADE'))
    path.unlink(missing_ok=True)


def _archived(settings: Settings, engine: Engine, table: str, column: str) -> list[str]:
    if PG:
        with engine.connect() as conn:
            return sorted(conn.execute(text(f'SELECT {column} FROM "{settings.archive_schema}".{table}')).scalars())
    with sqlite3.connect(archive.sqlite_archive_path(settings)) as db:
        return sorted(r[0] for r in db.execute(f"SELECT {column} FROM {table}"))


def test_archive_moves_closed_cases_with_their_events_and_refuses_their_months(  # type: ignore[no-untyped-def]
        archive_settings, engine, sessions, redis_client, history_city) -> None:
    settings = archive_settings
    aug, sep, oct_ = (datetime(2026, m, d, 9, tzinfo=CST) for m, d in ((8, 10), (9, 5), (10, 20)))
    _ingest(settings, sessions, redis_client, history_city,
            _loop("a-old", aug) + _loop("a-open", aug, closed=False)
            + _loop("a-rated", sep, rated=datetime(2026, 10, 3, 9, tzinfo=CST)) + _loop("a-new", oct_))
    env = _env(settings, GRIDHALL_ARCHIVE_SCHEMA=settings.archive_schema)
    run = subprocess.run([sys.executable, "-m", "cli", "archive", "--before", "2026-10"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()  # piped: TSV, the summary on standard error
    assert lines[0] == "month\tcases\tevents\talerts"
    assert "2026-08\t1\t6\t0" in lines and "2026-09\t0\t0\t0" in lines
    assert "archived 1 case(s) and 6 event(s) closed before 2026-10" in run.stderr
    with sessions() as s:
        live = set(s.scalars(select(Case.case_id)))
        assert live == {"a-open", "a-rated", "a-new"}  # open whatever its age; a call-back after the cutoff
        assert s.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == "a-old")) == 0
        assert s.scalar(select(func.count()).select_from(CaseEventId).where(CaseEventId.event_id.like("a-old-%"))) == 6
    assert _archived(settings, engine, "cases", "case_id") == ["a-old"]
    assert _archived(settings, engine, "case_events", "event_id") == [f"a-old-{n}" for n in range(1, 7)]

    again = subprocess.run([sys.executable, "-m", "cli", "archive", "--before", "2026-10", "--format", "json"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert '"cases": 0' in again.stdout and '"cases": 1' not in again.stdout  # idempotent
    assert _archived(settings, engine, "cases", "case_id") == ["a-old"]

    late = _ingest(settings, sessions, redis_client, history_city, [_loop("a-old", aug)[3]])
    assert (late.stats.applied, late.stats.duplicates) == (0, 1)  # a late copy of an archived event

    now = datetime(2026, 12, 1, tzinfo=UTC)
    with sessions() as s:
        with pytest.raises(archive.PeriodArchived, match="archive --before 2026-10"):
            evaluate(s, CITY, ObjectKind.DISTRICT, Period.month(2026, 9, settings.tz), now=now)
        october = evaluate(s, CITY, ObjectKind.DISTRICT, Period.month(2026, 10, settings.tz), now=now)
    assert october.rows
    report = subprocess.run([sys.executable, "-m", "cli", "report", "--month", "2026-09", "--out",
                             str(settings.data_dir / "r")], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert report.returncode == 1 and "需要归档库" in report.stderr


def test_archive_refuses_a_month_not_begun(archive_settings, engine) -> None:  # type: ignore[no-untyped-def]
    y, m = history.add_months(*history.local_month(datetime.now(UTC), archive_settings.tz), 2)
    run = subprocess.run([sys.executable, "-m", "cli", "archive", "--before", f"{y}-{m:02d}"], cwd=REPO,
                         env=_env(archive_settings), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "after this month" in run.stderr
    bad = subprocess.run([sys.executable, "-m", "cli", "archive", "--before", "2026-13"], cwd=REPO,
                         env=_env(archive_settings), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
