"""Alerts for 突发事件: which cases raise one, for which reason, at which level (docs/halls.md).

Pure rules; the store keeps the alerts (``dashboard/store/alerts.py``), the ingest raises and
escalates them (``feeds/ingest.py``).

- A case raises an alert when it is reported (or first becomes known to gridhall) **urgent**
  (紧急, :attr:`dashboard.rules.vocab.Urgency.URGENT`), or when its class is **safety-critical**
  (:attr:`dashboard.rules.classification.ClassEntry.safety`, e.g. 井盖缺失, 燃气泄漏, 道路塌陷) —
  one alert per reason. A case that gains a reason later (an update makes it urgent) raises
  then; one that already had the reason raises nothing again.
- **Level** (两级指挥): ``district`` — the district hall of the case's grid — unless its class is
  one the city lists as city-level (``GRIDHALL_ALERT_CITY_CLASSES``) or the case has no
  district (未定位): then ``city``.
- **Escalation**: a district alert nobody acknowledged within ``GRIDHALL_ALERT_ESCALATE_S``
  seconds goes to the city hall too (:func:`escalation_due`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from dashboard.rules.classification import Classification
from dashboard.rules.vocab import LabelledEnum, Urgency

if TYPE_CHECKING:
    from dashboard.settings import Settings

DEFAULT_ESCALATE_S = 300  # five minutes: a district hall acknowledges an alert well within it


class AlertReason(LabelledEnum):
    """Why a case raised an alert (one alert per case and reason)."""

    URGENT = "urgent", "紧急案件"
    SAFETY = "safety", "安全隐患类"
    SURGE = "surge", "突增预警"  # a place's cases of a class group surged (docs/foresight.md); its case: the latest


class AlertLevel(LabelledEnum):
    """Which command hall an alert belongs to (两级指挥)."""

    DISTRICT = "district", "区级"
    CITY = "city", "市级"


class AlertStep(LabelledEnum):
    """What happened to an alert: the entries of a case's timeline and of the control notices."""

    RAISED = "raised", "预警"
    ESCALATED = "escalated", "升级"
    ACKNOWLEDGED = "acknowledged", "确认"
    CLEARED = "cleared", "解除"


@dataclass(frozen=True)
class AlertRules:
    """The deployment's alert rules: the safety classes and the city-level classes.

    ``safety`` and ``city_classes`` hold ``(kind, minor code)`` and minor codes respectively;
    built once per process (:meth:`build`), then only set lookups.
    """

    safety: frozenset[tuple[str, str]]
    city_classes: frozenset[str]
    escalate_s: float = DEFAULT_ESCALATE_S

    @classmethod
    def build(cls, classification: Classification, city_classes: Iterable[str] = (),
              escalate_s: float = DEFAULT_ESCALATE_S) -> AlertRules:
        return cls(frozenset((e.kind.value, e.minor_code) for e in classification if e.safety),
                   frozenset(city_classes), escalate_s)

    @classmethod
    def from_settings(cls, settings: Settings, classification: Classification) -> AlertRules:
        """The deployment's rules: the scheme's safety classes, GRIDHALL_ALERT_CITY_CLASSES and
        GRIDHALL_ALERT_ESCALATE_S (the one reading of the two settings)."""
        return cls.build(classification, settings.alert_city_classes, settings.alert_escalate_s)

    def reasons(self, urgency: str | None, kind: str | None, class_code: str | None) -> frozenset[AlertReason]:
        """The reasons a case with these values raises alerts for (empty: none)."""
        out: set[AlertReason] = set()
        if urgency == Urgency.URGENT.value:
            out.add(AlertReason.URGENT)
        if kind is not None and class_code is not None and (kind, class_code) in self.safety:
            out.add(AlertReason.SAFETY)
        return frozenset(out)

    def level(self, class_code: str | None, district_id: int | None) -> AlertLevel:
        """The hall an alert goes to first: the city for city-level classes and cases without a district."""
        if district_id is None or (class_code is not None and class_code in self.city_classes):
            return AlertLevel.CITY
        return AlertLevel.DISTRICT

    def escalate_before(self, now: datetime) -> datetime:
        """District alerts raised before this instant and not acknowledged are due for the city."""
        return now - timedelta(seconds=self.escalate_s)


def escalation_due(level: AlertLevel | str, raised_at: datetime, now: datetime, escalate_s: float,
                   acknowledged: bool = False, escalated: bool = False, cleared: bool = False) -> bool:
    """Whether one alert is due for escalation now (the rule the store's UPDATE states in SQL)."""
    return (level == AlertLevel.DISTRICT and not (acknowledged or escalated or cleared)
            and raised_at < now - timedelta(seconds=escalate_s))
