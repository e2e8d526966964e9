"""Snapshots of a web worker's live view: a restarted worker loads one and catches up (docs/wall.md).

A worker that loaded its :class:`~dashboard.figures.liveview.LiveView` (from SQL, or from a
snapshot) writes the view's state to ``DATA_DIR/liveview/`` after the load and then every
``GRIDHALL_SNAPSHOT_S`` seconds when the view moved. A starting worker reads it, checks it and
follows the change stream from the notice id the snapshot is consistent with
(:meth:`feeds.follower.ChangeFollower.bootstrap`): at a million open cases that is about a
second instead of the 20 s of a load from SQL.

**The file.** An uncompressed ``.npz`` (numpy's zip of ``.npy`` arrays, read with
``allow_pickle=False``): the slot, grid and unit arrays as they are, a JSON ``header``, a JSON
``meta`` (places, windows, counts) and the large lists — case ids, numbers, descriptions,
today's and this month's facts — as pickles of plain lists, tuples, strings and numbers, read
with an unpickler that refuses every global (:class:`_PlainUnpickler`: no class, no function,
so nothing in the file can run code). A million case ids decode about ten times faster so
than as JSON. The header says what the state is consistent with:

- ``format`` (:data:`FORMAT`) and ``code``: a hash of ``dashboard/figures/liveview.py`` — a view
  written by other code is not read;
- ``stream``: the change stream's key (the Redis prefix), ``last_id``: the last notice applied
  to the state, ``run_id``: the Redis server's run id then;
- ``database``: a hash of the database URL (password left out) and ``reference``: the Alembic
  revision and the grids', units' and regions' counts and highest ids
  (:func:`~dashboard.figures.liveview.reference_fingerprint`);
- ``tz``, ``written_at``, ``open_cases``.

The file's name carries a hash of the stream key and database, so deployments or test runs
sharing a ``DATA_DIR`` do not overwrite each other's. It is written to a temporary file,
fsynced and moved over the old one (``os.replace``): a reader sees the old file or the new
one, never half of one. One writer at a time per folder: an exclusive non-blocking ``flock``
on ``<name>.lock``; a worker that does not get it skips (another worker is writing), and a file
younger than half the interval is not written again (two workers do not write twice).

Reading checks everything above and the state's own consistency
(:meth:`LiveView.from_state`: shapes, slots, the class names and working-time offsets
recomputed with this worker's rules); the follower then checks the stream (same Redis
run id, and no notice after ``last_id`` trimmed) and, after the catch-up, compares 500 random
open cases with SQL (:meth:`LiveView.differing`). Any doubt — a missing, partial, corrupt,
foreign or stale file — means a load from SQL and one log line, never a failure.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import pickle
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import make_url

import dashboard.figures.liveview as liveview_module
from dashboard.settings import Settings

from .keys import CHANGES_STREAM

log = logging.getLogger(__name__)

FORMAT = 2  # bump when the file's layout changes (2: month facts carry their grid; districts)
FOLDER = "liveview"  # under GRIDHALL_DATA_DIR
PICKLE_PROTOCOL = 5
_BIG = ("cid", "number", "desc", "today_ids", "today", "month_ids", "month")


class SnapshotError(Exception):
    """A snapshot that cannot be used; the message says why (it is logged, then SQL is read)."""


def _code_hash() -> str:
    try:
        source = Path(liveview_module.__file__ or "").read_bytes()
    except OSError:
        source = b""
    return hashlib.blake2b(source, digest_size=8).hexdigest()


CODE = _code_hash()


def database_identity(settings: Settings) -> str:
    """A hash of the database URL without its password."""
    url = settings.effective_database_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:
        shown = url
    return hashlib.blake2b(shown.encode(), digest_size=8).hexdigest()


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: lists, tuples, dicts, str, int, float, bool, None.

    Every global is refused, so no class is built and no function called (the "restricting
    globals" pattern of the pickle documentation, with nothing allowed).
    """

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} refused")


def _plain_loads(data: bytes) -> Any:
    return _PlainUnpickler(io.BytesIO(data)).load()


def _blob(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


@dataclass(frozen=True)
class Snapshot:
    """A snapshot as read: its header, arrays and meta (see :meth:`LiveView.from_state`)."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


class SnapshotStore:
    """The snapshot file of one deployment (stream key and database) in ``DATA_DIR/liveview``."""

    def __init__(self, settings: Settings, directory: Path | None = None) -> None:
        self.settings = settings
        self.directory = directory if directory is not None else settings.data_dir / FOLDER
        self.stream = settings.key(CHANGES_STREAM)
        self.database = database_identity(settings)
        self.interval_s = settings.snapshot_s
        name = hashlib.blake2b(f"{self.stream}\n{self.database}".encode(), digest_size=8).hexdigest()
        self.path = self.directory / f"liveview-{name}.npz"
        self.lock_path = self.directory / f"liveview-{name}.lock"
        self._writing = threading.Lock()  # one write at a time in this process

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0

    # -- writing -----------------------------------------------------------------------------
    def header(self, *, last_id: str, run_id: str, reference: str, tz: str, open_cases: int) -> dict[str, Any]:
        return {"format": FORMAT, "code": CODE, "stream": self.stream, "database": self.database,
                "reference": reference, "last_id": last_id, "run_id": run_id, "tz": tz,
                "open_cases": open_cases, "written_at": time.time()}

    def write(self, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
              *, force: bool = False) -> bool:
        """Write atomically; False when another writer holds the lock or the file is fresh enough."""
        if not self._writing.acquire(blocking=False):
            return False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self._file_lock() as got:
                if not got:
                    return False
                if not force and self._age_s() < self.interval_s / 2:
                    return False
                small = {k: v for k, v in meta.items() if k not in _BIG}
                members: dict[str, np.ndarray] = {
                    "header": _blob(json.dumps(dict(header), ensure_ascii=False).encode()),
                    "meta": _blob(json.dumps(small, ensure_ascii=False).encode()),
                    **{f"big.{k}": _blob(pickle.dumps(list(meta[k]), protocol=PICKLE_PROTOCOL)) for k in _BIG},
                    **arrays,
                }
                fd, tmp = tempfile.mkstemp(prefix=".liveview-", suffix=".tmp", dir=self.directory)
                try:
                    with os.fdopen(fd, "wb") as fh:
                        np.savez(fh, allow_pickle=False, **members)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, self.path)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                return True
        finally:
            self._writing.release()

    def _age_s(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return float("inf")

    @contextmanager
    def _file_lock(self) -> Iterator[bool]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------------------------
    def read(self, *, reference: str, tz: str) -> Snapshot:
        """The snapshot, if it is one of this deployment, code and reference data; else SnapshotError."""
        if not self.path.exists():
            raise SnapshotError("no snapshot")
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                header = json.loads(bytes(npz["header"]))
                self._check(header, reference=reference, tz=tz)
                meta = json.loads(bytes(npz["meta"]))
                for k in _BIG:
                    meta[k] = _plain_loads(npz[f"big.{k}"].tobytes())
                arrays = {k: npz[k] for k in npz.files if k not in ("header", "meta") and not k.startswith("big.")}
        except SnapshotError:
            raise
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError,
                UnicodeDecodeError, TypeError, pickle.UnpicklingError, IndexError, AttributeError) as exc:
            raise SnapshotError(f"unreadable ({type(exc).__name__}: {str(exc)[:120]})") from None
        return Snapshot(header, arrays, meta)

    def _check(self, header: Mapping[str, Any], *, reference: str, tz: str) -> None:
        if not isinstance(header, Mapping):
            raise SnapshotError("no header")
        expected = {"format": FORMAT, "code": CODE, "stream": self.stream, "database": self.database,
                    "reference": reference, "tz": tz}
        for key, want in expected.items():
            if header.get(key) != want:
                raise SnapshotError(f"another {key} ({header.get(key)!r}, here {want!r})")
        if not isinstance(header.get("last_id"), str) or not isinstance(header.get("run_id"), str):
            raise SnapshotError("no stream position")


def size_text(path: Path) -> str:
    try:
        return f"{path.stat().st_size / 1e6:.1f} MB"
    except OSError:
        return "?"


__all__ = ["FORMAT", "Snapshot", "SnapshotError", "SnapshotStore", "database_identity"]
