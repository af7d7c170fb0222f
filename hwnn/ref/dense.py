"""Bit-exact reference of the dense layer: ``y = requantize(W·x + b)`` in int64."""

from __future__ import annotations

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError
from ..fixed import requantize

__all__ = ["dense", "dense_accumulator"]


def _check_inputs(plan, x) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        raise ParameterTypeError("x", f"x must hold integer codes of {plan.in_format}, not "
                                      f"dtype {x.dtype}")
    if x.shape[-1:] != (plan.n_in,) or x.ndim > 2:
        raise ParameterValueError("x", f"x must have shape ({plan.n_in},) or (n, {plan.n_in}), "
                                       f"not {x.shape}")
    if x.size and not plan.in_format.contains(x).all():
        raise ParameterValueError("x", f"x holds codes outside {plan.in_format} "
                         f"[{plan.in_format.min_int}, {plan.in_format.max_int}]")
    return x.astype(np.int64)


def dense_accumulator(plan, x) -> np.ndarray:
    """The exact sums ``W·x + b`` as codes of ``plan.acc_format`` (no rounding anywhere).

    ``plan`` is a :class:`~hwnn.plans.dense.DensePlan` or anything with its attributes
    (``weight``, ``bias``, ``in_format``, ``acc_format``, ``n_in``).

    int64 cannot overflow here: the plan sized the accumulator for every input code and rejects
    accumulators wider than 62 bits.
    """
    x = _check_inputs(plan, x)
    return x @ plan.weight.T + plan.bias


def dense(plan, x) -> np.ndarray:
    """Output codes of ``plan.out_format`` for input codes ``x`` of ``plan.in_format``.

    ``x`` has shape ``(n_in,)`` or ``(n, n_in)``; the result has ``n_out`` in place of ``n_in``.

    Raises
    ------
    TypeError
        ``x`` is not integer.
    ValueError
        ``x`` has the wrong shape or holds codes outside the input format.
    """
    acc = dense_accumulator(plan, x)
    return requantize(acc, plan.acc_format, plan.out_format, plan.rounding, plan.overflow)
