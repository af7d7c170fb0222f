# amaranth: UnusedElaboratable=no
import re

import numpy as np
import pytest

from hwnn import SQ, UQ
from hwnn.cores.activation import activation_core
from hwnn.cores.dense import Dense
from hwnn.cores.framed import Framed
from hwnn.plans.activation import plan_activation
from hwnn.plans.dense import plan_dense
from hwnn.ref.activation import activation
from hwnn.sim import run_stream

UNITS = {
    "exact relu": (plan_activation("relu", SQ(3, 5), SQ(3, 5)), 3),
    "lut sigmoid": (plan_activation("sigmoid", SQ(3, 5), UQ(0, 8), method="lut"), 2),
    "pwl tanh": (plan_activation("tanh", SQ(3, 5), SQ(1, 7), method="pwl", segments=8), 1),
}


def frames(lanes, n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(-128, 128, (n, lanes) if lanes > 1 else n)
    return {"data": data, "last": rng.random(n) < 0.2}


@pytest.mark.parametrize("unit", UNITS)
def test_data_goes_through_the_core_and_last_beside_it(unit):
    plan, lanes = UNITS[unit]
    core = Framed(activation_core(plan, lanes=lanes))
    x = frames(lanes, 300, seed=1)
    steady = run_stream(core, x)
    np.testing.assert_array_equal(steady.outputs["data"], activation(plan, x["data"]))
    np.testing.assert_array_equal(steady.outputs["last"], x["last"])
    # The core's own timing: every vector takes its latency, one per cycle.
    assert set(steady.latencies.tolist()) == {core.latency}
    assert set(np.diff(steady.in_cycles).tolist()) == {core.ii}
    stalled = run_stream(core, x, stall_in=0.3, stall_out=0.5, seed=4)
    np.testing.assert_array_equal(stalled.outputs["data"], activation(plan, x["data"]))
    np.testing.assert_array_equal(stalled.outputs["last"], x["last"])


def test_a_folded_core_keeps_its_ii():
    rng = np.random.default_rng(0)
    plan = plan_dense(rng.uniform(-1, 1, (2, 3)), in_format=SQ(1, 7), weight_format=SQ(1, 7),
                      out_format=SQ(3, 5))
    core = Framed(Dense(plan, parallelism=2))
    x = frames(3, 60, seed=2)
    run = run_stream(core, x)
    assert set(np.diff(run.in_cycles).tolist()) == {core.ii} == {3}
    assert set(run.latencies.tolist()) == {core.latency}
    np.testing.assert_array_equal(run.outputs["last"], x["last"])


def test_errors_name_the_core():
    with pytest.raises(TypeError, match=re.escape("core must have stream members i and o, "
                                                  "not int")):
        Framed(1)
    rng = np.random.default_rng(0)
    plan = plan_dense(rng.uniform(-1, 1, (2, 3)), in_format=SQ(1, 7), weight_format=SQ(1, 7),
                      out_format=SQ(3, 5))
    with pytest.raises(ValueError, match="core must not have an always_ready output"):
        Framed(Dense(plan, arith="csd", always_ready=True))
