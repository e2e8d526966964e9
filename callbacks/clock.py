"""The header clock of /live and /wall (``layouts.kit.clock.header_time``), ticked in the browser.

Clock and date in the city's zone, and the "server not answering" banner, are computed by
``gridhall.clock`` (layouts/assets/live.js) from the page's ``<prefix>-config`` (its ``tz``):
a clientside callback, so a second's tick sends no request.
"""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, Output, State


def register_clock(app: dash.Dash, prefix: str) -> None:
    """Fill ``<prefix>-clock``, ``-date`` and the ``-offline`` banner at each ``-clock-tick``."""
    app.clientside_callback(
        ClientsideFunction(namespace="gridhall", function_name="clock"),
        Output(f"{prefix}-clock", "children"),
        Output(f"{prefix}-date", "children"),
        Output(f"{prefix}-offline", "children"),
        Output(f"{prefix}-offline", "className"),
        Input(f"{prefix}-clock-tick", "n_intervals"),
        State(f"{prefix}-config", "data"),
    )
