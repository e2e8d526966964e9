"""Rows out of a command line: a readable table on a terminal, TSV or JSON when piped.

Every listing command of ``gridhall`` prints through :func:`emit`, so ``--format`` means the
same everywhere (docs/cli.md, "Output formats"): ``table`` (the default only when standard
output is a terminal), ``tsv`` (the default otherwise: a header of the column keys, then one
line per row) and ``json`` (a list of objects keyed by the same column keys). The table
stays readable on an 80-column terminal: long free-text columns are shortened with "…" and
the least useful columns are left out, instead of squeezing every column to a few
characters. Also here: ``-`` as a file name means standard output (or input).
"""

from __future__ import annotations

import contextlib
import enum
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

STDIO = "-"
# Rich's default box: a border left and right of every column and one space of padding
# each side, i.e. 3 cells per column plus 1.
_OVERHEAD_PER_COLUMN = 3
# A free-text column is worth keeping other columns out for down to this many cells …
_COMFORTABLE_FLEX = 20
# … and is never shortened below this many (less says nothing).
_MIN_FLEX = 10


class Format(enum.StrEnum):
    """What a listing command prints."""

    TABLE = "table"
    TSV = "tsv"
    JSON = "json"


def resolve_format(given: str | None, stream: IO[str] | None = None) -> Format:
    """The format asked for, else ``table`` on a terminal and ``tsv`` otherwise.

    Raises ValueError naming the choices for an unknown format.
    """
    if given is None:
        out = stream if stream is not None else sys.stdout
        return Format.TABLE if _isatty(out) else Format.TSV
    try:
        return Format(given.strip().lower())
    except ValueError:
        raise ValueError(f"unknown format {given!r}; one of {', '.join(f.value for f in Format)}") from None


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False


@dataclass(frozen=True)
class Column:
    """One column: ``key`` names it in TSV and JSON (stable), ``title`` heads the table.

    ``flex``: free text that may be shortened with "…" in a narrow table. ``drop``: 0 never
    left out of the table; a higher number is left out sooner when the terminal is too narrow
    (TSV and JSON always have every column). ``show`` turns a value into table text.
    """

    key: str
    title: str
    flex: bool = False
    drop: int = 0
    show: Callable[[Any], str] | None = None


def table_text(value: Any) -> str:
    """A value as table text: missing values are a dash, whitespace runs one space."""
    if value is None or value == "":
        return "—"
    return " ".join(str(value).split())


def tsv_text(value: Any) -> str:
    """A value as a TSV field: missing is empty, booleans as in JSON; tabs and line breaks
    become spaces."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text.translate({9: " ", 10: " ", 13: " "}) if any(c in text for c in "\t\n\r") else text


def emit(console: Console, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], fmt: Format,
         *, title: str | None = None, row_styles: Sequence[str | None] | None = None) -> None:
    """Print ``rows`` (mappings by column key) in ``fmt`` on ``console``'s stream.

    TSV and JSON print the rows only (no title): a caller's notes belong on standard error
    then (see :func:`notes_console`).
    """
    if fmt is Format.JSON:
        data = [{c.key: row.get(c.key) for c in columns} for row in rows]
        console.file.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    elif fmt is Format.TSV:
        lines = ["\t".join(c.key for c in columns)]
        lines += ["\t".join(tsv_text(row.get(c.key)) for c in columns) for row in rows]
        console.file.write("\n".join(lines) + "\n")
    else:
        console.print(fit_table(columns, rows, console.width, title=title, row_styles=row_styles))


def fit_table(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], width: int, *,
              title: str | None = None, row_styles: Sequence[str | None] | None = None) -> Table:
    """A table of ``rows`` no wider than ``width`` when at all possible.

    Columns keep their natural width; when they do not fit, the droppable columns go
    (highest ``drop`` first) until the fixed columns fit next to free-text columns of a
    readable width, then the free-text columns share what is left (the widest gives way
    first). Nothing is squeezed to a few characters to keep one more column.
    """
    texts = [[(c.show or table_text)(row.get(c.key)) for c in columns] for row in rows]
    natural = [max([cell_len(c.title)] + [cell_len(t[i]) for t in texts]) for i, c in enumerate(columns)]
    kept = list(range(len(columns)))

    def needed(ids: list[int]) -> int:
        fixed = sum(natural[i] for i in ids if not columns[i].flex)
        flex = sum(min(natural[i], _COMFORTABLE_FLEX) for i in ids if columns[i].flex)
        return fixed + flex + _OVERHEAD_PER_COLUMN * len(ids) + 1

    while needed(kept) > width:
        droppable = [i for i in kept if columns[i].drop > 0]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    widths = _share(width - sum(natural[i] for i in kept if not columns[i].flex)
                    - _OVERHEAD_PER_COLUMN * len(kept) - 1,
                    {i: natural[i] for i in kept if columns[i].flex})
    table = Table(title=title, title_justify="left")
    for i in kept:
        c = columns[i]
        if c.flex:
            table.add_column(c.title, no_wrap=True, overflow="ellipsis", max_width=widths[i],
                             min_width=min(widths[i], cell_len(c.title)))
        else:
            table.add_column(c.title, no_wrap=True, min_width=natural[i])
    for n, t in enumerate(texts):
        table.add_row(*(t[i] for i in kept), style=row_styles[n] if row_styles else None)
    return table


def _share(room: int, wants: dict[int, int]) -> dict[int, int]:
    """Widths for the free-text columns: everyone's natural width if it fits, else the
    widest are cut down to an equal level (never below the minimum)."""
    widths = dict(wants)
    while widths and sum(widths.values()) > room:
        widest = max(widths.values())
        if widest <= _MIN_FLEX:
            break
        over = sum(widths.values()) - room
        at_top = [i for i, w in widths.items() if w == widest]
        below = max([w for w in widths.values() if w < widest] + [_MIN_FLEX])
        cut = min(widest - below, -(-over // len(at_top)))
        for i in at_top:
            widths[i] = max(_MIN_FLEX, widest - cut)
    return widths


def is_stdio(path: Path | str | None) -> bool:
    """Whether a file argument is ``-``: standard output (or input)."""
    return path is not None and str(path) == STDIO


@contextlib.contextmanager
def open_text_output(path: Path | str, *, encoding: str = "utf-8", bom: bool = False) -> Iterator[IO[str]]:
    """A text stream on ``path``, or standard output for ``-`` (left open; never a BOM, which
    would get in the way of the next program in a pipe)."""
    if is_stdio(path):
        yield sys.stdout
        sys.stdout.flush()
        return
    with Path(path).open("w", encoding="utf-8-sig" if bom else encoding, newline="") as fh:
        yield fh
