"""The activation functions hwnn knows: float64 definitions, symmetry, and how to add one.

A *smooth* function (sigmoid, tanh, ...) is approximated by a lookup table or piecewise-linear
plan whose error is measured on every input code. An *exact* function (relu, hard_tanh, ...) is
computed exactly and rounded once to the output format.

Adding a smooth function is one call::

    register(Function("silu", lambda x: x / (1 + np.exp(-x)), smooth=True))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..checks import ParameterTypeError, ParameterValueError, check_bool
from ..fixed import Format
from ..ref.integers import Symmetry
from .series import sigmoid_series, tanh_series

# Symmetry lives with the fold/unfold primitives in hwnn.ref.integers; it is re-exported here
# because a Function carries one.
__all__ = ["Symmetry", "Function", "FUNCTIONS", "LEAKY_SHIFT", "register", "get_function",
           "leaky_relu", "check_symmetry", "check_input_range"]


@dataclass(frozen=True)
class Function:
    """An activation function.

    ``evaluate`` maps a float64 array to float64 (the "exact" function that errors are measured
    against). ``symmetry`` is used by plans to halve their tables. ``smooth`` says whether the
    function needs approximation (LUT/PWL/polynomial) or is computed exactly. ``series``, when
    given, maps ``(x0, order)`` to the Taylor coefficients ``a_0 .. a_order`` around ``x0``
    (what a ``taylor`` plan needs).
    """
    name: str
    evaluate: Callable[[np.ndarray], np.ndarray]
    smooth: bool
    symmetry: Symmetry | None = None
    series: Callable[[float, int], np.ndarray] | None = None

    def __call__(self, x):
        return self.evaluate(np.asarray(x, dtype=np.float64))


def _sigmoid(x):
    # exp of a negative argument only: no overflow warnings, full precision on both sides.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


FUNCTIONS: dict[str, Function] = {}


def register(function: Function) -> Function:
    """Add ``function`` to :data:`FUNCTIONS` (replacing one of the same name)."""
    if not isinstance(function, Function):
        raise ParameterTypeError("function", f"function must be a Function, not {function!r}")
    FUNCTIONS[function.name] = function
    return function


register(Function("sigmoid", _sigmoid, smooth=True, symmetry=Symmetry.COMPLEMENT,
                  series=sigmoid_series))
register(Function("tanh", np.tanh, smooth=True, symmetry=Symmetry.ODD, series=tanh_series))
register(Function("relu", lambda x: np.maximum(x, 0.0), smooth=False))
register(Function("relu6", lambda x: np.clip(x, 0.0, 6.0), smooth=False))
register(Function("hard_tanh", lambda x: np.clip(x, -1.0, 1.0), smooth=False,
                  symmetry=Symmetry.ODD))
# PyTorch's definition (MobileNetV3): relu6(x + 3) / 6.
register(Function("hard_sigmoid", lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0, smooth=False,
                  symmetry=Symmetry.COMPLEMENT))
#: The default negative slope of leaky_relu is 2**-LEAKY_SHIFT; exact plans take their own
#: power-of-two slope and measure against it.
LEAKY_SHIFT = 6


def leaky_relu(shift: int = LEAKY_SHIFT) -> Function:
    """leaky_relu with negative slope ``2**-shift`` (a power of two: a shift in hardware)."""
    return Function("leaky_relu", lambda x: np.where(x >= 0, x, np.ldexp(x, -shift)),
                    smooth=False)


register(leaky_relu())


def get_function(name) -> Function:
    """The registered function called ``name`` (a Function passes through).

    Raises
    ------
    TypeError
        ``name`` is neither a string nor a Function.
    ValueError
        No function of that name is registered.

    Both are :mod:`hwnn.checks` errors with ``parameter == "function"``.
    """
    if isinstance(name, Function):
        return name
    if not isinstance(name, str):
        raise ParameterTypeError("function", f"function must be a name or a Function, not "
                                             f"{name!r}")
    if name not in FUNCTIONS:
        raise ParameterValueError("function", f"function must be one of "
                                              f"{' | '.join(sorted(FUNCTIONS))}, not {name!r}")
    return FUNCTIONS[name]


def check_symmetry(function: Function, in_format: Format, out_format: Format, symmetric) -> bool:
    """Whether a plan stores only magnitudes: ``symmetric`` checked, or the default for None.

    The default uses the function's symmetry whenever the input is signed.

    Raises
    ------
    TypeError
        ``symmetric`` is not a bool or None.
    ValueError
        An odd function with an unsigned output for signed inputs, or ``symmetric=True`` for a
        function without symmetry or an unsigned input.
    """
    if function.symmetry is Symmetry.ODD and in_format.signed and not out_format.signed:
        raise ParameterValueError("out_format", f"{function.name} is odd, so out_format must be "
                                                f"signed, not {out_format}")
    symmetric = check_bool(symmetric, "symmetric", none=True)
    if symmetric is None:
        return function.symmetry is not None and in_format.signed
    if symmetric and function.symmetry is None:
        raise ParameterValueError("symmetric", f"symmetric=True, but {function.name} has no "
                                               f"symmetry to exploit")
    if symmetric and not in_format.signed:
        raise ParameterValueError("symmetric", f"symmetric=True needs a signed in_format, not "
                                               f"{in_format}")
    return symmetric


def check_input_range(input_range, in_format: Format, symmetric: bool, plan: str):
    """``(code_lo, code_hi)``: the input codes ``code_lo <= q < code_hi`` of the real interval
    ``input_range = (low, high)`` (half-open), checked for a ``plan`` ("plan", "table").

    Raises
    ------
    TypeError
        ``input_range`` is not a pair of numbers.
    ValueError
        Not finite, ``low >= high``, outside ``in_format``, holding no code, or (``symmetric``)
        not symmetric about 0.

    Both with ``parameter == "input_range"``.
    """
    try:
        r_lo, r_hi = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise ParameterTypeError("input_range", f"input_range must be a pair of numbers "
                                                f"(low, high), not {input_range!r}") from None
    if not (math.isfinite(r_lo) and math.isfinite(r_hi)) or not r_lo < r_hi:
        raise ParameterValueError("input_range", f"input_range must be an interval (low, high) "
                                                 f"with low < high, not {input_range!r}")
    if r_lo < in_format.min or r_hi > in_format.max + in_format.resolution:
        raise ParameterValueError(
            "input_range", f"input_range must lie within in_format {in_format} "
                           f"[{in_format.min}, {in_format.max + in_format.resolution}), "
                           f"not {input_range!r}")
    code_lo = math.ceil(r_lo * 2.0 ** in_format.f)
    code_hi = math.ceil(r_hi * 2.0 ** in_format.f)
    if code_hi <= code_lo:
        raise ParameterValueError("input_range", f"input_range must hold a code of {in_format}, "
                                                 f"not {input_range!r}")
    if symmetric and r_lo != -r_hi:
        raise ParameterValueError(
            "input_range", f"input_range must be symmetric about 0 for a symmetric {plan}, "
                           f"not {input_range!r} (pass symmetric=False)")
    return code_lo, code_hi
