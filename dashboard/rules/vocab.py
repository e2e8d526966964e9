"""Controlled vocabularies of the domain, each value with its zh-CN label from the standards.

The English value is what is stored and sent on the feed; the label is what screens show.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self, overload


class LabelledEnum(StrEnum):
    """A str enum whose members carry a Chinese display label.

    A member is written ``NAME = "value", "标签"``; ``Kind("event")`` looks a member up by value.
    """

    _value_: str
    label: str

    # Two call forms, typed apart: the enum machinery calls this ``__new__`` with the member's
    # (value, label) tuple while it builds the class, then swaps in ``Enum.__new__``, so a call
    # on the finished class is a lookup by value alone.
    @overload
    def __new__(cls, value: str) -> Self: ...

    @overload
    def __new__(cls, value: str, label: str) -> Self: ...

    def __new__(cls, value: str, label: str | None = None) -> Self:
        if label is None:  # only reachable while a class is built: a member written without label
            raise TypeError(f"{cls.__name__} member {value!r} needs a label")
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label = label
        return obj

    @classmethod
    def labels(cls) -> dict[str, str]:
        return {m.value: m.label for m in cls}


class Kind(LabelledEnum):
    """部件 (a city component that is damaged or lost) or 事件 (an event / 管理事项)."""

    COMPONENT = "component", "部件"
    EVENT = "event", "事件"


class Source(LabelledEnum):
    """Channel a case came in through (信息收集渠道)."""

    SUPERVISOR = "supervisor", "监督员上报"
    HOTLINE_12319 = "hotline_12319", "12319热线"
    HOTLINE_12345 = "hotline_12345", "12345热线"
    MAYOR_MAILBOX = "mayor_mailbox", "市长信箱"
    VIDEO_IOT = "video_iot", "视频/物联网"
    HIGHER_REFERRAL = "higher_referral", "上级交办"
    PUBLIC = "public", "公众举报"
    # Any other channel (a department's own system, a 311-style portal, a legacy import):
    # counted everywhere, but not as a public report (PUBLIC_SOURCES) nor as patrol work.
    OTHER = "other", "其他"


# 监督举报: the channels through which citizens (and higher levels) report a problem, as opposed
# to the centre's own means (supervisors' patrols, cameras and sensors). A public report that
# is verified and filed is a problem the supervisors missed (漏报; docs/evaluation.md).
PUBLIC_SOURCES = frozenset({Source.HOTLINE_12319, Source.HOTLINE_12345, Source.MAYOR_MAILBOX,
                            Source.PUBLIC, Source.HIGHER_REFERRAL})


# A case with no unit grid (no location yet, or a reported point in no grid): it belongs to
# the city only, until an event locates it (docs/feed.md "Location"). The 待定位 list of
# /explore holds the open ones.
UNLOCATED = "未定位"
UNLOCATED_LIST = "待定位"


class DeviceKind(LabelledEnum):
    """What raised a video/IoT alarm (source ``video_iot``; feeds/bridges/alarms.py)."""

    CAMERA = "camera", "摄像头"
    SENSOR = "sensor", "传感器"


class Urgency(LabelledEnum):
    """Urgency of a case; 紧急 cases are the 急要件 of the wall."""

    NORMAL = "normal", "一般"
    URGENT = "urgent", "紧急"


class AreaClass(LabelledEnum):
    """管理等级 of a unit grid, as used by A/B/C time-limit tables."""

    A = "A", "A类(核心区)"
    B = "B", "B类(一般区)"
    C = "C", "C类"


class GridMetric(LabelledEnum):
    """A per-grid metric of the heatmap: the wall's ``?metric=`` and a screen's metric.

    The keys and labels are defined here, once, so that a screen's setting (``dashboard/rules/
    screenspec.py``) and the heatmap (``dashboard/figures/heat.py``, which adds the unit and
    what each counts) cannot disagree.
    """

    OPEN = "open", "在办案件"
    NEW_HOUR = "new_hour", "近一小时新增"
    OVERDUE = "overdue", "超期案件"


class RegionLevel(LabelledEnum):
    """Administrative levels above the unit grid."""

    DISTRICT = "district", "区"
    STREET = "street", "街道(镇)"
    COMMUNITY = "community", "社区(村)"


class Role(LabelledEnum):
    """Positions (岗位) of the supervision and command centres."""

    SUPERVISOR = "supervisor", "监督员"
    ACCEPTOR = "acceptor", "受理员"
    SHIFT_LEAD = "shift_lead", "值班长"
    DISPATCHER = "dispatcher", "派遣员"


class UnitKind(LabelledEnum):
    """Kinds of responsible unit."""

    DEPARTMENT = "department", "专业部门"
    DISPOSAL = "disposal", "处置单位"
    STREET_OFFICE = "street_office", "街道办事处"


class Satisfaction(LabelledEnum):
    """A three-level answer of a hotline call-back (回访评价); see :data:`SATISFACTION_SCORES`."""

    SATISFIED = "satisfied", "满意"
    BASICALLY_SATISFIED = "basically_satisfied", "基本满意"
    DISSATISFIED = "dissatisfied", "不满意"


# The three levels stretched linearly over the 1–5 scale (top, middle, bottom), so both kinds
# of answer are stored and averaged on one scale (docs/evaluation.md, 社会评价).
SATISFACTION_SCORES: dict[str, int] = {
    Satisfaction.SATISFIED.value: 5,
    Satisfaction.BASICALLY_SATISFIED.value: 3,
    Satisfaction.DISSATISFIED.value: 1,
}
