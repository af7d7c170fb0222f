import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.accuracy import ErrorBound, check_exhaustive, measure_error
from hwnn.plans.functions import (FUNCTIONS, Function, Symmetry, fold, get_function, leaky_relu,
                                  register, unfold)


def test_registry_has_the_issue_functions():
    assert {"sigmoid", "tanh", "relu", "relu6", "leaky_relu", "hard_sigmoid",
            "hard_tanh"} <= set(FUNCTIONS)
    assert get_function("tanh").symmetry is Symmetry.ODD
    assert get_function("sigmoid").symmetry is Symmetry.COMPLEMENT
    assert get_function("tanh").smooth and not get_function("relu").smooth


def test_symmetries_hold_in_float():
    x = np.linspace(-10, 10, 2001)
    np.testing.assert_array_equal(get_function("tanh")(-x), -get_function("tanh")(x))
    s = get_function("sigmoid")
    # s(-x) = e/d and 1 - s(x) = 1 - 1/d share d = fl(1 + e), e = exp(-|x|): they differ by
    # |e - (d - 1)|/d <= 2**-53 plus the roundings of e/d (<= 2**-54, as e/d <= 1/2) and of 1/d
    # (<= 2**-54, as 1/d lies in (1/2, 1]); 1 - fl(1/d) is exact (Sterbenz). Total <= 2**-52.
    assert np.max(np.abs(s(-x) - (1 - s(x)))) <= 2.0 ** -52
    assert np.all(s(np.array([-800.0, 800.0])) == [0.0, 1.0])  # no overflow at the extremes


def test_definitions():
    x = np.array([-4.0, -3.0, -0.5, 0.0, 0.5, 3.0, 7.0])
    np.testing.assert_array_equal(get_function("relu6")(x), [0, 0, 0, 0, 0.5, 3, 6])
    np.testing.assert_array_equal(get_function("hard_sigmoid")(x),
                                  [0, 0, 2.5 / 6, 0.5, 3.5 / 6, 1, 1])
    np.testing.assert_array_equal(get_function("hard_tanh")(x), [-1, -1, -0.5, 0, 0.5, 1, 1])
    np.testing.assert_array_equal(leaky_relu(2)(x), [-1, -0.75, -0.125, 0, 0.5, 3, 7])


def test_adding_a_smooth_function_is_one_call():
    silu = register(Function("silu_test", lambda x: x / (1 + np.exp(-x)), smooth=True))
    try:
        assert get_function("silu_test") is silu
    finally:
        del FUNCTIONS["silu_test"]


def test_unknown_function():
    with pytest.raises(ValueError, match="Unknown function 'gelu2'; known functions: "):
        get_function("gelu2")
    with pytest.raises(TypeError, match="Function must be a name or a Function, not 3"):
        get_function(3)


def test_fold_and_unfold():
    fmt = SQ(3, 0)
    magnitude, negative = fold(fmt.codes(), fmt)
    np.testing.assert_array_equal(magnitude, [4, 3, 2, 1, 0, 1, 2, 3])
    y = unfold(np.array([3, 2]), np.array([True, False]), Symmetry.ODD, SQ(3, 0))
    np.testing.assert_array_equal(y, [-3, 2])
    y = unfold(np.array([200, 0, 10]), np.array([True, True, False]), Symmetry.COMPLEMENT,
               UQ(0, 8))
    np.testing.assert_array_equal(y, [56, 255, 10])  # 256 - 0 saturates at 255


def test_measure_error_finds_the_worst_code():
    fmt_in, fmt_out = SQ(3, 2), SQ(2, 4)
    codes = fmt_in.codes()
    outputs = np.zeros_like(codes)
    bound = measure_error(get_function("hard_tanh"), fmt_in, fmt_out, outputs)
    assert isinstance(bound, ErrorBound)
    assert bound.max_abs == 1.0 and bound.max_ulp == 16.0 and bound.at_input == -4.0
    assert bound.codes == 32 and not bound.faithful
    with pytest.raises(ValueError, match=r"need one output per input code \(32\)"):
        measure_error(get_function("relu"), fmt_in, fmt_out, outputs[:3])


def test_exhaustive_limit():
    check_exhaustive(SQ(10, 10))
    with pytest.raises(ValueError, match=r"in_format SQ\(11, 10\) has 21 bits; activation plans "
                                         r"measure their error on every input code, up to 20"):
        check_exhaustive(SQ(11, 10))
