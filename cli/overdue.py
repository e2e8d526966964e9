"""``gridhall overdue``: overdue (超期) and due-soon (临期) cases as of an instant, as a table,
TSV, JSON or CSV."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.common import (
    cli_settings,
    console,
    err,
    fail,
    format_option,
    load_classification,
    notes_console,
    open_sessions,
    output_format,
    require_backends,
)
from dashboard.output.tabular import Column, Format, emit, is_stdio, open_text_output
from dashboard.rules.clock import utcnow
from dashboard.settings import ConfigError

if TYPE_CHECKING:
    from datetime import tzinfo

    from dashboard.figures.overdue import OverdueRow


OVERDUE_COLUMNS = ("案件编号", "case_id", "类别", "网格", "责任单位", "当前阶段", "状态", "期限", "来源",
                   "超期(工作时)", "超期(自然时)", "剩余")
# The same columns for --format: stable keys for TSV and JSON; on a narrow terminal the
# table leaves out case_id, 网格 and 来源 first (the CSV, TSV and JSON always have all).
OVERDUE_TABLE = tuple(
    Column(key, title, flex=key in ("class", "unit"),
           drop={"source": 3, "grid": 2, "case_id": 1}.get(key, 0))
    for key, title in zip(("number", "case_id", "class", "grid", "unit", "stage", "status", "deadline", "source",
                           "overdue_working", "overdue_calendar", "remaining"), OVERDUE_COLUMNS, strict=False)
)


def _parse_at(text: str | None, tz: tzinfo) -> datetime:
    if text is None or text.strip().lower() == "now":
        return utcnow()
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO date/time: {text!r} (e.g. 2026-11-30T08:00 or 2026-11-30T08:00+08:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _overdue_cells(row: OverdueRow, tz: tzinfo) -> list[str]:
    from dashboard.rules.deadlines import hmm

    remaining = "" if row.overdue else hmm(row.remaining_minutes) + ("" if row.working else " 自然时")
    return [
        row.number or "", row.case_id, row.class_name, row.grid_code, row.unit_name, row.stage_label,
        row.status_label, row.deadline_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"), row.deadline_source,
        hmm(row.overdue_work_minutes) if row.overdue else "", hmm(row.overdue_calendar_minutes) if row.overdue else "",
        remaining,
    ]


def overdue(
    at: str | None = typer.Option(
        None, "--at",
        help="Instant T: ISO date/time, city time when it has no offset (default: now).",
    ),
    csv_file: Path | None = typer.Option(
        None, "--csv", dir_okay=False,
        help="Also write the rows to FILE (UTF-8 with BOM, opens in Excel); '-' for standard output.",
    ),
    due_soon: bool = typer.Option(True, "--due-soon/--no-due-soon", help="Also list the cases due soon (临期)."),
    fmt: str | None = format_option(),
) -> None:
    """Overdue (超期) and due-soon (临期) cases as of T, recomputed from the case events up to T."""
    import csv

    from dashboard.figures.overdue import overdue_as_of
    from dashboard.store.reference import timing_for

    shape = output_format(fmt)
    settings = cli_settings()
    tz = settings.tz
    try:
        when = _parse_at(at, tz)
    except ValueError as exc:
        fail(f"--at: {exc}", 2)
    require_backends(settings, redis_too=False)
    load_classification(settings)  # a bad GRIDHALL_CLASSIFICATION: one line, not a traceback
    sessions = open_sessions(settings)
    with sessions() as session:
        try:
            timing = timing_for(settings, session)
        except ConfigError as exc:  # a bad GRIDHALL_LIMITS_FILE or GRIDHALL_HOLIDAY_FILE
            fail(str(exc), 1)
        rows = overdue_as_of(session, timing, when, due_soon=due_soon)
    cells = [_overdue_cells(r, tz) for r in rows]
    late = sum(1 for r in rows if r.overdue)
    shown = when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    csv_to_stdout = is_stdio(csv_file)
    # With --csv - standard output is the CSV's: the rest goes to standard error.
    notes = err if csv_to_stdout else notes_console(shape)
    if not csv_to_stdout and (cells or shape is not Format.TABLE):
        table = [{c.key: v or None for c, v in zip(OVERDUE_TABLE, line, strict=False)} for line in cells]
        emit(console, OVERDUE_TABLE, table, shape,
             title=f"as of {shown}", row_styles=[None if r.overdue else "yellow" for r in rows])
    summary = f"as of {shown}: {late} overdue" + (f", {len(rows) - late} due soon" if due_soon else "")
    notes.print(summary, highlight=False)
    if csv_file is not None:
        with open_text_output(csv_file, bom=True) as fh:
            writer = csv.writer(fh)
            writer.writerow(OVERDUE_COLUMNS)
            writer.writerows(cells)
        if not csv_to_stdout:
            notes.print(f"wrote {len(cells)} row(s) to {csv_file}", highlight=False)
