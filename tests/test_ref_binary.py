import itertools
import re
from types import SimpleNamespace

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ
from hwnn.ref.binary import (batchnorm_sign, binary_dot, decode, dot_range, from_bipolar,
                             integer_dot, multithreshold, to_bipolar)

ENCODING_PAIRS = list(itertools.product(("binary", "bipolar"), repeat=2))


def test_bipolar_encoding_maps_one_to_plus_one_and_back():
    bits = np.array([[0, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(to_bipolar(bits), [[-1, 1, 1], [1, -1, -1]])
    np.testing.assert_array_equal(from_bipolar(to_bipolar(bits)), bits)
    np.testing.assert_array_equal(to_bipolar(np.array([True, False])), [1, -1])
    np.testing.assert_array_equal(decode(bits, "binary"), bits)
    np.testing.assert_array_equal(decode(bits, "bipolar"), to_bipolar(bits))


@pytest.mark.parametrize("a_encoding, w_encoding", ENCODING_PAIRS)
@pytest.mark.parametrize("n", [1, 7, 64, 257])
def test_binary_dot_equals_the_dot_product_of_the_decoded_values(a_encoding, w_encoding, n):
    rng = np.random.default_rng(n)
    a = rng.integers(0, 2, (40, n))
    w = rng.integers(0, 2, (9, n))
    got = binary_dot(a, w, a_encoding=a_encoding, w_encoding=w_encoding)
    expected = decode(a, a_encoding) @ decode(w, w_encoding).T
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64 and got.shape == (40, 9)


def test_bipolar_dot_is_finns_xnor_popcount():
    a = np.array([1, 1, 0, 0, 1])
    w = np.array([[1, 0, 0, 1, 1]])
    # XNOR = 1 0 1 0 1: popcount 3, so 2 * 3 - 5 = 1 = (+1)(+1) + (+1)(-1) + (-1)(-1)
    #   + (-1)(+1) + (+1)(+1).
    assert binary_dot(a, w).tolist() == [1]
    # One vector gives one row of results.
    assert binary_dot(a, np.vstack([w, 1 - w])).tolist() == [1, -1]


@pytest.mark.parametrize("w_encoding", ["binary", "bipolar"])
@pytest.mark.parametrize("fmt", [SQ(8, 0), UQ(4, 2), SQ(1, 7)])
def test_integer_dot_equals_the_dot_product_with_decoded_weights(w_encoding, fmt):
    rng = np.random.default_rng(fmt.width)
    x = rng.integers(fmt.min_int, fmt.max_int + 1, (30, 50))
    x[0] = fmt.min_int  # the extremes too
    x[1] = fmt.max_int
    w = rng.integers(0, 2, (6, 50))
    got = integer_dot(x, w, fmt, w_encoding=w_encoding)
    np.testing.assert_array_equal(got, x @ decode(w, w_encoding).T)


@pytest.mark.parametrize("a_encoding, w_encoding", ENCODING_PAIRS)
def test_dot_range_is_reached_and_never_exceeded(a_encoding, w_encoding):
    n = 5
    # Every activation vector and weight vector of length 5.
    vectors = np.array(list(itertools.product((0, 1), repeat=n)))
    values = binary_dot(vectors, vectors, a_encoding=a_encoding, w_encoding=w_encoding)
    assert dot_range(n, a_encoding, w_encoding) == (values.min(), values.max())


@pytest.mark.parametrize("w_encoding", ["binary", "bipolar"])
@pytest.mark.parametrize("fmt", [SQ(3, 0), UQ(2, 0)])
def test_dot_range_of_integer_inputs_is_exact(w_encoding, fmt):
    n = 3
    x = np.array(list(itertools.product(fmt.codes().tolist(), repeat=n)))
    w = np.array(list(itertools.product((0, 1), repeat=n)))
    values = integer_dot(x, w, fmt, w_encoding=w_encoding)
    assert dot_range(n, "integer", w_encoding, fmt) == (values.min(), values.max())


def test_multithreshold_counts_thresholds_at_or_below_the_input():
    plan = SimpleNamespace(in_format=SQ(5, 0), out_format=UQ(2, 0),
                           thresholds=np.array([[-3, 0, 0]]), descending=np.array([False]))
    s = np.array([-16, -4, -3, -1, 0, 1, 15])
    np.testing.assert_array_equal(multithreshold(plan, s), [0, 0, 1, 1, 3, 3, 3])
    falling = SimpleNamespace(**{**plan.__dict__, "descending": np.array([True])})
    np.testing.assert_array_equal(multithreshold(falling, s), [3, 3, 2, 2, 0, 0, 0])
    signed_out = SimpleNamespace(**{**plan.__dict__, "out_format": SQ(2, 0)})
    np.testing.assert_array_equal(multithreshold(signed_out, s), [-2, -2, -1, -1, 1, 1, 1])


def test_multithreshold_applies_each_channel_its_own_thresholds():
    plan = SimpleNamespace(in_format=SQ(5, 0), out_format=UQ(1, 0),
                           thresholds=np.array([[0], [5]]), descending=np.array([False, True]))
    s = np.array([[0, 0], [4, 4], [5, 5]])
    np.testing.assert_array_equal(multithreshold(plan, s), [[1, 1], [1, 1], [1, 0]])
    with pytest.raises(ParameterValueError, match=re.escape(
            "s must have the plan's 2 channels on its last axis, not shape (3,)")):
        multithreshold(plan, np.array([0, 1, 2]))


def test_batchnorm_sign_decides_ties_as_plus_one():
    # z = 0 exactly at s = mean (beta = 0), whatever the sign of gamma; ONNX's Sign would say
    # 0 there, a binary output says +1.
    s = np.array([4, 5, 6])
    assert batchnorm_sign(s, 2.0, 0.0, 5.0, 1.0, 0.0).tolist() == [0, 1, 1]
    assert batchnorm_sign(s, -2.0, 0.0, 5.0, 1.0, 0.0).tolist() == [1, 1, 0]
    assert batchnorm_sign(s, 0.0, 0.0, 5.0, 1.0, 0.0).tolist() == [1, 1, 1]
    assert batchnorm_sign(s, 0.0, -1e-300, 5.0, 1.0, 0.0).tolist() == [0, 0, 0]


def test_bad_bits_and_values_are_named():
    with pytest.raises(ParameterValueError, match=re.escape("bits must hold bits (0 or 1), "
                                                            "not 2")) as info:
        to_bipolar([0, 2])
    assert info.value.parameter == "bits"
    with pytest.raises(ParameterTypeError, match=re.escape(
            "bits must hold bits (bool or 0/1 integers), not dtype float64")):
        to_bipolar([0.0, 1.0])
    with pytest.raises(ParameterValueError, match=re.escape("values must be -1 or +1, not 0")):
        from_bipolar([1, 0])
    with pytest.raises(ParameterTypeError, match=re.escape(
            "values must be integers -1 or +1, not dtype bool")):
        from_bipolar([True])
    with pytest.raises(ParameterValueError, match=re.escape(
            "encoding must be one of binary | bipolar, not 'ternary'")):
        decode([1], "ternary")


def test_bad_dot_arguments_are_named():
    w = np.zeros((2, 4), dtype=int)
    with pytest.raises(ParameterValueError, match=re.escape(
            "a must have N = 4 values on its last axis (as w has), not shape (3,)")):
        binary_dot(np.zeros(3, dtype=int), w)
    with pytest.raises(ParameterValueError, match=re.escape(
            "w must have shape (n_out, N), not (4,)")):
        binary_dot(np.zeros(4, dtype=int), np.zeros(4, dtype=int))
    with pytest.raises(ParameterValueError, match=re.escape(
            "w_encoding must be one of binary | bipolar, not 'integer'")):
        binary_dot(np.zeros(4, dtype=int), w, w_encoding="integer")
    with pytest.raises(ParameterValueError, match=re.escape(
            "a must hold bits (0 or 1), not -1")):
        binary_dot(np.full(4, -1), w)
    with pytest.raises(ParameterValueError, match=re.escape(
            "inputs hold the code 8, outside SQ(4, 0) [-8, 7]")):
        integer_dot(np.full(4, 8), w, SQ(4, 0))
    with pytest.raises(ParameterValueError, match=re.escape(
            "x must have N = 4 values on its last axis (as w has), not shape (5,)")):
        integer_dot(np.zeros(5, dtype=int), w, SQ(4, 0))


def test_bad_dot_range_arguments_are_named():
    with pytest.raises(ParameterValueError, match=re.escape(
            "n must be a positive integer, not 0")):
        dot_range(0, "bipolar")
    with pytest.raises(ParameterTypeError, match=re.escape(
            "n must be a positive integer, not True")):
        dot_range(True, "bipolar")
    with pytest.raises(ParameterValueError, match=re.escape(
            "in_format must be given for integer activations only, not None with a_encoding "
            "'integer'")):
        dot_range(4, "integer")
    with pytest.raises(ParameterValueError, match=re.escape(
            "a_encoding must be one of binary | bipolar | integer, not 'float'")):
        dot_range(4, "float")
