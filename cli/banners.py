"""``gridhall banners``: broadcast banners (横幅通知) on the hall's screens — post, list, clear
(docs/halls.md, docs/cli.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from cli.common import cli_settings, console, fail, format_option, hall_actor, hall_commit, hall_sessions, output_format
from dashboard.output.tabular import Column, Format, emit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

banners_app = typer.Typer(help="横幅通知: messages on the hall's screens until they expire (docs/halls.md).",
                          no_args_is_help=True)


def _as_option() -> Any:
    return typer.Option(None, "--as", metavar="USER",
                        help="Act as this user (their rules; recorded under their name). Default: 'cli', an admin.")


@banners_app.command("post")
def banners_post(
    text: str = typer.Argument(..., help="The message, at most 200 characters, e.g. 暴雨红色预警，各单位注意积水点."),
    level: str = typer.Option("notice", "--level", help="notice (通知) or warning (预警)."),
    expires: str = typer.Option("2h", "--expires", metavar="DURATION",
                                help="How long it stays: 90m, 2h, 1d … (1 minute to 7 days)."),
    region: str | None = typer.Option(None, "--region", metavar="CODE|city",
                                      help="Every screen within this district or street; default every screen "
                                           "(within --as USER's scope)."),
    screen: list[str] = typer.Option([], "--screen", metavar="NAME",  # noqa: B008 - typer's list option
                                     help="Only this screen (repeat for several); instead of --region."),
    acting: str | None = _as_option(),
) -> None:
    """Post a banner to every screen (of a region) or to chosen screens; prints its id."""
    from dashboard.rules.screenspec import SpecError, parse_level, parse_ttl
    from dashboard.store.banners import post_banner

    try:
        parsed_level = parse_level(level)
        ttl = parse_ttl(expires)
    except SpecError as exc:
        fail(str(exc), 1)
    settings = cli_settings()
    sessions = hall_sessions(settings)

    def action(session: Session) -> tuple[int, str]:
        banner = post_banner(session, hall_actor(session, acting), text, level=parsed_level, ttl=ttl,
                             region=region, screens=screen)
        return banner.id, banner.expires_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")

    banner_id, until = hall_commit(settings, sessions, action)
    console.print(f"posted banner {banner_id} ({parsed_level.label}) until {until}", highlight=False)


BANNER_COLUMNS = (
    Column("id", "id"),
    Column("level", "level", show=lambda v: _level_label(v)),
    Column("text", "text", flex=True),
    Column("target", "to", flex=True),
    Column("posted_by", "by", drop=2),
    Column("posted_at", "posted", drop=3),
    Column("expires_at", "until"),
    Column("state", "state", drop=1),
)


def _level_label(code: str) -> str:
    from dashboard.rules.screenspec import BannerLevel

    return BannerLevel(code).label if code in BannerLevel.labels() else code


@banners_app.command("list")
def banners_list(
    all_: bool = typer.Option(False, "--all", help="Ended banners too (the newest 200)."),
    fmt: str | None = format_option(),
) -> None:
    """The active banners (with --all also ended ones), newest first."""
    from dashboard.rules.clock import utcnow
    from dashboard.store.banners import TARGET_SCREENS, is_active, list_banners

    shape = output_format(fmt)
    settings = cli_settings()
    sessions = hall_sessions(settings)
    table = shape is Format.TABLE
    now = utcnow()

    def when(t: Any) -> Any:
        if t is None:
            return None
        local = t.astimezone(settings.tz)
        return local.strftime("%m-%d %H:%M") if table else local.isoformat()

    rows = []
    with sessions() as session:
        for b in list_banners(session, now=now, active_only=not all_):
            if b.target == TARGET_SCREENS:
                target = ",".join(s.name for s in b.screens) or "—"
            else:
                target = (f"{b.region.name} {b.region.code}" if table else b.region.code) if b.region else "全市"
            state = "active" if is_active(b, now) else ("cleared" if b.cleared_at else "expired")
            rows.append({"id": b.id, "level": b.level, "text": b.text, "target": target,
                         "posted_by": b.posted_by, "posted_at": when(b.posted_at),
                         "expires_at": when(b.cleared_at or b.expires_at), "state": state})
    if not rows and table:
        console.print("no active banners" if not all_ else "no banners yet")
        return
    emit(console, BANNER_COLUMNS, rows, shape, title=f"{len(rows)} banner(s)")


@banners_app.command("clear")
def banners_clear(banner_id: int = typer.Argument(..., metavar="ID", help="The banner's id (banners list)."),
                  acting: str | None = _as_option()) -> None:
    """End a banner now; the screens drop it within a second."""
    from dashboard.store.banners import clear_banner

    settings = cli_settings()
    sessions = hall_sessions(settings)
    hall_commit(settings, sessions, lambda session: clear_banner(session, hall_actor(session, acting), banner_id))
    console.print(f"cleared banner {banner_id}", highlight=False)
