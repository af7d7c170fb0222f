import re

import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.functions import Function, Symmetry, get_function
from hwnn.plans.pwl import PWLPlan, plan_pwl
from hwnn.ref.activation import activation
from hwnn.ref.pwl import pwl


def independent_pwl(plan, q):
    """The documented semantics, one code at a time with Python ints (no numpy)."""
    out = []
    lo, hi = plan.out_format.min_int, plan.out_format.max_int
    for code in q.tolist():
        negative = plan.symmetric and code < 0
        c = -code if negative else code
        j = max(i for i, start in enumerate(plan.starts) if start <= c)
        v = plan.slopes[j] * (c - plan.starts[j]) + plan.intercepts[j]
        y = min(max(v // 2 ** plan.shift, lo), hi)
        if negative:
            if plan.function.symmetry is Symmetry.ODD:
                y = -y
            else:
                y = 2 ** plan.out_format.f - y
            y = min(max(y, lo), hi)
        out.append(y)
    return np.array(out)


PLANS = [
    ("tanh", SQ(3, 5), SQ(1, 7), dict(segments=8)),
    ("tanh", SQ(3, 5), SQ(1, 7), dict(segments=8, breakpoints="uniform")),
    ("tanh", SQ(3, 5), SQ(2, 6), dict(segments=4, input_range=(-4, 4))),
    ("tanh", SQ(3, 5), SQ(1, 9), dict(segments=6, slopes="pot2", input_range=(-2, 3))),
    ("sigmoid", SQ(3, 5), UQ(0, 8), dict(segments=6, symmetric=False)),
    ("sigmoid", SQ(3, 5), UQ(0, 8), dict(segments=6, symmetric=False, breakpoints="uniform")),
    ("sigmoid", SQ(3, 5), UQ(0, 10), dict(segments=10, slopes="pot")),
    ("sigmoid", UQ(3, 5), UQ(0, 8), dict(segments=5)),
    ("sigmoid", SQ(4, 6), UQ(0, 8), dict(segments=8, input_range=(-8, 8))),  # full folded domain
    ("sigmoid", SQ(3, 5), UQ(0, 8), dict(segments=4, input_range=(-4, 4), breakpoints="uniform")),
    ("tanh", SQ(4, 6), SQ(2, 40), dict(segments=8)),   # wide intermediates, still int64
]


@pytest.fixture(scope="module", params=PLANS, ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}-{p[3]}")
def plan(request):
    function, fin, fout, options = request.param
    return plan_pwl(function, fin, fout, **options)


def test_reference_follows_the_documented_semantics(plan):
    codes = plan.in_format.codes()
    np.testing.assert_array_equal(pwl(plan, codes), independent_pwl(plan, codes))


def test_any_shape_and_dtype(plan):
    codes = plan.in_format.codes()
    want = pwl(plan, codes)
    grid = codes[: len(codes) // 4 * 4].reshape(4, -1)
    np.testing.assert_array_equal(pwl(plan, grid), want[: grid.size].reshape(grid.shape))
    np.testing.assert_array_equal(pwl(plan, codes.astype(np.int32)), want)
    assert pwl(plan, codes).dtype == np.int64
    assert pwl(plan, np.int64(codes[3])) == want[3]


def test_dispatch_through_activation(plan):
    codes = plan.in_format.codes()
    np.testing.assert_array_equal(activation(plan, codes), pwl(plan, codes))


# A hand-built plan: the reference against values worked out by hand, independent of the
# planner. in SQ(3,2): codes -16..15; out SQ(2,2): codes -8..7.
TANH = get_function("tanh")


def hand_plan(**changes):
    fields = dict(function=TANH, in_format=SQ(3, 2), out_format=SQ(2, 2), symmetric=False,
                  starts=(-16, -4, 4), slopes=(0, 3, 0), intercepts=(-8, -11, 6), shift=1,
                  slope_kind="any", uniform=False, segment_bits=None, range_start=-4,
                  range_stop=4)
    fields.update(changes)
    return PWLPlan(**fields)


def test_hand_built_plan():
    plan = hand_plan()
    q = np.array([-16, -5, -4, -3, -1, 0, 3, 4, 15])
    # piece 1: (3 * (c + 4) - 11) >> 1: c=-4 -> -11>>1 = -6; c=-3 -> -8>>1 = -4;
    # c=-1 -> -2>>1 = -1; c=0 -> 1>>1 = 0; c=3 -> 10>>1 = 5. Constants: -8>>1, 6>>1.
    np.testing.assert_array_equal(pwl(plan, q), [-4, -4, -6, -4, -1, 0, 5, 3, 3])
    clipped = hand_plan(intercepts=(-40, -11, 30))
    np.testing.assert_array_equal(pwl(clipped, np.array([-16, 15])), [-8, 7])
    assert plan.segments == plan.range_pieces == 1 and plan.stored_pieces == 3
    assert plan.input_range == (-1.0, 1.0)


def test_hand_built_symmetric_plans():
    # Folded: c = |q| in 0..16 (16 is the folded -16); piece 0 on 0..7, constant from 8.
    odd = hand_plan(symmetric=True, starts=(0, 8), slopes=(2, 0), intercepts=(1, 12),
                    range_start=0, range_stop=8)
    q = np.array([-16, -8, -7, -1, 0, 1, 7, 8, 15])
    # y(c) = (2c + 1) >> 1 = c for c < 8, else 6; negatives mirrored to -y.
    np.testing.assert_array_equal(pwl(odd, q), [-6, -6, -7, -1, 0, 1, 7, 6, 6])
    sigmoid = get_function("sigmoid")
    comp = hand_plan(function=sigmoid, out_format=UQ(1, 2), symmetric=True, starts=(0, 8),
                     slopes=(1, 0), intercepts=(4, 8), range_start=0, range_stop=8)
    # y(c) = (c + 4) >> 1 for c < 8 else 4; negatives: 4 - y, saturated to [0, 7].
    np.testing.assert_array_equal(pwl(comp, q), [0, 0, 0, 2, 2, 2, 5, 4, 4])
    # odd's line y = c passes through 0: one segment across 0. comp's is off the centre 1/2.
    assert odd.segments == 1 and odd.input_range == (-2.0, 2.0)
    assert comp.segments == 2 and not comp.centre_piece


def test_centre_piece_counts_once():
    # Odd symmetry: intercept 2**(shift-1) puts the rounded line through 0, so the piece and
    # its mirror are one line y = round(c / 2) across 0.
    plan = hand_plan(symmetric=True, starts=(0, 8), slopes=(1, 0), intercepts=(1, 4),
                     range_start=0, range_stop=8)
    assert plan.centre_piece and plan.segments == 1
    q = np.arange(-7, 8)
    np.testing.assert_array_equal(pwl(plan, q), np.sign(q) * ((np.abs(q) + 1) // 2))
    off = hand_plan(symmetric=True, starts=(0, 8), slopes=(1, 0), intercepts=(2, 4),
                    range_start=0, range_stop=8)
    assert not off.centre_piece and off.segments == 2


def test_reference_rejects_bad_inputs():
    plan = hand_plan()
    with pytest.raises(TypeError, match=r"inputs must be integer codes of SQ\(3, 2\), not "
                                        r"dtype float64"):
        pwl(plan, np.array([0.5]))
    with pytest.raises(TypeError, match=r"inputs must be integer codes of SQ\(3, 2\), not "
                                        r"dtype bool"):
        pwl(plan, np.array([True]))
    with pytest.raises(ValueError, match=r"inputs hold the code 16, outside SQ\(3, 2\) "
                                         r"\[-16, 15\]"):
        pwl(plan, np.array([0, 16]))
    message = "plan must be a pwl plan (hwnn.plans.pwl.PWLPlan), not 'tanh'"
    with pytest.raises(TypeError, match=re.escape(message) + "$"):
        pwl("tanh", np.array([0]))


@pytest.mark.parametrize("changes, error, message", [
    (dict(starts=(-15, -4, 4)), ValueError, r"starts\[0\] must be the domain's low end -16, "
                                            r"not -15"),
    (dict(starts=(-16, 4, -4)), ValueError, r"starts must be strictly ascending codes within "
                                            r"\[-16, 15\]"),
    (dict(slopes=(0, 3)), ValueError, "one entry per piece, not 3, 2, 3"),
    (dict(slopes=(0, 1.5, 0)), TypeError, "slopes must be a non-empty sequence of integers"),
    (dict(slope_kind="pot"), ValueError, "slope 3 is not of kind 'pot'"),
    (dict(slope_kind="csd"), ValueError, "slope_kind must be one of any | pot | pot2, not 'csd'"),
    (dict(shift=-1), ValueError, r"shift must be an integer in \[0, 62\], not -1"),
    (dict(slopes=(1, 3, 0)), ValueError, "piece 0 lies outside the range, so its slope must be 0"),
    (dict(range_stop=5), ValueError, "range_start and range_stop must be piece starts"),
    (dict(starts=(-16, -4, -1, 4), slopes=(0, 3, 3, 0), intercepts=(0, 0, 0, 0), uniform=True,
          segment_bits=2), ValueError,
     r"a uniform plan's range pieces must start every 2\*\*2 codes from -4"),
    (dict(starts=(-16, -4, 0, 8), slopes=(0, 3, 3, 0), intercepts=(0, 0, 0, 0),
          range_stop=8, uniform=True, segment_bits=2), ValueError,
     r"a uniform plan's range pieces must start every 2\*\*2 codes from -4"),
    (dict(segment_bits=3), ValueError, "segment_bits is only for uniform plans"),
    (dict(slopes=(0, 2 ** 60, 0)), ValueError,
     r"piece 1: slope \* offset \+ intercept can reach 2\*\*62"),
    (dict(function=Function("softplus", lambda x: np.log1p(np.exp(x)), smooth=True),
          symmetric=True, starts=(0,), slopes=(0,), intercepts=(0,), range_start=0,
          range_stop=17), ValueError, "symmetric=True needs a function with a symmetry"),
])
def test_plan_fields_are_checked(changes, error, message):
    with pytest.raises(error, match=message):
        hand_plan(**changes)


def test_uniform_hand_plan_is_accepted():
    plan = hand_plan(starts=(-16, -4, 0, 4), slopes=(0, 1, 1, 0), intercepts=(0, 0, 0, 0),
                     uniform=True, segment_bits=2)
    assert plan.uniform and plan.segment_bits == 2 and plan.range_pieces == 2
