"""The elementwise reference against exact rational arithmetic (tests/oracle.py), no tolerances."""

import itertools
import re
from fractions import Fraction

import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.elementwise import OPS, plan_elementwise
from hwnn.ref.elementwise import elementwise, elementwise_exact
from oracle import fit, round_rational

ROUNDINGS = ("trunc", "half_up", "half_even")
OVERFLOWS = ("wrap", "sat")

# Operand pairs with every sign combination and unequal fraction bits (both alignments).
PAIRS = [(SQ(2, 2), SQ(2, 2)), (UQ(2, 2), SQ(1, 3)), (SQ(3, 0), UQ(2, 1)), (UQ(2, 1), UQ(3, -1))]
# Output formats that round (fewer fraction bits), saturate or wrap (fewer integer bits), widen
# (a left shift), and change the sign.
OUTS = [SQ(2, 1), UQ(1, 1), SQ(4, 6), SQ(3, -1)]


def value(code, fmt):
    return Fraction(int(code), 2 ** fmt.f) if fmt.f >= 0 else Fraction(int(code) * 2 ** -fmt.f)


def exact_value(op, x, y):
    return x * y if op == "mul" else x + y if op == "add" else x - y


def every_pair(a_format, b_format):
    a, b = np.meshgrid(a_format.codes(), b_format.codes(), indexing="ij")
    return a.ravel(), b.ravel()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("a_format, b_format", PAIRS)
def test_exact_result_is_the_rational_result(op, a_format, b_format):
    plan = plan_elementwise(op, a_format, b_format, SQ(2, 2))
    a, b = every_pair(a_format, b_format)
    full = elementwise_exact(plan, a, b)
    assert full.dtype == np.int64
    expected = [exact_value(op, value(x, a_format), value(y, b_format)) for x, y in zip(a, b)]
    assert [value(q, plan.full_format) for q in full] == expected


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("a_format, b_format", PAIRS)
@pytest.mark.parametrize("out_format", OUTS)
def test_output_is_the_rounded_and_fitted_rational_result(op, a_format, b_format, out_format):
    a, b = every_pair(a_format, b_format)
    for rounding, overflow in itertools.product(ROUNDINGS, OVERFLOWS):
        plan = plan_elementwise(op, a_format, b_format, out_format, rounding=rounding,
                                overflow=overflow)
        expected = [fit(round_rational(exact_value(op, value(x, a_format), value(y, b_format))
                                       / value(1, out_format), rounding),
                        out_format.signed, out_format.width, overflow) for x, y in zip(a, b)]
        np.testing.assert_array_equal(elementwise(plan, a, b), expected)


def test_every_mode_changes_some_output():
    """The formats above reach every rounding and overflow case (else the test above is weak)."""
    a, b = every_pair(SQ(2, 2), SQ(2, 2))
    results = {(r, o): tuple(elementwise(plan_elementwise("mul", SQ(2, 2), SQ(2, 2), SQ(2, 1),
                                                          rounding=r, overflow=o), a, b))
               for r, o in itertools.product(ROUNDINGS, OVERFLOWS)}
    assert len(set(results.values())) == len(results)


def test_constant_applies_per_lane():
    plan = plan_elementwise("sub", SQ(2, 2), UQ(2, 0), SQ(4, 2), lanes=3, constant=[0, 1, 3])
    a = np.array([[5, -8, 7], [0, 0, 0]])
    np.testing.assert_array_equal(elementwise_exact(plan, a), [[5, -12, -5], [0, -4, -12]])
    np.testing.assert_array_equal(elementwise(plan, a), [[5, -12, -5], [0, -4, -12]])
    # One lane: the constant applies to any shape, scalars included.
    one = plan_elementwise("mul", SQ(2, 2), SQ(2, 2), SQ(4, 4), constant=[-3])
    np.testing.assert_array_equal(elementwise(one, [[1, 2], [3, -8]]), [[-3, -6], [-9, 24]])
    assert elementwise(one, 2) == -6


def test_vectors_of_lanes():
    plan = plan_elementwise("add", SQ(2, 2), SQ(2, 2), SQ(3, 2), lanes=2)
    a = np.array([[7, -8], [1, 2], [3, 4]])
    b = np.array([[7, -8], [-1, 0], [0, 1]])
    np.testing.assert_array_equal(elementwise(plan, a, b), a + b)
    np.testing.assert_array_equal(elementwise(plan, a[0], b[0]), [14, -16])


def test_matches_the_hardware_width_at_the_int64_edge():
    plan = plan_elementwise("mul", SQ(31, 0), SQ(31, 0), SQ(62, 0))
    low = SQ(31, 0).min_int
    assert elementwise(plan, [low], [low])[0] == 2 ** 60
    widest = plan_elementwise("add", SQ(2, 0), SQ(2, 0), SQ(2, 60))
    assert elementwise(widest, [-2], [-2])[0] == -(2 ** 61)


@pytest.mark.parametrize("plan_args, a, b, error, message", [
    (dict(lanes=2), [1, 2], None, TypeError, "b is required for a plan without a constant b"),
    (dict(lanes=2, constant=[1, 1]), [1, 2], [1, 2], TypeError,
     "b must be None for a plan with a constant b"),
    (dict(lanes=2), [1, 2], [[1, 2]], ValueError, "b must have the shape of a, (2,), not (1, 2)"),
    (dict(lanes=2), [1, 2, 3], [1, 2, 3], ValueError,
     "a must have shape (2,) or (n, 2) for 2 lanes, not (3,)"),
    (dict(lanes=2), 1, 1, ValueError, "a must have shape (2,) or (n, 2) for 2 lanes, not ()"),
    (dict(), [8], [0], ValueError, "inputs hold the code 8, outside SQ(2, 2) [-8, 7]"),
    (dict(), [0], [0.5], TypeError, "inputs must be integer codes of SQ(2, 2), not dtype float64"),
])
def test_input_errors(plan_args, a, b, error, message):
    plan = plan_elementwise("mul", SQ(2, 2), SQ(2, 2), SQ(2, 2), **plan_args)
    with pytest.raises(error, match=re.escape(message) + "$"):
        elementwise(plan, a, b)
