"""Sign-in locks per (account, client address), in Redis — so a stranger cannot lock a real user out.

After :data:`dashboard.store.users.MAX_FAILURES` consecutive failed sign-ins **from one client
address** an account is locked **for that address** for :data:`~dashboard.store.users.LOCK_FIRST`,
doubling with every further failure from it up to :data:`~dashboard.store.users.LOCK_MAX`
(:func:`dashboard.store.users.lock_duration`). Other addresses — the real user at their desk — are not
affected. A success from an address clears its count; ``gridhall users unlock`` and a new
password clear every address's. Counts are forgotten :data:`FORGET_AFTER` after the account's
last failure.

One Redis hash per account, ``<prefix>signin-locks:<user id>``: field ``<client>|n`` is the
count, ``<client>|until`` the end of the lock (Unix seconds). Redis errors propagate: the web
sign-in refuses to sign anyone in without its locks (503; docs/security.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import redis

from dashboard.settings import Settings
from dashboard.store.users import lock_duration

from .keys import signin_locks_key

FORGET_AFTER = timedelta(hours=24)


class SigninLocks:
    """The per-(account, client) failure counts and locks of one deployment."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def _key(self, user_id: int) -> str:
        return self.settings.key(signin_locks_key(user_id))

    def locked_until(self, user_id: int, client: str, now: datetime) -> datetime | None:
        """The end of ``client``'s lock on the account, or None when it may try."""
        raw = self.client.hget(self._key(user_id), f"{client}|until")
        if raw is None:
            return None
        until = datetime.fromtimestamp(float(raw), UTC)
        return until if until > now else None

    def failed(self, user_id: int, client: str, now: datetime) -> datetime | None:
        """Count a failure from ``client``; returns the end of the lock it causes (None: none)."""
        key = self._key(user_id)
        failures = int(self.client.hincrby(key, f"{client}|n", 1))
        lock = lock_duration(failures)
        pipe = self.client.pipeline()
        if lock is not None:
            pipe.hset(key, f"{client}|until", f"{(now + lock).timestamp():.3f}")
        pipe.expire(key, int(FORGET_AFTER.total_seconds()))
        pipe.execute()
        return now + lock if lock is not None else None

    def succeeded(self, user_id: int, client: str) -> None:
        """A sign-in from ``client`` worked: its count starts again."""
        self.client.hdel(self._key(user_id), f"{client}|n", f"{client}|until")

    def locks(self, user_id: int, now: datetime) -> dict[str, tuple[int, datetime | None]]:
        """Every client with failures on the account: client → (failures, lock end or None)."""
        # decode_responses (the app's client): str fields and values, which redis-py's types cannot tell
        fields = cast(dict[str, str], self.client.hgetall(self._key(user_id)))
        result: dict[str, tuple[int, datetime | None]] = {}
        for field, value in fields.items():
            client, _, what = field.rpartition("|")
            failures, until = result.get(client, (0, None))
            if what == "n":
                failures = int(value)
            elif what == "until":
                end = datetime.fromtimestamp(float(value), UTC)
                until = end if end > now else None
            result[client] = (failures, until)
        return result

    def unlock(self, user_id: int) -> int:
        """Clear every client's count and lock on the account; returns how many clients had one."""
        key = self._key(user_id)
        clients = {field.rpartition("|")[0] for field in cast(list[str], self.client.hkeys(key))}
        self.client.delete(key)
        return len(clients)
