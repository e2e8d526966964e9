"""Page layouts (Dash components only; data comes from callbacks)."""

from __future__ import annotations

from dash import html

from dashboard.settings import Settings

from . import live


def root_layout(settings: Settings) -> html.Div:
    """The app's layout: for now the interim live page, served at / and /live alike."""
    return live.layout(settings)


__all__ = ["live", "root_layout"]
