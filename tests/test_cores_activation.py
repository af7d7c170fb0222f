import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.cores.activation import ExactActivation, LUTActivation, activation_core
from hwnn.fixed import SQ, UQ
from hwnn.plans.activation import plan_activation
from hwnn.ref.activation import activation
from hwnn.sim import run_stream
from oracle import plan_id

PLANS = [
    ("sigmoid", SQ(4, 4), UQ(0, 8), dict(method="lut")),
    ("tanh", SQ(4, 6), SQ(1, 7), dict(method="lut", table_size=64)),
    ("sigmoid", SQ(4, 6), UQ(0, 8), dict(method="lut", table_size=128, input_range=(-4, 4))),
    ("sigmoid", SQ(4, 6), UQ(1, 8), dict(method="lut", table_size=128, symmetric=False,
                                         entries="left")),
    ("sigmoid", UQ(3, 5), UQ(0, 8), dict(method="lut", table_size=32)),
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
    plan = plan_activation(function, fin, fout, **options)
    codes = fin.codes()
    run = run_stream(activation_core(plan), codes, stall_in=0.2, stall_out=0.3, seed=1)
    np.testing.assert_array_equal(run.outputs, activation(plan, codes))


@pytest.mark.parametrize("case", [PLANS[1], PLANS[6], PLANS[12]], ids=plan_id)
def test_lanes_process_independent_values(case):
    function, fin, fout, options = case
    plan = plan_activation(function, fin, fout, **options)
    codes = fin.codes()
    lanes = np.stack([codes, codes[::-1], np.roll(codes, 7)], axis=1)
    run = run_stream(activation_core(plan, lanes=3), lanes, stall_out=0.5, seed=2)
    np.testing.assert_array_equal(run.outputs, activation(plan, lanes))


@pytest.mark.parametrize("case", [PLANS[0], PLANS[5]], ids=plan_id)
def test_latency_and_full_throughput(case):
    function, fin, fout, options = case
    plan = plan_activation(function, fin, fout, **options)
    core = activation_core(plan)
    run = run_stream(core, fin.codes()[:40])
    assert core.latency == 3 and core.ii == 1
    assert set(run.latencies.tolist()) == {3}
    assert set(np.diff(run.in_cycles).tolist()) == {1}


def test_activation_core_errors():
    lut_plan = plan_activation("tanh", SQ(3, 3), SQ(1, 7), method="lut")
    relu_plan = plan_activation("relu", SQ(3, 3), UQ(3, 3))
    with pytest.raises(TypeError, match="plan must be a LUTPlan"):
        LUTActivation(relu_plan)
    with pytest.raises(TypeError, match="plan must be a ExactPlan"):
        ExactActivation(lut_plan)
    with pytest.raises(ValueError, match="Lanes must be at least 1, not 0"):
        LUTActivation(lut_plan, lanes=0)
    with pytest.raises(TypeError, match="Lanes must be an integer, not '2'"):
        LUTActivation(lut_plan, lanes="2")
    with pytest.raises(TypeError, match="plan must be an activation plan"):
        activation_core("tanh")


def test_activation_exports_verilog():
    plan = plan_activation("sigmoid", SQ(4, 4), UQ(0, 8), method="lut", table_size=64)
    text = verilog.convert(LUTActivation(plan, lanes=2), name="act")
    assert "module act" in text and "i__payload" in text
