"""The PWL plan dataclass (hwnn.plans.pwl.plan): slope kinds, cost and describe."""

import json

import pytest

from hwnn.plans.pwl import plan_pwl, slope_allowed, slope_terms
from pwl_helpers import PLANS, TANH_IN, TANH_OUT, pieces


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
