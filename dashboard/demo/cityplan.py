"""The demo city's plan: outline, river and main roads in a local metric plane, and its blocks.

All geometry here is in a transverse-Mercator plane in metres centred on the city's centre
(``democity.CENTER``); ``lonlat_transform`` converts it to WGS84 lon/lat.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

# Sizes of the synthetic plan (metres).
_OUTLINE_A, _OUTLINE_B = 4_850.0, 3_700.0  # semi-axes of the outline before its wobble
RIVER_HALF_WIDTH = 110.0
RIVERSIDE_STRIP = 150.0  # park strip between the river bank and the riverside road
_RING_A, _RING_B, _RING_CENTRE = 2_350.0, 1_750.0, (150.0, 350.0)


def lonlat_transform(center: tuple[float, float]) -> Callable[[np.ndarray], np.ndarray]:
    """Local TM plane (metres, centred on ``center``, lon/lat) → WGS84 lon/lat, for shapely.transform."""
    lon0, lat0 = center
    tm = f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m"
    transformer = Transformer.from_crs(tm, "EPSG:4326", always_xy=True)

    def apply(xy: np.ndarray) -> np.ndarray:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return apply


@dataclass
class Plan:
    """Outline, river and main roads of the city in the metric plane."""

    land: BaseGeometry  # the outline without the river: blocks and their cells
    water: BaseGeometry  # the river inside the outline: water grids
    river_line: LineString
    avenue_x: Callable[[float], float]  # x of 中山路 at a given y (district border)
    roads: list[BaseGeometry]
    hill: tuple[float, float]
    station: tuple[float, float]

    @classmethod
    def make(cls, rng: np.random.Generator) -> Plan:
        outline = _outline(rng)

        # A meandering river crossing the whole city west → east, south of the centre.
        rx = np.linspace(-8_000, 8_000, 321)
        phase = rng.uniform(0.2, 0.9)
        ry = (
            -650
            + 420 * np.sin(rx / 1_500 + phase)
            + 120 * np.sin(rx / 650 + rng.uniform(0, 2 * math.pi))
            + 0.05 * rx
        )
        river_line = LineString(np.column_stack([rx, ry]))
        river = river_line.buffer(RIVER_HALF_WIDTH, cap_style="flat", quad_segs=4)
        land = outline.difference(river)
        water = outline.intersection(river)
        bank = RIVER_HALF_WIDTH + RIVERSIDE_STRIP
        # Roads that do not bridge the river stop 20 m beyond the riverside road, so they
        # cross it (and get noded) and the stub is dropped as a dangle by polygonize.
        corridor = river_line.buffer(bank - 20, cap_style="flat")

        roads: list[BaseGeometry] = [
            river_line.offset_curve(bank, quad_segs=4),
            river_line.offset_curve(-bank, quad_segs=4),
        ]

        ring_pts = _closed_curve(
            _RING_A, _RING_B, rng, harmonics=3, amplitude=0.03, centre=_RING_CENTRE
        )
        ring = Polygon(ring_pts)
        roads.append(ring.exterior)
        inside = ring.buffer(20)  # old-town streets overshoot the ring so they get noded
        outside = ring.buffer(-20)

        # Old town: a street grid rotated ~15°, ~480 m blocks.
        theta = math.radians(rng.uniform(12, 20))
        u = np.array([math.cos(theta), math.sin(theta)])
        v = np.array([-u[1], u[0]])
        cx, cy = _RING_CENTRE
        for k in np.arange(-6, 7):
            off = k * 470 + rng.uniform(-40, 40)
            # lines along v (roughly north–south) bridge the river; lines along u do not
            ns = LineString([(cx, cy) + off * u - 4_000 * v, (cx, cy) + off * u + 4_000 * v])
            ew = LineString([(cx, cy) + off * v - 4_000 * u, (cx, cy) + off * v + 4_000 * u])
            roads.append(ns.intersection(inside))
            roads.append(ew.intersection(inside).difference(corridor))

        # Outer arterials: gently curving, slightly tilted, not a lattice.
        ys = np.linspace(-7_000, 7_000, 281)
        for base_x in np.arange(-5_400, 5_401, 760):
            x0 = base_x + rng.uniform(-90, 90)
            ph = rng.uniform(0, 2 * math.pi)
            xs = x0 + 0.09 * ys + 70 * np.sin(ys / 1_100 + ph)
            line = LineString(np.column_stack([xs, ys]))
            roads.append(_clip_span(line, rng, axis=1).difference(outside))
        xs = np.linspace(-7_000, 7_000, 281)
        for base_y in np.arange(-4_600, 4_601, 700):
            y0 = base_y + rng.uniform(-80, 80)
            ph = rng.uniform(0, 2 * math.pi)
            line_y = y0 - 0.05 * xs + 60 * np.sin(xs / 1_300 + ph)
            line = LineString(np.column_stack([xs, line_y]))
            roads.append(_clip_span(line, rng, axis=0).difference(outside).difference(corridor))

        # 中山路: the long avenue that splits the north bank into two districts.
        av_x0 = rng.uniform(-1_300, -900)
        av_phase = rng.uniform(0, 2 * math.pi)

        def avenue_x(y: float) -> float:
            return av_x0 + 0.12 * y + 90 * math.sin(y / 1_500 + av_phase)

        av_ys = np.linspace(-1_000, 6_000, 141)
        roads.append(LineString([(avenue_x(y), y) for y in av_ys]))

        # Diagonal expressway (SW → NE), kept out of the old town and the river corridor.
        t = np.linspace(0, 1, 121)
        dx = -7_000 + 14_000 * t
        dy = -5_600 + 11_500 * t + 250 * np.sin(t * math.pi * 2 + rng.uniform(0, 1))
        roads.append(LineString(np.column_stack([dx, dy])).difference(outside).difference(corridor))

        # Railway across the north, with the station roughly due north of the centre.
        rail_y = 2_750 + 0.1 * xs + 90 * np.sin(xs / 1_500 + rng.uniform(0, 2))
        roads.append(LineString(np.column_stack([xs, rail_y])))
        sx = rng.uniform(-200, 600)
        station = (sx, float(np.interp(sx, xs, rail_y)) + 80)

        hill = (-3_000 + rng.uniform(-300, 300), 1_600 + rng.uniform(-300, 300))
        roads = [r.intersection(outline.buffer(50)) for r in roads]
        return cls(land, water, river_line, avenue_x, roads, hill, station)

    def blocks(self) -> list[Polygon]:
        """City blocks: faces of the road network inside the land (river excluded)."""
        lines = [self.land.boundary, *[r for r in self.roads if not r.is_empty]]
        noded = shapely.union_all(lines)
        faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
        inside = shapely.contains_xy(
            self.land,
            *np.array([[p.x, p.y] for p in shapely.point_on_surface(faces)]).T,
        )
        return [f for f, ok in zip(faces, inside, strict=False) if ok and f.area > 1.0]

    def river_y(self, x: float) -> float:
        coords = np.asarray(self.river_line.coords)
        return float(np.interp(x, coords[:, 0], coords[:, 1]))

    def district_of(self, block: Polygon) -> int:
        """0 青山区 (north-west), 1 临江区 (north-east, old centre), 2 新城区 (south bank)."""
        p = block.point_on_surface()
        if p.y < self.river_y(p.x):
            return 2
        return 0 if p.x < self.avenue_x(p.y) else 1

    def distance_to_river(self, x: float, y: float) -> float:
        return float(self.river_line.distance(Point(x, y)))


def _closed_curve(
    a: float,
    b: float,
    rng: np.random.Generator,
    harmonics: int,
    amplitude: float,
    centre: tuple[float, float] = (0.0, 0.0),
    n: int = 240,
) -> np.ndarray:
    """An ellipse with a random low-frequency wobble of its radius."""
    th = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = 1 / np.sqrt((np.cos(th) / a) ** 2 + (np.sin(th) / b) ** 2)
    wobble = np.ones_like(th)
    for k in range(2, 2 + harmonics):
        wobble += amplitude * rng.uniform(0.5, 1.5) / (k - 1) * np.cos(k * th + rng.uniform(0, 6.3))
    r = r * wobble
    return np.column_stack([centre[0] + r * np.cos(th), centre[1] + r * np.sin(th)])


def _outline(rng: np.random.Generator) -> Polygon:
    """The built-up area: a wobbly ellipse, stretched along the river, with a bite taken out."""
    pts = _closed_curve(_OUTLINE_A, _OUTLINE_B, rng, harmonics=4, amplitude=0.07)
    outline = Polygon(pts)
    # A lake bites into the north-east edge, so the outline is clearly irregular.
    lake = Polygon(
        _closed_curve(
            1_200,
            800,
            rng,
            harmonics=3,
            amplitude=0.12,
            n=96,
            centre=(_OUTLINE_A * 0.7, _OUTLINE_B * 0.85),
        )
    )
    return outline.difference(lake)


def _clip_span(line: LineString, rng: np.random.Generator, axis: int) -> BaseGeometry:
    """Some arterials end early (T-junctions) instead of crossing the whole city."""
    if rng.random() < 0.6:
        return line
    coords = np.asarray(line.coords)
    lo, hi = coords[:, axis].min(), coords[:, axis].max()
    cut = rng.uniform(-1_500, 1_500)
    keep = coords[:, axis] >= cut if rng.random() < 0.5 else coords[:, axis] <= cut
    part = coords[keep]
    return LineString(part) if len(part) >= 2 and lo < cut < hi else line
