"""Bit-exact reference of the elementwise unit: ``y = requantize(a ⊙ b)`` per lane, in int64."""

from __future__ import annotations

import numpy as np

from ..fixed import requantize
from ._inputs import check_codes

__all__ = ["elementwise", "elementwise_exact"]


def _operands(plan, a, b):
    """``a`` and ``b`` as int64 codes of equal shape (``b`` broadcast from a constant plan)."""
    a = check_codes(plan.a_format, a)
    if plan.lanes > 1 and (a.ndim == 0 or a.shape[-1] != plan.lanes):
        raise ValueError(f"a must have shape ({plan.lanes},) or (n, {plan.lanes}) for "
                         f"{plan.lanes} lanes, not {a.shape}")
    if plan.constant is not None:
        if b is not None:
            raise TypeError("b must be None for a plan with a constant b")
        constant = np.asarray(plan.constant, dtype=np.int64)
        # One lane is a scalar stream: its constant applies to every element of any shape.
        return a, np.broadcast_to(constant[0] if plan.lanes == 1 else constant, a.shape)
    if b is None:
        raise TypeError("b is required for a plan without a constant b")
    b = check_codes(plan.b_format, b)
    if b.shape != a.shape:
        raise ValueError(f"b must have the shape of a, {a.shape}, not {b.shape}")
    return a, b


def elementwise_exact(plan, a, b=None) -> np.ndarray:
    """``a ⊙ b`` exactly, as codes of ``plan.full_format`` (no rounding anywhere).

    Sums align both operands to the fraction bits of ``plan.full_format`` by the plan's
    ``a_shift`` and ``b_shift``. int64 cannot overflow: the plan keeps ``full_format`` within
    :data:`hwnn.fixed.MAX_WIDTH` bits.

    Parameters and errors as :func:`elementwise`.
    """
    a, b = _operands(plan, a, b)
    if plan.op == "mul":
        return a * b
    a, b = a << plan.a_shift, b << plan.b_shift
    return a + b if plan.op == "add" else a - b


def elementwise(plan, a, b=None) -> np.ndarray:
    """Output codes of ``plan.out_format``: ``requantize(a ⊙ b)`` with the plan's modes.

    Parameters
    ----------
    plan : hwnn.plans.elementwise.ElementwisePlan
    a : array of int
        Codes of ``plan.a_format``: any shape for one lane, ``(..., lanes)`` for more.
    b : array of int, optional
        Codes of ``plan.b_format`` with the shape of ``a``; must be omitted when the plan has a
        constant ``b`` (lane ``k`` then uses ``plan.constant[k]``).

    Raises
    ------
    TypeError
        ``a`` or ``b`` is not integer, or ``b`` is missing (or given for a constant plan).
    ValueError
        A code outside its format, or shapes that do not fit the plan.
    """
    return requantize(elementwise_exact(plan, a, b), plan.full_format, plan.out_format,
                      plan.rounding, plan.overflow)
