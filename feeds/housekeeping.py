"""The one owner of scheduled work: ``gridhall housekeeping`` (docs/history.md, "Housekeeping").

Any number of hosts may run it; a Redis lock (``SET NX PX``, renewed while held, released with a
compare-and-delete) makes one of them the owner, which runs every task of :data:`TASKS` each
``GRIDHALL_HOUSEKEEPING_INTERVAL_S``. The others wait and take over within the lock's lifetime
when the owner stops or dies. Tasks are idempotent (a pass repeated by a new owner does no harm).

:data:`TASKS` is the one place where scheduled work is registered: partitions ahead and the shift
handovers (a pass also runs just after each shift boundary), the overdue-risk model's retraining. A task
takes the settings and the engine and returns one line saying what it did.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dashboard.rules.clock import utcnow
from feeds.keys import HOUSEKEEPING_LAST_KEY, HOUSEKEEPING_LOCK_KEY

if TYPE_CHECKING:
    import redis
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from dashboard.settings import Settings
    from dashboard.store.surges import SurgeWatch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[Settings, Engine], str]
    doc: str
    frequent: bool = False  # also run between passes, every GRIDHALL_SURGE_STEP_MINUTES (the surge alerts)


def partitions_ahead(settings: Settings, engine: Engine) -> str:
    """PostgreSQL: this month's and the next GRIDHALL_PARTITIONS_AHEAD months' partitions of case_events."""
    from sqlalchemy import text

    from dashboard.store.history import ensure_partitions, is_partitioned

    with engine.begin() as conn:
        if not is_partitioned(conn):
            return "case_events is not partitioned (SQLite, or before 0011): nothing to do"
        # CREATE TABLE … PARTITION OF locks case_events briefly: never queue the ingest behind a long wait.
        conn.execute(text("SET LOCAL lock_timeout = '5s'"))
        made = ensure_partitions(conn, settings.tz, settings.partitions_ahead)
    return f"made {', '.join(made)}" if made else f"all {settings.partitions_ahead} months ahead exist"


HANDOVER_CATCH_UP = timedelta(days=1)  # shifts ended this long ago still get their handover if missing


def shift_handovers(settings: Settings, engine: Engine) -> str:
    """The handover (交接班报告) of every shift ended in the last day that has none yet (docs/handover.md)."""
    from sqlalchemy.orm import Session

    from dashboard.figures.handover import write_handover
    from dashboard.store.cityname import city_name
    from dashboard.store.reference import timing_for

    plan, now = settings.shift_plan, utcnow()
    shift, written, have = plan.last_ended(now), [], 0
    with Session(engine) as session:
        timing = timing_for(settings, session)
        name = city_name(settings, session)
        while shift.end > now - HANDOVER_CATCH_UP:
            _, new = write_handover(session, timing, shift, city_name=name, now=now)
            session.commit()  # each shift on its own: a failure later leaves the earlier ones written
            if new:
                written.append(shift.key)
            else:
                have += 1
            shift = plan.previous(shift)
    return f"wrote {', '.join(written)}" if written else f"all {have} shifts of the last day written"


_SURGE_WATCH: dict[str, SurgeWatch] = {}  # one evaluator per database of this process: its day's baseline


def surge_alerts(settings: Settings, engine: Engine) -> str:
    """Surge alerts (突增预警): evaluate the last windows, raise new surges, end quiet ones (docs/foresight.md)."""

    from dashboard.rules.alerts import AlertRules
    from dashboard.rules.classification import Classification
    from dashboard.store.surges import SurgeWatch
    from feeds.connection import connect, disconnect
    from feeds.control import ControlPublisher

    key = str(engine.url)
    watch = _SURGE_WATCH.get(key)
    if watch is None:
        scheme = Classification.from_settings(settings)
        watch = _SURGE_WATCH[key] = SurgeWatch(settings.surge_settings, scheme,
                                               AlertRules.from_settings(settings, scheme), settings.tz)
    now = utcnow()
    client = connect(settings)
    try:
        done = ControlPublisher(client, settings).commit(_sessions(engine),
                                                         lambda session: watch.evaluate(session, now))
    finally:
        disconnect(client)
    return done.result.summary() + (f" (notice not sent: {done.error})" if done.error else "")


def _sessions(engine: Engine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


def risk_model(settings: Settings, engine: Engine) -> str:
    """Retrain the overdue-risk model when its newest version is older than GRIDHALL_RISK_RETRAIN_DAYS."""
    from sqlalchemy.orm import Session

    from dashboard.figures.riskmodel import NotEnoughHistory, save, train
    from dashboard.store.reference import timing_for
    from dashboard.store.riskmodels import versions

    if settings.risk_retrain_days <= 0:
        return "off (GRIDHALL_RISK_RETRAIN_DAYS=0)"
    now = utcnow()
    with Session(engine) as session:
        known = versions(session)
        if known and now - known[0].trained_at < timedelta(days=settings.risk_retrain_days):
            return f"version {known[0].version} of {known[0].trained_at:%Y-%m-%d %H:%M} is recent enough"
        timing = timing_for(settings, session)
        try:
            trained = train(session, timing, now, days=settings.risk_train_days)
        except NotEnoughHistory as exc:
            return str(exc)
        version = save(session, trained, keep=settings.risk_keep_versions, now=now)
        session.commit()
    f = trained.figures
    return f"trained version {version}: AUC {f.auc:.3f} (baseline {f.baseline_auc:.3f}), Brier {f.brier:.3f}"


def replay_snapshots(settings: Settings, engine: Engine) -> str:
    """The replay snapshots (回放) due since the last one, and the old ones thinned (docs/foresight.md)."""
    from dashboard.figures.timetravel import write_snapshots

    return write_snapshots(settings, engine, utcnow())


def until_next_shift(settings: Settings, now: datetime) -> float:
    """Seconds until just after the next shift boundary (a pass then writes the handover at once)."""
    return (settings.shift_plan.shift_at(now).end - now).total_seconds() + 1.0


# Every scheduled task, in the order a pass runs them. Add new ones here (and to docs/history.md).
TASKS: tuple[Task, ...] = (
    Task("partitions_ahead", partitions_ahead, "monthly partitions of case_events made ahead (PostgreSQL)"),
    Task("surge_alerts", surge_alerts, "surge alerts (突增预警), also every GRIDHALL_SURGE_STEP_MINUTES between passes "
         "(docs/foresight.md)", frequent=True),
    Task("risk_model", risk_model, "the overdue-risk model retrained when due (docs/foresight.md)"),
    Task("replay_snapshots", replay_snapshots, "the wall's state every GRIDHALL_REPLAY_SNAPSHOT_MINUTES for the "
         "replay (回放, docs/foresight.md)"),
    # Last: a pass's final line is the handovers' (tests read it as the end of a pass).
    Task("shift_handovers", shift_handovers, "the handover of each ended shift, written once (docs/handover.md)"),
)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Lock:
    """A Redis lock with a token: taken with SET NX PX, renewed and released only by its holder."""

    def __init__(self, client: redis.Redis, key: str, ttl_ms: int) -> None:
        """``ttl_ms``: a dead holder's lock lapses after it (GRIDHALL_HOUSEKEEPING_LOCK_S); renewed every third."""
        self.client, self.key, self.ttl_ms = client, key, ttl_ms
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held = False

    def acquire(self) -> bool:
        self.held = bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.held

    def renew(self) -> bool:
        self.held = bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))
        return self.held

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, self.key, self.token)
        self.held = False

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


@dataclass
class PassResult:
    at: datetime
    token: str
    done: list[tuple[str, str]] = field(default_factory=list)  # (task, what it did or "error: …")


def run_pass(settings: Settings, engine: Engine, client: redis.Redis, lock: Lock,
             tasks: tuple[Task, ...] = TASKS) -> PassResult:
    """Every task once (the caller holds ``lock``); a failing task is logged and the others still run."""
    result = PassResult(datetime.now(UTC), lock.token)
    for task in tasks:
        if not lock.held:  # lost (e.g. Redis unreachable longer than the TTL): another host may own it now
            break
        try:
            summary = task.run(settings, engine)
        except Exception as exc:  # one task's failure must not stop the others
            log.exception("housekeeping task %s failed", task.name)
            summary = f"error: {exc}"
        result.done.append((task.name, summary))
        client.hset(settings.key(HOUSEKEEPING_LAST_KEY), task.name,
                    f"{datetime.now(UTC).isoformat(timespec='seconds')} {lock.token} {summary}")
    return result


def _keep_renewing(lock: Lock, stop: threading.Event) -> None:
    while not stop.wait(lock.ttl_ms / 3000):
        try:
            if not lock.renew():
                log.warning("housekeeping lock lost")
                return
        except Exception:  # Redis away for a moment: try again at the next tick (the TTL is 3 ticks)
            log.warning("housekeeping lock not renewed", exc_info=True)


def run(settings: Settings, engine: Engine, client: redis.Redis, stop: threading.Event, once: bool = False,
        report: Callable[[str], None] = print, tasks: tuple[Task, ...] = TASKS, frequent_s: float | None = None) -> int:
    """Take the lock when free and run passes until ``stop``; returns the number of passes run.

    With ``once``: one attempt — a pass if the lock was free, else nothing (another host is the
    owner) — then the lock is released. Between passes the frequent tasks run every ``frequent_s``
    seconds (default GRIDHALL_SURGE_STEP_MINUTES).
    """
    lock = Lock(client, settings.key(HOUSEKEEPING_LOCK_KEY), round(settings.housekeeping_lock_s * 1000))
    passes = 0
    waiting_said = False
    renewer_stop = threading.Event()
    renewer: threading.Thread | None = None
    try:
        while not stop.is_set():
            if not lock.held:
                if not lock.acquire():
                    if not waiting_said or once:
                        report(f"waiting: housekeeping is owned by {lock.holder()}")
                        waiting_said = True
                    if once:
                        return passes
                    # A tenth of the TTL: a dead owner's lock is taken over at most a tenth of the TTL after it
                    # lapses, i.e. within 1.1 TTL of the death (docs/history.md); one GET/SET per wait is cheap.
                    stop.wait(min(lock.ttl_ms / 10_000, settings.housekeeping_interval_s))
                    continue
                report(f"owner: {lock.token}")
                waiting_said = False
                renewer_stop = threading.Event()
                renewer = threading.Thread(target=_keep_renewing, args=(lock, renewer_stop), daemon=True,
                                           name="housekeeping-lock")
                renewer.start()
            started = time.monotonic()
            result = run_pass(settings, engine, client, lock, tasks)
            passes += 1
            for name, summary in result.done:
                report(f"pass {passes} by {lock.token}: {name}: {summary}")
            if once:
                return passes
            # The next pass: after the interval, or just after the next shift boundary if sooner; until
            # then the frequent tasks (surge alerts) every GRIDHALL_SURGE_STEP_MINUTES.
            wake = min(settings.housekeeping_interval_s - (time.monotonic() - started),
                       until_next_shift(settings, utcnow()))
            frequent = tuple(t for t in tasks if t.frequent)
            step = frequent_s if frequent_s is not None else settings.surge_step_minutes * 60
            while frequent and wake > step and lock.held and not stop.wait(step):
                for name, summary in run_pass(settings, engine, client, lock, frequent).done:
                    report(f"between passes by {lock.token}: {name}: {summary}")
                wake -= step
            stop.wait(max(0.0, wake))
            if not lock.held:
                renewer_stop.set()
                report("lost the housekeeping lock; waiting to take it again")
        return passes
    finally:
        renewer_stop.set()
        if renewer is not None:
            renewer.join(timeout=2)
        if lock.held:
            lock.release()
