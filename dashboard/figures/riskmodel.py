"""The overdue-risk model (超期风险): trained on the city's own past, scoring every open case.

A gradient-boosted tree model (scikit-learn's ``HistGradientBoostingClassifier``: categories
such as 小类 and 处置单位 natively, missing values, fast on hundreds of thousands of rows) on the
snapshots of :func:`dashboard.figures.riskfeatures.snapshots`, then isotonic calibration on a
later slice, so that "0.3" means about 3 in 10 such cases went overdue. Its figures (AUC, Brier,
a calibration table) come from a last slice it never saw, next to the baseline "this unit's
historical overdue rate for this class" on the same rows. docs/foresight.md says it in plain words.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from dashboard.figures.riskfeatures import (
    CATEGORICAL,
    FEATURES,
    LABELS,
    CaseFrame,
    ClassLimits,
    Vocabulary,
    feature_matrix,
    open_cases,
    raw_categories,
    snapshots,
    subsample,
)
from dashboard.rules.deadlines import Timing

# Cases are labelled once they had time to end: the training window stops this long before now.
LABEL_WAIT = timedelta(days=7)
# Of the training window's cases (by report time): the first 70 % fit the trees, the next 15 %
# the calibration, the last 15 % give the figures.
FIT_SHARE, CALIBRATE_SHARE = 0.70, 0.15
MAX_ROWS = 400_000  # snapshots kept for fitting (seeded draw): bounds the training time


class NotEnoughHistory(ValueError):
    """Too few labelled cases (or no overdue ones) to train on: one readable line."""


@dataclass
class RiskModel:
    """A trained model: the trees, the calibration and the codes of its categorical inputs."""

    vocabulary: Vocabulary
    booster: Any  # HistGradientBoostingClassifier
    calibrator: Any  # IsotonicRegression
    typical: np.ndarray  # each input's usual value (median; most frequent category): the reasons' yardstick
    features: tuple[str, ...] = FEATURES

    def probability(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(goes overdue) for feature rows ``x``."""
        if not len(x):
            return np.zeros(0)
        # One thread: scoring runs inside housekeeping and the web workers, processes that share
        # the cores already; OpenMP's threads on a busy machine spin-wait for each other (the
        # bench's 100,000 rows took 2–3× longer on two threads of a loaded 2-core machine than on one).
        with threadpool_limits(limits=1, user_api="openmp"):
            raw = self.booster.predict_proba(x)[:, 1]
        out: np.ndarray = np.clip(self.calibrator.predict(raw), 0.0, 1.0)
        return out

    def score(self, frame: CaseFrame, timing: Timing, limits: ClassLimits | None = None) -> np.ndarray:
        """P(goes overdue) of each row of ``frame``; 1 for a case already overdue at its instant."""
        overdue = _overdue(frame)
        out = np.ones(len(frame))
        # only the cases not overdue yet go through the trees (the time of scoring is theirs)
        rest = frame.take(~overdue) if overdue.any() else frame
        out[~overdue] = self.probability(feature_matrix(rest, timing, self.vocabulary, limits))
        return out

    def reasons(self, x_row: np.ndarray, top: int = 3) -> list[tuple[str, float]]:
        """The inputs that raise this case's risk most: each set to its usual value in turn, the
        drop in risk that gives (zh-CN label, points of probability), largest first."""
        base = float(self.probability(x_row[None, :])[0])
        trials = np.repeat(x_row[None, :], len(self.features), axis=0)
        np.fill_diagonal(trials, self.typical)
        drops = base - self.probability(trials)
        order = np.argsort(-drops, kind="stable")
        return [(LABELS[self.features[j]], float(drops[j])) for j in order[:top] if drops[j] > 0.005]

    def dumps(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(blob: bytes) -> RiskModel:
        # Only ever a blob this module wrote into the city's own database (risk_models).
        model = pickle.loads(blob)  # noqa: S301
        if not isinstance(model, RiskModel):
            raise TypeError("risk_models blob is not a RiskModel")
        return model


def _overdue(frame: CaseFrame) -> np.ndarray:
    result: np.ndarray = ~frame.paused & ~np.isnat(frame.deadline) & (frame.at > frame.deadline)
    return result


# -- the baseline ---------------------------------------------------------------------------------
@dataclass
class UnitClassRates:
    """Baseline: the historical overdue rate per (unit, 小类) — the share of training cases (each
    counted once) that went overdue — shrunk towards the 小类's rate and the city's (``prior``
    pseudo-cases each) so that rare pairs are not 0 or 1. A row is looked up by its unit then
    (none before 派遣: the 小类's rate)."""

    rates: dict[tuple[str, str], float]
    class_rates: dict[str, float]
    overall: float
    prior: float = 20.0

    @classmethod
    def fit(cls, frame: CaseFrame, limits: ClassLimits, prior: float = 20.0) -> UnitClassRates:
        assert frame.label is not None
        y = frame.label.astype(np.float64)
        weight = case_weights(frame)
        minor = raw_categories(frame, limits)[0]["minor"]
        overall = float(np.average(y, weights=weight)) if len(y) else 0.0
        class_sum: dict[str, list[float]] = {}
        pair_sum: dict[tuple[str, str], list[float]] = {}
        for u, m, v, k in zip(frame.unit.tolist(), minor.tolist(), y.tolist(), weight.tolist(), strict=True):
            c = class_sum.setdefault(m, [0.0, 0.0])
            c[0] += v * k
            c[1] += k
            p = pair_sum.setdefault((u, m), [0.0, 0.0])
            p[0] += v * k
            p[1] += k
        class_rates = {m: (s + prior * overall) / (n + prior) for m, (s, n) in class_sum.items()}
        rates = {k: (s + prior * class_rates[k[1]]) / (n + prior) for k, (s, n) in pair_sum.items()}
        return cls(rates, class_rates, overall, prior)

    def score(self, frame: CaseFrame, limits: ClassLimits) -> np.ndarray:
        minor = raw_categories(frame, limits)[0]["minor"]
        return np.array([self.rates.get((u, m), self.class_rates.get(m, self.overall))
                         for u, m in zip(frame.unit.tolist(), minor.tolist(), strict=True)], dtype=np.float64)


# -- figures --------------------------------------------------------------------------------------
@dataclass
class Figures:
    """How good a model is on rows it never saw, next to the baseline on the same rows."""

    fit_cases: int
    n_fit: int
    n_calibrate: int
    n_test: int
    test_cases: int
    positive_share: float  # of the test cases (each once)
    auc: float  # each case weighted once (its rows 1/n each)
    brier: float
    baseline_auc: float
    baseline_brier: float
    auc_rows: float  # every row once: open cases as an instant finds them, a slow case many times
    brier_rows: float
    baseline_auc_rows: float
    deciles: list[dict[str, float]] = field(default_factory=list)  # lo, hi, n, predicted, observed (case-weighted)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def auc_score(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Area under the ROC curve (ties counted half), rows weighted by ``w``; NaN without both classes."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p, sample_weight=w))


def brier(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Mean squared error of the probabilities (0 perfect; always answering the base rate b gives b(1−b))."""
    return float(np.average((p - y) ** 2, weights=w)) if len(y) else float("nan")


def calibration_table(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None, bins: int = 10
                      ) -> list[dict[str, float]]:
    """Rows sorted by predicted risk cut into ``bins`` parts of equal weight: predicted mean vs
    observed share (weighted), ``n`` the rows in the part."""
    if not len(y):
        return []
    w = np.ones(len(y)) if w is None else w
    order = np.argsort(p, kind="stable")
    cum = np.cumsum(w[order])
    part_of = np.minimum((cum / cum[-1] * bins - 1e-9).astype(int), bins - 1)
    out = []
    for k in range(bins):
        part = order[part_of == k]
        if not part.size:
            continue
        out.append({"lo": float(p[part].min()), "hi": float(p[part].max()), "n": int(part.size),
                    "predicted": float(np.average(p[part], weights=w[part])),
                    "observed": float(np.average(y[part], weights=w[part]))})
    return out


# -- training -------------------------------------------------------------------------------------
@dataclass
class Trained:
    model: RiskModel
    figures: Figures
    period_from: datetime
    period_to: datetime
    known_until: datetime
    baseline: UnitClassRates  # fitted on the same rows as the model: the bench scores later cases with both


def case_weights(frame: CaseFrame) -> np.ndarray:
    """1 / (the case's rows): each case counts once, however long it stayed open.

    A slow case is seen at many instants; unweighted, the trees learn those cases by heart
    (nearly the same row again and again) and the figures are mostly about them.
    """
    _, inverse, counts = np.unique(frame.case_id.astype(str), return_inverse=True, return_counts=True)
    weights: np.ndarray = 1.0 / counts[inverse] if len(frame) else np.zeros(0)
    return weights


def fit(frame: CaseFrame, timing: Timing, validation: CaseFrame, *, seed: int = 0) -> RiskModel:
    """Trees on ``frame`` (each case weighted once), stopped early on ``validation``, which then
    calibrates them (isotonic, each case once): rows of later cases that the trees never saw."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.isotonic import IsotonicRegression

    assert frame.label is not None and validation.label is not None
    limits = ClassLimits(timing)
    cats, _ = raw_categories(frame, limits)
    vocabulary = Vocabulary.learn({name: cats[name] for name in CATEGORICAL})
    x = feature_matrix(frame, timing, vocabulary, limits)
    x_val = feature_matrix(validation, timing, vocabulary, limits)
    # Small trees with big leaves: the rows of one case are near copies, so anything smaller
    # learns cases rather than what makes them late (train AUC 0.99, test 0.90 when it did).
    # A learning rate of 0.1 stopped after ~75 trees, as good as 0.05's ~130 and twice as fast to
    # score; 0.2 stops after about half as many again (scoring is mostly the trees), AUC unchanged
    # in bench/risk.py.
    booster = HistGradientBoostingClassifier(
        categorical_features=[name in CATEGORICAL for name in FEATURES], max_iter=300, learning_rate=0.2,
        max_leaf_nodes=15, min_samples_leaf=400, l2_regularization=1.0, early_stopping=True,
        n_iter_no_change=20, random_state=seed)
    booster.fit(x, frame.label, sample_weight=case_weights(frame), X_val=x_val, y_val=validation.label,
                sample_weight_val=case_weights(validation))
    typical = np.empty(len(FEATURES))
    for j, name in enumerate(FEATURES):
        column = x[:, j][~np.isnan(x[:, j])]
        if not column.size:
            typical[j] = np.nan
        elif name in CATEGORICAL:
            values, counts = np.unique(column, return_counts=True)
            typical[j] = values[np.argmax(counts)]
        else:
            typical[j] = float(np.median(column))
    raw = booster.predict_proba(x_val)[:, 1]
    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        raw, validation.label, sample_weight=case_weights(validation))
    return RiskModel(vocabulary, booster, calibrator, typical)


def split_by_report(frame: CaseFrame, cuts: tuple[datetime, ...]) -> list[CaseFrame]:
    """``frame`` cut by the cases' report time at each of ``cuts`` (a case's rows stay together)."""
    edges = [np.datetime64(c.astimezone(UTC).replace(tzinfo=None), "us") for c in cuts]
    reported = frame.reported
    out, lo = [], None
    for edge in [*edges, None]:
        mask = np.ones(len(frame), dtype=bool)
        if lo is not None:
            mask &= reported >= lo
        if edge is not None:
            mask &= reported < edge
        out.append(frame.take(mask))
        lo = edge
    return out


def evaluate(model: RiskModel, baseline: UnitClassRates, frame: CaseFrame, timing: Timing, *,
             fit_cases: int = 0, n_fit: int = 0, n_calibrate: int = 0) -> Figures:
    """The figures of ``model`` and ``baseline`` on ``frame``."""
    assert frame.label is not None
    limits = ClassLimits(timing)
    y = frame.label.astype(np.float64)
    p = model.score(frame, timing, limits)
    b = baseline.score(frame, limits)
    w = case_weights(frame)
    return Figures(
        fit_cases=fit_cases, n_fit=n_fit, n_calibrate=n_calibrate,
        n_test=len(frame), test_cases=len(np.unique(frame.case_id.astype(str))),
        positive_share=float(np.average(y, weights=w)) if len(y) else float("nan"),
        auc=auc_score(y, p, w), brier=brier(y, p, w), baseline_auc=auc_score(y, b, w), baseline_brier=brier(y, b, w),
        auc_rows=auc_score(y, p), brier_rows=brier(y, p), baseline_auc_rows=auc_score(y, b),
        deciles=calibration_table(y, p, w),
    )


def train(session: Session, timing: Timing, now: datetime, *, days: float = 90, seed: int = 0,
          step_minutes: float = 97.0, wait: timedelta = LABEL_WAIT) -> Trained:
    """Train on the cases reported in the ``days`` before ``now`` − ``wait``, known up to ``now``.

    Fit on the first 70 % of that window (by report time), calibrate on the next 15 %, figures
    on the last 15 %. Raises :class:`NotEnoughHistory` when a slice has no overdue case.
    """
    utc_now = now.astimezone(timing.calendar.tz)
    period_to = utc_now - wait
    period_from = period_to - timedelta(days=days)
    frame = snapshots(session, timing, period_from, period_to, utc_now, step_minutes=step_minutes)
    span = period_to - period_from
    cut1, cut2 = period_from + span * FIT_SHARE, period_from + span * (FIT_SHARE + CALIBRATE_SHARE)
    fit_rows, cal_rows, test_rows = split_by_report(frame, (cut1, cut2))
    for name, part in (("训练", fit_rows), ("校准", cal_rows), ("检验", test_rows)):
        assert part.label is not None
        if len(part) < 50 or part.label.sum() < 5 or part.label.sum() == len(part):
            raise NotEnoughHistory(
                f"历史不足：{name}段只有 {len(part)} 个样本（其中超期 {int(part.label.sum())}），"
                f"需要更长的历史（{period_from:%Y-%m-%d} 至 {period_to:%Y-%m-%d} 报告的案件）")
    fit_rows = subsample(fit_rows, MAX_ROWS, seed)
    model = fit(fit_rows, timing, cal_rows, seed=seed)
    baseline = UnitClassRates.fit(fit_rows, ClassLimits(timing))
    figures = evaluate(model, baseline, test_rows, timing, fit_cases=len(np.unique(fit_rows.case_id.astype(str))),
                       n_fit=len(fit_rows), n_calibrate=len(cal_rows))
    return Trained(model, figures, period_from, period_to, utc_now, baseline)


def save(session: Session, trained: Trained, *, keep: int, now: datetime) -> int:
    """Store ``trained`` as the newest version (the caller commits); returns its number."""
    from dashboard.store.riskmodels import add_version

    figures = trained.figures.as_dict()
    return add_version(session, trained_at=now, period_from=trained.period_from, period_to=trained.period_to,
                       known_until=trained.known_until, n_cases=int(figures["fit_cases"]), figures=figures,
                       blob=trained.model.dumps(), keep=keep)


_LOADED: dict[str, tuple[int, RiskModel]] = {}  # per process: the newest version, read once


def newest(session: Session) -> tuple[int, RiskModel] | None:
    """The newest stored version and its model (None: never trained); its blob read once per process."""
    from dashboard.store.riskmodels import blob_of, newest_version

    version = newest_version(session)
    if version is None:
        return None
    kept = _LOADED.get("newest")
    if kept is not None and kept[0] == version:
        return kept
    blob = blob_of(session, version)
    if blob is None:
        return None
    _LOADED["newest"] = (version, RiskModel.loads(blob))
    return _LOADED["newest"]


@dataclass(frozen=True)
class CaseRisk:
    """One open case's risk now, for /explore: the probability, from which version, and why."""

    probability: float
    overdue: bool  # already overdue: probability 1, no reasons
    version: int
    reasons: list[tuple[str, float]]  # (input's zh-CN label, points of probability it adds)


def case_risk(session: Session, timing: Timing, now: datetime, case_id: str) -> CaseRisk | None:
    """The newest version's risk of open case ``case_id`` at ``now``; None when no version is stored
    or the case has no running clock. The caller has checked the viewer's scope."""
    loaded = newest(session)
    if loaded is None:
        return None
    frame = open_cases(session, now, case_id=case_id)
    if not len(frame):
        return None
    version, model = loaded
    if bool(_overdue(frame)[0]):
        return CaseRisk(1.0, True, version, [])
    x = feature_matrix(frame, timing, model.vocabulary)
    return CaseRisk(float(model.probability(x)[0]), False, version, model.reasons(x[0]))


def score_open(session: Session, timing: Timing, model: RiskModel, now: datetime) -> tuple[CaseFrame, np.ndarray]:
    """Every open case with a running clock and its P(goes overdue) at ``now`` (1: already overdue)."""
    frame = open_cases(session, now)
    return frame, model.score(frame, timing)


@dataclass(frozen=True)
class OpenRanking:
    """Every open case not overdue yet, by risk (the wall's 临期高风险): one scoring of all of them.

    ``reasons`` holds the top reason (input's zh-CN label, points) of the ``reasons_for`` riskiest
    cases only: a reason costs one model call per input and case, the risk one per case.
    """

    version: int
    at: datetime
    case_ids: tuple[str, ...]  # riskiest first (ties by case id)
    probabilities: tuple[float, ...]
    reasons: dict[str, tuple[str, float]]
    seconds: float  # how long the scoring took


def rank_open(session: Session, timing: Timing, version: int, model: RiskModel, now: datetime, *,
              reasons_for: int) -> OpenRanking:
    """The risk of every open case not overdue at ``now``, riskiest first, with the top reason of
    the ``reasons_for`` riskiest (:meth:`RiskModel.reasons`, batched)."""

    started = time.perf_counter()
    frame = open_cases(session, now)
    rest = frame.take(~_overdue(frame)) if len(frame) else frame
    x = feature_matrix(rest, timing, model.vocabulary) if len(rest) else np.zeros((0, len(model.features)))
    p = model.probability(x)
    ids = rest.case_id.astype(str) if len(rest) else np.zeros(0, dtype=str)
    order = np.lexsort((ids, -p)) if len(p) else np.zeros(0, dtype=np.int64)
    top = order[:max(reasons_for, 0)]
    reasons: dict[str, tuple[str, float]] = {}
    if len(top):
        f = len(model.features)
        trials = np.repeat(x[top], f, axis=0)
        rows = np.arange(len(top) * f)
        trials[rows, rows % f] = np.tile(model.typical, len(top))
        drops = (p[top][:, None] - model.probability(trials).reshape(len(top), f))
        best = np.argmax(drops, axis=1)
        for k, (i, j) in enumerate(zip(top, best, strict=True)):
            drop = float(drops[k, j])
            if drop > 0.005:
                reasons[str(ids[i])] = (LABELS[model.features[j]], drop)
    return OpenRanking(version, now, tuple(str(ids[i]) for i in order), tuple(float(p[i]) for i in order),
                       reasons, time.perf_counter() - started)
