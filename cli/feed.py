"""The feed's commands: ``gridhall ingest`` (stream → SQL), ``simulate`` (a live city) and
``publish`` (recorded events from a file).

Their option defaults are the workers' own (``feeds/defaults.py``), read, never copied.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

from cli.common import (
    cli_settings,
    console,
    err,
    fail,
    load_classification,
    load_reference,
    open_sessions,
    progress_bar,
    redis_client,
    require_backends,
    stop_event,
)
from dashboard.rules.clock import utcnow
from feeds import defaults


def ingest(
    consumer: str | None = typer.Option(None, help="Consumer name in the group (default: host-pid)."),
    batch_size: int = typer.Option(defaults.BATCH_SIZE, min=1, max=10_000, help="Entries per batch and transaction."),
    claim_idle: int = typer.Option(
        defaults.CLAIM_IDLE_MS // 1000, min=1, help="Seconds before a dead consumer's pending entries are claimed.",
    ),
    illegal_grace: int = typer.Option(
        defaults.ILLEGAL_GRACE_S, min=0,
        help="Seconds an illegal event may wait for a late event that makes it legal, before it is dead-lettered.",
    ),
) -> None:
    """Read the case stream into SQL (consumer group; run several for throughput)."""
    from feeds.connection import connect
    from feeds.ingest import Ingest

    settings = cli_settings()
    require_backends(settings)
    sessions = open_sessions(settings)
    ref = load_reference(settings, sessions)
    worker = Ingest(settings, sessions, connect(settings), ref, consumer=consumer,
                    batch_size=batch_size, claim_idle_ms=claim_idle * 1000,
                    illegal_grace_s=illegal_grace)
    stop = stop_event()
    console.print(f"ingest [bold]{worker.consumer}[/] reading {worker.stream}")
    worker.run(stop)
    console.print(f"ingest stopped: {worker.stats}")


def simulate(
    daily: float = typer.Option(defaults.DAILY_CASES, min=1, help="New cases per day at a normal weekday rhythm."),
    speedup: float = typer.Option(
        defaults.SPEEDUP, min=0.1, max=1000, help="Multiply arrivals and shorten handling times.",
    ),
    seed: int | None = typer.Option(None, help="Random seed (default: random)."),
    resume: bool = typer.Option(True, help="Move on the open cases found in the database."),
) -> None:
    """Stand-alone producer: publish realistic live case events to the stream."""
    from feeds.connection import connect
    from feeds.producer import Producer
    from feeds.scenario import CityModel
    from feeds.simulator import Simulator

    settings = cli_settings()
    require_backends(settings)
    sessions = open_sessions(settings)
    classification = load_classification(settings)
    with sessions() as session:
        city = CityModel.load(session, classification, settings.tz)
    if not city.grids:
        fail("the database has no grids: run 'gridhall import city DIR' (or 'gridhall demo') first")
    sim = Simulator(sessions, Producer(connect(settings), settings), classification, city,
                    daily_cases=daily, speedup=speedup, seed=seed)
    if resume:
        n = sim.resume_open_cases(utcnow())
        console.print(f"simulator resumed {n} open cases")
    console.print(f"simulator: {daily:g} cases/day × {speedup:g} → {sim.producer.stream}")
    sim.run(stop_event())
    console.print(f"simulator stopped after {sim.emitted} events")


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
        fail("--rate and --speedup exclude each other", 2)
    settings = cli_settings()
    try:
        loaded = load_file(file, fmt)
    except PublishFileError as exc:
        fail(str(exc), 1)
    for problem in loaded.problems:
        err.print(f"  {problem}", highlight=False, markup=False)
    if loaded.problems and not skip_invalid:
        fail(f"{len(loaded.problems)} invalid line(s) in {file}; nothing was published "
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
    client = redis_client(settings)
    pace = (f"{rate:g}/s" if rate else f"recorded gaps ÷ {speedup:g}" if speedup else "as fast as possible")
    with _CtrlC() as stop, progress_bar() as progress:
        task = progress.add_task(f"publishing ({pace})", total=len(planned))
        result = send(client, planned, stop=stop, replicas=settings.feed_ack_replicas,
                      progress=lambda done: progress.update(task, completed=done))
    streams = ", ".join(f"{name} {n}" for name, n in sorted(result.per_stream.items()))
    summary = (f"published {result.sent} of {len(planned)}, skipped {len(loaded.problems)}, "
               f"{result.elapsed:.2f}s, {result.rate:,.0f} events/s")
    if result.error:
        fail(f"Redis failed after {summary}: {result.error}; the next {result.uncertain} may or may "
              "not have been appended (publishing them again is harmless: events are idempotent)", 1)
    if result.interrupted:
        console.print(f"[yellow]interrupted:[/] {summary}; the first {result.sent} events "
                      "(in sending order) are in the stream, the rest were not sent")
        raise typer.Exit(130)
    console.print(summary)
    if streams:
        console.print(f"  → {streams}", highlight=False)
