"""Database engine, sessions and schema migrations (Alembic), the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, Engine, String, Text, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from dashboard.rules.text import strip_bidi
from dashboard.settings import ConfigError, Settings

if TYPE_CHECKING:  # alembic is imported when migrations run, not by every process
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every backend.

    SQLite has no time zone type, so we normalise to UTC ourselves and keep both
    backends byte-for-byte comparable.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; gridhall stores only aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class _NoBidiOnRead:
    """Producers' free text: stored as sent, read without bidi controls (``dashboard.rules.text``).

    Every read through the model — the wall, /explore, /view, exports, the API, reports —
    gets the text without the controls that would reorder what it shows; the database keeps
    the producer's bytes (the evidence), old rows included.
    """

    cache_ok = True

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else strip_bidi(value)


class FreeString(_NoBidiOnRead, TypeDecorator[str]):
    """``String(n)`` of producers' free text (an address, a case number)."""

    impl = String
    cache_ok = True


class FreeText(_NoBidiOnRead, TypeDecorator[str]):
    """``Text`` of producers' free text (a description, a note)."""

    impl = Text
    cache_ok = True


def make_engine(settings: Settings) -> Engine:
    """Create the engine for the configured URL (SQLite file made in DATA_DIR when unset)."""
    url = make_url(settings.effective_database_url)
    kwargs: dict[str, object] = {"future": True, "pool_pre_ping": True}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    elif url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        # A bare postgresql:// URL means psycopg 3, the driver we ship.
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: object) -> None:
    # WAL lets the web workers read while the ingest writes; FKs are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error."""
    with factory() as session:
        with session.begin():
            yield session


def check_database(settings: Settings) -> None:
    """Connect once; raise ConfigError naming the setting when the database is unreachable."""
    engine: Engine | None = None
    try:
        # Inside the try: a malformed URL, a missing driver or an unwritable SQLite folder
        # must also come out as one line naming the setting.
        engine = make_engine(settings)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the driver's own exception types differ per backend
        shown = _shown_url(settings.effective_database_url)
        inner = getattr(exc, "orig", None) or exc  # the driver's message, without SQLAlchemy's wrapper
        text_ = str(inner).strip()
        reason = text_.splitlines()[0] if text_ else type(inner).__name__
        raise ConfigError(f"GRIDHALL_DATABASE_URL: cannot connect to {shown}: {reason}") from None
    finally:
        if engine is not None:
            engine.dispose()


def _shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return repr(url)


# -- migrations -------------------------------------------------------------------------
def alembic_config(settings: Settings) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini interpolation would choke on '%' in URL-encoded passwords.
    cfg.set_main_option("sqlalchemy.url", settings.effective_database_url.replace("%", "%%"))
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(settings), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
