import itertools
import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.shift_mac import ShiftMac
from hwnn.fixed import SQ, UQ, Overflow, Rounding, signed_bits_for
from hwnn.plans.dense import DensePlan, plan_dense
from hwnn.plans.pot import PotCode
from hwnn.plans.shift_mac import ShiftMacPlan, plan_shift_mac
from hwnn.ref.shift_mac import shift_mac
from hwnn.sim import corner_vectors, make_vectors, run_stream


def make(n_in=4, n_out=3, **kwargs):
    options = dict(in_format="SQ(1,7)", weight_format="SQ(1,7)", out_format="SQ(3,5)")
    options.update(kwargs)
    return plan_shift_mac(n_in, n_out, **options)


@pytest.mark.parametrize("in_format, weight_format, terms, e_min, bits", [
    (SQ(1, 3), SQ(1, 3), 1, 0, None), (SQ(1, 3), SQ(1, 3), 2, 0, None),
    (UQ(2, 2), UQ(1, 3), 2, 0, None), (UQ(2, 2), SQ(2, 2), 1, 1, None),
    (SQ(2, 2), UQ(1, 3), 1, 0, 1), (SQ(1, 4), SQ(2, 3), 2, 2, 1),
])
def test_accumulator_holds_every_sum_of_every_word_and_no_more(in_format, weight_format, terms,
                                                               e_min, bits):
    n_in = 3
    bias = [0.75, -1.5]
    plan = make(n_in, 2, in_format=in_format, weight_format=weight_format, weight_terms=terms,
                weight_e_min=e_min, weight_exponent_bits=bits, bias=bias)
    code = plan.code
    # Brute force: every word with every input code, summed n_in times (the worst rows).
    values = code.word_values(np.arange(1 << code.width)).tolist()
    products = [w * x for w in values for x in in_format.codes().tolist()]
    lo = n_in * min(products) + min(0, int(plan.bias.min()))
    hi = n_in * max(products) + max(0, int(plan.bias.max()))
    assert plan.acc_format.width == max(2, signed_bits_for(lo, hi))
    assert plan.acc_format.f == in_format.f + weight_format.f
    np.testing.assert_array_equal(plan.bias_float(), bias)


def test_accumulator_is_sized_for_words_beyond_the_weight_format():
    # SQ(1,7) pot2 words reach ±256 (two terms of 2**7), twice the largest code: one more bit
    # than a dense plan whose weights are all -1.0 (-128) needs.
    plan = make(8, 4, weight_terms=2)
    dense = plan_dense(np.full((4, 8), -1.0), in_format="SQ(1,7)", weight_format="SQ(1,7)",
                       out_format="SQ(3,5)")
    assert plan.acc_format == SQ(6, 14)
    assert dense.acc_format == SQ(5, 14)
    assert make(8, 4, weight_terms=1).acc_format == SQ(5, 14)


def test_plan_fields_and_describe():
    plan = make(5, 3, weight_terms=2, bias=[0.5, 0, -0.25], rounding="trunc", overflow="wrap")
    assert isinstance(plan, ShiftMacPlan)
    assert (plan.n_in, plan.n_out, plan.products, plan.weight_terms) == (5, 3, 15, 2)
    assert plan.code == PotCode(SQ(1, 7), 2)
    assert plan.rounding is Rounding.TRUNC and plan.overflow is Overflow.WRAP
    assert plan.bias.tolist() == [8192, 0, -4096] and not plan.bias.flags.writeable
    assert plan.describe() == {
        "n_in": 5, "n_out": 3, "in_format": "SQ(1, 7)", "weight_format": "SQ(1, 7)",
        "weight_code": "pot2", "weight_terms": 2, "weight_exponents": [0, 7],
        "weight_word_bits": 10, "acc_format": "SQ(5, 14)", "out_format": "SQ(3, 5)",
        "rounding": "trunc", "overflow": "wrap"}


def test_dense_plan_fixes_the_weights():
    plan = make(3, 2, weight_terms=2, bias=[0.5, -0.25])
    weight = np.array([[3, -128, 0], [96, 1, -7]])
    dense = plan.dense_plan(weight)
    assert isinstance(dense, DensePlan)
    assert dense.acc_format == plan.acc_format and dense.bias is plan.bias
    np.testing.assert_array_equal(dense.weight, weight)
    assert dense.weight.dtype == np.int64


# check_weights raises plain ValueError/TypeError (no ``parameter``): the weights it checks are
# an argument of the core or reference that calls it, not of the plan.
@pytest.mark.parametrize("weight, error, message", [
    (np.zeros((3, 2), dtype=int), ValueError,
     "weight must have shape (n_out, n_in) = (2, 3), not (3, 2)"),
    (np.zeros((2, 3)), TypeError, "weight must hold integer codes of SQ(1, 7), not dtype float64"),
    ([[0, 1, 2], [4, 5, 8]], ValueError,
     "weight: 5 at index (1, 1) is not a pot code of SQ(1, 7) (0 or ±2**k, k in 0..7)"),
])
def test_check_weights_errors(weight, error, message):
    plan = make(3, 2)
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        plan.check_weights(weight)


@pytest.mark.parametrize("kwargs, error, parameter, message", [
    (dict(n_in=0), ParameterValueError, "n_in", "n_in must be a positive integer, not 0"),
    (dict(n_in=2.0), ParameterTypeError, "n_in", "n_in must be a positive integer, not 2.0"),
    (dict(n_out=-1), ParameterValueError, "n_out", "n_out must be a positive integer, not -1"),
    (dict(n_out=True), ParameterTypeError, "n_out", "n_out must be a positive integer, not True"),
    (dict(in_format=7), ParameterTypeError, "in_format",
     "in_format must be a Format (SQ/UQ) or a format string, not 7"),
    (dict(weight_format="SQ(1)"), ParameterValueError, "weight_format",
     "weight_format must be a format like 'SQ(4,12)' or 'UQ(0,8)', not 'SQ(1)'"),
    (dict(out_format=None), ParameterTypeError, "out_format",
     "out_format must be a Format (SQ/UQ) or a format string, not None"),
    (dict(weight_terms=3), ParameterValueError, "weight_terms",
     "weight_terms must be 1 (pot) or 2 (pot2), not 3"),
    (dict(weight_terms="pot"), ParameterTypeError, "weight_terms",
     "weight_terms must be 1 (pot) or 2 (pot2), not 'pot'"),
    (dict(weight_e_min=9), ParameterValueError, "weight_e_min",
     "weight_e_min must be between 0 and 7 (the largest exponent of SQ(1, 7)), not 9"),
    (dict(weight_exponent_bits=8), ParameterValueError, "weight_exponent_bits",
     "weight_exponent_bits must be between 0 and 6, not 8"),
    (dict(rounding="nearest"), ParameterValueError, "rounding",
     "rounding must be one of trunc | half_up | half_even, not 'nearest'"),
    (dict(overflow=1), ParameterTypeError, "overflow",
     "overflow must be one of wrap | sat (or a member of Overflow), not 1"),
    (dict(bias=[0.5]), ParameterValueError, "bias",
     "bias must have shape (n_out,) = (3,), not (1,)"),
    (dict(bias=["a", "b", "c"]), ParameterTypeError, "bias",
     "bias must hold real numbers, not dtype <U1"),
    (dict(bias=[0, np.inf, 0]), ParameterValueError, "bias", "bias holds NaN or infinity"),
    # Not a ParameterError: the formats and sizes together are too wide, no one parameter is.
    (dict(in_format="SQ(1,40)", weight_format="SQ(1,20)"), ValueError, None,
     "the accumulator needs 75 bits, more than the 62 that exact int64 reference arithmetic "
     "allows; use narrower formats, fewer inputs or fewer exponent bits"),
])
def test_plan_parameter_errors(kwargs, error, parameter, message):
    options = dict(n_in=4, n_out=3)
    options.update(kwargs)
    with pytest.raises(error, match="^" + re.escape(message) + "$") as info:
        make(**options)
    assert getattr(info.value, "parameter", None) == parameter


def test_unsigned_formats_and_narrow_exponent_fields():
    plan = make(2, 2, in_format="UQ(1,3)", weight_format="UQ(2,2)", weight_terms=2,
                weight_e_min=1, weight_exponent_bits=1)
    # Exponents 1..2: words 0, 2, 4 (term 0 has no sign) plus ±2, ±4 from term 1.
    assert plan.code.value_range == (-4, 8)
    assert plan.code.values().tolist() == [0, 2, 4, 6, 8]
    # Products of x in [0, 15] with words in [-4, 8] over 2 inputs: [-120, 240].
    assert plan.acc_format.width == signed_bits_for(-120, 240)
    for row in itertools.product([0, 2, 6], repeat=2):
        plan.check_weights(np.array([row, row]))


@pytest.mark.parametrize("kwargs, parameter, message", [
    # Checked before anything of the layer's size exists (this one would take 74 GiB).
    (dict(n_in=100000, n_out=100000), "n_in",
     "n_out·n_in must be at most 8388608 weights (MAX_WEIGHTS = 2**23: more than any supported "
     "device holds), not 100000·100000 = 10000000000"),
    (dict(n_in=2 ** 12 + 1, n_out=2 ** 11), "n_in",
     "n_out·n_in must be at most 8388608 weights (MAX_WEIGHTS = 2**23: more than any supported "
     "device holds), not 2048·4097 = 8390656"),
    # SQ(8, 0) inputs times pot2 words up to ±2**8 over 2 inputs: an 18-bit accumulator.
    (dict(in_format="SQ(8,0)", weight_format="SQ(8,0)", out_format="SQ(-55,60)"), "out_format",
     "out_format must have at most 44 fraction bits with the accumulator SQ(18, 0) (requantize "
     "shifts the accumulator left to the output's fraction bits, and SQ(18, f) must fit "
     "MAX_WIDTH = 62 bits of exact int64 arithmetic), not SQ(-55, 60)"),
    (dict(in_format="SQ(8,0)", weight_format="SQ(8,0)", out_format="SQ(17,45)"), "out_format",
     "out_format must have at most 44 fraction bits with the accumulator SQ(18, 0) (requantize "
     "shifts the accumulator left to the output's fraction bits, and SQ(18, f) must fit "
     "MAX_WIDTH = 62 bits of exact int64 arithmetic), not SQ(17, 45)"),
    (dict(in_format="SQ(8,0)", weight_format="SQ(8,0)", bias=[0, 2.0 ** 70]), "bias",
     "bias must fit the widest accumulator SQ(62, 0) (MAX_WIDTH = 62 bits, the most exact int64 "
     "arithmetic allows: -2**61 … 2**61 - 1 units of 2**0), "
     "not bias[1] = 1.1805916207174113e+21"),
    (dict(bias=[0.5]), "bias", "bias must have shape (n_out,) = (2,), not (1,)"),
    (dict(n_in=0), "n_in", "n_in must be a positive integer, not 0"),
    (dict(weight_e_min=9), "weight_e_min",
     "weight_e_min must be between 0 and 7 (the largest exponent of SQ(1, 7)), not 9"),
])
def test_plan_refuses_what_it_cannot_compute_exactly(kwargs, parameter, message):
    options = dict(n_in=2, n_out=2, weight_terms=2)
    options.update(kwargs)
    with pytest.raises(ParameterValueError, match=re.escape(message) + "$") as info:
        make(**options)
    assert info.value.parameter == parameter


@pytest.mark.parametrize("out_format", [SQ(18, 44), SQ(-40, 44), SQ(62, -60)], ids=str)
@pytest.mark.parametrize("rounding, overflow", [("half_up", "sat"), ("trunc", "wrap")])
def test_largest_accepted_shifts_compute_exactly_in_reference_and_core(out_format, rounding,
                                                                       overflow):
    plan = make(2, 2, in_format="SQ(8,0)", weight_format="SQ(8,0)", out_format=out_format,
                weight_terms=2, bias=[5, -7], rounding=rounding, overflow=overflow)
    assert plan.acc_format == SQ(18, 0)
    weight = np.array([[1, -6], [96, 0]])
    x = np.concatenate([corner_vectors(plan.in_format, 2),
                        make_vectors(plan.in_format, 2, 10, seed=3)])
    # The definition on Python integers: W·x + b, shifted to out_format, rounded, then fitted.
    shift = -out_format.f
    lo, hi = -(1 << (out_format.width - 1)), (1 << (out_format.width - 1)) - 1
    want = []
    for vector in x.tolist():
        row = []
        for weights, b in zip(weight.tolist(), [5, -7]):
            acc = sum(w * v for w, v in zip(weights, vector)) + b
            if shift <= 0:
                value = acc << -shift
            else:
                value = acc >> shift
                if rounding == "half_up":
                    value += (acc >> (shift - 1)) & 1
            row.append(min(max(value, lo), hi) if overflow == "sat"
                       else (value - lo) % (1 << out_format.width) + lo)
        want.append(row)
    np.testing.assert_array_equal(shift_mac(plan, weight, x), want)
    run = run_stream(ShiftMac(plan, parallelism=2, weights=weight), x, stall_in=0.3,
                     stall_out=0.3, seed=2)
    np.testing.assert_array_equal(run.outputs, want)


def test_unsigned_pot2_code_reaches_every_difference():
    # UQ(2, 2) holds 14 = 2**4 - 2**1 (3.5): the exponent field now reaches 2**4.
    plan = make(2, 2, weight_format="UQ(2,2)", weight_terms=2)
    assert plan.code.e_max == 7
    plan.check_weights(np.array([[14, 15], [12, 7]]))
