"""Bearer token checks kept RECHECK_S per worker (auth/bearer.py): SQL once per token and period,
a revoked token refused once the period is over, a wrong token remembered as wrong too.

Real parts: SQL (SQLite or PostgreSQL) with the statements counted at the engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auth import sessions as session_rules
from auth.bearer import BearerChecks
from authkit import display_token, make_user
from dashboard.store import users


class Statements:
    def __init__(self, engine: Engine) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)
        self.engine = engine

    def _count(self, *_: Any) -> None:
        self.n += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


def test_a_token_is_checked_once_per_period_and_revocation_holds_after_it(
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    who = make_user(sessions, "leader", username="bearer.leader")
    plaintext = display_token(sessions, who)
    now = [1000.0]
    checks = BearerChecks(clock=lambda: now[0])
    counted = Statements(engine)
    try:
        with sessions() as session:
            first = checks.check(session, plaintext)
            session.commit()
        assert first is not None and first.user_id == who.user_id and first.role == "leader"
        assert counted.n > 0
        seen = counted.n
        with sessions() as session:
            assert checks.check(session, plaintext) == first
        assert counted.n == seen  # within RECHECK_S: no SQL
        with sessions() as session:
            user = users.require_user(session, who.username)
            assert users.revoke_tokens(session, user) == 1
            session.commit()
        now[0] += session_rules.RECHECK_S / 2
        with sessions() as session:
            assert checks.check(session, plaintext) == first  # the documented bound: not yet
        now[0] += session_rules.RECHECK_S
        with sessions() as session:
            assert checks.check(session, plaintext) is None  # refused once the period is over
        wrong = users.TOKEN_PREFIX + "x" * 40
        seen = counted.n
        with sessions() as session:
            assert checks.check(session, wrong) is None
            assert checks.check(session, wrong) is None
        assert counted.n == seen + 1  # one lookup for two requests
    finally:
        counted.close()
