"""Canonical signed digits (CSD, the non-adjacent form) of integers, and the CSD adder graph.

Every integer ``n`` has exactly one representation ``n = Σ sign·2**shift`` with signs ±1 and no
two nonzero digits in adjacent positions; among all signed-binary representations it has the
fewest nonzero digits. Multiplying by ``n`` with shifts and adders therefore costs
``csd_adders(n)`` = (nonzero digits − 1) two-operand adders/subtractors without any sharing, the
baseline that the other builders of :mod:`hwnn.plans.shift_add` improve on. :func:`build_csd`
is that baseline as an :class:`~hwnn.plans.shift_add.adder_graph.AdderGraph`.
"""

from __future__ import annotations

import numpy as np

from ...checks import ParameterTypeError
from .adder_graph import AdderGraph, GraphBuilder, weight_and_ranges

__all__ = ["build_csd", "csd", "csd_adders", "odd_part"]


def _as_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterTypeError(name, f"{name} must be an integer, not {value!r}")
    return int(value)


def csd(n) -> tuple[tuple[int, int], ...]:
    """The canonical signed digits of ``n`` as ``(sign, shift)`` pairs, ascending shift.

    ``sum(sign << shift for sign, shift in csd(n)) == n``, signs are ±1, shifts differ by at
    least 2, and the number of digits is the minimum over all signed-binary representations.
    ``csd(0) == ()``. Any Python or numpy integer, of any size or sign.

    Raises
    ------
    TypeError
        ``n`` is not an integer (``bool`` and floats are rejected).
    """
    n = _as_int(n, "n")
    digits = []
    shift = 0
    while n:
        if n & 1:
            # n ≡ 1 (mod 4): digit +1 leaves a multiple of 4; n ≡ 3: digit −1 does. Either way
            # the next position is zero, which is what makes the form non-adjacent.
            digit = 2 - (n & 3)
            digits.append((digit, shift))
            n -= digit
        n >>= 1
        shift += 1
    return tuple(digits)


def csd_adders(n) -> int:
    """Adders/subtractors that multiply by ``n`` through its CSD digits: nonzero digits − 1.

    0 for 0 and for ± powers of two (a shift, possibly negated).

    Raises
    ------
    TypeError
        ``n`` is not an integer.
    """
    return max(len(csd(n)) - 1, 0)


def odd_part(n) -> tuple[int, int]:
    """``(m, s)`` with ``n == m << s`` and ``m`` odd (``(0, 0)`` for 0); the sign stays on ``m``.

    Raises
    ------
    TypeError
        ``n`` is not an integer.
    """
    n = _as_int(n, "n")
    if n == 0:
        return 0, 0
    s = (n & -n).bit_length() - 1
    return n >> s, s


def build_csd(weight, in_ranges) -> AdderGraph:
    """No sharing: output ``j`` sums ``±(x_i << k)`` over the CSD digits of its weights.

    At most (nonzero digits of the row − 1) adders per output, as a balanced tree; zero
    weights cost nothing. The textbook baseline: no subexpression is searched for, and a
    partial sum that another tree reaches by other operands is built again; only an adder
    identical to an earlier one (same operands and shifts) is not, as synthesis would merge
    the two anyway.
    """
    rows, ranges = weight_and_ranges(weight, in_ranges)
    builder = GraphBuilder(len(rows[0]), ranges, share=False)
    outputs = []
    for row in rows:
        terms = [(i, sign, shift) for i, w in enumerate(row) for sign, shift in csd(w)]
        outputs.append(builder.sum(terms))
    return builder.finish(outputs, "csd")
