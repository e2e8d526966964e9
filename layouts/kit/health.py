"""How a page shows the feed's health: the stop banner over the page, the browser's own
offline banner, and the feed line (heartbeat, rate, totals)."""

from __future__ import annotations

from collections.abc import Sequence

from dash import html


def banners(prefix: str) -> list[html.Div]:
    """The two full-width banners on top of a page, empty until raised.

    ``<prefix>-banner``: the server says the figures stopped (render_banner).
    ``<prefix>-offline``: raised in the browser by the page's script (layouts/assets) when the
    server itself stops answering, which the server-side banner cannot say.
    """
    return [
        html.Div(id=f"{prefix}-banner", className="gh-banner", role="alert", children=[]),
        html.Div(id=f"{prefix}-offline", className="gh-banner", role="alert", children=[]),
    ]


STOPPED = "数据已停止更新"


def render_banner(message: str | None, title: str = STOPPED) -> tuple[list[html.Span], str]:
    """Children and className of the full-width banner: ``title`` (by default: the figures
    stopped), then ``message``; hidden when there is no message."""
    if not message:
        return [], "gh-banner"
    return (
        [html.Span(title, className="gh-banner__title"), html.Span(message, className="gh-banner__detail")],
        "gh-banner is-on",
    )


def render_feed(parts: Sequence[tuple[str, str, bool]]) -> list[html.Span]:
    """The feed health line: (label, value, is_alarm) items."""
    return [
        html.Span(
            className="gh-feed__item" + (" is-alarm" if alarm else ""),
            children=[html.Span(label, className="gh-feed__label"), html.Span(value, className="gh-feed__value")],
        )
        for label, value, alarm in parts
    ]
