"""``gridhall db``: the database schema (Alembic migrations)."""

from __future__ import annotations

import typer

from cli.common import cli_settings, console, load_classification, open_sessions, require_backends
from dashboard.settings import Settings

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the schema to REVISION (default: the newest) and load the classification."""
    settings = cli_settings()
    require_backends(settings, redis_too=False)
    upgrade_schema(settings)
    console.print(f"database at revision [bold]{revision}[/]")


def upgrade_schema(settings: Settings) -> None:
    """Migrate the database to the newest schema (Alembic head)."""
    from dashboard.store import db
    from dashboard.store.reference import sync_classification

    db.upgrade(settings)
    classification = load_classification(settings)
    with db.transaction(open_sessions(settings)) as session:
        sync_classification(session, classification)


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. 'base' to drop everything.")) -> None:
    """Migrate the schema down to REVISION."""
    from dashboard.store import db

    settings = cli_settings()
    require_backends(settings, redis_too=False)
    db.downgrade(settings, revision)
    console.print(f"database at revision [bold]{revision}[/]")
