"""Measured error of an activation plan: every input code, against float64 math.

The guarantee a plan carries is not an estimate: its reference model is evaluated on every code
of the input format and compared with the exact function in float64. Where the maximum occurs
is recorded, so a user can check it in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import ParameterValueError
from ..fixed import Format, to_float

__all__ = ["ErrorBound", "measure_error", "MAX_EXHAUSTIVE_WIDTH", "check_exhaustive",
           "check_output_range"]

#: Widest input format whose every code is evaluated (2**20 codes take well under a second).
MAX_EXHAUSTIVE_WIDTH = 20


@dataclass(frozen=True)
class ErrorBound:
    """The maximum absolute error of a plan over every input code.

    ``max_abs`` is in real units, ``max_ulp`` in units of the output format's last place;
    ``at_code``/``at_input`` are the (first) input code and its real value where it occurs;
    ``mean_abs`` is the mean absolute error; ``codes`` is how many input codes were checked.
    ``faithful``: every output is within one output ulp of the exact value saturated to the
    output format's range (where the exact value lies beyond it, the format's end is the only
    faithful output). float64's own rounding of the exact value is allowed for (four of its
    ulps): tanh into SQ(1, 15), which lacks 1.0, is faithful with ``max_ulp`` exactly 1 where
    float64 rounds tanh to ±1.0 and the result is the code next to it.
    """
    max_abs: float
    max_ulp: float
    at_code: int
    at_input: float
    mean_abs: float
    codes: int
    faithful: bool

    def describe(self) -> dict:
        return {"max_abs": self.max_abs, "max_ulp": self.max_ulp, "at_code": self.at_code,
                "at_input": self.at_input, "mean_abs": self.mean_abs, "codes": self.codes,
                "faithful": self.faithful}


def check_exhaustive(in_format: Format) -> None:
    """Reject input formats too wide to evaluate on every code.

    Raises
    ------
    ValueError
        ``in_format`` is wider than :data:`MAX_EXHAUSTIVE_WIDTH` bits.
    """
    if in_format.width > MAX_EXHAUSTIVE_WIDTH:
        raise ParameterValueError(
            "in_format", f"in_format {in_format} has {in_format.width} bits; activation plans "
                         f"measure their error on every input code, up to "
                         f"{MAX_EXHAUSTIVE_WIDTH} bits")


def measure_error(function, in_format: Format, out_format: Format, outputs) -> ErrorBound:
    """Error of ``outputs`` (codes of ``out_format``, one per input code in ascending order)."""
    codes = in_format.codes()
    outputs = np.asarray(outputs, dtype=np.int64)
    if outputs.shape != codes.shape:
        raise ValueError(f"need one output per input code ({codes.size}), not {outputs.shape}")
    x = to_float(codes, in_format)
    exact = function(x)
    y = to_float(outputs, out_format)
    error = np.abs(y - exact)
    worst = int(np.argmax(error))
    saturated = np.clip(exact, out_format.min, out_format.max)
    # float64 rounds the exact value by up to an ulp of its own (tanh(-32) is -1.0, not
    # -1 + 2e-28): four of them are granted, so a result one output ulp from a value float64
    # rounded onto a code is judged on the true value's side, not on the rounding's.
    slack = 4 * np.finfo(np.float64).eps * np.abs(exact)
    faithful = bool(np.all(np.abs(y - saturated) < out_format.resolution + slack))
    return ErrorBound(max_abs=float(error[worst]),
                      max_ulp=float(error[worst] / out_format.resolution),
                      at_code=int(codes[worst]), at_input=float(x[worst]),
                      mean_abs=float(error.mean()), codes=int(codes.size), faithful=faithful)


def check_output_range(function, in_format: Format, out_format: Format, codes) -> None:
    """Reject an ``out_format`` more than one ulp short of ``function`` on the input ``codes``.

    ``codes`` are the (ascending) input codes the plan approximates.

    Raises
    ------
    ValueError
        The function is not finite there, or its values reach beyond ``out_format`` by more
        than one output ulp.
    """
    with np.errstate(all="ignore"):
        values = function(to_float(codes, in_format))
    if not np.all(np.isfinite(values)):
        raise ParameterValueError("function", f"{function.name} is not finite on the input "
                                              f"range")
    low, high = float(values.min()), float(values.max())
    ulp = out_format.resolution
    if high > out_format.max + ulp or low < out_format.min - ulp:
        start = float(codes[0]) * in_format.resolution
        stop = float(codes[-1] + 1) * in_format.resolution
        raise ParameterValueError(
            "out_format", f"out_format {out_format} [{out_format.min}, {out_format.max}] cannot "
                         f"hold {function.name}'s range [{low:.6g}, {high:.6g}] over the input "
                         f"range [{start:g}, {stop:g})")
