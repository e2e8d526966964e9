"""``gridhall risk train / show``: the overdue-risk model (超期风险) trained and stored, its versions listed
(docs/foresight.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import typer

from cli.common import (
    cli_settings,
    console,
    fail,
    format_option,
    notes_console,
    open_sessions,
    output_format,
    require_backends,
)
from dashboard.output.tabular import Column, emit
from dashboard.rules.clock import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from dashboard.settings import Settings

risk_app = typer.Typer(help="The overdue-risk model (超期风险): train it, list its versions.", no_args_is_help=True)

RISK_COLUMNS = (
    Column("version", "版本"), Column("trained_at", "训练时间"), Column("period", "学习的案件(上报)", drop=2),
    Column("cases", "案件数"), Column("auc", "AUC"), Column("baseline_auc", "基线AUC"), Column("brier", "Brier"),
    Column("positive", "超期占比", drop=1),
)


def _sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on a database with the risk_models table (else one line: run db upgrade)."""
    from sqlalchemy import inspect

    sessions = open_sessions(settings)
    with sessions() as session:
        if not inspect(session.get_bind()).has_table("risk_models"):
            fail("the database has no risk_models table: run 'gridhall db upgrade' first", 1)
    return sessions


def _fmt(value: float | None, digits: int = 3) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


@risk_app.command("train")
def train_cmd(
    days: int | None = typer.Option(None, "--days", min=14, max=730,
                                    help="Days of reported cases to learn from (default GRIDHALL_RISK_TRAIN_DAYS)."),
    at: str | None = typer.Option(None, "--now", metavar="ISO", help="Train as of this instant (default: now)."),
) -> None:
    """Train the model on the city's own history (case_events) and store it as the newest version."""
    from dashboard.figures.riskmodel import NotEnoughHistory, save, train
    from dashboard.store.reference import timing_for

    settings = cli_settings(risk_train_days=days)
    require_backends(settings, redis_too=False)
    now = utcnow()
    if at is not None:
        try:
            now = datetime.fromisoformat(at)
        except ValueError:
            fail(f"--now: not an ISO date/time: {at!r}", 2)
        now = now if now.tzinfo else now.replace(tzinfo=settings.tz)
    with _sessions(settings)() as session:
        timing = timing_for(settings, session)
        try:
            trained = train(session, timing, now, days=settings.risk_train_days)
        except NotEnoughHistory as exc:
            fail(str(exc), 1)
        version = save(session, trained, keep=settings.risk_keep_versions, now=utcnow())
        session.commit()
    f = trained.figures
    console.print(f"stored version {version}: {f.fit_cases} cases learnt "
                  f"({trained.period_from.astimezone(settings.tz):%Y-%m-%d}…"
                  f"{trained.period_to.astimezone(settings.tz):%Y-%m-%d}); on {f.test_cases} later cases it never saw: "
                  f"AUC {f.auc:.3f} (baseline unit × 小类 {f.baseline_auc:.3f}), Brier {f.brier:.3f} "
                  f"(baseline {f.baseline_brier:.3f})", highlight=False)


@risk_app.command("show")
def show_cmd(fmt: str | None = format_option()) -> None:
    """The stored versions, newest first, with their figures (measured on cases they never saw)."""
    from dashboard.store.riskmodels import versions

    settings = cli_settings()
    shape = output_format(fmt)
    require_backends(settings, redis_too=False)
    with _sessions(settings)() as session:
        known = versions(session)
    tz = settings.tz
    rows = [{"version": v.version, "trained_at": v.trained_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
             "period": f"{v.period_from.astimezone(tz):%Y-%m-%d}…{v.period_to.astimezone(tz):%Y-%m-%d}",
             "cases": v.n_cases, "auc": _fmt(v.auc), "baseline_auc": _fmt(v.baseline_auc), "brier": _fmt(v.brier),
             "positive": _fmt(v.figures.get("positive_share"))} for v in known]
    emit(console, RISK_COLUMNS, rows, shape, title="超期风险模型")
    notes_console(shape).print(f"{len(rows)} version(s); the newest scores the open cases. "
                               "Figures: later cases the version never saw, each counted once.", highlight=False)
