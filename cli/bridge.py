"""``gridhall bridge NAME``: run a bridge (another system's records → case events on the stream).

Each bridge is a command of its own; they share :func:`run_bridge` (the inbox options, the
loop, Ctrl-C). docs/sources.md describes the bridges and their formats.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.common import cli_settings, console, fail, redis_client, stop_event
from feeds import defaults

if TYPE_CHECKING:
    from dashboard.settings import Settings
    from feeds.bridges.bridge import Bridge
    from feeds.bridges.inbox import Inbox

bridge_app = typer.Typer(help="Run a bridge: another system's records as case events on the stream.",
                         no_args_is_help=True)


# The options every bridge command takes (typer wants the calls in the signature itself).
DIR_HELP = "Read files dropped in this folder (*.jsonl, *.csv; read ones move into done/)."
STREAM_HELP = "Read this Redis stream (name without the prefix); the default when no --dir: {default}."
ONCE_HELP = "One pass over what is there now, then exit."


def make_inbox(settings: Settings, name: str, folder: Path | None, stream: str | None,
               default_stream: str, settle: float) -> Inbox:
    """The folder inbox for --dir, else the stream inbox (--stream or the bridge's default key)."""
    from feeds.bridges.inbox import FolderInbox, StreamInbox

    client = redis_client(settings)
    if folder is not None and stream is not None:
        fail("give --dir or --stream, not both", 2)
    if folder is not None:
        if not folder.is_dir():
            fail(f"--dir: no folder {folder}", 2)
        return FolderInbox(client, settings, name, folder, settle_s=settle)
    return StreamInbox(client, settings, name, settings.key(stream or default_stream),
                       block_ms=200 if stream is None else 1000)


def run_bridge(bridge: Bridge, inbox: Inbox, once: bool,
               between: Callable[[], object] | None = None) -> None:
    """One pass (``--once``) or passes until Ctrl-C / SIGTERM; prints what was done."""
    console.print(f"bridge [bold]{bridge.name}[/] reading {inbox.source}", highlight=False)
    if once:
        bridge.run_once(inbox)
        if between is not None:
            between()
    else:
        bridge.run(inbox, stop_event(), between=between)
    console.print(f"bridge {bridge.name} stopped: {bridge.stats}", highlight=False)


@bridge_app.command("hotline")
def hotline(
    folder: Path | None = typer.Option(None, "--dir", file_okay=False, help=DIR_HELP),
    stream: str | None = typer.Option(None, "--stream", metavar="KEY",
                                      help=STREAM_HELP.format(default="hotline:orders")),
    once: bool = typer.Option(False, "--once", help=ONCE_HELP),
    replies: bool = typer.Option(True, help="Write 工单回复 for closed hotline cases (needs the database)."),
    replies_dir: Path | None = typer.Option(None, "--replies-dir", file_okay=False,
                                            help="Also write each 工单回复 as a file into this folder."),
    settle: float = typer.Option(defaults.BRIDGE_SETTLE_S, min=0,
                                 help="Seconds a dropped file must stay unchanged before it is read."),
) -> None:
    """12345 hotline 工单 → reported / updated / voided / rated events; 办结 → 工单回复."""
    from feeds.bridges.bridge import Bridge
    from feeds.bridges.hotline import HOTLINE, hotline_mapper, scrub
    from feeds.keys import HOTLINE_INBOX_STREAM

    settings = cli_settings()
    client = redis_client(settings)
    try:
        mapper = hotline_mapper(settings)
    except ValueError as exc:
        fail(f"GRIDHALL_HOTLINE_MAPPING / _KEYWORDS: {exc}", 1)
    bridge = Bridge(HOTLINE, mapper, client, settings, scrub=scrub)
    inbox = make_inbox(settings, HOTLINE, folder, stream, HOTLINE_INBOX_STREAM, settle)
    between = None
    if replies:
        from cli.common import open_sessions, require_backends
        from feeds.bridges.replies import ReplyWriter

        require_backends(settings)
        writer = ReplyWriter(client, settings, open_sessions(settings), folder=replies_dir)
        between = writer.run_once
    run_bridge(bridge, inbox, once, between)


@bridge_app.command("hotline-sim")
def hotline_sim(
    folder: Path = typer.Option(..., "--dir", file_okay=False, help="The hotline bridge's folder to write into."),
    every: float = typer.Option(defaults.HOTLINE_SIM_EVERY_S, min=0.5, help="Seconds between two files."),
    seed: int | None = typer.Option(None, help="Random seed (default: random)."),
) -> None:
    """The demo's 12345 system: drop a file of new 工单 into the folder every little while."""
    from cli.common import load_classification, open_sessions, require_backends
    from feeds.bridges.hotline import HotlineRules
    from feeds.bridges.hotlinesim import HotlineSource
    from feeds.scenario import CityModel

    settings = cli_settings()
    require_backends(settings, redis_too=False)
    with open_sessions(settings)() as session:
        city = CityModel.load(session, load_classification(settings), settings.tz)
    if not city.grids:
        fail("the database has no grids: run 'gridhall import city DIR' (or 'gridhall demo') first")
    source = HotlineSource(city, folder, HotlineRules.load(settings.hotline_mapping, settings.hotline_keywords),
                           seed=seed)
    console.print(f"12345 source writing 工单 files into {folder} every {every:g}s", highlight=False)
    source.run(stop_event(), every)
    console.print(f"12345 source stopped after {source.written} records", highlight=False)


@bridge_app.command("alarms")
def alarms(
    folder: Path | None = typer.Option(None, "--dir", file_okay=False, help=DIR_HELP),
    stream: str | None = typer.Option(None, "--stream", metavar="KEY",
                                      help=STREAM_HELP.format(default="alarms:inbox")),
    once: bool = typer.Option(False, "--once", help=ONCE_HELP),
    settle: float = typer.Option(defaults.BRIDGE_SETTLE_S, min=0,
                                 help="Seconds a dropped file must stay unchanged before it is read."),
    simulate: bool = typer.Option(False, "--simulate",
                                  help="Demo: also play the video/IoT platform (alarms of the registry into the "
                                       "inbox stream, 核实 of the alarm cases)."),
    speedup: float = typer.Option(defaults.SPEEDUP, min=0.1, max=1000,
                                  help="With --simulate: how much faster than real time."),
) -> None:
    """Video/IoT alarms → reported cases (source video_iot), repeats and clearances → updated events."""
    from cli.common import load_reference, open_sessions, require_backends
    from feeds.bridges.alarms import ALARMS, AlarmBridge, AlarmMapper
    from feeds.keys import ALARM_INBOX_STREAM

    settings = cli_settings()
    require_backends(settings)
    client = redis_client(settings)
    sessions = open_sessions(settings)
    mapper = AlarmMapper(client, settings, sessions, load_reference(settings, sessions))
    bridge = AlarmBridge(ALARMS, mapper, client, settings)
    inbox = make_inbox(settings, ALARMS, folder, stream, ALARM_INBOX_STREAM, settle)
    between = None
    if simulate:
        from feeds.bridges.alarmdemo import AlarmFeeder

        if folder is not None or stream is not None:
            fail("--simulate feeds the default inbox stream: leave out --dir and --stream", 2)
        between = AlarmFeeder(client, settings, sessions, speedup=speedup).tick
    run_bridge(bridge, inbox, once, between)
