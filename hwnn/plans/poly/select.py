"""From a partition and scales to a measured polynomial plan, and the narrowest scales.

:func:`build` fits every piece of a partition at given scales and measures the plan on every
input code. :func:`narrowest` then lowers the scales (the intermediate widths a core builds)
as far as an acceptance test allows: first the common guard bits, then each power's scale.
"""

from __future__ import annotations

from dataclasses import replace


from ...ref.poly import poly
from ..accuracy import measure_error
from ..pwl.fit import Problem
from ..pwl.select import spans
from .fit import fit_piece
from .plan import PolyPlan

__all__ = ["build", "measured", "narrowest", "no_worse_than"]

# The bisection over the common drop of the scales looks at most this far down (the final
# shift stops it sooner: it never goes below lowest_shift, and the generous one is 6).
_MOST_DROP = 12


def measured(plan: PolyPlan) -> PolyPlan:
    """``plan`` with its error measured on every input code."""
    codes = plan.in_format.codes()
    error = measure_error(plan.function, plan.in_format, plan.out_format, poly(plan, codes))
    return replace(plan, error=error)


def build(problem: Problem, ends, degree, scales, *, uniform_bits=None, multipliers="dsp",
          method="poly") -> PolyPlan:
    """The measured plan of pieces ending at ``ends`` (target indices), each fitted at
    ``scales``; pieces outside the range are the best constants."""
    shift = scales[0]
    starts, origins, rows = [], [], []
    for a, b, constant in spans(problem, ends):
        start = a + problem.low
        if constant:
            _, value, _ = problem.constant(a, b, shift)
            row = (value,) + (0,) * degree
        else:
            row, _ = fit_piece(problem, a, b, start, degree, scales)
        starts.append(start)
        origins.append(start)
        rows.append(row)
    plan = PolyPlan(function=problem.function, in_format=problem.in_format,
                    out_format=problem.out_format, symmetric=problem.symmetric, method=method,
                    degree=degree, starts=tuple(starts), origins=tuple(origins),
                    coefficients=tuple(rows),
                    shifts=tuple(scales[k + 1] - scales[k] for k in range(degree)),
                    shift=shift, uniform=uniform_bits is not None, segment_bits=uniform_bits,
                    range_start=problem.r0 + problem.low,
                    range_stop=ends[-1] + 1 + problem.low, multipliers=multipliers)
    return measured(plan)


def no_worse_than(reference: PolyPlan, slack_ulps: float = 2.0 ** -8):
    """An acceptance test: the maximum error no larger than ``reference``'s (plus
    ``slack_ulps``) and the mean error at most 1 % larger."""
    ulp = reference.out_format.resolution
    limit = reference.error.max_abs + slack_ulps * ulp
    mean = reference.error.mean_abs * 1.01 + slack_ulps * ulp

    def accept(plan):
        return plan.error.max_abs <= limit and plan.error.mean_abs <= mean
    return accept


def narrowest(make, scales, accept, lowest_shift=0):
    """The plan ``make(scales)`` with the lowest scales ``accept`` takes, starting from
    ``scales`` (which it must take): first all scales down together (the guard bits, the
    final shift staying at least ``lowest_shift``), then each power's scale from the highest
    down, each as low as it goes (a bisection; the scales stay non-decreasing in the power, so
    every shift is ``>= 0``)."""
    cache = {}

    def plan_at(candidate):
        candidate = tuple(candidate)
        if candidate not in cache:
            cache[candidate] = make(candidate)
        return cache[candidate]

    def lowest(shape, low, high):
        """Lowest ``v`` in [low, high] with ``accept(plan_at(shape(v)))`` (high accepted)."""
        while high > low:
            mid = (low + high) // 2
            if accept(plan_at(shape(mid))):
                high = mid
            else:
                low = mid + 1
        return high

    def lowered(by):
        return [s - by for s in scales]
    drop = scales[0] - lowest(lambda v: lowered(scales[0] - v),
                              max(lowest_shift, scales[0] - _MOST_DROP), scales[0])
    current = lowered(drop)
    for k in reversed(range(1, len(current))):
        current[k] = lowest(lambda v: current[:k] + [v] + current[k + 1:], current[k - 1],
                            current[k])
    return plan_at(current)
