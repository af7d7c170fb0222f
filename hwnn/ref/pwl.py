"""Bit-exact reference of piecewise-linear activations (semantics in :mod:`hwnn.plans.pwl`).

For each input code ``q``::

    c, negative = fold(q) if plan.symmetric else (q, False)
    j = searchsorted(starts, c, side="right") - 1
    y = clip((slopes[j] * (c - starts[j]) + intercepts[j]) >> shift, out.min_int, out.max_int)
    y = unfold(y, negative, symmetry) if plan.symmetric else y

All in int64; the plan guarantees ``|slopes[j] * (c - starts[j]) + intercepts[j]| < 2**62``.
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterTypeError
from ._inputs import check_codes
from .integers import fold, unfold

__all__ = ["pwl"]


def pwl(plan, q) -> np.ndarray:
    """Output codes of ``plan.out_format`` for input codes ``q`` of ``plan.in_format``.

    Parameters
    ----------
    plan : :class:`~hwnn.plans.pwl.PWLPlan` (any object with its attributes and
        ``method == "pwl"``)
    q : array_like of int
        Input codes, any shape.

    Returns
    -------
    np.ndarray of int64, the shape of ``q``.

    Raises
    ------
    TypeError
        ``plan`` is not a pwl plan, or ``q`` is not integer.
    ValueError
        ``q`` holds codes outside the input format.
    """
    if getattr(plan, "method", None) != "pwl":
        raise ParameterTypeError("plan", f"plan must be a pwl plan (hwnn.plans.pwl.PWLPlan), "
                                         f"not {plan!r}")
    q = check_codes(plan.in_format, q)
    if plan.symmetric:
        c, negative = fold(q, plan.in_format)
    else:
        c, negative = q, None
    starts = np.asarray(plan.starts, dtype=np.int64)
    j = np.searchsorted(starts, c, side="right") - 1
    v = np.asarray(plan.slopes, dtype=np.int64)[j] * (c - starts[j]) \
        + np.asarray(plan.intercepts, dtype=np.int64)[j]
    out = plan.out_format
    y = np.clip(v >> np.int64(plan.shift), out.min_int, out.max_int)
    if plan.symmetric:
        y = unfold(y, negative, plan.function.symmetry, out)
    return y
