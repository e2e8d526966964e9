"""``gridhall housekeeping``: the one owner of scheduled work (partitions ahead, …) under a Redis lock."""

from __future__ import annotations

import typer

from cli.common import cli_settings, console, redis_client, require_backends, stop_event


def housekeeping(
    once: bool = typer.Option(False, "--once", help="One pass if no other host owns the lock, then exit "
                                                    "(for a systemd timer or cron)."),
    interval: float | None = typer.Option(None, "--interval", min=1, metavar="SECONDS",
                                          help="Seconds between passes (default GRIDHALL_HOUSEKEEPING_INTERVAL_S)."),
) -> None:
    """Run scheduled work (partitions of case_events ahead, …) on one host however many run it."""
    from dashboard.store.db import make_engine
    from feeds.housekeeping import run

    settings = cli_settings(housekeeping_interval_s=interval)
    require_backends(settings)
    client = redis_client(settings)
    engine = make_engine(settings)
    stop = stop_event()
    try:
        run(settings, engine, client, stop, once=once,
            report=lambda line: console.print(line, highlight=False, soft_wrap=True))
    finally:
        engine.dispose()
