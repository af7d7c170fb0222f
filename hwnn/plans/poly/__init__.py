"""Polynomial activation plans: piecewise minimax polynomials (``poly``) and truncated Taylor
series (``taylor``), evaluated in Horner form in integers.

Integer semantics (what :func:`hwnn.ref.poly.poly` computes and a core mirrors bit for bit)::

    c, negative = fold(q, in_format) if symmetric else (q, False)
    j = searchsorted(starts, c, side="right") - 1   # starts[j] <= c < starts[j+1]
    d = c - origins[j]                              # the offset the polynomial is in
    acc = coefficients[j][degree]
    for k in degree - 1, ..., 0:                    # Horner: one product per step
        acc = ((acc * d) >> shifts[k]) + coefficients[j][k]     # >> is floor
    y = clip(acc >> shift, out_format.min_int, out_format.max_int)
    if symmetric:
        y = unfold(y, negative, function.symmetry, out_format)

``acc_k`` holds a value in output codes times ``2**G_k`` (``G_0 = shift``, ``G_(k+1) = G_k +
shifts[k]``): every floor is a truncation the datapath makes, and the coefficients are chosen
for the error *after* them. Rounding to nearest is folded into the ``d**0`` coefficients, so
the hardware needs floors only. Pieces outside the approximation range ``[range_start,
range_stop)`` are constants (every coefficient but the ``d**0`` one is 0).

``poly``: pieces of ``degree`` 1 to 3, uniform (power-of-two widths: the piece index is a bit
slice of the input) or with optimal breakpoints (fewest pieces for the error; comparators find
the piece), ``d = c - starts[j]``, each piece's coefficients minimizing its maximum quantized
error. ``taylor``: one series of ``order`` around ``centre`` (``d = c - centre``), its input
clamped to ``input_range`` (default: the range that minimizes the maximum error).

The package: :mod:`.plan` (the dataclass, its checks and cost), :mod:`.fit` (fitting a piece),
:mod:`.select` (partitions and scales to a measured plan), :mod:`.taylor` (Taylor plans), and
here the entry points :func:`plan_poly`, :func:`plan_taylor` and :func:`fit_poly`.
"""

from __future__ import annotations

from ...checks import ParameterValueError, check_choice, check_integer, check_number
from ..pwl import prepare_problem, stored_pieces
from ..pwl.fit import Problem
from .fit import GUARD_BITS, SEARCH_STEPS, minimax, scales_for
from .plan import MAX_DEGREE, MULTIPLIERS, PolyPlan
from .select import build, narrowest, no_worse_than
from .taylor import MAX_ORDER
from .taylor import plan_taylor as _plan_taylor

__all__ = ["PolyPlan", "plan_poly", "plan_taylor", "fit_poly", "fit_taylor", "BREAKPOINTS",
           "MULTIPLIERS", "MAX_DEGREE", "MAX_ORDER", "FAITHFUL"]

#: ``max_error=FAITHFUL`` asks for a faithful plan (:attr:`ErrorBound.faithful
#: <hwnn.plans.accuracy.ErrorBound.faithful>`) instead of a number.
FAITHFUL = "faithful"

#: How a ``poly`` plan's breakpoints are placed (uniform is the default: no comparators).
BREAKPOINTS = ("uniform", "optimal")


def _problem(function, in_format, out_format, symmetric, input_range, method) -> Problem:
    return prepare_problem(function, in_format, out_format, symmetric, input_range,
                           method=method)


def _optimal_ends(problem: Problem, pieces: int, degree: int):
    """Breakpoints minimizing the largest piece's real minimax error (greedy maximal pieces
    and a bisection on the error target), judged on a quick fit."""
    cache = {}

    def error(a, b, target):
        if (a, b) not in cache:
            d = range(b - a + 1)
            cache[a, b] = minimax(d, problem.tc[a:b + 1], degree, steps=SEARCH_STEPS)[1]
        return cache[a, b]
    found = problem.optimal_ends(pieces, error)
    return found[0] if found is not None else problem.uniform_ends(pieces)[0]


def _partition(problem, pieces, breakpoints, degree):
    """(ends, uniform_bits) of ``pieces`` range pieces."""
    if breakpoints == "uniform":
        return problem.uniform_ends(pieces)
    return _optimal_ends(problem, pieces, degree), None


def _offset_bits(problem, ends) -> int:
    starts = [problem.r0] + [e + 1 for e in ends[:-1]]
    return max(e - s for s, e in zip(starts, ends)).bit_length()


def _plan_for(problem, pieces, degree, breakpoints, multipliers, accept=None,
              narrow=True) -> PolyPlan:
    """The measured plan of ``pieces`` range pieces at the narrowest scales ``accept`` takes
    (default: no worse than the generous scales), or at the generous scales if not
    ``narrow``."""
    ends, bits = _partition(problem, pieces, breakpoints, degree)
    offset_bits = _offset_bits(problem, ends)

    def make(scales):
        return build(problem, ends, degree, scales, uniform_bits=bits, multipliers=multipliers)
    generous = scales_for(degree, offset_bits, GUARD_BITS)
    plan = make(generous)
    test = accept or no_worse_than(plan)
    if not narrow or not test(plan):
        return plan
    return narrowest(make, generous, test)


def plan_poly(function, in_format, out_format, *, segments, degree=2, breakpoints="uniform",
              symmetric=None, input_range=None, multipliers="dsp") -> PolyPlan:
    """A piecewise-polynomial plan for a smooth ``function``, with its measured error.

    Every piece's integer coefficients minimize its maximum error after every floor the
    Horner steps make and the output clip; the intermediate scales are the narrowest at which
    the plan loses no accuracy against generous ones (:func:`.select.narrowest`).

    Parameters
    ----------
    function : str or Function
        A smooth registered function (sigmoid, tanh, ...).
    in_format, out_format : Format or str
    segments : int
        Pieces over the input range, counted over the full (unfolded) range: even for a
        symmetric plan, which stores ``segments // 2``. A plan may use fewer (see
        :attr:`PolyPlan.segments`): uniform plans use the fewest pieces of their power-of-two
        width that cover the range, optimal plans fewer pieces where that costs no error.
    degree : 1, 2 or 3
    breakpoints : "uniform" or "optimal"
        Power-of-two pieces (the piece is a bit slice of the input), or pieces placed to
        minimize the largest piece's error (comparators find the piece).
    symmetric : bool, optional
        Fold the input and store the non-negative half (default: when the function has a
        symmetry, the input is signed and ``input_range`` is symmetric about 0).
    input_range : (float, float), optional
        Real interval covered by polynomial pieces; outside, the best constants. Default: as
        :func:`~hwnn.plans.pwl.plan_pwl` (where the function is within half an output ulp of
        its asymptotes).
    multipliers : "dsp" or "lut"
        How a core builds the products (:data:`MULTIPLIERS`).

    Raises
    ------
    TypeError
        A parameter has the wrong type.
    ValueError
        As :func:`~hwnn.plans.pwl.plan_pwl`, and a degree outside 1..3 or an unknown
        multipliers kind.
    """
    degree = check_integer(degree, "degree", minimum=1, maximum=MAX_DEGREE)
    check_choice(breakpoints, "breakpoints", BREAKPOINTS)
    check_choice(multipliers, "multipliers", MULTIPLIERS)
    problem = _problem(function, in_format, out_format, symmetric, input_range, "poly")
    pieces = stored_pieces(problem, segments)
    return _plan_for(problem, pieces, degree, breakpoints, multipliers)


def plan_taylor(function, in_format, out_format, *, order=3, centre=0.0, symmetric=None,
                input_range=None, multipliers="dsp") -> PolyPlan:
    """The truncated Taylor series of ``function`` around ``centre``, in Horner form.

    The coefficients are the series' own, rounded at scales that lose nothing against
    generous ones; the output is rounded to nearest and saturated; outside ``input_range``
    the input is clamped. The measured error is the series' error on every input code.

    Parameters
    ----------
    function : str or Function
        A smooth function with a series (``Function.series``: sigmoid and tanh).
    in_format, out_format : Format or str
    order : int
        The highest power, 1 to :data:`MAX_ORDER`.
    centre : float
        The expansion point, a value of ``in_format`` (default 0).
    symmetric : bool, optional
        Fold the input (default: when the function has a symmetry, the input is signed, the
        centre is 0 and ``input_range``, if given, is symmetric).
    input_range : (float, float), optional
        The clamp range, holding the centre. Default: the range around the centre that
        minimizes the maximum error.
    multipliers : "dsp" or "lut"

    Raises
    ------
    TypeError
        A parameter has the wrong type.
    ValueError
        A function without a series, an order outside 1..:data:`MAX_ORDER`, a centre that is
        not a value of the input format (or outside ``input_range``), and the errors of
        :func:`plan_poly`'s shared parameters.
    """
    check_choice(multipliers, "multipliers", MULTIPLIERS)
    centre = check_number(centre, "centre")
    if symmetric is None and centre != 0:
        symmetric = False
    problem = _problem(function, in_format, out_format, symmetric, input_range, "taylor")
    return _plan_taylor(problem.function, problem, order=order, centre=centre,
                        input_range=input_range, multipliers=multipliers)


def fit_poly(function, in_format, out_format, max_error, *, degree=None, breakpoints="uniform",
             symmetric=None, input_range=None, multipliers="dsp",
             max_segments=512) -> PolyPlan:
    """The cheapest ``poly`` plan whose measured ``error.max_abs <= max_error`` (or, for
    ``max_error="faithful"``, whose error is faithful).

    For each degree (``degree``, or 1 to 3), the fewest pieces that meet ``max_error``
    (uniform: widths from the widest down; optimal: a bisection on the count), each at the
    narrowest scales that still meet it. Among degrees, the plan with the fewest bits to
    build: its table (``cost()["table_bits"]``) plus its products (the product of each
    step's operand widths, what a multiplier in logic costs), a proxy for LUT4.

    Raises
    ------
    TypeError, ValueError
        As :func:`plan_poly`; ``max_error`` not positive; ``max_segments`` < 1; or no plan
        with up to ``max_segments`` segments meets ``max_error`` (the message gives the best
        error reached).
    """
    meets = _target(max_error)
    max_segments = check_integer(max_segments, "max_segments", minimum=1)
    degrees = (range(1, MAX_DEGREE + 1) if degree is None else
               [check_integer(degree, "degree", minimum=1, maximum=MAX_DEGREE)])
    check_choice(breakpoints, "breakpoints", BREAKPOINTS)
    check_choice(multipliers, "multipliers", MULTIPLIERS)
    problem = _problem(function, in_format, out_format, symmetric, input_range, "poly")
    factor = 2 if problem.symmetric else 1
    span = problem.r1 - problem.r0 + 1
    most = min(max_segments // factor, span)
    if most < 1:
        raise ParameterValueError("max_segments", f"max_segments must be at least 2 for a "
                                                  f"symmetric plan, not {max_segments}")

    found, best = [], None
    for deg in degrees:
        plan = _fewest(problem, deg, breakpoints, multipliers, most, meets)
        if meets(plan):
            found.append(plan)
        elif best is None or plan.error.max_abs < best.error.max_abs:
            best = plan
    if found:
        return min(found, key=lambda p: (_build_bits(p), p.degree))
    raise ParameterValueError(
        "max_error", f"no poly plan for {problem.function.name} from {problem.in_format} to "
                     f"{problem.out_format} with up to {max_segments} segments meets max_error "
                     f"{_shown(max_error)}; the best reached {best.error.max_abs:.3g} with "
                     f"{best.segments} segments (degree {best.degree})")


def _target(max_error):
    """The acceptance test of ``max_error``: a positive number, or ``"faithful"``."""
    if max_error == FAITHFUL:
        return lambda plan: plan.error.faithful
    if isinstance(max_error, str):
        raise ParameterValueError("max_error", f"max_error must be a positive number or "
                                               f"{FAITHFUL!r}, not {max_error!r}")
    max_error = check_number(max_error, "max_error", positive=True, finite=False)
    return lambda plan: plan.error.max_abs <= max_error


def _shown(max_error) -> str:
    return max_error if isinstance(max_error, str) else f"{max_error:g}"


def fit_taylor(function, in_format, out_format, max_error, *, centre=0.0, symmetric=None,
               input_range=None, multipliers="dsp") -> PolyPlan:
    """The lowest-order Taylor plan (:func:`plan_taylor`) meeting ``max_error`` (a positive
    number or ``"faithful"``).

    Raises
    ------
    TypeError, ValueError
        As :func:`plan_taylor`; a bad ``max_error``; or no order up to :data:`MAX_ORDER` meets
        it (the message gives the best error reached and its order).
    """
    meets = _target(max_error)
    best = None
    for order in range(1, MAX_ORDER + 1):
        plan = plan_taylor(function, in_format, out_format, order=order, centre=centre,
                           symmetric=symmetric, input_range=input_range,
                           multipliers=multipliers)
        if meets(plan):
            return plan
        if best is None or plan.error.max_abs < best.error.max_abs:
            best = plan
    raise ParameterValueError(
        "max_error", f"no taylor plan for {best.function.name} from {best.in_format} to "
                     f"{best.out_format} up to order {MAX_ORDER} meets max_error "
                     f"{_shown(max_error)}; the best reached {best.error.max_abs:.3g} (order "
                     f"{best.order}, input range [{best.input_range[0]:g}, "
                     f"{best.input_range[1]:g}))")


def _build_bits(plan: PolyPlan) -> int:
    cost = plan.cost()
    operands = sum(a * cost["offset_bits"]
                   for a in [cost["coefficient_bits"][-1]] + cost["accumulator_bits"][:-1])
    return cost["table_bits"] + operands


def _fewest(problem, degree, breakpoints, multipliers, most, meets) -> PolyPlan:
    """The plan with the fewest pieces (up to ``most``) that ``meets``, at its narrowest
    scales; else the most accurate tried."""
    def at(pieces, final=False):
        # Only the answer is narrowed: a count meets the target at the generous scales or
        # not at all.
        return _plan_for(problem, pieces, degree, breakpoints, multipliers, accept=meets,
                         narrow=final)
    span = problem.r1 - problem.r0 + 1
    if breakpoints == "uniform":
        counts = sorted({-(-span // (1 << bits)) for bits in range(span.bit_length() + 1)})
        counts = [c for c in counts if c <= most]
    else:
        counts = list(range(1, most + 1))
    # A bisection on the count (more pieces never hurt by much).
    low, high = 0, len(counts) - 1
    best = at(counts[high])
    if not meets(best):
        return best
    while low < high:
        mid = (low + high) // 2
        if meets(at(counts[mid])):
            high = mid
        else:
            low = mid + 1
    return at(counts[high], final=True)
