from fractions import Fraction

import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.exact import plan_exact
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
