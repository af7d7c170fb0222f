import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.exact import plan_exact, reciprocal_of_three


def test_reciprocal_of_three_is_exact_on_its_range():
    m, s = reciprocal_of_three(100000)
    n = np.arange(100001)
    np.testing.assert_array_equal((n * m) >> s, n // 3)


@pytest.mark.parametrize("options, error, message", [
    (dict(function="tanh"), ValueError, "tanh is approximated"),
    (dict(in_format=SQ(6, -1)), ValueError, "fraction bits >= 0"),
    (dict(leaky_shift=0), ValueError, "leaky_shift must be between 1 and 16"),
    (dict(leaky_shift=1.5), TypeError, "leaky_shift must be an integer, not 1.5"),
    (dict(function="leaky_relu", out_format=UQ(4, 4)), ValueError,
     r"leaky_relu has negative values, so out_format must be signed"),
    (dict(rounding="nearest"), ValueError, "rounding must be one of"),
])
def test_exact_parameter_errors(options, error, message):
    args = dict(function="relu", in_format=SQ(4, 4), out_format=UQ(4, 4))
    args.update(options)
    with pytest.raises(error, match=message):
        plan_exact(args.pop("function"), args.pop("in_format"), args.pop("out_format"), **args)
