"""The heatmap's facts are defined once (dashboard/figures/heat.py): the metric list that the live
view, /wall and /view read, and the class breaks and colour ramp that the browser receives from
the page instead of keeping its own copy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dashboard.figures import heat, liveview
from dashboard.settings import Settings
from layouts import view as viewpage
from layouts import wall as wallpage

ASSETS = Path(wallpage.__file__).parent / "assets"
# A ramp: an array literal of two or more "#rrggbb" strings.
RAMP = re.compile(r"\[\s*[\"']#[0-9a-f]{3,8}[\"']\s*,\s*[\"']#[0-9a-f]{3,8}[\"']", re.IGNORECASE)


def _store(root: Any, store_id: str) -> Any:
    """The component with this id anywhere under ``root``."""
    stack = [root]
    while stack:
        node = stack.pop()
        if getattr(node, "id", None) == store_id:
            return node
        children = getattr(node, "children", None)
        if isinstance(children, list | tuple):
            stack.extend(children)
        elif children is not None and hasattr(children, "children"):
            stack.append(children)
    raise AssertionError(f"no {store_id} in the layout")


def test_the_metrics_are_defined_once() -> None:
    assert liveview.GRID_METRICS is heat.GRID_METRICS
    assert heat.GRID_METRICS == ("open", "new_hour", "overdue")
    assert wallpage.METRICS == {m.key: (m.label, m.unit) for m in heat.HEAT_METRICS}
    assert set(viewpage.METRICS) < set(heat.GRID_METRICS)
    assert all(viewpage.METRICS[k] == wallpage.METRICS[k] for k in viewpage.METRICS)
    assert list(viewpage.METRICS) == ["open", "overdue"]


def test_the_pages_send_the_one_palette(settings: Settings) -> None:
    assert len(heat.BREAKS) == len(heat.COLOURS)
    assert list(heat.BREAKS) == sorted(set(heat.BREAKS)) and heat.BREAKS[0] >= 1
    for metric in heat.GRID_METRICS:
        config = _store(wallpage.layout(settings, metric), "wall-config").data
        assert config["metric"] == metric
        assert (config["breaks"], config["colours"]) == (list(heat.BREAKS), list(heat.COLOURS))
    for query in ("", "metric=overdue"):
        config = _store(viewpage.layout(settings, query), "view-config").data
        assert (config["breaks"], config["colours"]) == (list(heat.BREAKS), list(heat.COLOURS))


def test_the_browser_keeps_no_palette_of_its_own() -> None:
    for name in ("wall.js", "view.js"):
        js = (ASSETS / name).read_text(encoding="utf-8")
        assert not RAMP.search(js), f"{name} writes a colour ramp; it comes from the page's config"
        for colour in heat.COLOURS:
            assert colour.lower() not in js.lower(), f"{name} repeats {colour} of heat.COLOURS"
        breaks = r"\[\s*" + r"\s*,\s*".join(str(b) for b in heat.BREAKS[:3])
        assert not re.search(breaks, js), f"{name} writes the class breaks; they come from the page's config"
