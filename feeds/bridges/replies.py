"""工单回复: the result of every closed 12345 case, back to the hotline system, exactly once.

How the bridge learns of closures: a periodic read of the database (not the change notices,
which are capped and only say that a case changed). Each pass selects the ``closed`` events
of hotline cases (``case_id`` ``hl12345-…``, whose case now stands at 结案) that the ingest
*received* since the watermark (``hotline:replies:mark``, less a minute of slack for
transactions that committed late), so a closure delivered late (its ``occurred_at`` long past)
is still seen. For each one the reply record

    {"工单编号": …, "操作": "回复", "办结时间": "2026-11-24 16:05:00", "办理结果": …, "承办单位": …}

is written — first, when a folder is given, as the file ``reply-<工单编号>.jsonl`` (one JSON
line; written as ``.tmp`` and renamed, so a reader never sees half of it), then to the stream
``hotline:replies`` (field ``record``, the same JSON) — and the 工单编号 added to the set
``hotline:replied``, the XADD and the SADD in one server-side script that does nothing when the
工单编号 is already in the set. A pass run twice, two bridges, or a kill at any point give
exactly one stream entry (and one file) per closed 工单.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import orjson
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.clock import utcnow
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store.models import Case, CaseEvent, Unit

from ..keys import HOTLINE_REPLIED_KEY, HOTLINE_REPLY_MARK_KEY, HOTLINE_REPLY_STREAM
from .hotline import CASE_PREFIX
from .inbox import RECORD_FIELD

log = logging.getLogger(__name__)

SLACK = timedelta(minutes=1)
RESULT_EVENTS = (EventType.CLOSED.value, EventType.HANDLED.value, EventType.SELF_HANDLED.value,
                 EventType.CHECKED_OK.value)
DEFAULT_RESULT = "已办结"

# Add the 工单编号 to the replied set and, only if it was not there, append the reply.
_REPLY = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', ARGV[2], ARGV[3])
"""


@dataclass(frozen=True)
class Reply:
    order_no: str
    closed_at: datetime
    result: str
    unit: str

    def record(self, tz: object) -> dict[str, str]:
        local = self.closed_at.astimezone(tz)  # type: ignore[arg-type]
        return {"工单编号": self.order_no, "操作": "回复", "办结时间": local.strftime("%Y-%m-%d %H:%M:%S"),
                "办理结果": self.result, "承办单位": self.unit}


class ReplyWriter:
    """Finds newly closed hotline cases and writes one 工单回复 each."""

    def __init__(self, client: redis.Redis, settings: Settings, sessions: sessionmaker[Session],
                 *, folder: Path | None = None) -> None:
        self.client = client
        self.settings = settings
        self.sessions = sessions
        self.folder = folder
        self.stream = settings.key(HOTLINE_REPLY_STREAM)
        self.replied = settings.key(HOTLINE_REPLIED_KEY)
        self.mark_key = settings.key(HOTLINE_REPLY_MARK_KEY)
        self._script = client.register_script(_REPLY)
        self.written = 0

    def mark(self) -> datetime | None:
        text = cast(str | None, self.client.get(self.mark_key))
        return datetime.fromisoformat(text) if text else None

    def closed_since(self, session: Session, since: datetime | None) -> list[tuple[Reply, datetime]]:
        """(reply, received_at of its closed event) of the hotline cases closed since ``since``."""
        query = (select(CaseEvent.case_id, CaseEvent.received_at, Case.closed_at, Case.id, Unit.name)
                 .join(Case, Case.case_id == CaseEvent.case_id)
                 .outerjoin(Unit, Unit.id == Case.unit_id)
                 .where(CaseEvent.type == EventType.CLOSED.value, CaseEvent.problem.is_(None),
                        CaseEvent.case_id.like(CASE_PREFIX + "%"), Case.stage == "closed")
                 .order_by(CaseEvent.received_at))
        if since is not None:
            query = query.where(CaseEvent.received_at >= since - SLACK)
        rows = session.execute(query).all()
        out = []
        for case_id, received_at, closed_at, _pk, unit_name in rows:
            if closed_at is None:
                continue
            out.append((Reply(case_id[len(CASE_PREFIX):], closed_at, self._result(session, case_id),
                              unit_name or ""), received_at))
        return out

    def _result(self, session: Session, case_id: str) -> str:
        """办理结果: the description of the latest 结案 / 处置 event that carries one."""
        rows = session.execute(
            select(CaseEvent.payload).where(CaseEvent.case_id == case_id, CaseEvent.type.in_(RESULT_EVENTS))
            .order_by(CaseEvent.occurred_at.desc())).scalars()
        for payload in rows:
            text = (payload or {}).get("description")
            if isinstance(text, str) and text.strip():
                return text.strip()
        return DEFAULT_RESULT

    def run_once(self) -> int:
        """One pass; returns the replies written (0 for closures already replied)."""
        since = self.mark()
        started = utcnow()
        with self.sessions() as session:
            found = self.closed_since(session, since)
        written = 0
        newest = since
        for reply, received_at in found:
            newest = max(newest or received_at, received_at)
            if self.client.sismember(self.replied, reply.order_no):
                continue
            data = orjson.dumps(reply.record(self.settings.tz)).decode()
            if self.folder is not None:
                self._write_file(reply.order_no, data)
            if self._script(keys=[self.replied, self.stream], args=[reply.order_no, RECORD_FIELD, data]):
                written += 1
        # The mark moves to the newest closure seen, never past the start of this pass.
        mark = min(newest, started) if newest is not None else None
        if mark is not None:
            self.client.set(self.mark_key, mark.astimezone(UTC).isoformat())
        self.written += written
        if written:
            log.info("wrote %d 工单回复", written)
        return written

    def _write_file(self, order_no: str, line: str) -> None:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"reply-{order_no}.jsonl"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(line + "\n", encoding="utf-8")
        os.replace(tmp, target)
