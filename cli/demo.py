"""``gridhall demo``: build the demo city and its history once, then run it live.

The city comes from ``dashboard/demo``, its past from ``feeds/history.py`` (the feed side);
the processes that run it live are started and stopped by ``cli/supervisor.py``.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.cityimport import import_city_folder
from cli.common import (
    cli_settings,
    console,
    fail,
    load_classification,
    load_reference,
    open_sessions,
    progress_bar,
    require_backends,
)
from cli.db import upgrade_schema
from cli.supervisor import hold_embedded_redis, supervise
from dashboard.rules.clock import utcnow
from dashboard.settings import Settings
from feeds import defaults

if TYPE_CHECKING:
    from datetime import tzinfo

def demo(
    speedup: float = typer.Option(
        defaults.SPEEDUP, min=0.1, max=1000, help="Speed the live city up (more cases, faster handling).",
    ),
    daily: float = typer.Option(defaults.DAILY_CASES, min=10, help="New cases per day."),
    days: int | None = typer.Option(
        None, min=1, max=365,
        help="Days of history built on first start (default: since the first day of the previous month, so the last "
             "month's report is complete).",
    ),
    reset: bool = typer.Option(False, "--reset", help="Throw away the demo database and build it again."),
    port: int | None = typer.Option(
        None, help=f"Web port (default GRIDHALL_PORT, {Settings.model_fields['port'].default}).",
    ),
) -> None:
    """Build the demo city once, then run Redis, simulator, ingest and web server together."""
    settings = cli_settings(port=port)
    demo_dir = settings.data_dir
    if reset:
        _reset_demo(settings)
    started = time.monotonic()
    require_backends(settings)
    redis_holder = hold_embedded_redis(settings)  # keeps the embedded server up for the children
    _prepare_demo(settings, days=days or demo_history_days(utcnow(), settings.tz), daily=daily)
    demo_users = _demo_users(settings)
    env = dict(os.environ, GRIDHALL_DATA_DIR=str(demo_dir), GRIDHALL_PORT=str(settings.port))
    hotline_in = demo_dir / "hotline" / "in"
    hotline_in.mkdir(parents=True, exist_ok=True)
    children = {
        "ingest": [sys.executable, "-m", "cli", "ingest"],
        "simulate": [sys.executable, "-m", "cli", "simulate", "--daily", str(daily), "--speedup", str(speedup)],
        # A 12345 system dropping 工单 files, and the hotline bridge reading them (docs/sources.md).
        "hotline-sim": [sys.executable, "-m", "cli", "bridge", "hotline-sim", "--dir", str(hotline_in),
                        "--every", str(max(2.0, 30 / speedup))],
        "hotline": [sys.executable, "-m", "cli", "bridge", "hotline", "--dir", str(hotline_in),
                    "--replies-dir", str(demo_dir / "hotline" / "out")],
        # The video/IoT platform, simulated, and its alarm bridge (docs/sources.md, "Alarms").
        "alarms": [sys.executable, "-m", "cli", "bridge", "alarms", "--simulate", "--speedup", str(speedup)],
        # The one owner of scheduled work: surge alerts every few minutes, shift handovers (docs/history.md).
        "housekeeping": [sys.executable, "-m", "cli", "housekeeping"],
        # The demo's console is for people: no access log lines every 2 s per screen.
        "web": [sys.executable, "-m", "cli", "serve", "--workers", str(settings.web_workers), "--no-access-log"],
    }
    url = f"http://{settings.host}:{settings.port}/"

    def live() -> None:
        wall = next((u for u in demo_users if u.token), None)
        wall_url = f"{url}wall?token={wall.token}" if wall else f"{url}wall"
        console.print(
            f"\n[bold green]gridhall demo is live[/] ({time.monotonic() - started:.0f}s): "
            f"[bold]{wall_url}[/] (the command-hall wall, signed in as a wall screen)"
            f"   (Ctrl-C stops everything)",
            soft_wrap=True,  # one line: the URL must stay whole to be clicked or copied
        )
        _print_demo_users(demo_users, url)

    try:
        supervise(children, env, url + "healthz", on_live=live)
    finally:
        if redis_holder is not None:
            redis_holder.shutdown_embedded()
        console.print("demo stopped")


def demo_history_days(now: datetime, tz: tzinfo) -> int:
    """Days of history reaching back before the first local midnight of the previous month.

    The history starts ``days`` × 24 h before ``now``; one day more than the whole days since
    that midnight covers it whatever the hour (e.g. 57 on 2026-11-26 for October 2026).
    """
    from datetime import date

    today = now.astimezone(tz).date()
    first = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
    return (today - first).days + 1


def _demo_users(settings: Settings) -> list[Any]:
    from dashboard.demo.demousers import ensure
    from dashboard.store.db import transaction

    with transaction(open_sessions(settings)) as session:
        return ensure(session, settings.data_dir)


def _print_demo_users(demo_users: list[Any], url: str) -> None:
    """The demo's sign-ins (docs/cli.md): one user per role, passwords from DATA_DIR/demo-users.json."""
    from rich.table import Table

    from auth.policy import HOME
    from dashboard.store.users import UserRole

    table = Table(title=f"demo users — sign in at {url}login", title_justify="left")
    for column in ("role", "username", "password", "scope", "opens"):
        table.add_column(column)
    for u in demo_users:
        secret = u.password if u.password else "(wall URL above)"
        table.add_row(f"{u.role} ({UserRole(u.role).label})", u.username, secret, u.scope, HOME[u.role])
    console.print(table)
    console.print()


def _demo_gazetteer(settings: Settings, city_dir: Path) -> None:
    """The demo city's gazetteer (docs/geocoding.md), generated and imported once."""
    from sqlalchemy import func, select

    from dashboard.demo.gazetteer import GAZETTEER_FILE, generate_gazetteer
    from dashboard.store.gazetteer import import_gazetteer
    from dashboard.store.models import GazetteerEntry

    sessions = open_sessions(settings)
    with sessions() as session:
        if session.scalar(select(func.count()).select_from(GazetteerEntry)):
            return
    if not (city_dir / GAZETTEER_FILE).exists():
        if not (city_dir / "grids.geojson").exists():
            return  # a demo database built before its city files were kept: no gazetteer
        generate_gazetteer(city_dir)
    console.print(str(import_gazetteer(city_dir / GAZETTEER_FILE, sessions)), highlight=False, soft_wrap=True)


def _reset_demo(settings: Settings) -> None:
    from dashboard.store import db

    if settings.database_url:
        fail("--reset only works on the embedded SQLite database; drop a server database yourself")
    for suffix in ("", "-wal", "-shm"):
        Path(str(settings.data_dir / "gridhall.db") + suffix).unlink(missing_ok=True)
    _ = db  # the schema is rebuilt by _prepare_demo


def _prepare_demo(settings: Settings, *, days: int, daily: float) -> None:
    from sqlalchemy import func, select

    from dashboard.demo.democity import generate_city
    from dashboard.store.db import transaction
    from dashboard.store.models import Case, Grid
    from dashboard.store.reference import get_meta, set_meta
    from feeds.history import build_history
    from feeds.scenario import CityModel

    upgrade_schema(settings)
    sessions = open_sessions(settings)
    with sessions() as session:
        grids = session.scalar(select(func.count()).select_from(Grid)) or 0
        cases = session.scalar(select(func.count()).select_from(Case)) or 0
        built_by = get_meta(session, "built_by")
    if grids and built_by != "demo":
        fail("this database holds a real city; the demo only runs on its own data dir "
              "(set GRIDHALL_DATA_DIR to an empty folder, leave GRIDHALL_DATABASE_URL unset)")
    city_dir = settings.data_dir / "demo-city"
    if not grids:
        if not (city_dir / "grids.geojson").exists():
            with console.status("generating the demo city…"):
                summary = generate_city(city_dir)
            console.print(f"demo city generated: {summary}", highlight=False, soft_wrap=True)
        import_city_folder(settings, city_dir)
        with transaction(sessions) as session:
            set_meta(session, "built_by", "demo")
    _demo_gazetteer(settings, city_dir)
    if not cases:
        classification = load_classification(settings)
        ref = load_reference(settings, sessions)
        with sessions() as session:
            city = CityModel.load(session, classification, settings.tz)
        with progress_bar() as progress:
            task = progress.add_task(f"building {days} days of case history", total=days * 24)
            n_cases, n_events = build_history(
                sessions, ref, city, utcnow(), days=days, daily_cases=daily,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        console.print(f"history: {n_cases} cases, {n_events} events")
    _demo_devices(settings, sessions, city_dir)


def _demo_devices(settings: Settings, sessions: Any, city_dir: Path) -> None:
    """The demo's video/IoT device registry (once), for the simulated alarms."""
    from feeds.bridges.alarmdemo import ensure_demo_registry

    added = ensure_demo_registry(sessions, load_reference(settings, sessions), city_dir)
    if added:
        console.print(f"video/IoT devices: {added} (registry in {city_dir})", highlight=False)
