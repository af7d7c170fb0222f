"""Bit-exact reference of a binarized dense layer: binary dot products, then thresholds."""

from __future__ import annotations

import numpy as np

from ..checks import ParameterValueError
from .binary import binary_dot, decode, integer_dot, multithreshold, multithreshold_float

__all__ = ["binary_dense", "binary_dense_dot", "binary_dense_float"]


def binary_dense_dot(plan, x) -> np.ndarray:
    """The dot products of inputs ``x`` with every weight row of ``plan``, int64 of shape
    ``(..., n_out)`` (codes of ``plan.dot_format``).

    ``plan`` is a :class:`~hwnn.plans.binary_dense.BinaryDensePlan` or anything with its
    attributes (``weights``, ``in_encoding``, ``w_encoding``, ``in_format``). ``x`` has shape
    ``(..., n_in)``: bits (0/1) for one-bit inputs, :func:`hwnn.ref.binary.binary_dot`; codes of
    ``plan.in_format`` for integer inputs, :func:`hwnn.ref.binary.integer_dot`.

    Raises
    ------
    TypeError, ValueError
        ``x`` is not an array of bits (codes) with ``n_in`` on its last axis.
    """
    x, n_in = np.asarray(x), plan.weights.shape[1]
    if x.ndim == 0 or x.shape[-1] != n_in:
        raise ParameterValueError("x", f"x must have n_in = {n_in} values on its last axis, "
                                       f"not shape {x.shape}")
    if plan.in_encoding == "integer":
        return integer_dot(x, plan.weights, plan.in_format, w_encoding=plan.w_encoding)
    return binary_dot(x, plan.weights, a_encoding=plan.in_encoding, w_encoding=plan.w_encoding)


def binary_dense(plan, x) -> np.ndarray:
    """The layer's output codes for inputs ``x``: :func:`binary_dense_dot`, then
    :func:`hwnn.ref.binary.multithreshold` with ``plan.thresholds`` when the plan has them.
    int64 of shape ``(..., n_out)``; errors as :func:`binary_dense_dot`."""
    dot = binary_dense_dot(plan, x)
    if plan.thresholds is None:
        return dot
    return multithreshold(plan.thresholds, dot)


def binary_dense_float(plan, x) -> np.ndarray:
    """The float64 model of the layer for real inputs ``x`` (shape ``(..., n_in)``): the dot
    products of the inputs' values (one-bit inputs: a real value at or above 0.5 is bit 1,
    decoded in ``plan.in_encoding``; integer inputs: the real values themselves, unquantized)
    with the decoded weights, then the thresholds compared in real values
    (:func:`hwnn.ref.binary.multithreshold_float`), the output codes given as real values. A
    layer with one-bit inputs rounds nothing, so its model equals :func:`binary_dense` on those
    bits."""
    x = np.asarray(x, dtype=np.float64)
    if plan.in_encoding != "integer":
        x = decode((x >= 0.5).astype(np.int64), plan.in_encoding).astype(np.float64)
    dot = x @ decode(plan.weights, plan.w_encoding).T.astype(np.float64)
    if plan.thresholds is None:
        return dot
    return multithreshold_float(plan.thresholds, dot)
