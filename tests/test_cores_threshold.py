import functools
import re
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.sim import Simulator

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores._component import inspected
from hwnn.cores.threshold import MultiThreshold, Threshold
from hwnn.export import export
from hwnn.fixed import SQ, UQ
from hwnn.plans.threshold import ThresholdPlan, plan_batchnorm_sign, plan_thresholds
from hwnn.ref.binary import multithreshold
from hwnn.sim import run_stream
from hwnn.sim.payload import PayloadCodec
from hwnn.synth import synthesize
from verilator_tool import needs_verilator, verilator
from verilator_tool import run as run_verilator


def every_code(fmt, lanes):
    """Every code of ``fmt`` on each lane, each lane in another order."""
    codes = fmt.codes()
    rng = np.random.default_rng(fmt.width)
    return np.stack([codes] + [rng.permutation(codes) for _ in range(lanes - 1)], axis=1)


def batchnorm_plan(fmt, channels, seed):
    rng = np.random.default_rng(seed)
    gamma = rng.normal(0, 1, channels)
    gamma[0], gamma[1] = 0.0, -abs(gamma[1])
    mean = rng.uniform(fmt.min_int, fmt.max_int, channels)
    beta = rng.normal(0, 1, channels)
    beta[2] = -1e3  # all -1
    return plan_batchnorm_sign(fmt, gamma, beta, mean, rng.uniform(0.1, 4, channels))


def clip_plan(fmt, out_format, channels, seed):
    """A quantized clip to the output range after batch norm (relu for an unsigned output,
    hard_tanh-like for a signed one), per channel, channel 0 decreasing."""
    rng = np.random.default_rng(seed)
    half_range = (fmt.max_int - fmt.min_int) / 2
    scale = rng.uniform(1.5, 3, channels) * out_format.max / half_range
    scale *= rng.choice([-1, 1], channels)
    scale[0] = -abs(scale[0])
    offset = rng.uniform(-0.5, 0.5, channels) * out_format.max

    def f(s):
        z = np.clip(scale * s + offset, out_format.min, out_format.max)
        return np.floor(z * 2.0 ** out_format.f + 0.5).astype(np.int64)
    return plan_thresholds(f, fmt, out_format, channels=channels)


@pytest.mark.parametrize("fmt", [SQ(12, 0), UQ(10, 0), SQ(6, 2)], ids=str)
@pytest.mark.parametrize("loadable", [False, True], ids=["constant", "registers"])
def test_threshold_matches_the_reference_on_every_input(fmt, loadable):
    plan = batchnorm_plan(fmt, 4, fmt.width)
    x = every_code(fmt, 4)
    run = run_stream(Threshold(plan, loadable=loadable), x, stall_in=0.2, stall_out=0.3, seed=1)
    np.testing.assert_array_equal(run.outputs, multithreshold(plan, x))
    # The case the plan aims at occur: a constant +1, a constant -1, a flipped comparison.
    assert plan.descending.any() and run.outputs[:, 2].max() == 0


@pytest.mark.parametrize("out_format", [UQ(2, 0), UQ(2, 2), SQ(3, 0)], ids=str)
@pytest.mark.parametrize("loadable", [False, True], ids=["constant", "registers"])
def test_multithreshold_matches_the_reference_on_every_input(out_format, loadable):
    fmt = SQ(12, 0) if out_format.width <= 3 else SQ(10, 0)
    plan = clip_plan(fmt, out_format, 3, out_format.width)
    x = every_code(fmt, 3)
    core = MultiThreshold(plan, loadable=loadable)
    run = run_stream(core, x, stall_in=0.3, stall_out=0.2, seed=2)
    expected = multithreshold(plan, x)
    np.testing.assert_array_equal(run.outputs, expected)
    assert len(np.unique(expected)) == 2 ** out_format.width  # every level occurs


def test_one_plan_channel_is_shared_by_every_lane():
    plan = plan_thresholds(lambda s: np.clip((s + 2) // 3, 0, 7), SQ(6, 0), UQ(3, 0))
    x = every_code(SQ(6, 0), 3)
    core = MultiThreshold(plan, lanes=3)
    run = run_stream(core, x, stall_out=0.5, seed=3)
    np.testing.assert_array_equal(run.outputs, multithreshold(plan, x))
    assert core.lanes == 3


def test_one_lane_has_a_scalar_payload():
    plan = plan_thresholds(lambda s: np.clip(-s // 5, -4, 3), SQ(6, 0), SQ(3, 0))
    codes = SQ(6, 0).codes()
    run = run_stream(MultiThreshold(plan), codes, stall_in=0.4, stall_out=0.4, seed=4)
    np.testing.assert_array_equal(run.outputs, multithreshold(plan, codes))


@pytest.mark.parametrize("core_type, k, latency", [(Threshold, 1, 3), (MultiThreshold, 2, 4)])
def test_latency_and_full_throughput(core_type, k, latency):
    fmt = SQ(6, 0)
    plan = ThresholdPlan(fmt, UQ(k, 0), [list(range(2 ** k - 1))], [False])
    core = core_type(plan)
    run = run_stream(core, fmt.codes())
    assert core.latency == latency and core.ii == 1
    assert set(run.latencies.tolist()) == {latency}
    assert set(np.diff(run.in_cycles).tolist()) == {1}


def run_with_loads(core, x, loads, *, seed, stall=0.3):
    """Stream ``x`` into ``core`` while ``loads`` (payload dicts of ``i_thresholds``) go in at
    random times; returns the outputs, each input's accept cycle and each load's."""
    rng = np.random.default_rng(seed)
    idle_in, idle_load, hold = (rng.random(20 * len(x) + 200) < p for p in (stall, 0.9, stall))
    in_codec = PayloadCodec.for_shape(core.i.signature.members["payload"].shape)
    load_codec = PayloadCodec.for_shape(core.load_layout)
    out_codec = PayloadCodec.for_shape(core.o.signature.members["payload"].shape)
    in_cycles, load_cycles, outputs = [], [], []

    async def producer(ctx, stream, rows, codec, idle, cycles):
        cycle, index = 0, 0
        while index < len(rows):
            offer = not idle[cycle]
            if offer:
                ctx.set(Value.cast(stream.payload), codec.pack(rows[index]))
            ctx.set(stream.valid, offer)
            _, _, ready = await ctx.tick().sample(stream.ready)
            if offer and ready:
                cycles.append(cycle)
                index += 1
            cycle += 1
        ctx.set(stream.valid, 0)

    async def consumer(ctx):
        cycle = 0
        while len(outputs) < len(x):
            ctx.set(core.o.ready, not hold[cycle])
            _, _, valid, payload = await ctx.tick().sample(core.o.valid,
                                                           Value.cast(core.o.payload))
            if valid and not hold[cycle]:
                outputs.append(out_codec.unpack(payload))
            cycle += 1

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(functools.partial(producer, stream=core.i, rows=list(x), codec=in_codec,
                                        idle=idle_in, cycles=in_cycles))
    sim.add_testbench(functools.partial(producer, stream=core.i_thresholds, rows=loads,
                                        codec=load_codec, idle=idle_load, cycles=load_cycles))
    sim.add_testbench(consumer)
    sim.run()
    return np.array(outputs), np.array(in_cycles), np.array(load_cycles)


def expected_with_loads(plan, lanes, x, in_cycles, loads, load_cycles):
    """Each input under the last load accepted in its cycle or before (the plan's before any)."""
    count = plan.thresholds.shape[1]
    expected = []
    for row, cycle in zip(x, in_cycles):
        applied = [load for load, c in zip(loads, load_cycles) if c <= cycle]
        if applied:
            t = np.array(applied[-1]["thresholds"]).reshape(lanes, count)
            d = np.array(applied[-1]["descending"], dtype=bool)
        else:
            t = np.broadcast_to(plan.thresholds, (lanes, count))
            d = np.broadcast_to(plan.descending, (lanes,))
        state = SimpleNamespace(in_format=plan.in_format, out_format=plan.out_format,
                                thresholds=t, descending=d)
        expected.append(multithreshold(state, row))
    return np.array(expected)


@pytest.mark.parametrize("core_type, out_format", [(Threshold, UQ(1, 0)),
                                                   (MultiThreshold, SQ(2, 0))])
def test_loads_apply_from_the_input_accepted_with_them_on(core_type, out_format):
    fmt, lanes = SQ(5, 0), 2
    plan = clip_plan(fmt, out_format, 1, 7) if out_format.width > 1 else \
        batchnorm_plan(fmt, 3, 7)
    plan = ThresholdPlan(fmt, out_format, plan.thresholds[:1], plan.descending[:1])
    core = core_type(plan, lanes=lanes, loadable=True)
    rng = np.random.default_rng(5)
    count = plan.thresholds.shape[1]
    loads = []
    for index in range(12):
        t = rng.integers(fmt.min_int, fmt.max_int + 2, (lanes, count))
        # Half the loads ascend as a plan's do; the others check that the count is a count.
        t = np.sort(t, axis=1) if index % 2 else t
        loads.append({"thresholds": t.ravel().tolist(),
                      "descending": rng.integers(0, 2, lanes).tolist()})
    x = rng.integers(fmt.min_int, fmt.max_int + 1, (300, lanes))
    outputs, in_cycles, load_cycles = run_with_loads(core, x, loads, seed=6)
    assert len(load_cycles) == len(loads) and load_cycles[-1] < in_cycles[-1]
    expected = expected_with_loads(plan, lanes, x, in_cycles, loads, load_cycles)
    np.testing.assert_array_equal(outputs, expected)
    # Some inputs went in the very cycle of a load (the boundary the contract defines).
    assert np.isin(load_cycles, in_cycles).any()


def test_describe_says_what_the_core_does():
    plan = batchnorm_plan(SQ(8, 0), 3, 1)
    info = inspected(Threshold(plan, loadable=True)).describe()
    assert info["kind"] == "threshold" and info["class"] == "Threshold"
    assert (info["lanes"], info["latency"], info["ii"], info["loadable"]) == (3, 3, 1, True)
    assert info["source"] == "batchnorm_sign" and info["k"] == 1
    assert info["thresholds"] == plan.thresholds.tolist()


def test_parameter_errors_are_named():
    plan = batchnorm_plan(SQ(8, 0), 3, 1)
    wide = clip_plan(SQ(6, 0), UQ(2, 0), 1, 1)
    cases = [
        (lambda: MultiThreshold("plan"), ParameterTypeError,
         "plan must be a ThresholdPlan (see hwnn.plans.threshold), not 'plan'"),
        (lambda: MultiThreshold(plan, lanes=2), ParameterValueError,
         "lanes must be 3 (the plan's channels) for a plan with more than one channel, not 2"),
        (lambda: MultiThreshold(plan, lanes=0), ParameterValueError,
         "lanes must be a positive integer, not 0"),
        (lambda: MultiThreshold(plan, lanes=1.0), ParameterTypeError,
         "lanes must be a positive integer, not 1.0"),
        (lambda: MultiThreshold(plan, loadable=1), ParameterTypeError,
         "loadable must be True or False, not 1"),
        (lambda: Threshold(wide), ParameterValueError,
         "plan must have a one-bit output for a Threshold (use MultiThreshold), not UQ(2, 0)"),
    ]
    for build, error, message in cases:
        with pytest.raises(error, match=re.escape(message) + "$") as info:
            build()
        assert info.value.parameter == message.split()[0]


def test_exports_verilog():
    plan = clip_plan(SQ(8, 0), UQ(2, 0), 2, 1)
    text = verilog.convert(MultiThreshold(plan, loadable=True), name="mt")
    assert "module mt" in text and "i_thresholds__payload" in text


@needs_verilator
@pytest.mark.parametrize("loadable", [False, True], ids=["constant", "registers"])
def test_verilator_lints_the_exported_verilog(tmp_path, loadable):
    plans = [batchnorm_plan(SQ(8, 0), 3, 1), clip_plan(SQ(8, 0), SQ(3, 0), 3, 1)]
    for index, plan in enumerate(plans):
        core = (Threshold if plan.k == 1 else MultiThreshold)(plan, loadable=loadable)
        export(core, f"th{index}", tmp_path, formats=("verilog",))
        result = run_verilator(verilator("--lint-only", "-Wall", f"th{index}.v"), tmp_path)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr


@pytest.mark.synth
def test_synthesizes_constant_thresholds_to_a_handful_of_cells():
    # 4 lanes of one 10-bit threshold: 4 comparators of about 10 LUTs each at most, and the
    # pipeline's registers; no flip-flop holds a threshold.
    fmt = SQ(10, 0)
    plan = batchnorm_plan(fmt, 4, 2)
    constant = synthesize(Threshold(plan), "ice40-up5k", name="th")
    loaded = synthesize(Threshold(plan, loadable=True), "ice40-up5k", name="th")
    assert constant.luts <= 4 * 12 + 20
    # 4 thresholds of 11 bits and 4 direction bits in registers.
    assert loaded.ffs - constant.ffs >= 4 * 11 + 4


@pytest.mark.slow
def test_every_16_bit_code_on_a_compiled_engine():
    # A BNN first layer's pre-activation is wider than 12 bits: every code of SQ(16, 0), on
    # four lanes (batch-norm thresholds, loadable registers at their initial values) and on a
    # 4-bit multi-threshold, under stalls.
    fmt = SQ(16, 0)
    plan = batchnorm_plan(fmt, 4, 16)
    x = every_code(fmt, 4)
    run = run_stream(Threshold(plan, loadable=True), x, stall_in=0.1, stall_out=0.2, seed=7,
                     engine="cxxrtl")
    assert run.engine == "cxxrtl"
    np.testing.assert_array_equal(run.outputs, multithreshold(plan, x))
    multi = clip_plan(fmt, SQ(4, 0), 1, 16)
    run = run_stream(MultiThreshold(multi), x[:, 0], stall_in=0.1, stall_out=0.2, seed=8,
                     engine="cxxrtl")
    expected = multithreshold(multi, x[:, 0])
    np.testing.assert_array_equal(run.outputs, expected)
    assert len(np.unique(expected)) == 16
