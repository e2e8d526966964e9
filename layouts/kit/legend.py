"""The heatmap's legend: its colour classes (from ``dashboard.figures.heat``) and the unit.

Static: the classes do not change with the data. The wall and /view show it under their maps.
"""

from __future__ import annotations

from dash import html

from dashboard.figures import heat


def legend(unit: str, block: str = "wall-legend", hot: bool = True, surge: bool = False) -> html.Div:
    """The colour classes of the heatmap (static: the classes do not change with the data).

    ``block`` is the CSS block name (``wall-legend``, ``view-legend``); ``hot`` adds 热点,
    ``surge`` 突增 (the surge ring's colour, ``heat.SURGE_COLOUR``).
    """
    items = []
    breaks = heat.BREAKS
    for i, (low, colour) in enumerate(zip(breaks, heat.COLOURS, strict=False)):
        high = breaks[i + 1] - 1 if i + 1 < len(breaks) else None
        text = f"{low}" if high == low else (f"{low}–{high}" if high else f"≥{low}")
        items.append(html.Div(className=f"{block}__item", children=[
            html.Span(className=f"{block}__swatch", style={"background": colour}),
            html.Span(text, className=f"{block}__text"),
        ]))
    if hot:
        items.append(html.Div(className=f"{block}__item", children=[
            html.Span(className=f"{block}__swatch {block}__swatch--hot"),
            html.Span("热点", className=f"{block}__text"),
        ]))
    if surge:
        items.append(html.Div(className=f"{block}__item", children=[
            html.Span(className=f"{block}__swatch {block}__swatch--surge", style={"borderColor": heat.SURGE_COLOUR}),
            html.Span("突增", className=f"{block}__text"),
        ]))
    return html.Div(className=block, children=[html.Div(f"单位：{unit}", className=f"{block}__title"), *items])
