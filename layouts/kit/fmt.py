"""How figures read on every page: whole numbers, shares, and the placeholder of a missing value."""

from __future__ import annotations

PLACEHOLDER = "—"  # a figure not known (yet): before the first refresh, or nothing to show


def fmt_int(value: int | None) -> str:
    return PLACEHOLDER if value is None else f"{value:,}"


def fmt_rate(value: float | None) -> str:
    """A share in [0, 1] as a percentage; 100% without a decimal ("100.0%" does not fit a tile)."""
    if value is None:
        return PLACEHOLDER
    return "100%" if value >= 0.9995 else f"{100 * value:.1f}%"
