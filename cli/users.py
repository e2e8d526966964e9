"""``gridhall users``: users, roles, region scopes and API tokens (docs/security.md)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from cli.common import cli_settings, console, err, fail, format_option, output_format, require_backends
from dashboard.output.tabular import Column, Format, emit
from dashboard.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

users_app = typer.Typer(help="Users, roles, region scopes and API tokens (docs/security.md).",
                        no_args_is_help=True)


def _users_sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on a database that has the users table (else one line: run db upgrade)."""
    from sqlalchemy import inspect

    from dashboard.store.db import make_engine, session_factory

    require_backends(settings, redis_too=False)
    engine = make_engine(settings)
    if not inspect(engine).has_table("users"):
        fail("the database has no users table: run 'gridhall db upgrade' first", 1)
    return session_factory(engine)


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            fail("no password on standard input (its first line is the password)", 1)
        return password.removesuffix("\r")
    if not _stdin_is_tty():
        fail("no terminal to ask for the password: pipe it in with --password-stdin", 1)
    typed: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return typed


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Sign-in name: a–z, 0–9, '.', '_', '@', '-'."),
    role: str = typer.Option(..., "--role", help="display, leader, shift_lead or admin."),
    scope: str | None = typer.Option(
        None, "--scope", metavar="REGION_CODE",
        help="District (6 digits) or street (9) code; default the whole city.",
    ),
    name: str | None = typer.Option(None, "--name", help="Display name (显示名); default the username."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin",
        help="Read the password from the first line of standard input.",
    ),
) -> None:
    """Add a user. Asks for the password twice (display users get none: they use a token)."""
    from dashboard.store.db import transaction
    from dashboard.store.users import (
        UserError,
        UserRole,
        check_new_user,
        check_password_policy,
        create_user,
        parse_role,
    )

    settings = cli_settings()
    try:
        parsed = parse_role(role)
    except UserError as exc:
        fail(str(exc), 1)
    if parsed is UserRole.DISPLAY and password_stdin:
        fail("display users sign in by token only: no --password-stdin ('gridhall users token' makes one)", 1)
    sessions = _users_sessions(settings)
    try:
        with sessions() as session:  # name, scope and uniqueness first: then ask for a password
            check_new_user(session, username, parsed, scope=scope)
    except UserError as exc:
        fail(str(exc), 1)
    password = None if parsed is UserRole.DISPLAY else _read_password(password_stdin)
    if password is not None:
        try:
            check_password_policy(password)
        except UserError as exc:
            fail(str(exc), 1)
    try:
        with transaction(sessions) as session:
            user = create_user(session, username, parsed, display_name=name, scope=scope, password=password)
            where = user.scope_region.name if user.scope_region else "全市"
            shown = f"{user.username} ({user.display_name}), {parsed.label}, scope {where}"
    except UserError as exc:
        fail(str(exc), 1)
    console.print(f"added user {shown}", highlight=False)
    if parsed is UserRole.DISPLAY:
        console.print(f"make its token with: gridhall users token {username}", highlight=False)


USER_COLUMNS = (
    Column("username", "username"),
    Column("name", "name", flex=True),
    Column("role", "role", show=lambda code: _role_label(code)),
    Column("scope", "scope", flex=True),
    Column("disabled", "disabled", show=lambda v: "yes" if v else ""),
    Column("last_login", "last login", drop=1),
)


def _role_label(code: str) -> str:
    """The Chinese label of a role code (an unknown code as it is)."""
    from dashboard.store.users import UserRole

    return UserRole(code).label if code in UserRole.labels() else code


@users_app.command("list")
def users_list(fmt: str | None = format_option()) -> None:
    """Every user: username, name, role, scope, disabled, last sign-in."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from dashboard.store.models import User

    shape = output_format(fmt)
    settings = cli_settings()
    sessions = _users_sessions(settings)
    table = shape is Format.TABLE
    with sessions() as session:
        users = list(session.scalars(select(User).options(selectinload(User.scope_region))
                                     .order_by(User.username)))
        rows = []
        for u in users:
            scope = f"{u.scope_region.name} {u.scope_region.code}" if u.scope_region else "全市"
            last = u.last_login_at.astimezone(settings.tz) if u.last_login_at else None
            rows.append({"username": u.username, "name": u.display_name,
                         "role": u.role, "scope": scope, "disabled": bool(u.disabled),
                         "last_login": (last.strftime("%Y-%m-%d %H:%M") if table else last.isoformat())
                         if last else None})
    if not rows and table:
        console.print("no users yet: add one with 'gridhall users add USERNAME --role admin'")
        return
    emit(console, USER_COLUMNS, rows, shape, title=f"{len(rows)} user(s)",
         row_styles=["dim" if row["disabled"] else None for row in rows])


@users_app.command("disable")
def users_disable(username: str = typer.Argument(..., help="The user to disable.")) -> None:
    """Disable a user, revoke all their tokens and end their sessions."""
    from dashboard.store.db import transaction
    from dashboard.store.users import UserError, disable_user, require_user

    settings = cli_settings()
    sessions = _users_sessions(settings)
    try:
        with transaction(sessions) as session:
            user = require_user(session, username)
            was = user.disabled
            revoked = disable_user(session, user)
            user_id = user.id
    except UserError as exc:
        fail(str(exc), 1)
    state = "was already disabled" if was else "disabled"
    console.print(f"user {username} {state}; {revoked} token(s) revoked; {_end_sessions(settings, user_id)}",
                  highlight=False)


def _end_sessions(settings: Settings, user_id: int, *, unlock: bool = False) -> str:
    """Revoke the user's session records in Redis (and clear sign-in locks); says what happened.

    Without Redis the database check still ends the sessions within 5 s (docs/security.md).
    """
    from feeds.connection import connect
    from feeds.sessionstore import SessionStore
    from feeds.signinlocks import SigninLocks

    try:
        client = connect(settings)
        ended = SessionStore(client, settings).revoke_user(user_id)
        if unlock:
            SigninLocks(client, settings).unlock(user_id)
    except Exception as exc:  # any Redis failure: say so, the database change stands
        err.print("[yellow]warning:[/] Redis unreachable "
                  f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): "
                  "sessions end within 5 s by the database check" + ("; sign-in locks not cleared" if unlock else ""),
                  highlight=False)
        return "sessions end within 5 s"
    return f"{ended} session(s) ended"


@users_app.command("unlock")
def users_unlock(username: str = typer.Argument(..., help="The user whose sign-in locks to lift.")) -> None:
    """Lift USERNAME's sign-in locks and failure counts, from every client address."""
    from dashboard.store.users import UserError, require_user
    from feeds.connection import connect
    from feeds.signinlocks import SigninLocks

    settings = cli_settings()
    sessions = _users_sessions(settings)
    try:
        with sessions() as session:
            user_id = require_user(session, username).id
    except UserError as exc:
        fail(str(exc), 1)
    require_backends(settings)  # the locks live in Redis
    cleared = SigninLocks(connect(settings), settings).unlock(user_id)
    console.print(f"user {username} unlocked; failures cleared for {cleared} client address(es)", highlight=False)


@users_app.command("passwd")
def users_passwd(username: str = typer.Argument(..., help="The user who gets a new password.")) -> None:
    """Set USERNAME's password: asked twice on a terminal, else the first line of standard input.

    Ends the user's sessions everywhere and lifts their sign-in locks.
    """
    from dashboard.store.db import transaction
    from dashboard.store.users import UserError, UserRole, check_password_policy, require_user, set_password

    settings = cli_settings()
    sessions = _users_sessions(settings)
    try:
        with sessions() as session:  # who first: then ask for the password
            if require_user(session, username).role == UserRole.DISPLAY.value:
                raise UserError("display users sign in by token only; they get no password")
    except UserError as exc:
        fail(str(exc), 1)
    password = _read_password(password_stdin=not _stdin_is_tty())
    try:
        check_password_policy(password)
        with transaction(sessions) as session:
            user = require_user(session, username)
            set_password(session, user, password)
            user_id = user.id
    except UserError as exc:
        fail(str(exc), 1)
    console.print(f"password of {username} changed; {_end_sessions(settings, user_id, unlock=True)}",
                  highlight=False)


@users_app.command("token")
def users_token(
    username: str = typer.Argument(..., help="The user the token signs in as."),
    name: str = typer.Option("token", "--name", help="What the token is for, e.g. the wall screen's place."),
    expires_days: int | None = typer.Option(
        None, "--expires-days",
        help="Days until it expires (1–365; default: never for display users while in use, 90 for others).",
    ),
) -> None:
    """Make an API token for USERNAME and print it once (only its hash is stored)."""
    from dashboard.store.db import transaction
    from dashboard.store.users import TOKEN_IDLE_LIFETIME, UserError, issue_token, require_user

    settings = cli_settings()
    sessions = _users_sessions(settings)
    try:
        with transaction(sessions) as session:
            user = require_user(session, username)
            token, plaintext = issue_token(session, user, name=name, expires_days=expires_days)
            expires = token.expires_at
    except UserError as exc:
        fail(str(exc), 1)
    if expires is None:
        lifetime = f"no expiry while in use (lapses after {TOKEN_IDLE_LIFETIME.days} days unused)"
    else:
        lifetime = f"expires {expires.astimezone(settings.tz).strftime('%Y-%m-%d %H:%M %Z')}"
    err.print(f"token {name!r} for {username}, {lifetime}; it is shown only now:", highlight=False)
    print(plaintext)
