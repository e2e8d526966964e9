"""Contiguous, compact, balanced partitions of adjacent items (streets, communities)."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np


def partition(
    xy: np.ndarray,
    weight: np.ndarray,
    neighbours: list[list[int]],
    k: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Split items into k contiguous, compact, weight-balanced regions; returns labels.

    Weighted k-means places k centres; regions then grow from the item nearest each centre
    over the adjacency graph, the lightest region always growing next by its nearest
    frontier item. Growing over adjacency keeps every region in one piece.
    """
    n = len(xy)
    k = max(1, min(k, n))
    p = weight / weight.sum()
    centres = [xy[rng.choice(n, p=p)]]
    for _ in range(1, k):
        d2 = np.min([((xy - c) ** 2).sum(axis=1) for c in centres], axis=0)
        q = d2 * weight
        centres.append(xy[rng.choice(n, p=q / q.sum())] if q.sum() > 0 else xy[rng.choice(n)])
    c = np.array(centres)
    for _ in range(20):
        lab = np.argmin(((xy[:, None, :] - c[None]) ** 2).sum(axis=2), axis=1)
        for r in range(k):
            m = lab == r
            if m.any():
                c[r] = (xy[m] * weight[m, None]).sum(axis=0) / weight[m].sum()

    labels = np.full(n, -1)
    load = np.zeros(k)
    heaps: list[list[tuple[float, int]]] = [[] for _ in range(k)]

    def take(i: int, r: int) -> None:
        labels[i] = r
        load[r] += weight[i]
        for j in neighbours[i]:
            if labels[j] < 0:
                heapq.heappush(heaps[r], (float(((xy[j] - c[r]) ** 2).sum()), j))

    for r in range(k):
        d = ((xy - c[r]) ** 2).sum(axis=1)
        d[labels >= 0] = np.inf
        take(int(np.argmin(d)), r)
    remaining = n - k
    while remaining:
        for r in np.argsort(load, kind="stable"):
            h = heaps[r]
            while h and labels[h[0][1]] >= 0:
                heapq.heappop(h)
            if h:
                take(heapq.heappop(h)[1], int(r))
                remaining -= 1
                break
        else:
            break  # what is left is not connected to any region
    for i in np.flatnonzero(labels < 0):
        labels[i] = int(np.argmin(((c - xy[i]) ** 2).sum(axis=1)))
    return labels


def largest_remainder(shares: Sequence[float], total: int, minimum: int) -> list[int]:
    """Integer counts proportional to shares, summing to total, each at least minimum."""
    shares_a = np.asarray(shares, dtype=float)
    raw = shares_a / shares_a.sum() * total
    counts = np.maximum(np.floor(raw).astype(int), minimum)
    while counts.sum() < total:
        counts[int(np.argmax(raw - counts))] += 1
    while counts.sum() > total:
        over = np.where(counts > minimum, counts - raw, -np.inf)
        counts[int(np.argmax(over))] -= 1
    result: list[int] = counts.tolist()
    return result
