"""Apply case events to SQL: store the history, re-derive each touched case from it.

Idempotent by ``event_id`` and independent of arrival order: after inserting the new
events of a batch, every touched case is re-folded from its *whole* stored history
(see :func:`dashboard.lifecycle.fold`), so duplicates and late arrivals converge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from .lifecycle import CaseState, EventType, LifecycleEvent, fold
from .models import Case, CaseEvent
from .reference import Reference
from .vocab import Kind


@dataclass(frozen=True)
class Incoming:
    """An event to apply, with what the transport knows about it."""

    event: LifecycleEvent
    source: str | None = None
    actor: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # transport id (e.g. the stream entry id), for dead letters


@dataclass
class ApplyResult:
    """What one batch did."""

    applied: int = 0
    duplicates: int = 0
    rejected: list[tuple[Incoming, str]] = field(default_factory=list)
    case_ids: set[str] = field(default_factory=set)
    grid_codes: set[str] = field(default_factory=set)
    unit_codes: set[str] = field(default_factory=set)


class ReferenceProblem(ValueError):
    """The event names a class, grid or unit this city does not have."""


def resolve(incoming: Incoming, ref: Reference) -> Incoming:
    """Check codes against reference data; fill grid_code from lon/lat. Raises ReferenceProblem."""
    fields = dict(incoming.event.fields)
    kind, class_code = fields.get("kind"), fields.get("class_code")
    if class_code is not None:
        if kind is None:
            raise ReferenceProblem("class_code 需要同时给出 kind（component/event）")
        if ref.classification.get(Kind(kind), class_code) is None:
            raise ReferenceProblem(
                f"unknown classification: 分类方案 {ref.classification.name} 中没有"
                f"{Kind(kind).label}小类 {class_code}"
            )
    grid_code = fields.get("grid_code")
    if grid_code is not None and grid_code not in ref.grid_ids:
        raise ReferenceProblem(f"unknown grid: 单元网格 {grid_code} 不存在")
    if grid_code is None and fields.get("lon") is not None and fields.get("lat") is not None:
        located = ref.locate(float(fields["lon"]), float(fields["lat"]))
        if located is None:
            raise ReferenceProblem(
                f"outside the city: 坐标 ({fields['lon']}, {fields['lat']}) 不在任何单元网格内"
            )
        fields["grid_code"] = located
    unit_code = fields.get("unit_code")
    if unit_code is not None and unit_code not in ref.unit_ids:
        raise ReferenceProblem(f"unknown unit: 处置单位 {unit_code} 不存在")
    if fields == incoming.event.fields:
        return incoming
    event = LifecycleEvent(
        incoming.event.event_id, incoming.event.case_id, incoming.event.type,
        incoming.event.occurred_at, fields,
    )
    return Incoming(event, incoming.source, incoming.actor, incoming.payload, incoming.origin)


def apply_events(session: Session, batch: Sequence[Incoming], ref: Reference) -> ApplyResult:
    """Apply a batch inside the caller's transaction. Events that fail reference checks are
    returned in ``result.rejected`` (nothing of them is stored); all others are stored."""
    result = ApplyResult()
    now = datetime.now(timezone.utc)

    accepted: dict[str, Incoming] = {}
    for item in batch:
        if item.event.event_id in accepted:
            result.duplicates += 1
            continue
        try:
            accepted[item.event.event_id] = resolve(item, ref)
        except ReferenceProblem as exc:
            result.rejected.append((item, str(exc)))
    if not accepted:
        return result

    existing = set(
        session.scalars(select(CaseEvent.event_id).where(CaseEvent.event_id.in_(list(accepted))))
    )
    fresh = [item for eid, item in accepted.items() if eid not in existing]
    result.duplicates += len(accepted) - len(fresh)
    if not fresh:
        return result

    session.execute(
        insert(CaseEvent),
        [
            {
                "event_id": item.event.event_id,
                "case_id": item.event.case_id,
                "type": item.event.type.value,
                "occurred_at": item.event.occurred_at,
                "received_at": now,
                "source": item.source,
                "actor": item.actor,
                "payload": _stored_payload(item),
            }
            for item in fresh
        ],
    )
    result.applied = len(fresh)
    case_ids = {item.event.case_id for item in fresh}
    _refold(session, case_ids, ref, result)
    return result


def _stored_payload(item: Incoming) -> dict[str, Any]:
    payload = dict(item.payload)
    payload.update({k: v for k, v in item.event.fields.items() if v is not None})
    return payload


def _refold(session: Session, case_ids: set[str], ref: Reference, result: ApplyResult) -> None:
    histories: dict[str, list[tuple[int, LifecycleEvent]]] = {cid: [] for cid in case_ids}
    rows = session.execute(
        select(CaseEvent.id, CaseEvent.event_id, CaseEvent.case_id, CaseEvent.type,
               CaseEvent.occurred_at, CaseEvent.payload, CaseEvent.problem)
        .where(CaseEvent.case_id.in_(list(case_ids)))
    ).all()
    problems_before = {}
    for row in rows:
        histories[row.case_id].append(
            (row.id, LifecycleEvent(row.event_id, row.case_id, EventType(row.type), row.occurred_at, row.payload or {}))
        )
        problems_before[row.event_id] = (row.id, row.problem)

    existing = {
        c.case_id: c for c in session.scalars(select(Case).where(Case.case_id.in_(list(case_ids))))
    }
    new_rows: list[dict[str, Any]] = []
    for case_id, history in histories.items():
        state, skipped = fold(case_id, [ev for _, ev in history])
        skipped_reasons = {ev.event_id: reason for ev, reason in skipped}
        # Record why events were skipped (and clear it when a late event made them legal).
        for _, ev in history:
            row_id, old = problems_before[ev.event_id]
            new = skipped_reasons.get(ev.event_id)
            if new != old:
                session.execute(update(CaseEvent).where(CaseEvent.id == row_id).values(problem=new))
        if state.stage is None:
            continue  # nothing legal yet (e.g. only a "closed" whose "reported" is late)
        values = _case_values(state, ref)
        result.case_ids.add(case_id)
        if values.get("grid_id") is not None:
            result.grid_codes.add(state.values.get("grid_code", ""))
        if state.values.get("unit_code"):
            result.unit_codes.add(state.values["unit_code"])
        case = existing.get(case_id)
        if case is None:
            new_rows.append(values)
        else:
            if case.grid_id is not None and case.grid_id != values["grid_id"]:
                result.grid_codes.add(ref.grid_code(case.grid_id))  # the grid it left
            for key, value in values.items():
                setattr(case, key, value)
    if new_rows:
        session.execute(insert(Case), new_rows)
    result.grid_codes.discard("")


def _case_values(state: CaseState, ref: Reference) -> dict[str, Any]:
    v = state.values
    return {
        "case_id": state.case_id,
        "number": v.get("number"),
        "source": v.get("source"),
        "kind": v.get("kind"),
        "class_code": v.get("class_code"),
        "grid_id": ref.grid_ids.get(v.get("grid_code", "")),
        "lon": v.get("lon"),
        "lat": v.get("lat"),
        "address": v.get("address"),
        "description": v.get("description"),
        "urgency": v.get("urgency") or "normal",
        "stage": state.stage.value if state.stage else None,
        "unit_id": ref.unit_ids.get(v.get("unit_code", "")),
        "reported_at": state.reported_at,
        "verified_at": state.verified_at,
        "filed_at": state.filed_at,
        "dispatched_at": state.dispatched_at,
        "handled_at": state.handled_at,
        "checked_at": state.checked_at,
        "closed_at": state.closed_at,
        "last_event_at": state.last_event_at,
        "rework_count": state.rework_count,
        "return_count": state.return_count,
        "extension_count": state.extension_count,
    }


def iter_incoming(events: Iterable[LifecycleEvent], source: str | None = None) -> list[Incoming]:
    """Wrap bare lifecycle events (used by the history builder and tests)."""
    return [Incoming(ev, source=ev.fields.get("source") or source, payload={}) for ev in events]
