"""Taylor coefficients of the smooth activation functions, by power-series arithmetic.

``sigmoid_series(x0, order)`` and ``tanh_series(x0, order)`` return ``a_0 .. a_order`` with
``f(x0 + h) = sum(a_k * h**k) + O(h**(order + 1))``, in float64. They are computed from the
series of ``exp`` and a series reciprocal, so they are accurate to a few ulps of float64 at any
centre (no numerical differentiation, whose error grows with the order).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sigmoid_series", "tanh_series", "reciprocal_series"]


def reciprocal_series(s: np.ndarray) -> np.ndarray:
    """The series of ``1 / s(h)`` to the same order (``s[0] != 0``)."""
    r = np.zeros(len(s))
    r[0] = 1.0 / s[0]
    for n in range(1, len(s)):
        r[n] = -r[0] * sum(s[k] * r[n - k] for k in range(1, n + 1))
    return r


def sigmoid_series(x0: float, order: int) -> np.ndarray:
    """Taylor coefficients of ``1 / (1 + exp(-x))`` around ``x0``."""
    if x0 < 0:
        # sigma(x) = 1 - sigma(-x): expand where exp(-x) cannot overflow, then mirror h.
        mirrored = -sigmoid_series(-x0, order) * (-1.0) ** np.arange(order + 1)
        mirrored[0] += 1.0
        return mirrored
    k = np.arange(order + 1)
    # exp(-(x0 + h)) = exp(-x0) * sum((-h)**k / k!)
    e = math.exp(-x0) * (-1.0) ** k / np.array([math.factorial(int(n)) for n in k])
    one_plus = e.copy()
    one_plus[0] += 1.0
    return reciprocal_series(one_plus)


def tanh_series(x0: float, order: int) -> np.ndarray:
    """Taylor coefficients of ``tanh`` around ``x0`` (``tanh(x) = 2 sigma(2x) - 1``)."""
    a = 2.0 * sigmoid_series(2.0 * x0, order) * 2.0 ** np.arange(order + 1)
    a[0] -= 1.0
    if x0 == 0:
        a[0::2] = 0.0     # odd: the even coefficients vanish exactly
    return a
