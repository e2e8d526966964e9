"""``gridhall geocode "地址" …``: free-text addresses → gazetteer place and unit grid (docs/geocoding.md)."""

from __future__ import annotations

import sys

import typer

from cli.common import (
    cli_settings,
    console,
    fail,
    format_option,
    notes_console,
    output_format,
    require_backends,
)


def geocode(
    addresses: list[str] = typer.Argument(None, help="Addresses; none: one per line from standard input."),
    fmt: str | None = format_option(),
    min_score: float | None = typer.Option(None, min=0, max=100,
                                           help="Threshold (default GRIDHALL_GEOCODE_MIN_SCORE)."),
) -> None:
    """Place free-text addresses in the gazetteer and their unit grids; 未定位 when not sure. Exit 1 if any is."""
    from sqlalchemy import inspect

    from dashboard.geocode.matcher import Geocoder
    from dashboard.output.tabular import Column, Format, emit
    from dashboard.store.db import make_engine, session_factory

    shape = output_format(fmt)
    settings = cli_settings()
    require_backends(settings, redis_too=False)
    texts = list(addresses or []) or [line.strip() for line in sys.stdin if line.strip()]
    if not texts:
        fail("no address given", 2)
    engine = make_engine(settings)
    if not inspect(engine).has_table("gazetteer"):
        fail("the database has no gazetteer table: run 'gridhall db upgrade' first", 1)
    with session_factory(engine)() as session:
        geocoder = Geocoder.load(session, min_score=min_score)
    if not len(geocoder):
        fail("the gazetteer is empty: import one with 'gridhall import gazetteer FILE'", 1)
    rows = []
    for text in texts:
        found = geocoder.geocode(text)
        rows.append({
            "address": text,
            "grid_code": found.grid_code if found else None,
            "score": found.score if found else None,
            "method": found.method if found else "未定位",
            "matched": found.matched if found else None,
            "lon": found.lon if found else None,
            "lat": found.lat if found else None,
        })
    columns = [
        Column("address", "地址", flex=True),
        Column("grid_code", "单元网格"),
        Column("score", "得分", show=lambda v: "—" if v is None else f"{v:.0f}"),
        Column("method", "方式"),
        Column("matched", "匹配地址", flex=True, drop=1),
        Column("lon", "经度", drop=2),
        Column("lat", "纬度", drop=2),
    ]
    styles = [None if r["grid_code"] else "yellow" for r in rows]
    emit(console, columns, rows, shape, title="地理编码" if shape is Format.TABLE else None, row_styles=styles)
    unplaced = sum(1 for r in rows if not r["grid_code"])
    if unplaced:
        notes_console(shape).print(f"{unplaced} of {len(rows)} 未定位 (below score {geocoder.min_score:g} "
                                   "or ambiguous)", highlight=False)
        raise typer.Exit(1)
