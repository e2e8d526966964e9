"""``gridhall screens``: the command hall's screens — layout, region, metric, playlist, display user
(docs/halls.md, docs/cli.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.common import (
    cli_settings,
    console,
    err,
    fail,
    format_option,
    hall_actor,
    hall_commit,
    hall_sessions,
    notes_console,
    output_format,
)
from dashboard.output.tabular import STDIO, Column, Format, emit
from dashboard.rules.screenspec import CHANGES_SHOWN

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dashboard.rules.screenspec import PlaylistEntry, ScreenSetting

screens_app = typer.Typer(help="大屏: the hall's screens, their layouts and playlists (docs/halls.md).",
                          no_args_is_help=True)

PLAYLIST_HELP = ("轮播: comma-separated LAYOUT[@REGION][/METRIC]:SECONDS, e.g. "
                 "'map@320102:30,map@320104/overdue:30,wall:60'; '' stops the rotation.")


def _as_option() -> Any:
    return typer.Option(None, "--as", metavar="USER",
                        help="Act as this user (their rules; recorded under their name). Default: 'cli', an admin.")


def _read_playlist(spec: str | None, path: Path | None) -> tuple[PlaylistEntry, ...] | None:
    """The playlist asked for (None: not asked); errors are one line."""
    from dashboard.rules.screenspec import SpecError, parse_playlist, playlist_from_json

    if spec is not None and path is not None:
        fail("--playlist and --playlist-file: give one of them", 2)
    try:
        if spec is not None:
            return parse_playlist(spec)
        if path is not None:
            text = sys.stdin.read() if str(path) == STDIO else path.read_text(encoding="utf-8")
            return playlist_from_json(json.loads(text))
    except SpecError as exc:
        fail(f"playlist: {exc}", 1)
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"--playlist-file {path}: {exc}", 1)
    return None


def _parsed(layout: str | None, metric: str | None, tile: str | None, region: str | None) -> dict[str, Any]:
    """The options given, parsed (left out: not given); errors are one line."""
    from dashboard.rules.screenspec import SpecError, parse_layout, parse_metric, parse_region, parse_tile

    out: dict[str, Any] = {}
    try:
        if layout is not None:
            out["layout"] = parse_layout(layout)
        if metric is not None:
            out["metric"] = parse_metric(metric)
        if tile is not None:
            out["tile"] = parse_tile(tile) if tile.strip() else None
        if region is not None:
            out["region"] = parse_region(region)
    except SpecError as exc:
        fail(str(exc), 1)
    return out


def _setting(given: dict[str, Any], playlist: tuple[PlaylistEntry, ...] | None) -> ScreenSetting:
    from dashboard.rules.screenspec import ScreenSetting, SpecError

    if playlist is not None:
        given = {**given, "playlist": playlist}
    try:
        return ScreenSetting(**given)
    except SpecError as exc:
        fail(str(exc), 1)


def _token(session: Session, username: str, screen: str) -> str:
    from dashboard.store.users import issue_token, require_user

    return issue_token(session, require_user(session, username), name=screen[:64])[1]


def _print_token(username: str, plaintext: str | None) -> None:
    if plaintext is not None:
        err.print(f"display token for {username} (it is shown only now; the screen opens /wall?token=…):",
                  highlight=False)
        print(plaintext)


@screens_app.command("add")
def screens_add(
    name: str = typer.Argument(..., help="The screen's name, e.g. 鼓楼-1 (no spaces, none of , @ / :)."),
    title: str | None = typer.Option(None, "--title", help="What the hall calls it; default the name."),
    region: str | None = typer.Option(None, "--region", metavar="CODE|city",
                                      help="District (6 digits) or street (9) code; default the whole city."),
    layout: str = typer.Option("wall", "--layout",
                               help="wall, map, queue, board, evaluation, districts, kpis or mosaic."),
    metric: str = typer.Option("open", "--metric", help="The map's metric: open, new_hour or overdue."),
    tile: str | None = typer.Option(None, "--tile", metavar="COLSxROWS:COL,ROW",
                                    help="A mosaic screen's tile, e.g. 3x2:2,1."),
    playlist: str | None = typer.Option(None, "--playlist", help=PLAYLIST_HELP),
    playlist_file: Path | None = typer.Option(None, "--playlist-file",
                                              help="The playlist as a JSON list of objects ('-': standard input)."),
    sound: bool = typer.Option(False, "--sound/--no-sound", help="Alert sound on this screen (default off)."),
    user: str | None = typer.Option(None, "--user", metavar="USERNAME",
                                    help="Bind this display user (made, city-wide, if missing)."),
    token: bool = typer.Option(False, "--token", help="Print a new display token of the bound user."),
    acting: str | None = _as_option(),
) -> None:
    """Add a screen; with --user bind its display user (creating it), with --token print its token."""
    from dashboard.store.hallscreens import add_screen, describe
    from dashboard.store.users import UserRole, create_user, get_user

    if token and user is None:
        fail("--token needs --user: the token is the bound display user's", 2)
    setting = _setting(_parsed(layout, metric, tile, region), _read_playlist(playlist, playlist_file))
    settings = cli_settings()
    sessions = hall_sessions(settings)
    made: list[str] = []
    shown: dict[str, Any] = {}
    plaintext: list[str] = []

    def action(session: Session) -> None:
        actor = hall_actor(session, acting)
        if user is not None and get_user(session, user) is None:
            from dashboard.store.hallcontrol import require_manager

            require_manager(actor, "添加屏幕", "add screens")
            create_user(session, user, UserRole.DISPLAY, display_name=title or name)
            made.append(user)
        screen = add_screen(session, actor, name, title=title, setting=setting, sound=sound, display_user=user)
        shown.update(describe(screen))
        if token and user is not None:
            plaintext.append(_token(session, user, screen.name))

    hall_commit(settings, sessions, action)
    if made:
        console.print(f"added display user {made[0]} (city-wide scope)", highlight=False)
    where = shown["region"] or "全市"
    console.print(f"added screen {name}: {shown['layout']} of {where}"
                  + (f", bound to {shown['display_user']}" if shown["display_user"] else ""), highlight=False)
    _print_token(user or "", plaintext[0] if plaintext else None)


@screens_app.command("set")
def screens_set(
    name: str = typer.Argument(..., help="The screen to change."),
    title: str | None = typer.Option(None, "--title", help="A new title."),
    region: str | None = typer.Option(None, "--region", metavar="CODE|city",
                                      help="District or street code, or 'city' for the whole city."),
    layout: str | None = typer.Option(None, "--layout", help="wall, map, queue, board, evaluation, districts, "
                                      "kpis or mosaic (leaving mosaic drops the tile)."),
    metric: str | None = typer.Option(None, "--metric", help="open, new_hour or overdue."),
    tile: str | None = typer.Option(None, "--tile", metavar="COLSxROWS:COL,ROW", help="A mosaic screen's tile."),
    playlist: str | None = typer.Option(None, "--playlist", help=PLAYLIST_HELP),
    playlist_file: Path | None = typer.Option(None, "--playlist-file",
                                              help="The playlist as a JSON list of objects ('-': standard input)."),
    sound: bool | None = typer.Option(None, "--sound/--no-sound", help="Alert sound on or off."),
    user: str | None = typer.Option(None, "--user", metavar="USERNAME", help="Bind this display user."),
    unbind: bool = typer.Option(False, "--unbind", help="Unbind the display user."),
    token: bool = typer.Option(False, "--token", help="Print a new display token of the bound user."),
    acting: str | None = _as_option(),
) -> None:
    """Change what a screen shows; options left out stay as they are. The screen changes within a second."""
    from dashboard.store.hallscreens import bind_display_user, describe, set_screen

    if user is not None and unbind:
        fail("--user and --unbind: give one of them", 2)
    given = _parsed(layout, metric, tile, region)
    entries = _read_playlist(playlist, playlist_file)
    if entries is not None:
        given["playlist"] = entries
    if title is not None:
        given["title"] = title
    if sound is not None:
        given["sound"] = sound
    settings = cli_settings()
    sessions = hall_sessions(settings)
    shown: dict[str, Any] = {}
    plaintext: list[tuple[str, str]] = []

    def action(session: Session) -> None:
        actor = hall_actor(session, acting)
        screen = set_screen(session, actor, name, **given)
        if user is not None or unbind:
            screen = bind_display_user(session, actor, name, user)
        shown.update(describe(screen))
        if token:
            if screen.display_user is None:
                fail(f"--token: screen {name} has no display user (bind one with --user)", 1)
            plaintext.append((screen.display_user.username, _token(session, screen.display_user.username, name)))

    hall_commit(settings, sessions, action)
    console.print(f"screen {name}: {_summary(shown)}", highlight=False)
    if plaintext:
        _print_token(*plaintext[0])


def _summary(d: dict[str, Any]) -> str:
    from dashboard.rules.screenspec import playlist_from_json, playlist_text

    parts = [f"{d['layout']}" + (f" {d['tile']}" if d["tile"] else ""), f"region {d['region'] or 'city'}",
             f"metric {d['metric']}"]
    if d["playlist"]:
        parts.append(f"playlist {playlist_text(playlist_from_json(d['playlist']))}")
    parts.append("sound on" if d["sound"] else "sound off")
    parts.append(f"display user {d['display_user'] or '—'}")
    return ", ".join(parts)


SCREEN_COLUMNS = (
    Column("name", "name"),
    Column("title", "title", flex=True, drop=3),
    Column("region", "region", flex=True),
    Column("layout", "layout", show=lambda v: _layout_label(v)),
    Column("tile", "tile", drop=4),
    Column("metric", "metric", drop=2),
    Column("playlist", "playlist", flex=True),
    Column("sound", "sound", show=lambda v: "on" if v else "", drop=5),
    Column("display_user", "display user", drop=1),
    Column("updated", "updated", drop=6),
    Column("updated_by", "by", drop=6),
)


def _layout_label(code: str) -> str:
    from dashboard.rules.screenspec import ScreenLayout

    return f"{code} {ScreenLayout(code).label}" if code in ScreenLayout.labels() else code


@screens_app.command("list")
def screens_list(fmt: str | None = format_option(), acting: str | None = _as_option()) -> None:
    """Every screen (with --as a shift lead: those within their scope): what each shows and its display user."""
    from dashboard.rules.screenspec import playlist_from_json, playlist_text
    from dashboard.store.hallscreens import list_screens

    shape = output_format(fmt)
    settings = cli_settings()
    sessions = hall_sessions(settings)
    table = shape is Format.TABLE
    rows = []
    with sessions() as session:
        for s in list_screens(session, hall_actor(session, acting)):
            updated = s.updated_at.astimezone(settings.tz)
            rows.append({
                "name": s.name, "title": s.title,
                "region": (f"{s.region.name} {s.region.code}" if table else s.region.code) if s.region else
                          ("全市" if table else None),
                "layout": s.layout, "tile": s.tile, "metric": s.metric,
                "playlist": playlist_text(playlist_from_json(s.playlist)) if s.playlist else None,
                "sound": bool(s.sound),
                "display_user": s.display_user.username if s.display_user else None,
                "updated": updated.strftime("%Y-%m-%d %H:%M") if table else updated.isoformat(),
                "updated_by": s.updated_by})
    if not rows and table:
        console.print("no screens yet: add one with 'gridhall screens add NAME --user wall-1'")
        return
    emit(console, SCREEN_COLUMNS, rows, shape, title=f"{len(rows)} screen(s)")


@screens_app.command("remove")
def screens_remove(name: str = typer.Argument(..., help="The screen to remove."),
                   acting: str | None = _as_option()) -> None:
    """Remove a screen (its display user stays, unbound; the change log keeps its history)."""
    from dashboard.store.hallscreens import remove_screen

    settings = cli_settings()
    sessions = hall_sessions(settings)
    hall_commit(settings, sessions, lambda session: remove_screen(session, hall_actor(session, acting), name))
    console.print(f"removed screen {name}", highlight=False)


LOG_COLUMNS = (
    Column("at", "at"),
    Column("actor", "by"),
    Column("kind", "kind", drop=2),
    Column("object", "what"),
    Column("action", "action"),
    Column("old", "old", flex=True, drop=1),
    Column("new", "new", flex=True),
)


@screens_app.command("log")
def screens_log(
    name: str | None = typer.Argument(None, help="Only this screen (or banner id with --banners)."),
    banners: bool = typer.Option(False, "--banners", help="Banner changes instead of screen changes."),
    limit: int = typer.Option(CHANGES_SHOWN, "--limit", min=1, help="The newest N changes."),
    fmt: str | None = format_option(),
) -> None:
    """Who changed which screen (or banner), when, from what to what; newest first."""
    from dashboard.store.hallcontrol import changes

    shape = output_format(fmt)
    settings = cli_settings()
    sessions = hall_sessions(settings)
    table = shape is Format.TABLE
    with sessions() as session:
        found = changes(session, kind="banner" if banners else "screen", obj=name, limit=limit)
        rows = [{"at": c.at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S") if table
                 else c.at.astimezone(settings.tz).isoformat(),
                 "actor": c.actor, "kind": c.kind, "object": c.object, "action": c.action,
                 "old": _cell(c.old, shape), "new": _cell(c.new, shape)}
                for c in found]
    notes_console(shape).print(f"{len(rows)} change(s)", highlight=False)
    emit(console, LOG_COLUMNS, rows, shape)


def _cell(value: dict[str, Any] | None, shape: Format) -> Any:
    """A logged setting: ``key=value, …`` in a table, JSON text in TSV, an object in JSON."""
    if value is None or shape is Format.JSON:
        return value
    if shape is Format.TSV:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in value.items())
