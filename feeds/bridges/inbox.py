"""Where a bridge's source records come from: a folder of files or a Redis stream.

Both inboxes yield :class:`InboxRecord` and are told ``done(record, pipe)`` after the record's
events (or its dead letter) are queued on ``pipe``, a Redis MULTI/EXEC pipeline: the
checkpoint (a file's count of records done, or the stream entry's XACK) is committed in the
same transaction as the events. A bridge killed at any moment and restarted therefore
neither loses nor duplicates a record (docs/sources.md, "The bridge framework").

**Folder.** Files ``*.jsonl`` (one JSON object a line; blank lines are skipped) and ``*.csv``
(UTF-8, a header row; a BOM is allowed) dropped in the folder, taken in name order. A file
is only read once it is complete: a name ending in ``.tmp`` (or starting with ``.``) is never
read — write it so and rename it — and a file modified less than ``settle_s`` seconds ago is
left for the next pass. Progress per file (records done) is the hash
``bridge:<name>:files``; a finished file is moved into ``done/`` and its progress deleted.

**Stream.** The source system XADDs one entry per record with a field ``record`` holding the
JSON object (or the record's fields directly, as strings). The bridge reads with its consumer
group ``bridge:<name>`` (created at the stream's start), first its own pending entries (a
restart after a kill), then new ones; the XACK is in the transaction with the events.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import orjson
import redis

from dashboard.settings import Settings

from ..defaults import BRIDGE_SETTLE_S
from ..keys import bridge_files_key, bridge_group

SUFFIXES = (".jsonl", ".csv")
DONE_DIR = "done"
RECORD_FIELD = "record"  # the stream entry's field holding the record as JSON


@dataclass(frozen=True)
class InboxRecord:
    """One source record: where it came from and its fields as read.

    ``origin`` is ``"file.jsonl:17"`` (file name and line number; for CSV the line of the row)
    or a stream entry id. ``error`` is set when the inbox could not read a record at all (a
    line that is not a JSON object): the bridge dead-letters it as ``bad_record`` with ``raw``
    = ``{"line": <the text>}``.
    """

    origin: str
    raw: dict[str, Any]
    error: str | None = None
    # Private to the inbox that yielded it: how to mark it done.
    ref: tuple[str, int | str] = field(default=("", 0), compare=False)


class Inbox(Protocol):
    """What a bridge reads from."""

    source: str  # where the records come from, for dead letters (a folder path or a stream key)

    def records(self) -> Iterator[InboxRecord]:
        """The records available now (a pass); may be called again for more."""
        ...

    def done(self, record: InboxRecord, pipe: Any) -> None:
        """Queue the record's checkpoint on ``pipe`` (a MULTI/EXEC pipeline)."""
        ...

    def finish(self) -> None:
        """After a pass: tidy up what is finished (move read files into done/)."""
        ...


class FolderInbox:
    """Files dropped in a folder, with a per-file checkpoint in Redis."""

    def __init__(self, client: redis.Redis, settings: Settings, name: str, folder: Path,
                 *, settle_s: float = BRIDGE_SETTLE_S) -> None:
        self.client = client
        self.folder = Path(folder)
        self.source = str(self.folder)
        self.key = settings.key(bridge_files_key(name))
        self.settle_s = settle_s
        self._finished: list[Path] = []

    def ready_files(self) -> list[Path]:
        """Complete inbox files, in name order."""
        if not self.folder.is_dir():
            return []
        now = time.time()
        found = []
        for path in sorted(self.folder.iterdir(), key=lambda p: p.name):
            if (not path.is_file() or path.name.startswith(".") or path.suffix not in SUFFIXES):
                continue
            try:
                if now - path.stat().st_mtime < self.settle_s:
                    continue  # still being written (or just renamed in: read it next pass)
            except FileNotFoundError:
                continue
            found.append(path)
        return found

    def records(self) -> Iterator[InboxRecord]:
        for path in self.ready_files():
            done = int(cast(str | None, self.client.hget(self.key, path.name)) or 0)
            count = 0
            for origin, raw, error in _read_file(path):
                count += 1
                if count <= done:
                    continue
                yield InboxRecord(origin, raw, error, ref=(path.name, count))
            self._finished.append(path)

    def done(self, record: InboxRecord, pipe: Any) -> None:
        pipe.hset(self.key, record.ref[0], record.ref[1])

    def finish(self) -> None:
        """Move the files read to the end into done/ (their checkpoint is then dropped)."""
        for path in self._finished:
            target = self.folder / DONE_DIR
            target.mkdir(exist_ok=True)
            if path.exists():
                os.replace(path, target / path.name)
            self.client.hdel(self.key, path.name)
        self._finished = []


def _read_file(path: Path) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """(origin, record, error) for each record of a file, in order."""
    text = path.read_bytes().decode("utf-8", "replace").lstrip("\ufeff")
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            clean = {str(k).strip(): (v.strip() if isinstance(v, str) else v)
                     for k, v in row.items() if k is not None}
            error = "more values than the header has columns" if None in row else None
            yield f"{path.name}:{reader.line_num}", clean, error
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        origin = f"{path.name}:{number}"
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield origin, {"line": line[:4000]}, f"line is not JSON: {exc}"
            continue
        if not isinstance(value, dict):
            yield origin, {"line": line[:4000]}, "line is not a JSON object"
            continue
        yield origin, value, None


class StreamInbox:
    """A Redis stream the source system XADDs to, read with a consumer group."""

    def __init__(self, client: redis.Redis, settings: Settings, name: str, stream: str,
                 *, consumer: str | None = None, block_ms: int = 1000, count: int = 100) -> None:
        self.client = client
        self.stream = stream
        self.source = stream
        self.group = settings.key(bridge_group(name))
        # One bridge process per source: a fixed consumer name, so a restarted bridge finds
        # what its killed predecessor had read but not acknowledged.
        self.consumer = consumer or f"bridge-{name}"
        self.block_ms = block_ms
        self.count = count
        self._pending_done = False

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def records(self) -> Iterator[InboxRecord]:
        self.ensure_group()
        if not self._pending_done:  # first what this consumer read before a crash
            start = "0"
            while True:
                reply = self._read(start, None)
                if not reply:
                    break
                for record in reply:
                    start = str(record.ref[1])
                    yield record
            self._pending_done = True
        yield from self._read(">", self.block_ms)

    def _read(self, start: str, block: int | None) -> list[InboxRecord]:
        reply = cast(list[Any], self.client.xreadgroup(self.group, self.consumer, {self.stream: start},
                                                       count=self.count, block=block))
        out = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                out.append(_stream_record(entry_id, fields or {}))
        return out

    def done(self, record: InboxRecord, pipe: Any) -> None:
        pipe.xack(self.stream, self.group, record.ref[1])

    def finish(self) -> None:
        return None


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _stream_record(entry_id: str, fields: dict[Any, Any]) -> InboxRecord:
    data = {_text(k): _text(v) for k, v in fields.items()}
    ref = ("", entry_id)
    if RECORD_FIELD in data and len(data) == 1:
        try:
            value = orjson.loads(data[RECORD_FIELD])
        except orjson.JSONDecodeError as exc:
            return InboxRecord(entry_id, {"line": data[RECORD_FIELD][:4000]}, f"record is not JSON: {exc}", ref)
        if not isinstance(value, dict):
            return InboxRecord(entry_id, {"line": data[RECORD_FIELD][:4000]}, "record is not a JSON object", ref)
        return InboxRecord(entry_id, value, None, ref)
    return InboxRecord(entry_id, data, None, ref)
