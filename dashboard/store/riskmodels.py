"""Versions of the overdue-risk model in the store (``risk_models``, 0015; docs/foresight.md).

The store keeps bytes and figures; what the bytes are is ``dashboard/figures/riskmodel.py``'s.
A version is written once and never changed; the newest one scores. Old versions beyond the
kept number are deleted by the training that adds a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dashboard.store.models import RiskModelVersion


@dataclass(frozen=True)
class VersionInfo:
    """A stored version without its blob: what ``gridhall risk show`` lists."""

    version: int
    trained_at: datetime
    period_from: datetime
    period_to: datetime
    known_until: datetime
    n_cases: int
    auc: float | None
    brier: float | None
    baseline_auc: float | None
    figures: dict[str, Any]


_INFO = (RiskModelVersion.version, RiskModelVersion.trained_at, RiskModelVersion.period_from,
         RiskModelVersion.period_to, RiskModelVersion.known_until, RiskModelVersion.n_cases, RiskModelVersion.auc,
         RiskModelVersion.brier, RiskModelVersion.baseline_auc, RiskModelVersion.figures)


def add_version(session: Session, *, trained_at: datetime, period_from: datetime, period_to: datetime,
                known_until: datetime, n_cases: int, figures: dict[str, Any], blob: bytes, keep: int) -> int:
    """Store a new version (the caller commits); keep the newest ``keep`` versions. Returns its number."""
    newest = session.scalar(select(func.max(RiskModelVersion.version))) or 0
    row = RiskModelVersion(
        version=newest + 1, trained_at=trained_at, period_from=period_from, period_to=period_to,
        known_until=known_until, n_cases=n_cases, auc=_finite(figures.get("auc")), brier=_finite(figures.get("brier")),
        baseline_auc=_finite(figures.get("baseline_auc")), figures=figures, blob=blob)
    session.add(row)
    session.flush()
    session.execute(delete(RiskModelVersion).where(RiskModelVersion.version <= row.version - keep))
    return row.version


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value == value else None


def versions(session: Session) -> list[VersionInfo]:
    """Every stored version, newest first (no blobs read)."""
    return [VersionInfo(*r) for r in session.execute(select(*_INFO).order_by(RiskModelVersion.version.desc()))]


def newest_version(session: Session) -> int | None:
    return session.scalar(select(func.max(RiskModelVersion.version)))


def blob_of(session: Session, version: int) -> bytes | None:
    return session.scalar(select(RiskModelVersion.blob).where(RiskModelVersion.version == version))
