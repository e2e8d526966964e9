"""Alembic environment: runs gridhall's migrations against the configured database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from dashboard.settings import load_settings
from dashboard.store.db import make_engine
from dashboard.store.history import is_partition_name
from dashboard.store.models import Base

config = context.config
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate compares the model's tables: a partition of case_events is none of them."""
    return not (type_ == "table" and is_partition_name(name))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables the same way on both.
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    settings = config.attributes.get("settings") or load_settings()
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("gridhall runs migrations online only: use 'gridhall db upgrade'")
run_migrations_online()
