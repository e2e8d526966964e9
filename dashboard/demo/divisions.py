"""Streets grown over blocks, communities over grids; water grids join the community on their bank."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import numpy as np
from shapely.geometry import Polygon

from dashboard.demo.coverage import neighbour_lists, shared_lengths
from dashboard.demo.noding import Grid
from dashboard.demo.partition import largest_remainder, partition

N_STREETS = 15
N_COMMUNITIES = 60


def streets_for_blocks(
    blocks: list[Polygon], district: list[int], rng: np.random.Generator
) -> list[tuple[int, int]]:
    """(district index, street index within district) for every block."""
    shared = shared_lengths(blocks)
    areas = np.array([b.area for b in blocks])
    xy = np.array([[p.x, p.y] for p in (b.centroid for b in blocks)])
    dist_area = [areas[np.array(district) == d].sum() for d in range(3)]
    per_district = largest_remainder(dist_area, N_STREETS, minimum=3)
    result: list[tuple[int, int]] = [(0, 0)] * len(blocks)
    for d in range(3):
        idx = [i for i in range(len(blocks)) if district[i] == d]
        local = {g: k for k, g in enumerate(idx)}
        sub = {
            (local[a], local[b]): length
            for (a, b), length in shared.items()
            if a in local and b in local
        }
        nb = neighbour_lists(len(idx), sub, min_len=10.0)
        labels = partition(xy[idx], areas[idx], nb, per_district[d], rng)
        for k, g in enumerate(idx):
            result[g] = (d, int(labels[k]))
    return result


def communities_for_grids(
    grids: list[Grid],
    xy: np.ndarray,
    street_of: list[tuple[int, int]],
    rng: np.random.Generator,
) -> list[tuple[int, int, int]]:
    """(district, street, community index in street) per grid, grown over adjacent grids."""
    shared = shared_lengths([g.geom for g in grids])
    streets = sorted(set(street_of))
    members = {s: [i for i in range(len(grids)) if street_of[i] == s] for s in streets}
    per_street = largest_remainder([len(members[s]) for s in streets], N_COMMUNITIES, minimum=2)
    out: list[tuple[int, int, int]] = [(0, 0, 0)] * len(grids)
    for s, k in zip(streets, per_street, strict=False):
        idx = members[s]
        k = max(k, math.ceil(len(idx) / 999))  # a community holds at most 999 grids
        local = {g: n for n, g in enumerate(idx)}
        sub = {
            (local[a], local[b]): length
            for (a, b), length in shared.items()
            if a in local and b in local
        }
        nb = neighbour_lists(len(idx), sub, min_len=0.0)
        labels = partition(xy[idx], np.ones(len(idx)), nb, k, rng)
        for n, g in enumerate(idx):
            out[g] = (s[0], s[1], int(labels[n]))
    return out


def water_communities(
    grids: list[Grid],
    xy: np.ndarray,
    water: list[int],
    comm_of: list[tuple[int, int, int] | None],
    river_y: Callable[[float], float],
) -> list[tuple[int, int, int]]:
    """Give each water grid the community of its bank; returns comm_of for every grid.

    A water grid joins the land grid it shares the longest edge with, else (no bank in
    reach, e.g. where the outline crosses the river) a water neighbour on its own side of
    the centre line that already has a community, else any water neighbour. Joining over a
    shared edge keeps every community in one piece, and streets and districts follow.
    """
    shared = shared_lengths([g.geom for g in grids])
    nb: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for (a, b), length in shared.items():
        nb[a].append((length, b))
        nb[b].append((length, a))
    north = {i: bool(xy[i, 1] > river_y(float(xy[i, 0]))) for i in water}
    out = list(comm_of)

    def allowed(i: int, j: int, rule: str) -> bool:
        if out[j] is None:
            return False
        if rule == "land":
            return j not in north
        return j in north and (rule == "any" or north[j] == north[i])

    pending = sorted(water)
    for rule in ("land", "same side", "any"):
        # The land rule is one pass; the water rules spread along the river until done.
        again = True
        while pending and again:
            again = False
            for i in list(pending):
                cands = [(length, -j) for length, j in nb[i] if allowed(i, j, rule)]
                if cands:
                    out[i] = out[-max(cands)[1]]
                    pending.remove(i)
                    again = rule != "land"
    if pending:
        raise RuntimeError(f"water grids {pending[:5]} touch no other grid")
    done = [c for c in out if c is not None]
    assert len(done) == len(out), "a land grid without a community"
    return done
