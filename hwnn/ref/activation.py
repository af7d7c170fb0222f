"""Bit-exact reference of any activation plan (lut, pwl, poly, taylor, exact or threshold)."""

from __future__ import annotations

from ..checks import ParameterTypeError
from .binary import multithreshold
from .exact import exact
from .lut import lut
from .poly import POLY_METHODS, poly
from .pwl import pwl

__all__ = ["activation"]


def activation(plan, q):
    """Output codes of ``plan.out_format`` for input codes ``q`` (any shape).

    Raises
    ------
    TypeError
        ``plan`` is not an activation plan, or ``q`` is not integer.
    ValueError
        ``q`` holds codes outside the input format.
    """
    method = getattr(plan, "method", None)
    if method == "lut":
        return lut(plan, q)
    if method == "pwl":
        return pwl(plan, q)
    if method in POLY_METHODS:
        return poly(plan, q)
    if method == "exact":
        return exact(plan, q)
    if method == "threshold":  # a ThresholdPlan: per-lane channels on the last axis of q
        return multithreshold(plan, q)
    raise ParameterTypeError("plan", f"plan must be an activation plan (lut, pwl, poly, taylor, "
                                     f"exact or threshold), not {plan!r}")
