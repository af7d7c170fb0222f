import re

import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.checks import ParameterTypeError
from hwnn.cores.exact import ExactActivation
from hwnn.fixed import SQ, UQ
from hwnn.plans.exact import plan_exact
from hwnn.plans.lut import plan_lut
from hwnn.ref.exact import exact
from hwnn.sim import run_stream
from oracle import plan_id

PLANS = [
    ("relu", SQ(4, 4), UQ(3, 3), {}),
    ("relu6", SQ(5, 5), UQ(3, 3), dict(rounding="half_up")),
    ("relu", UQ(4, 4), UQ(3, 3), dict(rounding="trunc")),
    ("leaky_relu", SQ(4, 4), SQ(4, 6), dict(leaky_shift=3)),
    ("leaky_relu", SQ(4, 6), SQ(4, 4), dict(rounding="half_up")),
    ("hard_tanh", SQ(4, 4), SQ(2, 3), {}),
    ("hard_sigmoid", SQ(4, 4), UQ(1, 8), {}),
    ("hard_sigmoid", SQ(4, 6), UQ(0, 4), dict(rounding="trunc")),
    ("hard_sigmoid", SQ(5, 7), UQ(1, 11), dict(rounding="half_up")),
]


@pytest.mark.parametrize("case", PLANS, ids=[plan_id(c) for c in PLANS])
def test_every_input_code_matches_the_reference(case):
    function, fin, fout, options = case
    plan = plan_exact(function, fin, fout, **options)
    codes = fin.codes()
    run = run_stream(ExactActivation(plan), codes, stall_in=0.2, stall_out=0.3, seed=1)
    np.testing.assert_array_equal(run.outputs, exact(plan, codes))


@pytest.mark.parametrize("case", [PLANS[1], PLANS[7]], ids=plan_id)
def test_lanes_process_independent_values(case):
    function, fin, fout, options = case
    plan = plan_exact(function, fin, fout, **options)
    codes = fin.codes()
    lanes = np.stack([codes, codes[::-1], np.roll(codes, 7)], axis=1)
    run = run_stream(ExactActivation(plan, lanes=3), lanes, stall_out=0.5, seed=2)
    np.testing.assert_array_equal(run.outputs, exact(plan, lanes))


def test_latency_and_full_throughput():
    plan = plan_exact("relu", SQ(4, 4), UQ(3, 3))
    core = ExactActivation(plan)
    run = run_stream(core, SQ(4, 4).codes()[:40])
    assert core.latency == 3 and core.ii == 1
    assert set(run.latencies.tolist()) == {3}
    assert set(np.diff(run.in_cycles).tolist()) == {1}


def test_rejects_other_plans():
    plan = plan_lut("tanh", SQ(3, 3), SQ(1, 7))
    message = (f"plan must be an ExactPlan (see hwnn.plans.activation.plan_activation), "
               f"not {plan!r}")
    with pytest.raises(ParameterTypeError, match=re.escape(message) + "$") as info:
        ExactActivation(plan)
    assert info.value.parameter == "plan"


def test_exports_verilog():
    plan = plan_exact("hard_sigmoid", SQ(4, 4), UQ(1, 8))
    text = verilog.convert(ExactActivation(plan, lanes=2), name="act")
    assert "module act" in text and "i__payload" in text
