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
from .fit import fit_piece
from .plan import PolyPlan

__all__ = ["build", "measured", "narrowest", "spans", "no_worse_than"]


def spans(problem: Problem, ends) -> list[tuple[int, int, bool]]:
    """(first, last, is_constant) of every piece, as target indices, given the range's ends."""
    last = len(problem.t) - 1
    r0, r1 = problem.r0, ends[-1]
    pieces = [(0, r0 - 1, True)] if r0 > 0 else []
    a = r0
    for end in ends:
        pieces.append((a, end, False))
        a = end + 1
    if r1 < last:
        pieces.append((r1 + 1, last, True))
    return pieces


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

    best = plan_at(scales)

    def lowest(shape, low, high):
        """Lowest ``v`` in [low, high] with ``accept(plan_at(shape(v)))`` (high accepted)."""
        while high > low:
            mid = (low + high) // 2
            if accept(plan_at(shape(mid))):
                high = mid
            else:
                low = mid + 1
        return high

    base = list(scales)
    drop = lowest(lambda v: [s - (base[0] - v) for s in base],
                  max(lowest_shift, base[0] - 12), base[0])
    current = [s - (base[0] - drop) for s in base]
    for k in reversed(range(1, len(current))):
        floor = current[k - 1]
        top = current[k]
        value = lowest(lambda v: current[:k] + [v] + current[k + 1:], floor, top)
        current[k] = value
    best = plan_at(current)
    return best
