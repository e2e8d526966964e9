"""Control notices: a hall screen or banner changed, told to every web worker within a second.

A change to a screen or a banner (``dashboard/store/hallscreens.py``, ``dashboard/store/banners.py``)
is made through :meth:`ControlPublisher.commit`: the store's function runs in one transaction,
the transaction commits, and only *then* one entry per changed object is added to the capped
stream ``<prefix>control`` (``feeds/keys.py``): ``{kind: screen|banner, ref: <name or id>}``. A
notice is never sent for a change that was rolled back, and no change reaches the screens
without its row in ``hall_changes``.

Every web worker runs a :class:`ControlFollower`: a thread with its own connection in a plain
``XREAD BLOCK`` (no group: every worker reads every notice), starting at the stream's newest
entry (``$``, resolved to an id once so that nothing is lost between two reads), calling its
callback per notice — the wall's is ``ScreenViews.invalidate``
(:func:`follow_screen_views` wires the two). On a Redis error it logs one
line, retries with back-off (0.5 s doubling to 10 s), and once Redis answers again calls the
callback with a ``reset`` notice: notices sent meanwhile may be lost (a restarted server starts
its ids again), so whatever the callback keeps must be dropped. It stops within one block
(0.5 s) of :meth:`ControlFollower.stop`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import redis
from sqlalchemy.orm import Session, sessionmaker

from dashboard.settings import Settings
from dashboard.store.db import transaction
from dashboard.store.hallcontrol import take_notices
from dashboard.store.hallscreens import ScreenViews

from .connection import disconnect, own_client
from .keys import CONTROL_MAXLEN, CONTROL_STREAM

log = logging.getLogger(__name__)

RESET = "reset"  # the follower's own notice after an outage: forget everything kept
ZERO_ID = "0-0"
MAX_BACKOFF_S = 10.0

T = TypeVar("T")
# XREAD's reply (decode_responses): per stream, its entries; an entry trimmed meanwhile has no fields.
_ReadReply = list[tuple[str, list[tuple[str, dict[str, str] | None]]]]


@dataclass(frozen=True)
class ControlNotice:
    """One change notice: ``kind`` ``screen`` (ref: its name), ``banner`` (ref: its id), ``alert``
    (ref: ``"<id>:<step>"``, ``dashboard.store.alerts.notice_ref``) or ``reset``."""

    id: str
    kind: str
    ref: str


@dataclass(frozen=True)
class Committed(Generic[T]):
    """What :meth:`ControlPublisher.commit` did: the store's result, the notices, whether they went out."""

    result: T
    notices: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None  # why the notices were not sent (the change is committed all the same)

    @property
    def sent(self) -> bool:
        return self.error is None


class ControlPublisher:
    """Commits a screen or banner change, then announces it on ``<prefix>control``."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.key = settings.key(CONTROL_STREAM)

    def commit(self, sessions: sessionmaker[Session], action: Callable[[Session], T]) -> Committed[T]:
        """Run ``action`` in one transaction; after the commit, send a notice per changed object.

        The store's errors (``HallError``, …) propagate and nothing is committed or sent. A Redis
        error after the commit is logged and reported in :attr:`Committed.error`: the change
        stands, and the workers' caches catch up within their ``max_age_s``.
        """
        with transaction(sessions) as session:
            result = action(session)
            notices = take_notices(session)
        try:
            self.publish(notices)
        except redis.RedisError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("control notice not sent (%s); screens catch up within their cache age", reason)
            return Committed(result, notices, reason)
        return Committed(result, notices)

    def publish(self, notices: Iterable[tuple[str, str]]) -> list[str]:
        """XADD one entry per (kind, ref), in one round trip; returns the entry ids."""
        pipe = self.client.pipeline(transaction=False)
        if not add_notices(pipe, self.key, notices):
            return []
        return [str(i) for i in pipe.execute()]


def add_notices(pipe: redis.client.Pipeline, key: str, notices: Iterable[tuple[str, str]]) -> int:
    """Queue one control notice per (kind, ref) on ``pipe`` (the stream ``key``, capped); how many.

    The one writer of the notices' form: :meth:`ControlPublisher.publish`, and the ingest, which
    announces the alerts it raised in the same round trip as its acknowledgement (feeds/ingest.py).
    """
    count = 0
    for kind, ref in notices:
        pipe.xadd(key, {"kind": kind, "ref": ref}, maxlen=CONTROL_MAXLEN, approximate=True)
        count += 1
    return count


class ControlFollower:
    """Calls ``callback`` with each control notice, in a daemon thread of its own."""

    def __init__(self, settings: Settings, client: redis.Redis, callback: Callable[[ControlNotice], None], *,
                 block_ms: int = 500, first_backoff_s: float = 0.5, max_backoff_s: float = MAX_BACKOFF_S,
                 name: str = "gridhall-control") -> None:
        self.key = settings.key(CONTROL_STREAM)
        self.callback = callback
        self.block_ms = block_ms
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.name = name
        # No retries inside redis-py: this loop backs off, logs and resets on every outage itself.
        self.client = own_client(client, name, block_ms, retries=0)
        self._last: str | None = None  # None: resolve the stream's end first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.notices = 0  # notices passed to the callback (resets included)
        self.errors = 0  # Redis errors met

    # -- life ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start following from the stream's current end; a change committed after ``start``
        returns is announced to the callback. Without Redis the thread keeps trying."""
        if self._thread is not None:
            return
        try:
            self._last = self._end()
        except redis.RedisError as exc:
            self._failed(exc)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and wait for the thread (it leaves within one block); closes the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        disconnect(self.client)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop --------------------------------------------------------------------------
    def _end(self) -> str:
        """The id of the stream's newest entry (``$`` as an id); ``0-0`` when there is no stream."""
        try:
            info = self.client.xinfo_stream(self.key)
        except redis.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return ZERO_ID
            raise
        return str(info["last-generated-id"])

    def _run(self) -> None:
        backoff = self.first_backoff_s
        while not self._stop.is_set():
            try:
                self.step()
            except redis.RedisError as exc:
                self._failed(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            else:
                backoff = self.first_backoff_s

    def step(self) -> int:
        """One blocking read (at most ``block_ms``); returns the notices handled."""
        handled = 0
        if self._last is None:
            self._last = self._end()
            if self._failing:  # back after an outage: what came meanwhile may be lost
                self._deliver(ControlNotice(self._last, RESET, ""))
                handled += 1
        reply = cast(_ReadReply, self.client.xread({self.key: self._last}, count=100, block=self.block_ms))
        if self._failing:
            log.info("control notices: Redis answers again")
            self._failing = False
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self._last = entry_id
                if fields:  # an entry trimmed meanwhile has no fields
                    self._deliver(ControlNotice(entry_id, fields.get("kind", ""), fields.get("ref", "")))
                    handled += 1
        return handled

    def _deliver(self, notice: ControlNotice) -> None:
        self.notices += 1
        try:
            self.callback(notice)
        except Exception:  # a bug in the callback must not stop the notices
            log.exception("control notice %s: the callback failed", notice.id)

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        # Resolve the position again once Redis is back: a restarted server numbers anew.
        self._last = None
        if not self._failing:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("control notices: Redis unreachable (%s); retrying with back-off", reason)
            self._failing = True


def follow_screen_views(settings: Settings, sessions: sessionmaker[Session], client: redis.Redis, *,
                        block_ms: int = 500, then: Callable[[], None] | None = None,
                        ) -> tuple[ScreenViews, ControlFollower]:
    """A web worker's :class:`ScreenViews`, dropped on every control notice by a started
    :class:`ControlFollower` (stop it when the worker stops). What the wall asks per request.
    ``then`` runs after each drop (the wall wakes its push streams, which send the change)."""
    views = ScreenViews(sessions)

    def changed(notice: ControlNotice) -> None:
        views.invalidate(notice)
        if then is not None:
            then()

    follower = ControlFollower(settings, client, changed, block_ms=block_ms)
    follower.start()
    return views, follower
