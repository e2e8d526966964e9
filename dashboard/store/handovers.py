"""Shift handovers in the store (docs/handover.md): notes while a shift runs, the report once after.

- :func:`store_report` (through ``dashboard.figures.handover.write_handover``, called by the one
  owner of scheduled work, ``feeds/housekeeping.py``, or ``gridhall handover --shift …``): stores
  an ended shift's report with ``UPDATE … WHERE content IS NULL`` — a second run, by the same
  owner or a new one, finds it written and changes nothing, so a shift never has two reports.
- :func:`save_notes`: the shift lead's (or an admin's) notes for the *current* shift; refused
  once the shift is handed over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dashboard.rules.shifts import LISTED, MAX_NOTES, Shift
from dashboard.store.models import ShiftHandover, User
from dashboard.store.users import UserRole

NOTE_ROLES = frozenset({UserRole.SHIFT_LEAD.value, UserRole.ADMIN.value})


class NotesRefused(ValueError):
    """Notes that cannot be saved; one line for people (zh-CN)."""


@dataclass(frozen=True)
class HandoverEntry:
    """One shift in the list of handovers."""

    key: str  # 2026-11-20T08:00
    label: str
    start: datetime
    end: datetime
    written_at: datetime | None
    came_in: int | None
    closed: int | None
    went_overdue: int | None
    alerts: int | None
    has_notes: bool


def _ensure_row(session: Session, shift: Shift) -> None:
    values = {"shift_start": shift.start, "shift_end": shift.end, "notes": ""}
    stmt: postgresql.Insert | sqlite.Insert
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(ShiftHandover).values(**values).on_conflict_do_nothing(index_elements=["shift_start"])
    else:
        stmt = sqlite.insert(ShiftHandover).values(**values).on_conflict_do_nothing(index_elements=["shift_start"])
    session.execute(stmt)


def get_row(session: Session, shift: Shift) -> ShiftHandover | None:
    return session.scalar(select(ShiftHandover).where(ShiftHandover.shift_start == shift.start))


def claim(session: Session, shift: Shift) -> ShiftHandover:
    """The row of ``shift``, made if missing (concurrent callers get the same one)."""
    _ensure_row(session, shift)
    row = get_row(session, shift)
    assert row is not None
    return row


def store_report(session: Session, row: ShiftHandover, content: dict[str, Any], now: datetime) -> tuple[
        dict[str, Any], bool]:
    """Store ``content`` as the report of ``row``'s shift unless one is there already: returns the
    stored report and whether it is this one. The caller commits."""
    done = session.execute(update(ShiftHandover).where(ShiftHandover.id == row.id, ShiftHandover.content.is_(None))
                           .values(content=content, written_at=now).returning(ShiftHandover.id)
                           .execution_options(synchronize_session=False)).scalar()
    if done is None:  # another writer got there first: theirs is the report
        session.expire(row)
        assert row.content is not None
        return row.content, False
    return content, True


def stored(session: Session, shift: Shift) -> dict[str, Any] | None:
    """The written report of ``shift``, or None."""
    row = get_row(session, shift)
    return row.content if row is not None else None


def notes_of(session: Session, shift: Shift) -> tuple[str, str, datetime | None]:
    """(text, who, when) of a shift's notes ("", "", None when none)."""
    row = get_row(session, shift)
    if row is None:
        return "", "", None
    return row.notes, row.notes_user.display_name if row.notes_user is not None else "", row.notes_at


def save_notes(session: Session, user_id: int, shift: Shift, text: str, now: datetime) -> None:
    """Store ``text`` by user ``user_id`` as the notes of ``shift``, the shift ``now`` falls in.
    The caller commits."""
    user = session.get(User, user_id)
    if user is None or user.role not in NOTE_ROLES or user.disabled:
        raise NotesRefused("只有值班长或管理员可以填写交接班备注")
    if not (shift.start <= now < shift.end):
        raise NotesRefused("只能填写当前班次的交接班备注")
    text = (text or "").strip()
    if len(text) > MAX_NOTES:
        raise NotesRefused(f"交接班备注最多 {MAX_NOTES} 字")
    _ensure_row(session, shift)
    row = get_row(session, shift)
    assert row is not None
    if row.content is not None:
        raise NotesRefused("本班交接班报告已生成，备注不能再修改")
    row.notes, row.notes_by, row.notes_at = text, user.id, now
    session.flush()


def list_handovers(session: Session, tz: Any, limit: int = LISTED) -> list[HandoverEntry]:
    """The latest shifts with a row (written or with notes), newest first."""
    out = []
    for r in session.scalars(select(ShiftHandover).order_by(ShiftHandover.shift_start.desc()).limit(limit)):
        shift = Shift(r.shift_start, r.shift_end, tz)
        c = r.content or {}

        def total(key: str, c: dict[str, Any] = c) -> int | None:
            return int(c[key]["total"]) if key in c else None

        out.append(HandoverEntry(shift.key, shift.label, r.shift_start, r.shift_end, r.written_at,
                                 total("came_in"), total("closed"), total("went_overdue"),
                                 len(c["alerts"]) if "alerts" in c else None, bool(r.notes)))
    return out
