"""Publish recorded case events from a file: replays, integration tests, migrations.

The file is JSON Lines (one :class:`CaseEventMessage` object per line) or CSV (header = the
message's field names, empty cell = absent). Every record is validated exactly as the ingest
decodes a stream entry (:func:`decode_entry`) before anything is sent. Events are sent
unchanged: a producer never rewrites ``occurred_at`` or any other field; pacing only decides
*when* an entry is appended, never what it says.

No CLI framework in here: ``cli/feed.py`` does the printing, the progress bar and Ctrl-C.
"""

from __future__ import annotations

import csv
import io
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import redis

from dashboard.output.tabular import is_stdio
from dashboard.rules.clock import utcnow
from dashboard.settings import Settings

from .contract import ENTRY_FIELD, FUTURE_TOLERANCE, CaseEventMessage, FeedError, StreamFields, decode_entry
from .keys import case_streams, stream_for
from .producer import append

FORMATS = ("jsonl", "csv")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_FIELDS = tuple(CaseEventMessage.model_fields)
_REQUIRED = tuple(name for name, f in CaseEventMessage.model_fields.items() if f.is_required())
_INT_FIELDS = {"v"}
_FLOAT_FIELDS = {"lon", "lat"}
CHUNK = 500  # entries per pipelined round trip


class PublishFileError(ValueError):
    """The file as a whole cannot be read (unknown format, bad CSV header, wrong encoding)."""


@dataclass(frozen=True)
class LineProblem:
    """One record that breaks the contract, shown as ``FILE:LINE: reason``."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Record:
    """A valid event of the file and the line it came from."""

    line: int
    message: CaseEventMessage


@dataclass
class Loaded:
    """What a file holds: the valid events in file order, and every problem."""

    records: list[Record] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    duplicate_ids: int = 0  # event_ids seen more than once (the ingest stores each once)


@dataclass(frozen=True)
class Planned:
    """One entry to XADD: where, what, and when (seconds after the start; 0 = now)."""

    stream: str
    entry: StreamFields
    due: float = 0.0


@dataclass
class PublishResult:
    sent: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    per_stream: Counter[str] = field(default_factory=Counter)
    error: str | None = None  # Redis failed mid-way
    uncertain: int = 0  # entries of the failed round trip: appended or not, unknown

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


# -- reading ---------------------------------------------------------------------------
def detect_format(path: Path, given: str | None = None) -> str:
    """``jsonl`` or ``csv``: the given one, else from the file extension."""
    if given:
        fmt = given.lower()
        if fmt in ("ndjson", "json-lines", "jsonlines"):
            fmt = "jsonl"
        if fmt not in FORMATS:
            raise PublishFileError(f"unknown format {given!r}; use jsonl or csv")
        return fmt
    if is_stdio(path):
        raise PublishFileError("standard input (-): give its format with --format jsonl|csv")
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise PublishFileError(
            f"{path}: cannot tell the format from the extension {path.suffix or '(none)'!r}; "
            "name it .jsonl/.ndjson/.csv or pass --format jsonl|csv"
        )
    return found


def load_file(path: Path, fmt: str | None = None, *, now: datetime | None = None) -> Loaded:
    """Read and validate every record of PATH (standard input for ``-``); raises PublishFileError
    if the file is unusable."""
    fmt = detect_format(path, fmt)
    try:
        raw_bytes = sys.stdin.buffer.read() if is_stdio(path) else path.read_bytes()
        text = raw_bytes.decode("utf-8-sig")  # tolerate the BOM that Excel writes
    except UnicodeDecodeError as exc:
        raise PublishFileError(
            f"{path}: not UTF-8 (byte {exc.start}); convert it first, e.g. iconv -f GBK -t UTF-8"
        ) from None
    except OSError as exc:
        raise PublishFileError(f"{path}: {exc.strerror or exc}") from None
    raw = _jsonl_payloads(text) if fmt == "jsonl" else _csv_payloads(path, text)
    loaded = Loaded()
    limit = (now or utcnow()) + FUTURE_TOLERANCE
    seen: set[str] = set()
    for line, payload in raw:
        if isinstance(payload, LineProblem):
            loaded.problems.append(LineProblem(path, line, payload.reason))
            continue
        try:
            # The ingest's own decoder: same size limit, same schema, same messages.
            message = decode_entry({ENTRY_FIELD: payload})
        except FeedError as exc:
            loaded.problems.append(LineProblem(path, line, str(exc)))
            continue
        if message.occurred_at > limit:
            loaded.problems.append(LineProblem(
                path, line, f"occurred_at {message.occurred_at.isoformat()} is in the future "
                            "(the ingest would dead-letter it)"))
            continue
        if message.event_id in seen:
            loaded.duplicate_ids += 1
        seen.add(message.event_id)
        loaded.records.append(Record(line, message))
    return loaded


def _jsonl_payloads(text: str) -> Iterator[tuple[int, str | LineProblem]]:
    # Only \n ends a record: str.splitlines would also split on U+2028, legal inside JSON.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def _csv_payloads(path: Path, text: str) -> Iterator[tuple[int, str | LineProblem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [name.strip() for name in header]
    unknown = [name for name in header if name not in _FIELDS]
    if unknown:
        raise PublishFileError(
            f"{path}:1: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"columns are CaseEventMessage fields: {', '.join(_FIELDS)}"
        )
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise PublishFileError(f"{path}:1: missing required column(s) {', '.join(missing)}")
    dupes = sorted(name for name, n in Counter(header).items() if n > 1)
    if dupes:
        raise PublishFileError(f"{path}:1: column(s) given twice: {', '.join(dupes)}")
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, LineProblem(path, start, f"CSV: {exc}")
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1  # a quoted cell may span several lines
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield line, LineProblem(path, line, f"{len(row)} cells, the header has {len(header)}")
            continue
        data: dict[str, object] = {}
        problem = None
        for name, cell in zip(header, row, strict=True):
            if cell.strip() == "":
                continue  # empty cell = absent
            try:
                if name in _INT_FIELDS:
                    data[name] = int(cell.strip())
                elif name in _FLOAT_FIELDS:
                    data[name] = float(cell.strip())
                else:
                    data[name] = cell
            except ValueError:
                problem = f"{name}: not a number: {cell.strip()!r}"
                break
        if problem:
            yield line, LineProblem(path, line, problem)
        else:
            yield line, orjson.dumps(data).decode()


# -- planning --------------------------------------------------------------------------
def plan(
    records: Sequence[Record],
    settings: Settings,
    *,
    stream: str | None = None,
    rate: float | None = None,
    speedup: float | None = None,
) -> list[Planned]:
    """Target stream and due time of every event.

    Routing: ``stream`` if given, else :func:`stream_for` by the event's grid code or, for an
    event without one (立案, 派遣… carry no grid), the grid code of its case elsewhere in the
    file, so all events of a case land on the same shard. Pacing: ``rate`` events per second
    in file order, or the recorded ``occurred_at`` gaps divided by ``speedup`` (sorted by
    ``occurred_at``; ties keep file order), or everything at once.
    """
    if rate is not None and speedup is not None:
        raise ValueError("give rate or speedup, not both")
    case_grid: dict[str, str] = {}
    for record in records:
        m = record.message
        if m.grid_code and m.case_id not in case_grid:
            case_grid[m.case_id] = m.grid_code
    ordered = list(records)
    if speedup is not None:
        ordered.sort(key=lambda r: r.message.occurred_at)  # stable: ties keep file order
    first = ordered[0].message.occurred_at if ordered else None
    planned = []
    for i, record in enumerate(ordered):
        m = record.message
        target = stream or stream_for(settings, m.grid_code or case_grid.get(m.case_id))
        if rate is not None:
            due = i / rate
        elif speedup is not None and first is not None:
            due = (m.occurred_at - first).total_seconds() / speedup
        else:
            due = 0.0
        planned.append(Planned(target, m.to_entry(), due))
    return planned


def unread_streams(planned: Iterable[Planned], settings: Settings) -> list[str]:
    """Target streams the ingest of these settings does not read (a typo or a missing shard)."""
    read = set(case_streams(settings))
    return sorted({p.stream for p in planned} - read)


# -- sending ---------------------------------------------------------------------------
def send(
    client: redis.Redis,
    planned: Sequence[Planned],
    *,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
    clock: Callable[[], float] = time.monotonic,
    replicas: int = 0,
) -> PublishResult:
    """XADD the planned entries, each not before its due time, in pipelined chunks.

    ``replicas`` > 0: a chunk counts as sent only once that many replicas have it (WAIT; see
    :func:`feeds.producer.append`); otherwise the send stops with the chunk ``uncertain``.

    Whatever is due is sent in one round trip (at most ``chunk`` entries), so a high rate
    still batches. ``stop`` is checked between round trips: on Ctrl-C every entry counted in
    ``sent`` is in Redis and no other is.
    """
    stop = stop or threading.Event()
    result = PublishResult()
    start = clock()
    i = 0
    while i < len(planned):
        if stop.is_set():
            result.interrupted = True
            break
        wait = planned[i].due - (clock() - start)
        if wait > 0:
            if stop.wait(min(wait, 0.5)):
                result.interrupted = True
                break
            continue
        now = clock() - start
        j = i
        while j < len(planned) and j - i < chunk and planned[j].due <= now:
            j += 1
        try:
            append(client, [(item.stream, item.entry) for item in planned[i:j]], replicas=replicas)
        except redis.RedisError as exc:
            # Some of this round trip may have been appended; republishing is harmless
            # (the ingest is idempotent by event_id), so say so rather than guess.
            result.error = f"{type(exc).__name__}: {exc}"
            result.uncertain = j - i
            break
        for item in planned[i:j]:
            result.per_stream[item.stream] += 1
        result.sent += j - i
        i = j
        if progress:
            progress(result.sent)
    result.elapsed = clock() - start
    return result
