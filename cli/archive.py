"""``gridhall archive --before YYYY-MM``: cases closed before a month, with their events, to the archive."""

from __future__ import annotations

import typer

from cli.common import cli_settings, console, fail, format_option, notes_console, output_format, require_backends
from dashboard.output.tabular import Column, emit

ARCHIVE_TABLE = (
    Column("month", "结案月份"),
    Column("cases", "案件"),
    Column("events", "事件"),
    Column("alerts", "告警"),
)


def archive(
    before: str = typer.Option(..., "--before", metavar="YYYY-MM",
                               help="Archive the cases closed before this month (city time); open cases stay."),
    fmt: str | None = format_option(),
) -> None:
    """Move cases closed before a month, with their events and alerts, to the archive (idempotent)."""
    from dashboard.store.archive import archive_before, parse_month
    from dashboard.store.db import make_engine

    shape = output_format(fmt)
    try:
        year, month = parse_month(before)
    except ValueError as exc:
        fail(f"--before: {exc}", 2)
    settings = cli_settings()
    require_backends(settings, redis_too=False)
    engine = make_engine(settings)
    try:
        result = archive_before(engine, settings, year, month)
    except ValueError as exc:
        fail(f"--before: {exc}", 1)
    finally:
        engine.dispose()
    rows = [{"month": m.month, "cases": m.cases, "events": m.events, "alerts": m.alerts} for m in result.months]
    emit(console, ARCHIVE_TABLE, rows, shape, title=f"archived before {result.before} → {result.where}")
    notes_console(shape).print(f"archived {result.cases} case(s) and {result.events} event(s) closed before "
                               f"{result.before} to {result.where}", highlight=False)
