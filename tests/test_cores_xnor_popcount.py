import itertools
import re

import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores._component import inspected, ports
from hwnn.cores.popcount import Popcount
from hwnn.cores.xnor_popcount import XnorPopcount
from hwnn.plans.popcount import METHODS, plan_popcount
from hwnn.ref.popcount import bipolar_dot, xnor_popcount
from hwnn.sim import run_stream
from hwnn.synth import synthesize

REFERENCES = {"popcount": xnor_popcount, "bipolar": bipolar_dot}


def every_code(n):
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("output", REFERENCES)
def test_constant_weights_every_input_code(method, output):
    n = 10
    codes = every_code(n)
    weights = np.array([1, 0, 0, 1, 1, 0, 1, 0, 0, 0])
    for pipeline in (0, 2):
        core = XnorPopcount(plan_popcount(n, method, pipeline), weights, output)
        run = run_stream(core, codes, stall_in=0.2, stall_out=0.3, seed=pipeline)
        np.testing.assert_array_equal(run.outputs, REFERENCES[output](codes, weights))


@pytest.mark.parametrize("output", REFERENCES)
def test_runtime_weights_every_pair_of_codes(output):
    n = 5
    pairs = np.array(list(itertools.product(every_code(n), repeat=2)))
    a, w = pairs[:, 0], pairs[:, 1]
    for method, pipeline in (("counters", 0), ("adder_tree", 1)):
        core = XnorPopcount(plan_popcount(n, method, pipeline), output=output)
        run = run_stream(core, {"a": a, "w": w}, stall_in=0.3, stall_out=0.3, seed=7)
        np.testing.assert_array_equal(run.outputs, REFERENCES[output](a, w))


@pytest.mark.parametrize("output", REFERENCES)
def test_wide_vectors_with_corners(output):
    n = 150
    rng = np.random.default_rng(8)
    weights = rng.integers(0, 2, n)
    a = np.concatenate([[weights, 1 - weights, np.zeros(n, np.int64), np.ones(n, np.int64)],
                        rng.integers(0, 2, (40, n))])
    core = XnorPopcount(plan_popcount(n, "counters", 3), weights, output)
    run = run_stream(core, a, stall_in=0.3, stall_out=0.3, seed=9)
    expected = REFERENCES[output](a, weights)
    np.testing.assert_array_equal(run.outputs, expected)
    # Full agreement and full disagreement are the extremes.
    assert expected[0] == n and expected[1] == (0 if output == "popcount" else -n)
    w_rows = rng.integers(0, 2, (len(a), n))
    core = XnorPopcount(plan_popcount(n, "adder_tree", 2), output=output)
    run = run_stream(core, {"a": a, "w": w_rows}, stall_in=0.3, stall_out=0.3, seed=10)
    np.testing.assert_array_equal(run.outputs, REFERENCES[output](a, w_rows))


def test_latency_shapes_and_describe():
    rows = np.random.default_rng(11).integers(0, 2, (30, 20))
    weights = rows[0]
    for pipeline, output, extra in ((0, "popcount", 0), (0, "bipolar", 0), (2, "popcount", 0),
                                    (2, "bipolar", 1)):
        plan = plan_popcount(20, "counters", pipeline)
        core = XnorPopcount(plan, weights, output)
        assert core.latency == plan.latency + extra
        run = run_stream(core, rows)
        assert set(run.latencies) == {core.latency} and set(np.diff(run.in_cycles)) == {1}
    assert inspected(XnorPopcount(plan, weights)).o.payload.shape().width == 5
    bipolar = inspected(XnorPopcount(plan, output="bipolar"))
    assert bipolar.o.payload.shape().signed and bipolar.o.payload.shape().width == 6
    info = bipolar.describe()
    assert info["core"] == "xnor_popcount" and info["weights"] == "runtime"
    assert info["output"] == "bipolar" and info["latency"] == bipolar.latency == 3
    np.testing.assert_array_equal(inspected(XnorPopcount(plan, weights)).weights, weights)


def test_bad_parameters_are_named():
    plan = plan_popcount(4)
    cases = [
        (lambda: XnorPopcount("plan"), ParameterTypeError, "plan",
         "plan must be a PopcountPlan (from plan_popcount), not 'plan'"),
        (lambda: XnorPopcount(plan, [1, 0, 1]), ParameterValueError, "weights",
         "weights must be 4 bits (the plan's n), not shape (3,)"),
        (lambda: XnorPopcount(plan, [1, 0, 2, 1]), ParameterValueError, "weights",
         "weights must hold only 0 and 1, not 2"),
        (lambda: XnorPopcount(plan, [0.5, 0, 1, 1]), ParameterTypeError, "weights",
         "weights must be an array of 0/1 integers or bools, not an array of dtype float64"),
        (lambda: XnorPopcount(plan, output="sign"), ParameterValueError, "output",
         "output must be one of popcount | bipolar, not 'sign'"),
        (lambda: XnorPopcount(plan, output=None), ParameterTypeError, "output",
         "output must be one of popcount | bipolar, not None"),
    ]
    for call, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            call()
        assert info.value.parameter == parameter


def test_exports_verilog():
    core = XnorPopcount(plan_popcount(12, "counters", 1), output="bipolar")
    text = verilog.convert(core, name="binary_dot", ports=ports(core))
    assert "module binary_dot" in text and "i__payload" in text


@pytest.mark.synth
def test_constant_weights_cost_nothing_on_lut_counters():
    # The inverted bits go to the LUT counters of the first level, which absorb them: the
    # core maps to exactly the popcount's cells.
    plan = plan_popcount(64, "counters")
    weights = np.random.default_rng(12).integers(0, 2, 64)
    assert (weights == 0).sum() <= len(plan.lut_inputs)
    plain = synthesize(Popcount(plan), "ice40-up5k", name="pc")
    xnor = synthesize(XnorPopcount(plan, weights), "ice40-up5k", name="xnor")
    assert (xnor.luts, xnor.carries, xnor.ffs) == (plain.luts, plain.carries, plain.ffs)
