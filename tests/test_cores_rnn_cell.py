# amaranth: UnusedElaboratable=no
"""LSTM and GRU cells against :func:`hwnn.ref.rnn.recurrent_step`: both engines (the pipelined
datapath with cuts, the stream parts), LSTM and both GRU variants, lut, pwl and hard
activations, random states over the whole code range under stalls; their timing cycle for
cycle, and every parameter error."""

import json

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores._component import inspected
from hwnn.cores.recurrent import Recurrent
from hwnn.cores.rnn_cell import GRUCell, LSTMCell, RecurrentCell
from hwnn.ref.rnn import recurrent_step
from hwnn.sim import run_stream
from test_cores_recurrent import plan

CASES = [
    ("lstm", dict(method="lut"), dict(cuts=0)),
    ("lstm", dict(method="pwl"), dict(cuts=3)),
    ("lstm", dict(method="hard", bits=10), dict(cuts=6, arith="csd")),
    ("gru", dict(method="pwl"), dict(cuts=2)),
    ("gru", dict(reset_after=False, method="lut"), dict(cuts=5)),
    ("gru", dict(method="hard", bits=12), dict(cuts=0)),
    # The parts engine: folded, one multiplier, shift-add, lanes.
    ("lstm", dict(method="pwl"), dict(parallelism=1, lanes=1)),
    ("lstm", dict(method="lut", bits=12), dict(arith="mcm", lanes=2)),
    ("gru", dict(method="pwl"), dict(parallelism=5)),
    ("gru", dict(reset_after=False, method="hard"), dict(arith="csd")),
]


def random_steps(plan, count, seed):
    """``count`` independent steps: input, state and (LSTM) cell codes over their whole
    ranges, a fifth of them at a corner (min, max or 0)."""
    rng = np.random.default_rng(seed)
    fields = {"x": (plan.in_format, plan.input_size),
              "h": (plan.state_format, plan.hidden_size)}
    if plan.cell_format is not None:
        fields["c"] = (plan.cell_format, plan.hidden_size)
    steps = {}
    for name, (fmt, lanes) in fields.items():
        codes = rng.integers(fmt.min_int, fmt.max_int + 1, (count, lanes))
        corner = rng.random(codes.shape) < 0.2
        codes[corner] = rng.choice([fmt.min_int, fmt.max_int, 0], corner.sum())
        steps[name] = codes
    return steps


def cell(kind, planning, options):
    return (LSTMCell if kind == "lstm" else GRUCell)(plan(kind, **planning), **options)


def check(core, count, *, stall=0.0, seed=0):
    """Run ``count`` random steps; every next state equals the reference's."""
    steps = random_steps(core.plan, count, seed)
    h, c = recurrent_step(core.plan, steps["x"], steps["h"], steps.get("c"))
    run = run_stream(core, steps, stall_in=stall, stall_out=stall, seed=seed)
    np.testing.assert_array_equal(run.outputs["h"], h)
    if c is not None:
        np.testing.assert_array_equal(run.outputs["c"], c)
    return run


@pytest.mark.parametrize("kind, planning, options", CASES)
def test_cell_equals_reference_under_stalls(kind, planning, options):
    check(cell(kind, planning, options), 40, stall=0.3, seed=len(str(options)))


@pytest.mark.parametrize("kind, planning, options", CASES[1::3])
def test_timing_is_the_schedule(kind, planning, options):
    core = cell(kind, planning, options)
    if "cuts" in options:
        assert core.ii == 1 and core.latency == options["cuts"] + 1
    else:   # one step at a time, as the sequence core of the same parts
        assert core.ii == core.latency == inspected(Recurrent(core.plan, **options)).step_cycles
    run = check(core, 12, seed=3)
    in_cycles, out_cycles = core.schedule(12)
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    np.testing.assert_array_equal(np.diff(run.in_cycles), core.ii)
    np.testing.assert_array_equal(run.out_cycles - run.in_cycles, core.latency)
    late = [0, 0, 40, 41, 41]
    in_cycles, out_cycles = core.schedule(5, late)
    np.testing.assert_array_equal(in_cycles[2], max(40, in_cycles[1] + core.ii))


def test_a_held_output_stalls_the_pipeline_without_losing_a_step():
    core = LSTMCell(plan("lstm", method="pwl"), cuts=4)
    run = check(core, 60, stall=0.6, seed=9)
    # Five steps were in flight at once (step k + 4 entered before step k left), and the
    # output was held at times.
    assert (run.in_cycles[4:] < run.out_cycles[:-4]).any()
    assert (np.diff(run.out_cycles) > 1).any()


def test_describe():
    datapath = json.loads(json.dumps(inspected(
        GRUCell(plan("gru", method="pwl"), cuts=2)).describe()))
    assert datapath["class"] == "GRUCell" and datapath["engine"] == "datapath"
    assert datapath["cuts"] == 2 and datapath["ii"] == 1 and datapath["latency"] == 3
    assert datapath["kind"] == "gru"
    parts = json.loads(json.dumps(inspected(
        LSTMCell(plan("lstm", method="pwl"), parallelism=1, lanes=1)).describe()))
    assert parts["engine"] == "parts" and parts["parallelism"] == 1 and parts["lanes"] == 1
    assert parts["ii"] == parts["latency"] > 100


def test_cell_errors():
    lstm, gru = plan("lstm"), plan("gru")
    with pytest.raises(ParameterTypeError, match="^plan must be a RecurrentPlan"):
        RecurrentCell("lstm")
    with pytest.raises(ParameterValueError, match="^LSTMCell needs a lstm plan, not a gru"):
        LSTMCell(gru)
    with pytest.raises(ParameterValueError, match="^GRUCell needs a gru plan, not a lstm"):
        GRUCell(lstm)
    for name in ("parallelism", "pipeline", "lanes"):
        with pytest.raises(ParameterValueError,
                           match=f"^{name}=1 is an option of the folded parts; with cuts=0"):
            LSTMCell(lstm, cuts=0, **{name: 1})
    with pytest.raises(ParameterValueError, match=r"^arith must be one of mcm \| csd, not "
                                                  r"'mult'"):
        LSTMCell(lstm, cuts=1, arith="mult")
    with pytest.raises(ParameterValueError, match=r"^cuts must be .*, not 7"):
        LSTMCell(lstm, cuts=7)
    with pytest.raises(ParameterValueError, match="^parallelism"):
        GRUCell(gru, parallelism=0)
    with pytest.raises(ParameterValueError, match="^cell=True runs independent steps"):
        Recurrent(lstm, cell=True, initial_state=True)
    with pytest.raises(ParameterValueError, match="^cell=True runs independent steps"):
        Recurrent(lstm, cell=True, sequences=False)
    with pytest.raises(ParameterTypeError, match="^cell must be True or False, not 1"):
        Recurrent(lstm, cell=1)
