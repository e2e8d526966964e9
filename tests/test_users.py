"""Users, passwords, tokens and login throttling (dashboard/store/users.py) and `gridhall users`."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher, extract_parameters
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import cli
from dashboard.store import users
from dashboard.store.db import transaction
from dashboard.store.models import ApiToken, Region, User
from dashboard.store.users import LoginOutcome, UserError, UserRole
from feeds.keys import session_key
from feeds.sessionstore import SessionStore
from feeds.signinlocks import SigninLocks

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
CLIENT = "192.0.2.10"  # the address sign-ins in these tests come from
STRANGER = "198.51.100.66"


class CountingHasher(PasswordHasher):
    """A cheap argon2id hasher (tests run on a busy machine) that counts verifications."""

    def __init__(self, **kw: int) -> None:
        super().__init__(**{"time_cost": 1, "memory_cost": 1024, "parallelism": 1, **kw})
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 - argon2's name
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    hasher = CountingHasher()
    monkeypatch.setattr(users, "HASHER", hasher)
    return hasher


@pytest.fixture(autouse=True)
def locks(redis_client, settings) -> SigninLocks:  # type: ignore[no-untyped-def]
    """The deployment's sign-in locks, in the test's real Redis (every _login uses them)."""
    global _LOCKS
    _LOCKS = SigninLocks(redis_client, settings)
    return _LOCKS


_LOCKS: SigninLocks | None = None


def _regions(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        d = Region(code="990101", name="青山区", level="district")
        st = Region(code="990101001", name="江东街道", level="street", parent=d)
        c = Region(code="990101001001", name="江东社区", level="community", parent=st)
        s.add_all([d, st, c])


def _add(sessions: sessionmaker[Session], username: str = "li.ming", role: str = "leader",
         password: str | None = PASSWORD, **kw: object) -> None:
    with transaction(sessions) as s:
        users.create_user(s, username, role, password=password, now=T0, **kw)  # type: ignore[arg-type]


def _login(sessions: sessionmaker[Session], username: str, password: str, now: datetime,
           client: str = CLIENT, **kw: object) -> users.LoginResult:
    assert _LOCKS is not None
    with transaction(sessions) as s:
        return users.verify_password(s, username, password, locks=_LOCKS, client=client, now=now,
                                     **kw)  # type: ignore[arg-type]


def _user(sessions: sessionmaker[Session], username: str) -> User:
    with sessions() as s:
        user = users.get_user(s, username)
        assert user is not None
        return user


# -- users and passwords ----------------------------------------------------------------
def test_roles_carry_chinese_labels() -> None:
    assert UserRole.labels() == {"display": "大屏", "leader": "领导", "shift_lead": "值班长", "admin": "管理员"}


def test_password_is_stored_as_argon2id_and_verifies(sessions: sessionmaker[Session]) -> None:
    _regions(sessions)
    _add(sessions, "Li.Ming", display_name="李明", scope="990101")
    user = _user(sessions, "li.ming")
    assert user.username == "li.ming" and user.display_name == "李明"
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert user.created_at == T0 and user.last_login_at is None

    result = _login(sessions, "LI.MING ", PASSWORD, T0 + timedelta(minutes=1))
    assert result.ok and result.user is not None and result.user.username == "li.ming"
    assert _user(sessions, "li.ming").last_login_at == T0 + timedelta(minutes=1)

    wrong = _login(sessions, "li.ming", PASSWORD + "!", T0 + timedelta(minutes=2))
    assert wrong.outcome is LoginOutcome.BAD_CREDENTIALS and wrong.user is None
    assert _LOCKS is not None and _LOCKS.locks(_user(sessions, "li.ming").id, T0) == {CLIENT: (1, None)}


def test_verification_rehashes_a_hash_made_with_weaker_parameters(
        sessions: sessionmaker[Session], cheap_hasher: CountingHasher) -> None:
    _add(sessions)
    old = _user(sessions, "li.ming").password_hash
    assert old is not None and extract_parameters(old).memory_cost == 1024

    stronger = CountingHasher(memory_cost=2048, time_cost=2)
    assert _login(sessions, "li.ming", PASSWORD, T0, hasher=stronger).ok
    new = _user(sessions, "li.ming").password_hash
    assert new != old and new is not None
    assert (extract_parameters(new).memory_cost, extract_parameters(new).time_cost) == (2048, 2)
    # The new hash verifies, and is not rehashed again.
    assert _login(sessions, "li.ming", PASSWORD, T0, hasher=stronger).ok
    assert _user(sessions, "li.ming").password_hash == new


def test_unknown_and_passwordless_users_cost_one_verification_like_everyone(
        sessions: sessionmaker[Session], cheap_hasher: CountingHasher) -> None:
    """Timing does not tell which usernames exist: every path runs exactly one argon2 verify."""
    _add(sessions)
    _add(sessions, "wall-1", "display", password=None)
    real = _user(sessions, "li.ming").password_hash
    for username, password, outcome in [
        ("li.ming", PASSWORD, LoginOutcome.OK),
        ("li.ming", "wrong password", LoginOutcome.BAD_CREDENTIALS),
        ("nobody", PASSWORD, LoginOutcome.BAD_CREDENTIALS),
        ("wall-1", PASSWORD, LoginOutcome.BAD_CREDENTIALS),
    ]:
        cheap_hasher.verified.clear()
        assert _login(sessions, username, password, T0).outcome is outcome
        assert len(cheap_hasher.verified) == 1, username
        checked = cheap_hasher.verified[0]
        # The dummy hash has the same parameters as a real one, hence the same cost.
        assert extract_parameters(checked) == extract_parameters(real)
        assert (checked == real) == (username == "li.ming")


def test_creation_errors_are_one_line(sessions: sessionmaker[Session]) -> None:
    _regions(sessions)
    _add(sessions)
    cases = [
        (dict(username="zhang", role="boss"), "unknown role 'boss'"),
        (dict(username="zhang", role="leader", scope="990199"), "no region with code '990199'"),
        (dict(username="zhang", role="leader", scope="990101001001"), "is a community"),
        (dict(username="LI.MING", role="admin"), "exists already"),
        (dict(username="wall", role="display", password=PASSWORD), "token only"),
        (dict(username="李明", role="leader"), "username"),
        (dict(username="zhang", role="leader", password="short"), "too short"),
    ]
    for kw, message in cases:
        kw.setdefault("password", None)
        with pytest.raises(UserError, match=message) as info, transaction(sessions) as s:
            users.create_user(s, now=T0, **kw)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)
    with sessions() as s:
        assert [u.username for u in users.list_users(s)] == ["li.ming"]


def test_display_users_get_no_password(sessions: sessionmaker[Session]) -> None:
    _add(sessions, "wall-1", "display", password=None)
    with transaction(sessions) as s, pytest.raises(UserError, match="token only"):
        users.set_password(s, users.require_user(s, "wall-1"), PASSWORD)


# -- throttling -------------------------------------------------------------------------
def test_lock_durations_double_up_to_an_hour() -> None:
    assert [users.lock_duration(n) for n in range(5)] == [None] * 5
    minutes = [users.lock_duration(n) // timedelta(minutes=1) for n in range(5, 11)]  # type: ignore[operator]
    assert minutes == [5, 10, 20, 40, 60, 60]
    assert users.lock_duration(10_000) == users.LOCK_MAX


def test_failures_lock_the_account_for_that_client_and_time_unlocks_it(
        sessions: sessionmaker[Session], cheap_hasher: CountingHasher, locks: SigninLocks) -> None:
    _add(sessions)
    uid = _user(sessions, "li.ming").id
    now = T0
    for _ in range(users.MAX_FAILURES - 1):
        assert _login(sessions, "li.ming", "guess", now).outcome is LoginOutcome.BAD_CREDENTIALS
        now += timedelta(seconds=10)
    fifth = _login(sessions, "li.ming", "guess", now)
    assert fifth.outcome is LoginOutcome.LOCKED and fifth.locked_until == now + timedelta(minutes=5)
    locked_at = now

    # While locked even the right password is refused, and the real hash is not even tried.
    cheap_hasher.verified.clear()
    during = _login(sessions, "li.ming", PASSWORD, locked_at + timedelta(minutes=4, seconds=59))
    assert during.outcome is LoginOutcome.LOCKED and during.user is None
    assert len(cheap_hasher.verified) == 1
    assert cheap_hasher.verified[0] != _user(sessions, "li.ming").password_hash
    assert locks.locks(uid, locked_at)[CLIENT][0] == 5  # refusals during a lock do not count

    # After the lock another failure locks again, twice as long.
    again = _login(sessions, "li.ming", "guess", locked_at + timedelta(minutes=5))
    assert again.outcome is LoginOutcome.LOCKED
    assert again.locked_until == locked_at + timedelta(minutes=15)

    ok = _login(sessions, "li.ming", PASSWORD, locked_at + timedelta(minutes=15))
    assert ok.ok
    assert locks.locks(uid, locked_at) == {}  # a success starts that client's count again


def test_a_stranger_cannot_lock_a_real_user_out(sessions: sessionmaker[Session], locks: SigninLocks) -> None:
    """Issue 12 point 11: the lock holds for the client that failed, not for the account."""
    _add(sessions)
    for _ in range(users.MAX_FAILURES):
        _login(sessions, "li.ming", "guess", T0, client=STRANGER)
    assert _login(sessions, "li.ming", PASSWORD, T0, client=STRANGER).outcome is LoginOutcome.LOCKED
    assert _login(sessions, "li.ming", PASSWORD, T0, client=CLIENT).ok  # the real user at her desk
    # The stranger's lock runs out; one more wrong try re-locks only the stranger, for longer.
    later = T0 + timedelta(minutes=5)
    assert _login(sessions, "li.ming", "guess", later, client=STRANGER).outcome is LoginOutcome.LOCKED
    assert _login(sessions, "li.ming", PASSWORD, later, client=CLIENT).ok


def test_unlock_and_a_new_password_clear_every_clients_lock(sessions: sessionmaker[Session],
                                                            locks: SigninLocks) -> None:
    _add(sessions)
    uid = _user(sessions, "li.ming").id
    for client in (CLIENT, STRANGER):
        for _ in range(users.MAX_FAILURES):
            _login(sessions, "li.ming", "guess", T0, client=client)
    assert _login(sessions, "li.ming", PASSWORD, T0).outcome is LoginOutcome.LOCKED
    assert locks.unlock(uid) == 2
    assert _login(sessions, "li.ming", PASSWORD, T0).ok
    assert _login(sessions, "li.ming", PASSWORD, T0, client=STRANGER).ok


def test_disabled_users_are_refused(sessions: sessionmaker[Session]) -> None:
    _add(sessions)
    with transaction(sessions) as s:
        user = users.require_user(s, "li.ming")
        _, token = users.issue_token(s, user, now=T0)
        assert users.disable_user(s, user) == 1
    assert _login(sessions, "li.ming", PASSWORD, T0).outcome is LoginOutcome.DISABLED
    assert _login(sessions, "li.ming", "guess", T0).outcome is LoginOutcome.BAD_CREDENTIALS
    with transaction(sessions) as s:
        assert users.verify_token(s, token, now=T0) is None
        with pytest.raises(UserError, match="disabled"):
            users.issue_token(s, users.require_user(s, "li.ming"), now=T0)


# -- tokens -----------------------------------------------------------------------------
def _issue(sessions: sessionmaker[Session], username: str, **kw: object) -> str:
    with transaction(sessions) as s:
        _, plaintext = users.issue_token(s, users.require_user(s, username), now=T0, **kw)  # type: ignore[arg-type]
    return plaintext


def _check(sessions: sessionmaker[Session], plaintext: str, now: datetime) -> ApiToken | None:
    with transaction(sessions) as s:
        token = users.verify_token(s, plaintext, now=now)
        if token is not None:
            assert token.user.username  # loaded while the session is open
        return token


def test_tokens_are_stored_as_hashes_and_verify(sessions: sessionmaker[Session]) -> None:
    _add(sessions, "wall-1", "display", password=None)
    plaintext = _issue(sessions, "wall-1", name="大厅主屏")
    assert plaintext.startswith("gh_") and len(plaintext) >= 40
    with sessions() as s:
        row = s.scalars(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        assert plaintext not in (row.token_hash, row.name)
        assert row.expires_at is None and row.name == "大厅主屏"
    token = _check(sessions, plaintext, T0 + timedelta(seconds=1))
    assert token is not None and token.user.username == "wall-1" and token.user.role == "display"
    for forged in [plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"), "", "gh_", "x" * 500,
                   row.token_hash]:
        assert _check(sessions, forged, T0) is None
    # Tokens are unique per issue.
    assert _issue(sessions, "wall-1") != plaintext


def test_revoked_tokens_are_refused(sessions: sessionmaker[Session]) -> None:
    _add(sessions, "wall-1", "display", password=None)
    keep = _issue(sessions, "wall-1", name="keep")
    drop = _issue(sessions, "wall-1", name="drop")
    with transaction(sessions) as s:
        token = users.verify_token(s, drop, now=T0)
        assert token is not None
        users.revoke_token(s, token)
    assert _check(sessions, drop, T0) is None
    assert _check(sessions, keep, T0) is not None
    with transaction(sessions) as s:
        assert users.revoke_tokens(s, users.require_user(s, "wall-1")) == 1
    assert _check(sessions, keep, T0) is None


def test_token_expiry(sessions: sessionmaker[Session]) -> None:
    _add(sessions)
    short = _issue(sessions, "li.ming", expires_days=1)
    default = _issue(sessions, "li.ming")
    assert _check(sessions, short, T0 + timedelta(hours=23, minutes=59)) is not None
    assert _check(sessions, short, T0 + timedelta(days=1)) is None
    # People's tokens expire after DEFAULT_TOKEN_DAYS even while in use.
    for day in range(0, users.DEFAULT_TOKEN_DAYS, 20):
        assert _check(sessions, default, T0 + timedelta(days=day)) is not None
    assert _check(sessions, default, T0 + timedelta(days=users.DEFAULT_TOKEN_DAYS)) is None
    with transaction(sessions) as s:
        user = users.require_user(s, "li.ming")
        for bad in (0, -1, users.MAX_TOKEN_DAYS + 1):
            with pytest.raises(UserError, match="expiry"):
                users.issue_token(s, user, expires_days=bad, now=T0)


def test_display_tokens_live_while_in_use_and_lapse_when_idle(sessions: sessionmaker[Session]) -> None:
    _add(sessions, "wall-1", "display", password=None)
    used = _issue(sessions, "wall-1", name="used")
    idle = _issue(sessions, "wall-1", name="idle")
    for day in range(0, 400, 20):  # a wall that is on keeps its token for good
        assert _check(sessions, used, T0 + timedelta(days=day)) is not None
    assert _check(sessions, idle, T0 + users.TOKEN_IDLE_LIFETIME - timedelta(seconds=1)) is not None
    later = T0 + users.TOKEN_IDLE_LIFETIME - timedelta(seconds=1) + users.TOKEN_IDLE_LIFETIME
    assert _check(sessions, idle, later) is None


def test_token_use_is_recorded_at_most_every_ten_minutes(sessions: sessionmaker[Session]) -> None:
    _add(sessions, "wall-1", "display", password=None)
    plaintext = _issue(sessions, "wall-1")
    seen = []
    for seconds in (0, 0.5, 300, 599, 600, 601, 1200):
        token = _check(sessions, plaintext, T0 + timedelta(seconds=seconds))
        assert token is not None
        seen.append((token.last_used_at - T0).total_seconds())  # type: ignore[operator]
    assert seen == [0, 0, 0, 0, 600, 600, 1200]


# -- the command line -------------------------------------------------------------------
@pytest.fixture
def run_cli(settings, engine):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"GRIDHALL_DATABASE_URL": settings.effective_database_url,
           "GRIDHALL_DATA_DIR": str(settings.data_dir), "COLUMNS": "200",
           "GRIDHALL_REDIS_PREFIX": settings.redis_prefix, "GRIDHALL_REDIS_URL": settings.redis_url}

    def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]  # noqa: A002
        return runner.invoke(cli.app, ["users", *args], input=input, env=env)

    return run


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def test_cli_add_list_disable(run_cli, sessions: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    _regions(sessions)
    added = run_cli("add", "zhang.wei", "--role", "shift_lead", "--scope", "990101001",
                    "--name", "张伟", "--password-stdin", input=PASSWORD + "\n")
    assert added.exit_code == 0, added.stdout + added.stderr
    assert "zhang.wei" in added.stdout and "值班长" in added.stdout and "江东街道" in added.stdout
    assert _login(sessions, "zhang.wei", PASSWORD, T0).ok
    assert run_cli("add", "wall-1", "--role", "display").exit_code == 0
    assert _user(sessions, "wall-1").password_hash is None

    listed = run_cli("list", "--format", "table")
    assert listed.exit_code == 0, listed.stdout + listed.stderr
    for text in ["zhang.wei", "张伟", "值班长", "江东街道", "wall-1", "大屏", "全市"]:
        assert text in listed.stdout, text

    disabled = run_cli("disable", "zhang.wei")
    assert disabled.exit_code == 0 and "disabled" in disabled.stdout
    assert _user(sessions, "zhang.wei").disabled
    assert "yes" in run_cli("list", "--format", "table").stdout


def test_cli_prompts_twice_on_a_terminal(run_cli, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                         sessions: sessionmaker[Session]) -> None:
    monkeypatch.setattr(cli.users, "_stdin_is_tty", lambda: True)
    result = run_cli("add", "boss", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert _login(sessions, "boss", PASSWORD, T0).ok
    monkeypatch.setattr(cli.users, "_stdin_is_tty", lambda: False)
    piped = run_cli("add", "boss2", "--role", "admin", input=f"{PASSWORD}\n")
    assert "--password-stdin" in _one_error_line(piped)


def test_cli_token_prints_a_working_token_once(run_cli, sessions: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("add", "wall-1", "--role", "display").exit_code == 0
    result = run_cli("token", "wall-1", "--name", "大厅主屏")
    assert result.exit_code == 0, result.stdout + result.stderr
    plaintext = result.stdout.strip()
    assert plaintext.startswith("gh_") and "\n" not in plaintext
    assert "no expiry while in use" in result.stderr
    token = _check(sessions, plaintext, datetime.now(UTC))
    assert token is not None and token.name == "大厅主屏" and token.user.username == "wall-1"

    assert run_cli("add", "li", "--role", "leader", "--password-stdin", input=PASSWORD).exit_code == 0
    result = run_cli("token", "li", "--expires-days", "7")
    assert result.exit_code == 0 and "expires" in result.stderr
    with sessions() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.name == "token")).one()
        assert row.expires_at is not None
        assert timedelta(days=6, hours=23) < row.expires_at - row.created_at <= timedelta(days=7)


def test_cli_errors_are_one_line(run_cli, sessions: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    _regions(sessions)
    assert "unknown role 'boss'" in _one_error_line(run_cli("add", "x1", "--role", "boss"))
    assert "990199" in _one_error_line(
        run_cli("add", "x1", "--role", "leader", "--scope", "990199", "--password-stdin", input=PASSWORD))
    assert "no user 'ghost'" in _one_error_line(run_cli("disable", "ghost"))
    assert "no user 'ghost'" in _one_error_line(run_cli("token", "ghost"))
    assert "token only" in _one_error_line(
        run_cli("add", "wall", "--role", "display", "--password-stdin", input=PASSWORD))
    assert "too short" in _one_error_line(
        run_cli("add", "x1", "--role", "leader", "--password-stdin", input="short\n"))
    with sessions() as s:
        assert users.list_users(s) == []


def test_cli_unlock_lifts_every_clients_lock(run_cli, sessions: sessionmaker[Session],  # type: ignore[no-untyped-def]
                                            locks: SigninLocks) -> None:
    """Issue 12 point 11: an admin can unlock a locked account (`gridhall users unlock`)."""
    _add(sessions)
    now = datetime.now(UTC)
    for client in (CLIENT, STRANGER):
        for _ in range(users.MAX_FAILURES):
            _login(sessions, "li.ming", "guess", now, client=client)
    assert _login(sessions, "li.ming", PASSWORD, now).outcome is LoginOutcome.LOCKED
    result = run_cli("unlock", "li.ming")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "unlocked" in result.stdout and "2 client address(es)" in result.stdout
    assert _login(sessions, "li.ming", PASSWORD, now).ok
    assert _login(sessions, "li.ming", PASSWORD, now, client=STRANGER).ok
    # The lock history went too: one wrong try afterwards does not lock again.
    assert _login(sessions, "li.ming", "guess", now).outcome is LoginOutcome.BAD_CREDENTIALS
    assert "no user 'ghost'" in _one_error_line(run_cli("unlock", "ghost"))


def test_cli_passwd_reads_a_piped_line_ends_sessions_and_lifts_locks(  # type: ignore[no-untyped-def]
        run_cli, sessions: sessionmaker[Session], locks: SigninLocks, redis_client, settings) -> None:
    """Issue 12 points 10–11: `gridhall users passwd` (stdin when piped) revokes every session."""
    _add(sessions)
    uid = _user(sessions, "li.ming").id
    store = SessionStore(redis_client, settings)
    sids = [store.create(uid, timedelta(hours=1)) for _ in range(2)]
    now = datetime.now(UTC)
    for _ in range(users.MAX_FAILURES):
        _login(sessions, "li.ming", "guess", now)
    result = run_cli("passwd", "li.ming", input="a brand new secret\n")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "password of li.ming changed; 2 session(s) ended" in result.stdout
    assert not any(store.alive(sid, uid) for sid in sids)
    assert _login(sessions, "li.ming", PASSWORD, now).outcome is LoginOutcome.BAD_CREDENTIALS
    assert _login(sessions, "li.ming", "a brand new secret", now).ok  # the lock went with it
    # Policy and user errors: one line, nothing changed.
    assert "too short" in _one_error_line(run_cli("passwd", "li.ming", input="short\n"))
    assert "no password on standard input" in _one_error_line(run_cli("passwd", "li.ming", input=""))
    assert "no user 'ghost'" in _one_error_line(run_cli("passwd", "ghost", input=PASSWORD))
    _add(sessions, "wall-1", "display", password=None)
    assert "token only" in _one_error_line(run_cli("passwd", "wall-1", input=PASSWORD))
    # Never on the command line: there is no argument for it.
    assert run_cli("passwd", "li.ming", "a brand new secret").exit_code == 2


def test_cli_passwd_asks_twice_on_a_terminal(run_cli, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                             sessions: sessionmaker[Session]) -> None:
    _add(sessions)
    monkeypatch.setattr(cli.users, "_stdin_is_tty", lambda: True)
    mismatch = run_cli("passwd", "li.ming", input="a brand new secret\nanother new secret\n")
    assert mismatch.exit_code != 0
    assert _login(sessions, "li.ming", PASSWORD, T0).ok  # unchanged
    result = run_cli("passwd", "li.ming", input="a brand new secret\na brand new secret\n")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "a brand new secret" not in result.stdout  # hidden input
    assert _login(sessions, "li.ming", "a brand new secret", T0).ok


def test_cli_disable_ends_the_users_sessions(run_cli, sessions: sessionmaker[Session],  # type: ignore[no-untyped-def]
                                            redis_client, settings) -> None:
    _add(sessions)
    uid = _user(sessions, "li.ming").id
    store = SessionStore(redis_client, settings)
    sid = store.create(uid, timedelta(hours=1))
    result = run_cli("disable", "li.ming")
    assert result.exit_code == 0 and "1 session(s) ended" in result.stdout, result.stdout + result.stderr
    assert not store.alive(sid, uid)


def test_a_wall_session_is_extended_and_a_revoked_one_stays_gone(redis_client: Any, settings: Any) -> None:
    """SessionStore.touch on the Redis in use (the embedded one is 6.2: no EXPIRE … XX)."""
    store = SessionStore(redis_client, settings)
    sid = store.create(7, timedelta(seconds=60))
    store.touch(sid, 7, timedelta(days=30))
    assert redis_client.ttl(settings.key(session_key(sid))) > 29 * 24 * 3600
    assert store.alive(sid, 7)
    store.revoke(sid, 7)
    store.touch(sid, 7, timedelta(days=30))  # a late renewal does not bring it back
    assert not store.alive(sid, 7)
    assert redis_client.exists(settings.key(session_key(sid))) == 0
