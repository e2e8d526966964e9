"""What the evaluation (综合考评) measures and how it scores: indicators, weights, bands, grades.

Pure data and arithmetic, no SQL (the figures come from :mod:`dashboard.figures.evaluation`). The
weights, the count bands and the sample thresholds live in a TOML file: the shipped
``dashboard/rules/data/evaluation.toml``, or the city's own via ``GRIDHALL_EVALUATION_WEIGHTS``.
docs/evaluation.md defines every indicator and says where each weight comes from.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dashboard.settings import Settings

SHIPPED = "evaluation.toml"
# The weight groups: the four region levels share one; each position has its own.
GROUPS = ("region", "unit", "supervisor", "acceptor", "shift_lead", "dispatcher")
# How a composite term turns an indicator into points (0–100).
SCORINGS = ("rate", "inverse_rate", "score", "bands")
GRADES = (("A", 90.0), ("B", 75.0), ("C", 60.0), ("D", 40.0))  # lower bounds; below: E
INSUFFICIENT = "样本不足"


@dataclass(frozen=True)
class Indicator:
    """One figure of an evaluation row: its key, zh-CN label and measure.

    ``measure`` is ``count`` (cases), ``rate`` (a share 0–1, shown as %), ``score`` (0–100),
    ``density`` (cases per km² or per grid) or ``area`` (km²).
    """

    key: str
    label: str
    measure: str


def _ind(key: str, label: str, measure: str) -> Indicator:
    return Indicator(key, label, measure)


# Indicators of each group, in display order (docs/evaluation.md §2–§5 define them).
_SATISFACTION = (
    _ind("rated", "回访数", "count"),
    _ind("satisfied", "满意及基本满意数", "count"),
    _ind("satisfaction_rate", "满意率", "rate"),
    _ind("satisfaction", "满意度", "score"),
)
INDICATORS: dict[str, tuple[Indicator, ...]] = {
    "region": (
        _ind("filed", "立案数", "count"),
        _ind("public_filed", "监督举报核实数", "count"),
        _ind("report_rate", "监督举报率", "rate"),
        _ind("due_close", "应结案数", "count"),
        _ind("closed", "结案数", "count"),
        _ind("close_rate", "结案率", "rate"),
        _ind("closed_on_time", "按期结案数", "count"),
        _ind("on_time_close_rate", "按期结案率", "rate"),
        _ind("grids", "网格数", "count"),
        _ind("area_km2", "面积(km²)", "area"),
        _ind("incidence", "问题发生率(件/km²)", "density"),
        _ind("filed_per_grid", "网格平均立案数", "density"),
        *_SATISFACTION,
    ),
    "unit": (
        _ind("assigned", "应处置数", "count"),
        _ind("handled", "处置数", "count"),
        _ind("handled_on_time", "按时处置数", "count"),
        _ind("on_time_handle_rate", "按时处置率", "rate"),
        _ind("handled_late", "超期处置数", "count"),
        _ind("closed", "结案数", "count"),
        _ind("close_rate", "结案率", "rate"),
        _ind("reworked", "返工数", "count"),
        _ind("rework_rate", "返工率", "rate"),
        _ind("extended", "延期数", "count"),
        _ind("extension_rate", "延期率", "rate"),
        _ind("returned", "回退数", "count"),
        _ind("return_rate", "回退率", "rate"),
        _ind("suspended", "挂账数", "count"),
        *_SATISFACTION,
    ),
    "supervisor": (
        _ind("reports", "上报数", "count"),
        _ind("valid_reports", "有效上报数", "count"),
        _ind("valid_rate", "有效上报率", "rate"),
        _ind("to_verify", "应核实数", "count"),
        _ind("verified_on_time", "按时核实数", "count"),
        _ind("on_time_verify_rate", "按时核实率", "rate"),
        _ind("to_check", "应核查数", "count"),
        _ind("checked_on_time", "按时核查数", "count"),
        _ind("on_time_check_rate", "按时核查率", "rate"),
        _ind("grid_filed", "责任网格立案数", "count"),
        _ind("missed", "漏报数", "count"),
        _ind("missed_rate", "漏报率", "rate"),
    ),
    "acceptor": (
        _ind("accepted", "受理数", "count"),
        _ind("to_verify", "应核实数", "count"),
        _ind("verified_on_time", "按时核实数", "count"),
        _ind("verify_dispatch_rate", "核实按时派发率", "rate"),
        _ind("to_check", "应核查数", "count"),
        _ind("checked_on_time", "按时核查数", "count"),
        _ind("check_dispatch_rate", "核查按时派发率", "rate"),
        _ind("callbacks", "回访数", "count"),
    ),
    "shift_lead": (
        _ind("filed", "立案数", "count"),
        _ind("filed_on_time", "按时立案数", "count"),
        _ind("on_time_file_rate", "按时立案率", "rate"),
        _ind("voided", "作废数", "count"),
        _ind("accurate_file_rate", "准确立案率", "rate"),
        _ind("closed", "结案数", "count"),
        _ind("closed_on_time", "按时结案数", "count"),
        _ind("on_time_close_rate", "按时结案率", "rate"),
    ),
    "dispatcher": (
        _ind("dispatched", "派遣数", "count"),
        _ind("dispatched_on_time", "按时派遣数", "count"),
        _ind("on_time_dispatch_rate", "按时派遣率", "rate"),
        _ind("returned", "回退数", "count"),
        _ind("accurate_dispatch_rate", "准确派遣率", "rate"),
    ),
}
# Each group's indicator labels by key: what a screen heads a column with (never typed again).
LABELS: dict[str, dict[str, str]] = {group: {i.key: i.label for i in inds} for group, inds in INDICATORS.items()}
# The count each group's sample size is judged on (min_cases).
SAMPLE_OF = {"region": "due_close", "unit": "assigned", "supervisor": "reports", "acceptor": "accepted",
             "shift_lead": "filed", "dispatcher": "dispatched"}


class WeightsError(ValueError):
    """A weights file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Band:
    """One step of a count band table: values up to ``limit`` score ``score``."""

    limit: float
    inclusive: bool  # ≤ limit (``le``) or < limit (``lt``)
    score: float


@dataclass(frozen=True)
class Bands:
    """A step function from a count (or a density) to points, first matching step wins."""

    steps: tuple[Band, ...]
    otherwise: float

    def score(self, value: float) -> float:
        for step in self.steps:
            if value < step.limit or (step.inclusive and value == step.limit):
                return step.score
        return self.otherwise


@dataclass(frozen=True)
class Term:
    """One term of a composite: an indicator, its weight (%) and how it is scored."""

    indicator: str
    weight: float
    scoring: str  # one of SCORINGS
    bands: Bands | None = None
    source: str = ""

    def points(self, value: float | None) -> float | None:
        """The indicator as 0–100 points; None when the indicator has no value (n/a)."""
        if value is None:
            return None
        if self.scoring == "rate":
            return 100.0 * value
        if self.scoring == "inverse_rate":
            return 100.0 * (1.0 - value)
        if self.scoring == "score":
            return float(value)
        assert self.bands is not None
        return self.bands.score(value)


@dataclass(frozen=True)
class Weights:
    """The composite terms of every group, the sample thresholds and where they came from."""

    terms: Mapping[str, tuple[Term, ...]]
    min_cases: int
    min_ratings: int
    source: str  # the file read

    def composite(self, group: str, values: Mapping[str, float | int | None]
                  ) -> tuple[float | None, dict[str, float | None]]:
        """(综合指标值, points per term) of one object.

        Terms whose indicator is n/a (None) drop out and the others' weights are scaled up
        to 100 %; None when no weighted term is left.
        """
        points = {t.indicator: t.points(_num(values.get(t.indicator))) for t in self.terms[group]}
        used = [(t.weight, p) for t in self.terms[group]
                if t.weight > 0 and (p := points[t.indicator]) is not None]
        total = sum(w for w, _ in used)
        if total <= 0:
            return None, points
        return round(sum(w * p for w, p in used) / total, 2), points


def _num(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def grade(score: float | None) -> str | None:
    """A (≥90), B (75–90), C (60–75), D (40–60), E (<40); None without a score."""
    if score is None:
        return None
    for letter, lower in GRADES:
        if score >= lower:
            return letter
    return "E"


def load_weights(path: Path | str | None = None) -> Weights:
    """Read a weights file (None: the shipped default); raises :class:`WeightsError`."""
    if path is None:
        text = resources.files("dashboard.rules").joinpath("data", SHIPPED).read_text(encoding="utf-8")
        name = f"dashboard/rules/data/{SHIPPED}"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise WeightsError(f"{path}: cannot read: {exc.strerror}") from None
        name = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WeightsError(f"{name}: not TOML: {exc}") from None
    return _parse(data, name)


def weights_from_settings(settings: Settings) -> Weights:
    """The weights ``GRIDHALL_EVALUATION_WEIGHTS`` names, else the shipped default."""
    return load_weights(settings.evaluation_weights)


def _parse(data: dict[str, Any], name: str) -> Weights:
    sample = data.get("sample", {})
    min_cases = sample.get("min_cases", 10)
    min_ratings = sample.get("min_ratings", 5)
    for key, value in (("min_cases", min_cases), ("min_ratings", min_ratings)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise WeightsError(f"{name}: sample.{key} must be a whole number ≥ 0, not {value!r}")
    bands = {key: _bands(value, f"{name}: bands.{key}") for key, value in data.get("bands", {}).items()}
    terms: dict[str, tuple[Term, ...]] = {}
    for group in GROUPS:
        known = {i.key for i in INDICATORS[group]}
        rows = data.get(group, {}).get("terms")
        if not rows:
            raise WeightsError(f"{name}: [[{group}.terms]] missing")
        out = []
        for i, row in enumerate(rows, 1):
            where = f"{name}: {group}.terms #{i}"
            key, weight, scoring = row.get("indicator"), row.get("weight"), row.get("score", "rate")
            if key not in known:
                raise WeightsError(f"{where}: unknown indicator {key!r} (one of {', '.join(sorted(known))})")
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
                raise WeightsError(f"{where}: weight must be a number ≥ 0, not {weight!r}")
            if scoring not in SCORINGS:
                raise WeightsError(f"{where}: score must be one of {', '.join(SCORINGS)}, not {scoring!r}")
            table = None
            if scoring == "bands":
                table = bands.get(row.get("bands", ""))
                if table is None:
                    raise WeightsError(f"{where}: bands {row.get('bands')!r} not defined under [bands]")
            out.append(Term(key, float(weight), scoring, table, str(row.get("source", ""))))
        total = sum(t.weight for t in out)
        if not math.isclose(total, 100.0, abs_tol=1e-6):
            raise WeightsError(f"{name}: the weights of {group} add up to {total:g}, not 100")
        terms[group] = tuple(out)
    return Weights(terms, min_cases, min_ratings, name)


def _bands(value: Any, where: str) -> Bands:
    if not isinstance(value, dict) or not isinstance(value.get("steps"), list):
        raise WeightsError(f"{where}: needs steps = [{{le|lt = N, score = S}}, …] and otherwise = S")
    steps = []
    for step in value["steps"]:
        bound = "le" if "le" in step else "lt" if "lt" in step else None
        if bound is None or "score" not in step:
            raise WeightsError(f"{where}: each step needs le or lt, and score: {step!r}")
        steps.append(Band(float(step[bound]), bound == "le", float(step["score"])))
    if any(b.limit < a.limit for a, b in zip(steps, steps[1:], strict=False)):
        raise WeightsError(f"{where}: steps must be in increasing order")
    return Bands(tuple(steps), float(value.get("otherwise", 0)))
