import itertools
import re

import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.checks import ParameterTypeError
from hwnn.cores._component import inspected, ports
from hwnn.cores.popcount import Popcount
from hwnn.plans.popcount import METHODS, plan_popcount
from hwnn.ref.popcount import popcount
from hwnn.sim import run_stream
from hwnn.synth import synthesize


def every_code(n):
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)


@pytest.mark.parametrize("method", METHODS)
def test_every_code_of_12_bits_under_stalls(method):
    codes = every_code(12)
    plan = plan_popcount(12, method, pipeline=2, chain=4)
    run = run_stream(Popcount(plan), codes, stall_in=0.2, stall_out=0.3, seed=1)
    np.testing.assert_array_equal(run.outputs, popcount(codes))


@pytest.mark.parametrize("method", METHODS)
def test_every_code_of_small_widths_at_every_pipeline_depth(method):
    for n, pipeline in itertools.product((1, 2, 3, 4, 5, 7, 8), (0, 1, 3)):
        codes = every_code(n)
        plan = plan_popcount(n, method, pipeline=pipeline)
        run = run_stream(Popcount(plan), np.concatenate([codes, codes[::-1]]), stall_in=0.3,
                         stall_out=0.3, seed=n)
        np.testing.assert_array_equal(run.outputs, popcount(np.concatenate([codes,
                                                                           codes[::-1]])))


def random_rows(n, count, seed):
    rng = np.random.default_rng(seed)
    # All-zero and all-one first (the widest carries), then dense, sparse and even rows.
    return np.concatenate([np.zeros((1, n), np.int64), np.ones((1, n), np.int64),
                           (rng.random((count, n)) < 0.9).astype(np.int64),
                           (rng.random((count, n)) < 0.1).astype(np.int64),
                           rng.integers(0, 2, (count, n))])


@pytest.mark.parametrize("method", METHODS)
def test_random_and_corner_vectors_of_200_bits_under_stalls(method):
    rows = random_rows(200, 15, 2)
    for pipeline, chain in ((0, 16), (2, 0), (3, 5)):
        plan = plan_popcount(200, method, pipeline=pipeline, chain=chain)
        run = run_stream(Popcount(plan), rows, stall_in=0.3, stall_out=0.3, seed=pipeline)
        np.testing.assert_array_equal(run.outputs, popcount(rows))


def test_1024_bits():
    rows = random_rows(1024, 4, 3)
    for method in ("adder_tree", "compressor"):
        plan = plan_popcount(1024, method, pipeline=3)
        run = run_stream(Popcount(plan), rows, stall_in=0.2, stall_out=0.2, seed=4)
        np.testing.assert_array_equal(run.outputs, popcount(rows))


def test_latency_and_throughput_without_stalls():
    rows = random_rows(40, 10, 5)
    for method, pipeline in itertools.product(METHODS, (0, 1, 2, 4)):
        core = Popcount(plan_popcount(40, method, pipeline=pipeline))
        run = run_stream(core, rows)
        assert set(run.latencies) == {core.latency} and core.latency == core.plan.latency
        assert set(np.diff(run.in_cycles)) == {core.ii} == {1}
    # 40 bits take 5 adder levels (up to 63 bits would), one register after each.
    assert inspected(Popcount(plan_popcount(40, "adder_tree", pipeline=1))).latency == 5


def test_describe():
    core = inspected(Popcount(plan_popcount(100, "counters", pipeline=2)))
    info = core.describe()
    assert info["core"] == "popcount" and info["method"] == "counters" and info["n"] == 100
    assert info["latency"] == core.latency and info["ii"] == 1 and info["width"] == 7


def test_rejects_a_plan_that_is_not_a_popcount_plan():
    with pytest.raises(ParameterTypeError, match=re.escape(
            "plan must be a PopcountPlan (from plan_popcount), not 16") + "$") as info:
        Popcount(16)
    assert info.value.parameter == "plan"


def test_exports_verilog():
    core = Popcount(plan_popcount(20, "adder_tree", pipeline=2))
    text = verilog.convert(core, name="popcount", ports=ports(core))
    assert "module popcount" in text and "o__payload" in text


@pytest.mark.synth
def test_the_adders_keep_their_own_carry_chains():
    # Without `keep`, yosys's alumacc merges the tree into one $macc: 64 bits map to 6
    # SB_CARRY and 114 LUT4. Kept apart, every adder bit below each chain's top has a carry.
    plan = plan_popcount(64, "adder_tree")
    report = synthesize(Popcount(plan), "ice40-up5k", name="popcount")
    assert report.carries == plan.cost()["carries"]
    assert report.luts <= plan.cost()["luts"] < 100
