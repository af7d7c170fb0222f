"""The input range (hwnn.plans.pwl.ranges): automatic from the asymptotes, or given."""

import numpy as np

from hwnn.fixed import UQ, to_float
from hwnn.plans.pwl import plan_pwl
from pwl_helpers import TANH_IN, TANH_OUT


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
