import json

import numpy as np
import pytest

from hwnn.fixed import SQ, UQ, to_float
from hwnn.plans.activation import fit_activation, plan_activation
from hwnn.plans.functions import Function
from hwnn.plans.pwl import fit_pwl, plan_pwl, slope_allowed, slope_terms
from hwnn.ref.pwl import pwl

TANH_IN, TANH_OUT = SQ(6, 10), SQ(1, 15)


def code_errors(plan):
    """|output - f(x)| on every input code, in float64, as the plan's error is defined."""
    codes = plan.in_format.codes()
    x = to_float(codes, plan.in_format)
    return codes, np.abs(to_float(pwl(plan, codes), plan.out_format) - plan.function(x))


def pieces(plan):
    """(j, first c, last c) of every stored piece."""
    ends = list(plan.starts[1:]) + [plan.domain[1] + 1]
    return [(j, start, end - 1) for j, (start, end) in enumerate(zip(plan.starts, ends))]


def piece_errors(plan, first, last, slopes, intercepts):
    """Max error (real units) over codes first..last of each (slope, intercept) pair, with the
    plan's shift, floor and clip, evaluated on folded codes (the mirror has the same error)."""
    c = np.arange(first, last + 1)
    exact = plan.function(to_float(c, plan.in_format))
    slopes = np.asarray(slopes, dtype=np.int64)[:, None]
    intercepts = np.asarray(intercepts, dtype=np.int64)[:, None]
    y = np.clip((slopes * (c - first) + intercepts) >> plan.shift,
                plan.out_format.min_int, plan.out_format.max_int)
    return np.abs(to_float(y, plan.out_format) - exact).max(axis=1)


def chord(plan, first, last):
    """Interpolation through the piece's end points, rounded to nearest at the plan's shift."""
    s, fo = plan.shift, plan.out_format.f
    t = plan.function(to_float(np.array([first, last]), plan.in_format)) * 2.0 ** fo
    slope = (t[1] - t[0]) / (last - first)
    return (int(np.floor(slope * 2.0 ** s + 0.5)),
            int(np.floor(t[0] * 2.0 ** s + 0.5)) + (1 << (s - 1) if s else 0))


PLANS = [
    ("tanh", SQ(4, 6), SQ(1, 7), dict(segments=8)),
    ("tanh", SQ(4, 6), SQ(1, 7), dict(segments=8, breakpoints="uniform")),
    ("sigmoid", SQ(4, 6), UQ(0, 8), dict(segments=7, symmetric=False)),
    ("sigmoid", SQ(4, 6), UQ(0, 12), dict(segments=12, slopes="pot2")),
    ("tanh", SQ(4, 6), SQ(2, 10), dict(segments=6, slopes="pot", input_range=(-3, 3))),
    ("tanh", TANH_IN, TANH_OUT, dict(segments=16, input_range=(-4, 4))),
]


@pytest.fixture(scope="module", params=PLANS, ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}-{p[3]}")
def plan(request):
    function, fin, fout, options = request.param
    return plan_pwl(function, fin, fout, **options)


def test_stated_error_is_the_measured_error(plan):
    codes, error = code_errors(plan)
    assert plan.error.max_abs == error.max()
    assert plan.error.max_ulp == error.max() / plan.out_format.resolution
    assert plan.error.at_code == codes[np.argmax(error)]
    assert plan.error.mean_abs == error.mean()
    assert plan.error.codes == len(codes)


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


def test_slopes_are_of_their_kind(plan):
    assert all(slope_allowed(s, plan.slope_kind) for s in plan.slopes)
    terms = {"pot": 1, "pot2": 2}.get(plan.slope_kind)
    if terms:
        assert plan.cost()["slope_terms"] <= terms


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


@pytest.mark.parametrize("function, fout", [("sigmoid", UQ(0, 8)), ("sigmoid", UQ(0, 16)),
                                            ("tanh", SQ(1, 7)), ("tanh", SQ(1, 15))])
def test_optimal_breakpoints_never_lose_to_uniform(function, fout):
    row = []
    previous = np.inf
    for segments in (8, 16, 32):
        uniform = plan_pwl(function, SQ(6, 10), fout, segments=segments, breakpoints="uniform")
        optimal = plan_pwl(function, SQ(6, 10), fout, segments=segments)
        assert optimal.error.max_abs <= uniform.error.max_abs
        assert optimal.segments <= segments and uniform.segments <= segments
        assert optimal.error.max_abs <= previous
        previous = optimal.error.max_abs
        row.append(f"{segments}: uniform {uniform.error.max_abs:.3g} ({uniform.segments} seg) "
                   f"optimal {optimal.error.max_abs:.3g} ({optimal.segments} seg)")
    print(f"\n{function} SQ(6,10) -> {fout}: " + "; ".join(row))


def test_tanh_16_segments_reaches_the_literature():
    """tanh on [-4, 4) in 16 segments: about 2.7e-3 non-uniform, 2.3e-2 uniform interpolation."""
    optimal = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16, input_range=(-4, 4))
    uniform = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16, input_range=(-4, 4),
                       breakpoints="uniform")
    assert optimal.error.max_abs <= 3e-3
    assert optimal.segments == 16 and optimal.stored_pieces == 9   # 8 pieces + saturation
    assert uniform.uniform and uniform.segment_bits == 9 and uniform.segments == 16
    # Interpolating the same uniform pieces (the literature's 2.3e-2) is what minimax beats.
    interpolated = []
    for j, first, last in pieces(uniform):
        if uniform.slopes[j] or first < uniform.range_stop:
            s, c = chord(uniform, first, last)
            interpolated.append(piece_errors(uniform, first, last, [s], [c])[0])
    # Interpolation is within max|tanh''| h**2 / 8 (h = 0.5) plus rounding; the minimax line
    # of a concave piece halves the deviation.
    curvature = 4 / (3 * np.sqrt(3))
    assert max(interpolated) <= curvature * 0.5 ** 2 / 8 + TANH_OUT.resolution
    assert uniform.error.max_abs < max(interpolated) / 1.9
    print(f"\ntanh 16 segments [-4, 4): optimal {optimal.error.max_abs:.4g}, uniform minimax "
          f"{uniform.error.max_abs:.4g}, uniform interpolation {max(interpolated):.4g}")


SECOND_DERIVATIVE = {
    "tanh": lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
    "sigmoid": lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s),
}


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
            dense = np.linspace(x[0], x[-1], 4097)
            curvature = np.abs(SECOND_DERIVATIVE[function](dense)).max() * 1.0001
            n = last - first + 1
            bound = curvature * (x[-1] - x[0]) ** 2 / 16 \
                + ulp * (0.5 + (n - 1) / 2 ** (plan.shift + 1) + 2.0 ** -plan.shift)
        else:
            bound = (t.max() - t.min()) / 2 + ulp / 2
        assert error <= bound, (j, error, bound)


def test_automatic_range_saturates_to_the_rounded_asymptote():
    plan = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16)
    k = plan.range_stop
    assert plan.input_range == (-k / 1024, k / 1024)
    x = to_float(TANH_IN.codes(), TANH_IN)
    outside = np.abs(1 - np.abs(np.tanh(x))) <= TANH_OUT.resolution / 2
    # Every code at or beyond K is within half an ulp of +-1; the code before K is not.
    assert outside[np.abs(TANH_IN.codes()) >= k].all()
    assert not outside[TANH_IN.codes() == k - 1].all()
    assert plan.slopes[-1] == 0 and plan.intercepts[-1] >> plan.shift == TANH_OUT.max_int
    sig = plan_pwl("sigmoid", TANH_IN, UQ(0, 16), segments=16, symmetric=False)
    assert sig.slopes[0] == 0 and sig.intercepts[0] >> sig.shift == 0
    assert sig.slopes[-1] == 0 and sig.intercepts[-1] >> sig.shift == UQ(0, 16).max_int
    assert sig.input_range[0] == -sig.input_range[1]


def test_symmetric_plans_count_both_halves():
    plan = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16, input_range=(-4, 4))
    assert plan.symmetric and plan.starts[0] == 0 and plan.range_start == 0
    assert plan.range_pieces == 8 and plan.segments == 2 * 8 - plan.centre_piece
    assert plan.breakpoints[0] == 0.0 and plan.breakpoints[-1] == 4.0
    full = plan_pwl("tanh", SQ(3, 5), SQ(1, 7), segments=9, symmetric=False)
    assert full.starts[0] == SQ(3, 5).min_int and full.segments == full.range_pieces <= 9
    # An asymmetric range has no symmetry to use: the default falls back to a full plan.
    asym = plan_pwl("tanh", SQ(3, 5), SQ(1, 7), segments=5, input_range=(-2, 3))
    assert not asym.symmetric and asym.input_range == (-2.0, 3.0)


def test_uniform_plans_are_bit_slices():
    plan = plan_pwl("sigmoid", TANH_IN, UQ(0, 16), segments=16, breakpoints="uniform",
                    symmetric=False, input_range=(-8, 8))
    width = 1 << plan.segment_bits
    assert width == 1024 and plan.range_start == -8192 and plan.range_stop == 8192
    inside = [s for s in plan.starts if plan.range_start <= s < plan.range_stop]
    assert inside == list(range(-8192, 8192, width))
    # The folded top code (the most negative input alone) rides on the last piece.
    full = plan_pwl("sigmoid", SQ(3, 5), UQ(0, 8), segments=4, input_range=(-4, 4),
                    breakpoints="uniform")
    assert full.starts == (0, 64) and full.segment_bits == 6 and full.range_stop == 129
    # Automatic range: the smallest power-of-two width whose pieces cover it, no more pieces.
    auto = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16, breakpoints="uniform")
    needed = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16).range_stop
    assert (auto.range_pieces - 1) << auto.segment_bits < needed <= auto.range_stop
    assert 8 << (auto.segment_bits - 1) < needed <= 8 << auto.segment_bits


def test_slope_kinds_at_16_segments():
    errors = {}
    for kind in ("any", "pot2", "pot"):
        plan = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16, slopes=kind,
                        input_range=(-4, 4))
        errors[kind] = plan.error.max_abs
        assert all(slope_allowed(s, kind) for s in plan.slopes)
    print(f"\ntanh 16 segments [-4, 4) by slope kind: {errors}")
    assert errors["any"] <= errors["pot2"] <= errors["pot"] < 1.5e-2


def test_fit_finds_a_faithful_sigmoid():
    ulp = UQ(0, 8).resolution
    plan = fit_pwl("sigmoid", TANH_IN, UQ(0, 8), np.nextafter(ulp, 0))
    assert plan.error.faithful and plan.segments <= 12
    fewer = plan_pwl("sigmoid", TANH_IN, UQ(0, 8), segments=plan.segments - 2)
    assert not fewer.error.faithful
    print(f"\nsigmoid SQ(6,10) -> UQ(0,8) faithful: {plan.segments} segments, "
          f"{plan.error.max_ulp:.4f} ulp")


def test_fit_tanh_to_8_bits_within_one_ulp():
    """SQ(1,7) lacks 1.0 and float64 tanh(x) is exactly 1.0 for x >= 19.06: the tail's error is
    exactly one ulp, so max_ulp < 1 is out of reach. Everywhere else the plan is faithful."""
    ulp = SQ(1, 7).resolution
    plan = fit_pwl("tanh", TANH_IN, SQ(1, 7), ulp)
    assert plan.error.max_ulp == 1.0 and np.tanh(abs(plan.error.at_input)) == 1.0
    codes, error = code_errors(plan)
    representable = np.abs(np.tanh(to_float(codes, TANH_IN))) <= SQ(1, 7).max
    assert error[representable].max() < ulp
    assert plan.segments <= 12
    with pytest.raises(ValueError, match=r"no pwl plan for tanh from SQ\(6, 10\) to SQ\(1, 7\) "
                                         r"meets max_error 0.0078125: the constants outside the "
                                         r"input range \[-\S+, \S+\) alone have error 0.00781"):
        fit_pwl("tanh", TANH_IN, SQ(1, 7), np.nextafter(ulp, 0))


def test_fit_returns_the_fewest_segments():
    plan = fit_pwl("tanh", TANH_IN, TANH_OUT, 1e-3)
    assert plan.error.max_abs <= 1e-3
    fewer = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=plan.segments - 2)
    assert fewer.error.max_abs > 1e-3
    uniform = fit_pwl("tanh", TANH_IN, TANH_OUT, 1e-2, breakpoints="uniform")
    assert uniform.uniform and uniform.error.max_abs <= 1e-2
    # The next wider power-of-two pieces that cover the same automatic range fall short.
    k = plan.range_stop
    bits = uniform.segment_bits + 1
    wider = plan_pwl("tanh", TANH_IN, TANH_OUT, breakpoints="uniform",
                     segments=2 * -(-k // (1 << bits)))
    assert wider.segment_bits == bits and wider.error.max_abs > 1e-2
    through = fit_activation("tanh", TANH_IN, TANH_OUT, 1e-3)
    assert through.segments == plan.segments


def test_fit_reports_the_best_error_reached():
    with pytest.raises(ValueError, match=r"no pwl plan for tanh from SQ\(6, 10\) to "
                                         r"SQ\(1, 15\) with up to 8 segments meets max_error "
                                         r"0.001; the best reached 0.0124 with 8 segments"):
        fit_pwl("tanh", TANH_IN, TANH_OUT, 1e-3, max_segments=8)


def test_describe_and_cost():
    plan = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16, input_range=(-4, 4))
    info = json.loads(json.dumps(plan.describe()))
    assert info["method"] == "pwl" and info["function"] == "tanh"
    assert info["in_format"] == "SQ(6, 10)" and info["out_format"] == "SQ(1, 15)"
    assert info["segments"] == 16 and info["stored_pieces"] == 9
    assert info["breakpoints"] == list(plan.breakpoints) and info["slope_kind"] == "any"
    assert info["uniform"] is False and info["shift"] == plan.shift
    assert info["error"]["max_abs"] == plan.error.max_abs
    assert info["input_range"] == [-4.0, 4.0]
    cost = plan.cost()
    half = 1 << (cost["slope_bits"] - 1)
    assert all(-half <= s < half for s in plan.slopes)
    assert not all(-half // 2 <= s < half // 2 for s in plan.slopes)
    half = 1 << (cost["intercept_bits"] - 1)
    assert all(-half <= c < half for c in plan.intercepts)
    sloped = [last - first for j, first, last in pieces(plan) if plan.slopes[j]]
    assert cost["offset_bits"] == max(sloped).bit_length()
    assert cost["sum_bits"] <= 62 and cost["index_bits"] == 4


def test_slope_terms():
    assert slope_terms(0) == ()
    assert slope_terms(8) == ((1, 3),)
    assert slope_terms(-12) == ((-1, 4), (1, 2))    # canonical signed digits
    assert slope_terms(7) == ((1, 3), (-1, 0))
    assert slope_terms(-7) == ((-1, 3), (1, 0))
    assert sum(sign << e for sign, e in slope_terms(0b1011011)) == 0b1011011
    assert slope_allowed(96, "pot2") and slope_allowed(-112, "pot2")
    assert not slope_allowed(11, "pot2") and not slope_allowed(6, "pot")


def test_plans_are_deterministic_and_available_through_plan_activation():
    a = plan_pwl("sigmoid", SQ(4, 6), UQ(0, 8), segments=6)
    b = plan_activation("sigmoid", SQ(4, 6), UQ(0, 8), method="pwl", segments=6)
    assert (a.starts, a.slopes, a.intercepts, a.shift) == (b.starts, b.slopes, b.intercepts,
                                                           b.shift)


SOFTPLUS = Function("softplus", lambda x: np.log1p(np.exp(x)), smooth=True)


@pytest.mark.parametrize("args, options, error, message", [
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=2.0), TypeError,
     "segments must be an integer, not 2.0"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=True), TypeError,
     "segments must be an integer, not True"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=0), ValueError,
     "segments must be at least 1, not 0"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=7), ValueError,
     r"a symmetric plan has an even number of segments .*, not 7; pass symmetric=False"),
    (("tanh", SQ(3, 2), SQ(1, 7)), dict(segments=34, input_range=(-2, 2)), ValueError,
     r"segments must be at most 16 \(one per input code of the range\), not 34"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=4, breakpoints="even"), ValueError,
     "breakpoints must be one of uniform | optimal, not 'even'"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=4, slopes="csd"), ValueError,
     "slopes must be one of any | pot | pot2, not 'csd'"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=4, input_range=(-9, 9)), ValueError,
     r"input_range \(-9, 9\) lies outside in_format SQ\(4, 6\) \[-8.0, 8.0\)"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=4, input_range=(2, 2)), ValueError,
     r"input_range must be an interval \(low, high\) with low < high, not \(2, 2\)"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=4, input_range=(0.001, 0.002)), ValueError,
     r"input_range \(0.001, 0.002\) holds no code of SQ\(4, 6\)"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=4, input_range="wide"), TypeError,
     "input_range must be a pair of numbers \\(low, high\\), not 'wide'"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=4, input_range=(-1, 2), symmetric=True),
     ValueError, r"a symmetric plan needs input_range symmetric about 0, not \(-1, 2\)"),
    ((SOFTPLUS, SQ(4, 6), UQ(4, 6)), dict(segments=4, symmetric=True), ValueError,
     "symmetric=True, but softplus has no symmetry to exploit"),
    (("sigmoid", UQ(4, 6), UQ(0, 8)), dict(segments=4, symmetric=True), ValueError,
     r"symmetric=True needs a signed in_format, not UQ\(4, 6\)"),
    (("tanh", SQ(4, 6), SQ(1, 7)), dict(segments=4, symmetric="yes"), TypeError,
     "symmetric must be a bool or None, not 'yes'"),
    (("relu", SQ(4, 6), SQ(4, 6)), dict(segments=4), ValueError,
     r"relu is computed exactly \(method 'exact'\); pwl plans are for smooth functions"),
    (("gelu", SQ(4, 6), SQ(4, 6)), dict(segments=4), ValueError, "Unknown function 'gelu'"),
    (("tanh", SQ(4, 6), SQ(0, 7)), dict(segments=4, input_range=(-2, 2)), ValueError,
     r"out_format SQ\(0, 7\) \[-0.5, 0.4921875\] cannot hold tanh's range \[-0.964028, "
     r"0.96\d+\] over the input range \[-2, 2\)"),
    (("tanh", SQ(12, 10), SQ(1, 7)), dict(segments=4), ValueError,
     r"in_format SQ\(12, 10\) has 22 bits; activation plans measure their error on every "
     r"input code, up to 20 bits"),
    (("tanh", SQ(4, 6), UQ(1, 7)), dict(segments=4), ValueError,
     r"tanh is odd, so out_format must be signed, not UQ\(1, 7\)"),
    (("tanh", SQ(4, 6), "Q(1,7)"), dict(segments=4), ValueError, "Format must look like"),
    (("tanh", SQ(4, 6), SQ(2, 59)), dict(segments=4), ValueError,
     r"tanh from SQ\(4, 6\) to SQ\(2, 59\) needs more than 62 bits for slope \* offset \+ "
     r"intercept: the formats are too wide \(or the function too steep\) for int64"),
])
def test_parameter_errors(args, options, error, message):
    with pytest.raises(error, match=message):
        plan_pwl(*args, **options)


@pytest.mark.parametrize("max_error, options, error, message", [
    (0.0, {}, ValueError, "max_error must be positive, not 0.0"),
    ("small", {}, TypeError, "max_error must be a number, not 'small'"),
    (1e-2, dict(max_segments=0), ValueError, "max_segments must be at least 1, not 0"),
    (1e-2, dict(max_segments=8.0), TypeError, "max_segments must be an integer, not 8.0"),
    (1e-2, dict(max_segments=1), ValueError,
     "max_segments must be at least 2 for a symmetric plan, not 1"),
])
def test_fit_parameter_errors(max_error, options, error, message):
    with pytest.raises(error, match=message):
        fit_pwl("tanh", SQ(4, 6), SQ(1, 7), max_error, **options)


def test_any_smooth_function():
    shifted = Function("shifted_tanh", lambda x: np.tanh(x - 1) / 2, smooth=True)
    plan = plan_pwl(shifted, SQ(4, 6), SQ(1, 9), segments=8)
    assert not plan.symmetric and plan.segments <= 8
    codes, error = code_errors(plan)
    assert plan.error.max_abs == error.max()
    # The inflection at x = 1 sits inside a piece: the continuous search handles both sides.
    uniform = plan_pwl(shifted, SQ(4, 6), SQ(1, 9), segments=8, breakpoints="uniform")
    assert plan.error.max_abs <= uniform.error.max_abs
    inflected = [(first, last) for j, first, last in pieces(plan)
                 if first * 2 ** -6 < 1 < last * 2 ** -6]
    assert len(inflected) == 1
    softplus = plan_pwl(SOFTPLUS, SQ(4, 6), UQ(4, 6), segments=8)
    # softplus has no asymptote upwards: the range runs to the format's end.
    assert softplus.range_stop == SQ(4, 6).max_int + 1
