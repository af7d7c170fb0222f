import re

import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.lut import LUTActivation
from hwnn.fixed import SQ, UQ
from hwnn.plans.exact import plan_exact
from hwnn.plans.lut import plan_lut
from hwnn.ref.lut import lut
from hwnn.sim import run_stream
from oracle import plan_id

PLANS = [
    ("sigmoid", SQ(4, 4), UQ(0, 8), {}),
    ("tanh", SQ(4, 6), SQ(1, 7), dict(table_size=64)),
    ("sigmoid", SQ(4, 6), UQ(0, 8), dict(table_size=128, input_range=(-4, 4))),
    ("sigmoid", SQ(4, 6), UQ(1, 8), dict(table_size=128, symmetric=False, entries="left")),
    ("sigmoid", UQ(3, 5), UQ(0, 8), dict(table_size=32)),
]


@pytest.mark.parametrize("case", PLANS, ids=[plan_id(c) for c in PLANS])
def test_every_input_code_matches_the_reference(case):
    function, fin, fout, options = case
    plan = plan_lut(function, fin, fout, **options)
    codes = fin.codes()
    run = run_stream(LUTActivation(plan), codes, stall_in=0.2, stall_out=0.3, seed=1)
    np.testing.assert_array_equal(run.outputs, lut(plan, codes))


def test_lanes_process_independent_values():
    plan = plan_lut("tanh", SQ(4, 6), SQ(1, 7), table_size=64)
    codes = SQ(4, 6).codes()
    lanes = np.stack([codes, codes[::-1], np.roll(codes, 7)], axis=1)
    run = run_stream(LUTActivation(plan, lanes=3), lanes, stall_out=0.5, seed=2)
    np.testing.assert_array_equal(run.outputs, lut(plan, lanes))


def test_latency_and_full_throughput():
    plan = plan_lut("sigmoid", SQ(4, 4), UQ(0, 8))
    core = LUTActivation(plan)
    run = run_stream(core, SQ(4, 4).codes()[:40])
    assert core.latency == 3 and core.ii == 1
    assert set(run.latencies.tolist()) == {3}
    assert set(np.diff(run.in_cycles).tolist()) == {1}


def test_sixteen_bit_unit_on_all_65536_codes():
    """The benchmark's 16-bit design, every input code (about 6 s in pysim)."""
    plan = plan_lut("tanh", SQ(6, 10), SQ(1, 15), table_size=1024, input_range=(-8, 8))
    codes = SQ(6, 10).codes()
    run = run_stream(LUTActivation(plan), codes)
    np.testing.assert_array_equal(run.outputs, lut(plan, codes))


def test_parameter_errors_name_the_parameter():
    plan = plan_lut("tanh", SQ(3, 3), SQ(1, 7))
    relu = plan_exact("relu", SQ(3, 3), UQ(3, 3))
    cases = [
        (dict(plan=relu), ParameterTypeError, "plan",
         f"plan must be a LUTPlan (see hwnn.plans.activation.plan_activation), not {relu!r}"),
        (dict(plan=plan, lanes=0), ParameterValueError, "lanes",
         "lanes must be a positive integer, not 0"),
        (dict(plan=plan, lanes="2"), ParameterTypeError, "lanes",
         "lanes must be a positive integer, not '2'"),
        (dict(plan=plan, lanes=True), ParameterTypeError, "lanes",
         "lanes must be a positive integer, not True"),
    ]
    for kwargs, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            LUTActivation(**kwargs)
        assert info.value.parameter == parameter


def test_exports_verilog():
    plan = plan_lut("sigmoid", SQ(4, 4), UQ(0, 8), table_size=64)
    text = verilog.convert(LUTActivation(plan, lanes=2), name="act")
    assert "module act" in text and "i__payload" in text
