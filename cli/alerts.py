"""``gridhall alerts``: alerts for 突发事件 — list what a hall sees, acknowledge one (docs/halls.md, docs/cli.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from cli.common import cli_settings, console, fail, format_option, hall_commit, hall_sessions, output_format
from dashboard.output.tabular import Column, Format, emit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

alerts_app = typer.Typer(help="突发事件预警: alerts of urgent and safety-critical cases (docs/halls.md).",
                         no_args_is_help=True)

ALERT_COLUMNS = (
    Column("id", "id"),
    Column("state", "state", show=lambda v: _step_label(v)),
    Column("reason", "reason", show=lambda v: _reason_label(v)),
    Column("level", "level", drop=3, show=lambda v: _level_label(v)),
    Column("case", "case"),
    Column("class", "class", flex=True, drop=2),
    Column("place", "place", flex=True),
    Column("raised_at", "raised"),
    Column("escalated_at", "escalated", drop=4),
    Column("acknowledged_by", "ack by", drop=1),
    Column("acknowledged_at", "ack at", drop=5),
)


def _sessions(settings: Any) -> Any:
    """Sessions on a database with the alerts table (else one line: run db upgrade)."""
    from sqlalchemy import inspect

    sessions = hall_sessions(settings)
    with sessions() as session:
        if not inspect(session.get_bind()).has_table("alerts"):
            fail("the database has no alerts table: run 'gridhall db upgrade' first", 1)
    return sessions


def _step_label(code: str) -> str:
    from dashboard.rules.alerts import AlertStep

    return AlertStep(code).label if code in AlertStep.labels() else code


def _reason_label(code: str) -> str:
    from dashboard.rules.alerts import AlertReason

    return AlertReason(code).label if code in AlertReason.labels() else code


def _level_label(code: str) -> str:
    from dashboard.rules.alerts import AlertLevel

    return AlertLevel(code).label if code in AlertLevel.labels() else code


@alerts_app.command("list")
def alerts_list(
    all_: bool = typer.Option(False, "--all", help="Acknowledged and cleared alerts too (the newest 200)."),
    scope_code: str | None = typer.Option(None, "--scope", metavar="CODE",
                                          help="What the hall of this district or street sees; default the city's."),
    fmt: str | None = format_option(),
) -> None:
    """The alerts waiting for a hall (default: the city hall's — city-level and escalated), newest first."""
    from dashboard.rules.clock import utcnow
    from dashboard.store.alerts import list_alerts
    from dashboard.store.scope import CITY, ScopeError, get_scope

    shape = output_format(fmt)
    settings = cli_settings()
    sessions = _sessions(settings)
    table = shape is Format.TABLE
    classification = _classification(settings)

    def when(t: Any) -> Any:
        if t is None:
            return None
        local = t.astimezone(settings.tz)
        return local.strftime("%m-%d %H:%M:%S") if table else local.isoformat()

    with sessions() as session:
        try:
            scope = get_scope(session, scope_code) if scope_code else CITY
        except ScopeError as exc:
            fail(f"--scope: {exc}", 1)
        rows = []
        for r in list_alerts(session, scope, utcnow(), include_done=all_, classification=classification):
            a = r.alert
            place = " ".join(x for x in (a.district, a.street, a.community, a.grid_code or "未定位") if x)
            rows.append({"id": a.id, "state": r.state, "reason": a.reason.value, "level": a.level.value,
                         "case": a.number or a.case_id, "class": a.minor_name, "place": place,
                         "raised_at": when(a.raised_at), "escalated_at": when(a.escalated_at),
                         "acknowledged_by": r.acknowledged_by, "acknowledged_at": when(r.acknowledged_at)})
    if not rows and table:
        console.print(f"no alerts waiting for {scope.name}" if not all_ else f"no alerts in {scope.name} yet")
        return
    emit(console, ALERT_COLUMNS, rows, shape, title=f"{len(rows)} alert(s), {scope.name}")


def _classification(settings: Any) -> Any:
    from dashboard.rules.classification import Classification, ClassificationError

    try:
        return Classification.from_settings(settings)
    except ClassificationError:
        return None  # the list still shows the class codes


@alerts_app.command("ack")
def alerts_ack(
    alert_id: int = typer.Argument(..., metavar="ID", help="The alert's id (alerts list)."),
    acting: str = typer.Option(..., "--as", metavar="USER",
                               help="The shift lead (within scope) or admin who acknowledges it; recorded."),
) -> None:
    """Acknowledge an alert (确认); the walls drop it within a second. Again: says who did it."""
    from dashboard.rules.clock import utcnow
    from dashboard.store.alerts import Acknowledged, acknowledge
    from dashboard.store.users import UserError, require_user

    settings = cli_settings()
    sessions = _sessions(settings)

    def action(session: Session) -> Acknowledged:
        try:
            user = require_user(session, acting)
        except UserError as exc:
            fail(f"--as: {exc}", 1)
        return acknowledge(session, alert_id, user, utcnow())

    done = hall_commit(settings, sessions, action)
    at = done.at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S")
    if done.done_now:
        console.print(f"acknowledged alert {done.alert_id} as {done.by}", highlight=False)
    else:
        console.print(f"alert {done.alert_id} was acknowledged already by {done.by or '?'} at {at}", highlight=False)
