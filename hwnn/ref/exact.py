"""Bit-exact reference of exact activations (semantics in :mod:`hwnn.plans.exact`)."""

from __future__ import annotations

import numpy as np

from ..fixed import Overflow, requantize
from ._inputs import check_codes
from .integers import divide_rounded

__all__ = ["exact", "exact_value"]


def exact_value(plan, q) -> np.ndarray:
    """The exact value ``v`` (codes of ``plan.value_format``) before the one rounding."""
    fi = plan.in_format.f
    name = plan.function.name
    if name == "relu":
        return np.maximum(q, 0)
    if name == "relu6":
        return np.clip(q, 0, 6 << fi)
    if name == "hard_tanh":
        return np.clip(q, -(1 << fi), 1 << fi)
    if name == "leaky_relu":
        return np.where(q >= 0, q << plan.leaky_shift, q)
    raise ValueError(f"{name} has no single exact value format")


def exact(plan, q) -> np.ndarray:
    """Output codes of ``plan.out_format`` for input codes ``q`` (any shape)."""
    q = check_codes(plan.in_format, q)
    out = plan.out_format
    if plan.function.name == "hard_sigmoid":
        fi, fo = plan.in_format.f, out.f
        n = np.clip(q + (3 << fi), 0, 6 << fi)
        # n * 2**fo / (6 * 2**fi), with the power of two on whichever side keeps integers.
        numerator = n << max(fo - fi, 0)
        denominator = 6 << max(fi - fo, 0)
        y = divide_rounded(numerator, denominator, plan.rounding)
        return np.clip(y, out.min_int, out.max_int)
    return requantize(exact_value(plan, q), plan.value_format, out, plan.rounding, Overflow.SAT)
