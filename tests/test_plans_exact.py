import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.exact import plan_exact, reciprocal_of_three


def test_reciprocal_of_three_is_exact_on_its_range():
    m, s = reciprocal_of_three(100000)
    n = np.arange(100001)
    np.testing.assert_array_equal((n * m) >> s, n // 3)


@pytest.mark.parametrize("options, error, parameter, message", [
    (dict(function="tanh"), ValueError, "function",
     "tanh is approximated (method 'lut', 'pwl', 'poly' or 'taylor'); exact plans cover relu, "
     "relu6, leaky_relu, hard_tanh, hard_sigmoid"),
    (dict(in_format=SQ(6, -1)), ValueError, "in_format",
     "in_format must have fraction bits >= 0 for an exact activation, not SQ(6, -1)"),
    (dict(leaky_shift=0), ValueError, "leaky_shift",
     "leaky_shift must be an integer between 1 and 16, not 0"),
    (dict(leaky_shift=1.5), TypeError, "leaky_shift",
     "leaky_shift must be an integer between 1 and 16, not 1.5"),
    (dict(function="leaky_relu", out_format=UQ(4, 4)), ValueError, "out_format",
     "leaky_relu has negative values, so out_format must be signed, not UQ(4, 4)"),
    (dict(rounding="nearest"), ValueError, "rounding",
     "rounding must be one of trunc | half_up | half_even, not 'nearest'"),
])
def test_exact_parameter_errors(options, error, parameter, message):
    args = dict(function="relu", in_format=SQ(4, 4), out_format=UQ(4, 4))
    args.update(options)
    with pytest.raises(error) as info:
        plan_exact(args.pop("function"), args.pop("in_format"), args.pop("out_format"), **args)
    assert str(info.value) == message and info.value.parameter == parameter
