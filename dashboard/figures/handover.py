"""The shift handover's figures (交接班报告, docs/handover.md): what one shift saw, as plain data.

Domain only (no Dash, Flask or Redis). :func:`build_handover` returns the report's content as a
JSON-ready dict, stored once per shift (``dashboard/store/handovers.py``) and rendered from the
stored copy (``dashboard/output/handover.py``). Each fact reuses its one definition:

- **来件** (came in): cases reported (上报) in [start, end); **结案** (closed): cases whose stage is
  结案 with ``closed_at`` in the shift. Counted by 类别·大类 and by 区, with the case lists in the
  rows of the /explore case table (``explore.case_rows``);
- **超期** (went overdue): the cases ``gridhall overdue --at <end>`` lists as overdue
  (:func:`dashboard.figures.overdue.overdue_as_of`, folded from the events) whose deadline fell
  inside the shift;
- **预警** (alerts) and who acknowledged them when: ``dashboard.store.alerts.alerts_in_period``;
- **热点** (hot spots): the heatmap's rule (``LiveView.hot_spots``: the grids with the highest
  non-zero value, ties by grid code) on its 新增 metric counted over the shift;
- **紧急在办** (urgent cases still open): 紧急 cases reported by the end and not finished by it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from dashboard.figures.explore import HOT_GRIDS, case_rows
from dashboard.figures.overdue import class_names, overdue_as_of
from dashboard.rules.deadlines import Timing
from dashboard.rules.lifecycle import Stage
from dashboard.rules.shifts import Shift
from dashboard.rules.vocab import UNLOCATED, GridMetric, Kind, Urgency
from dashboard.store.alerts import alerts_in_period
from dashboard.store.handovers import claim, store_report
from dashboard.store.models import Case, Grid, Region
from dashboard.store.scope import CITY

__all__ = ["CONTENT_VERSION", "LIST_CAP", "SECTIONS", "build_handover", "came_in", "closed_in", "urgent_open",
           "write_handover"]

CONTENT_VERSION = 1
LIST_CAP = 5000  # cases per list kept in the stored report (the counts are always complete)
NO_DISTRICT = "未定位"
# The report's case lists: (key, zh-CN title), in the order the page and the XLSX show them.
SECTIONS = (("came_in", "本班来件"), ("closed", "本班结案"), ("went_overdue", "本班新增超期"),
            ("urgent_open", "紧急案件（交班时仍在办）"))


def came_in(shift: Shift) -> Any:
    """Cases reported (上报) during the shift."""
    return and_(Case.reported_at >= shift.start, Case.reported_at < shift.end)


def closed_in(shift: Shift) -> Any:
    """Cases closed (结案) during the shift (closed_at is also stamped by 不予立案/作废: not these)."""
    return and_(Case.stage == Stage.CLOSED.value, Case.closed_at >= shift.start, Case.closed_at < shift.end)


def urgent_open(shift: Shift) -> Any:
    """紧急 cases reported by the shift's end and not finished (结案/不予立案/作废) by then."""
    return and_(Case.urgency == Urgency.URGENT.value, Case.reported_at < shift.end,
                or_(Case.closed_at.is_(None), Case.closed_at >= shift.end))


def _local(at: datetime | None, timing: Timing) -> str:
    return at.astimezone(timing.calendar.tz).strftime("%Y-%m-%d %H:%M") if at is not None else ""


def _breakdown(session: Session, timing: Timing, condition: Any) -> dict[str, Any]:
    """Total, by 类别·大类 and by 区 (largest first, then by name)."""
    street, district = aliased(Region), aliased(Region)
    rows = session.execute(
        select(Case.kind, Case.class_code, district.name, func.count())
        .outerjoin(Grid, Grid.id == Case.grid_id)
        .outerjoin(Region, Region.id == Grid.community_id)
        .outerjoin(street, street.id == Region.parent_id)
        .outerjoin(district, district.id == street.parent_id)
        .where(condition)
        .group_by(Case.kind, Case.class_code, district.name)
    ).all()
    kinds = Kind.labels()
    groups: Counter[str] = Counter()
    districts: Counter[str] = Counter()
    for kind, code, dname, n in rows:
        major, minor = class_names(timing, kind, code)
        groups[f"{kinds.get(kind or '', kind or '—')}·{major or minor or '未分类'}"] += n
        districts[dname or NO_DISTRICT] += n

    def ordered(c: Counter[str]) -> list[list[Any]]:
        return [[k, v] for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]

    return {"total": sum(groups.values()), "by_group": ordered(groups), "by_district": ordered(districts)}


def _cases(session: Session, timing: Timing, at: datetime, condition: Any) -> list[dict[str, Any]]:
    return list(case_rows(session, CITY, timing, at, condition, LIST_CAP))


def hot_spots(session: Session, shift: Shift, limit: int = HOT_GRIDS) -> list[dict[str, Any]]:
    """The heatmap's hot spots over the shift: grids by cases reported in it, the highest
    non-zero first, ties by grid code (``LiveView.hot_spots``'s rule)."""
    street, district = aliased(Region), aliased(Region)
    n = func.count(Case.id)
    rows = session.execute(
        select(Grid.code, Region.name, street.name, district.name, n)
        .join(Case, Case.grid_id == Grid.id)
        .join(Region, Region.id == Grid.community_id)
        .outerjoin(street, street.id == Region.parent_id)
        .outerjoin(district, district.id == street.parent_id)
        .where(came_in(shift))
        .group_by(Grid.code, Region.name, street.name, district.name)
        .order_by(n.desc(), Grid.code)
        .limit(limit)
    ).all()
    return [{"grid": code, "community": c or "", "street": s or "", "district": d or "", "value": int(v)}
            for code, c, s, d, v in rows]


def build_handover(session: Session, timing: Timing, shift: Shift, *, city_name: str, written_at: datetime,
                   notes: str = "", notes_by: str = "", notes_at: datetime | None = None) -> dict[str, Any]:
    """The whole report of ``shift`` (ended by ``written_at``) as JSON-ready data."""
    end = shift.end
    overdue = [r for r in overdue_as_of(session, timing, end, due_soon=False)
               if r.overdue and shift.start <= r.deadline_at < end]
    overdue_ids = [r.case_id for r in overdue]
    overdue_rows = {r["case_id"]: r for r in _cases(session, timing, end, Case.case_id.in_(overdue_ids))} \
        if overdue_ids else {}
    went_overdue = []
    for r in overdue:  # most overdue first, as gridhall overdue lists them
        row = dict(overdue_rows.get(r.case_id, {"case_id": r.case_id, "number": r.number or ""}))
        row.update(clock_stage=r.stage_label, deadline_at=_local(r.deadline_at, timing),
                   overdue_hours=round(r.overdue_calendar_minutes / 60, 1))
        went_overdue.append(row)
    alerts = [{
        "id": a.alert.id, "case_id": a.alert.case_id, "number": a.alert.number or "",
        "reason": a.alert.headline, "level": a.alert.level.label,
        "klass": " · ".join(x for x in (a.alert.major_name, a.alert.minor_name) if x),
        "district": a.alert.district or NO_DISTRICT, "grid": a.alert.grid_code or UNLOCATED,
        "raised_at": _local(a.alert.raised_at, timing), "escalated_at": _local(a.alert.escalated_at, timing),
        "acknowledged_at": _local(a.acknowledged_at, timing), "acknowledged_by": a.acknowledged_by or "",
        "cleared_at": _local(a.cleared_at, timing),
    } for a in alerts_in_period(session, shift.start, end, classification=timing.classification)]
    return {
        "version": CONTENT_VERSION,
        "shift": {"key": shift.key, "label": shift.label, "start": shift.start.isoformat(),
                  "end": end.isoformat()},
        "city": city_name,
        "written_at": _local(written_at, timing),
        "came_in": {**_breakdown(session, timing, came_in(shift)), "cases": _cases(session, timing, end,
                                                                                  came_in(shift))},
        "closed": {**_breakdown(session, timing, closed_in(shift)), "cases": _cases(session, timing, end,
                                                                                   closed_in(shift))},
        "went_overdue": {"total": len(went_overdue), "cases": went_overdue[:LIST_CAP]},
        "urgent_open": {**_breakdown(session, timing, urgent_open(shift)),
                        "cases": _cases(session, timing, end, urgent_open(shift))},
        "alerts": alerts,
        "alerts_acknowledged": sum(1 for a in alerts if a["acknowledged_at"]),
        "hot_spots": hot_spots(session, shift),
        "hot_metric": f"{GridMetric.NEW_HOUR.label.removeprefix('近一小时')}（本班）",
        "notes": {"text": notes, "by": notes_by, "at": _local(notes_at, timing)},
    }


def write_handover(session: Session, timing: Timing, shift: Shift, *, city_name: str,
                   now: datetime) -> tuple[dict[str, Any], bool]:
    """The stored report of ``shift`` (which must have ended by ``now``), built and stored if
    missing (``dashboard.store.handovers.store_report``: once). Returns (content, written_now);
    the caller commits."""
    if shift.end > now:
        raise ValueError(f"the shift {shift.label} has not ended yet")
    row = claim(session, shift)
    if row.content is not None:
        return row.content, False
    who = row.notes_user.display_name if row.notes_user is not None else ""
    content = build_handover(session, timing, shift, city_name=city_name, written_at=now, notes=row.notes,
                             notes_by=who, notes_at=row.notes_at)
    return store_report(session, row, content, now)
