import numpy as np
import pytest

from hwnn.fixed import SQ, UQ, Rounding, quantize, to_float
from hwnn.plans.functions import get_function
from hwnn.plans.lut import plan_lut
from hwnn.ref.lut import lut
from lut_helpers import PLANS


@pytest.mark.parametrize("function, fin, fout, options", PLANS)
def test_stated_error_is_the_measured_error(function, fin, fout, options):
    plan = plan_lut(function, fin, fout, **options)
    codes = fin.codes()
    x = to_float(codes, fin)
    error = np.abs(to_float(lut(plan, codes), fout) - get_function(function)(x))
    assert plan.error.max_abs == error.max()
    assert plan.error.at_code == codes[np.argmax(error)]
    assert plan.error.codes == len(codes)


def test_full_table_is_correctly_rounded():
    fin, fout = SQ(3, 5), SQ(2, 8)  # holds tanh's whole range: no saturation
    plan = plan_lut("tanh", fin, fout, symmetric=False)
    want = np.clip(quantize(np.tanh(to_float(fin.codes(), fin)), fout, Rounding.HALF_EVEN),
                   fout.min_int, fout.max_int)
    np.testing.assert_array_equal(lut(plan, fin.codes()), want)
    assert plan.error.max_ulp <= 0.5


def test_minimax_entries_beat_left_samples():
    common = dict(table_size=256, input_range=(-8, 8), symmetric=False)
    minimax = plan_lut("sigmoid", SQ(6, 10), UQ(0, 16), **common)
    left = plan_lut("sigmoid", SQ(6, 10), UQ(0, 16), entries="left", **common)
    assert minimax.error.max_abs < left.error.max_abs * 0.6


def test_symmetry_halves_the_table_at_equal_error():
    full = plan_lut("tanh", SQ(4, 8), SQ(1, 10), table_size=256, symmetric=False)
    half = plan_lut("tanh", SQ(4, 8), SQ(1, 10), table_size=256)
    assert len(half.table) == len(full.table) // 2
    assert half.error.max_abs <= full.error.max_abs + 2 ** -10


@pytest.mark.parametrize("options, error, parameter, message", [
    (dict(table_size=100), ValueError, "table_size", "table_size must be a power of two, not 100"),
    (dict(table_size=2048), ValueError, "table_size",
     "table_size must be between 2 and 1024 (one entry per input code of the range), not 2048"),
    (dict(table_size=2.0), TypeError, "table_size",
     "table_size must be a positive integer or None, not 2.0"),
    (dict(input_range=(2, 1)), ValueError, "input_range",
     "input_range must be an interval (low, high) with low < high, not (2, 1)"),
    (dict(input_range=(-40, 40)), ValueError, "input_range",
     "input_range must lie within in_format SQ(4, 6) [-8.0, 8.0), not (-40, 40)"),
    (dict(input_range=(-1, 2)), ValueError, "input_range",
     "input_range must be symmetric about 0 for a symmetric table, not (-1, 2) "
     "(pass symmetric=False)"),
    (dict(input_range="wide"), TypeError, "input_range",
     "input_range must be a pair of numbers (low, high), not 'wide'"),
    # Holding no input code used to end in an IndexError inside the entry search.
    (dict(input_range=(0.001, 0.002), symmetric=False), ValueError, "input_range",
     "input_range must hold a code of SQ(4, 6), not (0.001, 0.002)"),
    (dict(input_range=(-1, float("inf"))), ValueError, "input_range",
     "input_range must be an interval (low, high) with low < high, not (-1, inf)"),
    (dict(entries="middle"), ValueError, "entries",
     "entries must be one of minimax | left, not 'middle'"),
    (dict(symmetric="yes"), TypeError, "symmetric",
     "symmetric must be True or False or None, not 'yes'"),
])
def test_lut_parameter_errors(options, error, parameter, message):
    with pytest.raises(error) as info:
        plan_lut("tanh", SQ(4, 6), SQ(1, 7), **options)
    assert str(info.value) == message and info.value.parameter == parameter


def test_lut_function_and_format_errors():
    with pytest.raises(ValueError) as info:
        plan_lut("relu", SQ(4, 6), SQ(4, 6))
    assert info.value.parameter == "function" and str(info.value) == (
        "relu is computed exactly (method 'exact'); lookup tables are for smooth functions")
    with pytest.raises(ValueError) as info:
        plan_lut("sigmoid", SQ(4, 6), SQ(-1, 6))
    assert info.value.parameter == "out_format" and str(info.value) == (
        "out_format SQ(-1, 6) [-0.25, 0.234375] cannot hold sigmoid's range [0.00033535, "
        "0.999659] over the input range [-8, 8)")
    with pytest.raises(ValueError) as info:
        plan_lut("tanh", SQ(4, 6), UQ(1, 4), symmetric=False)
    assert info.value.parameter == "out_format" and str(info.value) == (
        "tanh is odd, so out_format must be signed, not UQ(1, 4)")
