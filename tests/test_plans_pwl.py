import numpy as np
import pytest

from hwnn.fixed import SQ, UQ, to_float
from hwnn.plans.activation import fit_activation, plan_activation
from hwnn.plans.functions import Function
from hwnn.plans.pwl import fit_pwl, plan_pwl, slope_allowed
from pwl_helpers import PLANS, TANH_IN, TANH_OUT, chord, code_errors, piece_errors, pieces


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


def test_tanh_16_segments_reaches_the_literature():
    """tanh on [-4, 4) in 16 segments: about 2.7e-3 non-uniform, 2.3e-2 uniform interpolation."""
    optimal = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16, input_range=(-4, 4))
    uniform = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=16, input_range=(-4, 4),
                       breakpoints="uniform")
    # Plans are deterministic: the measured errors are pinned (in output ulps of 2**-15, to
    # float64 precision; the last places follow the platform's float64 tanh).
    assert optimal.error.max_abs * 2 ** 15 == pytest.approx(88.99865861942271, rel=1e-12)
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
    assert uniform.error.max_abs * 2 ** 15 == pytest.approx(380.5318750467086, rel=1e-12)
    # Within the bound of the minimax line, curvature * h**2 / 16, plus the output rounding's
    # half ulp and the slope and intercept rounding's (n - 1) / 2**(shift + 1) + 2**-shift ulps
    # (n = 512 codes per piece).
    n = 1 << uniform.segment_bits
    rounding = 0.5 + (n - 1) / 2 ** (uniform.shift + 1) + 2.0 ** -uniform.shift
    assert uniform.error.max_abs <= curvature * 0.5 ** 2 / 16 + rounding * TANH_OUT.resolution
    print(f"\ntanh 16 segments [-4, 4): optimal {optimal.error.max_abs:.4g}, uniform minimax "
          f"{uniform.error.max_abs:.4g}, uniform interpolation {max(interpolated):.4g}")


@pytest.mark.parametrize("options, pinned", [
    (dict(function="tanh", segments=8),
     ((0, 36, 64, 97, 200), (117, 74, 37, 11, 0), (114, 4286, 6330, 7540, 8128), 6)),
    (dict(function="tanh", segments=8, breakpoints="uniform"),
     ((0, 64, 128, 192, 256), (391, 105, 18, 0, 0), (1461, 25837, 31860, 32768, 32512), 8)),
    (dict(function="sigmoid", out_format=UQ(0, 8), segments=7, symmetric=False),
     ((-512, -400, -194, -121, -59, 68, 126, 201, 400), (0, 144, 607, 1291, 1933, 1220, 563, 161,
      0), (0, -7873, 22528, 66657, 149039, 393088, 464186, 505533, 522240), 11)),
    (dict(function="sigmoid", out_format=UQ(0, 12), segments=12, slopes="pot2"),
     ((0, 58, 92, 137, 189, 273), (240, 192, 127, 72, 28, 6),
      (32944, 46624, 53129, 58752, 62472, 64732), 4)),
    (dict(function="tanh", out_format=SQ(2, 10), segments=6, slopes="pot", input_range=(-3, 3)),
     ((0, 37, 84, 192), (16, 8, 1, 0), (-27, 541, 915, 1021), 0)),
], ids=["tanh-optimal", "tanh-uniform", "sigmoid-full", "sigmoid-pot2", "tanh-pot-range"])
def test_plans_are_pinned(options, pinned):
    """Plans are deterministic: (starts, slopes, intercepts, shift) as recorded when the plan
    code was split into modules. A change here changes every core built from these plans."""
    options = {"out_format": SQ(1, 7), **options}
    plan = plan_pwl(options.pop("function"), SQ(4, 6), options.pop("out_format"), **options)
    assert (plan.starts, plan.slopes, plan.intercepts, plan.shift) == pinned


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
    # Pinned, in output ulps (2**-15): fewer slope values, larger errors.
    ulps = {kind: error * 2 ** 15 for kind, error in errors.items()}
    assert ulps == pytest.approx({"any": 88.99865861942271, "pot2": 148.20208195410305,
                                  "pot": 295.7806509725051}, rel=1e-12)


def test_fit_finds_a_faithful_sigmoid():
    ulp = UQ(0, 8).resolution
    plan = fit_pwl("sigmoid", TANH_IN, UQ(0, 8), np.nextafter(ulp, 0))
    assert plan.error.faithful and plan.segments == 12
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
    assert plan.segments == 12
    with pytest.raises(ValueError) as info:
        fit_pwl("tanh", TANH_IN, SQ(1, 7), np.nextafter(ulp, 0))
    assert info.value.parameter == "max_error" and str(info.value) == (
        "no pwl plan for tanh from SQ(6, 10) to SQ(1, 7) meets max_error 0.0078125: the "
        "constants outside the input range [-3.11914, 3.11914) alone have error 0.00781; widen "
        "input_range")


def test_fit_returns_the_fewest_segments():
    plan = fit_pwl("tanh", TANH_IN, TANH_OUT, 1e-3)
    assert plan.error.max_abs <= 1e-3 and plan.segments == 28
    fewer = plan_pwl("tanh", TANH_IN, TANH_OUT, segments=plan.segments - 2)
    assert fewer.error.max_abs > 1e-3
    uniform = fit_pwl("tanh", TANH_IN, TANH_OUT, 1e-2, breakpoints="uniform")
    assert uniform.uniform and uniform.error.max_abs <= 1e-2
    assert (uniform.segments, uniform.segment_bits) == (48, 8)
    # The next wider power-of-two pieces that cover the same automatic range fall short.
    k = plan.range_stop
    bits = uniform.segment_bits + 1
    wider = plan_pwl("tanh", TANH_IN, TANH_OUT, breakpoints="uniform",
                     segments=2 * -(-k // (1 << bits)))
    assert wider.segment_bits == bits and wider.error.max_abs > 1e-2
    through = fit_activation("tanh", TANH_IN, TANH_OUT, 1e-3)
    assert through.segments == plan.segments


def test_fit_reports_the_best_error_reached():
    with pytest.raises(ValueError) as info:
        fit_pwl("tanh", TANH_IN, TANH_OUT, 1e-3, max_segments=8)
    assert info.value.parameter == "max_error" and str(info.value) == (
        "no pwl plan for tanh from SQ(6, 10) to SQ(1, 15) with up to 8 segments meets max_error "
        "0.001; the best reached 0.0124 with 8 segments")


def test_plans_are_deterministic_and_available_through_plan_activation():
    a = plan_pwl("sigmoid", SQ(4, 6), UQ(0, 8), segments=6)
    b = plan_activation("sigmoid", SQ(4, 6), UQ(0, 8), method="pwl", segments=6)
    assert (a.starts, a.slopes, a.intercepts, a.shift) == (b.starts, b.slopes, b.intercepts,
                                                           b.shift)


SOFTPLUS = Function("softplus", lambda x: np.log1p(np.exp(x)), smooth=True)


T = ("tanh", SQ(4, 6), SQ(1, 7))


@pytest.mark.parametrize("args, options, error, parameter, message", [
    (T, dict(segments=2.0), TypeError, "segments", "segments must be a positive integer, not 2.0"),
    (T, dict(segments=True), TypeError, "segments",
     "segments must be a positive integer, not True"),
    (T, dict(segments=0), ValueError, "segments", "segments must be a positive integer, not 0"),
    (T, dict(segments=7), ValueError, "segments",
     "a symmetric plan has an even number of segments (each stored piece serves both signs), "
     "not 7; pass symmetric=False for an odd count"),
    (("tanh", SQ(3, 2), SQ(1, 7)), dict(segments=34, input_range=(-2, 2)), ValueError,
     "segments", "segments must be an integer between 1 and 16 (one per input code of the "
                 "range [-2, 2)), not 34"),
    (T, dict(segments=4, breakpoints="even"), ValueError, "breakpoints",
     "breakpoints must be one of uniform | optimal, not 'even'"),
    (T, dict(segments=4, slopes="csd"), ValueError, "slopes",
     "slopes must be one of any | pot | pot2, not 'csd'"),
    (T, dict(segments=4, input_range=(-9, 9)), ValueError, "input_range",
     "input_range must lie within in_format SQ(4, 6) [-8.0, 8.0), not (-9, 9)"),
    (T, dict(segments=4, input_range=(2, 2)), ValueError, "input_range",
     "input_range must be an interval (low, high) with low < high, not (2, 2)"),
    (T, dict(segments=4, input_range=(0.001, 0.002)), ValueError, "input_range",
     "input_range must hold a code of SQ(4, 6), not (0.001, 0.002)"),
    (T, dict(segments=4, input_range="wide"), TypeError, "input_range",
     "input_range must be a pair of numbers (low, high), not 'wide'"),
    (T, dict(segments=4, input_range=(-1, 2), symmetric=True), ValueError, "input_range",
     "input_range must be symmetric about 0 for a symmetric plan, not (-1, 2) "
     "(pass symmetric=False)"),
    ((SOFTPLUS, SQ(4, 6), UQ(4, 6)), dict(segments=4, symmetric=True), ValueError, "symmetric",
     "symmetric=True, but softplus has no symmetry to exploit"),
    (("sigmoid", UQ(4, 6), UQ(0, 8)), dict(segments=4, symmetric=True), ValueError, "symmetric",
     "symmetric=True needs a signed in_format, not UQ(4, 6)"),
    (T, dict(segments=4, symmetric="yes"), TypeError, "symmetric",
     "symmetric must be True or False or None, not 'yes'"),
    (("relu", SQ(4, 6), SQ(4, 6)), dict(segments=4), ValueError, "function",
     "relu is computed exactly (method 'exact'); pwl plans are for smooth functions"),
    (("gelu", SQ(4, 6), SQ(4, 6)), dict(segments=4), ValueError, "function",
     "function must be one of hard_sigmoid | hard_tanh | leaky_relu | relu | relu6 | sigmoid | "
     "tanh, not 'gelu'"),
    (("tanh", SQ(4, 6), SQ(0, 7)), dict(segments=4, input_range=(-2, 2)), ValueError,
     "out_format", "out_format SQ(0, 7) [-0.5, 0.4921875] cannot hold tanh's range [-0.964028, "
                   "0.962907] over the input range [-2, 2)"),
    (("tanh", SQ(12, 10), SQ(1, 7)), dict(segments=4), ValueError, "in_format",
     "in_format SQ(12, 10) has 22 bits; activation plans measure their error on every input "
     "code, up to 20 bits"),
    (("tanh", SQ(4, 6), UQ(1, 7)), dict(segments=4), ValueError, "out_format",
     "tanh is odd, so out_format must be signed, not UQ(1, 7)"),
    (("tanh", SQ(4, 6), "Q(1,7)"), dict(segments=4), ValueError, "out_format",
     "out_format must be a format like 'SQ(4,12)' or 'UQ(0,8)', not 'Q(1,7)'"),
    (("tanh", SQ(4, 6), SQ(2, 59)), dict(segments=4), ValueError, "out_format",
     "tanh from SQ(4, 6) to SQ(2, 59) needs more than 62 bits for slope * offset + intercept: "
     "the formats are too wide (or the function too steep) for int64 arithmetic"),
])
def test_parameter_errors(args, options, error, parameter, message):
    with pytest.raises(error) as info:
        plan_pwl(*args, **options)
    assert str(info.value) == message and info.value.parameter == parameter


@pytest.mark.parametrize("max_error, options, error, parameter, message", [
    (0.0, {}, ValueError, "max_error", "max_error must be a positive number, not 0.0"),
    ("small", {}, TypeError, "max_error", "max_error must be a positive number, not 'small'"),
    (1e-2, dict(max_segments=0), ValueError, "max_segments",
     "max_segments must be a positive integer, not 0"),
    (1e-2, dict(max_segments=8.0), TypeError, "max_segments",
     "max_segments must be a positive integer, not 8.0"),
    (1e-2, dict(max_segments=1), ValueError, "max_segments",
     "max_segments must be at least 2 for a symmetric plan, not 1"),
    # Only a wider range can help: the error names input_range when the user gave it.
    (1e-3, dict(input_range=(-1, 1)), ValueError, "input_range",
     "no pwl plan for tanh from SQ(4, 6) to SQ(1, 7) meets max_error 0.001: the constants "
     "outside the input range [-1, 1) alone have error 0.121; widen input_range"),
])
def test_fit_parameter_errors(max_error, options, error, parameter, message):
    with pytest.raises(error) as info:
        fit_pwl("tanh", SQ(4, 6), SQ(1, 7), max_error, **options)
    assert str(info.value) == message and info.value.parameter == parameter


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
