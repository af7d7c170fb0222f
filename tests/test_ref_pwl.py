import numpy as np
import pytest

from hwnn.fixed import SQ, UQ
from hwnn.plans.functions import Symmetry, get_function
from pwl_helpers import hand_plan
from hwnn.plans.pwl import plan_pwl
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


# Hand-built plans (pwl_helpers.hand_plan): the reference against values worked out by hand,
# independent of the planner. in SQ(3,2): codes -16..15; out SQ(2,2): codes -8..7.


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


def test_reference_rejects_bad_inputs():
    plan = hand_plan()
    for q, error, message in [
            ([0.5], TypeError, "inputs must be integer codes of SQ(3, 2), not dtype float64"),
            ([True], TypeError, "inputs must be integer codes of SQ(3, 2), not dtype bool"),
            ([0, 16], ValueError, "inputs hold the code 16, outside SQ(3, 2) [-16, 15]"),
            (np.array([2 ** 63], dtype=np.uint64), ValueError,
             "inputs hold codes outside SQ(3, 2) [-16, 15]")]:
        with pytest.raises(error) as info:
            pwl(plan, np.array(q))
        assert str(info.value) == message and info.value.parameter == "q"
    with pytest.raises(TypeError) as info:
        pwl("tanh", np.array([0]))
    assert str(info.value) == "plan must be a pwl plan (hwnn.plans.pwl.PWLPlan), not 'tanh'"
    assert info.value.parameter == "plan"
