import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.activation import (ExactActivation, LUTActivation, PWLActivation,
                                   activation_core)
from hwnn.fixed import SQ, UQ
from hwnn.cores.threshold import MultiThreshold
from hwnn.plans.activation import plan_activation
from hwnn.plans.threshold import ThresholdPlan
from hwnn.ref.activation import activation
from hwnn.sim import run_stream

PLANS = {
    "lut": (plan_activation("tanh", SQ(3, 4), SQ(1, 7), method="lut", table_size=32),
            LUTActivation, 3),
    "pwl": (plan_activation("tanh", SQ(3, 4), SQ(1, 7), method="pwl", segments=4),
            PWLActivation, 8),
    "exact": (plan_activation("hard_sigmoid", SQ(3, 4), UQ(1, 6)), ExactActivation, 3),
    # Two channels (one per lane), the second descending.
    "threshold": (ThresholdPlan(SQ(3, 4), UQ(2, 0), np.array([[-20, 0, 7], [-3, -3, 60]]),
                                np.array([False, True])), MultiThreshold, 4),
}


@pytest.mark.parametrize("method", PLANS)
def test_dispatches_each_plan_to_its_unit(method):
    plan, unit, latency = PLANS[method]
    codes = SQ(3, 4).codes()
    lanes = np.stack([codes, codes[::-1]], axis=1)
    core = activation_core(plan, lanes=2)
    assert type(core) is unit and core.lanes == 2 and core.latency == latency
    run = run_stream(core, lanes, stall_in=0.2, stall_out=0.3, seed=3)
    np.testing.assert_array_equal(run.outputs, activation(plan, lanes))
    assert core.describe()["class"] == unit.__name__


def test_rejects_what_is_not_an_activation_plan():
    message = ("plan must be an activation plan (LUTPlan, PWLPlan, PolyPlan, ExactPlan, see "
               "hwnn.plans.activation.plan_activation, or ThresholdPlan), not 'tanh'")
    with pytest.raises(ParameterTypeError, match=re.escape(message) + "$") as info:
        activation_core("tanh")
    assert info.value.parameter == "plan"


def test_passes_lanes_on_to_the_unit():
    plan = PLANS["lut"][0]
    with pytest.raises(ParameterValueError, match=re.escape(
            "lanes must be a positive integer, not 0") + "$") as info:
        activation_core(plan, lanes=0)
    assert info.value.parameter == "lanes"
