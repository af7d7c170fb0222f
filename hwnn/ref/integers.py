"""Integer primitives the reference models share: rounded division and the symmetric fold.

Everything is exact int64 arithmetic (no floats). Plans and cores use the same primitives, so a
reference and the hardware it checks cannot disagree on them.
"""

from __future__ import annotations

import enum

import numpy as np

from ..checks import check_enum
from ..fixed import Format, Rounding

__all__ = ["Symmetry", "divide_rounded", "fold", "unfold"]


class Symmetry(enum.Enum):
    """A symmetry that lets a plan store only the non-negative half of the input range."""
    ODD = "odd"                #: f(-x) = -f(x), e.g. tanh
    COMPLEMENT = "complement"  #: f(-x) = 1 - f(x), e.g. sigmoid


def divide_rounded(n, d: int, rounding: Rounding) -> np.ndarray:
    """``n / d`` rounded to an integer (exact int64; ``d > 0``)."""
    n = np.asarray(n, dtype=np.int64)
    floor = n // d
    if rounding is Rounding.TRUNC:
        return floor
    remainder2 = 2 * (n - floor * d)  # twice the remainder, compared with d
    if rounding is Rounding.HALF_UP:
        return floor + (remainder2 >= d)
    return floor + ((remainder2 > d) | ((remainder2 == d) & (floor % 2 == 1)))


def fold(q: np.ndarray, in_format: Format) -> tuple[np.ndarray, np.ndarray]:
    """Split input codes into magnitudes and signs: ``q = where(negative, -magnitude, magnitude)``.

    Magnitudes lie in ``[0, 2**(width-1)]`` for a signed format (the most negative code folds to
    one past the largest positive code) and are the codes themselves for an unsigned format.
    """
    q = np.asarray(q, dtype=np.int64)
    negative = q < 0
    return np.where(negative, -q, q), negative


def unfold(y: np.ndarray, negative: np.ndarray, symmetry: Symmetry, out_format: Format):
    """Output codes for the original inputs, from the codes ``y`` computed on magnitudes.

    ``ODD``: ``-y`` where the input was negative. ``COMPLEMENT``: ``one - y`` there, with ``one``
    the code of 1.0 in ``out_format``. Results outside ``out_format`` saturate (the error
    measurement that every plan carries includes the effect).
    """
    symmetry = check_enum(Symmetry, symmetry, "symmetry")
    y = np.asarray(y, dtype=np.int64)
    if symmetry is Symmetry.ODD:
        mirrored = -y
    else:
        mirrored = (np.int64(1) << np.int64(out_format.f)) - y
    return np.clip(np.where(negative, mirrored, y), out_format.min_int, out_format.max_int)
