"""The city map every map page draws on (/wall, /view, /explore): the city's own basemap, if
any, under the page's layers; never a public tile server by default."""

from __future__ import annotations

from typing import Any

import dash_leaflet as dl

from dashboard.settings import Settings


def basemap_layers(settings: Settings) -> list[Any]:
    """The city's own GIS basemap (GRIDHALL_TILE_URL, WMS with GRIDHALL_WMS_LAYERS), or nothing:
    never a public tile server by default. Shared by /wall, /view and /explore."""
    if not settings.tile_url:
        return []
    if settings.wms_layers:
        return [dl.WMSTileLayer(url=settings.tile_url, layers=settings.wms_layers,
                                format="image/png", transparent=True, attribution="")]
    return [dl.TileLayer(url=settings.tile_url, attribution="")]


def city_map(settings: Settings, map_id: str, class_name: str, layers: list[Any], **options: Any) -> dl.MapContainer:
    """A dark map of the city's grids: the basemap (if any) under ``layers``, drawn on canvas
    (tens of thousands of cells: not one SVG path each), no attribution, filling its frame.
    The centre is a placeholder: each page fits the map to its grids. ``options`` go to
    dash-leaflet's MapContainer (zoomSnap, zoomControl, …)."""
    return dl.MapContainer(
        id=map_id,
        className=class_name,
        children=[*basemap_layers(settings), *layers],
        preferCanvas=True,
        attributionControl=False,
        center=[30.0, 120.0], zoom=12,
        style={"height": "100%", "width": "100%", "background": "#050c18"},
        **options,
    )
