"""The grid heatmap's definitions: which per-grid metrics there are, and how a value is coloured.

One definition each (docs/wall.md "Map and hot spots"): the live view keeps one array per metric,
the wall and /view title and label their maps with it, and the browser colours cells with the
breaks and the ramp the layout sends (``wall-config`` / ``view-config``); wall.js and view.js
hold no copy of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.rules.vocab import GridMetric


@dataclass(frozen=True)
class HeatMetric:
    """A per-grid metric of the heatmap."""

    key: str  # the URL's ``?metric=`` and the live view's array name
    label: str  # the map panel's title (zh-CN)
    unit: str  # the legend's 单位
    counts: str  # what it counts (docs/wall.md)


# Keys and labels are GridMetric's (dashboard/rules/vocab.py): a screen's metric is one of them.
HEAT_METRICS: tuple[HeatMetric, ...] = (
    HeatMetric(GridMetric.OPEN.value, GridMetric.OPEN.label, "件", "open cases located in the grid"),
    HeatMetric(GridMetric.NEW_HOUR.value, GridMetric.NEW_HOUR.label, "件",
               "cases (any stage now) reported in the last hour, (now − 1 h, now]"),
    HeatMetric(GridMetric.OVERDUE.value, GridMetric.OVERDUE.label, "件",
               "open cases of the grid counted in 当前超期"),
)
GRID_METRICS: tuple[str, ...] = tuple(m.key for m in HEAT_METRICS)
"""Per-grid metrics: open cases, cases reported in the last hour, open cases overdue now."""

# Class breaks of the colour bar (lower bounds), light to dark; 0 is drawn unfilled.
BREAKS: tuple[int, ...] = (1, 2, 3, 5, 8, 13, 21)
# Bright enough that a single case stands out on the dark map from across the hall.
COLOURS: tuple[str, ...] = ("#3fb8ff", "#36e2c0", "#b8f03a", "#ffd23f", "#ff9f1c", "#ff5b2e", "#ff1f6b")
# A surge's ring on the map and its mark in the 突增预警 list (docs/wall.md): violet, a hue no class
# of the ramp above uses and apart from the hot spots' red and white rings and the alerts' red.
SURGE_COLOUR = "#c77dff"


def labels(keys: tuple[str, ...] = GRID_METRICS) -> dict[str, tuple[str, str]]:
    """``{key: (label, unit)}`` of these metrics, in the order of :data:`HEAT_METRICS`."""
    return {m.key: (m.label, m.unit) for m in HEAT_METRICS if m.key in keys}


def palette() -> dict[str, list[int] | list[str] | str]:
    """The breaks, the ramp and the surge colour as the browser receives them (in the page's
    config store; the wall's CSS gets the surge colour as ``--wall-surge`` on its root)."""
    return {"breaks": list(BREAKS), "colours": list(COLOURS), "surge": SURGE_COLOUR}


__all__ = ["BREAKS", "COLOURS", "SURGE_COLOUR", "GRID_METRICS", "HEAT_METRICS", "HeatMetric", "labels", "palette"]
