"""Hot-spot acknowledgements and notes (热点确认/批注): the only writes of the web pages.

A shift lead (``shift_lead``) who has looked at a hot grid records it: an **ack** (确认, "seen,
being handled") or a **note** (批注, free text). Each row keeps the grid, the user and the
time; rows are never edited or deleted, so the list is the shift's record.

Rules, checked here and not only in the UI:

- only ``shift_lead`` users write (:class:`NotAllowed` otherwise);
- the grid must lie inside the user's scope — a grid outside it is refused exactly like an
  unknown one (:class:`dashboard.figures.scoped.OutOfScope`), so the refusal tells nothing;
- a note is at most :data:`MAX_NOTE` characters, stripped; an ack may have an empty note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.figures.scoped import OutOfScope
from dashboard.store.models import Grid, HotspotNote, User
from dashboard.store.scope import Scope, grid_code_in_scope, grid_id_condition
from dashboard.store.users import UserRole

MAX_NOTE = 500
KINDS = {"ack": "确认", "note": "批注"}
# An acknowledgement counts as "this hot spot is being looked after" for one shift.
ACK_VALID = timedelta(hours=12)


class NotAllowed(PermissionError):
    """The user's role may not write hot-spot notes."""


class BadNote(ValueError):
    """The note cannot be stored (too long, unknown kind, empty note)."""


@dataclass(frozen=True)
class NoteView:
    """One acknowledgement or note as pages and the API show it."""

    id: int
    grid_code: str
    kind: str  # "ack" | "note"
    kind_label: str
    note: str
    by: str  # the user's display name
    username: str
    at: datetime


def add(session: Session, user: User, scope: Scope, grid_code: str, kind: str, note: str,
        now: datetime) -> NoteView:
    """Store an acknowledgement or a note on ``grid_code`` by ``user``; the caller commits."""
    if user.role != UserRole.SHIFT_LEAD.value or user.disabled:
        raise NotAllowed("只有值班长可以确认或批注热点")
    if kind not in KINDS:
        raise BadNote(f"未知类型 {kind!r}")
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise BadNote(f"批注最多 {MAX_NOTE} 字")
    if kind == "note" and not text:
        raise BadNote("批注内容不能为空")
    code = (grid_code or "").strip()
    if not grid_code_in_scope(scope, code):
        raise OutOfScope(code)
    grid_id = session.scalar(select(Grid.id).where(Grid.code == code))
    if grid_id is None:
        raise OutOfScope(code)
    row = HotspotNote(grid_id=grid_id, user_id=user.id, kind=kind, note=text, created_at=now)
    session.add(row)
    session.flush()
    return NoteView(row.id, code, kind, KINDS[kind], text, user.display_name, user.username, now)


def recent(session: Session, scope: Scope, *, grid_codes: list[str] | None = None,
           since: datetime | None = None, limit: int = 200) -> list[NoteView]:
    """Notes inside ``scope``, newest first (optionally for some grids, or since a time)."""
    stmt = (
        select(HotspotNote, Grid.code, User.display_name, User.username)
        .join(Grid, Grid.id == HotspotNote.grid_id)
        .join(User, User.id == HotspotNote.user_id)
        .where(grid_id_condition(scope, HotspotNote.grid_id))
        .order_by(HotspotNote.created_at.desc(), HotspotNote.id.desc())
        .limit(limit)
    )
    if grid_codes is not None:
        codes = [c for c in grid_codes if scope.allows(c)]
        if not codes:
            return []
        stmt = stmt.where(Grid.code.in_(codes))
    if since is not None:
        stmt = stmt.where(HotspotNote.created_at >= since)
    return [
        NoteView(n.id, code, n.kind, KINDS[n.kind], n.note, name, username, n.created_at)
        for n, code, name, username in session.execute(stmt).all()
    ]


def acknowledged(session: Session, scope: Scope, now: datetime) -> dict[str, NoteView]:
    """Grid code → its latest acknowledgement within :data:`ACK_VALID` (for the hot-spot lists)."""
    latest: dict[str, NoteView] = {}
    for n in recent(session, scope, since=now - ACK_VALID, limit=1000):
        if n.kind == "ack" and n.grid_code not in latest:
            latest[n.grid_code] = n
    return latest
