import re

import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.checks import ParameterTypeError
from hwnn.cores.pwl import PWLActivation, uniform_run
from hwnn.fixed import SQ, UQ
from hwnn.plans.lut import plan_lut
from hwnn.plans.pwl import plan_pwl
from hwnn.ref.pwl import pwl
from hwnn.sim import run_stream
from oracle import plan_id

PLANS = [
    ("tanh", SQ(4, 6), SQ(1, 9), dict(segments=8, breakpoints="uniform")),
    ("tanh", SQ(4, 6), SQ(1, 9), dict(segments=8, breakpoints="optimal")),
    ("sigmoid", SQ(4, 6), UQ(0, 10), dict(segments=6, breakpoints="optimal", symmetric=False)),
    ("sigmoid", SQ(4, 6), UQ(0, 10), dict(segments=8, breakpoints="optimal", slopes="pot2")),
    ("tanh", SQ(4, 6), SQ(1, 9), dict(segments=8, breakpoints="uniform", slopes="pot")),
    ("sigmoid", UQ(4, 6), UQ(0, 8), dict(segments=4, breakpoints="uniform")),
    ("tanh", SQ(3, 7), SQ(2, 8), dict(segments=12, breakpoints="optimal", input_range=(-2, 2))),
]


@pytest.mark.parametrize("case", PLANS, ids=[plan_id(c) for c in PLANS])
def test_every_input_code_matches_the_reference(case):
    function, fin, fout, options = case
    plan = plan_pwl(function, fin, fout, **options)
    codes = fin.codes()
    run = run_stream(PWLActivation(plan), codes, stall_in=0.2, stall_out=0.3, seed=4)
    np.testing.assert_array_equal(run.outputs, pwl(plan, codes))


def test_lanes_and_timing():
    plan = plan_pwl("tanh", SQ(4, 6), SQ(1, 9), segments=8)
    codes = SQ(4, 6).codes()
    lanes = np.stack([codes, codes[::-1]], axis=1)
    core = PWLActivation(plan, lanes=2)
    run = run_stream(core, lanes, stall_out=0.4, seed=1)
    np.testing.assert_array_equal(run.outputs, pwl(plan, lanes))
    timing = run_stream(PWLActivation(plan), codes[:30])
    assert core.latency == 8 and core.ii == 1
    assert set(timing.latencies.tolist()) == {8}
    assert set(np.diff(timing.in_cycles).tolist()) == {1}


def test_uniform_run():
    assert uniform_run([0, 4, 8, 12, 16, 40], 64) == (0, 3, 2)
    assert uniform_run([0, 3, 7, 11, 15, 19], 20) == (1, 4, 2)
    assert uniform_run([-32, -8, 0, 8, 16], 32) == (1, 3, 3)
    assert uniform_run([0, 3], 8) == (0, -1, -1)


def test_pwl_core_rejects_other_plans():
    plan = plan_lut("tanh", SQ(3, 3), SQ(1, 7))
    message = (f"plan must be a PWLPlan (see hwnn.plans.activation.plan_activation), "
               f"not {plan!r}")
    with pytest.raises(ParameterTypeError, match=re.escape(message) + "$") as info:
        PWLActivation(plan)
    assert info.value.parameter == "plan"


def test_sixteen_bit_unit_on_all_65536_codes():
    """The benchmark's 16-bit design, every input code (about 6 s in pysim)."""
    plan = plan_pwl("tanh", SQ(6, 10), SQ(1, 15), segments=16)
    codes = SQ(6, 10).codes()
    run = run_stream(PWLActivation(plan), codes)
    np.testing.assert_array_equal(run.outputs, pwl(plan, codes))


def test_exports_verilog():
    plan = plan_pwl("sigmoid", SQ(4, 6), UQ(0, 10), segments=8, slopes="pot2")
    text = verilog.convert(PWLActivation(plan, lanes=2), name="act")
    assert "module act" in text and "i__payload" in text
