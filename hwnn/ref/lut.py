"""Bit-exact reference of lookup-table activations (semantics in :mod:`hwnn.plans.lut`)."""

from __future__ import annotations

import numpy as np

from ..plans.functions import fold, unfold

__all__ = ["lut", "check_codes"]


def check_codes(fmt, q) -> np.ndarray:
    """``q`` as int64, or a clear error if it is not integer codes of ``fmt``."""
    q = np.asarray(q)
    if q.dtype == np.bool_ or not np.issubdtype(q.dtype, np.integer):
        raise TypeError(f"inputs must be integer codes of {fmt}, not dtype {q.dtype}")
    if q.size and not fmt.contains(q).all():
        raise ValueError(f"inputs hold codes outside {fmt} [{fmt.min_int}, {fmt.max_int}]")
    return q.astype(np.int64)


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
