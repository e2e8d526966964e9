"""Bearer tokens of the read API, checked against SQL at most every RECHECK_S per token and worker.

An API client polls once a second or more; looking its token (and the token's user) up in SQL on
every request cost more than answering it from the read cache. A worker therefore keeps, per
token digest, what the check found — the user, the role, the scope — for
:data:`auth.sessions.RECHECK_S` seconds, the same bound a browser session's user check has: a
revoked token or a disabled user is refused within that time on every worker. A token that
fails is remembered as failing for as long, so a wrong token costs SQL once per RECHECK_S, not
once per request (the per-token rate limit counts it before this, in Redis).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from auth import sessions as session_rules
from dashboard.store.users import token_digest, verify_token

MAX_ENTRIES = 10_000  # bounded: the cache is cleared when this many tokens were seen


@dataclass(frozen=True)
class Bearer:
    """What a usable token stands for."""

    user_id: int
    role: str
    scope_region_id: int | None


class BearerChecks:
    """One worker's recent token checks, by token digest (the plaintext is never kept)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cache: dict[str, tuple[float, Bearer | None]] = {}
        self._lock = threading.Lock()

    def check(self, session: Session, plaintext: str, now: datetime | None = None) -> Bearer | None:
        """The bearer of a usable token, else None; SQL only when the last check is too old."""
        key = token_digest(plaintext) if isinstance(plaintext, str) else ""
        at = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and at - hit[0] < session_rules.RECHECK_S:
            return hit[1]
        token = verify_token(session, plaintext, now=now)
        bearer = None if token is None else Bearer(token.user.id, token.user.role, token.user.scope_region_id)
        with self._lock:
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = (at, bearer)
        return bearer
