"""``gridhall check``: configuration, database, Redis and the feed, one line each."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli.common import console, err, load_classification
from dashboard.settings import ConfigError, Settings, load_settings
from feeds.defaults import INGEST_ALIVE_S

if TYPE_CHECKING:
    from feeds.health import FeedState


def check(
    require_ingest: bool = typer.Option(
        False, "--require-ingest",
        help=f"Fail (exit bit 8) when no ingest heartbeat came in the last {INGEST_ALIVE_S:g} s.",
    ),
) -> None:
    """Check configuration, database, Redis and the feed.

    Exit code: 0 all OK; OR of 1 config, 2 database, 4 Redis, 8 no live ingest.
    """
    from dashboard.store.db import check_database
    from feeds.connection import check_redis

    try:
        settings = load_settings()
    except ConfigError as exc:
        err.print(f"[red]✗ config[/]    {exc}", highlight=False)
        raise typer.Exit(1) from None
    code = 0
    console.print(f"[green]✓ config[/]    data dir {settings.data_dir}, time zone {settings.tz.key}")
    try:
        load_classification(settings)
        console.print(f"[green]✓ classification[/] {settings.classification}")
        try:
            from dashboard.store.reference import timing_for

            timing_for(settings)
            console.print(f"[green]✓ time limits[/] {settings.limits_file or 'shipped default'}, "
                          f"calendar {settings.working_periods}")
        except ConfigError as exc:
            err.print(f"[red]✗ time limits[/] {exc}", highlight=False)
            code |= 1
    except typer.Exit:
        code |= 1
    try:
        check_database(settings)
        console.print("[green]✓ database[/]  reachable")
        _report_unlocated(settings)
    except ConfigError as exc:
        err.print(f"[red]✗ database[/]  {exc}", highlight=False)
        code |= 2
    try:
        version = check_redis(settings)
        console.print(f"[green]✓ redis[/]     Redis {version}")
    except ConfigError as exc:
        err.print(f"[red]✗ redis[/]     {exc}", highlight=False)
        code |= 4
    if not code & 4:
        code |= _report_feed(settings, require_ingest)
    raise typer.Exit(code)


def _report_unlocated(settings: Settings) -> None:
    """One line: the open cases that are 未定位 (no grid; the 待定位 list of /explore). A warning
    when there are any; never changes the exit code."""
    from sqlalchemy import inspect

    from dashboard.store.db import make_engine, session_factory
    from dashboard.store.queries import unlocated_open

    engine = make_engine(settings)
    try:
        if not inspect(engine).has_table("cases"):
            console.print("[yellow]! cases[/]     no schema yet (gridhall db upgrade)")
            return
        with session_factory(engine)() as session:
            n = unlocated_open(session)
    except Exception as exc:  # the check goes on: the database line above already said it is reachable
        console.print(f"[yellow]! cases[/]     cannot count: {str(exc).strip().splitlines()[0]}", highlight=False)
        return
    finally:
        engine.dispose()
    if n:
        console.print(f"[yellow]! cases[/]     未定位 {n:,} open case(s) without a grid: "
                      "locate them (待定位 on /explore)")
    else:
        console.print("[green]✓ cases[/]     未定位 0 open cases without a grid")


def _report_feed(settings: Settings, require_ingest: bool) -> int:
    """Print the feed's state; returns 8 when an ingest is required and none is alive."""
    from feeds.connection import connect
    from feeds.health import feed_state

    state = feed_state(connect(settings), settings)
    backlog = "?" if state.backlog is None else f"{state.backlog:,}"
    line = (f"consumers {state.consumers}, pending {state.pending:,}, backlog {backlog}, "
            f"applied {state.applied_total:,}, dead letters {state.dead_letters:,}")
    if state.dead_by_reason:
        line += " (" + ", ".join(f"{k} {v}" for k, v in sorted(state.dead_by_reason.items())) + ")"
    code = 0
    if state.alive():
        console.print(f"[green]✓ ingest[/]    heartbeat {state.heartbeat_age_s:.0f}s ago; {line}")
    else:
        since = "never" if state.heartbeat_age_s is None else f"{state.heartbeat_age_s:.0f}s ago"
        mark = "[red]✗" if require_ingest else "[yellow]![/][yellow]"
        (err if require_ingest else console).print(f"{mark} ingest[/]    no live ingest (last heartbeat {since}); "
                                                   f"{line}",
                                                   highlight=False)
        code = 8 if require_ingest else 0
    _report_dead_cap(state)
    return code


def _report_dead_cap(state: FeedState) -> None:
    """One line: the dead-letter stream against its cap and what the cap trimmed. A warning
    from 80% of the cap (the oldest go next) or once anything was trimmed; never changes the
    exit code: the feed itself works, but dead letters are being or about to be lost."""
    from feeds.deadletters import WARN_FILL

    line = (f"{state.dead_letters:,} of cap {state.dead_cap:,} ({state.dead_fill:.0%}), "
            f"trimmed by the cap {state.dead_trimmed:,}")
    advice = []
    if state.dead_near_cap():
        advice.append(f"at {WARN_FILL:.0%} of the cap or more: at the cap the oldest dead letters are "
                      "trimmed — deal with them (gridhall deadletters list / retry) or raise "
                      "GRIDHALL_DEADLETTER_MAXLEN")
    if state.dead_trimmed:
        advice.append("trimmed dead letters are gone: only their counts per reason remain")
    if advice:
        # One unwrapped line, whatever the terminal: monitoring greps it.
        console.print(f"[yellow]! dead letters[/] {line}; " + "; ".join(advice), highlight=False, soft_wrap=True)
    else:
        console.print(f"[green]✓ dead letters[/] {line}", highlight=False, soft_wrap=True)
