"""``gridhall open311``: Open311 client apps' API keys and the GeoReport Bulk export (docs/open311.md)."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.common import cli_settings, console, fail, format_option, load_classification, output_format, require_backends
from dashboard.output.tabular import Column, emit
from dashboard.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

open311_app = typer.Typer(help="Open311 GeoReport v2: client API keys and the Bulk export (docs/open311.md).",
                          no_args_is_help=True)
keys_app = typer.Typer(help="API keys of Open311 client apps (one per app, scoped like a user).",
                       no_args_is_help=True)
open311_app.add_typer(keys_app, name="keys")

BULK_PAGE = 1000


def _sessions(settings: Settings) -> sessionmaker[Session]:
    from sqlalchemy import inspect

    from dashboard.store.db import make_engine, session_factory

    require_backends(settings, redis_too=False)
    engine = make_engine(settings)
    if not inspect(engine).has_table("open311_keys"):
        fail("the database has no open311_keys table: run 'gridhall db upgrade' first", 1)
    return session_factory(engine)


@keys_app.command("add")
def keys_add(
    name: str = typer.Argument(..., help="The client app's name (unique, at most 64 characters)."),
    region: str | None = typer.Option(None, "--region", metavar="REGION_CODE",
                                      help="District (6 digits) or street (9) code; default the whole city."),
) -> None:
    """Make a key for a client app; prints the key once (only its SHA-256 is stored)."""
    from dashboard.rules.clock import utcnow
    from dashboard.store.db import transaction
    from dashboard.store.open311 import Open311Error, add_key

    settings = cli_settings()
    sessions = _sessions(settings)
    try:
        with transaction(sessions) as session:
            row, plaintext = add_key(session, name, region, utcnow())
            where = row.scope_region.name if row.scope_region else "全市"
    except Open311Error as exc:
        fail(str(exc), 1)
    console.print(f"added Open311 key {name}, scope {where}; the key (shown once):", highlight=False)
    print(plaintext)


KEY_COLUMNS = (
    Column("name", "name", flex=True),
    Column("scope", "scope"),
    Column("revoked", "revoked", show=lambda v: "yes" if v else ""),
    Column("created", "created"),
    Column("last_used", "last used"),
)


@keys_app.command("list")
def keys_list(fmt: str | None = format_option()) -> None:
    """Every key: name, scope, revoked, created, last used (never the key itself)."""
    from dashboard.store.open311 import list_keys

    shape = output_format(fmt)
    settings = cli_settings()
    sessions = _sessions(settings)
    tz = settings.tz
    with sessions() as session:
        rows = [{"name": k.name, "scope": k.scope_region.code if k.scope_region else "city",
                 "revoked": k.revoked, "created": k.created_at.astimezone(tz).isoformat(timespec="seconds"),
                 "last_used": k.last_used_at.astimezone(tz).isoformat(timespec="seconds") if k.last_used_at else ""}
                for k in list_keys(session)]
    emit(console, KEY_COLUMNS, rows, shape)


@keys_app.command("revoke")
def keys_revoke(name: str = typer.Argument(..., help="The client app's name.")) -> None:
    """Revoke a key: its next call is refused (403)."""
    from dashboard.store.db import transaction
    from dashboard.store.open311 import revoke_key

    settings = cli_settings()
    sessions = _sessions(settings)
    with transaction(sessions) as session:
        found = revoke_key(session, name)
    if not found:
        fail(f"no key named {name!r}", 1)
    console.print(f"revoked Open311 key {name}", highlight=False)


def bulk_rows(settings: Settings, sessions: sessionmaker[Session], since: datetime, until: datetime,
              region: str | None = None) -> list[dict[str, Any]]:
    """Cases reported in [since, until] in the GeoReport Bulk fields, oldest first."""
    from dashboard.store import open311 as store
    from dashboard.store.scope import get_scope

    services = store.load_services(load_classification(settings), settings.open311_services)
    out: list[dict[str, Any]] = []
    with sessions() as session:
        scope = get_scope(session, region)
        offset = 0
        while True:
            query = store.RequestQuery(start=since, end=until, limit=BULK_PAGE, offset=offset)
            page = store.find_requests(session, scope, services, query, settings.tz)
            out.extend(page)
            if len(page) < BULK_PAGE:
                break
            offset += BULK_PAGE
    out.reverse()
    return [{f: row.get(f) for f in store.BULK_FIELDS} for row in out]


def bulk_text(rows: list[dict[str, Any]], shape: str) -> str:
    from dashboard.store.open311 import BULK_FIELDS

    if shape == "json":
        return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(BULK_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell("" if v is None else str(v)) for k, v in row.items()})
    return buffer.getvalue()


def _csv_cell(text: str) -> str:
    """No spreadsheet formula from a citizen's text (=, +, -, @ at the start become text)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@open311_app.command("bulk")
def bulk(
    shape: str = typer.Option("csv", "--format", metavar="csv|json", help="csv (default) or json."),
    since: str | None = typer.Option(None, "--since", metavar="DATE",
                                     help="Reported from (ISO 8601 date or date-time); default 30 days ago."),
    until: str | None = typer.Option(None, "--until", metavar="DATE", help="Reported until; default now."),
    region: str | None = typer.Option(None, "--region", metavar="REGION_CODE", help="Only this district or street."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of standard output."),
) -> None:
    """Cases in the GeoReport Bulk format (CSV or JSON) for open-data publication."""
    from dashboard.rules.clock import utcnow

    if shape not in ("csv", "json"):
        fail("--format: csv or json", 2)
    settings = cli_settings()
    tz = settings.tz

    def when(raw: str | None, default: datetime, name: str) -> datetime:
        if raw is None:
            return default
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            fail(f"{name}: an ISO 8601 date or date-time", 2)
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)

    end = when(until, utcnow(), "--until")
    start = when(since, end - timedelta(days=30), "--since")
    sessions = _sessions(settings)
    text = bulk_text(bulk_rows(settings, sessions, start, end, region), shape)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}", highlight=False)
