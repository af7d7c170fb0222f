import itertools
import re

import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores._component import inspected
from hwnn.cores.binary_dense import BinaryDense, ThresholdRows, XnorPopcountProduct
from hwnn.cores.mac import FoldedMac, Multiply
from hwnn.fixed import SQ, UQ
from hwnn.plans.binary_dense import plan_binary_dense
from hwnn.plans.dense import plan_dense
from hwnn.plans.threshold import ThresholdPlan
from hwnn.ref.binary import dot_range, multithreshold
from hwnn.ref.binary_dense import binary_dense
from hwnn.sim import make_vectors, run_stream
from hwnn.synth import synthesize


def random_thresholds(rng, lo, hi, channels, out_format, fmt=SQ(12, 0)):
    """Ascending thresholds around the dot product's range [lo, hi] (some beyond it)."""
    levels = (1 << out_format.width) - 1
    thresholds = np.sort(rng.integers(lo - 2, hi + 3, (channels, levels)), axis=1)
    return ThresholdPlan(fmt, out_format, thresholds, rng.random(channels) < 0.3)


def make_plan(n_out, n_in, pe, simd, encoding="bipolar", w_encoding="bipolar", k=None,
              channels=None, seed=0, pipeline=0, method="adder_tree"):
    rng = np.random.default_rng(seed)
    weights = rng.integers(0, 2, (n_out, n_in))
    thresholds = None
    if k is not None:
        fmt = encoding if not isinstance(encoding, str) else None
        lo, hi = (dot_range(n_in, "integer", w_encoding, fmt) if fmt is not None
                  else dot_range(n_in, encoding, w_encoding))
        out = UQ(k, 0) if k == 1 else SQ(k, 0)
        thresholds = random_thresholds(rng, lo, hi, channels or n_out, out,
                                       SQ(20, 0) if fmt is None else SQ(20, fmt.f))
    return plan_binary_dense(weights, in_encoding=encoding, w_encoding=w_encoding, pe=pe,
                             simd=simd, thresholds=thresholds, popcount_pipeline=pipeline,
                             popcount_method=method)


def make_inputs(plan, count, seed=1):
    if plan.in_encoding == "integer":
        return make_vectors(plan.in_format, plan.n_in, count, seed=seed)
    rng = np.random.default_rng(seed)
    corners = np.concatenate([np.zeros((1, plan.n_in), np.int64),
                              np.ones((1, plan.n_in), np.int64),
                              np.arange(plan.n_in)[np.newaxis] % 2, plan.weights[:2],
                              1 - plan.weights[:2]])
    return np.concatenate([corners, rng.integers(0, 2, (count, plan.n_in))])


CASES = [
    # n_out, n_in, pe, simd, and the rest of make_plan's arguments
    dict(n_out=4, n_in=8, pe=1, simd=1),
    dict(n_out=4, n_in=8, pe=2, simd=4, k=1),
    dict(n_out=4, n_in=8, pe=4, simd=8, k=2, channels=1),
    dict(n_out=6, n_in=12, pe=3, simd=3, encoding="binary", k=2),
    dict(n_out=3, n_in=10, pe=3, simd=5, w_encoding="binary"),
    dict(n_out=2, n_in=16, pe=1, simd=8, encoding="binary", w_encoding="binary", k=1),
    dict(n_out=8, n_in=32, pe=4, simd=16, k=1, pipeline=2, method="counters"),
    dict(n_out=5, n_in=20, pe=5, simd=4, encoding="binary", pipeline=1,
         method="compressor"),
    dict(n_out=4, n_in=6, pe=2, simd=1, encoding=SQ(1, 7)),
    dict(n_out=4, n_in=6, pe=4, simd=3, encoding=UQ(4, 0), w_encoding="binary", k=2),
    dict(n_out=2, n_in=4, pe=1, simd=2, encoding=SQ(3, 2), k=1),
    dict(n_out=1, n_in=1, pe=1, simd=1, k=1),
    # Several neurons per PE share its comparators (ThresholdRows.indexed); with three or
    # more words per neuron their outputs are the output register itself.
    dict(n_out=8, n_in=16, pe=2, simd=4, k=1),
    dict(n_out=8, n_in=12, pe=2, simd=4, k=2, seed=3),
    dict(n_out=12, n_in=9, pe=3, simd=3, k=2, encoding="binary", pipeline=1),
    dict(n_out=6, n_in=8, pe=1, simd=4, k=2),
    dict(n_out=6, n_in=8, pe=2, simd=2, k=3, channels=1, encoding=SQ(2, 1)),
    dict(n_out=8, n_in=6, pe=2, simd=3, k=1, encoding="binary", w_encoding="binary"),
]


def case_id(case):
    return "-".join(f"{k}={v}" for k, v in case.items())


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_equals_reference_under_stalls(case):
    plan = make_plan(**case)
    x = make_inputs(plan, 40)
    expected = binary_dense(plan, x)
    for stall_in, stall_out, seed in [(0.0, 0.0, 0), (0.4, 0.5, 1)]:
        run = run_stream(BinaryDense(plan), x, stall_in=stall_in, stall_out=stall_out,
                         seed=seed)
        np.testing.assert_array_equal(run.outputs, expected)


@pytest.mark.parametrize("encoding, w_encoding, k", [("bipolar", "bipolar", None),
                                                     ("bipolar", "binary", 1),
                                                     ("binary", "bipolar", 2),
                                                     ("binary", "binary", None)])
def test_every_input_code_of_a_tiny_layer(encoding, w_encoding, k):
    plan = make_plan(3, 10, 3, 5, encoding, w_encoding, k=k, seed=4)
    x = np.array(list(itertools.product((0, 1), repeat=10)), dtype=np.int64)
    run = run_stream(BinaryDense(plan), x, stall_in=0.1, stall_out=0.2, seed=5)
    np.testing.assert_array_equal(run.outputs, binary_dense(plan, x))


def test_every_input_code_of_a_tiny_first_layer():
    # Three SQ(2, 2) codes: every one of the 4096 12-bit input vectors.
    plan = make_plan(2, 3, 1, 3, SQ(2, 2), k=2, seed=6)
    codes = SQ(2, 2).codes()
    x = np.array(list(itertools.product(codes, repeat=3)), dtype=np.int64)
    run = run_stream(BinaryDense(plan), x, stall_in=0.1, stall_out=0.1, seed=7)
    np.testing.assert_array_equal(run.outputs, binary_dense(plan, x))


@pytest.mark.parametrize("case", [
    dict(n_out=4, n_in=8, pe=1, simd=2),
    dict(n_out=4, n_in=8, pe=4, simd=8, k=1),
    dict(n_out=4, n_in=8, pe=2, simd=4, k=2, pipeline=1),
    dict(n_out=6, n_in=9, pe=3, simd=3, encoding=SQ(2, 1)),
    dict(n_out=8, n_in=16, pe=2, simd=4, k=1),
    dict(n_out=6, n_in=9, pe=2, simd=3, k=2, pipeline=1),
], ids=case_id)
def test_ii_and_latency_are_what_simulation_shows(case):
    plan = make_plan(**case)
    core = BinaryDense(plan)
    assert core.ii == plan.ii == (plan.n_out // plan.pe) * (plan.n_in // plan.simd)
    depth = 1 if plan.popcount is None else plan.popcount.latency
    assert core.latency == core.ii + 3 + depth
    # Rows kept in the output register (three or more words per neuron) cost no cycle.
    assert core.mac.rows_in_output == (plan.activation is not None and plan.n_out > plan.pe
                                       and plan.n_in // plan.simd >= 3)
    run = run_stream(core, make_inputs(plan, 12))
    assert set(run.latencies.tolist()) == {core.latency}
    assert set(np.diff(run.in_cycles).tolist()) == {core.ii}
    assert set(np.diff(run.out_cycles).tolist()) == {core.ii}


def test_ports_properties_and_describe():
    plan = make_plan(4, 8, 2, 4, k=2)
    core = inspected(BinaryDense(plan))
    assert core.plan is plan and core.in_format == UQ(1, 0) and core.out_format == SQ(2, 0)
    i, o = core.i.payload.shape(), core.o.payload.shape()
    assert (i.elem_shape.width, i.length, o.elem_shape.width, o.length) == (1, 8, 2, 4)
    assert core.schedule.ii == 4 and core.mac.lanes == 2
    info = core.describe()
    assert info["kind"] == "binary_dense" and info["ii"] == 4 and info["pe"] == 2
    assert info["latency"] == core.latency and info["simd"] == 4
    dots = inspected(BinaryDense(make_plan(4, 8, 2, 4)))
    element = dots.o.payload.shape().elem_shape
    assert element.signed and element.width == 5


def test_bad_parameters_are_named():
    with pytest.raises(ParameterTypeError, match=re.escape(
            "plan must be a BinaryDensePlan (see hwnn.plans.binary_dense.plan_binary_dense), "
            "not 'plan'") + "$") as info:
        BinaryDense("plan")
    assert info.value.parameter == "plan"
    with pytest.raises(ParameterValueError, match=re.escape(
            "weight_ram must be one of auto | block | logic, not 'spram'") + "$") as info:
        BinaryDense(make_plan(2, 4, 1, 2), weight_ram="spram")
    assert info.value.parameter == "weight_ram"
    plan = make_plan(4, 8, 2, 4)
    with pytest.raises(ParameterTypeError, match=re.escape(
            "memory_attrs must be a dict or None, not 'block'") + "$") as info:
        FoldedMac(plan.mac, XnorPopcountProduct(plan.terms[0], 2, 4, plan.popcount),
                  memory_attrs="block")
    assert info.value.parameter == "memory_attrs"


def test_folded_mac_row_output_needs_whole_rows_per_lane():
    plan = make_plan(4, 8, 2, 4, k=1)
    tables, scale, _ = plan.terms
    product = XnorPopcountProduct(tables, scale, 4, plan.popcount)
    rows = ThresholdRows(plan.activation)
    cases = [
        (dict(row_output="thresholds"), ParameterTypeError,
         "row_output must be a hwnn.cores.mac.RowOutput or None, not 'thresholds'"),
        (dict(row_output=rows, parallelism=3), ParameterValueError,
         "row_output needs every row in one lane, requantize_stages 1 and no rows; row 1 is "
         "split between lanes at parallelism 3"),
        (dict(row_output=rows, requantize_stages=2), ParameterValueError,
         "row_output needs every row in one lane, requantize_stages 1 and no rows; "
         "requantize_stages 2 or rows is given"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            FoldedMac(plan.mac, product, **kwargs)
        assert info.value.parameter == "row_output"


def test_exports_verilog():
    core = BinaryDense(make_plan(4, 16, 2, 8, k=1))
    text = verilog.convert(core, name="bdense")
    assert "module bdense" in text and "i__payload" in text and "o__payload" in text


@pytest.mark.synth
def test_synthesizes_on_up5k():
    # 64 → 32 bipolar neurons with one threshold each, 4 PEs × 16 bits: the weights sit in
    # four 32 × 16-bit memories.
    plan = make_plan(32, 64, 4, 16, k=1, seed=9)
    report = synthesize(BinaryDense(plan), "ice40-up5k", name="bdense")
    print(f"BinaryDense 64->32 pe=4 simd=16 on ice40-up5k: {report.luts} LUT4, "
          f"{report.carries} carry, {report.ffs} FF, {report.brams} EBR")
    # The PEs keep one bit per finished neuron, not its 8-bit sum: measured 282 FF (the sums
    # kept, with a MultiThreshold after the MAC, took 867).
    assert 0 < report.luts < 800 and 0 < report.ffs < 400
    # 64 x 16 weight bits per PE: block RAM ("auto" from 1024 bits), or logic on request.
    plan = make_plan(64, 64, 4, 16, seed=10)
    block = synthesize(BinaryDense(plan), "ice40-up5k", name="bdense")
    logic = synthesize(BinaryDense(plan, weight_ram="logic"), "ice40-up5k", name="bdense")
    print(f"BinaryDense 64->64 pe=4 simd=16: {block.luts} LUT4 + {block.brams} EBR, "
          f"{logic.luts} LUT4 in logic")
    assert block.brams == 4 and logic.brams == 0 and block.luts < logic.luts


def test_folded_mac_row_outputs_with_a_shorter_last_lane():
    # 8 rows on 3 lanes: 3, 3 and 2 rows, so the last lane shifts in only its own early row
    # while the others finish their second. Multiplier products: an idle slot adds 0.
    rng = np.random.default_rng(12)
    dense_plan = plan_dense(rng.integers(-7, 8, (8, 2)) / 8, in_format=SQ(1, 3),
                            weight_format=SQ(1, 3), out_format=SQ(4, 6))
    lo = -2 * 8 * 8   # |x·w| ≤ 1 per product, in codes of acc_format (6 fraction bits)
    thresholds = ThresholdPlan(SQ(12, dense_plan.acc_format.f), SQ(2, 0),
                               np.sort(rng.integers(lo, -lo, (8, 3)), axis=1),
                               rng.random(8) < 0.4)
    core = FoldedMac(dense_plan, Multiply(SQ(1, 3), SQ(1, 3)), parallelism=3,
                     row_output=ThresholdRows(thresholds))
    assert [len(lane.segments) for lane in core.schedule.lanes] == [3, 3, 2]
    assert not core.rows_in_output   # rows take 2 cycles
    # The last lane's rows differ, so an early row overwritten by the next would show.
    assert (dense_plan.weight[6] != dense_plan.weight[7]).any()
    x = make_vectors(SQ(1, 3), 2, 60, seed=12)
    sums = x @ dense_plan.weight.T   # codes at 6 fraction bits, no bias
    run = run_stream(core, x, stall_in=0.3, stall_out=0.4, seed=13)
    np.testing.assert_array_equal(run.outputs, multithreshold(thresholds, sums))
