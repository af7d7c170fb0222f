# amaranth: UnusedElaboratable=no
"""The unrolled recurrent core (a whole step as one datapath) against its reference: LSTM and
both GRU variants, lut, pwl, poly, taylor and hard activations, several cuts, back-to-back
sequences under stalls, a loaded initial state, only the last states; its timing cycle for cycle,
where its cuts go, and every parameter error."""

import json
import re

import numpy as np
import pytest

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.cores._component import inspected
from hwnn.cores.recurrent_unrolled import UnrolledRecurrent
from hwnn.cores.rnn_datapath import DELAY, balanced_cuts
from hwnn.export import core_verilog
from hwnn.ref.rnn import recurrent
from hwnn.sim import run_stream
from hwnn.synth import synthesize
from sequences import random_sequences
from test_cores_recurrent import check_initial_states, plan, simulate

CASES = [
    ("lstm", dict(method="lut"), dict(cuts=0)),
    ("lstm", dict(method="pwl"), dict(cuts=2)),
    ("lstm", dict(method="hard", bits=10), dict(cuts=6, arith="csd")),
    ("lstm", dict(method="pwl", bits=12, hidden=4, inputs=3), dict(cuts=1)),
    ("lstm", dict(method="pwl", activation_options={"slopes": "any", "segments": 8}),
     dict(cuts=3)),
    ("gru", dict(method="lut"), dict(cuts=3)),
    ("gru", dict(method="pwl"), dict(cuts=0)),
    ("gru", dict(method="hard"), dict(cuts=1)),
    ("gru", dict(reset_after=False, method="pwl"), dict(cuts=0)),
    ("gru", dict(reset_after=False, method="lut", bits=12), dict(cuts=4)),
    ("gru", dict(reset_after=False, method="hard"), dict(cuts=10, arith="csd")),
    ("lstm", dict(method="poly", bits=10), dict(cuts=2)),
    ("gru", dict(method="taylor", activation_options={"order": 3, "multipliers": "lut"}),
     dict(cuts=1)),
]


@pytest.mark.parametrize("kind, planning, options", CASES)
def test_core_equals_reference_on_back_to_back_sequences_with_stalls(kind, planning, options):
    core = UnrolledRecurrent(plan(kind, **planning), **options)
    simulate(core, [16, 1, 17, 3], stall=0.3, seed=len(str(options)) + len(str(planning)))


@pytest.mark.parametrize("kind, planning, options", CASES[::2])
def test_one_step_every_cuts_plus_one_cycles(kind, planning, options):
    core = UnrolledRecurrent(plan(kind, **planning), **options)
    assert core.step_cycles == core.ii == core.latency == options["cuts"] + 1
    run = simulate(core, [5, 4], seed=2)
    # A step's input enters as the previous step's output leaves, cuts + 1 cycles apart, and
    # its hidden state leaves cuts + 1 cycles after it entered: across sequences too.
    np.testing.assert_array_equal(np.diff(run.in_cycles), options["cuts"] + 1)
    np.testing.assert_array_equal(run.out_cycles - run.in_cycles, options["cuts"] + 1)
    in_cycles, out_cycles = core.schedule([5, 4])
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    late = core.schedule([3], [0, 3 * core.step_cycles, 3 * core.step_cycles])[0]
    np.testing.assert_array_equal(late, [0, 3 * core.step_cycles, 4 * core.step_cycles])


def test_steps_offered_late_enter_when_offered():
    core = UnrolledRecurrent(plan("lstm"), cuts=1)
    lengths = [6]
    xs, stream = random_sequences(core.plan.in_format, core.plan.input_size, lengths, seed=9)
    run = run_stream(core, stream, n_outputs=6, stall_in=0.5, seed=4)
    np.testing.assert_array_equal(run.outputs["data"], recurrent(core.plan, xs[0])[0])
    # Each step entered when it was offered or when the one before it left, whichever is
    # later; the schedule with those arrivals says the same.
    in_cycles, out_cycles = core.schedule(lengths, run.in_cycles)
    np.testing.assert_array_equal(in_cycles, run.in_cycles)
    np.testing.assert_array_equal(out_cycles, run.out_cycles)
    assert (np.diff(run.in_cycles) > 2).any()    # the stalls did delay some step


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_only_the_last_state_of_each_sequence(kind):
    core = UnrolledRecurrent(plan(kind, method="pwl"), cuts=2, sequences=False)
    lengths = [16, 1, 5]
    xs, stream = random_sequences(core.plan.in_format, core.plan.input_size, lengths, seed=4)
    want = np.stack([recurrent(core.plan, x)[1] for x in xs])
    run = run_stream(core, stream, n_outputs=3, stall_in=0.3, stall_out=0.3, seed=5)
    np.testing.assert_array_equal(run.outputs, want)
    steady = run_stream(core, stream, n_outputs=3)
    in_cycles, out_cycles = core.schedule(lengths)
    np.testing.assert_array_equal(steady.in_cycles, in_cycles)
    np.testing.assert_array_equal(steady.out_cycles, out_cycles)
    np.testing.assert_array_equal(out_cycles, (np.cumsum(lengths)) * 3)
    assert core.describe()["sequences"] is False


@pytest.mark.parametrize("kind, cuts", [("lstm", 0), ("lstm", 3), ("gru", 2)])
def test_initial_state_comes_with_each_sequence(kind, cuts):
    check_initial_states(UnrolledRecurrent(plan(kind, method="lut"), cuts=cuts,
                                           initial_state=True))


def test_balanced_cuts_minimize_the_largest_segment():
    assert balanced_cuts([6, 2, 2, 4, 2, 2, 4], 0) == ()
    # 22 in all: the best split in two is 10 | 12 (after the third layer).
    assert balanced_cuts([6, 2, 2, 4, 2, 2, 4], 1) == (2,)
    assert balanced_cuts([6, 2, 2, 4, 2, 2, 4], 2) == (0, 3)   # 6 | 8 | 8, before 8 | 8 | 6
    assert balanced_cuts([1, 1, 1, 1], 3) == (0, 1, 2)
    # Among equal worst segments, the earliest boundaries.
    assert balanced_cuts([1, 5, 1], 1) == (0,)


def test_cuts_follow_the_estimated_delays():
    core = inspected(UnrolledRecurrent(plan("lstm", method="lut"), cuts=2))
    names = [layer.name for layer in core.layers]
    assert names == ["mac", "gates", "activations", "products", "cell", "tanh_cell",
                     "hidden"]
    delays = [layer.delay for layer in core.layers]
    assert delays[0] == core.datapath.graph.depth * DELAY["adder"]
    assert core.cut_after == tuple(names[j] for j in balanced_cuts(delays, 2))
    assert sum(core.segments, []) == names and len(core.segments) == 3
    info = json.loads(json.dumps(core.describe()))
    assert info["class"] == "UnrolledRecurrent" and info["ii"] == 3
    assert info["cut_after"] == list(core.cut_after)
    assert info["critical_segment"] in core.segments
    # The three products of every neuron, nothing else (lut activations, shift-add MAC).
    assert info["multipliers"] == core.multipliers == 3 * 3
    gru = inspected(UnrolledRecurrent(plan("gru", method="pwl", activation_options={
        "slopes": "any", "segments": 8}), cuts=0))
    # r⊙n_h and z⊙(h − n), and one per σ (r, z) and tanh value: their slopes are any integers.
    assert gru.multipliers == 2 * 3 + 3 * 3


def registers(core):
    """The names of the flip-flops in ``core``'s Verilog."""
    text = core_verilog(core, "cell")
    return set(re.findall(r"always @\(posedge clk\)\s*(?:if[^\n]*\n\s*)?\\?(\S+)\s*<=", text))


def test_the_step_is_combinational_between_the_cuts():
    # cuts = 0: the only registers are x, last, h, c and the control flags (have_x drives
    # o.valid, and takes its name).
    assert registers(UnrolledRecurrent(plan("lstm", method="pwl"), cuts=0)) == {
        "x", "last", "h", "c", "o__valid", "idle"}
    # One cut, after σ and tanh: i, f, g, o of every neuron are registered (c, a register
    # already, is not; the registers are named for the layer they follow, number 2), and one
    # valid flag (it drives o.valid).
    core = UnrolledRecurrent(plan("lstm", method="pwl"), cuts=1)
    assert core.cut_after == ("activations",)
    cut = registers(core) - {"x", "last", "h", "c", "have_x", "idle"}
    assert cut == {f"{v}{k}_cut2" for v in "ifgo" for k in range(3)} | {"o__valid"}


def test_core_errors():
    lstm = plan("lstm")
    with pytest.raises(ParameterTypeError, match="^plan must be a RecurrentPlan"):
        UnrolledRecurrent("lstm")
    with pytest.raises(NotImplementedError, match="reverse direction needs its whole sequence"):
        UnrolledRecurrent(plan("gru", reverse=True))
    with pytest.raises(ParameterValueError, match=r"^arith must be one of mcm \| csd, not "
                                                  r"'mult'") as error:
        UnrolledRecurrent(lstm, arith="mult")
    assert error.value.parameter == "arith"
    with pytest.raises(ParameterTypeError, match="^arith must be one of"):
        UnrolledRecurrent(lstm, arith=1)
    with pytest.raises(ParameterValueError, match=r"^cuts must be .*6.*, not 7") as error:
        UnrolledRecurrent(lstm, cuts=7)
    assert error.value.parameter == "cuts"
    with pytest.raises(ParameterValueError, match=r"^cuts must be .*, not -1"):
        UnrolledRecurrent(lstm, cuts=-1)
    with pytest.raises(ParameterTypeError, match=r"^cuts must be .*, not 1.5"):
        UnrolledRecurrent(lstm, cuts=1.5)
    with pytest.raises(ParameterTypeError, match="^sequences must be"):
        UnrolledRecurrent(lstm, sequences=1)
    with pytest.raises(ParameterTypeError, match="^initial_state must be"):
        UnrolledRecurrent(lstm, initial_state="yes")
    # The original GRU's chain is longer: its two extra layers allow two more cuts.
    UnrolledRecurrent(plan("gru", reset_after=False), cuts=10)
    with pytest.raises(ParameterValueError, match=r"^cuts must be .*10.*, not 11"):
        UnrolledRecurrent(plan("gru", reset_after=False), cuts=11)


def test_exports_verilog_with_framed_ports():
    text = core_verilog(UnrolledRecurrent(plan("gru"), cuts=1), "gru")
    assert "module gru" in text and "i__payload" in text and "o__payload" in text


def test_synthesizes_a_small_lstm_without_memories():
    core = UnrolledRecurrent(plan("lstm", hidden=2, method="lut"), cuts=1)
    report = synthesize(core, "ecp5-25f", name="cell")
    # Tables as logic, no block RAM; the six products (3 per neuron) on DSPs or LUTs.
    assert report.brams == 0 and 0 < report.luts < 24288
    assert report.dsps <= core.multipliers == 6
