# amaranth: UnusedElaboratable=no
"""The bidirectional layer: both directions against their references, PyTorch's order of the
outputs, its timing model, and its errors."""

import re
from fractions import Fraction

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores.bidirectional import Bidirectional, bank_schedule, steady_period
from hwnn.fixed import SQ
from hwnn.plans.rnn import plan_recurrent
from hwnn.ref.rnn import recurrent
from hwnn.sim import run_stream
from sequences import random_sequences
from test_plans_rnn import weights


def directions(kind, bits=8, hidden=3, inputs=2, **options):
    forward = plan_recurrent(kind, *weights(kind, hidden, inputs, seed=0),
                             in_format=SQ(1, bits - 1), bits=bits, **options)
    reverse = plan_recurrent(kind, *weights(kind, hidden, inputs, seed=1),
                             in_format=SQ(1, bits - 1), bits=bits, reverse=True, **options)
    return forward, reverse


def expected(forward, reverse, xs):
    """PyTorch's bidirectional output: the forward states, then the reverse direction's (which
    ran from the last step back), both in time order."""
    return np.concatenate([np.concatenate([recurrent(forward, x)[0], recurrent(reverse, x)[0]],
                                          axis=1) for x in xs])


@pytest.mark.parametrize("kind, options", [
    ("lstm", dict(arith="mcm")),
    ("gru", dict(parallelism=4, lanes=2)),
])
def test_both_directions_with_stalls_and_the_timing_without(kind, options):
    forward, reverse = directions(kind)
    core = Bidirectional(forward, reverse, max_steps=16, **options)
    lengths = [16, 1, 7, 2]
    xs, stream = random_sequences(forward.in_format, 2, lengths, seed=4)
    want = expected(forward, reverse, xs)
    run = run_stream(core, stream, n_outputs=len(want), stall_in=0.3, stall_out=0.3, seed=5,
                     max_cycles=40000)
    np.testing.assert_array_equal(run.outputs["data"], want)
    np.testing.assert_array_equal(run.outputs["last"], stream["last"])
    steady = run_stream(core, stream, n_outputs=len(want), max_cycles=40000)
    in_cycles, out_cycles = core.schedule(lengths)
    np.testing.assert_array_equal(steady.in_cycles, in_cycles)
    np.testing.assert_array_equal(steady.out_cycles, out_cycles)


def test_a_sequence_beyond_max_steps_raises_error():
    forward, reverse = directions("gru")
    core = Bidirectional(forward, reverse, max_steps=4, arith="mcm")
    seen = []

    async def bench(ctx):
        ctx.set(core.o.ready, 1)
        for k, last in enumerate([0, 0, 0, 1, 0, 0, 0, 0, 1]):   # 4 steps, then 5
            ctx.set(core.i.payload.last, last)
            ctx.set(core.i.valid, 1)
            ready = False
            while not ready:
                _, _, ready, error = await ctx.tick().sample(core.i.ready, core.error)
                seen.append(error)
        ctx.set(core.i.valid, 0)
        for _ in range(3):
            _, _, error = await ctx.tick().sample(core.error)
            seen.append(error)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # Low while the first sequence fits, high (and staying high) once the fifth step came.
    assert not any(seen[:5]) and seen[-1]
    with pytest.raises(ParameterValueError, match=re.escape(
            "lengths[i] must be an integer between 0 and 4")):
        core.schedule([3, 5])


def test_errors():
    forward, reverse = directions("lstm")
    with pytest.raises(ParameterTypeError, match="^forward must be a RecurrentPlan"):
        Bidirectional("lstm", reverse, max_steps=4)
    with pytest.raises(ParameterValueError, match="^forward must be a forward plan"):
        Bidirectional(reverse, forward, max_steps=4)
    other = plan_recurrent("lstm", *weights("lstm", 3, 2, seed=1), in_format=SQ(1, 7), bits=10,
                           reverse=True)
    with pytest.raises(ParameterValueError, match=re.escape(
            "the two directions must have one state_format, not SQ(1, 7) and SQ(1, 9)")) as info:
        Bidirectional(forward, other, max_steps=4)
    assert info.value.parameter == "reverse"
    with pytest.raises(ParameterValueError, match="^max_steps must be"):
        Bidirectional(forward, reverse, max_steps=0)


def test_steady_period_is_what_the_schedule_settles_to():
    # Random timings, including reverse cores much faster or slower than the forward one:
    # the closed form against the schedule's spacing after many sequences (its third cycle,
    # through a sequence's bank, never sets the rate: its half is printed beside).
    rng = np.random.default_rng(0)
    binding = set()
    for _ in range(150):
        steps = int(rng.integers(1, 12))
        s_f, s_r = int(rng.integers(1, 50)), int(rng.integers(1, 50))
        emit = int(rng.integers(2, 6))

        def reverse_pass(length, s_r=s_r):
            return 2 + (length - 1) * max(2, s_r) + s_r
        count = 600
        zeros = np.zeros(steps * count, dtype=np.int64)
        ins, _ = bank_schedule([steps] * count, zeros, zeros, s_f, reverse_pass, emit)
        spacing = np.diff(ins[::steps])
        want = steady_period(steps, s_f, reverse_pass(steps), emit)
        np.testing.assert_array_equal(spacing[-4:], want)
        banks = Fraction((steps - 1) * (s_f + emit) + max(s_f + 3, reverse_pass(steps) + 4)
                         + 1, 2)
        assert banks <= want
        binding.add("load" if want == steps * s_f else "reverse")
    assert binding == {"load", "reverse"}
