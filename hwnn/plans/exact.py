"""Plans for activations computed exactly: relu, relu6, leaky_relu, hard_tanh, hard_sigmoid.

Each output is the exact function value rounded once to ``out_format`` with the plan's rounding
and saturated. In integers (``q`` an input code, ``fi``/``fo`` the fraction bits)::

    relu        v = max(q, 0)                               at scale 2**-fi
    relu6       v = clip(q, 0, 6 << fi)                     at scale 2**-fi
    hard_tanh   v = clip(q, -1 << fi, 1 << fi)              at scale 2**-fi
    leaky_relu  v = q << k if q >= 0 else q                 at scale 2**-(fi + k), slope 2**-k
    hard_sigmoid  n = clip(q + (3 << fi), 0, 6 << fi);  y = round(n * 2**fo / (6 * 2**fi))

and ``y = requantize(v, ...)`` for all but hard_sigmoid, whose division by 3 the core does with
a multiply-by-reciprocal proven exact for every input code at plan time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import ParameterValueError, check_enum, check_integer
from ..fixed import SQ, Format, Rounding, check_format
from ..ref.exact import exact
from .accuracy import ErrorBound, check_exhaustive, measure_error
from .functions import LEAKY_SHIFT, Function, get_function, leaky_relu

__all__ = ["ExactPlan", "plan_exact", "EXACT_FUNCTIONS", "reciprocal_of_three"]

EXACT_FUNCTIONS = ("relu", "relu6", "leaky_relu", "hard_tanh", "hard_sigmoid")


@dataclass(frozen=True, eq=False)
class ExactPlan:
    """An exactly computed activation; semantics in the module docstring."""
    function: Function
    in_format: Format
    out_format: Format
    rounding: Rounding
    leaky_shift: int = LEAKY_SHIFT
    error: ErrorBound | None = None

    method = "exact"
    symmetric = False

    @property
    def value_format(self) -> Format:
        """Format of the exact value ``v`` before the one rounding (not for hard_sigmoid)."""
        fi = self.in_format.f
        if self.function.name == "leaky_relu":
            return SQ(self.in_format.i + 1, fi + self.leaky_shift)
        # +1 integer bit: relu6's 6 and hard_tanh's ±1 may lie beyond the input format.
        return SQ(max(self.in_format.i, 4) + 1, fi)

    def cost(self) -> dict:
        return {"stored_entries": 0}

    def describe(self) -> dict:
        info = {"method": "exact", "function": self.function.name,
                "in_format": str(self.in_format), "out_format": str(self.out_format),
                "rounding": self.rounding.value}
        if self.function.name == "leaky_relu":
            info["negative_slope"] = f"2**-{self.leaky_shift}"
        if self.error is not None:
            info["error"] = self.error.describe()
        return info


def reciprocal_of_three(max_n: int) -> tuple[int, int]:
    """``(m, s)`` with ``(n * m) >> s == n // 3`` for every ``0 <= n <= max_n``.

    The smallest ``s`` is searched and the identity is checked on every ``n`` (a few million at
    most), so the core's division is exact by construction, not by a bound.
    """
    n = np.arange(max_n + 1, dtype=np.int64)
    for s in range(1, 62 - max(1, max_n.bit_length())):
        m = -(-(1 << s) // 3)
        if np.array_equal((n * m) >> s, n // 3):
            return m, s
    raise ValueError(f"no exact reciprocal of 3 for numerators up to {max_n}")


def plan_exact(function, in_format, out_format, *, rounding=Rounding.HALF_EVEN,
               leaky_shift=LEAKY_SHIFT) -> ExactPlan:
    """An exact-activation plan, with its measured error (the one rounding, and saturation).

    Raises
    ------
    TypeError
        A parameter has the wrong type.
    ValueError
        A smooth function (use lut or pwl), a negative-fraction input format, a bad
        ``leaky_shift``, an unsigned output for a function with negative values, or an input
        format too wide to check on every code.
    """
    name = get_function(function).name
    in_format = check_format(in_format, "in_format")
    out_format = check_format(out_format, "out_format")
    rounding = check_enum(Rounding, rounding, "rounding")
    check_exhaustive(in_format)
    if name not in EXACT_FUNCTIONS:
        raise ParameterValueError("function", f"{name} is approximated (method 'lut', 'pwl', "
                                              f"'poly' or 'taylor'); exact plans cover "
                                              f"{', '.join(EXACT_FUNCTIONS)}")
    if in_format.f < 0:
        raise ParameterValueError("in_format", f"in_format must have fraction bits >= 0 for an "
                                               f"exact activation, not {in_format}")
    # The negative slope is 2**-leaky_shift.
    leaky_shift = check_integer(leaky_shift, "leaky_shift", minimum=1, maximum=16)
    if name in ("leaky_relu", "hard_tanh") and in_format.signed and not out_format.signed:
        raise ParameterValueError("out_format", f"{name} has negative values, so out_format "
                                                f"must be signed, not {out_format}")
    function = leaky_relu(int(leaky_shift)) if name == "leaky_relu" else get_function(name)
    plan = ExactPlan(function=function, in_format=in_format, out_format=out_format,
                     rounding=rounding, leaky_shift=int(leaky_shift))
    error = measure_error(function, in_format, out_format, exact(plan, in_format.codes()))
    return ExactPlan(**{**plan.__dict__, "error": error})
