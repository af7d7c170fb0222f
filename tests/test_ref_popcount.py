import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.ref.popcount import (bipolar_dot, bipolar_width, bits_array, popcount, popcount_width,
                               xnor_popcount)


def test_popcount_counts_ones_along_the_last_axis():
    bits = np.array([[0, 0, 0], [1, 0, 1], [1, 1, 1]])
    np.testing.assert_array_equal(popcount(bits), [0, 2, 3])
    np.testing.assert_array_equal(popcount(np.ones((2, 3, 1024), dtype=bool)),
                                  np.full((2, 3), 1024))


def test_bipolar_dot_is_the_plus_minus_one_dot_product():
    # FINN's encoding: bit 1 is +1, bit 0 is -1.
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 64, 513):
        a = rng.integers(0, 2, (50, n))
        w = rng.integers(0, 2, n)
        expected = (2 * a - 1) @ (2 * w - 1)
        np.testing.assert_array_equal(bipolar_dot(a, w), expected)
        np.testing.assert_array_equal(xnor_popcount(a, w), (a == w).sum(axis=1))


def test_corners_of_the_bipolar_dot():
    n = 9
    ones, zeros = np.ones(n, np.int64), np.zeros(n, np.int64)
    assert bipolar_dot(ones, ones) == n and bipolar_dot(zeros, zeros) == n
    assert bipolar_dot(ones, zeros) == -n
    assert xnor_popcount(ones, zeros) == 0


def test_widths_hold_the_extremes_exactly():
    for n in (1, 2, 3, 4, 7, 8, 255, 256, 1024):
        assert 2 ** popcount_width(n) > n >= 2 ** (popcount_width(n) - 1)
        assert -(2 ** (bipolar_width(n) - 1)) <= -n and n < 2 ** (bipolar_width(n) - 1)
        assert n >= 2 ** (bipolar_width(n) - 2)  # one bit fewer would not hold n


def test_bad_bits_are_rejected_with_their_name():
    cases = [
        (lambda: popcount(np.array([0.0, 1.0])), ParameterTypeError, "bits",
         "bits must be an array of 0/1 integers or bools, not an array of dtype float64"),
        (lambda: popcount(np.array([0, 2])), ParameterValueError, "bits",
         "bits must hold only 0 and 1, not 2"),
        (lambda: popcount(np.array(1)), ParameterValueError, "bits",
         "bits must have a non-empty last axis (the bits), not shape ()"),
        (lambda: xnor_popcount([0, 1], [1, -1]), ParameterValueError, "w",
         "w must hold only 0 and 1, not -1"),
        (lambda: bipolar_dot([0, 1, 1], [1, 0]), ParameterValueError, "w",
         "w must have as many bits as a (3), not 2"),
        (lambda: bits_array(np.zeros((3, 0), np.int64), "a"), ParameterValueError, "a",
         "a must have a non-empty last axis (the bits), not shape (3, 0)"),
    ]
    for call, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            call()
        assert info.value.parameter == parameter
