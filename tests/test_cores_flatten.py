import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores._component import inspected, ports
from hwnn.cores.flatten import Flatten
from hwnn.cores.pool import frame_layout
from hwnn.fixed import SQ, UQ, Format
from hwnn.plans.dense import plan_dense
from hwnn.plans.pool import plan_flatten, plan_pool1d
from hwnn.ref.dense import dense
from hwnn.ref.pool import flatten
from hwnn.sim import run_stream
from hwnn.synth import synthesize

CASES = [(1, 1, SQ(4, 0)), (3, 2, SQ(4, 2)), (4, 3, UQ(3, 1)), (5, 1, SQ(2, 3)),
         (2, 4, SQ(8, 0))]


def codes(fmt: Format, shape, rng):
    """Random codes of ``fmt``, with the extremes in the first sequence."""
    x = rng.integers(fmt.min_int, fmt.max_int + 1, shape)
    x[0].flat[:2] = [fmt.min_int, fmt.max_int][:x[0].size]
    return x


def framed(xs):
    """The framed stream input of sequences ``xs`` (a list of ``(steps, channels)`` arrays)."""
    return {"data": np.concatenate(xs),
            "last": np.concatenate([np.arange(len(x)) == len(x) - 1 for x in xs])}


@pytest.mark.parametrize("steps, channels, fmt", CASES)
def test_time_major_vectors_with_stalls(steps, channels, fmt):
    plan = plan_flatten(steps, channels)
    x = codes(fmt, (7, steps, channels), np.random.default_rng(steps * 10 + channels))
    run = run_stream(Flatten(plan, fmt), framed(list(x)), n_outputs=len(x), stall_in=0.3,
                     stall_out=0.4, seed=steps)
    np.testing.assert_array_equal(run.outputs, x.reshape(len(x), -1))
    # The same values as PyTorch's flatten, in stream order.
    np.testing.assert_array_equal(run.outputs, flatten(plan, x)[:, plan.stream_order()])


def test_every_code_in_every_position_with_stalls():
    # 8-bit codes, 4 steps of 4 channels: each of the 256 codes once in each of the 16
    # positions of a vector (16 rotations of the code list), 256 sequences in all.
    fmt, plan = SQ(8, 0), plan_flatten(4, 4)
    every = np.arange(fmt.min_int, fmt.max_int + 1).reshape(16, 16)
    x = np.concatenate([np.roll(every, r, axis=1) for r in range(16)]).reshape(-1, 4, 4)
    run = run_stream(Flatten(plan, fmt), framed(list(x)), n_outputs=len(x), stall_in=0.2,
                     stall_out=0.3, seed=4)
    np.testing.assert_array_equal(run.outputs, x.reshape(len(x), -1))


@pytest.mark.parametrize("steps, channels, fmt", CASES)
def test_exact_timing_without_stalls(steps, channels, fmt):
    plan = plan_flatten(steps, channels)
    core = Flatten(plan, fmt)
    latency, ii = core.latency, core.ii
    x = codes(fmt, (5, steps, channels), np.random.default_rng(1))
    run = run_stream(core, framed(list(x)), n_outputs=len(x))
    np.testing.assert_array_equal(run.in_cycles, np.arange(x.shape[0] * steps) * ii)
    np.testing.assert_array_equal(run.out_cycles,
                                  run.in_cycles[steps - 1::steps] + latency)


def test_wrong_lengths_are_dropped_and_flagged():
    plan = plan_flatten(3, 2)
    core = Flatten(plan, SQ(4, 0))
    rng = np.random.default_rng(3)
    lengths = [3, 2, 3, 5, 1, 3, 4, 3]
    xs = [rng.integers(-8, 8, (n, 2)) for n in lengths]
    stream = framed(xs)
    kept = [x.reshape(-1) for x in xs if len(x) == 3]
    seen, errors = [], []

    async def bench(ctx):
        ctx.set(core.o.ready, 1)
        for step, (row, last) in enumerate(zip(stream["data"], stream["last"])):
            ctx.set(core.i.payload, {"data": list(row), "last": int(last)})
            ctx.set(core.i.valid, 1)
            await ctx.tick()
            if ctx.get(core.o.valid):
                seen.append([ctx.get(core.o.payload[k]) for k in range(6)])
            errors.append(ctx.get(core.error))
        ctx.set(core.i.valid, 0)
        await ctx.tick()
        if ctx.get(core.o.valid):
            seen.append([ctx.get(core.o.payload[k]) for k in range(6)])

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(seen, kept)
    # Sticky from the end of the first wrong sequence (2 steps after the first 3) on.
    np.testing.assert_array_equal(errors, np.arange(len(errors)) >= 4)


def test_stream_weight_makes_dense_after_flatten_match_pytorch_order():
    steps, channels, fmt = 4, 3, SQ(3, 2)
    plan = plan_flatten(steps, channels)
    rng = np.random.default_rng(9)
    weight = rng.uniform(-1, 1, (5, plan.n_out)).round(3)
    bias = rng.uniform(-1, 1, 5).round(3)
    options = dict(in_format=fmt, weight_format=SQ(2, 6), out_format=SQ(6, 4))
    torch_order = plan_dense(weight, bias, **options)
    stream_order = plan_dense(plan.stream_weight(weight), bias, **options)
    x = codes(fmt, (6, steps, channels), rng)
    vectors = run_stream(Flatten(plan, fmt), framed(list(x)), n_outputs=len(x)).outputs
    np.testing.assert_array_equal(dense(stream_order, vectors),
                                  dense(torch_order, flatten(plan, x)))
    # Without the permutation the orders differ (the check above can fail).
    assert not np.array_equal(dense(torch_order, vectors), dense(torch_order, flatten(plan, x)))


def test_ports_and_describe():
    plan = plan_flatten(3, 2)
    core = inspected(Flatten(plan, "UQ(3,1)"))
    assert core.i.signature.members["payload"].shape == frame_layout(UQ(3, 1), 2)
    assert core.o.signature.members["payload"].shape == data.ArrayLayout(unsigned(4), 6)
    info = core.describe()
    assert info == {"kind": "flatten", "class": "Flatten", "steps": 3, "channels": 2,
                    "n_out": 6, "format": "UQ(3, 1)", "order": "time-major", "latency": 1,
                    "ii": 1}


def test_rejects_bad_parameters():
    with pytest.raises(ParameterTypeError, match="^plan must be a FlattenPlan, not Pool1dPlan$"):
        Flatten(plan_pool1d("max", 2, channels=1, in_format=SQ(4, 0)), SQ(4, 0))
    with pytest.raises(ParameterValueError, match="fmt"):
        Flatten(plan_flatten(2, 2), "SQ(0,0)")


def test_exports_verilog():
    core = Flatten(plan_flatten(3, 2), SQ(4, 0))
    text = verilog.convert(core, name="flatten", ports=ports(core))
    assert "module flatten" in text and "error" in text


@pytest.mark.synth
def test_synthesizes_one_register_per_code():
    report = synthesize(Flatten(plan_flatten(4, 2), SQ(4, 0)), "ice40-up5k", name="flatten")
    # 8 codes of 4 bits, valid, error and a 3-bit counter: no second buffer.
    assert report.dsps == 0 and report.ffs == 8 * 4 + 1 + 1 + 3
