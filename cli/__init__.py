"""The ``gridhall`` command line. Every command is documented in docs/cli.md.

This file is the command tree: the root app and, in the order ``gridhall --help`` lists them,
the command groups and commands, each from a module of its own. What the commands share
(consoles, settings, failing in one line, ``--format``) is in ``cli/common.py``.
"""

from __future__ import annotations

import typer

from cli import (
    alerts,
    archive,
    banners,
    bridge,
    check,
    cityimport,
    db,
    deadletters,
    demo,
    feed,
    geocode,
    handover,
    housekeeping,
    open311,
    overdue,
    report,
    risk,
    screens,
    serve,
    users,
)
from cli.common import console

__all__ = ["app", "console", "main"]

app = typer.Typer(
    help="gridhall：数字城管指挥大厅实时态势 — command-centre dashboard for digital urban management.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db.db_app, name="db")
app.add_typer(cityimport.import_app, name="import")
app.command()(check.check)
app.command()(feed.ingest)
app.command()(feed.simulate)
app.command()(serve.serve)
app.command()(demo.demo)
app.command()(feed.publish)
app.add_typer(deadletters.deadletters_app, name="deadletters")
app.add_typer(bridge.bridge_app, name="bridge")
app.add_typer(users.users_app, name="users")
app.add_typer(screens.screens_app, name="screens")
app.add_typer(banners.banners_app, name="banners")
app.add_typer(alerts.alerts_app, name="alerts")
app.add_typer(open311.open311_app, name="open311")
app.add_typer(risk.risk_app, name="risk")
app.command()(overdue.overdue)
app.command()(report.report)
app.command()(handover.handover)
app.command()(geocode.geocode)
app.command()(housekeeping.housekeeping)
app.command()(archive.archive)


def main() -> None:
    """The `gridhall` command (the console-script entry point)."""
    app()
