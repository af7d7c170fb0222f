"""Bit-exact reference of polynomial activations (semantics in :mod:`hwnn.plans.poly`).

For each input code ``q``::

    c, negative = fold(q) if plan.symmetric else (q, False)
    j = searchsorted(starts, c, side="right") - 1
    d = c - origins[j]
    acc = coefficients[j][degree]
    for k in degree - 1, ..., 0:
        acc = ((acc * d) >> shifts[k]) + coefficients[j][k]     # >> is floor
    y = clip(acc >> shift, out.min_int, out.max_int)
    y = unfold(y, negative, symmetry) if plan.symmetric else y

All in int64; the plan guarantees every intermediate stays below ``2**62`` in magnitude.
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterTypeError
from ._inputs import check_codes
from .integers import fold, unfold

__all__ = ["poly", "horner", "horner_steps", "POLY_METHODS"]

#: The plan methods evaluated by this reference: minimax pieces and the Taylor series.
POLY_METHODS = ("poly", "taylor")


def horner_steps(coefficients, d, shifts) -> list[np.ndarray]:
    """The Horner steps of the semantics for coefficient rows and offsets that broadcast
    together: ``coefficients[..., k]`` is the integer of ``d**k`` (int64 arrays).

    Returns ``[acc_degree, product, acc_(degree-1), ..., product, acc_0]``, each the
    broadcast shape of ``coefficients[..., 0]`` and ``d``.
    """
    coefficients = np.asarray(coefficients, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)
    degree = coefficients.shape[-1] - 1
    acc = np.broadcast_to(coefficients[..., degree], np.broadcast_shapes(
        coefficients.shape[:-1], d.shape))
    steps = [acc]
    for k in reversed(range(degree)):
        product = acc * d
        acc = (product >> np.int64(shifts[k])) + coefficients[..., k]
        steps += [product, acc]
    return steps


def horner(plan, c) -> list[np.ndarray]:
    """The Horner steps on (folded) codes ``c`` of the plan's domain.

    Returns ``[d, acc_degree, product_degree, acc_(degree-1), ..., product_1, acc_0]``: the
    offset, then for each step the product ``acc_(k+1) * d`` and the new accumulator ``acc_k``
    (int64 arrays the shape of ``c``). The output before the clip is ``acc_0 >> plan.shift``.
    """
    c = np.asarray(c, dtype=np.int64)
    starts = np.asarray(plan.starts, dtype=np.int64)
    j = np.searchsorted(starts, c, side="right") - 1
    d = c - np.asarray(plan.origins, dtype=np.int64)[j]
    table = np.asarray(plan.coefficients, dtype=np.int64)
    return [d] + horner_steps(table[j], d, plan.shifts)


def poly(plan, q) -> np.ndarray:
    """Output codes of ``plan.out_format`` for input codes ``q`` of ``plan.in_format``.

    Parameters
    ----------
    plan : :class:`~hwnn.plans.poly.PolyPlan` (method ``"poly"`` or ``"taylor"``)
    q : array_like of int
        Input codes, any shape.

    Returns
    -------
    np.ndarray of int64, the shape of ``q``.

    Raises
    ------
    TypeError
        ``plan`` is not a polynomial plan, or ``q`` is not integer.
    ValueError
        ``q`` holds codes outside the input format.
    """
    if getattr(plan, "method", None) not in POLY_METHODS:
        raise ParameterTypeError("plan", f"plan must be a polynomial plan "
                                         f"(hwnn.plans.poly.PolyPlan), not {plan!r}")
    q = check_codes(plan.in_format, q)
    if plan.symmetric:
        c, negative = fold(q, plan.in_format)
    else:
        c, negative = q, None
    acc = horner(plan, c)[-1]
    out = plan.out_format
    y = np.clip(acc >> np.int64(plan.shift), out.min_int, out.max_int)
    if plan.symmetric:
        y = unfold(y, negative, plan.function.symmetry, out)
    return y
