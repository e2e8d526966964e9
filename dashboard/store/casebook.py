"""Apply case events to SQL: store the history, keep each case equal to the fold of it.

Idempotent by ``event_id`` and independent of arrival order. Each case row keeps the fold
state and ``max_key``, the canonical sort key of the newest event stored for it. An event
that sorts after ``max_key`` (the usual case: events arrive roughly in order) is applied
to the stored state directly; one that lands inside the known history makes the case be
re-folded from its whole stored history. Either way the row equals
:func:`dashboard.rules.lifecycle.fold` of everything stored, whatever the arrival order.

Concurrency: the batch's events are inserted first (``ON CONFLICT DO NOTHING``). On
PostgreSQL the batch's new cases are then folded and inserted, in case_id order; a case
another ingest is creating at that moment waits for its commit and is then folded like the
stored ones, which are locked last (``FOR UPDATE``, case_id order) and folded on their rows
(see :func:`_new_cases_first_pg`: ingests on the same cases wait for each other, never
deadlock, and redo no batch for a race). SQLite holds the database write lock from the first
insert: the touched rows are read and folded in one go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import orjson
from sqlalchemy import String, any_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dashboard.rules.alerts import AlertRules
from dashboard.rules.clock import utcnow
from dashboard.rules.deadlines import ON_TIME_COLUMNS, CaseTimer, Clock, Timing, fold_timer
from dashboard.rules.lifecycle import (
    TERMINAL,
    CaseState,
    EventType,
    LifecycleEvent,
    Stage,
    TransitionError,
    as_datetime,
)
from dashboard.rules.vocab import Kind, Urgency
from dashboard.store.alerts import AlertCandidate
from dashboard.store.models import Case, CaseEvent, CaseEventId
from dashboard.store.reference import Reference

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Incoming:
    """An event to apply, with what the transport knows about it."""

    event: LifecycleEvent
    source: str | None = None
    actor: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # transport id (e.g. the stream entry id), for dead letters
    # The JSON text ``payload`` was decoded from (the stream entry's), when known: stored as
    # received on PostgreSQL when the event adds nothing to it (see :func:`_stored_payload`).
    raw: str | None = field(default=None, repr=False, compare=False)


@dataclass
class ApplyResult:
    """What one batch did."""

    applied: int = 0
    duplicates: int = 0
    refolded: int = 0  # cases re-folded from their stored history (out-of-order arrivals)
    rejected: list[tuple[Incoming, str, str]] = field(default_factory=list)  # (item, code, reason)
    case_ids: set[str] = field(default_factory=set)
    grid_codes: set[str] = field(default_factory=set)
    unit_codes: set[str] = field(default_factory=set)
    # With alert rules (the ingest's): cases that qualified for an alert reason in this batch and
    # had not before, and cases with a reason that ended; dashboard/store/alerts.py stores both.
    alert_rules: AlertRules | None = field(default=None, repr=False)
    alert_candidates: list[AlertCandidate] = field(default_factory=list)
    alert_ended: set[str] = field(default_factory=set)
    alerts_raised: list[int] = field(default_factory=list)  # ids stored by the caller (the ingest)
    alerts_cleared: list[int] = field(default_factory=list)

    def merge(self, other: ApplyResult) -> None:
        """Add another batch's result to this one (a batch applied in parts)."""
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.refolded += other.refolded
        self.rejected += other.rejected
        self.case_ids |= other.case_ids
        self.grid_codes |= other.grid_codes
        self.unit_codes |= other.unit_codes
        self.alert_candidates += other.alert_candidates
        self.alert_ended |= other.alert_ended
        self.alerts_raised += other.alerts_raised
        self.alerts_cleared += other.alerts_cleared


class ReferenceProblem(ValueError):
    """The event names a class, grid or unit this city does not have."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def resolve(incoming: Incoming, ref: Reference) -> Incoming:
    """Check codes against reference data; fill grid_code from lon/lat. Raises ReferenceProblem.

    Location (docs/feed.md "Location"): a ``grid_code`` must be a grid of the city and wins
    over a point; a point alone is located. A ``reported`` event whose point is in no grid is
    kept without a grid (the case is 未定位 until a later event locates it): losing the report
    would lose the whole case (:func:`apply_events` may reload stale reference data first).
    Any other event with such a point is ``outside_city``.
    """
    fields = incoming.event.fields
    kind, class_code = fields.get("kind"), fields.get("class_code")
    if class_code is not None:
        if kind is None:
            raise ReferenceProblem("schema", "class_code 需要同时给出 kind（component/event）")
        if ref.classification.get(kind, class_code) is None:
            raise ReferenceProblem(
                "unknown_class",
                f"unknown classification: 分类方案 {ref.classification.name} 中没有"
                f"{Kind(kind).label}小类 {class_code}",
            )
    grid_code = fields.get("grid_code")
    located = None
    if grid_code is not None:
        if grid_code not in ref.grid_ids:
            raise ReferenceProblem("unknown_grid", f"unknown grid: 单元网格 {grid_code} 不存在")
    elif fields.get("lon") is not None and fields.get("lat") is not None:
        located = ref.locate(float(fields["lon"]), float(fields["lat"]))
        if located is None and incoming.event.type is not EventType.REPORTED:
            raise ReferenceProblem(
                "outside_city",
                f"outside the city: 坐标 ({fields['lon']}, {fields['lat']}) 不在任何单元网格内",
            )
    unit_code = fields.get("unit_code")
    if unit_code is not None and unit_code not in ref.unit_ids:
        raise ReferenceProblem("unknown_unit", f"unknown unit: 处置单位 {unit_code} 不存在")
    if located is None:
        return incoming
    event = LifecycleEvent(
        incoming.event.event_id, incoming.event.case_id, incoming.event.type,
        incoming.event.occurred_at, {**fields, "grid_code": located},
    )
    return Incoming(event, incoming.source, incoming.actor, incoming.payload, incoming.origin)


def _unplaced(item: Incoming) -> bool:
    """After :func:`resolve`: a report kept without a grid although it has a point (in no grid)."""
    fields = item.event.fields
    return (item.event.type is EventType.REPORTED and fields.get("grid_code") is None
            and fields.get("lon") is not None and fields.get("lat") is not None)


_RANK = {t: i for i, t in enumerate(EventType)}


_RANK_TEXT = {t: f"{i:02d}" for t, i in _RANK.items()}
_dumps = orjson.dumps


def sort_key(event: LifecycleEvent) -> str:
    """The canonical order of a case's events as one comparable string.

    Fixed-width UTC time, then the lifecycle rank, then the event id: string order equals
    ``LifecycleEvent.sort_key`` order, so SQL can store and compare it.
    """
    at = event.occurred_at.astimezone(UTC)
    if at.year >= 1000:  # strftime("%Y-%m-%dT%H:%M:%S.%f"), from orjson's RFC 3339 (faster still than isoformat)
        iso = _dumps(at)  # b'"2026-11-24T01:30:00+00:00"', microseconds only when not zero
        text = (iso[1:20] + b".000000" if len(iso) == 27 else iso[1:27]).decode()
    else:  # strftime does not pad years below 1000 on every platform: keep its exact text
        text = at.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{text}|{_RANK_TEXT[event.type]}|{event.event_id}"


def apply_events(session: Session, batch: Sequence[Incoming], ref: Reference,
                 reload: Callable[[], bool] | None = None, alerts: AlertRules | None = None) -> ApplyResult:
    """Apply a batch inside the caller's transaction.

    Events that fail reference checks come back in ``result.rejected`` and nothing of them
    is stored; every other event is stored once (re-sent ids count as duplicates). When a
    report's point is in no grid, ``reload`` (if given) may refresh ``ref`` first (it says
    whether it did): a grid imported since is then found before the case is kept 未定位.
    With ``alerts`` (the ingest), ``result.alert_candidates`` and ``result.alert_ended`` say which
    cases began to qualify for an alert, and which qualifying ones ended (dashboard/rules/alerts.py):
    seen from the case row before and after, so it costs a set lookup per case.
    """
    result = ApplyResult(alert_rules=alerts)
    accepted: dict[str, Incoming] = {}
    sent: dict[str, Incoming] = {}
    for item in batch:
        if item.event.event_id in accepted:
            result.duplicates += 1
            continue
        try:
            accepted[item.event.event_id] = resolve(item, ref)
            sent[item.event.event_id] = item
        except ReferenceProblem as exc:
            result.rejected.append((item, exc.code, str(exc)))
    if reload is not None and any(_unplaced(i) for i in accepted.values()) and reload():
        for eid in [eid for eid, item in accepted.items() if _unplaced(item)]:
            try:
                accepted[eid] = resolve(sent[eid], ref)
            except ReferenceProblem as exc:  # the reloaded data lost a code it names
                del accepted[eid]
                result.rejected.append((sent[eid], exc.code, str(exc)))
    if not accepted:
        return result

    fresh_ids = _insert_events(session, list(accepted.values()))
    fresh = [accepted[eid] for eid in accepted if eid in fresh_ids]
    result.duplicates += len(accepted) - len(fresh)
    result.applied = len(fresh)
    if fresh:
        _update_cases(session, fresh, ref, result)
    return result


def _insert_events(session: Session, items: list[Incoming]) -> set[str]:
    """Insert, skipping ids already stored; returns the ids that were new.

    The id is taken in ``case_event_ids`` first (ON CONFLICT DO NOTHING RETURNING): only the
    events whose id this batch got are stored, so a re-sent id is a duplicate whatever its time
    (``case_events`` is partitioned by time on PostgreSQL and cannot hold event_id unique).
    """
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        return _copy_events_pg(session, items, now)
    got = _claim_ids(session, items)
    rows: list[dict[str, Any]] = [
        {
            "event_id": item.event.event_id,
            "case_id": item.event.case_id,
            "type": item.event.type.value,
            "occurred_at": item.event.occurred_at,
            "received_at": now,
            "source": item.source,
            "actor": item.actor,
            # As sent, plus what the ingest resolved (a grid found from lon/lat), so that a
            # re-fold from stored history sees exactly what the first fold saw.
            "payload": _jsonable({**item.payload, **item.event.fields}),
        }
        for item in items if item.event.event_id in got
    ]
    if rows:
        # Core, not ORM bulk insert: one multi-row INSERT per page of rows.
        session.connection().execute(insert(CaseEvent.__table__), rows)
    return got


def _claim_ids(session: Session, items: list[Incoming]) -> set[str]:
    """Insert the batch's ids into ``case_event_ids``; returns those that were not there."""
    table = CaseEventId.__table__
    # One order for every ingest: no deadlock between them.
    rows: list[dict[str, Any]] = [{"event_id": i.event.event_id, "occurred_at": i.event.occurred_at}
                                  for i in sorted(items, key=lambda i: i.event.event_id)]
    dialect = session.get_bind().dialect.name
    stmt: postgresql.Insert | sqlite.Insert
    if dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    elif dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    else:  # pragma: no cover - other backends: look first, then insert
        known = set(session.scalars(select(table.c.event_id).where(
            table.c.event_id.in_([r["event_id"] for r in rows]))))
        rows = [r for r in rows if r["event_id"] not in known]
        if rows:
            session.execute(insert(table), rows)
        return {r["event_id"] for r in rows}
    return set(session.connection().execute(stmt.returning(table.c.event_id), rows).scalars())


def forget_events(session: Session, event_ids: list[str]) -> set[str]:
    """Remove events from the history and their ids from ``case_event_ids``; returns those removed.

    For events rejected after being stored (impossible, or expired while illegal): the id may be
    sent again (corrected) and is then a new event, as before it was stored. RETURNING: a second
    ingest removing the same ids at the same moment gets none of them.
    """
    if not event_ids:
        return set()
    t = CaseEvent.__table__
    gone = set(session.execute(t.delete().where(t.c.event_id.in_(event_ids)).returning(t.c.event_id)).scalars())
    if gone:
        ids = CaseEventId.__table__
        session.execute(ids.delete().where(ids.c.event_id.in_(sorted(gone))))
    return gone


_EVENT_COLUMNS = ("event_id", "case_id", "type", "occurred_at", "received_at", "source", "actor", "payload")


def _copy_line(cells: list[str | None]) -> str | None:
    """One row of formatted cells (None: NULL) as a line of PostgreSQL COPY text.

    Most rows need no escaping, which a few scans in C tell; only rows with a backslash,
    tab or line break in a cell are escaped cell by cell. None when a cell holds NUL, which
    PostgreSQL text cannot store: the caller then lets the driver format (and the server
    refuse) the batch as it always did.
    """
    nulls = cells.count(None)
    line = ("\t".join([_NULL if c is None else c for c in cells]) if nulls
            else "\t".join(cast(list[str], cells)))  # no None among them
    if (line.count("\t") == len(cells) - 1 and line.count("\\") == nulls and "\n" not in line
            and "\r" not in line and "\x00" not in line):
        return line
    if any(c is not None and "\x00" in c for c in cells):
        return None
    return "\t".join(_NULL if c is None else c.replace("\\", "\\\\").replace("\n", "\\n")
                     .replace("\r", "\\r").replace("\t", "\\t") for c in cells)


def _copy_text(rows: list[list[str | None]]) -> str | None:
    lines = []
    for cells in rows:
        line = _copy_line(cells)
        if line is None:
            return None
        lines.append(line)
    lines.append("")
    return "\n".join(lines)


_NULL = "\\N"
_UTC = UTC


def _ts(value: datetime | None) -> str | None:
    """A timestamp cell for a UTCDateTime column (timestamp without time zone): the instant in
    UTC to the microsecond, exactly what UTCDateTime stores. Its ``+00:00`` is ignored by such a
    column; orjson formats it several times faster than ``isoformat`` (a cell per event)."""
    if value is None:
        return None
    import orjson

    return orjson.dumps(value.astimezone(_UTC))[1:-1].decode()


def _write_copy(cur: Any, statement: str, rows: list[list[str | None]]) -> None:
    text = _copy_text(rows)
    with cur.copy(statement) as copy:
        if text is not None:
            copy.write(text)
        else:  # a cell with NUL: psycopg formats (and PostgreSQL refuses) it as before
            for cells in rows:
                copy.write_row(cells)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _pg_errors(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Raw psycopg errors as SQLAlchemy's (IntegrityError, DataError…), like Core statements raise."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        import psycopg
        from sqlalchemy.exc import DBAPIError

        try:
            return fn(*args, **kwargs)
        except psycopg.Error as exc:
            raise DBAPIError.instance(fn.__name__, None, exc, psycopg.Error) from exc
    return wrapper


def _psycopg(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection under a PostgreSQL session (its DBAPI driver is psycopg 3)."""
    return cast("psycopg.Connection[Any]", session.connection().connection.driver_connection)


@_pg_errors
def _copy_events_pg(session: Session, items: list[Incoming], now: datetime) -> set[str]:
    """PostgreSQL: take the ids in ``case_event_ids``, COPY the events whose id was taken.

    One INSERT … ON CONFLICT DO NOTHING RETURNING of the ids (sorted: concurrent ingests take
    them in one order), then COPY, which moves rows an order of magnitude faster than INSERT
    statements. An id another ingest is storing at that moment waits for its commit and is then
    a duplicate here (or ours, if it rolled back). The stored payload is what
    :func:`_insert_events` stores on every backend.
    """
    import orjson

    raw = _psycopg(session)
    cols = ", ".join(_EVENT_COLUMNS)
    with raw.cursor() as cur:
        # The ids and times as one JSON text: one parameter the driver passes as is.
        cur.execute(
            "INSERT INTO case_event_ids (event_id, occurred_at) "
            "SELECT e ->> 0, (e ->> 1)::timestamp FROM json_array_elements(%s::json) AS e ORDER BY 1 "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            (orjson.dumps(sorted([i.event.event_id, _ts(i.event.occurred_at)] for i in items)).decode(),),
        )
        got = {row[0] for row in cur.fetchall()}
        fresh = [i for i in items if i.event.event_id in got]
        if not fresh:
            return set()
        received = _ts(now)
        rows: list[list[str | None]] = []
        for item in fresh:
            ev = item.event
            rows.append([
                ev.event_id, ev.case_id, ev.type.value, _ts(ev.occurred_at), received, item.source, item.actor,
                _stored_payload(item),
            ])
        _write_copy(cur, f"COPY case_events ({cols}) FROM STDIN", rows)
    return got


def _stored_payload(item: Incoming) -> str:
    """The stored payload's JSON text: as sent, plus what the ingest resolved (see
    :func:`_insert_events`). When the event's fields are the payload's own values (the usual
    case: nothing resolved, nothing converted), the text as received, with no re-encoding."""
    raw = item.raw
    if raw is not None:
        payload = item.payload
        for name, value in item.event.fields.items():
            sent = payload.get(name)
            if sent is not value and (sent.__class__ is not value.__class__ or sent != value):
                break  # e.g. a grid found from lon/lat, a time parsed, an integer read as float
        else:
            return raw
    import orjson

    return orjson.dumps(_jsonable({**item.payload, **item.event.fields}), default=str).decode()


class CaseRace(RuntimeError):
    """A new case of this batch was created by another ingest in a way this batch cannot
    absorb (see :func:`_update_cases`); redo the batch."""


_case_cells: list[Any] = []


def _case_formats() -> list[tuple[str, str]]:
    """(column, kind) of ``cases`` without ``id``, kind one of text/num/bool/ts/json."""
    if not _case_cells:
        for c in Case.__table__.columns:
            if c.name == "id":
                continue
            name = type(c.type).__name__
            kind = {"UTCDateTime": "ts", "JSON": "json", "Boolean": "bool", "Integer": "num",
                    "Float": "num"}.get(name, "text")
            _case_cells.append((c.name, kind))
    return _case_cells


def _case_row_cells(row: dict[str, Any], formats: list[tuple[str, str]], first: str) -> list[str | None]:
    """A case row as COPY cells for the ``incoming_cases_tz`` staging table: timestamps with
    their own UTC offset (its columns are timestamptz), formatted by orjson."""
    import orjson

    dumps = orjson.dumps
    out: list[str | None] = [first]
    append = out.append
    for name, kind in formats:
        v = row.get(name)
        if v is None:
            append(None)
        elif kind == "text":
            append(v if v.__class__ is str else str(v))
        elif kind == "ts":
            if v.tzinfo is None:  # (not stored by gridhall) as UTCDateTime's old path read it: local time
                v = v.astimezone(_UTC)
            append(dumps(v)[1:-1].decode())
        elif kind == "num":
            append(repr(v))
        elif kind == "bool":
            append("t" if v else "f")
        else:
            append(dumps(v, default=str).decode())
    return out


def _staging_table() -> tuple[str, list[str], list[str]]:
    """(CREATE statement of the staging table, its columns, their values for ``cases``).

    Like ``cases`` with an ``id`` that is -1 for new rows, except that timestamps are
    timestamptz: a cell keeps the offset it was written with and the insert converts it to the
    naive UTC the ``cases`` columns hold (``AT TIME ZONE 'UTC'``), so Python formats no UTC.
    """
    if not _staging:
        from sqlalchemy.dialects.postgresql.base import PGDialect

        dialect = PGDialect()
        defs, cols, values = ["id integer"], [], []
        kinds = dict(_case_formats())
        for c in Case.__table__.columns:
            if c.name == "id":
                continue
            ts = kinds[c.name] == "ts"
            typ = "timestamp with time zone" if ts else c.type.compile(dialect=dialect)
            defs.append(f"{c.name} {typ}")
            cols.append(c.name)
            values.append(f"{c.name} AT TIME ZONE 'UTC'" if ts else c.name)
        _staging.append((
            f"CREATE TEMP TABLE IF NOT EXISTS incoming_cases_tz ({', '.join(defs)}) ON COMMIT DELETE ROWS",
            cols, values))
    return _staging[0]


_staging: list[tuple[str, list[str], list[str]]] = []


@_pg_errors
def _write_cases_pg(session: Session, new_rows: list[dict[str, Any]], changed_rows: list[dict[str, Any]]
                    ) -> set[str]:
    """PostgreSQL: COPY case rows into a temporary table, then one INSERT and one UPDATE.

    Returns the new rows' case ids another transaction inserted first (nothing of those is
    written here): the caller folds those cases again on the stored rows.

    The COPY text is formatted here per column type (see :func:`_copy_text`), not cell by
    cell by the driver.
    """
    formats = _case_formats()
    create, columns, values = _staging_table()
    raw = _psycopg(session)
    cols = ", ".join(columns)
    rows = [_case_row_cells(row, formats, "-1") for row in new_rows]
    rows += [_case_row_cells(row, formats, str(row["id"])) for row in changed_rows]

    with raw.cursor() as cur:
        cur.execute(create)
        cur.execute("DELETE FROM incoming_cases_tz")
        _write_copy(cur, f"COPY incoming_cases_tz (id, {cols}) FROM STDIN", rows)
        taken: set[str] = set()
        if new_rows:
            # In case_id order: two ingests inserting the same new cases wait for each other
            # in one order, never in a cycle.
            cur.execute(
                f"INSERT INTO cases ({cols}) SELECT {', '.join(values)} FROM incoming_cases_tz WHERE id = -1 "
                "ORDER BY case_id ON CONFLICT (case_id) DO NOTHING RETURNING case_id"
            )
            if cur.rowcount != len(new_rows):
                taken = {r["case_id"] for r in new_rows} - {r[0] for r in cur.fetchall()}
        if changed_rows:
            sets = ", ".join(f"{c} = i.{v}" for c, v in zip(columns, values, strict=True) if c != "case_id")
            # By primary key, row by row, whatever the planner thinks of the never-analysed
            # staging table: a hash join would read all of ``cases`` for each batch, a cost
            # that grows with the table (docs/architecture.md, "Apply").
            cur.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; "
                        f"UPDATE cases SET {sets} FROM incoming_cases_tz i WHERE cases.id = i.id AND i.id <> -1; "
                        "SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT")
    return taken


_STATE_COLUMNS = (
    "reported_at", "verified_at", "filed_at", "dispatched_at", "handled_at", "checked_at",
    "closed_at", "last_event_at", "rework_count", "return_count", "extension_count",
    "satisfaction", "rated_at",
)


def _state_from_row(row: Any) -> CaseState:
    extra = row.fold_state or {}
    state = CaseState(case_id=row.case_id)
    state.stage = Stage(row.stage) if row.stage else None
    before = extra.get("stage_before_suspension")
    state.stage_before_suspension = Stage(before) if before else None
    for name in _STATE_COLUMNS:
        setattr(state, name, getattr(row, name))
    state.values = dict(extra.get("values") or {})
    clock = extra.get("clock") or {}
    state.clock = clock.get("stage")
    state.clock_started_at = _dt(clock.get("started_at"))
    state.clock_pauses = [[_dt(a), _dt(b)] for a, b in clock.get("pauses") or []]
    # an extension's instant is always stored; only its new deadline may be None
    state.clock_extensions = [(as_datetime(a), _dt(b)) for a, b in clock.get("extensions") or []]
    return state


def _dt(value: Any) -> datetime | None:
    return None if value is None else as_datetime(value)


def _timer(row: Any, state: CaseState, timing: Timing | None) -> CaseTimer | None:
    """A timer continuing from a stored row: its on-time flags, and its clock as stored.

    The stored deadline is the one computed when the row was written, so an event that
    finishes the clock is judged against it without another calendar computation.
    """
    if timing is None:
        return None
    if row is None:
        return CaseTimer(state, timing)
    on_time = {stage: value for stage, col in ON_TIME_COLUMNS.items() if (value := getattr(row, col)) is not None}
    clock = None
    if row.clock_stage is not None and row.deadline_at is not None and row.clock_stage == state.clock:
        clock = Clock(row.clock_stage, row.clock_started_at, (row.limit_minutes or 0) / 60, row.limit_unit or "",
                      row.limit_minutes or 0.0, row.deadline_at, row.deadline_source or "table", row.paused_at)
    return CaseTimer(state, timing, on_time, clock)


def _among(session: Session, column: Any, values: list[str]) -> Any:
    """``column IN values``; on PostgreSQL ``= ANY(array)``: one parameter, not one per value."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("among", value=values, type_=postgresql.ARRAY(String)))
    return column.in_(values)


def _lock_cases(session: Session, case_ids: list[str]) -> dict[str, Any]:
    """The case rows, locked ``FOR UPDATE`` in case_id order (one order for every ingest)."""
    return {
        row.case_id: row
        for row in session.execute(
            select(*Case.__table__.c).where(_among(session, Case.case_id, case_ids))
            .order_by(Case.case_id).with_for_update()
        )
    }


@dataclass
class _Plan:
    """What one batch writes: case rows, events' problems, events impossible for good."""

    new_rows: list[dict[str, Any]] = field(default_factory=list)
    changed_rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    impossible: list[tuple[Incoming, str]] = field(default_factory=list)


def _update_cases(session: Session, fresh: list[Incoming], ref: Reference, result: ApplyResult) -> None:
    fresh_ids = {i.event.event_id for i in fresh}
    by_case: dict[str, list[Incoming]] = {}
    for item in fresh:
        by_case.setdefault(item.event.case_id, []).append(item)
    case_ids = sorted(by_case)
    if session.get_bind().dialect.name == "postgresql":
        plan = _new_cases_first_pg(session, case_ids, by_case, ref, result, fresh)
    else:
        # Sorted and locked (SQLite: the database write lock is held already).
        rows = _lock_cases(session, case_ids)
        plan = _Plan()
        _plan_cases(session, case_ids, by_case, rows, ref, result, plan, fresh)
    impossible, problems = plan.impossible, plan.problems
    if impossible:
        # Impossible whatever arrives later: out of the history, into the dead letters.
        forget_events(session, [i.event.event_id for i, _ in impossible])
        gone = {i.event.event_id for i, _ in impossible}
        problems[:] = [p for p in problems if p["eid"] not in gone]
        result.applied -= sum(1 for i, _ in impossible if i.event.event_id in fresh_ids)
        result.rejected += [(item, "transition", reason) for item, reason in impossible]
    _write(session, plan.new_rows, plan.changed_rows, problems)


def _new_cases_first_pg(session: Session, case_ids: list[str], by_case: dict[str, list[Incoming]],
                        ref: Reference, result: ApplyResult, fresh: list[Incoming]) -> _Plan:
    """PostgreSQL: write the batch's new cases first, then lock and fold the stored ones.

    1. The cases not stored yet (as this statement sees them, no lock) are folded as new and
       inserted, in case_id order, ``ON CONFLICT DO NOTHING``: a case another ingest is
       creating at that moment waits for its commit and is then "taken".
    2. Every stored case of the batch, the taken ones included, is locked (``FOR UPDATE``, in
       case_id order) and folded onto its row.

    Why this order: a transaction in step 2 only ever waits for row locks of other
    transactions in step 2 (one order: no cycle), never for a case another one inserted and
    has not committed (a case it finds stored was committed; a taken one it waited for in step
    1). A transaction in step 1 waits only for inserts, also in one order. So two ingests on
    the same cases wait for each other but never deadlock, and no batch is redone for a race
    (before, new cases came last and a taken case had to be re-locked NOWAIT, and a batch that
    found it locked again was redone: 217 of 500 batches at 1M events with two consumers).
    Returns what is left to write (problems, impossible events); the case rows are written.
    """
    stored = set(session.scalars(select(Case.case_id).where(_among(session, Case.case_id, case_ids))))
    new_ids = [c for c in case_ids if c not in stored]
    plan = _Plan()
    if new_ids:
        _plan_cases(session, new_ids, by_case, {}, ref, result, plan, fresh)
        taken = _write_cases_pg(session, plan.new_rows, [])
        if taken:
            # Another ingest created them first (INSERT … ON CONFLICT DO NOTHING waited for its
            # commit and skipped them): fold them on its rows in step 2, with the stored cases.
            _forget(taken, plan, result)
            stored |= taken
        plan.new_rows = []
    if stored:
        rows = _lock_cases(session, sorted(stored))
        if len(rows) != len(stored):  # deleted meanwhile (archived): the batch is redone
            raise CaseRace(f"case(s) {sorted(stored - set(rows))} vanished while this batch was applied")
        again = _Plan()
        _plan_cases(session, sorted(stored), by_case, rows, ref, result, again, fresh)
        _write_cases_pg(session, [], again.changed_rows)
        plan.problems += again.problems
        plan.impossible += again.impossible
    return plan


def _first(pair: tuple[str, Incoming]) -> str:
    return pair[0]


def _forget(case_ids: set[str], plan: _Plan, result: ApplyResult) -> None:
    """Take cases planned as new out of ``plan`` and ``result`` (they are folded again)."""
    plan.new_rows = [r for r in plan.new_rows if r["case_id"] not in case_ids]
    eids = {i.event.event_id for i, _ in plan.impossible if i.event.case_id in case_ids}
    plan.impossible = [(i, r) for i, r in plan.impossible if i.event.case_id not in case_ids]
    plan.problems = [p for p in plan.problems if p.get("case_id") not in case_ids and p["eid"] not in eids]
    result.alert_candidates = [c for c in result.alert_candidates if c.case_id not in case_ids]
    result.alert_ended -= case_ids


def _plan_cases(session: Session, case_ids: list[str], by_case: dict[str, list[Incoming]], rows: dict[str, Any],
                ref: Reference, result: ApplyResult, plan: _Plan, fresh: list[Incoming]) -> None:
    """Fold each case's new events onto its row (or its whole history again) into ``plan``."""
    refold: list[str] = []
    impossible = plan.impossible
    problems = plan.problems
    for case_id in case_ids:
        # sort_key's string order is LifecycleEvent.sort_key's order, and ids are unique
        keyed = sorted([(sort_key(i.event), i) for i in by_case[case_id]], key=_first)
        items = [i for _, i in keyed]
        keys = [k for k, _ in keyed]
        row = rows.get(case_id)
        if row is not None and (keys[0] <= (row.max_key or "") or (row.fold_state or {}).get("skipped")):
            # Lands inside the known history, or the history holds events that were not
            # legal where they fell and may be now: fold the whole history again.
            refold.append(case_id)
            continue
        state = _state_from_row(row) if row is not None else CaseState(case_id=case_id)
        timer = _timer(row, state, ref.timing)
        skipped: list[tuple[Incoming, str]] = []
        for item in items:
            try:
                if timer is not None:
                    timer.apply(item.event)
                else:
                    state.apply(item.event)
            except TransitionError as exc:
                skipped.append((item, str(exc)))
        kept_keys = keys
        for item, reason in skipped:
            if _impossible(item.event, state):
                impossible.append((item, _impossible_reason(item.event, state)))
                kept_keys = [k for k in kept_keys if not k.endswith("|" + item.event.event_id)]
            else:
                problems.append({"eid": item.event.event_id, "problem": reason, "case_id": case_id})
        max_key = max(kept_keys, default=row.max_key if row is not None else "")
        still_skipped = len(skipped) - sum(1 for item, _ in skipped if _impossible(item.event, state))
        values = _case_values(state, ref, max_key or (row.max_key if row is not None else ""), still_skipped, timer)
        _note_change(state, row, values, ref, result)
        if row is None:
            plan.new_rows.append(values)
        else:
            plan.changed_rows.append({"id": row.id, **values})

    if refold:
        result.refolded += len(refold)
        by_id = {i.event.event_id: i for i in fresh}
        _refold(session, refold, rows, ref, result, plan.changed_rows, problems, impossible, by_id)


def _write(session: Session, new_rows: list[dict[str, Any]], changed_rows: list[dict[str, Any]],
           problems: list[dict[str, Any]]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        if (new_rows or changed_rows) and _write_cases_pg(session, new_rows, changed_rows):
            raise CaseRace(f"{len(new_rows)} new case(s): some were created meanwhile")
    else:
        if new_rows:
            session.connection().execute(insert(Case.__table__), new_rows)
        if changed_rows:
            session.execute(update(Case), changed_rows)  # ORM bulk UPDATE by primary key
    if problems:
        session.execute(
            update(CaseEvent.__table__)
            .where(CaseEvent.__table__.c.event_id == bindparam("eid"))
            .values(problem=bindparam("problem")),
            [{"eid": p["eid"], "problem": p["problem"]} for p in problems],
        )


def expire_illegal(session: Session, ref: Reference, received_before: datetime, limit: int = 500) -> ApplyResult:
    """Take events that are still illegal where they fall out of the history.

    An event that breaks the loop is first kept (a late event may make it legal); once it
    has waited past the grace period it is removed and comes back in ``result.rejected``
    (reason code ``transition``) for the dead-letter stream, and its case is re-folded.
    """
    result = ApplyResult()
    t = CaseEvent.__table__
    stale = session.execute(
        select(t.c.event_id, t.c.case_id, t.c.type, t.c.occurred_at, t.c.payload, t.c.problem)
        .where(t.c.problem.is_not(None), t.c.received_at < received_before)
        .order_by(t.c.id).limit(limit)
    ).all()
    if not stale:
        return result
    case_ids = sorted({r.case_id for r in stale})
    rows = {
        row.case_id: row
        for row in session.execute(
            select(*Case.__table__.c).where(Case.case_id.in_(case_ids))
            .order_by(Case.case_id).with_for_update()
        )
    }
    # A second ingest sweeping at the same moment must not dead-letter them twice (forget_events).
    deleted = forget_events(session, [r.event_id for r in stale])
    for r in stale:
        if r.event_id not in deleted:
            continue
        event = LifecycleEvent(r.event_id, r.case_id, EventType(r.type), r.occurred_at, r.payload or {})
        result.rejected.append((Incoming(event, payload=r.payload or {}), "transition",
                                f"illegal transition, still not legal after the grace period: {r.problem}"))
    changed_rows: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    impossible: list[tuple[Incoming, str]] = []
    _refold(session, [c for c in case_ids if c in rows], rows, ref, result, changed_rows, problems, impossible, {})
    if impossible:  # cannot happen: only skipped events were removed; keep them honest anyway
        result.rejected += [(item, "transition", reason) for item, reason in impossible]
    _write(session, [], changed_rows, problems)
    return result


def _impossible(event: LifecycleEvent, state: CaseState) -> bool:
    """Skipped for good: before the case's report, or a second report of it.

    Every case starts with exactly one 上报; nothing that arrives later can make an event
    that precedes it (or a second report) legal, so such events are rejected, not kept.
    """
    if state.reported_at is None:
        return False
    return event.type is EventType.REPORTED or event.occurred_at < state.reported_at


def _impossible_reason(event: LifecycleEvent, state: CaseState) -> str:
    if event.type is EventType.REPORTED:
        return (f"impossible transition: 案件 {event.case_id} 已于 {state.reported_at:%Y-%m-%d %H:%M:%S%z} "
                "上报，不能再次上报")
    reported = state.reported_at.isoformat() if state.reported_at else ""
    return (f"impossible transition: {event.type.value}（{event.type.label}）发生在案件 {event.case_id} "
            f"上报之前（{event.occurred_at.isoformat()} < {reported}）")


def _refold(session: Session, case_ids: list[str], rows: dict[str, Any], ref: Reference,
            result: ApplyResult, changed_rows: list[dict[str, Any]], problems: list[dict[str, Any]],
            impossible: list[tuple[Incoming, str]], by_id: dict[str, Incoming]) -> None:
    histories: dict[str, list[LifecycleEvent]] = {cid: [] for cid in case_ids}
    old_problems: dict[str, str | None] = {}
    payloads: dict[str, dict[str, Any]] = {}
    for r in session.execute(
        select(CaseEvent.event_id, CaseEvent.case_id, CaseEvent.type, CaseEvent.occurred_at,
               CaseEvent.payload, CaseEvent.problem)
        .where(CaseEvent.case_id.in_(case_ids))
    ):
        histories[r.case_id].append(
            LifecycleEvent(r.event_id, r.case_id, EventType(r.type), r.occurred_at, _fields(r.payload))
        )
        old_problems[r.event_id] = r.problem
        payloads[r.event_id] = r.payload or {}
    for case_id, history in histories.items():
        state, skipped, timer = _fold(case_id, history, ref.timing)
        reasons = {ev.event_id: reason for ev, reason in skipped}
        gone = set()
        for ev, _ in skipped:
            if _impossible(ev, state):
                gone.add(ev.event_id)
                impossible.append((by_id.get(ev.event_id) or Incoming(ev, payload=payloads[ev.event_id]),
                                   _impossible_reason(ev, state)))
        for ev in history:  # record why events were skipped, and clear it when they apply now
            if ev.event_id not in gone and reasons.get(ev.event_id) != old_problems.get(ev.event_id):
                problems.append({"eid": ev.event_id, "problem": reasons.get(ev.event_id)})
        max_key = max((sort_key(ev) for ev in history if ev.event_id not in gone), default="")
        values = _case_values(state, ref, max_key, len(skipped) - len(gone), timer)
        row = rows[case_id]
        _note_change(state, row, values, ref, result)
        changed_rows.append({"id": row.id, **values})


def _fold(case_id: str, history: list[LifecycleEvent], timing: Timing | None
          ) -> tuple[CaseState, list[tuple[LifecycleEvent, str]], CaseTimer | None]:
    if timing is None:
        from dashboard.rules.lifecycle import fold

        state, skipped = fold(case_id, history)
        return state, skipped, None
    timer, skipped = fold_timer(case_id, history, timing)
    return timer.state, skipped, timer


def _fields(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The case fields of a stored payload (it holds the message as the producer sent it)."""
    return payload or {}


def _note_change(state: CaseState, row: Any, values: dict[str, Any], ref: Reference, result: ApplyResult) -> None:
    result.case_ids.add(state.case_id)
    if state.values.get("grid_code"):
        result.grid_codes.add(state.values["grid_code"])
    if state.values.get("unit_code"):
        result.unit_codes.add(state.values["unit_code"])
    if result.alert_rules is not None:
        _note_alert(result.alert_rules, state.case_id, row, values, result)
    if row is not None:
        if row.grid_id is not None and row.grid_id != values["grid_id"]:
            result.grid_codes.add(ref.grid_code(row.grid_id))  # the grid it left
        if row.unit_id is not None and row.unit_id != values["unit_id"]:
            result.unit_codes.add(ref.unit_code(row.unit_id))  # the unit it left


URGENT = Urgency.URGENT.value


def _note_alert(rules: AlertRules, case_id: str, row: Any, values: dict[str, Any], result: ApplyResult) -> None:
    """A reason the case has now and had not in its stored row raises an alert, unless the case has
    ended already (a case that arrives closed alerts nobody); a qualifying case that ends clears its
    alerts. Cases that qualified before alerts existed (0007) are left alone: nothing is backfilled."""
    if values["urgency"] != URGENT and (values["kind"], values["class_code"]) not in rules.safety:
        return  # most cases: two comparisons, nothing built
    reasons = rules.reasons(values["urgency"], values["kind"], values["class_code"])
    if values["stage"] in TERMINAL:  # Stage is a str enum: the stored value is found
        if row is not None and row.stage not in TERMINAL:
            result.alert_ended.add(case_id)
        return
    if row is not None:
        reasons = reasons - rules.reasons(row.urgency, row.kind, row.class_code)
    for reason in sorted(reasons):
        result.alert_candidates.append(AlertCandidate(case_id, reason, values["class_code"], values["grid_id"]))


def _case_values(state: CaseState, ref: Reference, max_key: str, skipped: int,
                 timer: CaseTimer | None) -> dict[str, Any]:
    v = state.values
    return {
        "case_id": state.case_id,
        "number": v.get("number"),
        "source": v.get("source"),
        "kind": v.get("kind"),
        "class_code": v.get("class_code"),
        "grid_id": ref.grid_ids.get(v.get("grid_code") or ""),
        "lon": v.get("lon"),
        "lat": v.get("lat"),
        "address": v.get("address"),
        "description": v.get("description"),
        "urgency": v.get("urgency") or "normal",
        "stage": state.stage.value if state.stage else None,
        "unit_id": ref.unit_ids.get(v.get("unit_code") or ""),
        "device_id": v.get("device_id"),
        "device_kind": v.get("device_kind"),
        "alarm_type": v.get("alarm_type"),
        "alarm_count": v.get("alarm_count"),
        "alarm_cleared_at": as_datetime(v["alarm_cleared_at"]) if v.get("alarm_cleared_at") else None,
        **{name: getattr(state, name) for name in _STATE_COLUMNS},
        "max_key": max_key,
        "fold_state": {
            "stage_before_suspension": state.stage_before_suspension.value
            if state.stage_before_suspension else None,
            "values": _jsonable(v),
            "skipped": skipped,
            "clock": {
                "stage": state.clock,
                "started_at": _iso(state.clock_started_at),
                "pauses": [[_iso(a), _iso(b)] for a, b in state.clock_pauses],
                "extensions": [[_iso(a), _iso(b)] for a, b in state.clock_extensions],
            },
        },
        **_clock_values(state, timer),
    }


def case_values(state: CaseState, ref: Reference, max_key: str, skipped: int,
                timer: CaseTimer | None) -> dict[str, Any]:
    """The ``cases`` row of a folded case (its columns as the ingest writes them); the replay
    (dashboard/figures/timetravel.py) builds the rows of a past instant with it."""
    return _case_values(state, ref, max_key, skipped, timer)


def _clock_values(state: CaseState, timer: CaseTimer | None) -> dict[str, Any]:
    """The running clock's deadline (one calendar ``add``) and the on-time flags, as columns.

    "As of the latest event": the deadline is fixed by the events; whether it has passed is
    decided when the row is read (dashboard.figures.overdue).
    """
    clock = timer.clock() if timer is not None else None
    on_time = timer.on_time if timer is not None else {}
    return {
        "clock_stage": state.clock,
        "clock_started_at": state.clock_started_at,
        "deadline_at": clock.deadline_at if clock else None,
        "deadline_source": clock.source if clock else None,
        "limit_minutes": clock.limit_minutes if clock else None,
        "limit_unit": clock.unit if clock else None,
        "paused_at": clock.paused_at if clock else None,
        **{col: on_time.get(stage) for stage, col in ON_TIME_COLUMNS.items()},
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


_PLAIN = frozenset({str, int, float, bool, type(None), list, dict})


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    if _PLAIN.issuperset(map(type, values.values())):  # nothing to convert (checked in C)
        return dict(values)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()}


def iter_incoming(events: Iterable[LifecycleEvent], source: str | None = None) -> list[Incoming]:
    """Wrap bare lifecycle events (used by the history builder and tests)."""
    return [Incoming(ev, source=ev.fields.get("source") or source) for ev in events]
