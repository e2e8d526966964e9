"""Follow the change notices of the feed into a web worker's live view (docs/feed.md §9).

One :class:`ChangeFollower` per web worker, in a daemon thread:

1. **Bootstrap.** Remember the id of the newest entry of ``<prefix>changes`` (its
   ``last-generated-id`` from ``XINFO STREAM``, like ``XREVRANGE key + - COUNT 1`` but also
   right when the stream was trimmed empty; ``0-0`` when there is no stream) and the Redis
   server's ``run_id``, *then*
   build the view from SQL. A notice written between the two is read again afterwards, which
   is harmless (applying a case re-reads its row), so nothing is missed between load and follow.
2. **Follow.** Plain ``XREAD BLOCK … STREAMS key <last id>``, no consumer group: every worker
   reads every notice. All notices one read returns (up to ``batch``) are coalesced into one
   :meth:`LiveView.apply` of the union of their case ids; the last id advances only after the
   apply succeeded. Applies are at least ``apply_every_s`` (APPLY_EVERY_S, 50 ms) apart, so a
   stream of notices is read in groups rather than one by one.
3. **Tick.** :meth:`LiveView.tick` at least every ``tick_s`` (1 s), whatever the feed does,
   Redis outages included: cases cross their deadlines without any notice.
4. **Gaps.** After any error, after a read that returned a full batch (we are behind) and
   every ``check_every_s``: if the Redis server
   restarted (another ``run_id``), if the stream's last id is now *older* than ours (a restart
   without persistence, a recreated stream), or if notices after ours were trimmed away (the
   stream is capped at about 10,000), the view is rebuilt from SQL (bootstrap again).
5. **Errors.** Redis errors: retry with back-off (0.5 s doubling to 10 s), ticking meanwhile.
   Database errors: the view keeps its last state and says so in :attr:`LiveView.stale_reason`;
   the same notices are retried. An unexpected error (a bug) rebuilds the view from SQL rather
   than trust a half-applied change. ``stale_reason`` is cleared once a step succeeds.

Thread safety: the view has its own lock (see :mod:`dashboard.figures.liveview`); this thread is its
only writer, request threads only read.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import redis
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dashboard.figures.liveview import LiveView, reference_fingerprint
from dashboard.rules.clock import utcnow
from dashboard.rules.deadlines import Timing
from dashboard.settings import Settings

from .connection import disconnect, own_client, server_run_id
from .keys import CHANGES_MAXLEN, CHANGES_STREAM, stream_id
from .snapshot import SnapshotError, SnapshotStore, size_text

log = logging.getLogger(__name__)

ZERO_ID = "0-0"
# At most one apply this often: the notices that arrive meanwhile are applied together. Each apply
# re-reads its cases in one SELECT, and under load (200 viewers, 20 cases/s) one per notice was a
# fifth of a worker's CPU; the pushed wall sends at most one update per 100 ms anyway.
APPLY_EVERY_S = 0.05
MAX_BACKOFF_S = 10.0

# XREAD's reply (decode_responses): per stream, its entries; an entry trimmed meanwhile has no fields.
_ReadReply = list[tuple[str, list[tuple[str, dict[str, str] | None]]]]



@dataclass(frozen=True)
class FollowerStatus:
    """What the wall's header and monitoring show about the follower."""

    running: bool
    last_id: str | None  # last change notice applied (None: unknown, a bootstrap is due)
    last_notice_at: datetime | None  # when a notice was last applied
    last_tick_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    notices: int  # notices applied since start
    reloads: int  # full rebuilds from SQL since start (the first load included)
    stale_reason: str | None  # why the view may be behind (None: it is live)
    restored: bool = False  # the first load came from a snapshot (feeds/snapshot.py), not from SQL


class ChangeFollower:
    """Keeps one :class:`~dashboard.figures.liveview.LiveView` up to date from ``<prefix>changes``."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        client: redis.Redis,
        timing: Timing,
        *,
        view: LiveView | None = None,
        tick_s: float = 1.0,
        block_ms: int = 1000,
        batch: int = 500,
        check_every_s: float = 30.0,
        apply_every_s: float = APPLY_EVERY_S,
        clock: Callable[[], datetime] = utcnow,
        name: str = "gridhall-follower",
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.timing = timing
        self.key = settings.key(CHANGES_STREAM)
        self.view = view if view is not None else LiveView(timing)
        self.tick_s = tick_s
        self.block_ms = block_ms
        self.batch = batch
        self.check_every_s = check_every_s
        self.apply_every_s = apply_every_s
        self.clock = clock
        self.name = name
        self.client = own_client(client, name, block_ms)
        self._last_id: str | None = None  # None: bootstrap due
        self._run_id: str | None = None
        self._next_tick = 0.0
        self._next_check = 0.0
        self._next_apply = 0.0  # monotonic time before which notices are left to accumulate
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_notice_at: datetime | None = None
        self._last_tick_at: datetime | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._notices = 0
        self._reloads = 0
        self._failing: str | None = None  # "redis" / "database" while errors last
        # snapshots (feeds/snapshot.py): read at the first start, written after loads and then
        # every snapshots.interval_s while the view moves
        self.snapshots = snapshots if snapshots is not None and snapshots.enabled else None
        self._started = False  # the first bootstrap is done (later ones read SQL)
        self._restored = False
        self._reference = ""
        self._next_snapshot = float("inf")
        self._snapshot_id: str | None = None  # the notice id of the last snapshot written
        self._writer: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ChangeFollower:
        """Load the view (synchronously, so the worker serves a full view at once) and follow.

        If Redis or the database is unreachable now, the view starts empty or stale (see
        :attr:`LiveView.stale_reason`) and the thread keeps trying.
        """
        try:
            self.bootstrap()
        except (redis.RedisError, OSError) as exc:
            self._error(exc, "redis")
            try:  # show what SQL knows meanwhile; a bootstrap follows once Redis answers
                with self.sessions() as session:
                    self.view.reload(session, self.clock())
            except Exception as db_exc:  # any failure is shown as a database error
                self._error(db_exc, "database")
        except Exception as exc:  # the thread retries; the error is in status()
            self._error(exc, "database" if isinstance(exc, SQLAlchemyError) else "bug")
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._writer is not None:
            self._writer.join(timeout)
        disconnect(self.client)

    def status(self) -> FollowerStatus:
        return FollowerStatus(
            running=self._thread is not None and self._thread.is_alive(),
            last_id=self._last_id, last_notice_at=self._last_notice_at, last_tick_at=self._last_tick_at,
            last_error=self._last_error, last_error_at=self._last_error_at, notices=self._notices,
            reloads=self._reloads, stale_reason=self.view.stale_reason, restored=self._restored,
        )

    # -- the steps --------------------------------------------------------------------------------
    def bootstrap(self) -> None:
        """Remember where the stream ends, then (re)build the view from SQL.

        At the first start, a usable snapshot (feeds/snapshot.py) is loaded and caught up
        instead; any doubt about it means SQL. After a load from SQL a snapshot is written.
        """
        first = not self._started
        self._started = True
        self._last_id = None
        if first and self.snapshots is not None and self._restore():
            return
        started = time.perf_counter()
        last = self._stream_end()
        run_id = server_run_id(self.client, self.key)
        now = self.clock()
        with self.sessions() as session:
            reference = reference_fingerprint(session) if self.snapshots is not None else ""
            self.view.reload(session, now)
        self._last_id, self._run_id = last, run_id
        self._reference = reference
        self._reloads += 1
        self._next_check = time.monotonic() + self.check_every_s
        self._next_tick = time.monotonic() + self.tick_s
        self._last_tick_at = now
        log.info("live view loaded from SQL in %.2f s: %d open cases, following %s from %s",
                 time.perf_counter() - started, self.view.open_cases, self.key, last)
        self.snapshot(force=True)

    def _restore(self) -> bool:
        """Load the snapshot, catch up from its notice id, check it; False (and SQL) on any doubt."""
        assert self.snapshots is not None
        started = time.perf_counter()
        try:
            with self.sessions() as session:
                reference = reference_fingerprint(session)
            with _no_gc():  # millions of new objects: no collection passes over them meanwhile
                snap = self.snapshots.read(reference=reference, tz=_tz_name(self.view.tz))
            read_s = time.perf_counter() - started
            run_id = server_run_id(self.client, self.key)
            if snap.header["run_id"] != run_id:
                raise SnapshotError("written under another run of the Redis server")
            file_id = str(snap.header["last_id"])
            self._last_id, self._run_id = file_id, run_id
            reason = self.gap()
            if reason:
                raise SnapshotError(f"stale: {reason}")
            try:
                with _no_gc():
                    fresh = LiveView.from_state(self.timing, snap.arrays, snap.meta, tz=self.view.tz)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise SnapshotError(f"inconsistent state ({type(exc).__name__}: {str(exc)[:120]})") from None
            del snap
            now = self.clock()
            fresh.tick(now)  # the clocks, the day and the month as of now, then the notices since
            notices = 0
            with self.sessions() as session:
                # A case committed by the ingest whose notice is not written yet differs for a
                # moment: read the stream again before calling a difference real.
                for attempt in range(3):
                    while True:
                        resp = cast(_ReadReply | None, self.client.xread({self.key: self._last_id}, count=self.batch))
                        entries = [e for _, items in (resp or []) for e in items]
                        if not entries:
                            break
                        ids: set[str] = set()
                        for _, fields in entries:
                            ids.update(c for c in (fields or {}).get("cases", "").split(",") if c)
                        fresh.apply(session, ids, now)
                        self._last_id = entries[-1][0]
                        notices += len(entries)
                    reason = self.gap()  # trimmed while we read?
                    if reason:
                        raise SnapshotError(f"stale after the catch-up: {reason}")
                    session.rollback()  # a fresh read of SQL (PostgreSQL's snapshot per transaction)
                    differ = fresh.differing(session)
                    if not differ:
                        break
                    if attempt < 2:
                        time.sleep(0.2)
                else:
                    raise SnapshotError(f"{len(differ)} sampled open cases differ from SQL (e.g. {differ[0]})")
        except SnapshotError as exc:
            self._last_id = None
            level = logging.DEBUG if str(exc) == "no snapshot" else logging.WARNING
            log.log(level, "live view snapshot %s not used: %s; loading from SQL", self.snapshots.path, exc)
            return False
        except (redis.RedisError, SQLAlchemyError):
            self._last_id = None
            raise
        except Exception:  # a bug in reading must not stop the worker: SQL it is
            self._last_id = None
            log.exception("live view snapshot %s not used; loading from SQL", self.snapshots.path)
            return False
        fresh.loaded_at = now
        self.view.adopt(fresh)
        self._reference = reference
        self._restored = True
        self._next_check = time.monotonic() + self.check_every_s
        self._next_tick = time.monotonic() + self.tick_s
        self._last_tick_at = now
        self._snapshot_id = file_id  # the file as it is; the next notice makes it worth rewriting
        self._next_snapshot = time.monotonic() + self.snapshots.interval_s
        log.info("live view loaded from snapshot in %.2f s (file %s read in %.2f s, %d notices caught up): "
                 "%d open cases, following %s from %s", time.perf_counter() - started,
                 size_text(self.snapshots.path), read_s, notices, self.view.open_cases, self.key, self._last_id)
        return True

    def snapshot(self, *, force: bool = False) -> bool:
        """Write a snapshot of the view in the background if notices moved it since the last (or ``force``).

        Only notices count: what the clock alone changes (deadlines passing, a new day) a
        restored view recomputes when it is ticked to its start, so a quiet feed writes
        nothing. Runs in the follower's thread, the view's only writer, so the state copied
        and the notice id written with it agree. False when skipped.
        """
        if self.snapshots is None or self._last_id is None:
            return False
        self._next_snapshot = time.monotonic() + self.snapshots.interval_s
        if not force and self._last_id == self._snapshot_id:
            return False
        if self._writer is not None and self._writer.is_alive():
            return False
        arrays, meta = self.view.export_state()
        header = self.snapshots.header(last_id=self._last_id, run_id=self._run_id or "", reference=self._reference,
                                       tz=_tz_name(self.view.tz), open_cases=self.view.open_cases)
        self._snapshot_id = self._last_id
        store = self.snapshots

        def write() -> None:
            started = time.perf_counter()
            try:
                if store.write(header, arrays, meta, force=force):
                    log.info("live view snapshot written in %.2f s (%s, %d open cases, notice %s)",
                             time.perf_counter() - started, size_text(store.path), header["open_cases"],
                             header["last_id"])
            except Exception as exc:  # a full disk must not stop the wall
                log.warning("live view snapshot not written: %s", exc)

        self._writer = threading.Thread(target=write, name=f"{self.name}-snapshot", daemon=True)
        self._writer.start()
        return True

    def gap(self) -> str | None:
        """Why notices may have been missed since our last id (None: nothing missed)."""
        assert self._last_id is not None
        run_id = server_run_id(self.client, self.key)
        if self._run_id and run_id != self._run_id:
            return "the Redis server restarted"
        try:
            info = self.client.xinfo_stream(self.key)
        except redis.ResponseError:  # no such key
            return "the change stream is gone" if self._last_id != ZERO_ID else None
        ours = stream_id(self._last_id)
        if ours > stream_id(info["last-generated-id"]):
            return "the change stream is older than our last notice (recreated)"
        if self._last_id == ZERO_ID:  # the stream did not exist when we started
            added = info.get("entries-added")  # Redis ≥ 7: were any entries removed since?
            if added is not None:
                return "notices were trimmed before we read them" if int(added) > int(info["length"]) else None
            # Redis 6.2 cannot tell; a stream at its cap has surely been trimmed
            return "the change stream may have been trimmed" if int(info["length"]) >= CHANGES_MAXLEN else None
        if self.client.xrange(self.key, self._last_id, self._last_id, count=1):
            return None  # our notice is still there, so is everything after it (trimming cuts the head)
        first = info.get("first-entry")
        return "notices were trimmed before we read them" if first and stream_id(first[0]) > ours else None

    def _stream_end(self) -> str:
        """The id of the last notice ever added (``0-0`` when the stream does not exist)."""
        try:
            return str(self.client.xinfo_stream(self.key)["last-generated-id"])
        except redis.ResponseError:  # no such key
            return ZERO_ID

    def step(self) -> int:
        """One round: bootstrap or gap check when due, read and apply notices, tick when due.

        Returns the number of notices applied. Raises what failed (``run`` handles it).
        """
        if self._last_id is None:
            self.bootstrap()
        elif self._failing is not None or time.monotonic() >= self._next_check:
            reason = self.gap()
            self._next_check = time.monotonic() + self.check_every_s
            if reason:
                log.warning("change notices may have been missed (%s): reloading the live view", reason)
                self.bootstrap()
        self._tick_if_due()
        gather = self._next_apply - time.monotonic()
        if gather > 0:  # notices that arrive meanwhile are read, and applied, together
            self._stop.wait(min(gather, max(0.0, self._next_tick - time.monotonic())))
        wait_ms = int(max(0.0, self._next_tick - time.monotonic()) * 1000)
        block = min(self.block_ms, wait_ms) or None  # BLOCK 0 would wait for ever
        last_id = self._last_id
        assert last_id is not None  # bootstrap() above set it
        resp = cast(_ReadReply | None, self.client.xread({self.key: last_id}, count=self.batch, block=block))
        applied = 0
        entries = [e for _, items in (resp or []) for e in items]
        if entries:
            ids: set[str] = set()
            for _, fields in entries:
                ids.update(c for c in (fields or {}).get("cases", "").split(",") if c)
            now = self.clock()
            last = entries[-1][0]

            def record() -> None:  # under the view's lock: the new version and its id appear together
                self._last_id = last

            self._next_apply = time.monotonic() + self.apply_every_s
            with self.sessions() as session:
                self.view.apply(session, ids, now, then=record)
            if len(entries) >= self.batch:  # behind: make sure nothing was trimmed meanwhile
                self._next_check = 0.0
            self._last_notice_at = now
            self._notices += len(entries)
            applied = len(entries)
        self._tick_if_due()
        if time.monotonic() >= self._next_snapshot:
            self.snapshot()
        self._recovered()
        return applied

    def _tick_if_due(self) -> None:
        if time.monotonic() >= self._next_tick:
            now = self.clock()
            with self.view.consistent():  # the second a tick moved the view appears with its change
                self.view.tick(now)
                self._last_tick_at = now
            self._next_tick = time.monotonic() + self.tick_s

    def run(self) -> None:
        """The thread's loop: steps until :meth:`stop`, errors retried with back-off."""
        delay = 0.5
        while not self._stop.is_set():
            try:
                self.step()
                delay = 0.5
                continue
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self._error(exc, "redis")
            except redis.ResponseError as exc:
                self._error(exc, "redis")
            except (DBAPIError, SQLAlchemyError) as exc:
                self._error(exc, "database")
            except Exception as exc:  # a bug must not freeze the wall: rebuild
                log.exception("live view update failed; rebuilding it from SQL")
                self._error(exc, "bug")
                self._last_id = None
            self._backoff(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _backoff(self, delay: float) -> None:
        """Wait ``delay`` seconds, still ticking the view every ``tick_s``."""
        until = time.monotonic() + delay
        while not self._stop.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return
            try:
                self._tick_if_due()
            except Exception:  # a failed tick is logged; the next one tries again
                log.exception("live view tick failed")
            self._stop.wait(min(left, max(0.01, self._next_tick - time.monotonic())))

    def _error(self, exc: BaseException, kind: str = "error") -> None:
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        message = f"{type(exc).__name__}: {text[0] if text else ''}"
        self._last_error, self._last_error_at = message, utcnow()
        if kind == "redis":
            reason = f"Redis 不可用，大屏数据可能未更新（{message}）"
        elif kind == "database":
            reason = f"数据库不可用，大屏数据可能未更新（{message}）"
        else:
            reason = f"大屏数据更新出错（{message}）"
        if self.view.stale_reason is None:
            log.warning("live view is stale: %s", message)
        self.view.stale_reason = reason
        self._failing = kind

    def _recovered(self) -> None:
        if self._failing is not None or self.view.stale_reason is not None:
            if self._failing is not None:
                log.info("live view is live again")
            self._failing = None
            self.view.stale_reason = None


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _tz_name(tz: object) -> str:
    return str(getattr(tz, "key", tz))

