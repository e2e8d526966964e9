"""The wall at a past instant (回放): every figure of the live wall as it stood at T (docs/foresight.md).

The event store is the truth. The wall at T is

1. the **case rows as they were at T**: each case's events with ``occurred_at`` ≤ T folded by the
   ingest's own fold (:func:`dashboard.rules.deadlines.fold_timer`, the columns written by
   :func:`dashboard.store.casebook.case_values`) — one definition of every fact, the same as
   ``gridhall overdue --at`` (:func:`dashboard.figures.overdue.overdue_as_of`);
2. fed to the **live view's own code** (:meth:`LiveView.from_rows`) with now = T, so every KPI,
   grid, hot spot, queue row and unit figure has exactly the live wall's definition
   (:mod:`dashboard.figures.wallfigures`);
3. with the **rules in force at T**: the limits table, working calendar and classification of
   the version valid at T (:func:`dashboard.store.reference.timing_at`, ``GRIDHALL_RULES_VERSIONS``).

**Speed.** Folding every case that counts at T (the open ones, today's and the month's) is
seconds for a big city. The one owner of scheduled work writes **replay snapshots** (the live
view's state, :meth:`LiveView.export_state`, at whole multiples of
``GRIDHALL_REPLAY_SNAPSHOT_MINUTES``, in ``DATA_DIR/replay/<database>/``). The wall at T is then the
newest snapshot S ≤ T of the same rules version, moved to T (:meth:`LiveView.tick`) and caught up
with only the cases that have an event in (S, T] — or an event stored after the snapshot was
written (a late report) with ``occurred_at`` ≤ T — folded again whole
(:meth:`LiveView.apply_rows`): the same path a live worker takes from its snapshot and the change
stream. Snapshots older than ``GRIDHALL_REPLAY_SNAPSHOT_DAYS`` are thinned to one per
``GRIDHALL_REPLAY_SNAPSHOT_THIN_HOURS`` of the local day.

**Archive.** A case archived (``gridhall archive``) has left ``cases`` and ``case_events``: an
instant whose figures may count such cases — before the cutoff, or within the hour after it (the
"new in the last hour" window) — is refused with :class:`ReplayArchived`, naming the archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import String, any_, bindparam, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import dashboard.figures.liveview as liveview_module
from dashboard.figures.liveview import DESCRIPTION_CHARS, LiveView
from dashboard.figures.wallfigures import NEW_WINDOW
from dashboard.rules.deadlines import ON_TIME_COLUMNS, Timing, fold_timer
from dashboard.rules.lifecycle import EventType, LifecycleEvent
from dashboard.rules.text import strip_bidi
from dashboard.store import archive, history
from dashboard.store.casebook import case_values
from dashboard.store.models import Case, CaseEvent, Grid, Unit
from dashboard.store.queries import day_window
from dashboard.store.reference import Reference, rules_version_at, timing_at

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from dashboard.settings import Settings

FOLDER = "replay"  # under GRIDHALL_DATA_DIR
FORMAT = 2  # 2: the state pickled (plain data), not JSON
CHUNK = 5000  # case ids per query (= ANY(array) on PostgreSQL, IN (...) on SQLite)
_CODE = hashlib.blake2b(Path(liveview_module.__file__).read_bytes(), digest_size=8).hexdigest()

# The columns LiveView reads of a case row (its _OPEN_COLUMNS and _FACT_COLUMNS labels).
_TIMES = {"reported_at": "reported_at", "deadline_at": "deadline_at", "paused_at": "paused_at",
          "f_reported": "reported_at", "f_filed": "filed_at", "f_dispatched": "dispatched_at",
          "f_closed": "closed_at", "f_handled": "handled_at"}
_PLAIN = ("case_id", "stage", "kind", "class_code", "grid_id", "unit_id", "urgency", "source", "clock_stage",
          "deadline_source", "limit_minutes", "limit_unit", "rework_count", "extension_count",
          ON_TIME_COLUMNS["close"], ON_TIME_COLUMNS["handle"])


class ReplayArchived(archive.PeriodArchived):
    """The instant's figures may count cases moved to the archive."""


@dataclass(frozen=True)
class Replay:
    """The wall's figures at ``at``: read them from ``view`` (the live view's methods)."""

    view: LiveView
    at: datetime
    rules_version: str  # the valid_from of the rules version used, or "current"
    snapshot_at: datetime | None  # the snapshot it started from (None: every case folded)
    folded_cases: int
    folded_events: int
    seconds: float


# -- rows at T --------------------------------------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TYPES = {t.value: t for t in EventType}  # stored type → EventType (a dict: EventType(v) is slow)


def _aware(value: datetime) -> datetime:
    """A timestamp read by Core on this connection (naive UTC on both backends) as aware UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _reference(session: Session, timing: Timing, histories: Sequence[Sequence[LifecycleEvent]]) -> Reference:
    """The codes a fold resolves (grid and unit codes → ids), as the ingest's Reference has them: those
    these histories name."""
    grids = {c for h in histories for e in h if (c := e.fields.get("grid_code"))}
    units = {c for h in histories for e in h if (c := e.fields.get("unit_code"))}
    ref = Reference(classification=timing.classification)  # type: ignore[arg-type]
    for i in range(0, len(grids), CHUNK):
        ref.grid_ids.update({code: gid for code, gid in session.execute(select(Grid.code, Grid.id).where(
            Grid.code.in_(sorted(grids)[i:i + CHUNK])))})
    for i in range(0, len(units), CHUNK):
        ref.unit_ids.update({code: uid for code, uid in session.execute(select(Unit.code, Unit.id).where(
            Unit.code.in_(sorted(units)[i:i + CHUNK])))})
    ref.timing = timing
    return ref


def rows_at(session: Session, timing: Timing, at: datetime, case_ids: Sequence[str],
            ref: Reference | None = None) -> tuple[dict[str, list[Any]], int]:
    """The rows of these cases as they were at ``at`` (columns, as :meth:`LiveView.from_rows` takes them),
    and the number of events folded. A case with no event by ``at`` has no row."""
    cols: dict[str, list[Any]] = {k: [] for k in (*_PLAIN, *_TIMES, "number", "description")}
    n_events = 0
    conn = session.connection()
    # Chunks of cases reported close together: a chunk's events are read from its first report on
    # (no event of a case precedes its report: such an event is rejected, casebook._impossible),
    # so PostgreSQL scans only the partitions of those months.
    reported: dict[str, datetime | None] = {}
    for i in range(0, len(case_ids), CHUNK):
        for cid, rep in conn.execute(select(Case.case_id, Case.reported_at).where(
                _among(session, Case.case_id, list(case_ids[i:i + CHUNK])))):
            reported[cid] = rep
    order = sorted(reported, key=lambda c: (reported[c] is not None, reported[c] or _EPOCH))
    for i in range(0, len(order), CHUNK):
        chunk = order[i:i + CHUNK]
        since = [t for c in chunk if (t := reported[c]) is not None]
        lo = min(since) if len(since) == len(chunk) else None
        histories: dict[str, list[LifecycleEvent]] = {}
        stmt = select(CaseEvent.event_id, CaseEvent.case_id, CaseEvent.type, CaseEvent.occurred_at,
                      CaseEvent.payload).where(_among(session, CaseEvent.case_id, chunk), CaseEvent.occurred_at <= at)
        if lo is not None:
            stmt = stmt.where(CaseEvent.occurred_at >= lo)
        for r in conn.execute(stmt).all():
            histories.setdefault(r.case_id, []).append(
                LifecycleEvent(r.event_id, r.case_id, _TYPES[r.type], _aware(r.occurred_at), r.payload or {}))
        codes = ref if ref is not None else _reference(session, timing, list(histories.values()))
        for case_id in sorted(histories):
            events = histories[case_id]
            n_events += len(events)
            timer, skipped = fold_timer(case_id, events, timing)
            v = case_values(timer.state, codes, "", len(skipped), timer)
            for k in _PLAIN:
                cols[k].append(v[k])
            for k, src in _TIMES.items():
                cols[k].append(_naive(v[src]))
            cols["number"].append(None if v["number"] is None else strip_bidi(v["number"]))
            desc = v["description"]
            cols["description"].append(None if desc is None else strip_bidi(desc[:DESCRIPTION_CHARS]))
    return cols, n_events


def _among(session: Session, column: Any, values: list[str]) -> Any:
    """``column IN values``; on PostgreSQL ``= ANY(array)``: one parameter, planned once for every
    partition of ``case_events`` (an IN list of thousands of parameters took a second a chunk)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("among", value=values, type_=postgresql.ARRAY(String)))
    return column.in_(values)


def counting_cases(session: Session, tz: Any, at: datetime) -> list[str]:
    """Every case that may count on the wall at ``at``: reported by then and not closed before the
    earlier of the month's start and today's start − 1 h (what the live view keeps)."""
    w = day_window(tz, at)
    local = at.astimezone(tz).date()
    month_lo = datetime(local.year, local.month, 1, tzinfo=tz).astimezone(UTC)
    lo = min(month_lo, w.start - NEW_WINDOW)
    return list(session.scalars(select(Case.case_id).where(
        Case.reported_at <= at, or_(Case.closed_at.is_(None), Case.closed_at >= lo))))


def changed_cases(session: Session, since: datetime, at: datetime, after_id: int) -> list[str]:
    """Cases with an event in (since, at], or stored after event id ``after_id`` and occurred by ``at``."""
    a = set(session.scalars(select(CaseEvent.case_id).where(
        CaseEvent.occurred_at > since, CaseEvent.occurred_at <= at).distinct()))
    a |= set(session.scalars(select(CaseEvent.case_id).where(
        CaseEvent.id > after_id, CaseEvent.occurred_at <= at).distinct()))
    return sorted(a)


def earliest_online(session: Session, tz: Any) -> tuple[datetime, str] | None:
    """(the earliest instant replayable from the online data, the archive cutoff month) when cases
    were archived; None when nothing was. The one bound :func:`check_online` applies."""
    cutoff = archive.archived_before(session)
    if cutoff is None:
        return None
    year, month = archive.parse_month(cutoff)
    return history.month_start(year, month, tz).replace(tzinfo=UTC) + NEW_WINDOW, cutoff


def first_event_at(session: Session) -> datetime | None:
    """When the first event stored occurred (aware UTC); None with no event."""
    first = session.scalar(select(func.min(CaseEvent.occurred_at)))
    return None if first is None else _aware(first)


def check_online(session: Session, at: datetime, tz: Any) -> None:
    """Raise :class:`ReplayArchived` when the figures at ``at`` may count archived cases."""
    online = earliest_online(session, tz)
    if online is None:
        return
    earliest, cutoff = online
    if at < earliest:
        raise ReplayArchived(
            f"{at.astimezone(tz):%Y-%m-%d %H:%M} 的大屏需要归档库：{cutoff} 之前已结案件已归档"
            f"（gridhall archive --before {cutoff}），回放只能从在线数据计算 {cutoff} 月初一小时之后的时刻 — "
            f"the cases closed before {cutoff} were moved to the archive (docs/history.md, \"Archive\"); "
            "replay an instant at least an hour after the cutoff")


def full_view(session: Session, timing: Timing, at: datetime) -> tuple[LiveView, int, int]:
    """The wall at ``at`` with every case that may count folded from its events (no snapshot)."""
    ids = counting_cases(session, timing.calendar.tz, at)
    rows, n_events = rows_at(session, timing, at, ids)
    return LiveView.from_rows(session, timing, at, rows), len(ids), n_events


# -- snapshots --------------------------------------------------------------------------------
def _database(settings: Settings) -> str:
    url = make_url(settings.effective_database_url).set(password=None)
    return hashlib.blake2b(url.render_as_string(hide_password=True).encode(), digest_size=8).hexdigest()


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class _PlainUnpickler(pickle.Unpickler):
    """Plain data only: every global is refused, so nothing in a file can build a class or run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} refused")


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    at: datetime


class SnapshotFolder:
    """The replay snapshots of one database: ``DATA_DIR/replay/<database hash>/<UTC instant>.npz``.

    A file holds the view's state at its instant (:meth:`LiveView.export_state`) and a JSON header:
    format, the live view code's hash, the rules version, the highest event id it had seen.
    Written to a temporary file and moved into place (a reader never sees half of one).
    """

    def __init__(self, settings: Settings, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else settings.data_dir / FOLDER / _database(settings)

    def list(self) -> list[SnapshotInfo]:
        out = []
        for p in self.directory.glob("*.npz") if self.directory.exists() else ():
            try:
                at = datetime.strptime(p.stem, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            except ValueError:
                continue
            out.append(SnapshotInfo(p, at))
        return sorted(out, key=lambda s: s.at)

    def write(self, view: LiveView, at: datetime, *, after_id: int, rules_version: str) -> Path:
        arrays, meta = view.export_state()
        header = {"format": FORMAT, "code": _CODE, "at": at.astimezone(UTC).isoformat(), "after_id": after_id,
                  "rules_version": rules_version, "written_at": time.time()}
        # The state as plain data (lists, tuples, str, int, float, bool, None), pickled: read back with an
        # unpickler that refuses every global (_PlainUnpickler), ten times faster than JSON.
        members = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                   "meta": np.frombuffer(pickle.dumps(dict(meta), protocol=5), dtype=np.uint8), **arrays}
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{_stamp(at)}.npz"
        fd, tmp = tempfile.mkstemp(prefix=".replay-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, allow_pickle=False, **members)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def read(self, info: SnapshotInfo, timing: Timing, *, rules_version: str) -> tuple[LiveView, int] | None:
        """(the view at the snapshot's instant, the highest event id it had seen); None when unusable."""
        try:
            with np.load(info.path, allow_pickle=False) as npz:
                header = json.loads(bytes(npz["header"]))
                if (header.get("format"), header.get("code"), header.get("rules_version")) != (
                        FORMAT, _CODE, rules_version):
                    return None
                meta = _PlainUnpickler(io.BytesIO(npz["meta"].tobytes())).load()
                arrays = {k: npz[k] for k in npz.files if k not in ("header", "meta")}
            return LiveView.from_state(timing, arrays, meta), int(header["after_id"])
        except (OSError, ValueError, KeyError, TypeError, EOFError, json.JSONDecodeError, pickle.UnpicklingError):
            return None

    def thin(self, now: datetime, keep_days: float, every_hours: int, tz: Any) -> int:
        """Remove snapshots older than ``keep_days`` except the first of each ``every_hours`` of a local
        day (00:00, 06:00 … for 6); returns how many were removed."""
        removed, seen = 0, set()
        for s in self.list():
            if s.at >= now - timedelta(days=keep_days):
                break
            local = s.at.astimezone(tz)
            bucket = (local.date(), local.hour // max(1, every_hours))
            if bucket in seen:
                s.path.unlink(missing_ok=True)
                removed += 1
            seen.add(bucket)
        return removed


# -- the wall at T ---------------------------------------------------------------------------
def wall_at(session: Session, settings: Settings, at: datetime, *, folder: SnapshotFolder | None = None,
            use_snapshots: bool = True) -> Replay:
    """The wall's figures at ``at`` (aware): the newest usable snapshot ≤ ``at`` caught up, or a full fold.

    Raises :class:`ReplayArchived` when ``at`` needs the archive.
    """
    t0 = time.perf_counter()
    tz = settings.tz
    check_online(session, at, tz)
    version = rules_version_at(settings, at)
    timing = timing_at(settings, at, session)
    folder = folder if folder is not None else SnapshotFolder(settings)
    if use_snapshots:
        for info in reversed(folder.list()):
            if info.at > at:
                continue
            got = folder.read(info, timing, rules_version=version.label)
            if got is None:
                continue
            view, after_id = got
            ids = changed_cases(session, info.at, at, after_id)
            rows, n_events = rows_at(session, timing, at, ids)
            view.tick(at)
            view.apply_rows(session, ids, rows, at)
            view.loaded_at = at
            return Replay(view, at, version.label, info.at, len(ids), n_events, time.perf_counter() - t0)
    view, n_cases, n_events = full_view(session, timing, at)
    return Replay(view, at, version.label, None, n_cases, n_events, time.perf_counter() - t0)


def snapshot_instants(last: datetime | None, now: datetime, minutes: int, *, most: int) -> list[datetime]:
    """The whole multiples of ``minutes`` (UTC) after ``last`` and ≤ ``now``, the latest ``most`` of them."""
    step = timedelta(minutes=minutes)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    top = epoch + ((now - epoch) // step) * step
    out: list[datetime] = []
    t = top
    while len(out) < most and (last is None or t > last):
        out.append(t)
        t -= step
    return sorted(out)


def write_snapshots(settings: Settings, engine: Engine, now: datetime, *, most: int = 24,
                    folder: SnapshotFolder | None = None) -> str:
    """Write the replay snapshots due since the last one (at most ``most`` per call), each from the
    previous one caught up (or a full fold), then thin the old ones. One line saying what it did."""
    minutes = settings.replay_snapshot_minutes
    if minutes <= 0:
        return "off (GRIDHALL_REPLAY_SNAPSHOT_MINUTES=0)"
    folder = folder if folder is not None else SnapshotFolder(settings)
    have = folder.list()
    due = snapshot_instants(have[-1].at if have else None, now, minutes, most=most)
    written = 0
    with Session(engine) as session:
        for at in due:
            try:
                check_online(session, at, settings.tz)
            except ReplayArchived:
                continue
            after_id = session.scalar(select(func.max(CaseEvent.id))) or 0
            replay = wall_at(session, settings, at, folder=folder)
            folder.write(replay.view, at, after_id=int(after_id), rules_version=replay.rules_version)
            written += 1
            session.rollback()  # end the read transaction: the next instant sees newer events
    thinned = folder.thin(now, settings.replay_snapshot_days, settings.replay_snapshot_thin_hours, settings.tz)
    last = f", newest {due[-1]:%Y-%m-%d %H:%M}Z" if written else ""
    return f"{written} replay snapshot(s) written{last}, {thinned} old one(s) thinned"


def figures(replay: Replay | LiveView, *, queue_limit: int = 100_000) -> dict[str, Any]:
    """The wall's figures as plain values — KPIs, stage counts, the grids' figures, the hot spots, the
    overdue queue (case, clock, deadline) and the units' board: what the exactness test and the bench compare."""
    view = replay.view if isinstance(replay, Replay) else replay
    with view.consistent():
        k = view.kpis()
        q = view.overdue_queue(queue_limit)
        return {
            "kpis": asdict(k),
            "stages": [(s.stage.value, s.count) for s in view.stage_counts()],
            "grids": {m: dict(sorted(view.grid_values(m).items())) for m in ("open", "overdue", "new_hour")},
            "hot_spots": [asdict(h) for h in view.hot_spots("open")],
            "overdue": [(r.case_id, r.clock_stage, r.deadline_at.isoformat()) for r in q.overdue],
            "due_soon": [(r.case_id, r.clock_stage, r.deadline_at.isoformat()) for r in q.due_soon],
            "units": [asdict(u) for u in view.unit_board()],
        }
