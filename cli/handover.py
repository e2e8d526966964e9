"""``gridhall handover``: a shift's handover (交接班报告) as HTML, PDF or XLSX, or the list of them."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cli.common import cli_settings, console, fail, notes_console, open_sessions, output_format, require_backends
from dashboard.output.tabular import Column, emit, is_stdio
from dashboard.rules.clock import utcnow
from dashboard.rules.shifts import LISTED
from dashboard.settings import ConfigError

HANDOVER_COLUMNS = (
    Column("shift", "班次"), Column("label", "时段", drop=2), Column("came_in", "来件"), Column("closed", "结案"),
    Column("went_overdue", "新增超期"), Column("alerts", "预警"), Column("notes", "备注", drop=3),
    Column("written_at", "生成时间", drop=1),
)


def handover(
    shift: str | None = typer.Option(
        None, "--shift", metavar="YYYY-MM-DDTHH:MM",
        help="The shift, by its start in city time (e.g. 2026-11-20T08:00); without it: the list of handovers.",
    ),
    fmt: str | None = typer.Option(
        None, "--format", metavar="html|pdf|xlsx  or  table|tsv|json",
        help="With --shift: html (default), pdf or xlsx. Without: table (default on a terminal), tsv "
             "(default when piped) or json.",
    ),
    out: Path | None = typer.Option(
        None, "--out", dir_okay=False,
        help="With --shift: the file to write (default handover-<shift>.<format> here); '-' for standard output.",
    ),
    limit: int = typer.Option(LISTED, "--limit", min=1, help="Without --shift: how many shifts, newest first."),
) -> None:
    """A shift's handover report (交接班报告), written once when the shift ended; or the list of past ones."""
    from dashboard.store.handovers import list_handovers

    settings = cli_settings()
    if shift is None:
        if out is not None:
            fail("--out: only with --shift (the list prints to standard output)", 2)
        shape = output_format(fmt)
        require_backends(settings, redis_too=False)
        with open_sessions(settings)() as session:
            entries = list_handovers(session, settings.tz, limit)
        tz = settings.tz
        rows = [{"shift": e.key, "label": e.label, "came_in": e.came_in, "closed": e.closed,
                 "went_overdue": e.went_overdue, "alerts": e.alerts, "notes": "有" if e.has_notes else None,
                 "written_at": e.written_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if e.written_at else None}
                for e in entries]
        emit(console, HANDOVER_COLUMNS, rows, shape, title="交接班报告")
        notes_console(shape).print(f"{len(rows)} shift(s); unwritten ones (—) have not ended yet or have only "
                                   "notes", highlight=False)
        return
    _one(settings, shift, (fmt or "html").strip().lower(), out)


def _one(settings: object, key: str, fmt: str, out: Path | None) -> None:
    from dashboard.figures.handover import write_handover
    from dashboard.output.handover import FORMATS, filename, render
    from dashboard.output.pdf import PdfUnavailable
    from dashboard.settings import Settings
    from dashboard.store.cityname import city_name
    from dashboard.store.reference import timing_for

    assert isinstance(settings, Settings)
    if fmt not in FORMATS:
        fail(f"--format: with --shift one of {', '.join(FORMATS)}, not {fmt!r}", 2)
    try:
        chosen = settings.shift_plan.named(key)
    except ValueError as exc:
        fail(f"--shift: {exc}", 2)
    now = utcnow()
    if chosen.end > now:
        fail(f"--shift: {chosen.label} has not ended yet (its handover is written when it ends)", 1)
    require_backends(settings, redis_too=False)
    with open_sessions(settings)() as session:
        try:
            timing = timing_for(settings, session)
        except ConfigError as exc:
            fail(str(exc), 1)
        # The stored report; written now (once, as housekeeping would) if the boundary pass has not run.
        content, _ = write_handover(session, timing, chosen, city_name=city_name(settings, session), now=now)
        session.commit()
    try:
        data = render(content, fmt)
    except PdfUnavailable as exc:
        fail(f"no PDF: {exc} (--format html or xlsx work without it)", 3)
    if is_stdio(out):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = out if out is not None else Path(filename(content, fmt))
    path.write_bytes(data)
    console.print(str(path), highlight=False, soft_wrap=True)
