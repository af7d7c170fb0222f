"""Bit-exact reference of the runtime-weight shift-add MAC: the dense layer with given weights.

``shift_mac(plan, W, x)`` is :func:`hwnn.ref.dense.dense` of ``plan.dense_plan(W)``: exact int64
sums ``W·x + b`` narrowed once by :func:`hwnn.fixed.requantize` with the plan's modes. Only the
weights differ from a dense layer: they are pot/pot2 codes given per call, not plan constants.
"""

from __future__ import annotations

import numpy as np

from ..checks import ParameterTypeError
from .dense import dense, dense_accumulator

__all__ = ["shift_mac", "shift_mac_accumulator"]


def _check_plan(plan):
    # Duck typing: a reference reads a plan's attributes and never imports the plans package.
    if not callable(getattr(plan, "dense_plan", None)):
        raise ParameterTypeError("plan", f"plan must be a ShiftMacPlan (see "
                                         f"hwnn.plans.shift_mac.plan_shift_mac), not {plan!r}")


def shift_mac_accumulator(plan, weight, x) -> np.ndarray:
    """The exact sums ``W·x + b`` as codes of ``plan.acc_format`` (no rounding anywhere)."""
    _check_plan(plan)
    return dense_accumulator(plan.dense_plan(weight), x)


def shift_mac(plan, weight, x) -> np.ndarray:
    """Output codes of ``plan.out_format`` for weight codes ``weight`` and input codes ``x``.

    ``weight`` has shape ``(n_out, n_in)`` and holds codes of ``plan.weight_format`` that
    ``plan.code`` can hold (pot or pot2); ``x`` has shape ``(n_in,)`` or ``(n, n_in)``.

    Raises
    ------
    TypeError
        ``plan`` is not a ShiftMacPlan, or ``weight``/``x`` are not integer.
    ValueError
        ``weight`` has the wrong shape or holds a code that is not pot/pot2 (the message names
        the first one), or ``x`` has the wrong shape or holds codes outside the input format.
    """
    _check_plan(plan)
    return dense(plan.dense_plan(weight), x)
