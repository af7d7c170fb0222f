"""The polynomial reference (hwnn.ref.poly) against an independent evaluation, in Python
integers, of the semantics hwnn.plans.poly states, on every input code; and the error each plan
states against float64 computed here."""

import math

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ
from hwnn.plans.functions import Symmetry
from hwnn.plans.poly import plan_poly, plan_taylor
from hwnn.ref.activation import activation
from hwnn.ref.poly import horner, poly


def by_hand(plan, q: int) -> int:
    """The output code for input code ``q``, step by step as hwnn.plans.poly's docstring says,
    in Python integers (``>>`` on a Python int is a floor, whatever the sign)."""
    out = plan.out_format
    c, negative = (abs(q), q < 0) if plan.symmetric else (q, False)
    j = max(i for i, start in enumerate(plan.starts) if start <= c)
    d = c - plan.origins[j]
    acc = plan.coefficients[j][plan.degree]
    for k in reversed(range(plan.degree)):
        acc = ((acc * d) >> plan.shifts[k]) + plan.coefficients[j][k]
    y = min(max(acc >> plan.shift, out.min_int), out.max_int)
    if negative:
        y = -y if plan.function.symmetry is Symmetry.ODD else (1 << out.f) - y
        y = min(max(y, out.min_int), out.max_int)
    return y


PLANS = {
    "tanh poly d1 uniform": lambda: plan_poly("tanh", SQ(4, 6), SQ(1, 7), segments=8, degree=1),
    "tanh poly d2 uniform": lambda: plan_poly("tanh", SQ(4, 6), SQ(1, 7), segments=8),
    "tanh poly d3 optimal": lambda: plan_poly("tanh", SQ(4, 6), SQ(1, 7), segments=6, degree=3,
                                              breakpoints="optimal"),
    "tanh poly d2 unfolded": lambda: plan_poly("tanh", SQ(4, 6), SQ(1, 7), segments=5,
                                               symmetric=False, breakpoints="optimal"),
    "sigmoid poly d2 uniform": lambda: plan_poly("sigmoid", SQ(3, 5), UQ(0, 8), segments=4),
    "sigmoid poly d3 ranged": lambda: plan_poly("sigmoid", SQ(3, 5), UQ(0, 8), segments=4,
                                                degree=3, input_range=(-2, 2)),
    "sigmoid poly d1 lut": lambda: plan_poly("sigmoid", SQ(3, 5), UQ(0, 8), segments=16,
                                             degree=1, multipliers="lut"),
    "tanh taylor 3": lambda: plan_taylor("tanh", SQ(4, 6), SQ(1, 7)),
    "tanh taylor 7": lambda: plan_taylor("tanh", SQ(4, 6), SQ(1, 7), order=7),
    "sigmoid taylor 5 at 1": lambda: plan_taylor("sigmoid", SQ(3, 5), UQ(0, 8), order=5,
                                                 centre=1.0),
    "sigmoid taylor 3 ranged": lambda: plan_taylor("sigmoid", SQ(3, 5), UQ(0, 8),
                                                   input_range=(-1, 1.5), symmetric=False),
}


@pytest.fixture(scope="module", params=sorted(PLANS))
def plan(request):
    return PLANS[request.param]()


def test_the_reference_is_the_stated_semantics_on_every_code(plan):
    codes = plan.in_format.codes()
    want = np.array([by_hand(plan, int(q)) for q in codes])
    got = poly(plan, codes)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    # Any shape; and the activation dispatch is the same function.
    assert np.array_equal(poly(plan, codes.reshape(2, -1)), want.reshape(2, -1))
    assert np.array_equal(activation(plan, codes), want)


def test_horner_steps_are_the_intermediates(plan):
    low, high = plan.domain
    c = np.arange(low, high + 1)
    steps = horner(plan, c)
    assert len(steps) == 2 + 2 * plan.degree
    for n, value in enumerate(c.tolist()):
        j = max(i for i, start in enumerate(plan.starts) if start <= value)
        d = value - plan.origins[j]
        acc = plan.coefficients[j][plan.degree]
        want = [d, acc]
        for k in reversed(range(plan.degree)):
            product = acc * d
            acc = (product >> plan.shifts[k]) + plan.coefficients[j][k]
            want += [product, acc]
        assert [int(s[n]) for s in steps] == want
    # The stated ranges and widths hold every intermediate.
    cost = plan.cost()
    for bits, values in zip(cost["product_bits"], steps[2::2]):
        assert -(1 << (bits - 1)) <= values.min() and values.max() < 1 << (bits - 1)
    for bits, values in zip(cost["accumulator_bits"], steps[3::2]):
        assert -(1 << (bits - 1)) <= values.min() and values.max() < 1 << (bits - 1)


def judged(plan, outputs=None):
    """``(x, error, faithful)`` of the plan's outputs (default: the reference's) on every
    input code, by this test's own float64: ``error = |y - f(x)|``; faithful when every output
    is within one ulp of the exact value clipped to the output range, with float64's own
    rounding of tanh/σ (a few of its ulps) allowed for."""
    codes = plan.in_format.codes()
    x = codes / 2.0 ** plan.in_format.f
    exact = plan.function(x)
    outputs = poly(plan, codes) if outputs is None else outputs
    y = outputs / 2.0 ** plan.out_format.f
    out, ulp = plan.out_format, 2.0 ** -plan.out_format.f
    target = np.clip(exact, out.min_int * ulp, out.max_int * ulp)
    faithful = bool(np.all(np.abs(y - target) < ulp + 4 * 2.0 ** -52 * np.abs(exact)))
    return x, np.abs(y - exact), faithful


def test_the_stated_error_is_float64s_and_tight(plan):
    codes = plan.in_format.codes()
    x, error, faithful = judged(plan, np.array([by_hand(plan, int(q)) for q in codes]))
    ulp = 2.0 ** -plan.out_format.f
    assert plan.error.max_abs == error.max()
    assert plan.error.max_ulp == error.max() / ulp
    assert plan.error.mean_abs == error.mean() and plan.error.codes == codes.size
    # Tight: attained at the code it names (the first such).
    at = int(np.argmax(error))
    assert plan.error.at_code == codes[at] and plan.error.at_input == x[at]
    assert error[at] == plan.error.max_abs
    assert plan.error.faithful == faithful


def test_faithful_is_judged_against_the_saturated_value():
    # tanh into SQ(1,7): 1.0 is not a code; a faithful plan gives 127/128 where tanh is ~1.
    plan = plan_poly("tanh", SQ(4, 6), SQ(1, 7), segments=8)
    top = poly(plan, np.array([SQ(4, 6).max_int]))[0]
    assert top == 127 and plan.error.max_ulp < 1 and plan.error.faithful


def test_reference_errors():
    plan = PLANS["tanh poly d2 uniform"]()
    with pytest.raises(ParameterTypeError, match="^plan must be a polynomial plan") as info:
        poly(object(), np.array([0]))
    assert info.value.parameter == "plan"
    with pytest.raises(ParameterTypeError, match=r"^inputs must be integer codes of SQ\(4, 6\), "
                                                 r"not dtype float64$") as info:
        poly(plan, np.array([0.5]))
    assert info.value.parameter == "q"
    with pytest.raises(ParameterValueError, match=r"^inputs hold the code 512, outside "
                                                  r"SQ\(4, 6\) \[-512, 511\]$") as info:
        poly(plan, np.array([SQ(4, 6).max_int + 1]))
    assert info.value.parameter == "q"


def test_the_plans_here_are_both_faithful_and_not():
    # So the faithful check above is exercised both ways.
    assert {PLANS[name]().error.faithful for name in PLANS} == {True, False}


def test_python_floor_matches_numpy_on_negative_products():
    # The by-hand evaluation relies on >> being a floor in both; pinned on negatives.
    assert (-7 >> 2) == int(np.int64(-7) >> np.int64(2)) == math.floor(-7 / 4) == -2
