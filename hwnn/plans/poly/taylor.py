"""Taylor-series plans: one truncated series in Horner form, its input clamped to a range.

The coefficients are the function's own Taylor coefficients around ``centre`` (from
``Function.series``), rounded at their scales; only the ``d**0`` one carries the rounding of
the output to nearest. Nothing is fitted: the plan is the series, and its measured error shows
what the series costs away from its centre. Outside the range the input is clamped, so the
output there is the series' value at the range's end (a constant piece).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ...checks import ParameterValueError, check_integer, check_number
from ...fixed import to_float
from ...ref.poly import horner
from ..functions import check_input_range
from ..pieces import domain_of
from ..pwl.fit import Problem
from .fit import GUARD_BITS, scales_for
from .plan import PolyPlan
from .select import measured, narrowest, no_worse_than

__all__ = ["plan_taylor", "MAX_ORDER"]

#: Highest order of a Taylor plan.
MAX_ORDER = 9


def _series(function, centre, order) -> np.ndarray:
    if function.series is None:
        raise ParameterValueError("function", f"{function.name} has no Taylor series in hwnn "
                                              f"(Function.series); use method 'poly'")
    return np.asarray(function.series(centre, order), dtype=np.float64)


def _auto_range(problem: Problem, origin: int, coef: np.ndarray) -> tuple[int, int]:
    """The clamp range ``[start, stop)`` (target indices, inclusive ends) around ``origin``
    that minimizes the maximum error, judged in float: the series inside, its value at the
    nearer end outside."""
    n = len(problem.t)
    centre = origin - problem.low
    d = np.arange(n, dtype=np.float64) - centre
    with np.errstate(all="ignore"):
        series = np.polynomial.polynomial.polyval(d, coef)
    series = np.clip(series, problem.out_lo, problem.out_hi)
    inside = np.abs(series - problem.t)
    best, best_error = (centre, centre), np.inf
    # Symmetric about the centre in codes (the folded case has the centre at one end).
    radius_max = max(centre, n - 1 - centre) + 1
    radii = np.unique(np.round(np.geomspace(1, radius_max, 400)).astype(int))
    for radius in radii:
        lo, hi = max(0, centre - radius + 1), min(n - 1, centre + radius - 1)
        error = float(inside[lo:hi + 1].max())
        if lo > 0:
            error = max(error, float(np.abs(problem.t[:lo] - series[lo]).max()))
        if hi < n - 1:
            error = max(error, float(np.abs(problem.t[hi + 1:] - series[hi]).max()))
        if error < best_error:
            best, best_error = (int(lo), int(hi)), error
    return best


def plan_taylor(function, problem: Problem, *, order=3, centre=0.0, input_range=None,
                multipliers="dsp") -> PolyPlan:
    """The Taylor plan of ``order`` around ``centre`` on ``problem``'s domain (see
    :func:`hwnn.plans.poly.plan_poly` for the public entry point)."""
    order = check_integer(order, "order", minimum=1, maximum=MAX_ORDER)
    centre = check_number(centre, "centre")
    fmt = problem.in_format
    origin = centre * 2.0 ** fmt.f
    low, high = domain_of(fmt, problem.symmetric)
    if origin != math.floor(origin) or not low <= origin <= high:
        raise ParameterValueError("centre", f"centre must be a value of {fmt} within the "
                                            f"{'folded ' if problem.symmetric else ''}domain "
                                            f"[{to_float(low, fmt):g}, {to_float(high, fmt):g}]"
                                            f", not {centre!r}")
    origin = int(origin)
    # Coefficients of d**k with d in input codes, in output codes.
    coef = _series(function, centre, order) * (fmt.resolution ** np.arange(order + 1)) \
        * 2.0 ** problem.out_format.f
    if input_range is None:
        lo, hi = _auto_range(problem, origin, coef)
    else:
        code_lo, code_hi = check_input_range(input_range, fmt, problem.symmetric, "plan")
        lo = 0 if problem.symmetric else max(code_lo, low) - low
        hi = min(code_hi - 1, high) - low
        if not lo <= origin - low <= hi:
            raise ParameterValueError("centre", f"centre {centre:g} must lie in input_range "
                                                f"{input_range!r}")
    reach = int(max(origin - low - lo, hi - (origin - low), 1))
    offset_bits = reach.bit_length()

    def make(scales):
        rows = [math.floor(coef[k] * 2.0 ** scales[k] + 0.5) for k in range(order + 1)]
        if scales[0]:
            rows[0] += 1 << (scales[0] - 1)        # the final floor rounds to nearest
        return _clamped(function, problem, lo, hi, origin, order, tuple(rows), scales,
                        multipliers, centre)

    try:
        generous = make(scales_for(order, offset_bits, GUARD_BITS))
    except ParameterValueError as exc:
        if exc.parameter != "coefficients":
            raise
        stop = float(to_float(hi + 1 + low, fmt))
        start = -stop if problem.symmetric else float(to_float(lo + low, fmt))
        span = f"[{start:g}, {stop:g})"
        raise ParameterValueError(
            "input_range", f"the order-{order} series of {function.name} over {span} reaches "
                           f"values beyond 2**62 in its Horner steps (int64); narrow "
                           f"input_range or lower the order") from None
    # A final shift of at least 1: the series' output is rounded to nearest, as stated.
    return narrowest(make, scales_for(order, offset_bits, GUARD_BITS),
                     no_worse_than(generous), lowest_shift=1)


def _clamped(function, problem, lo, hi, origin, order, row, scales, multipliers, centre):
    """The measured plan: the series on target indices ``lo..hi``, constants beyond (the
    series' outputs at ``lo`` and ``hi``: the input clamped)."""
    zero = (0,) * order
    starts, origins, rows = [lo + problem.low], [origin], [row]
    if lo > 0:
        starts.insert(0, problem.low)
        origins.insert(0, problem.low)
        rows.insert(0, (0,) + zero)
    if hi < len(problem.t) - 1:
        starts.append(hi + 1 + problem.low)
        origins.append(hi + 1 + problem.low)
        rows.append((0,) + zero)
    plan = PolyPlan(function=function, in_format=problem.in_format,
                    out_format=problem.out_format, symmetric=problem.symmetric,
                    method="taylor", degree=order, starts=tuple(starts), origins=tuple(origins),
                    coefficients=tuple(rows),
                    shifts=tuple(scales[k + 1] - scales[k] for k in range(order)),
                    shift=scales[0], uniform=False, segment_bits=None,
                    range_start=lo + problem.low, range_stop=hi + 1 + problem.low,
                    centre=centre, multipliers=multipliers)
    out = problem.out_format
    at_ends = np.clip(horner(plan, np.array([lo, hi]) + problem.low)[-1] >> scales[0],
                      out.min_int, out.max_int)
    rows = [(int(at_ends[0]) << scales[0],) + zero if start < lo + problem.low
            else (int(at_ends[1]) << scales[0],) + zero if start > lo + problem.low else r
            for start, r in zip(starts, rows)]
    return measured(replace(plan, coefficients=tuple(rows)))
