import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.fixed import SQ, UQ
from hwnn.ref._inputs import check_codes


def test_returns_int64_codes():
    for q in ([-8, 0, 7], np.array([-8, 7], dtype=np.int8), np.array([3], dtype=np.uint64)):
        codes = check_codes(SQ(1, 3), q)
        assert codes.dtype == np.int64 and codes.tolist() == np.asarray(q).tolist()
    assert check_codes(UQ(2, 2), np.array([[0, 15], [1, 2]])).tolist() == [[0, 15], [1, 2]]
    assert check_codes(SQ(1, 3), np.zeros((0, 2), dtype=np.int16)).shape == (0, 2)
    assert check_codes(SQ(1, 3), 5).tolist() == 5


@pytest.mark.parametrize("q, message", [
    ([0.5], "inputs must be integer codes of SQ(1, 3), not dtype float64"),
    ([True], "inputs must be integer codes of SQ(1, 3), not dtype bool"),
    (["1"], "inputs must be integer codes of SQ(1, 3), not dtype <U1"),
])
def test_refuses_non_integers(q, message):
    with pytest.raises(ParameterTypeError, match=re.escape(message) + "$") as exc:
        check_codes(SQ(1, 3), q)
    assert exc.value.parameter == "q"


@pytest.mark.parametrize("fmt, q, message", [
    (SQ(1, 3), [0, 8, -9], "inputs hold the code 8, outside SQ(1, 3) [-8, 7]"),
    (SQ(1, 3), [[0], [-9]], "inputs hold the code -9, outside SQ(1, 3) [-8, 7]"),
    (UQ(2, 2), [-1], "inputs hold the code -1, outside UQ(2, 2) [0, 15]"),
    (SQ(1, 3), np.array([2**63], dtype=np.uint64), "inputs hold codes outside SQ(1, 3) [-8, 7]"),
])
def test_refuses_codes_outside_the_format(fmt, q, message):
    with pytest.raises(ParameterValueError, match=re.escape(message) + "$") as exc:
        check_codes(fmt, q)
    assert exc.value.parameter == "q"
