from fractions import Fraction

import numpy as np
import pytest

from hwnn.fixed import SQ, UQ, Rounding
from hwnn.plans.exact import divide_rounded, plan_exact, reciprocal_of_three
from hwnn.ref.exact import exact
from oracle import fit, round_rational


def exact_rational(name, x, shift):
    """The exact function value as a Fraction (independent of hwnn)."""
    if name == "relu":
        return max(x, Fraction(0))
    if name == "relu6":
        return min(max(x, Fraction(0)), Fraction(6))
    if name == "hard_tanh":
        return min(max(x, Fraction(-1)), Fraction(1))
    if name == "leaky_relu":
        return x if x >= 0 else x / 2 ** shift
    if name == "hard_sigmoid":
        return min(max(x + 3, Fraction(0)), Fraction(6)) / 6
    raise AssertionError(name)


CASES = [
    ("relu", SQ(4, 4), UQ(3, 3), "half_even"), ("relu", UQ(4, 4), UQ(5, 6), "trunc"),
    ("relu6", SQ(5, 3), UQ(3, 2), "half_up"), ("hard_tanh", SQ(3, 5), SQ(2, 3), "half_even"),
    ("leaky_relu", SQ(4, 4), SQ(4, 4), "half_even"), ("leaky_relu", SQ(4, 4), SQ(3, 8), "trunc"),
    ("hard_sigmoid", SQ(4, 4), UQ(1, 8), "half_even"),
    ("hard_sigmoid", SQ(4, 6), UQ(0, 4), "trunc"), ("hard_sigmoid", SQ(3, 7), UQ(1, 5), "half_up"),
]


@pytest.mark.parametrize("name, fin, fout, rounding", CASES)
def test_exact_reference_equals_rational_oracle_on_every_code(name, fin, fout, rounding):
    plan = plan_exact(name, fin, fout, rounding=rounding, leaky_shift=3)
    codes = fin.codes()
    want = [fit(round_rational(exact_rational(name, Fraction(int(q), 2 ** fin.f), 3)
                               * 2 ** fout.f, rounding), fout.signed, fout.width, "sat")
            for q in codes]
    np.testing.assert_array_equal(exact(plan, codes), want)


def test_divide_rounded_matches_fractions():
    n = np.arange(-50, 51)
    for rounding in Rounding:
        want = [round_rational(Fraction(int(v), 6), rounding.value) for v in n]
        np.testing.assert_array_equal(divide_rounded(n, 6, rounding), want)


def test_reciprocal_of_three_is_exact_on_its_range():
    m, s = reciprocal_of_three(100000)
    n = np.arange(100001)
    np.testing.assert_array_equal((n * m) >> s, n // 3)


@pytest.mark.parametrize("options, error, message", [
    (dict(function="tanh"), ValueError, "tanh is approximated"),
    (dict(in_format=SQ(6, -1)), ValueError, "fraction bits >= 0"),
    (dict(leaky_shift=0), ValueError, "leaky_shift must be between 1 and 16"),
    (dict(leaky_shift=1.5), TypeError, "leaky_shift must be an integer, not 1.5"),
    (dict(function="leaky_relu", out_format=UQ(4, 4)), ValueError,
     r"leaky_relu has negative values, so out_format must be signed"),
    (dict(rounding="nearest"), ValueError, "rounding must be one of"),
])
def test_exact_parameter_errors(options, error, message):
    args = dict(function="relu", in_format=SQ(4, 4), out_format=UQ(4, 4))
    args.update(options)
    with pytest.raises(error, match=message):
        plan_exact(args.pop("function"), args.pop("in_format"), args.pop("out_format"), **args)
