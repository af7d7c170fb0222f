"""The fitting engine (hwnn.plans.pwl.fit): each piece's integer line is optimal."""

import numpy as np
import pytest

from hwnn.fixed import SQ, UQ, to_float
from hwnn.plans.pwl import plan_pwl, slope_allowed
from pwl_helpers import PLANS, chord, piece_errors, pieces


@pytest.fixture(scope="module", params=PLANS, ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}-{p[3]}")
def plan(request):
    function, fin, fout, options = request.param
    return plan_pwl(function, fin, fout, **options)


def test_every_piece_beats_interpolation_and_constants(plan):
    for j, first, last in pieces(plan):
        error = piece_errors(plan, first, last, [plan.slopes[j]], [plan.intercepts[j]])[0]
        # The best constant, from all candidates around the values' range.
        t = plan.function(to_float(np.arange(first, last + 1), plan.in_format))
        mid = np.arange(np.floor(t.min() * 2 ** plan.out_format.f) - 1,
                        np.ceil(t.max() * 2 ** plan.out_format.f) + 2).astype(np.int64)
        constants = piece_errors(plan, first, last, np.zeros_like(mid), mid << plan.shift)
        assert error <= constants.min()
        if plan.slope_kind == "any" and last > first:
            s, c = chord(plan, first, last)
            assert error <= piece_errors(plan, first, last, [s], [c])[0]


def test_intercept_and_slope_search_is_exhaustive_on_small_pieces():
    """Each piece's (S, C) is the best of every slope near the chord's and every intercept."""
    for function, fout, kind in [("tanh", SQ(1, 7), "any"), ("sigmoid", UQ(0, 6), "pot2"),
                                 ("tanh", SQ(2, 5), "any")]:
        plan = plan_pwl(function, SQ(3, 5), fout, segments=6, slopes=kind, symmetric=False)
        one = 1 << plan.shift
        for j, first, last in pieces(plan):
            if plan.slopes[j] == 0 and not plan.range_start <= first < plan.range_stop:
                continue
            s0, _ = chord(plan, first, last) if last > first else (0, 0)
            reach = 4 * one // max(1, last - first) + 8
            slopes = [s for s in range(s0 - reach, s0 + reach + 1) if slope_allowed(s, kind)]
            t = plan.function(to_float(np.arange(first, last + 1), plan.in_format))
            span = (abs(s0) // one + 1) * (last - first + 1)
            low = int((t.min() * 2 ** fout.f - 4 - span) * one)
            high = int((t.max() * 2 ** fout.f + 4 + span) * one)
            intercepts = np.arange(low, high + 1)
            best = min(piece_errors(plan, first, last, np.full(intercepts.size, s),
                                    intercepts).min() for s in slopes)
            got = piece_errors(plan, first, last, [plan.slopes[j]], [plan.intercepts[j]])[0]
            assert got == best, (function, kind, j)


SECOND_DERIVATIVE = {
    "tanh": lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
    "sigmoid": lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s),
}
# Bounds of |f'''|, to turn the maximum of |f''| on a grid into a bound on the interval:
# tanh''' = -2(1 - t^2)(1 - 3t^2) with t^2 in [0, 1], so |tanh'''| <= 2; sigmoid''' =
# v(1 - 6v) with v = s(1 - s) in [0, 1/4], so |sigmoid'''| <= 1/8.
THIRD_DERIVATIVE_BOUND = {"tanh": 2.0, "sigmoid": 1 / 8}


@pytest.mark.parametrize("function, breakpoints", [("tanh", "uniform"), ("tanh", "optimal"),
                                                   ("sigmoid", "uniform")])
def test_error_within_the_derived_bound(function, breakpoints):
    """A concave piece of width h has a minimax line within max|f''| h**2 / 16; rounding adds
    half an ulp, and the slope and intercept rounding (n - 1) / 2**(shift+1) + 2**-shift ulps.
    A constant piece is within half the values' range plus half an ulp."""
    fin, fout = SQ(5, 9), SQ(2, 14)    # holds +-1 exactly: no clipping in the bounds
    plan = plan_pwl(function, fin, fout, segments=16, breakpoints=breakpoints,
                    input_range=(-6, 6))
    ulp = fout.resolution
    for j, first, last in pieces(plan):
        x = to_float(np.arange(first, last + 1), fin)
        t = plan.function(x)
        error = piece_errors(plan, first, last, [plan.slopes[j]], [plan.intercepts[j]])[0]
        if plan.range_start <= first < plan.range_stop:
            # Between grid points |f''| exceeds its grid maximum by at most
            # max|f'''| * spacing / 2.
            dense = np.linspace(x[0], x[-1], 4097)
            curvature = np.abs(SECOND_DERIVATIVE[function](dense)).max() \
                + THIRD_DERIVATIVE_BOUND[function] * (dense[1] - dense[0]) / 2
            n = last - first + 1
            bound = curvature * (x[-1] - x[0]) ** 2 / 16 \
                + ulp * (0.5 + (n - 1) / 2 ** (plan.shift + 1) + 2.0 ** -plan.shift)
        else:
            bound = (t.max() - t.min()) / 2 + ulp / 2
        assert error <= bound, (j, error, bound)
