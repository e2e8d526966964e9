"""``gridhall deadletters``: inspect and re-drive the entries the ingest could not apply."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli.common import cli_settings, console, err, fail, format_option, notes_console, output_format, redis_client
from dashboard.output.tabular import Column, Format, emit
from dashboard.settings import Settings
from feeds import defaults

if TYPE_CHECKING:
    from feeds.deadletters import DeadLetter, DeadLetters

deadletters_app = typer.Typer(help="Inspect and re-drive entries the ingest could not apply.",
                              no_args_is_help=True)


def _dead_letters(settings: Settings) -> DeadLetters:
    from feeds.deadletters import DeadLetters

    return DeadLetters(redis_client(settings), settings)


def _reason_code(reason: str | None) -> str | None:
    from feeds.contract import DeadReason

    if reason is None:
        return None
    codes = [r.value for r in DeadReason]
    if reason not in codes:
        fail(f"--reason: unknown code {reason!r}; one of {', '.join(codes)}", 2)
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
    limit: int = typer.Option(defaults.DEAD_LETTERS_SHOWN, min=1, help="At most N dead letters."),
    since: str | None = typer.Option(
        None,
        help="Only since then: ISO date/time (city time if no offset) or 30m, 2h, 7d.",
    ),
    fmt: str | None = format_option(),
) -> None:
    """Dead letters, newest first, and the per-reason counters."""
    from feeds.deadletters import parse_since

    shape = output_format(fmt)
    settings = cli_settings()
    code = _reason_code(reason)
    try:
        since_at = parse_since(since, settings.tz) if since else None
    except ValueError as exc:
        fail(f"--since: {exc}", 2)
    dead = _dead_letters(settings)
    letters = dead.newest(reason=code, since=since_at, limit=limit)
    tz = settings.tz
    notes = notes_console(shape)
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

    settings = cli_settings()
    dead = _dead_letters(settings)
    letter = dead.get(dead_id)
    if letter is None:
        fail(f"no dead letter {dead_id} in {dead.stream}", 1)
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
    settings = cli_settings()
    code = _reason_code(reason)
    ids = ids or []
    if ids and (code or all_):
        fail("give dead-letter IDs, or --reason/--all, not both", 2)
    if not ids and not code and not all_:
        fail("nothing selected: give dead-letter IDs, --reason CODE or --all", 2)
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
            fail(f"no dead letter {', '.join(missing)} in {dead.stream}; nothing was re-queued", 1)
    else:
        letters = dead.select(reason=code)
    if not letters:
        console.print("no dead letters to re-drive")
        return
    for name in dead.unread_targets(letters):
        err.print(f"[yellow]warning:[/] the ingest does not read {name} (GRIDHALL_FEED_SHARDS); "
                  "entries re-driven there wait until it does", highlight=False)
    bridged = [letter for letter in letters if letter.bridge is not None]
    letters = [letter for letter in letters if letter.bridge is None]
    if bridged:
        _retry_bridged(settings, dead, bridged, dry_run)
        if not letters:
            return
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


def _retry_bridged(settings: Settings, dead: DeadLetters, letters: list[DeadLetter], dry_run: bool) -> None:
    """A bridge's dead letters: map the kept source record again with the current mapping."""
    from feeds.bridges.bridge import retry_bridge_letters

    result = retry_bridge_letters(dead.client, settings, letters, dry_run=dry_run)
    for letter in result.unknown:
        err.print(f"[yellow]skipped[/] {letter.id}: no bridge {letter.bridge!r} here, or no source record kept",
                  highlight=False)
    for letter, exc in result.still:
        console.print(f"  still unmappable {letter.id} ({exc.code}): {exc.reason}", highlight=False, markup=False)
    if dry_run:
        for letter, n in result.planned:
            console.print(f"  would map {letter.id} ({letter.bridge}) → {n} event(s)", highlight=False)
        console.print(f"dry run: {len(result.planned)} bridge dead letter(s) would be mapped; nothing changed")
        return
    gone = f" ({len(result.gone)} already gone)" if result.gone else ""
    events = sum(n for _, n in result.published)
    console.print(f"mapped {len(result.published)} bridge dead letter(s) again: {events} event(s) published{gone}; "
                  f"{len(result.still)} still unmappable (kept)", highlight=False)
