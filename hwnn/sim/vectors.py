"""Test vectors: corner cases first, then fixed-seed random codes."""

from __future__ import annotations

import numpy as np

from ..fixed import Format

__all__ = ["corner_vectors", "make_vectors"]


def corner_vectors(fmt: Format, lanes: int) -> np.ndarray:
    """Vectors of ``lanes`` codes that stress the extremes of ``fmt``.

    All-minimum, all-maximum, all-zero, the two alternations of minimum and maximum, one ulp
    around zero, and each extreme alone in a zero vector (walking through the lanes).
    """
    lo, hi = fmt.min_int, fmt.max_int
    near_zero = -1 if fmt.signed else 1
    alternating = np.where(np.arange(lanes) % 2 == 0, lo, hi)
    rows = [np.full(lanes, lo), np.full(lanes, hi), np.zeros(lanes, dtype=np.int64),
            alternating, alternating[::-1] if lanes % 2 == 0 else np.where(alternating == lo, hi, lo),
            np.full(lanes, near_zero), np.full(lanes, min(1, hi))]
    for k in range(lanes):
        for extreme in (lo, hi):
            row = np.zeros(lanes, dtype=np.int64)
            row[k] = extreme
            rows.append(row)
    unique = []
    for row in rows:
        if not any(np.array_equal(row, seen) for seen in unique):
            unique.append(np.asarray(row, dtype=np.int64))
    return np.stack(unique)


def make_vectors(fmt: Format, lanes: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` vectors of ``lanes`` codes: the corner vectors first, then uniform random codes.

    If ``count`` is smaller than the number of corner vectors, only the first ``count`` corners
    are returned.
    """
    corners = corner_vectors(fmt, lanes)
    if count <= len(corners):
        return corners[:count]
    rng = np.random.default_rng(seed)
    random = rng.integers(fmt.min_int, fmt.max_int, (count - len(corners), lanes),
                          endpoint=True, dtype=np.int64)
    return np.concatenate([corners, random])

