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
    """
    max_abs: float
    max_ulp: float
    at_code: int
    at_input: float
    mean_abs: float
    codes: int

    @property
    def faithful(self) -> bool:
        """Every output is within one output ulp of the exact value."""
        return self.max_ulp < 1.0

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
    error = np.abs(to_float(outputs, out_format) - function(x))
    worst = int(np.argmax(error))
    return ErrorBound(max_abs=float(error[worst]),
                      max_ulp=float(error[worst] / out_format.resolution),
                      at_code=int(codes[worst]), at_input=float(x[worst]),
                      mean_abs=float(error.mean()), codes=int(codes.size))


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
