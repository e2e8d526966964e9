"""GridIndex: point → grid lookup with the smallest-code tie rule."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from dashboard.rules.gridindex import GridIndex

# A 2×2 block of 0.001° squares whose shared vertex is (118.781, 32.041). Codes are given
# out of order on purpose, so the tie rule cannot be an accident of insertion order.
X0, Y0, D = 118.780, 32.040, 0.001
CELLS = {
    "990101001001004": box(X0 + D, Y0, X0 + 2 * D, Y0 + D),  # south-east
    "990101001001001": box(X0, Y0 + D, X0 + D, Y0 + 2 * D),  # north-west
    "990101001001003": box(X0, Y0, X0 + D, Y0 + D),  # south-west
    "990101001001002": box(X0 + D, Y0 + D, X0 + 2 * D, Y0 + 2 * D),  # north-east
}


@pytest.fixture(scope="module")
def square_index() -> GridIndex:
    return GridIndex(list(CELLS), list(CELLS.values()))


def test_len_bounds_codes(square_index: GridIndex) -> None:
    assert len(square_index) == 4
    assert square_index.bounds == pytest.approx((X0, Y0, X0 + 2 * D, Y0 + 2 * D))
    assert square_index.codes == tuple(sorted(CELLS))


def test_interior_points(square_index: GridIndex) -> None:
    for code, cell in CELLS.items():
        c = cell.centroid
        assert square_index.locate(c.x, c.y) == code


def test_shared_edge_goes_to_smallest_code(square_index: GridIndex) -> None:
    # Vertical edge between NW (…001) and NE (…002).
    assert square_index.locate(X0 + D, Y0 + 1.5 * D) == "990101001001001"
    # Horizontal edge between SW (…003) and NW (…001).
    assert square_index.locate(X0 + 0.5 * D, Y0 + D) == "990101001001001"
    # Horizontal edge between SE (…004) and NE (…002).
    assert square_index.locate(X0 + 1.5 * D, Y0 + D) == "990101001001002"
    # Vertical edge between SW (…003) and SE (…004).
    assert square_index.locate(X0 + D, Y0 + 0.5 * D) == "990101001001003"


def test_shared_vertex_of_four_cells(square_index: GridIndex) -> None:
    assert square_index.locate(X0 + D, Y0 + D) == "990101001001001"


def test_outer_boundary_counts_as_inside(square_index: GridIndex) -> None:
    assert square_index.locate(X0, Y0) == "990101001001003"
    assert square_index.locate(X0 + 2 * D, Y0 + 0.5 * D) == "990101001001004"


def test_outside_and_just_outside(square_index: GridIndex) -> None:
    assert square_index.locate(100.0, 20.0) is None
    eps = 1e-9  # about 0.1 mm
    assert square_index.locate(X0 - eps, Y0 + 0.5 * D) is None
    assert square_index.locate(X0 + 0.5 * D, Y0 + 2 * D + eps) is None
    assert square_index.locate(X0 + eps, Y0 + 0.5 * D) == "990101001001003"


def test_non_finite_is_outside(square_index: GridIndex) -> None:
    assert square_index.locate(float("nan"), Y0) is None
    assert square_index.locate_many([np.nan, X0 + 0.5 * D], [Y0, np.inf]) == [None, None]


def test_locate_many_matches_locate_on_special_points(square_index: GridIndex) -> None:
    xs = np.array([X0 + D, X0 + D, X0 + 0.5 * D, X0 - 1, X0 + 1.5 * D])
    ys = np.array([Y0 + D, Y0 + 1.5 * D, Y0 + D, Y0, Y0 + 0.5 * D])
    assert square_index.locate_many(xs, ys) == [square_index.locate(x, y) for x, y in zip(xs, ys, strict=False)]


def test_locate_many_empty_input(square_index: GridIndex) -> None:
    assert square_index.locate_many(np.array([]), np.array([])) == []
    with pytest.raises(ValueError):
        square_index.locate_many([1.0, 2.0], [1.0])


def test_locate_many_equals_locate_on_random_voronoi_city() -> None:
    """Irregular cells, random points (some on vertices and edges, some outside)."""
    rng = np.random.default_rng(7)
    seeds = shapely.multipoints(rng.uniform(0, 0.02, size=(400, 2)) + (X0, Y0))
    extent = box(X0, Y0, X0 + 0.02, Y0 + 0.02)
    cells = [
        c.intersection(extent) for c in shapely.voronoi_polygons(seeds, extend_to=extent).geoms
    ]
    codes = [f"990101001{i // 999 + 1:03d}{i % 999 + 1:03d}" for i in range(len(cells))]
    index = GridIndex(codes, cells)

    random_pts = rng.uniform(-0.002, 0.022, size=(3000, 2)) + (X0, Y0)
    vertices = shapely.get_coordinates(np.array(cells, dtype=object))[::3]
    edge_mids = np.array(
        [
            [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]
            for c in cells[:100]
            for a, b in zip(c.exterior.coords[:-1], c.exterior.coords[1:], strict=False)
        ]
    )
    pts = np.vstack([random_pts, vertices, edge_mids])
    many = index.locate_many(pts[:, 0], pts[:, 1])
    single = [index.locate(x, y) for x, y in pts]
    assert many == single

    # Cross-check against brute force: the answer is the smallest code among all cells
    # that intersect the point.
    sample = np.r_[0:400, len(random_pts) : len(random_pts) + 400]
    for (x, y), got in zip(pts[sample], np.array(many, dtype=object)[sample], strict=False):
        hits = [code for code, c in zip(codes, cells, strict=False) if c.intersects(shapely.Point(x, y))]
        assert got == (min(hits) if hits else None)
    assert any(v is None for v in many) and sum(v is not None for v in many) > 2000


def test_multipolygon_grid() -> None:
    mp = MultiPolygon([box(0, 0, 1, 1), box(2, 0, 3, 1)])
    index = GridIndex(["990101001001001"], [mp])
    assert index.locate(2.5, 0.5) == "990101001001001"
    assert index.locate(1.5, 0.5) is None


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        GridIndex(["a", "a"], [box(0, 0, 1, 1), box(1, 0, 2, 1)])
    with pytest.raises(ValueError):
        GridIndex(["a"], [box(0, 0, 1, 1), box(1, 0, 2, 1)])
    with pytest.raises(ValueError):
        GridIndex(["a"], [Polygon()])


def test_empty_index() -> None:
    index = GridIndex([], [])
    assert len(index) == 0
    assert index.locate(1.0, 1.0) is None
    assert index.locate_many([1.0], [1.0]) == [None]
