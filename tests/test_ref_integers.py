from fractions import Fraction

import numpy as np
import pytest

from hwnn.fixed import SQ, UQ, Rounding
from hwnn.ref.integers import Symmetry, divide_rounded, fold, unfold
from oracle import round_rational


def test_divide_rounded_matches_fractions():
    n = np.arange(-50, 51)
    for rounding in Rounding:
        want = [round_rational(Fraction(int(v), 6), rounding.value) for v in n]
        np.testing.assert_array_equal(divide_rounded(n, 6, rounding), want)


def test_fold_and_unfold():
    fmt = SQ(3, 0)
    magnitude, negative = fold(fmt.codes(), fmt)
    np.testing.assert_array_equal(magnitude, [4, 3, 2, 1, 0, 1, 2, 3])
    y = unfold(np.array([3, 2]), np.array([True, False]), Symmetry.ODD, SQ(3, 0))
    np.testing.assert_array_equal(y, [-3, 2])
    y = unfold(np.array([200, 0, 10]), np.array([True, True, False]), Symmetry.COMPLEMENT,
               UQ(0, 8))
    np.testing.assert_array_equal(y, [56, 255, 10])  # 256 - 0 saturates at 255


def test_unfold_checks_the_symmetry():
    y, negative = np.array([3]), np.array([True])
    np.testing.assert_array_equal(unfold(y, negative, "odd", SQ(3, 0)), [-3])
    with pytest.raises(TypeError) as info:
        unfold(y, negative, 3, SQ(3, 0))
    assert info.value.parameter == "symmetry" and str(info.value) == (
        "symmetry must be one of odd | complement (or a member of Symmetry), not 3")
