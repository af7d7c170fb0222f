import numpy as np
import pytest

from hwnn.plans.functions import FUNCTIONS, Function, Symmetry, get_function, leaky_relu, register


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
    with pytest.raises(ValueError) as info:
        get_function("gelu2")
    assert info.value.parameter == "function" and str(info.value) == (
        "function must be one of hard_sigmoid | hard_tanh | leaky_relu | relu | relu6 | sigmoid "
        "| tanh, not 'gelu2'")
    with pytest.raises(TypeError) as info:
        get_function(3)
    assert info.value.parameter == "function"
    assert str(info.value) == "function must be a name or a Function, not 3"
