"""``gridhall report``: the monthly 综合考评通报 (XLSX, printable HTML, PDF)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import cli_settings, console, fail, open_sessions, require_backends
from dashboard.output.tabular import is_stdio
from dashboard.rules.clock import utcnow


def report(
    month: str = typer.Option(..., "--month", metavar="YYYY-MM", help="The month to report on, e.g. 2026-10."),
    scope: str | None = typer.Option(
        None, "--scope", metavar="REGION_CODE",
        help="A district's or street's code (default: the whole city).",
    ),
    out: Path = typer.Option(
        Path("."), "--out", file_okay=False,
        help="Folder to write into (created if missing; default: the current one); not '-': the report is several "
             "files.",
    ),
    pdf: bool = typer.Option(False, "--pdf", help="Also print the HTML to PDF with headless Chromium."),
) -> None:
    """The monthly 综合考评通报: XLSX (a sheet per object kind) and a printable HTML page (and PDF)."""
    import re

    from dashboard.figures.evaluation import Period
    from dashboard.output.report import build_report, write_report
    from dashboard.rules.evalspec import WeightsError, weights_from_settings
    from dashboard.store.archive import PeriodArchived
    from dashboard.store.cityname import city_name
    from dashboard.store.scope import ScopeError, get_scope

    settings = cli_settings()
    if not re.fullmatch(r"\d{4}-\d{2}", month.strip()):
        fail(f"--month: expected YYYY-MM, e.g. 2026-10, not {month!r}", 1)
    try:
        period = Period.parse(month, settings.tz)
    except ValueError as exc:
        fail(f"--month: {month!r} is not a month ({exc})", 1)
    now = utcnow()
    if period.start > now:
        fail(f"--month: {period.label} has not begun yet", 1)
    if is_stdio(out):
        fail("--out: '-' (standard output) cannot hold the report's XLSX and HTML files; give a folder", 1)
    try:
        weights = weights_from_settings(settings)
    except WeightsError as exc:
        fail(f"GRIDHALL_EVALUATION_WEIGHTS: {exc}", 1)
    require_backends(settings, redis_too=False)
    sessions = open_sessions(settings)
    with sessions() as session:
        try:
            region = get_scope(session, scope) if scope is not None else get_scope(session, None)
        except ScopeError:
            fail(f"--scope: no region with code {scope!r}", 1)
        try:
            with console.status(f"evaluating {period.label}…"):
                built = build_report(session, region, period, weights, city_name=city_name(settings, session),
                                     tz=settings.tz, now=now)
        except PeriodArchived as exc:  # its closed cases were moved by gridhall archive
            fail(f"--month: {exc}", 1)
    paths, no_pdf = write_report(built, out, pdf=pdf)
    for path in paths:
        console.print(str(path), highlight=False, soft_wrap=True)
    if no_pdf:
        fail(f"no PDF written: {no_pdf} (the XLSX and HTML above are complete)", 3)
