import itertools
import math
import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.plans.popcount import METHODS, PopcountPlan, PopOp, plan_popcount
from hwnn.ref.popcount import popcount

CHAINS = (0, 3, 16)


def every_code(n):
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)


@pytest.mark.parametrize("method", METHODS)
def test_every_plan_counts_every_code_up_to_12_bits(method):
    for n in range(1, 13):
        codes = every_code(n)
        for chain in CHAINS:
            plan = plan_popcount(n, method, chain=chain)
            np.testing.assert_array_equal(plan.simulate(codes), popcount(codes),
                                          err_msg=f"{method} n={n} chain={chain}")


@pytest.mark.parametrize("method", METHODS)
def test_plans_count_random_and_corner_vectors_up_to_1024_bits(method):
    rng = np.random.default_rng(5)
    for n in [*range(13, 140, 7), 255, 256, 257, 511, 512, 1000, 1024]:
        rows = np.concatenate([np.zeros((1, n), np.int64), np.ones((1, n), np.int64),
                               rng.integers(0, 2, (40, n)),
                               (rng.random((20, n)) < 0.9).astype(np.int64)])
        for chain in CHAINS:
            plan = plan_popcount(n, method, chain=chain)
            np.testing.assert_array_equal(plan.simulate(rows), popcount(rows),
                                          err_msg=f"{method} n={n} chain={chain}")


def test_the_bit_level_model_is_not_a_restated_popcount():
    # A well-formed netlist that wires a half adder's outputs the wrong way round: the model
    # follows the wires, so it counts wrongly.
    swapped = PopcountPlan(2, "counters", 0, 0, (PopOp("half", ((0, 1),), None, (2, 3), 1),),
                           (3, 2))
    codes = every_code(2)
    np.testing.assert_array_equal(swapped.simulate(codes), [0, 2, 2, 1])
    # A carry chain one cell short drops the carry out of its top cell.
    short = PopcountPlan(3, "adder_tree", 0, 0,
                         (PopOp("adder", ((0, None), (1, None)), 2, (3, 4), 1),), (3, 4))
    np.testing.assert_array_equal(short.simulate(every_code(3)), popcount(every_code(3)))
    # A bit placed one position up in a chain counts twice.
    shifted = PopcountPlan(2, "adder_tree", 0, 0,
                           (PopOp("adder", ((0, None), (None, 1)), None, (2, 3), 1),), (2, 3))
    np.testing.assert_array_equal(shifted.simulate(codes), [0, 2, 1, 3])


def test_output_width_is_exact_and_latency_follows_the_pipeline():
    for method, n in itertools.product(METHODS, (1, 2, 3, 8, 63, 64, 100)):
        for pipeline in (0, 1, 2, 3):
            plan = plan_popcount(n, method, pipeline)
            assert plan.width == len(plan.output) == math.ceil(math.log2(n + 1))
            expected = 1 if pipeline == 0 else max(1, math.ceil(plan.levels / pipeline))
            assert plan.latency == expected
            assert {plan.stage(op.level) for op in plan.ops} <= set(range(plan.latency))


def test_adder_tree_levels_and_chains():
    plan = plan_popcount(63, "adder_tree", chain=0)
    # 63 = 2^6 - 1 bits: a perfect tree of 5 levels (3, 7, 15, 31, 63 bits), every adder with
    # a carry-in, and with no chain limit one carry chain per level.
    assert plan.levels == 5
    assert [op.level for op in plan.ops] == [1, 2, 3, 4, 5]
    info = plan.describe()
    assert info["adders"] == 5 and info["full_adders"] == info["half_adders"] == 0
    # Level j: 2^(5-j) adders of j + 1 cells (each top cell shared with the next adder's
    # carry-in), 88 cells for 63 bits.
    assert [len(op.out) for op in plan.ops] == [2 ** (5 - j) * (j + 1) for j in range(1, 6)]
    assert info["luts"] == 88 and info["carries"] == 88 - 5 and info["chains"] == 5


def test_chains_stay_within_their_limit():
    for method in ("adder_tree", "counters"):
        for chain in (4, 8, 16):
            plan = plan_popcount(200, method, chain=chain)
            widest = max(len(op.out) for op in plan.ops if op.kind == "adder" and
                         op.level == plan.levels)
            for op in plan.ops:
                if op.kind == "adder":
                    assert len(op.out) <= max(chain, widest), (method, chain, op)


def test_counters_replace_the_first_level_adders():
    plan = plan_popcount(64, "counters")
    first = [op for op in plan.ops if op.level == 1]
    assert first and {op.kind for op in first} <= {"full", "half"}
    assert all(op.kind == "adder" for op in plan.ops if op.level > 1)


def test_compressor_ends_in_one_carry_chain_adder():
    plan = plan_popcount(100, "compressor")
    adders = [op for op in plan.ops if op.kind == "adder"]
    assert len(adders) == 1 and adders[0].level == plan.levels
    assert adders[0].carry_in is None
    kinds = {op.kind for op in plan.ops if op.level < plan.levels}
    assert kinds <= {"full", "half"} and "full" in kinds


def test_pipeline_delays_the_bits_read_late():
    plan = plan_popcount(64, "adder_tree", pipeline=2)
    stages = plan.register_stages()
    # Output wires pass through the output register; carry-ins read in stage s wait s stages.
    assert all(stages[w][1] == plan.latency for w in plan.output)
    cost = plan.cost()
    late = sum(used - made for w, (made, used) in stages.items() if w < plan.n)
    assert cost["delay_ffs"] == late > 0
    assert plan_popcount(64, "adder_tree", pipeline=0).cost()["delay_ffs"] == 0
    assert cost["ffs"] > plan_popcount(64, "adder_tree", pipeline=0).cost()["ffs"]


def test_malformed_plans_are_rejected():
    half = PopOp("half", ((0, 1),), None, (2, 3), 1)
    cases = [
        ((2, "counters", 0, 0, (half, PopOp("half", ((0, 2),), None, (4, 5), 2)), (3, 4)),
         "ops[1] reads wire 0, which is read before"),
        ((2, "counters", 0, 0, (PopOp("half", ((0, 9),), None, (2, 3), 1),), (2, 3)),
         "ops[0] reads wire 9, which is not made before it"),
        ((2, "counters", 0, 0, (PopOp("half", ((0, 1),), None, (2, 3), 2),), (2, 3)),
         "ops[0] has level 2, but its inputs put it at level 1"),
        ((2, "counters", 0, 0, (half,), (2,)), "output must be 2 made and unread wires, "
                                               "not (2,)"),
        ((3, "counters", 0, 0, (PopOp("half", ((0, 1),), None, (3, 4), 1),), (3, 4)),
         "input wire 2 is never read"),
        ((2, "counters", 0, 0, (PopOp("full", ((0, 1),), None, (2, 3), 1),), (2, 3)),
         "ops[0] is not a well-formed 'full' operation"),
        ((2, "adder_tree", 0, 0, (PopOp("adder", ((0,), (1, None)), None, (2, 3), 1),),
          (2, 3)), "ops[0] is not a well-formed 'adder' operation"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            PopcountPlan(*args)


def test_simulate_checks_its_bits():
    plan = plan_popcount(5)
    with pytest.raises(ValueError, match=re.escape("bits must have 5 bits along the last "
                                                   "axis, not 4")):
        plan.simulate(np.zeros((2, 4), np.int64))


def test_bad_parameters_are_named():
    cases = [
        (dict(n=0), ParameterValueError, "n", "n must be an integer between 1 and 4096, not 0"),
        (dict(n=4097), ParameterValueError, "n",
         "n must be an integer between 1 and 4096, not 4097"),
        (dict(n=True), ParameterTypeError, "n",
         "n must be an integer between 1 and 4096, not True"),
        (dict(n=8, method="wallace"), ParameterValueError, "method",
         "method must be one of adder_tree | counters | compressor, not 'wallace'"),
        (dict(n=8, method=2), ParameterTypeError, "method",
         "method must be one of adder_tree | counters | compressor, not 2"),
        (dict(n=8, pipeline=-1), ParameterValueError, "pipeline",
         "pipeline must be a non-negative integer, not -1"),
        (dict(n=8, pipeline=1.5), ParameterTypeError, "pipeline",
         "pipeline must be a non-negative integer, not 1.5"),
        (dict(n=8, chain=-2), ParameterValueError, "chain",
         "chain must be a non-negative integer, not -2"),
    ]
    for kwargs, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            plan_popcount(**kwargs)
        assert info.value.parameter == parameter


def test_describe_reports_the_structure():
    info = plan_popcount(256, "adder_tree", pipeline=3).describe()
    assert info["method"] == "adder_tree" and info["n"] == 256 and info["width"] == 9
    assert info["levels"] == 8 and info["latency"] == 3 and info["pipeline"] == 3
    assert sum(info["adder_widths"].values()) == info["adders"]
    assert info["logic_cells"] >= info["luts"]
