import itertools
import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ
from hwnn.plans.binary_dense import TERMS, plan_binary_dense
from hwnn.plans.threshold import ThresholdPlan
from hwnn.ref.binary import decode, dot_range, multithreshold
from hwnn.ref.binary_dense import binary_dense, binary_dense_dot


def test_terms_give_the_decoded_product_of_every_bit_pair():
    for (a_encoding, w_encoding), (tables, scale, c) in TERMS.items():
        for a, w in itertools.product((0, 1), repeat=2):
            value = int(decode(a, a_encoding) * decode(w, w_encoding))
            assert scale * sum(table >> (a + 2 * w) & 1 for table in tables) - c == value


@pytest.mark.parametrize("encoding", ["bipolar", "binary", SQ(3, 1), UQ(2, 0)])
@pytest.mark.parametrize("w_encoding", ["bipolar", "binary"])
def test_reference_is_the_dot_product_of_decoded_values(encoding, w_encoding):
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 2, (5, 12))
    plan = plan_binary_dense(weights, in_encoding=encoding, w_encoding=w_encoding, pe=5,
                             simd=4)
    if plan.in_encoding == "integer":
        x = rng.integers(plan.in_format.min_int, plan.in_format.max_int, (50, 12),
                         endpoint=True)
        values = x
    else:
        x = rng.integers(0, 2, (50, 12))
        values = decode(x, encoding)
    expected = values @ decode(weights, w_encoding).T
    np.testing.assert_array_equal(binary_dense_dot(plan, x), expected)
    np.testing.assert_array_equal(binary_dense(plan, x), expected)
    # The dot format is the exact range's: one bit narrower would not hold it.
    lo, hi = (dot_range(12, "integer", w_encoding, plan.in_format)
              if plan.in_encoding == "integer" else dot_range(12, encoding, w_encoding))
    fmt = plan.dot_format
    assert fmt.min_int <= lo and hi <= fmt.max_int and fmt.f == plan.in_format.f
    assert lo < -(1 << fmt.width - 2) or hi > (1 << fmt.width - 2) - 1


def test_plan_shape_folding_and_mac():
    weights = np.random.default_rng(2).integers(0, 2, (6, 8))
    plan = plan_binary_dense(weights, pe=3, simd=4)
    assert (plan.n_out, plan.n_in, plan.groups, plan.ii) == (6, 8, 2, 4)
    assert plan.mac.weight.shape == (6, 2) and plan.mac.bias.tolist() == [-8] * 6
    # Word g of row r holds weights[r, 4g:4g+4], bit j = input 4g + j.
    assert plan.mac.weight[1, 1] == sum(int(weights[1, 4 + j]) << j for j in range(4))
    assert plan.popcount.n == 4 and plan.dot_format == SQ(5, 0) == plan.out_format
    mixed = plan_binary_dense(weights, in_encoding="binary", pe=1, simd=2)
    assert mixed.popcount.n == 4 and mixed.ii == 24 and mixed.terms == TERMS[("binary",
                                                                             "bipolar")]
    info = plan.describe()
    assert info["ii"] == 4 and info["popcount"]["n"] == 4 and info["dot_format"] == "SQ(5, 0)"
    assert info["binary_ops"] == {"xnor": 48, "popcount_adds": 36, "accumulate": 12,
                                  "compare": 0}
    first = plan_binary_dense(weights, in_encoding="SQ(1,7)", pe=2, simd=2)
    assert first.popcount is None and first.dot_format == SQ(5, 7) and first.terms is None
    assert first.mac.in_format == UQ(16, 0) and first.mac.bias.tolist() == [0] * 6


def test_thresholds_move_onto_the_dot_format():
    rng = np.random.default_rng(3)
    weights = rng.integers(0, 2, (4, 6))
    fmt = SQ(8, 0)   # wider than the dot product's SQ(4, 0)
    thresholds = np.sort(rng.integers(-20, 20, (4, 3)), axis=1)
    thresholds[0] = [-128, -6, 128]   # ends beyond the dot format's range
    levels = ThresholdPlan(fmt, UQ(2, 0), thresholds, np.array([False, True, False, True]))
    plan = plan_binary_dense(weights, pe=2, simd=3, thresholds=levels)
    assert plan.activation.in_format == plan.dot_format == SQ(4, 0)
    assert plan.activation.thresholds[0].tolist() == [-8, -6, 8]
    assert plan.out_format == UQ(2, 0) and plan.describe()["thresholds"]["k"] == 2
    s = np.repeat(np.arange(-6, 7)[:, np.newaxis], 4, axis=1)
    np.testing.assert_array_equal(multithreshold(plan.activation, s), multithreshold(levels, s))
    x = rng.integers(0, 2, (40, 6))
    np.testing.assert_array_equal(binary_dense(plan, x),
                                  multithreshold(levels, binary_dense_dot(plan, x)))


def test_bad_parameters_are_named():
    weights = np.ones((4, 6), dtype=np.int64)
    one = ThresholdPlan(SQ(8, 0), UQ(1, 0), [[0]], [False])
    cases = [
        (dict(weights=[[0, 2]]), ParameterValueError, "weights",
         "weights must hold bits (0 or 1), not 2"),
        (dict(weights=[[0.5]]), ParameterTypeError, "weights",
         "weights must hold bits (bool or 0/1 integers), not dtype float64"),
        (dict(weights=[1, 0]), ParameterValueError, "weights",
         "weights must be a non-empty 2-D array (n_out, n_in), not shape (2,)"),
        (dict(in_encoding="ternary"), ParameterValueError, "in_encoding",
         "in_encoding must be one of binary | bipolar or a Format of integer inputs, not "
         "'ternary'"),
        (dict(in_encoding=8), ParameterTypeError, "in_encoding",
         "in_encoding must be one of binary | bipolar or a Format of integer inputs, not 8"),
        (dict(w_encoding="integer"), ParameterValueError, "w_encoding",
         "w_encoding must be one of binary | bipolar, not 'integer'"),
        (dict(pe=3), ParameterValueError, "pe",
         "pe must divide n_out = 4 (each PE computes n_out/pe whole neurons), not 3"),
        (dict(pe=0), ParameterValueError, "pe", "pe must be a positive integer, not 0"),
        (dict(pe=2.0), ParameterTypeError, "pe", "pe must be a positive integer, not 2.0"),
        (dict(simd=4), ParameterValueError, "simd",
         "simd must divide n_in = 6 (a vector is n_in/simd whole groups), not 4"),
        (dict(simd="2"), ParameterTypeError, "simd",
         "simd must be a positive integer, not '2'"),
        (dict(weights=np.ones((1, 64), np.int64), simd=64), ParameterValueError, "simd",
         "simd must be at most 62 for 1-bit inputs (a group is one word of at most MAX_WIDTH "
         "= 62 bits), not 64"),
        (dict(in_encoding=SQ(1, 7), simd=8, weights=np.ones((1, 8), np.int64)),
         ParameterValueError, "simd",
         "simd must be at most 7 for 8-bit inputs (a group is one word of at most MAX_WIDTH "
         "= 62 bits), not 8"),
        (dict(thresholds=[[0]]), ParameterTypeError, "thresholds",
         "thresholds must be a ThresholdPlan (see hwnn.plans.threshold) or None, not [[0]]"),
        (dict(thresholds=ThresholdPlan(SQ(3, 0), UQ(1, 0), [[0]], [False])),
         ParameterValueError, "thresholds",
         "thresholds must compare the dot product: an in_format with 0 fraction bits that "
         "holds its codes [-6, 6], not SQ(3, 0)"),
        (dict(thresholds=ThresholdPlan(SQ(8, 1), UQ(1, 0), [[0]], [False])),
         ParameterValueError, "thresholds",
         "thresholds must compare the dot product: an in_format with 0 fraction bits that "
         "holds its codes [-6, 6], not SQ(8, 1)"),
        (dict(thresholds=ThresholdPlan(SQ(8, 0), UQ(1, 0), [[0], [1]], [False, False])),
         ParameterValueError, "thresholds",
         "thresholds must have 1 or n_out = 4 channels, not 2"),
        (dict(popcount_method="wallace"), ParameterValueError, "popcount_method",
         "popcount_method must be one of adder_tree | counters | compressor, not 'wallace'"),
        (dict(popcount_pipeline=-1), ParameterValueError, "popcount_pipeline",
         "popcount_pipeline must be a non-negative integer, not -1"),
    ]
    for kwargs, error, parameter, message in cases:
        kwargs = {"weights": weights, **kwargs}
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            plan_binary_dense(**kwargs)
        assert info.value.parameter == parameter
    assert plan_binary_dense(weights, thresholds=one).activation.thresholds.tolist() == [[0]]


def test_reference_refuses_misshapen_inputs():
    plan = plan_binary_dense(np.ones((2, 4), np.int64))
    with pytest.raises(ParameterValueError, match=re.escape(
            "x must have n_in = 4 values on its last axis, not shape (3,)")):
        binary_dense(plan, [1, 0, 1])
    np.testing.assert_array_equal(binary_dense(plan, [1, 0, 1, 1]), [2, 2])
