"""From a partition of the range to a measured PWL plan: candidates, the shift, the winner.

:func:`plan_for` fits every candidate partition (uniform, minimax on the continuous error,
minimax on the quantized error), keeps the one with the smallest measured error and then the
smallest shift at which no piece loses accuracy. :func:`quantized_error` is the piece error
the quantized breakpoint search uses.
"""

from __future__ import annotations

import numpy as np

from ...ref.pwl import pwl
from ..accuracy import measure_error
from .fit import SEARCH_CANDIDATES, TARGET_TOLERANCE, Problem
from .plan import PWLPlan

__all__ = ["plan_for", "quantized_error", "spans", "QUANTIZED_SEARCH_ULPS"]

# The quantized breakpoint search runs when the fitted error is below this many ulps: above
# it, output rounding changes the error by a few percent at most.
QUANTIZED_SEARCH_ULPS = 2.0
# ... and when there are at most this many pieces (its cost grows with their number).
_QUANTIZED_SEARCH_PIECES = 64


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


def _build(problem: Problem, ends, shift, kind, uniform_bits):
    """Fit every piece of the partition; return the plan (no error yet) and piece errors."""
    r0, r1 = problem.r0, ends[-1]
    starts, slopes, intercepts, errors = [], [], [], []
    for a, b, constant in spans(problem, ends):
        s, c, e = problem.constant(a, b, shift) if constant else problem.fit(a, b, shift, kind)
        starts.append(a + problem.low)
        slopes.append(s)
        intercepts.append(c)
        errors.append(e)
    plan = PWLPlan(function=problem.function, in_format=problem.in_format,
                   out_format=problem.out_format, symmetric=problem.symmetric,
                   starts=tuple(starts), slopes=tuple(slopes), intercepts=tuple(intercepts),
                   shift=shift, slope_kind=kind, uniform=uniform_bits is not None,
                   segment_bits=uniform_bits, range_start=r0 + problem.low,
                   range_stop=r1 + 1 + problem.low)
    return plan, errors


def _measured(plan: PWLPlan) -> PWLPlan:
    codes = plan.in_format.codes()
    error = measure_error(plan.function, plan.in_format, plan.out_format, pwl(plan, codes))
    return PWLPlan(**{**plan.__dict__, "error": error})


def _smallest_shift(problem: Problem, ends, kind, reference_errors) -> int:
    """The smallest shift at which no piece's error exceeds ``reference_errors`` (its error at
    the generous shift): narrower slopes and intercepts for the core, at no cost in accuracy.
    """
    partition = spans(problem, ends)
    # Constants do not depend on the shift. The widest pieces are the likeliest to fail.
    checks = sorted(((b - a, a, b, ref)
                     for (a, b, constant), ref in zip(partition, reference_errors)
                     if not constant), reverse=True)

    def fits(shift):
        return all(problem.fit(a, b, shift, kind)[2] <= ref + 1e-9 for _, a, b, ref in checks)

    # Slope rounding moves a piece's far end by up to width / 2**(shift+1) codes: the answer
    # is usually within a few bits of the widest piece's offset width.
    shift = min(checks[0][0].bit_length(), problem.shift0)
    if fits(shift):
        # Bisect below: the smallest shift that still fits (fitting is nearly monotone).
        low, high = -1, shift
        while high - low > 1:
            mid = (low + high) // 2
            if fits(mid):
                high = mid
            else:
                low = mid
        return high
    while shift < problem.shift0 and not fits(shift):
        shift += 1
    return shift


def plan_for(problem: Problem, pieces: int, breakpoints: str, kind: str,
              extra=()) -> PWLPlan:
    """The best plan with at most ``pieces`` stored range pieces (measured).

    Candidate partitions: the uniform one; for optimal breakpoints also the minimax one on the
    continuous error, the one on the quantized error (where rounding matters), and ``extra``.
    The winner has the smallest measured maximum error, then the smallest error inside the
    range, then the fewest pieces.
    """
    shift0 = problem.shift0
    cache = {}
    uniform_ends, bits = problem.uniform_ends(pieces)
    bits_of = {tuple(uniform_ends): bits}

    def build(ends, shift):
        key = (tuple(ends), shift)
        if key not in cache:
            cache[key] = _build(problem, ends, shift, kind, bits_of.get(tuple(ends)))
        return cache[key]

    candidates = [uniform_ends]
    if breakpoints == "optimal":
        def real(a, b, target):
            return problem.real_error(a, b, kind)

        ends, reached = problem.optimal_ends(pieces, real)
        candidates = [ends] + candidates
        worst = max(build(ends, shift0)[1])
        if worst < QUANTIZED_SEARCH_ULPS and pieces <= _QUANTIZED_SEARCH_PIECES:
            found = problem.optimal_ends(pieces, quantized_error(problem, kind),
                                         low=max(0.0, reached - 0.5), high=worst,
                                         tolerance=4 * TARGET_TOLERANCE)
            if found is not None:
                candidates = [found[0]] + candidates
        candidates = [list(ends) for ends in extra] + candidates
    best = None
    for ends in candidates:
        plan, errors = build(ends, shift0)
        plan = _measured(plan)
        inside = max(e for (_, _, constant), e in zip(spans(problem, ends), errors)
                     if not constant)
        # Ties on the maximum (often set by the saturation constants) go to the smaller error
        # inside the range, then to fewer pieces, then to the smaller mean.
        key = (plan.error.max_abs, inside, plan.stored_pieces, plan.error.mean_abs)
        if best is None or key < best[0]:
            best = (key, ends)
    ends = best[1]
    shift = _smallest_shift(problem, ends, kind, build(ends, shift0)[1])
    return _measured(build(ends, shift)[0])


def quantized_error(problem: Problem, kind: str):
    """Piece error for the quantized breakpoint search. The continuous error E decides where
    it can: a quantized fit reaches E + 1/2 ulp plus the slope and intercept rounding (and the
    targets' distance beyond the output range), and cannot beat E - 1/2 ulp unless the clip
    can act (targets within the error of the output range's ends). A quantized fit decides
    in between."""
    cache = {}
    shift = problem.shift0
    tiny = 2.0 ** -shift

    def error(a, b, target):
        if (a, b) in cache:
            return cache[a, b]
        real = problem.real_error(a, b, kind)
        slack = tiny + ((b - a) * tiny / 2 if kind == "any" else 0.0)
        t, tc = problem.t[a:b + 1], problem.tc[a:b + 1]
        upper = real + 0.5 + slack + float(np.abs(t - tc).max())
        if upper <= target:
            return upper
        if real - 0.5 > target:
            # Where no target is within reach of the output range's ends the clip cannot act
            # and E - 1/2 bounds the quantized error below; check the longest such prefix.
            near = (tc >= problem.out_hi - target - 1) | (tc <= problem.out_lo + target + 1)
            stop = b if not near.any() else a + int(np.argmax(near)) - 1
            if stop >= a and (stop == b or problem.real_error(a, stop, kind) - 0.5 > target):
                return real - 0.5
        cache[a, b] = problem.fit(a, b, shift, kind, count=SEARCH_CANDIDATES)[2]
        return cache[a, b]

    return error
