"""Measured error of an activation plan: every input code, against float64 math.

The guarantee a plan carries is not an estimate: its reference model is evaluated on every code
of the input format and compared with the exact function in float64. Where the maximum occurs
is recorded, so a user can check it in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixed import Format, to_float

__all__ = ["ErrorBound", "measure_error", "MAX_EXHAUSTIVE_WIDTH", "check_exhaustive"]

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
        raise ValueError(f"in_format {in_format} has {in_format.width} bits; activation plans "
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
