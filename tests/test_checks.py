"""hwnn.checks: every check's accepted values, its error type, its whole message and `.parameter`."""

import enum
import re

import numpy as np
import pytest

from hwnn.checks import (ParameterError, ParameterTypeError, ParameterValueError, check_bool,
                         check_choice, check_enum, check_integer, check_number)
from hwnn.fixed import SQ, check_format


def raises(kind, parameter, message):
    """Context manager: ``kind`` with exactly ``message`` and ``.parameter == parameter``."""
    class _Check:
        def __enter__(self):
            self.inner = pytest.raises(kind, match="^" + re.escape(message) + "$")
            self.info = self.inner.__enter__()
            return self.info

        def __exit__(self, *exc):
            result = self.inner.__exit__(*exc)
            assert isinstance(self.info.value, ParameterError)
            assert self.info.value.parameter == parameter
            return result
    return _Check()


def test_error_types_are_the_builtin_ones():
    assert issubclass(ParameterTypeError, TypeError)
    assert issubclass(ParameterValueError, ValueError)


def test_check_integer_accepts_python_and_numpy_integers():
    assert check_integer(3, "n") == 3
    assert type(check_integer(np.int16(3), "n")) is int
    assert check_integer(None, "n", none=True) is None
    assert check_integer(5, "n", minimum=5, maximum=5) == 5


@pytest.mark.parametrize("value, kwargs, kind, message", [
    (True, {}, ParameterTypeError, "n must be an integer, not True"),
    (2.0, {"minimum": 1}, ParameterTypeError, "n must be a positive integer, not 2.0"),
    (None, {"minimum": 0}, ParameterTypeError, "n must be a non-negative integer, not None"),
    (0, {"minimum": 1}, ParameterValueError, "n must be a positive integer, not 0"),
    (-1, {"minimum": 0}, ParameterValueError, "n must be a non-negative integer, not -1"),
    (9, {"minimum": 1, "maximum": 8}, ParameterValueError,
     "n must be an integer between 1 and 8, not 9"),
    (1, {"minimum": 2}, ParameterValueError, "n must be an integer of at least 2, not 1"),
    (9, {"maximum": 8}, ParameterValueError, "n must be an integer of at most 8, not 9"),
    ("x", {"minimum": 1, "none": True}, ParameterTypeError,
     "n must be a positive integer or None, not 'x'"),
])
def test_check_integer_rejects(value, kwargs, kind, message):
    with raises(kind, "n", message):
        check_integer(value, "n", **kwargs)


def test_check_number():
    assert check_number(2, "x") == 2.0
    assert check_number(0.5, "x", positive=True) == 0.5
    with raises(ParameterTypeError, "x", "x must be a finite number, not '1'"):
        check_number("1", "x")
    with raises(ParameterTypeError, "x", "x must be a finite number, not False"):
        check_number(False, "x")
    with raises(ParameterValueError, "x", "x must be a finite number, not nan"):
        check_number(float("nan"), "x")
    with raises(ParameterValueError, "x", "x must be a finite number, not inf"):
        check_number(float("inf"), "x")
    with raises(ParameterValueError, "x", "x must be a positive number, not 0"):
        check_number(0, "x", positive=True)


def test_check_bool():
    assert check_bool(True, "flag") is True
    assert check_bool(np.bool_(False), "flag") is False
    assert check_bool(None, "flag", none=True) is None
    with raises(ParameterTypeError, "flag", "flag must be True or False, not 1"):
        check_bool(1, "flag")
    with raises(ParameterTypeError, "flag", "flag must be True or False or None, not 'yes'"):
        check_bool("yes", "flag", none=True)


def test_check_choice():
    assert check_choice("b", "mode", ("a", "b")) == "b"
    with raises(ParameterValueError, "mode", "mode must be one of a | b, not 'c'"):
        check_choice("c", "mode", ("a", "b"))
    with raises(ParameterTypeError, "mode", "mode must be one of a | b, not 1"):
        check_choice(1, "mode", ("a", "b"))


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def test_check_enum():
    assert check_enum(Colour, Colour.RED, "colour") is Colour.RED
    assert check_enum(Colour, "BLUE", "colour") is Colour.BLUE
    with raises(ParameterValueError, "colour", "colour must be one of red | blue, not 'green'"):
        check_enum(Colour, "green", "colour")
    with raises(ParameterTypeError, "colour",
                "colour must be one of red | blue (or a member of Colour), not 3"):
        check_enum(Colour, 3, "colour")


def test_check_format():
    assert check_format("SQ(4,12)", "in_format") == SQ(4, 12)
    assert check_format(SQ(1, 7), "in_format") == SQ(1, 7)
    with raises(ParameterTypeError, "in_format",
                "in_format must be a Format (SQ/UQ) or a format string, not 8"):
        check_format(8, "in_format")
    with raises(ParameterValueError, "in_format",
                "in_format must be a format like 'SQ(4,12)' or 'UQ(0,8)', not 'Q8'"):
        check_format("Q8", "in_format")
