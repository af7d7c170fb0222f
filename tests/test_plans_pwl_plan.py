"""The PWL plan dataclass (hwnn.plans.pwl.plan): slope kinds, cost and describe."""

import json

import numpy as np
import pytest

from hwnn.plans.functions import Function
from hwnn.plans.pwl import plan_pwl, slope_allowed, slope_terms
from hwnn.ref.pwl import pwl
from pwl_helpers import PLANS, TANH_IN, TANH_OUT, hand_plan, pieces


@pytest.fixture(scope="module", params=PLANS, ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}-{p[3]}")
def plan(request):
    function, fin, fout, options = request.param
    return plan_pwl(function, fin, fout, **options)


def test_slopes_are_of_their_kind(plan):
    assert all(slope_allowed(s, plan.slope_kind) for s in plan.slopes)
    terms = {"pot": 1, "pot2": 2}.get(plan.slope_kind)
    if terms:
        assert plan.cost()["slope_terms"] <= terms


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


@pytest.mark.parametrize("changes, error, parameter, message", [
    (dict(starts=(-15, -4, 4)), ValueError, "starts",
     "starts[0] must be the domain's low end -16, not -15"),
    (dict(starts=(-16, 4, -4)), ValueError, "starts",
     "starts must be strictly ascending codes within [-16, 15], not (-16, 4, -4)"),
    (dict(slopes=(0, 3)), ValueError, "slopes",
     "starts, slopes and intercepts must have one entry per piece, not 3, 2, 3"),
    (dict(slopes=(0, 1.5, 0)), TypeError, "slopes",
     "slopes must be a non-empty sequence of integers, not (0, 1.5, 0)"),
    (dict(slopes=()), TypeError, "slopes",
     "slopes must be a non-empty sequence of integers, not ()"),
    (dict(slope_kind="pot"), ValueError, "slopes", "slope 3 is not of kind 'pot'"),
    (dict(slope_kind="csd"), ValueError, "slope_kind",
     "slope_kind must be one of any | pot | pot2, not 'csd'"),
    (dict(shift=-1), ValueError, "shift", "shift must be an integer between 0 and 62, not -1"),
    (dict(shift=2.0), TypeError, "shift", "shift must be an integer between 0 and 62, not 2.0"),
    (dict(slopes=(1, 3, 0)), ValueError, "slopes",
     "piece 0 lies outside the range, so its slope must be 0"),
    (dict(range_stop=5), ValueError, "range_start",
     "range_start and range_stop must be piece starts"),
    (dict(starts=(-16, -4, -1, 4), slopes=(0, 3, 3, 0), intercepts=(0, 0, 0, 0), uniform=True,
          segment_bits=2), ValueError, "starts",
     "a uniform plan's range pieces must start every 2**2 codes from -4"),
    (dict(starts=(-16, -4, 0, 8), slopes=(0, 3, 3, 0), intercepts=(0, 0, 0, 0),
          range_stop=8, uniform=True, segment_bits=2), ValueError, "starts",
     "a uniform plan's range pieces must start every 2**2 codes from -4"),
    (dict(uniform=True), TypeError, "segment_bits",
     "segment_bits must be a non-negative integer, not None"),
    (dict(segment_bits=3), ValueError, "segment_bits",
     "segment_bits must be None for a non-uniform plan, not 3"),
    (dict(slopes=(0, 2 ** 60, 0)), ValueError, "intercepts",
     "piece 1: slope * offset + intercept can reach 2**62; int64 arithmetic is not safe"),
    (dict(function=Function("softplus", lambda x: np.log1p(np.exp(x)), smooth=True),
          symmetric=True, starts=(0,), slopes=(0,), intercepts=(0,), range_start=0,
          range_stop=17), ValueError, "symmetric",
     "symmetric=True needs a function with a symmetry and a signed in_format, not softplus on "
     "SQ(3, 2)"),
    (dict(symmetric=1), TypeError, "symmetric", "symmetric must be True or False, not 1"),
    (dict(error=3), TypeError, "error", "error must be an ErrorBound or None, not 3"),
    (dict(in_format="SQ(3,2)"), TypeError, "in_format",
     "in_format must be a Format, not 'SQ(3,2)'"),
    (dict(function="tanh"), TypeError, "function", "function must be a Function, not 'tanh'"),
])
def test_plan_fields_are_checked(changes, error, parameter, message):
    with pytest.raises(error) as info:
        hand_plan(**changes)
    assert str(info.value) == message and info.value.parameter == parameter


def test_uniform_hand_plan_is_accepted():
    plan = hand_plan(starts=(-16, -4, 0, 4), slopes=(0, 1, 1, 0), intercepts=(0, 0, 0, 0),
                     uniform=True, segment_bits=2)
    assert plan.uniform and plan.segment_bits == 2 and plan.range_pieces == 2
