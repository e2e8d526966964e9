"""The page header: the city's name and the page's title on the left, the page's own parts in
the middle, who is signed in on the right (``userbar.py``); and the browser tab's title.
"""

from __future__ import annotations

from dash import html

from .props import attrs
from .userbar import user_bar

# The product's title: every page's browser tab, and the heading of the /live page.
APP_TITLE = "数字化城市管理 · 实时态势"


def page_title(city: str) -> str:
    """The browser tab's title of every page; ``city`` from ``dashboard.store.cityname``."""
    return f"{city}{APP_TITLE}"


def titles(city: str, subtitle: str, title_class: str = "", subtitle_id: str | None = None) -> html.Div:
    """The mark, the city's name ("" when it has none) and the page's title (an ``h1``);
    ``subtitle_id`` names the title's text when a callback changes it (a wall's region)."""
    return html.Div(
        className="gh-header__titles",
        children=[
            html.Div(className="gh-header__mark", **attrs({"aria-hidden": "true"})),
            html.H1(
                className="gh-header__title" + (f" {title_class}" if title_class else ""),
                children=[
                    html.Span(city, className="gh-header__city"),
                    html.Span(subtitle, className="gh-header__sub", id=subtitle_id)
                    if subtitle_id else html.Span(subtitle, className="gh-header__sub"),
                ],
            ),
        ],
    )


def header(city: str, subtitle: str, *middle: html.Div | html.Nav, modifier: str = "",
           title_class: str = "", subtitle_id: str | None = None) -> html.Header:
    """A page's header: :func:`titles`, then ``middle`` (the page's own parts), then the user bar.

    ``modifier`` adds a class to the header (``view-header``), ``title_class`` to its ``h1``.
    """
    return html.Header(
        className="gh-header" + (f" {modifier}" if modifier else ""),
        children=[titles(city, subtitle, title_class, subtitle_id), *middle, user_bar()],
    )
