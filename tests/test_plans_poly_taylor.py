"""Taylor plans: the series hwnn.plans.series computes against exact arithmetic (Fractions and
60-digit Decimals), the plan's coefficients against the series, the input clamp, and every
error of plan_taylor."""

import math
import re
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ
from hwnn.plans.functions import FUNCTIONS, Function, Symmetry
from hwnn.plans.poly import MAX_ORDER, plan_taylor
from hwnn.plans.series import sigmoid_series, tanh_series
from hwnn.ref.poly import poly

# The series at 0: tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835,
# σ(x) = 1/2 + x/4 - x^3/48 + x^5/480 - 17x^7/80640 + 31x^9/1451520.
F = Fraction
TANH_AT_0 = [F(0), F(1), F(0), F(-1, 3), F(0), F(2, 15), F(0), F(-17, 315), F(0), F(62, 2835)]
SIGMOID_AT_0 = [F(1, 2), F(1, 4), F(0), F(-1, 48), F(0), F(1, 480), F(0), F(-17, 80640), F(0),
                F(31, 1451520)]


def derivative_polynomials(kind, order):
    """``P_k`` with ``f^(k)(x) = P_k(f(x))`` (Fraction coefficients, lowest power first), from
    ``tanh' = 1 - tanh^2`` and ``σ' = σ - σ^2``: ``P_(k+1) = P_k' · P_1``."""
    first = [F(1), F(0), F(-1)] if kind == "tanh" else [F(0), F(1), F(-1)]
    p, out = [F(0), F(1)], []
    for _ in range(order + 1):
        out.append(p)
        dp = [i * c for i, c in enumerate(p)][1:] or [F(0)]
        nxt = [F(0)] * (len(dp) + len(first) - 1)
        for i, a in enumerate(dp):
            for j, b in enumerate(first):
                nxt[i + j] += a * b
        p = nxt
    return out


def exact_series(kind, x0, order):
    """The Taylor coefficients ``f^(k)(x0) / k!`` to 60 digits (Decimal)."""
    with localcontext() as ctx:
        ctx.prec = 60
        x = Decimal(x0)
        if kind == "tanh":
            e = (2 * x).exp()
            u = (e - 1) / (e + 1)
        else:
            u = 1 / (1 + (-x).exp())
        result = []
        for k, p in enumerate(derivative_polynomials(kind, order)):
            value, power = Decimal(0), Decimal(1)
            for c in p:
                value += Decimal(c.numerator) / Decimal(c.denominator) * power
                power *= u
            result.append(value / math.factorial(k))
        return result


# float64 series arithmetic: each coefficient is a short sum of products of terms no larger
# than the largest coefficient (at most 1 for σ and tanh here), each rounded once or twice;
# 2**-48 leaves a factor of ~16 over what is seen (2.4e-16 at worst, orders 0..9 at centres
# -6..3).
BOUND = 2.0 ** -48


def test_the_known_series_at_zero():
    tanh, sigmoid = tanh_series(0.0, 9), sigmoid_series(0.0, 9)
    assert list(tanh[0::2]) == [0.0] * 5                 # odd: exactly 0
    assert (sigmoid[0], sigmoid[1]) == (0.5, 0.25)       # exact in binary
    for got, want in ((tanh, TANH_AT_0), (sigmoid, SIGMOID_AT_0)):
        assert len(got) == 10
        for a, w in zip(got, want):
            assert abs(F(float(a)) - w) <= BOUND
    # The derivative polynomials give the same rationals (so they can judge other centres).
    for kind, want in (("tanh", TANH_AT_0), ("sigmoid", SIGMOID_AT_0)):
        u0 = F(0) if kind == "tanh" else F(1, 2)
        got = [sum(c * u0 ** i for i, c in enumerate(p)) / math.factorial(k)
               for k, p in enumerate(derivative_polynomials(kind, 9))]
        assert got == want


@pytest.mark.parametrize("kind, series", [("tanh", tanh_series), ("sigmoid", sigmoid_series)])
@pytest.mark.parametrize("x0", [0.5, -1.25, 3.0, -6.0])
def test_the_series_at_other_centres(kind, series, x0):
    got = series(x0, MAX_ORDER)
    want = exact_series(kind, x0, MAX_ORDER)
    assert len(got) == MAX_ORDER + 1
    for a, w in zip(got, want):
        assert abs(Decimal(float(a)) - w) <= Decimal(BOUND)


@pytest.mark.parametrize("function, formats, options", [
    ("tanh", (SQ(4, 6), SQ(1, 7)), dict(order=5)),
    ("tanh", (SQ(4, 6), SQ(1, 7)), dict(order=5, centre=0.5)),
    ("sigmoid", (SQ(3, 5), UQ(0, 8)), dict(order=3, centre=-1.0, multipliers="lut")),
])
def test_the_plan_is_the_series_rounded_and_clamped(function, formats, options):
    plan = plan_taylor(function, *formats, **options)
    centre = options.get("centre", 0.0)
    assert plan.method == "taylor" and plan.order == options["order"] and plan.segments == 1
    assert plan.centre == centre and plan.multipliers == options.get("multipliers", "dsp")
    in_format, out_format = formats
    (j,) = [i for i, row in enumerate(plan.coefficients) if any(row[1:])]
    assert plan.origins[j] == centre * 2 ** in_format.f
    # acc_k is in output codes times 2**G_k: G_0 = shift, G_(k+1) = G_k + shifts[k].
    scales = [plan.shift]
    for s in plan.shifts:
        scales.append(scales[-1] + s)
    want = exact_series(function, centre, plan.order)
    for k in range(1, plan.order + 1):
        real = float(want[k]) * 2.0 ** (k * -in_format.f + out_format.f + scales[k])
        assert abs(plan.coefficients[j][k] - real) <= 0.5 + 1e-9
    # Outside the range the input is clamped: the outputs there are those at its ends.
    codes = in_format.codes()
    y = poly(plan, codes)
    low_code, high_code = plan.input_range[0] * 2 ** in_format.f, \
        plan.input_range[1] * 2 ** in_format.f
    below, above = codes < low_code, codes >= high_code
    assert below.any() or above.any()
    if below.any():
        assert np.all(y[below] == y[codes == low_code])
    if above.any():
        assert np.all(y[above] == y[codes == high_code - 1])


def test_a_function_without_a_series(monkeypatch):
    plain = Function("plain_tanh", np.tanh, smooth=True, symmetry=Symmetry.ODD)
    monkeypatch.setitem(FUNCTIONS, "plain_tanh", plain)    # restored after the test
    for function in (plain, "plain_tanh"):
        with pytest.raises(ParameterValueError, match=re.escape(
                "plain_tanh has no Taylor series in hwnn (Function.series); use method "
                "'poly'")) as info:
            plan_taylor(function, SQ(4, 6), SQ(1, 7))
        assert info.value.parameter == "function"


@pytest.mark.parametrize("options, exc, parameter, message", [
    (dict(centre=0.01), ParameterValueError, "centre",
     "centre must be a value of SQ(4, 6) within the domain [-8, 7.98438], not 0.01"),
    (dict(centre=20.0), ParameterValueError, "centre",
     "centre must be a value of SQ(4, 6) within the domain [-8, 7.98438], not 20.0"),
    (dict(centre=1.0, input_range=(-1, 0.5)), ParameterValueError, "centre",
     "centre 1 must lie in input_range (-1, 0.5)"),
    (dict(centre="0"), ParameterTypeError, "centre", "centre must be a finite number, not '0'"),
    (dict(centre=float("nan")), ParameterValueError, "centre",
     "centre must be a finite number, not nan"),
    (dict(order=0), ParameterValueError, "order",
     "order must be an integer between 1 and 9, not 0"),
    (dict(order=10), ParameterValueError, "order",
     "order must be an integer between 1 and 9, not 10"),
    (dict(order=2.0), ParameterTypeError, "order",
     "order must be an integer between 1 and 9, not 2.0"),
    (dict(multipliers="x"), ParameterValueError, "multipliers",
     "multipliers must be one of dsp | lut, not 'x'"),
])
def test_plan_taylor_errors(options, exc, parameter, message):
    with pytest.raises(exc, match="^" + re.escape(message) + "$") as info:
        plan_taylor("tanh", SQ(4, 6), SQ(1, 7), **options)
    assert info.value.parameter == parameter


def test_the_folded_domain_bounds_the_centre():
    # A symmetric plan folds the input: a negative centre is refused unless symmetric=False.
    with pytest.raises(ParameterValueError) as info:
        plan_taylor("tanh", SQ(4, 6), SQ(1, 7), centre=-1.0, symmetric=True)
    assert info.value.parameter == "centre" and "folded" in str(info.value)
    assert not plan_taylor("tanh", SQ(4, 6), SQ(1, 7), centre=-1.0).symmetric
