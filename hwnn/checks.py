"""Parameter checks shared by every plan, reference and core: one message style, one error type.

Every check raises a :class:`ParameterTypeError` (a ``TypeError``) for a value of the wrong type
and a :class:`ParameterValueError` (a ``ValueError``) for a bad value of the right type. Both
carry the parameter's name in ``exc.parameter``, so a caller that maps parameters to something
else (the spec loader maps them to TOML fields) reads the name from the exception instead of
parsing the message. Messages follow one pattern::

    <name> must be <what is allowed>, not <the value, repr'd>

This module is the bottom of the package: it imports nothing from hwnn (only numpy). The one check that
needs a hwnn type, :func:`hwnn.fixed.check_format`, lives with the formats and raises these
same errors.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "ParameterError", "ParameterTypeError", "ParameterValueError",
    "check_integer", "check_bool", "check_choice", "check_enum", "check_number", "lookup",
]


class ParameterError(Exception):
    """A rejected parameter; ``parameter`` is its name as the caller spells it."""

    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(message)


class ParameterTypeError(ParameterError, TypeError):
    """A parameter of the wrong type."""


class ParameterValueError(ParameterError, ValueError):
    """A parameter of the right type with a bad value."""


def _is_integer(value) -> bool:
    # bool is an int subclass, but True is never meant as a count or a width.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _bounds(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer between {minimum} and {maximum}"
    if minimum == 1 and maximum is None:
        return "a positive integer"
    if minimum == 0 and maximum is None:
        return "a non-negative integer"
    if minimum is not None:
        return f"an integer of at least {minimum}"
    if maximum is not None:
        return f"an integer of at most {maximum}"
    return "an integer"


def check_integer(value, name: str, *, minimum: int | None = None,
                  maximum: int | None = None, none: bool = False):
    """``value`` as a Python ``int`` in ``[minimum, maximum]`` (either bound may be ``None``).

    With ``none=True``, ``None`` is accepted and returned as it is.
    """
    if none and value is None:
        return None
    allowed = _bounds(minimum, maximum) + (" or None" if none else "")
    if not _is_integer(value):
        raise ParameterTypeError(name, f"{name} must be {allowed}, not {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ParameterValueError(name, f"{name} must be {allowed}, not {value!r}")
    return value


def check_number(value, name: str, *, positive: bool = False, finite: bool = True) -> float:
    """``value`` (an int or a float, not a bool) as a float; ``positive`` demands ``> 0``."""
    allowed = "a positive number" if positive else ("a finite number" if finite else "a number")
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ParameterTypeError(name, f"{name} must be {allowed}, not {value!r}")
    result = float(value)
    if (finite and result != result) or (finite and result in (float("inf"), float("-inf"))):
        raise ParameterValueError(name, f"{name} must be {allowed}, not {value!r}")
    if positive and not result > 0:
        raise ParameterValueError(name, f"{name} must be {allowed}, not {value!r}")
    return result


def check_bool(value, name: str, *, none: bool = False):
    """``value`` if it is a ``bool`` (numpy bools included); ``None`` too with ``none=True``."""
    if none and value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    allowed = "True or False" + (" or None" if none else "")
    raise ParameterTypeError(name, f"{name} must be {allowed}, not {value!r}")


def check_choice(value, name: str, choices):
    """``value`` if it is one of ``choices`` (strings); the message lists them."""
    choices = tuple(choices)
    listed = " | ".join(map(str, choices))
    if not isinstance(value, str):
        raise ParameterTypeError(name, f"{name} must be one of {listed}, not {value!r}")
    if value not in choices:
        raise ParameterValueError(name, f"{name} must be one of {listed}, not {value!r}")
    return value


def lookup(value, registry, cls, what: str):
    """``value`` when it is a ``cls``, else the entry of ``registry`` named ``value``.

    ``what`` names the kind of entry in the messages (``"target"``, ``"board"``); the errors
    carry it as their parameter. An unknown name's message lists the valid ones.
    """
    if isinstance(value, cls):
        return value
    if not isinstance(value, str):
        raise ParameterTypeError(what, f"{what.capitalize()} must be a {what} name or a "
                                       f"{cls.__name__}, not {value!r}")
    try:
        return registry[value]
    except KeyError:
        raise ParameterValueError(what, f"Unknown {what} {value!r}; valid {what}s are: "
                                        f"{', '.join(registry)}") from None


def check_enum(cls, value, name: str):
    """A member of the enum ``cls``, given as a member or as its value's name (any case)."""
    if isinstance(value, cls):
        return value
    listed = " | ".join(str(m.value) for m in cls)
    if isinstance(value, str):
        try:
            return cls(value.lower())
        except ValueError:
            raise ParameterValueError(
                name, f"{name} must be one of {listed}, not {value!r}") from None
    raise ParameterTypeError(name, f"{name} must be one of {listed} (or a member of "
                                   f"{cls.__name__}), not {value!r}")
