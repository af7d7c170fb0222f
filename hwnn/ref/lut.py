"""Bit-exact reference of lookup-table activations (semantics in :mod:`hwnn.plans.lut`)."""

from __future__ import annotations

import numpy as np

from ._inputs import check_codes
from .integers import fold, unfold

__all__ = ["lut"]


def lut(plan, q) -> np.ndarray:
    """Output codes of ``plan.out_format`` for input codes ``q`` (any shape)."""
    q = check_codes(plan.in_format, q)
    if plan.symmetric:
        c, negative = fold(q, plan.in_format)
    else:
        c, negative = q, None
    index = (np.clip(c, plan.lo, plan.hi) - plan.lo) >> plan.shift
    y = np.asarray(plan.table, dtype=np.int64)[index]
    if plan.symmetric:
        y = unfold(y, negative, plan.function.symmetry, plan.out_format)
    return y
