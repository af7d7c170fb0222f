# amaranth: UnusedElaboratable=no
import json
import re

import numpy as np
import pytest
from amaranth.back import verilog

from hwnn.checks import ParameterTypeError, ParameterValueError
from hwnn.export import core_verilog
from hwnn.cores.conv1d import Conv1d
from hwnn.fixed import SQ, UQ
from hwnn.plans.conv1d import plan_conv1d
from hwnn.plans.dense import plan_dense
from hwnn.ref.conv1d import conv1d
from hwnn.sim import run_stream
from hwnn.synth import synthesize
from sequences import random_sequences
from verilator_tool import needs_verilator
from verilator_tool import run as run_verilator
from verilator_tool import verilator


def make_plan(in_channels, out_channels, kernel_size, *, groups=1, stride=1, dilation=1,
              padding="valid", in_format=SQ(1, 5), weight_format=SQ(1, 5),
              out_format=SQ(3, 4), seed=0, weight=None):
    rng = np.random.default_rng(seed)
    if weight is None:
        weight = rng.uniform(-1, 1, (out_channels, in_channels // groups, kernel_size))
    return plan_conv1d(weight, rng.uniform(-0.5, 0.5, out_channels), in_format=in_format,
                       weight_format=weight_format, out_format=out_format, stride=stride,
                       dilation=dilation, padding=padding, groups=groups,
                       saturate_weights=True)


def make_sequences(plan, lengths, seed=1):
    """Random input codes of each sequence (corner codes mixed in) and the framed stream."""
    return random_sequences(plan.in_format, plan.in_channels, lengths, seed)


def simulate(core, lengths, *, stall=0.0, seed=0, engine="pysim"):
    """Run ``core`` on random sequences of ``lengths`` back to back; check every output and
    every ``last`` against the reference of each sequence; return the run."""
    plan = core.plan
    xs, frame = make_sequences(plan, lengths, seed=seed + 1)
    expected = [conv1d(plan, x) for x in xs]
    assert [len(y) for y in expected] == [plan.out_length(n) for n in lengths]
    run = run_stream(core, frame, n_outputs=sum(map(len, expected)), stall_in=stall,
                     stall_out=stall, seed=seed, engine=engine)
    np.testing.assert_array_equal(run.outputs["data"], np.concatenate(expected))
    np.testing.assert_array_equal(run.outputs["last"], np.concatenate(
        [np.arange(len(y)) == len(y) - 1 for y in expected]))
    assert len(run.in_cycles) == len(frame["last"])
    return run


def random_case(seed):
    """A random layer and core options, and sequence lengths that include the shortest with an
    output (it has exactly one unless padding alone gives more) and one too short for any
    (when such a length exists)."""
    rng = np.random.default_rng(seed)
    channels = int(rng.integers(1, 5))
    kernel, stride, dilation = (int(rng.integers(1, 5)), int(rng.integers(1, 4)),
                                int(rng.integers(1, 3)))
    groups = int(rng.choice([g for g in range(1, channels + 1) if channels % g == 0]))
    out_channels = groups * int(rng.integers(1, 3))
    padding = ["valid", "same" if stride == 1 else 1, int(rng.integers(0, 4)),
               (int(rng.integers(0, 5)), int(rng.integers(0, 3)))][seed % 4]
    plan = make_plan(channels, out_channels, kernel, groups=groups, stride=stride,
                     dilation=dilation, padding=padding, seed=seed)
    products = plan.groups[0].n_in * plan.groups[0].n_out
    arith = ["mult", "mult", "mcm", "csd"][seed % 4 if seed % 8 < 4 else (seed + 1) % 4]
    options = dict(arith=arith)
    if arith == "mult":
        options["parallelism"] = int(rng.choice([1, max(1, products // 2), products]))
    one = min(n for n in range(1, 40) if plan.out_length(n) >= 1)
    lengths = [int(n) for n in rng.integers(1, plan.receptive_field + 6, 3)] + [one]
    if one > 1:
        lengths.insert(2, one - 1)           # too short: no output
    rng.shuffle(lengths)
    return plan, options, lengths


@pytest.mark.parametrize("seed", range(16))
def test_conv1d_equals_reference_with_stalls(seed):
    plan, options, lengths = random_case(seed)
    core = Conv1d(plan, **options)
    simulate(core, lengths, stall=[0.2, 0.3][seed % 2], seed=seed)


@pytest.mark.parametrize("seed", range(16, 24))
def test_unstalled_run_has_the_stated_timing(seed):
    plan, options, lengths = random_case(seed)
    core = Conv1d(plan, **options)
    run = simulate(core, lengths, seed=seed)
    in_cycles, out_cycles = core.schedule(lengths)
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)


def assert_schedule(run, core, lengths):
    in_cycles, out_cycles = core.schedule(lengths)
    np.testing.assert_array_equal(run.in_cycles, in_cycles)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)


def window_ends(plan, lengths, in_cycles):
    """For every output of an unstalled run: the cycle of the shift that completes its window
    (its last input step's acceptance, or that of the sequence's ``last`` plus the number of
    right padding steps it needs), per the docstring's one-shift-per-cycle rule."""
    ends, start = [], 0
    pad_left = plan.padding[0]
    for length in lengths:
        for t in range(plan.out_length(length)):
            step = t * plan.stride - pad_left + plan.receptive_field - 1
            if step < length:
                ends.append(in_cycles[start + step])
            else:
                ends.append(in_cycles[start + length - 1] + step - length + 1)
        start += length
    return np.asarray(ends)


@pytest.mark.parametrize("options, layer", [
    (dict(arith="mult", parallelism=24), dict(padding="same")),        # ii_d 1
    (dict(arith="mult", parallelism=6), dict(padding=(0, 2))),         # ii_d 4
    (dict(arith="mult", parallelism=4), dict(padding=1, stride=3)),    # ii_d 6 > stride
    (dict(arith="mcm", pipeline=1), dict(padding=(1, 3), stride=2)),
    (dict(arith="csd", pipeline=0), dict(padding="valid", stride=2, dilation=2)),
])
def test_latency_matches_the_formula(options, layer):
    plan = make_plan(2, 4, 3, seed=5, **layer)
    core = Conv1d(plan, **options)
    length, count = 9, 4
    run = simulate(core, [length] * count, seed=3)
    assert_schedule(run, core, [length] * count)
    # Every window's output comes `latency` cycles after the shift that completes it (the
    # stride is below latency + pad_right + 1 here, so no output waits for its `last`).
    assert plan.stride - plan.padding[1] <= core.latency - 1
    if core.cores[0].ii == 1:
        ends = window_ends(plan, [length] * count, run.in_cycles)
        np.testing.assert_array_equal(run.out_cycles - ends, core.latency)


@pytest.mark.parametrize("kernel, layer", [
    (3, dict(padding="same")), (4, dict(padding="same")), (5, dict(padding="same", dilation=2)),
    (3, dict(padding="valid")), (3, dict(padding=(2, 0))), (4, dict(padding=(1, 1))),
    (3, dict(padding=1, stride=2)), (5, dict(padding=(2, 1), stride=3)),
])
def test_back_to_back_sequences_enter_without_a_gap(kernel, layer):
    # Gap-free geometry and one window per cycle: the right padding of each sequence shifts
    # with the next sequence's first steps, so no input cycle is lost anywhere, and the final
    # sequence's padding windows follow its `last` one per cycle.
    plan = make_plan(2, 3, kernel, seed=kernel, **layer)
    core = Conv1d(plan, arith="mcm")
    assert core.gap_free and core.cores[0].ii == 1
    rng = np.random.default_rng(kernel)
    lengths = [int(n) for n in rng.integers(plan.padding[1] + 1, 12, 8)]
    run = simulate(core, lengths, seed=kernel)
    np.testing.assert_array_equal(run.in_cycles, np.arange(sum(lengths)))
    assert_schedule(run, core, lengths)
    ends = window_ends(plan, lengths, run.in_cycles)
    assert (run.out_cycles - ends >= core.latency).all()
    if plan.stride - plan.padding[1] <= core.latency - 1:
        np.testing.assert_array_equal(run.out_cycles - ends, core.latency)


def test_geometry_that_is_not_gap_free_waits_only_as_modelled():
    # Right padding as long as the shifts before a first window (3 ≥ 5 − 2), and explicit
    # left padding: the next sequence waits for the tail; the model says exactly how long.
    for padding in [(2, 3), (5, 1)]:
        plan = make_plan(2, 2, 5, padding=padding, seed=8)
        core = Conv1d(plan, arith="mcm")
        assert not core.gap_free
        lengths = [6, 1, 3, 9, 2]
        run = simulate(core, lengths, seed=2)
        assert_schedule(run, core, lengths)
        assert (np.diff(run.in_cycles) > 1).any()
        simulate(core, lengths, stall=0.3, seed=3)


def test_no_window_is_made_for_a_sequence_not_yet_offered():
    # Explicit left padding shifts only once the sequence's first step is offered: after the
    # final sequence nothing more comes out (it once made the next one's padding windows).
    plan = make_plan(3, 3, 1, groups=3, padding=2, in_format=UQ(2, 3), out_format=UQ(4, 2),
                     seed=12)
    core = Conv1d(plan, arith="csd")
    xs, frame = make_sequences(plan, [1, 4, 2])
    expected = sum(len(conv1d(plan, x)) for x in xs)
    with pytest.raises(TimeoutError, match="cycles"):
        run_stream(core, frame, n_outputs=expected + 1, max_cycles=400)


def test_schedule_arrivals_are_checked():
    core = Conv1d(make_plan(2, 2, 3, padding="same"), arith="mcm")
    for arrivals in ([0, 1], [3, 2, 4], [-1, 0, 1], [0.5, 1, 2]):
        with pytest.raises(ParameterValueError, match="^arrivals must be 3 non-decreasing"):
            core.schedule([3], arrivals)
    in_cycles, _ = core.schedule([3], [0, 5, 5])
    np.testing.assert_array_equal(in_cycles, [0, 5, 6])


def test_large_stride_waits_for_last_only_as_stated():
    # stride 7 > latency: a window completed 1 … 6 steps before its sequence's end is the
    # last one, and that is known only at `last`.
    plan = make_plan(1, 2, 2, stride=7, seed=2)
    core = Conv1d(plan, arith="mcm", pipeline=0)
    assert plan.stride > core.latency
    lengths = [16, 2, 9, 8, 3, 15]
    run = simulate(core, lengths, seed=4)
    in_cycles, out_cycles = core.schedule(lengths)
    np.testing.assert_array_equal(run.out_cycles, out_cycles)
    ends = window_ends(plan, lengths, run.in_cycles)
    assert (run.out_cycles - ends > core.latency).any()
    assert (run.out_cycles - ends >= core.latency).all()
    simulate(core, lengths, stall=0.3, seed=5)


def test_groups_of_unequal_latency_keep_full_rate():
    # Group 0's graph is deep, group 1's weights are powers of two (no adders but the
    # sums): their shift-add cores differ in latency and the fast one waits in a FIFO.
    rng = np.random.default_rng(9)
    weight = np.concatenate([rng.uniform(-1, 1, (2, 2, 3)), np.full((2, 2, 3), 0.25)])
    plan = make_plan(4, 4, 3, groups=2, padding="same", weight=weight)
    core = Conv1d(plan, arith="mcm", pipeline=1)
    latencies = [dense.latency for dense in core.cores]
    assert latencies[0] != latencies[1]
    lengths = [7, 1, 5, 12]
    run = simulate(core, lengths, seed=6)
    np.testing.assert_array_equal(run.out_cycles, core.schedule(lengths)[1])
    # The one-step sequence ends inside the previous one's tail: one padding cycle there.
    np.testing.assert_array_equal(np.diff(run.in_cycles), [1] * 7 + [2] + [1] * 16)
    simulate(core, lengths, stall=0.25, seed=7)


def test_too_short_sequences_give_nothing_and_reset_the_state():
    plan = make_plan(2, 3, 4, dilation=2, stride=2, seed=11)     # receptive field 7
    assert plan.out_length(6) == 0 and plan.out_length(7) == 1
    core = Conv1d(plan, parallelism=4)
    # Too short first, between others, twice in a row, and last.
    simulate(core, [3, 9, 6, 1, 7, 2, 6], stall=0.3, seed=8)
    simulate(core, [6, 7], seed=9)


def test_depthwise_unsigned_input_and_one_step_kernel():
    plan = make_plan(3, 3, 1, groups=3, padding=2, in_format=UQ(2, 3), out_format=UQ(4, 2),
                     seed=12)
    core = Conv1d(plan, arith="csd")
    assert core.explicit_padding == 2
    simulate(core, [1, 4, 2], stall=0.2, seed=10)
    core = Conv1d(make_plan(4, 4, 3, groups=4, padding="same", seed=13), parallelism=2)
    simulate(core, [5, 1, 8], stall=0.3, seed=11)


def test_long_run_on_a_compiled_engine():
    plan = make_plan(4, 6, 5, groups=2, padding="same", seed=14)
    core = Conv1d(plan, parallelism=5)
    lengths = [int(n) for n in np.random.default_rng(15).integers(1, 40, 60)]
    run = simulate(core, lengths, stall=0.25, seed=12, engine="cxxrtl")
    assert run.engine == "cxxrtl"
    core = Conv1d(make_plan(3, 4, 4, stride=3, dilation=2, padding=(4, 2), seed=16),
                  arith="mcm")
    run = simulate(core, lengths, seed=13, engine="cxxrtl")
    np.testing.assert_array_equal(run.out_cycles, core.schedule(lengths)[1])


def test_properties_and_describe():
    plan = make_plan(4, 6, 3, groups=2, stride=2, padding=(5, 1), seed=17)
    core = Conv1d(plan, parallelism=3)
    # Each group: n_in 6, n_out 3, 18 products on 3 multipliers: ii_d 6.
    assert core.plan is plan and len(core.cores) == 2 and core.parallelism == 3
    assert core.multipliers == 6 and core.arith == "mult"
    assert core.window_ii == 6 and core.ii == 3 and core.latency == 6 + 4 + 1
    assert core.explicit_padding == 3 and not core.gap_free
    assert core.in_format == plan.in_format and core.out_format == plan.out_format
    info = json.loads(json.dumps(core.describe()))
    assert info["kind"] == "conv1d" and info["class"] == "Conv1d"
    assert info["multipliers"] == 6 and info["latency"] == 11 and info["ii"] == 3
    assert info["padding"] == [5, 1] and info["groups"] == 2
    assert [group["kind"] for group in info["group_cores"]] == ["dense", "dense"]
    assert info["group_cores"][1]["n_in"] == 6 and info["group_cores"][1]["multipliers"] == 3
    assert Conv1d(plan, arith="mcm").multipliers == 0


def test_conv1d_parameter_errors():
    plan = make_plan(2, 2, 3)
    dense = plan_dense(np.ones((2, 2)) / 4, in_format=SQ(1, 5), weight_format=SQ(1, 5),
                       out_format=SQ(3, 4))
    cases = [
        (dict(plan=dense), ParameterTypeError, "plan",
         "plan must be a Conv1dPlan (see hwnn.plans.conv1d.plan_conv1d), not DensePlan("),
        (dict(plan=plan, parallelism=13), ParameterValueError, "parallelism",
         "parallelism must be an integer between 1 and 12, not 13$"),
        (dict(plan=plan, arith="mcm", parallelism=2), ParameterValueError, "parallelism",
         "parallelism applies to arith 'mult' only, got parallelism=2$"),
        (dict(plan=plan, pipeline=1), ParameterValueError, "pipeline",
         "not to arith 'mult'; got pipeline=1$"),
        (dict(plan=plan, arith="fft"), ParameterValueError, "arith", "arith must be one of"),
        (dict(plan=plan, arith="csd", pipeline=-1), ParameterValueError, "pipeline",
         "pipeline must be"),
    ]
    for kwargs, error, parameter, message in cases:
        with pytest.raises(error, match=re.escape(message.rstrip("$"))
                           + ("$" if message.endswith("$") else "")) as info:
            Conv1d(**kwargs)
        assert info.value.parameter == parameter


def test_conv1d_exports_verilog_with_framed_stream_ports():
    core = Conv1d(make_plan(2, 4, 3, groups=2, padding="same"), parallelism=3)
    text = verilog.convert(core, name="conv")
    assert "module conv" in text
    for port in ["i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready"]:
        assert port in text
    # Framed payloads: 2 channels of 6 bits plus last in, 4 of 7 bits plus last out.
    assert re.search(r"input \[12:0\] i__payload;", text)
    assert re.search(r"output \[28:0\] o__payload;", text)


@needs_verilator
def test_exported_verilog_lints_clean(tmp_path):
    # Shift-add groups of unequal latency (a FIFO on the fast one), left padding beyond the
    # buffer (explicit padding steps) and right padding.
    rng = np.random.default_rng(9)
    weight = np.concatenate([rng.uniform(-1, 1, (2, 2, 3)), np.full((2, 2, 3), 0.25)])
    core = Conv1d(make_plan(4, 4, 3, groups=2, padding=(4, 2), weight=weight), arith="mcm")
    (tmp_path / "conv.v").write_text(core_verilog(core, "conv"))
    result = run_verilator(verilator("--lint-only", "-Wall", "conv.v"), tmp_path)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


@pytest.mark.synth
def test_synthesizes_one_dsp_per_multiplier():
    core = Conv1d(make_plan(2, 4, 3, groups=2, padding="same"), parallelism=2)
    report = synthesize(core, "ice40-up5k", name="conv")
    assert report.dsps == core.multipliers == 4
    # The window buffer: 3 steps of 2 channels of 6 bits at least.
    assert report.ffs >= 3 * 2 * 6
