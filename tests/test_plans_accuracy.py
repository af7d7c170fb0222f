import numpy as np
import pytest

from hwnn.fixed import SQ
from hwnn.plans.accuracy import ErrorBound, check_exhaustive, measure_error
from hwnn.plans.functions import get_function


def test_measure_error_finds_the_worst_code():
    fmt_in, fmt_out = SQ(3, 2), SQ(2, 4)
    codes = fmt_in.codes()
    outputs = np.zeros_like(codes)
    bound = measure_error(get_function("hard_tanh"), fmt_in, fmt_out, outputs)
    assert isinstance(bound, ErrorBound)
    assert bound.max_abs == 1.0 and bound.max_ulp == 16.0 and bound.at_input == -4.0
    assert bound.codes == 32 and not bound.faithful
    with pytest.raises(ValueError) as info:
        measure_error(get_function("relu"), fmt_in, fmt_out, outputs[:3])
    assert str(info.value) == "need one output per input code (32), not (3,)"


def test_exhaustive_limit():
    check_exhaustive(SQ(10, 10))
    with pytest.raises(ValueError) as info:
        check_exhaustive(SQ(11, 10))
    assert info.value.parameter == "in_format" and str(info.value) == (
        "in_format SQ(11, 10) has 21 bits; activation plans measure their error on every input "
        "code, up to 20 bits")
