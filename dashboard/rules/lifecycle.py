"""The closed loop of a case (CJ/T 315-2009 / GB/T 30428.8): stages, event types, legal moves.

A case's state is never stored as "what the last message said": it is derived by folding the
case's whole event history in ``occurred_at`` order (ties broken by event type rank, then
event id), so any arrival order and any duplication give the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dashboard.rules.vocab import SATISFACTION_SCORES, LabelledEnum


class Stage(LabelledEnum):
    """Where a case stands: the last step of the loop it has completed."""

    REPORTED = "reported", "上报"
    VERIFIED = "verified", "核实"
    FILED = "filed", "立案"
    DISPATCHED = "dispatched", "派遣"
    RETURNED = "returned", "回退"
    HANDLED = "handled", "处置反馈"
    CHECKED = "checked", "核查"
    SUSPENDED = "suspended", "挂账"
    CLOSED = "closed", "结案"
    REJECTED = "rejected", "不予立案"
    VOIDED = "voided", "作废"


TERMINAL = frozenset({Stage.CLOSED, Stage.REJECTED, Stage.VOIDED})
OPEN = frozenset(set(Stage) - TERMINAL)


class EventType(LabelledEnum):
    """What happened to a case; one feed entry carries exactly one of these."""

    REPORTED = "reported", "上报"
    VERIFIED = "verified", "核实"
    REJECTED = "rejected", "不予立案"
    FILED = "filed", "立案"
    DISPATCHED = "dispatched", "派遣"
    RETURNED = "returned", "回退"
    HANDLED = "handled", "处置反馈"
    SELF_HANDLED = "self_handled", "自处理"
    EXTENSION_REQUESTED = "extension_requested", "延期申请"
    EXTENSION_APPROVED = "extension_approved", "延期批准"
    EXTENSION_REFUSED = "extension_refused", "延期驳回"
    SUSPENDED = "suspended", "挂账"
    RESUMED = "resumed", "挂账恢复"
    CHECKED_OK = "checked_ok", "核查通过"
    REWORK = "rework", "核查不通过(返工)"
    CLOSED = "closed", "结案"
    VOIDED = "voided", "作废"
    UPDATED = "updated", "信息更新"
    # Appended last, not placed after 结案: the rank is part of the stored sort keys
    # (casebook.sort_key, cases.max_key), which must not change for existing events.
    RATED = "rated", "回访评价"


_ANY_OPEN = OPEN - {Stage.SUSPENDED}

# event type -> (stages it may follow, stage it leads to). ``None`` in the first set means
# "a case with no history yet"; ``None`` as the target means "stage unchanged".
TRANSITIONS: dict[EventType, tuple[frozenset[Stage | None], Stage | None]] = {
    EventType.REPORTED: (frozenset({None}), Stage.REPORTED),
    EventType.VERIFIED: (frozenset({Stage.REPORTED}), Stage.VERIFIED),
    EventType.REJECTED: (frozenset({Stage.REPORTED, Stage.VERIFIED}), Stage.REJECTED),
    EventType.FILED: (frozenset({Stage.REPORTED, Stage.VERIFIED}), Stage.FILED),
    EventType.DISPATCHED: (frozenset({Stage.FILED, Stage.RETURNED}), Stage.DISPATCHED),
    EventType.RETURNED: (frozenset({Stage.DISPATCHED}), Stage.RETURNED),
    EventType.HANDLED: (frozenset({Stage.DISPATCHED}), Stage.HANDLED),
    EventType.SELF_HANDLED: (frozenset({Stage.REPORTED, Stage.VERIFIED, Stage.FILED}), Stage.HANDLED),
    EventType.EXTENSION_REQUESTED: (frozenset({Stage.DISPATCHED}), None),
    EventType.EXTENSION_APPROVED: (frozenset({Stage.DISPATCHED}), None),
    EventType.EXTENSION_REFUSED: (frozenset({Stage.DISPATCHED}), None),
    EventType.SUSPENDED: (frozenset({Stage.DISPATCHED}), Stage.SUSPENDED),
    EventType.RESUMED: (frozenset({Stage.SUSPENDED}), Stage.DISPATCHED),
    EventType.CHECKED_OK: (frozenset({Stage.HANDLED}), Stage.CHECKED),
    EventType.REWORK: (frozenset({Stage.HANDLED}), Stage.DISPATCHED),
    EventType.CLOSED: (frozenset({Stage.CHECKED, Stage.HANDLED}), Stage.CLOSED),
    EventType.VOIDED: (frozenset(_ANY_OPEN), Stage.VOIDED),
    EventType.UPDATED: (frozenset(OPEN | TERMINAL), None),
    # A hotline call-back asks about the result: only a closed case has one (docs/feed.md).
    EventType.RATED: (frozenset({Stage.CLOSED}), None),
}

# Tie-break for events with the same occurred_at: the loop's natural order.
_RANK = {t: i for i, t in enumerate(EventType)}

# Which timestamp column each event type stamps (first occurrence wins, except dispatch
# and handling, which a rework or re-dispatch restarts).
_STAMPS: dict[EventType, tuple[str, bool]] = {
    EventType.REPORTED: ("reported_at", False),
    EventType.VERIFIED: ("verified_at", False),
    EventType.FILED: ("filed_at", False),
    EventType.DISPATCHED: ("dispatched_at", True),
    EventType.REWORK: ("dispatched_at", True),
    EventType.RESUMED: ("dispatched_at", False),
    EventType.HANDLED: ("handled_at", True),
    EventType.SELF_HANDLED: ("handled_at", True),
    EventType.CHECKED_OK: ("checked_at", True),
    EventType.CLOSED: ("closed_at", False),
    EventType.REJECTED: ("closed_at", False),
    EventType.VOIDED: ("closed_at", False),
}

# Case fields an event may carry; later events overwrite earlier values.
CASE_FIELDS = (
    "source",
    "kind",
    "class_code",
    "grid_code",
    "lon",
    "lat",
    "address",
    "description",
    "urgency",
    "unit_code",
    "number",
    # A deadline set by the source system (a hotline's 办理时限): overrides the limits table
    # for the 处置 clock. Only the events in SETS_SOURCE_DEADLINE set it; on any other event
    # the field is kept with the event only (see SETS_SOURCE_DEADLINE).
    "deadline_at",
    # A video/IoT alarm case (source video_iot; feeds/bridges/alarms.py): the device, its kind
    # (camera/sensor) and the alarm type on the 上报; the number of alarms merged into the case
    # and the device's clearance (when the condition ended) on later 信息更新 events.
    "device_id",
    "device_kind",
    "alarm_type",
    "alarm_count",
    "alarm_cleared_at",
)
# The events whose ``deadline_at`` is the producer's source deadline (docs/lifecycle.md,
# "Deadlines"). On ``extension_approved`` the field is the extended deadline (kept with the
# extension, CaseState.clock_extensions); on ``extension_requested`` it is only the date asked
# for, and on every other event it is stored with the event and moves nothing: a request,
# a refusal or a dispatch note must never move the deadline.
SETS_SOURCE_DEADLINE = frozenset({EventType.REPORTED, EventType.UPDATED})
# Fields that belong to one event, not to the case: carried to the lifecycle with it, never
# copied into ``CaseState.values``. ``satisfaction`` is the answer of a 回访评价 (``rated``).
EVENT_FIELDS = ("satisfaction",)

# -- the clocks (docs/lifecycle.md) --------------------------------------------------------------
# Which stage clock runs after an event; events not listed leave the clock as it is. After
# 上报 it is "verify" (核实), or "file" (立案) for a supervisor's own report; see CaseState.apply.
CLOCK_AFTER: dict[EventType, str | None] = {
    EventType.VERIFIED: "file",
    EventType.FILED: "dispatch",
    EventType.DISPATCHED: "handle",  # a re-dispatch after 回退 restarts 处置 as well
    EventType.RETURNED: "dispatch",  # 回退 restarts the 派遣 clock at the return
    EventType.HANDLED: "check",
    EventType.SELF_HANDLED: "close",  # 自处理: no 核查, the 值班长 closes it
    EventType.CHECKED_OK: "close",
    EventType.REWORK: "handle",  # 返工 restarts 处置 at the rework
    EventType.CLOSED: None,
    EventType.REJECTED: None,
    EventType.VOIDED: None,
}
# Events that *finish* the clock running before them (the clock's on-time flag is judged);
# the other clock changes (回退, 自处理, 作废) interrupt it without judging it.
FINISHES_CLOCK = frozenset({
    EventType.VERIFIED, EventType.REJECTED, EventType.FILED, EventType.DISPATCHED,
    EventType.HANDLED, EventType.CHECKED_OK, EventType.REWORK, EventType.CLOSED,
})


class TransitionError(ValueError):
    """An event that the closed loop does not allow in the case's current stage."""


@dataclass(frozen=True)
class LifecycleEvent:
    """One step in a case's history, as the lifecycle sees it (no transport details)."""

    event_id: str
    case_id: str
    type: EventType
    occurred_at: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.occurred_at, _RANK[self.type], self.event_id)


@dataclass
class CaseState:
    """A case as its history says it is now."""

    case_id: str
    stage: Stage | None = None
    stage_before_suspension: Stage | None = None
    reported_at: datetime | None = None
    verified_at: datetime | None = None
    filed_at: datetime | None = None
    dispatched_at: datetime | None = None
    handled_at: datetime | None = None
    checked_at: datetime | None = None
    closed_at: datetime | None = None
    last_event_at: datetime | None = None
    rework_count: int = 0
    return_count: int = 0
    extension_count: int = 0
    # The latest call-back's score on the 1–5 scale and when it was given (None: not rated).
    satisfaction: int | None = None
    rated_at: datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)
    # The running stage clock (verify/file/dispatch/handle/check/close; None when closed)
    # and what moves its deadline: [suspended_at, resumed_at or None] pairs of 挂账, and
    # (approved_at, explicit deadline or None) of approved 延期. Both reset when the clock
    # restarts. Deadlines themselves need the limits table and calendar: dashboard.rules.deadlines.
    clock: str | None = None
    clock_started_at: datetime | None = None
    clock_pauses: list[list[datetime | None]] = field(default_factory=list)
    clock_extensions: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    @property
    def paused_at(self) -> datetime | None:
        """When the running clock was stopped by 挂账 (None when it runs)."""
        if self.clock_pauses and self.clock_pauses[-1][1] is None:
            return self.clock_pauses[-1][0]
        return None

    def allows(self, event: LifecycleEvent) -> bool:
        """Whether ``event`` is legal in the current stage (what :meth:`apply` checks)."""
        return self.stage in TRANSITIONS[event.type][0]

    @property
    def is_open(self) -> bool:
        return self.stage is not None and self.stage not in TERMINAL

    def apply(self, event: LifecycleEvent) -> None:
        """Advance by one event; raises TransitionError (state unchanged) when illegal."""
        allowed, target = TRANSITIONS[event.type]
        if self.stage not in allowed:
            where = self.stage.label if self.stage else "无记录"
            raise TransitionError(
                f"{event.type.value}（{event.type.label}）不能发生在阶段“{where}”之后"
            )
        if event.type is EventType.SUSPENDED:
            self.stage_before_suspension = self.stage
        if event.type is EventType.RESUMED:
            target = self.stage_before_suspension or Stage.DISPATCHED
        if target is not None:
            self.stage = target
        stamp = _STAMPS.get(event.type)
        if stamp is not None:
            column, restart = stamp
            if restart or getattr(self, column) is None:
                setattr(self, column, event.occurred_at)
        if event.type is EventType.REWORK:
            self.rework_count += 1
            self.handled_at = None
            self.checked_at = None
        elif event.type is EventType.RETURNED:
            self.return_count += 1
        elif event.type is EventType.EXTENSION_APPROVED:
            self.extension_count += 1
        elif event.type is EventType.RATED:
            # A later call-back replaces an earlier one (canonical order: the latest wins).
            self.satisfaction = satisfaction_score(event.fields.get("satisfaction"))
            self.rated_at = event.occurred_at
        for name in CASE_FIELDS:
            value = event.fields.get(name)
            if value is not None:
                if name == "deadline_at":
                    if event.type not in SETS_SOURCE_DEADLINE:
                        continue  # an extension's date, or a note on the event: not the case's
                    value = as_datetime(value)
                self.values[name] = value
        self.last_event_at = event.occurred_at
        self._move_clock(event)

    def _move_clock(self, event: LifecycleEvent) -> None:
        at = event.occurred_at
        if event.type is EventType.REPORTED:
            supervisor = self.values.get("source") == "supervisor"
            self._restart("file" if supervisor else "verify", at)
        elif event.type in CLOCK_AFTER:
            clock = CLOCK_AFTER[event.type]
            self._restart(clock, at if clock is not None else None)
        elif event.type is EventType.EXTENSION_APPROVED:
            given = event.fields.get("deadline_at")
            self.clock_extensions.append((at, as_datetime(given) if given is not None else None))
        elif event.type is EventType.SUSPENDED:
            self.clock_pauses.append([at, None])
        elif event.type is EventType.RESUMED:
            if self.clock_pauses and self.clock_pauses[-1][1] is None:
                self.clock_pauses[-1][1] = at

    def _restart(self, clock: str | None, at: datetime | None) -> None:
        self.clock = clock
        self.clock_started_at = at
        self.clock_pauses = []
        self.clock_extensions = []


def satisfaction_score(value: Any) -> int | None:
    """A call-back answer on the 1–5 scale: a score 1–5 as is, a 满意/基本满意/不满意 level
    mapped by :data:`dashboard.rules.vocab.SATISFACTION_SCORES`; None when there is none."""
    if value is None:
        return None
    if isinstance(value, str) and not value.isdigit():
        return SATISFACTION_SCORES[value]
    return int(value)


def as_datetime(value: Any) -> datetime:
    """A datetime from an event field (stored payloads hold ISO-8601 text)."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def fold(case_id: str, events: Iterable[LifecycleEvent]) -> tuple[CaseState, list[tuple[LifecycleEvent, str]]]:
    """Fold a case's history in canonical order.

    Returns the state and the events that were not legal where they fell, with the reason;
    those are skipped, so one bad event cannot poison the rest of the history.
    """
    state = CaseState(case_id=case_id)
    return state, fold_into(state.apply, events)


def fold_into(apply: Callable[[LifecycleEvent], None], events: Iterable[LifecycleEvent]
              ) -> list[tuple[LifecycleEvent, str]]:
    """Feed events in canonical order to ``apply`` (a CaseState's, or anything wrapping one);
    returns the events it refused as illegal, with the reason."""
    rejected: list[tuple[LifecycleEvent, str]] = []
    for event in canonical(events):
        try:
            apply(event)
        except TransitionError as exc:
            rejected.append((event, str(exc)))
    return rejected


def canonical(events: Iterable[LifecycleEvent]) -> list[LifecycleEvent]:
    """A history in the order :func:`fold` applies it: sorted, each event id once."""
    seen: set[str] = set()
    out = []
    for event in sorted(events, key=LifecycleEvent.sort_key):
        if event.event_id not in seen:
            seen.add(event.event_id)
            out.append(event)
    return out
