# amaranth: UnusedElaboratable=no
"""The recurrent core against its reference: LSTM and GRU, every arithmetic and activation
method, back-to-back sequences of different lengths under stalls, and its stated timing."""

import json
import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwnn.checks import ParameterTypeError
from hwnn.cores.recurrent import Recurrent
from hwnn.export import core_verilog
from hwnn.fixed import SQ
from hwnn.plans.rnn import plan_recurrent
from hwnn.ref.rnn import recurrent
from hwnn.sim import run_stream
from hwnn.sim.frames import frame
from hwnn.synth import synthesize
from sequences import random_sequences
from test_plans_rnn import weights


def plan(kind, bits=8, hidden=3, inputs=2, seed=0, **options):
    return plan_recurrent(kind, *weights(kind, hidden=hidden, inputs=inputs, seed=seed),
                          in_format=SQ(1, bits - 1), bits=bits, **options)


def simulate(core, lengths, *, stall=0.0, seed=0, engine="pysim"):
    """Run back-to-back sequences; check every hidden state and every ``last``."""
    xs, stream = random_sequences(core.plan.in_format, core.plan.input_size, lengths,
                                  seed=seed + 1, corners=0.15)
    want = np.concatenate([recurrent(core.plan, x)[0] for x in xs])
    run = run_stream(core, stream, n_outputs=len(want), stall_in=stall, stall_out=stall,
                     seed=seed, engine=engine)
    np.testing.assert_array_equal(run.outputs["data"], want)
    np.testing.assert_array_equal(run.outputs["last"], stream["last"])
    return run


CASES = [
    ("lstm", dict(method="pwl"), dict(parallelism=1)),
    ("lstm", dict(method="pwl", bits=10), dict(parallelism=3, lanes=1)),
    ("gru", dict(method="lut"), dict(arith="mcm", lanes=2)),
    ("lstm", dict(method="lut"), dict(arith="mcm")),
    ("lstm", dict(method="hard", bits=10), dict(arith="csd", pipeline=1)),
    ("lstm", dict(bits=16, hidden=4, inputs=3), dict(parallelism=7)),
    ("gru", dict(method="pwl"), dict(parallelism=27)),
    ("gru", dict(method="lut", bits=12), dict(arith="mcm")),
    ("gru", dict(method="hard"), dict(parallelism=4)),
    ("gru", dict(reset_after=False), dict(arith="mcm")),
    ("gru", dict(reset_after=False, bits=12), dict(parallelism=20, lanes=2)),
    # One multiplier sending gates one by one, and parts one value per cycle: the values in
    # block RAM (lanes 2 over hidden 4: two values per word).
    ("lstm", dict(method="pwl", hidden=4), dict(parallelism=1, lanes=1)),
    ("gru", dict(method="pwl", hidden=4), dict(parallelism=1, lanes=2)),
    ("gru", dict(reset_after=False, hidden=4), dict(parallelism=1, lanes=1)),
    # Polynomial σ and tanh: a piecewise quadratic, and a Taylor series with signed offsets.
    ("lstm", dict(method="poly", bits=10), dict(parallelism=2, lanes=2)),
    ("gru", dict(method="taylor", activation_options={"order": 4, "centre": 0.25}),
     dict(arith="mcm")),
]


@pytest.mark.parametrize("kind, planning, options", CASES)
def test_core_equals_reference_on_back_to_back_sequences_with_stalls(kind, planning, options):
    core = Recurrent(plan(kind, **planning), **options)
    simulate(core, [16, 1, 17, 3], stall=0.3, seed=len(str(options)))


@pytest.mark.parametrize("kind, planning, options", CASES[::2] + CASES[11:12])
def test_one_step_every_step_cycles(kind, planning, options):
    core = Recurrent(plan(kind, **planning), **options)
    run = simulate(core, [5, 4], seed=2)
    # A step's input enters as the previous step's output leaves, step_cycles apart, and its
    # hidden state leaves step_cycles later: across sequences too.
    np.testing.assert_array_equal(np.diff(run.in_cycles), core.step_cycles)
    np.testing.assert_array_equal(run.out_cycles - run.in_cycles, core.latency)
    assert core.ii == core.latency == core.step_cycles
    in_cycles, out_cycles = core.schedule([5, 4])
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    # Steps offered late enter when offered.
    late = core.schedule([3], [0, 3 * core.step_cycles, 3 * core.step_cycles])[0]
    np.testing.assert_array_equal(late, [0, 3 * core.step_cycles, 4 * core.step_cycles])


def test_folded_parts_take_one_cycle_per_transfer():
    # Three lanes per unit for 3·4 σ values and 4 of everything else: 4 and 2 transfers.
    whole = Recurrent(plan("lstm", hidden=4), arith="mcm")
    folded = Recurrent(plan("lstm", hidden=4), arith="mcm", lanes=3)
    extra = (4 - 1) + (2 - 1) * 4      # σ, then the chain f⊙c, sum, tanh(c'), o⊙tanh(c')
    assert folded.step_cycles - whole.step_cycles == extra
    lanes = {p.name: p.lanes for p in folded._parts[1:]}
    assert set(lanes.values()) == {3}
    # pwl slopes are powers of two: the products are the only multipliers.
    assert whole.multipliers == 3 * 4 and folded.multipliers == 3 * 3
    run = simulate(folded, [4, 2], seed=3)
    np.testing.assert_array_equal(np.diff(run.in_cycles), folded.step_cycles)


def test_step_cycles_is_the_chain_of_parts():
    core = Recurrent(plan("lstm"), arith="mcm")
    parts = {p.name: p.core.latency for p in core._parts}
    chain = [parts["mac"], max(parts["sigmoid"], parts["tanh"]),
             max(parts["forget"], parts["input"]), parts["cell"], parts["tanh_cell"],
             parts["hidden"]]
    assert core.step_cycles == sum(latency + 1 for latency in chain)
    folded = Recurrent(plan("lstm"), parallelism=1)
    # 5 inputs × 12 gates on one multiplier: the MAC's 60 cycles are inside its latency.
    assert folded.mac.ii == 60 and folded.step_cycles - core.step_cycles == \
        folded.mac.latency - core.mac.latency
    info = json.loads(json.dumps(folded.describe()))
    assert info["class"] == "Recurrent" and info["ii"] == folded.step_cycles
    # The MAC, and three products of three lanes each (pwl slopes are shifts).
    assert info["multipliers"] == 1 + 3 * 3 and info["mac"]["n_in"] == 5


def test_values_read_a_transfer_at_a_time_live_in_block_ram():
    # One multiplier sends the gates one by one; at lanes 1 every value but h (the MAC reads
    # it whole) is made and read a value per cycle.
    lstm = Recurrent(plan("lstm", hidden=4), parallelism=1, lanes=1)
    assert lstm.mac.rows and lstm.describe()["block_ram"] == [
        "c_next", "fc", "g", "gates", "ifo", "ig", "tc"]
    # An initial state loads c whole; a MAC on several lanes sends its gates at once, which
    # σ then reads a value at a time from registers.
    assert Recurrent(plan("lstm", hidden=4), parallelism=1, lanes=1,
                     initial_state=True).describe()["block_ram"] == [
        "fc", "g", "gates", "ifo", "ig", "tc"]
    wide = Recurrent(plan("lstm", hidden=4), parallelism=2, lanes=1)
    assert not wide.mac.rows and "gates" not in wide.describe()["block_ram"]
    # Words of two values for hidden 4; three lanes do not divide it: registers.
    assert "rz" in Recurrent(plan("gru", hidden=4), parallelism=1,
                             lanes=2).describe()["block_ram"]
    assert Recurrent(plan("gru", hidden=4), parallelism=1, lanes=3).describe()[
        "block_ram"] == []
    # All of a part's values at once: nothing is read a transfer at a time.
    assert Recurrent(plan("lstm"), parallelism=1).describe()["block_ram"] == []


def test_core_errors():
    with pytest.raises(ParameterTypeError, match="^plan must be a RecurrentPlan"):
        Recurrent("lstm")
    with pytest.raises(NotImplementedError, match="reverse direction needs its whole sequence"):
        Recurrent(plan("gru", reverse=True))


def test_exports_verilog_with_framed_ports():
    text = core_verilog(Recurrent(plan("gru"), arith="mcm"), "gru")
    assert re.search(r"input\s+(wire\s+)?\[5:0\]\s+i__payload", text) or "i__payload" in text
    assert "module gru" in text


@pytest.mark.synth
def test_a_16_bit_lstm_4_to_8_on_the_up5k_dsps_and_block_ram():
    # The resource goal: folded onto the DSPs. Whether nextpnr places it in the
    # UP5K's 5280 logic cells (4988 with the timing harness) is measured by
    # benchmarks/rnn.py --resources: place-and-route takes too long for the suite.
    params = weights("lstm", hidden=8, inputs=4, seed=0)
    core = Recurrent(plan_recurrent("lstm", *params, in_format=SQ(1, 15), bits=16),
                     parallelism=1, lanes=1)
    report = synthesize(core, "ice40-up5k", name="lstm")
    assert report.dsps == core.multipliers == 4     # the MAC and the three products
    assert report.fits is not False and report.luts + report.ffs <= 5280
    # The weights (384 words of 16 bits) in two block RAMs, and the step's values in
    # eleven: the gates (read by σ and tanh), σ's outputs (read by three products), g, f⊙c,
    # i⊙g, tanh(c') and c (read by f⊙c and tanh(c')).
    assert report.brams == 2 + 11


def test_synthesizes_a_small_gru():
    core = Recurrent(plan("gru", hidden=2, method="hard"), parallelism=1)
    report = synthesize(core, "ice40-up5k", name="gru")
    # One DSP for the folded MAC, one per lane of the two products (r⊙n_h, z⊙(h − n)) and one
    # per lane of hard_sigmoid's exact ·1/6 (r and z): the parts are not folded yet.
    assert report.dsps == 1 + 2 * 2 + 2 * 2 and 0 < report.luts < 5280


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_only_the_last_state_of_each_sequence(kind):
    core = Recurrent(plan(kind), arith="mcm", lanes=2, sequences=False)
    lengths = [16, 1, 5]
    xs, stream = random_sequences(core.plan.in_format, core.plan.input_size, lengths, seed=4)
    want = np.stack([recurrent(core.plan, x)[1] for x in xs])
    run = run_stream(core, stream, n_outputs=3, stall_in=0.3, stall_out=0.3, seed=5)
    np.testing.assert_array_equal(run.outputs, want)
    steady = run_stream(core, stream, n_outputs=3)
    in_cycles, out_cycles = core.schedule(lengths)
    np.testing.assert_array_equal(steady.in_cycles, in_cycles)
    np.testing.assert_array_equal(steady.out_cycles, out_cycles)
    assert core.describe()["sequences"] is False


def run_with_states(core, stream, states, n_out, seed):
    """Simulate ``core`` (pysim) with ``i`` and ``i_state`` driven apart, each transfer
    offered after a random wait, and ``o`` taken on random cycles; return the output codes."""
    rng = np.random.default_rng(seed)
    codes = []

    async def send(ctx, port, rows):
        for row in rows:
            for _ in range(int(rng.integers(0, 3))):
                await ctx.tick()
            for name, value in row.items():
                field = getattr(port.payload, name)
                if np.ndim(value):
                    for lane, code in enumerate(value):
                        ctx.set(field[lane], int(code))
                else:
                    ctx.set(field, int(value))
            ctx.set(port.valid, 1)
            ready = False
            while not ready:
                _, _, ready = await ctx.tick().sample(port.ready)
            ctx.set(port.valid, 0)

    async def steps(ctx):
        await send(ctx, core.i, [{"data": d, "last": l}
                                 for d, l in zip(stream["data"], stream["last"])])

    async def initial(ctx):
        await send(ctx, core.i_state, [dict(zip(states, values))
                                       for values in zip(*states.values())])

    async def receive(ctx):
        for _ in range(200 * n_out):
            ready = int(rng.random() < 0.7)
            ctx.set(core.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(core.o.valid, core.o.payload)
            if valid and ready:
                codes.append([int(v) for v in payload.data])
                if len(codes) == n_out:
                    return
        raise AssertionError(f"{len(codes)} of {n_out} outputs")

    sim = Simulator(core)
    sim.add_clock(1e-8)
    for bench in (steps, initial, receive):
        sim.add_testbench(bench)
    sim.run()
    return np.array(codes, dtype=np.int64)


@pytest.mark.parametrize("kind, options", [("lstm", dict(arith="mcm")),
                                           ("gru", dict(arith="mcm")),
                                           ("lstm", dict(parallelism=1, lanes=1))])
def test_initial_state_comes_with_each_sequence(kind, options):
    check_initial_states(Recurrent(plan(kind), initial_state=True, **options))


def check_initial_states(core):
    """Three sequences, each from random initial states: exact with stalls, and not what
    zeros give."""
    lengths = [16, 2, 5]
    xs, stream = random_sequences(core.plan.in_format, core.plan.input_size, lengths, seed=6)
    rng = np.random.default_rng(7)
    state_fmt, cell_fmt = core.plan.state_format, core.plan.cell_format
    h0 = rng.integers(state_fmt.min_int, state_fmt.max_int + 1, (3, 3))
    c0 = None if cell_fmt is None else rng.integers(cell_fmt.min_int, cell_fmt.max_int + 1,
                                                    (3, 3))
    want = np.concatenate([recurrent(core.plan, x, h0=h0[k], c0=None if c0 is None else c0[k])[0]
                           for k, x in enumerate(xs)])
    states = {"h": h0} if c0 is None else {"h": h0, "c": c0}
    np.testing.assert_array_equal(run_with_states(core, stream, states, len(want), 8), want)
    # Zeros would give something else: the state was used.
    assert not np.array_equal(want, np.concatenate([recurrent(core.plan, x)[0] for x in xs]))
