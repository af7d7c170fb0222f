"""The input range a PWL plan approximates: given, or chosen from the function's asymptotes.

Outside the range ``[start, stop)`` (in ``c`` codes, folded when symmetric) a plan holds
slope-0 saturation constants; by default the range is the smallest ``[-K, K)`` outside of which
the function is within half an output ulp of its asymptotes.
"""

from __future__ import annotations


import numpy as np

from ...fixed import to_float
from ..accuracy import check_output_range
from ..functions import check_input_range
from .plan import domain_of

__all__ = ["range_codes", "check_range"]


def _asymptote(function, direction: float) -> float | None:
    """``lim f(x)`` for ``x -> direction * inf`` if f settles (to 1e-12), else None."""
    with np.errstate(all="ignore"):
        values = function(direction * np.ldexp(1.0, np.arange(40, 70, 10)))
    if not np.all(np.isfinite(values)):
        return None
    scale = max(1.0, float(np.abs(values).max()))
    if float(np.ptp(values)) > 1e-12 * scale:
        return None
    return float(values[-1])


def _auto_stop(function, in_format, out_format) -> int:
    """Smallest ``K`` such that every code outside ``[-K, K)`` is within half an output ulp of
    the asymptote on its side (a side without an asymptote needs the whole format)."""
    codes = in_format.codes()
    with np.errstate(all="ignore"):
        values = function(to_float(codes, in_format))
    half = out_format.resolution / 2
    need = 1
    high = _asymptote(function, 1.0)
    if high is None:
        need = max(need, in_format.max_int + 1)
    else:
        bad = codes[~(np.abs(values - high) <= half)]
        if bad.size:
            need = max(need, int(bad.max()) + 1)
    low = _asymptote(function, -1.0)
    if low is None:
        need = max(need, -in_format.min_int)
    else:
        bad = codes[~(np.abs(values - low) <= half)]
        if bad.size:
            need = max(need, -int(bad.min()))
    return need


def range_codes(function, in_format, out_format, symmetric, input_range) -> tuple[int, int]:
    """The approximation range ``[start, stop)`` in ``c`` codes (folded when symmetric)."""
    low, high = domain_of(in_format, symmetric)
    if input_range is None:
        stop_k = _auto_stop(function, in_format, out_format)
        start = max(low, -stop_k) if not symmetric else 0
    else:
        code_lo, stop_k = check_input_range(input_range, in_format, symmetric, "plan")
        start = 0 if symmetric else max(low, code_lo)
    if symmetric and stop_k >= high:
        # The folded domain's top code is the most negative input alone: keep it in the range
        # rather than spend a stored constant on it.
        return start, high + 1
    return start, min(stop_k, high + 1)


def check_range(function, in_format, out_format, symmetric, start, stop):
    """Reject an out_format more than one ulp short of the function over the range."""
    if symmetric:
        k = min(stop, 1 << (in_format.width - 1))
        codes = np.arange(max(-k, in_format.min_int), min(k - 1, in_format.max_int) + 1)
    else:
        codes = np.arange(start, stop)
    check_output_range(function, in_format, out_format, codes)
