"""Piecewise-linear (PWL) activation plans for smooth functions, fitted in fixed point.

Integer semantics (what :func:`hwnn.ref.pwl.pwl` computes and a core must mirror bit for bit)::

    if symmetric:                                   # only for functions with a Symmetry
        c, negative = fold(q, in_format)            # c = |q|, 0 <= c <= 2**(width-1)
    else:
        c = q                                       # in_format.min_int <= c <= max_int
    j = searchsorted(starts, c, side="right") - 1   # starts[j] <= c < starts[j+1]
    v = slopes[j] * (c - starts[j]) + intercepts[j] # exact integers, |v| < 2**62 always
    y = clip(v >> shift, out_format.min_int, out_format.max_int)   # >> is floor
    if symmetric:
        y = unfold(y, negative, function.symmetry, out_format)    # -y or one - y, saturated

``fold``/``unfold`` are those of :mod:`hwnn.ref.integers`. ``starts[0]`` is the low end of
the domain (0 folded, ``in_format.min_int`` otherwise) and the last piece runs to the high end
(``2**(width-1)`` folded, ``max_int`` otherwise). ``0 <= c - starts[j]`` always, and
``S_j * (c - starts[j]) + C_j`` fits the signed width ``cost()["sum_bits"]``. Rounding to
nearest is folded into the intercepts at plan time, so the hardware needs a floor only.
Pieces outside the approximation range ``[range_start, range_stop)`` (in ``c`` codes) are
ordinary pieces with slope 0 (saturation constants, ``C_j = value << shift``).

Slope kinds: ``"any"`` (any integer), ``"pot"`` (0 or ``±2**e``: one shifter), ``"pot2"``
(0, ``±2**e`` or ``±(2**e ± 2**g)``: two shifters and an adder); :func:`slope_terms` gives the
signed power-of-two terms of a slope. A uniform plan's pieces inside the range all start at
``range_start + j * 2**segment_bits``, so for ``range_start <= c < range_stop`` the piece index
is ``(c - range_start) >> segment_bits``, clamped to the last range piece: when a folded range
reaches the domain's end, the one code ``2**(width-1)`` (the most negative input) belongs to
the last piece, which is then one code longer.

How plans are fitted: each piece gets the integer slope and intercept minimizing its maximum
error *after* the floor and the output clip, measured on the piece's codes (a search over
slopes near the continuous minimax line, each with its exactly optimal intercept). Optimal
(non-uniform) breakpoints come from a binary search on the error target with greedy maximal
pieces, on the continuous minimax error and then, where output rounding matters, on the
quantized error itself. The shift is the smallest at which no piece loses accuracy against
a generous one (the widest offset's bits plus :data:`.fit.GUARD_BITS`), within int64.

The package: :mod:`.plan` (the dataclass and its checks), :mod:`.ranges` (the input range),
:mod:`.fit` (the fitting engine), :mod:`.select` (partitions to a measured plan), and here the
entry points :func:`plan_pwl` and :func:`fit_pwl`.
"""

from __future__ import annotations

from ...checks import (ParameterValueError, check_choice, check_integer, check_number)
from ...fixed import check_format
from ..accuracy import check_exhaustive
from ..functions import Function, check_symmetry, get_function
from .fit import Problem
from .plan import SLOPE_KINDS, PWLPlan, slope_allowed, slope_terms
from .ranges import check_range, range_codes
from .select import QUANTIZED_SEARCH_ULPS, plan_for, quantized_error

__all__ = ["PWLPlan", "plan_pwl", "fit_pwl", "prepare_problem", "stored_pieces",
           "BREAKPOINTS", "SLOPE_KINDS", "slope_terms", "slope_allowed"]

#: How breakpoints are placed: power-of-two uniform pieces, or non-uniform minimax.
BREAKPOINTS = ("uniform", "optimal")


def _check_function(function, method) -> Function:
    function = get_function(function)
    if not function.smooth:
        raise ParameterValueError("function", f"{function.name} is computed exactly (method "
                                              f"'exact'); {method} plans are for smooth "
                                              f"functions")
    return function


def prepare_problem(function, in_format, out_format, symmetric, input_range, *,
                    method="pwl") -> Problem:
    """The checked fitting problem of a piecewise plan: the smooth function, the formats, the
    symmetry (default: the function's, when the input is signed and the range symmetric) and
    the approximation range (default: :func:`~.ranges.range_codes`'s). ``method`` names the
    plan kind in errors."""
    function = _check_function(function, method)
    in_format = check_format(in_format, "in_format")
    out_format = check_format(out_format, "out_format")
    check_exhaustive(in_format)
    symmetric_given = symmetric
    symmetric = check_symmetry(function, in_format, out_format, symmetric)
    if symmetric and symmetric_given is None and input_range is not None:
        # "Use the symmetry if there is one": an asymmetric range has none to use.
        try:
            r_lo, r_hi = (float(v) for v in input_range)
            symmetric = r_lo == -r_hi
        except (TypeError, ValueError):
            pass
    start, stop = range_codes(function, in_format, out_format, symmetric, input_range)
    check_range(function, in_format, out_format, symmetric, start, stop)
    return Problem(function, in_format, out_format, symmetric, start, stop)


def _prepare(function, in_format, out_format, breakpoints, slopes, symmetric, input_range):
    check_choice(breakpoints, "breakpoints", BREAKPOINTS)
    check_choice(slopes, "slopes", SLOPE_KINDS)
    return prepare_problem(function, in_format, out_format, symmetric, input_range)


def _real_range(problem: Problem) -> str:
    res = problem.in_format.resolution
    stop = min(problem.r1 + 1 + problem.low, 1 << (problem.in_format.width - 1)) \
        if problem.symmetric else problem.r1 + 1 + problem.low
    start = -stop if problem.symmetric else problem.r0 + problem.low
    return f"[{start * res:g}, {stop * res:g})"


def stored_pieces(problem: Problem, segments) -> int:
    """The stored range pieces ``segments`` asks for (checked: half of it when symmetric)."""
    segments = check_integer(segments, "segments", minimum=1)
    span = problem.r1 - problem.r0 + 1
    factor = 2 if problem.symmetric else 1
    if problem.symmetric and segments % 2:
        raise ParameterValueError(
            "segments", f"a symmetric plan has an even number of segments (each stored piece "
                        f"serves both signs), not {segments}; pass symmetric=False for an odd "
                        f"count")
    if segments > factor * span:
        raise ParameterValueError(
            "segments", f"segments must be an integer between 1 and {factor * span} (one per "
                        f"input code of the range {_real_range(problem)}), not {segments}")
    return segments // factor


def plan_pwl(function, in_format, out_format, *, segments, breakpoints="optimal", slopes="any",
             symmetric=None, input_range=None) -> PWLPlan:
    """A piecewise-linear plan for a smooth ``function`` with at most ``segments`` segments.

    Every piece's integer slope and intercept minimize its maximum error after the floor and
    the output clip; the plan's ``error`` is measured on every input code.

    Parameters
    ----------
    function : str or Function
        A smooth registered function (sigmoid, tanh, ...).
    in_format, out_format : Format or str
    segments : int
        Linear pieces over the input range, counted over the full (unfolded) range: even for a
        symmetric plan, which stores ``segments // 2``. A plan may use fewer (see
        :attr:`PWLPlan.segments`): uniform plans use the fewest pieces of their power-of-two
        width that cover the range, and optimal plans fewer pieces where that costs no error.
    breakpoints : "uniform" or "optimal"
        ``"uniform"``: pieces of the smallest power-of-two width ``2**m`` with
        ``segments * 2**m`` covering the range (the range then extends to whole pieces, within
        the input format). ``"optimal"``: non-uniform, minimizing the maximum error: a binary
        search on the error target with greedy maximal pieces, first on each piece's
        continuous minimax error, then (where the fitted error is within a couple of ulps and
        there are at most 64 pieces) on its quantized error; the uniform partition is a
        candidate too, so optimal is never worse than uniform at the same count.
    slopes : "any", "pot" or "pot2"
        Integer slopes allowed: any, powers of two, or sums/differences of two powers of two.
    symmetric : bool, optional
        Fold the input and store the non-negative half (default: when the function has a
        symmetry, the input is signed and ``input_range`` is symmetric about 0).
    input_range : (float, float), optional
        Real interval ``[low, high)`` covered by linear pieces; outside it the output is the
        best constant (a slope-0 piece). Default: the smallest range ``[-K, K)`` outside of
        which the function is within half an output ulp of its asymptotes, within the input
        format; the constants are then the correctly rounded asymptotes (or a neighbouring code
        where that is strictly better on the codes it serves).

    Returns
    -------
    PWLPlan

    Raises
    ------
    TypeError
        A parameter has the wrong type (segments not an integer, a bad input_range, ...).
    ValueError
        An unknown function, breakpoints or slopes kind; a non-smooth function; segments out of
        range (or odd for a symmetric plan); an input_range outside the input format or empty
        (or asymmetric with symmetric=True); symmetric=True for a function without symmetry
        or an unsigned input; an unsigned out_format for an odd function; an out_format more
        than one ulp short of the function's range; an input format wider than
        :data:`~hwnn.plans.accuracy.MAX_EXHAUSTIVE_WIDTH`.
    """
    problem = _prepare(function, in_format, out_format, breakpoints, slopes, symmetric,
                       input_range)
    pieces = stored_pieces(problem, segments)
    return plan_for(problem, pieces, breakpoints, slopes)


def fit_pwl(function, in_format, out_format, max_error, *, breakpoints="optimal", slopes="any",
            symmetric=None, input_range=None, max_segments=256) -> PWLPlan:
    """The plan with the fewest segments whose measured ``error.max_abs <= max_error``.

    Optimal breakpoints: greedy maximal pieces with error <= ``max_error`` (on the quantized
    error where output rounding matters, else on the continuous error less the rounding's
    half ulp) give a count that suffices; then fewer pieces are tried while the minimax plan
    of :func:`plan_pwl` still meets ``max_error`` (more if the count fell short). Uniform
    breakpoints: piece widths are tried from the widest down. Other parameters as in
    :func:`plan_pwl`; ``max_segments`` counts like ``segments``.

    Raises
    ------
    TypeError
        ``max_error`` or ``max_segments`` has the wrong type, or as :func:`plan_pwl`.
    ValueError
        ``max_error`` is not positive, ``max_segments`` < 1, as :func:`plan_pwl`, the
        saturation constants outside the input range alone exceed ``max_error``, or no plan
        with up to ``max_segments`` segments meets ``max_error`` (the message gives the best
        error reached).
    """
    max_error = check_number(max_error, "max_error", positive=True, finite=False)
    max_segments = check_integer(max_segments, "max_segments", minimum=1)
    problem = _prepare(function, in_format, out_format, breakpoints, slopes, symmetric,
                       input_range)
    factor = 2 if problem.symmetric else 1
    span = problem.r1 - problem.r0 + 1
    most = min(max_segments // factor, span)
    if most < 1:
        raise ParameterValueError("max_segments", f"max_segments must be at least 2 for a "
                                                  f"symmetric plan, not {max_segments}")
    best = None

    def better(plan):
        return best is None or plan.error.max_abs < best.error.max_abs

    if breakpoints == "uniform":
        # Widest pieces first: the first plan that meets max_error has the fewest.
        bits = (span - 1).bit_length()
        while bits >= 0 and -(-span // (1 << bits)) <= most:
            plan = plan_for(problem, -(-span // (1 << bits)), breakpoints, slopes)
            if plan.error.max_abs <= max_error:
                return plan
            best = plan if better(plan) else best
            bits -= 1
    else:
        target = max_error * 2.0 ** problem.out_format.f
        last = len(problem.t) - 1
        outside = [(0, problem.r0 - 1)] if problem.r0 > 0 else []
        outside += [(problem.r1 + 1, last)] if problem.r1 < last else []
        saturation = max([problem.constant(a, b, problem.shift0)[2] for a, b in outside],
                         default=0.0)
        if saturation > target:
            # Only a wider range helps; when the range is automatic, the error target is what
            # the user chose.
            raise ParameterValueError(
                "max_error" if input_range is None else "input_range",
                f"no pwl plan for {problem.function.name} from {problem.in_format} to "
                f"{problem.out_format} meets max_error {max_error:g}: the constants outside "
                f"the input range {_real_range(problem)} alone have error "
                f"{saturation * problem.out_format.resolution:.3g}; widen input_range")
        if target < QUANTIZED_SEARCH_ULPS + 1:
            # Rounding matters: greedy maximal pieces on the quantized error itself.
            error = quantized_error(problem, slopes)
        else:
            # A fit reaches the continuous error + 1/2 ulp + slope/intercept rounding.
            error = (lambda a, b, _: problem.real_error(a, b, slopes))
            target -= 0.5 + 2.0 ** -problem.shift0 * (1 + (problem.r1 - problem.r0) / 2)
        found = problem.greedy(target, most, error) if target > 0 else None
        count = len(found[0]) if found is not None else most
        extra = [found[0]] if found is not None else []
        plan = plan_for(problem, count, breakpoints, slopes, extra=extra)
        if plan.error.max_abs > max_error:
            best = plan
            # The greedy count was not enough (the saturation constants, or heuristics).
            while best.error.max_abs > max_error and count < most:
                count += 1
                plan = plan_for(problem, count, breakpoints, slopes)
                best = plan if better(plan) else best
            if best.error.max_abs <= max_error:
                return best
        else:
            # Fewer pieces may still do: the minimax partitions beat the greedy's target.
            while count > 1:
                fewer = plan_for(problem, count - 1, breakpoints, slopes)
                if fewer.error.max_abs > max_error:
                    break
                plan, count = fewer, count - 1
            return plan
    reached = (f"the best reached {best.error.max_abs:.3g} with {best.segments} segments"
               if best is not None else "no plan fits")
    raise ParameterValueError(
        "max_error", f"no pwl plan for {problem.function.name} from {problem.in_format} to "
                     f"{problem.out_format} with up to {max_segments} segments meets max_error "
                     f"{max_error:g}; {reached}")
