# amaranth: UnusedElaboratable=no
"""Bidirectional and stacked LSTM/GRU layers in networks: spec, plan, reference, float model,
core (exact under stalls, timed exactly without), metrics, errors and the CLI."""

import re
import shutil
from types import MappingProxyType

import numpy as np
import pytest

from hwnn import SQ, cli
from hwnn.cores._component import inspected
from hwnn.cores.network import Network, step_cycles
from hwnn.flow import generate
from hwnn.metrics import layer_metrics, recurrent_metrics
from hwnn.plans.bidirectional import BidirectionalPlan
from hwnn.plans.conv1d import plan_conv1d
from hwnn.plans.network import Layer, TimingUnknown, plan_network
from hwnn.plans.rnn import plan_recurrent
from hwnn.ref.network import network, network_layers
from hwnn.ref.rnn import recurrent
from hwnn.ref.rnn_float import rnn_float
from hwnn.sim import run_stream
from hwnn.spec import SpecError, load_spec
from sequences import random_sequences
from test_plans_rnn import weights
from test_testbench import run_icarus

FIELDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def state_dict(kind, name, hidden, inputs, layers=1, directions=1, seed=0):
    """PyTorch's state_dict of an nn.LSTM/nn.GRU, its default initialization."""
    arrays = {}
    for layer in range(layers):
        width = inputs if layer == 0 else directions * hidden
        for direction in range(directions):
            w = weights(kind, hidden=hidden, inputs=width, seed=seed + 2 * layer + direction)
            for field, a in zip(FIELDS, w):
                arrays[f"{name}.{field}_l{layer}{'_reverse' if direction else ''}"] = a
    return arrays


def spec_text(kind="lstm", extra="", steps=16, bits=8, head=""):
    return f'''[core]
kind = "network"
name = "bi"
[params]
in_format = "SQ(1,{bits - 1})"
weights = "bi.npz"
sequence_length = {steps}
bits = {bits}
[[params.layers]]
kind = "{kind}"
name = "rnn"
{extra}
{head}'''


def write(tmp_path, text, arrays):
    np.savez(tmp_path / "bi.npz", **arrays)
    (tmp_path / "bi.toml").write_text(text)
    return tmp_path / "bi.toml"


def back_to_back(core, plan, lengths, seed, stall=0.3):
    """Sequences of ``lengths`` back to back: exact under random stalls on both sides, and,
    without stalls, every transfer in the cycle the network's schedule says."""
    xs, stream = random_sequences(plan.in_format, plan.n_in, lengths, seed=seed)
    want = np.concatenate([network(plan, x) for x in xs])
    run = run_stream(core, stream, n_outputs=len(want), stall_in=stall, stall_out=stall,
                     seed=seed, max_cycles=200_000)
    np.testing.assert_array_equal(run.outputs["data"], want)
    np.testing.assert_array_equal(run.outputs["last"], stream["last"])
    steady = run_stream(core, stream, n_outputs=len(want), max_cycles=200_000)
    in_cycles, out_cycles = core.schedule(lengths)
    np.testing.assert_array_equal(steady.in_cycles, in_cycles)
    np.testing.assert_array_equal(steady.out_cycles, out_cycles)
    return steady


# --- spec -> plan -> reference -> core ------------------------------------------------------

@pytest.mark.parametrize("kind, extra", [
    ("lstm", 'arith = "mcm"'),
    ("gru", "parallelism = 5\nreset_after = false\nmethod = \"lut\""),
])
def test_bidirectional_layer_from_the_spec(tmp_path, kind, extra):
    arrays = state_dict(kind, "rnn", hidden=2, inputs=2, directions=2)
    design = load_spec(write(tmp_path, spec_text(kind, "bidirectional = true\n" + extra),
                             arrays))
    (layer,) = design.plan.layers
    assert layer.kind == "bidirectional" and layer.options["max_steps"] == 16
    assert isinstance(layer.plan, BidirectionalPlan) and design.out_lanes == 4
    # Each direction its own formats, from its own weights.
    reset_after = kind == "lstm"
    for direction, plan in enumerate(layer.plan.directions):
        suffix = "_l0_reverse" if direction else "_l0"
        want = plan_recurrent(kind, *(arrays[f"rnn.{f}{suffix}"] for f in FIELDS),
                              in_format=SQ(1, 7), bits=8, reverse=bool(direction),
                              reset_after=reset_after,
                              method="lut" if kind == "gru" else "pwl")
        assert plan.describe() == want.describe()
    # The reference: PyTorch's order, the reverse direction from each sequence's end.
    x = np.random.default_rng(1).integers(-128, 128, (2, 16, 2))
    y = design.reference(x)
    np.testing.assert_array_equal(y[..., :2], recurrent(layer.plan.forward, x)[0])
    np.testing.assert_array_equal(y[..., 2:], recurrent(layer.plan.reverse, x)[0])
    # The float model is PyTorch's bidirectional module.
    real = x / 128
    np.testing.assert_array_equal(design.float_model(real)[0],
                                  rnn_float(kind, arrays, real, prefix="rnn.",
                                            reset_after=reset_after)[0])
    core = design.build()
    steady = back_to_back(core, design.plan, [16, 3, 16, 1], seed=2)
    assert np.all(np.diff(steady.in_cycles[:16]) == core.ii)
    assert core.ii == core.cores[0].cores[0].step_cycles == step_cycles(design.plan)["rnn"]
    # Back to back at full rate: a sequence every `period` cycles once the banks are in use
    # (a sequence loads while the one before it is reversed and sent).
    periodic = run_stream(core, {"data": np.zeros((96, 2), dtype=np.int64),
                                 "last": np.arange(96) % 16 == 15}, n_outputs=96)
    assert periodic.in_cycles[80] - periodic.in_cycles[64] == core.period(16)


def test_stacked_lstm_is_one_layer_per_pytorch_layer(tmp_path):
    arrays = state_dict("lstm", "rnn", hidden=2, inputs=3, layers=2)
    design = load_spec(write(tmp_path, spec_text("lstm", 'num_layers = 2\narith = "csd"'),
                             arrays))
    assert [(layer.name, layer.kind) for layer in design.plan.layers] == [
        ("rnn", "lstm"), ("rnn_l1", "lstm")]
    first, second = (layer.plan for layer in design.plan.layers)
    assert second.in_format == first.state_format and second.input_size == 2
    real = np.random.default_rng(3).uniform(-1, 1, (3, 16, 3))
    floats = design.float_model(real)
    np.testing.assert_array_equal(floats[-1], rnn_float("lstm", arrays, real, prefix="rnn.")[0])
    back_to_back(design.build(), design.plan, [16, 5, 16], seed=4)


def test_stacked_bidirectional_paces_the_first_layer_to_the_second(tmp_path):
    arrays = state_dict("gru", "rnn", hidden=2, inputs=2, layers=2, directions=2, seed=5)
    design = load_spec(write(tmp_path, spec_text(
        "gru", 'num_layers = 2\nbidirectional = true\narith = "mcm"\nmethod = "hard"'), arrays))
    assert [(layer.name, layer.kind) for layer in design.plan.layers] == [
        ("rnn", "bidirectional"), ("rnn_l1", "bidirectional")]
    assert design.plan.layers[1].plan.input_size == 4 and design.out_lanes == 4
    core = design.build()
    first, second = core.cores
    # The first layer emits no faster than the second one loads its steps.
    assert first.pace == second.ii > 2 and second.pace == 1
    back_to_back(core, design.plan, [16, 2, 9], seed=6)
    # The two layers may wait for each other at sequence boundaries: the period is the
    # schedule's (at least either layer's own), and it is what a run takes. The network's
    # input is not throttled to the second layer's steps: the first one stores them.
    assert core.ii == first.ii < second.ii and not core.throttled
    periodic = run_stream(core, {"data": np.zeros((96, 2), dtype=np.int64),
                                 "last": np.arange(96) % 16 == 15}, n_outputs=96)
    assert np.all(np.diff(periodic.in_cycles[::16])[-2:] == core.period(16))
    assert core.period(16) >= max(first.period(16), second.period(16))
    real = np.random.default_rng(7).uniform(-1, 1, (2, 16, 2))
    np.testing.assert_array_equal(design.float_model(real)[-1],
                                  rnn_float("gru", arrays, real, prefix="rnn.")[0])


def test_return_sequences_false_is_the_last_output_step(tmp_path):
    rng = np.random.default_rng(8)
    arrays = {**state_dict("lstm", "rnn", hidden=2, inputs=2, directions=2),
              "fc.weight": rng.uniform(-.5, .5, (1, 4)), "fc.bias": rng.uniform(-.2, .2, 1)}
    head = '''[[params.layers]]
kind = "dense"
name = "fc"
parallelism = 1
weight_format = "SQ(1,7)"
out_format = "SQ(3,5)"'''
    design = load_spec(write(tmp_path, spec_text(
        "lstm", 'bidirectional = true\narith = "mcm"\nreturn_sequences = false', head=head),
        arrays))
    assert [layer.kind for layer in design.plan.layers] == ["bidirectional", "last", "dense"]
    x = rng.integers(-128, 128, (3, 16, 2))
    outputs = network_layers(design.plan, x)
    # out[:, -1]: the reverse half is the reverse direction after one step, not its h_n.
    np.testing.assert_array_equal(outputs[1], outputs[0][:, -1])
    reverse = design.plan.layers[0].plan.reverse
    np.testing.assert_array_equal(outputs[1][:, 2:], recurrent(reverse, x[:, -1:])[0][:, 0])
    core = design.build()
    xs, stream = random_sequences(SQ(1, 7), 2, [16, 4, 16], seed=9)
    want = np.stack([network(design.plan, v) for v in xs])
    run = run_stream(core, stream, n_outputs=3, stall_in=0.3, stall_out=0.3, seed=9)
    np.testing.assert_array_equal(np.asarray(run.outputs).reshape(want.shape), want)
    in_cycles, out_cycles = core.schedule([16, 4, 16])
    steady = run_stream(core, stream, n_outputs=3)
    np.testing.assert_array_equal(steady.in_cycles, in_cycles)
    np.testing.assert_array_equal(steady.out_cycles, out_cycles)


def test_the_float_model_is_close_at_16_bits(tmp_path):
    arrays = state_dict("lstm", "rnn", hidden=4, inputs=2, directions=2, seed=11)
    design = load_spec(write(tmp_path, spec_text("lstm", "bidirectional = true", bits=16),
                             arrays))
    real = np.random.default_rng(12).uniform(-1, 1, (20, 16, 2))
    codes = np.round(real * 2 ** 15).astype(np.int64)
    got = design.reference(codes) / 2 ** 15
    error = got - design.float_model(real)[0]
    # The bound of tests/test_network_rnn.py for one direction: each direction is such a layer.
    assert np.sqrt(np.mean(error ** 2)) < 2e-3


# --- plan, metrics, errors -------------------------------------------------------------------

def bidirectional_plan(kind="lstm", bits=8):
    forward = plan_recurrent(kind, *weights(kind, 2, 2, seed=0), in_format=SQ(1, bits - 1),
                             bits=bits)
    reverse = plan_recurrent(kind, *weights(kind, 2, 2, seed=1), in_format=SQ(1, bits - 1),
                             bits=bits, reverse=True)
    return BidirectionalPlan(forward, reverse)


def test_plan_timing_needs_the_core_and_max_steps():
    plan = plan_network([Layer("bi", "bidirectional", bidirectional_plan(),
                               MappingProxyType({"max_steps": 8, "arith": "mcm"}))])
    assert plan.lanes == ((2, 4),) and plan.sequences == (True, True) and plan.recurrent
    with pytest.raises(TimingUnknown, match=re.escape(
            "layer 'bi' (bidirectional): its cycles per time step are known only from its "
            "core (Bidirectional(plan).ii)")):
        plan.ii
    assert plan.pacing({"bi": 30}) == (1,)
    with pytest.raises(ValueError, match=re.escape(
            "layers[0] (bi): a bidirectional layer needs option max_steps, a positive integer "
            "(its longest sequence), not None")):
        plan_network([Layer("bi", "bidirectional", bidirectional_plan())])
    with pytest.raises(TypeError, match="a bidirectional layer needs a BidirectionalPlan, not "
                                        "RecurrentPlan"):
        plan_network([Layer("bi", "bidirectional", bidirectional_plan().forward,
                            MappingProxyType({"max_steps": 8}))])
    x = np.zeros((1, 9, 2), dtype=np.int64)
    with pytest.raises(ValueError, match=re.escape(
            "layer 'bi' (bidirectional) takes sequences of at most 8 steps (its max_steps), "
            "not 9")):
        network(plan, x)


def test_a_padded_conv_after_it_is_paced_and_timed_exactly():
    bi = bidirectional_plan()
    rng = np.random.default_rng(3)
    conv = plan_conv1d(rng.uniform(-.5, .5, (2, 4, 3)), None, in_format=bi.out_format,
                       weight_format=SQ(1, 7), out_format=SQ(3, 5), padding="same")
    plan = plan_network([Layer("bi", "bidirectional", bi, MappingProxyType(
                             {"max_steps": 16, "arith": "csd"})),
                         Layer("conv", "conv1d", conv, MappingProxyType({"parallelism": 3}))])
    core = Network(plan)
    # 12 products on 3 multipliers: a window every 4 cycles at least; the layer emits no
    # faster than the conv takes windows.
    assert core.cores[0].pace == core.cores[1].take_ii >= 4
    back_to_back(core, plan, [16, 3, 16, 1], seed=3)


def test_metrics_are_both_directions():
    plan = bidirectional_plan()
    m = layer_metrics(plan)
    one, other = (recurrent_metrics(p) for p in plan.directions)
    assert m.kind == "bilstm" and m.rm == one.rm + other.rm > 0
    assert m.bop == pytest.approx(one.bop + other.bop, rel=1e-12)
    assert m.nabs == one.nabs + other.nabs
    core = Network(plan_network([Layer("bi", "bidirectional", plan, MappingProxyType(
        {"max_steps": 4, "arith": "mcm"}))])).cores[0]
    assert layer_metrics(core).nabs == sum(recurrent_metrics(p, arith="mcm").nabs
                                           for p in plan.directions)


@pytest.mark.parametrize("extra, drop, add, field, message", [
    ("bidirectional = true", "rnn.weight_hh_l0_reverse", {}, "params.layers[0].weights",
     "bi.npz has no array 'rnn.weight_hh_l0_reverse' for layer 'rnn' (bidirectional = true)"),
    ("num_layers = 2", "rnn.weight_ih_l1", {}, "params.layers[0].weights",
     "bi.npz has no array 'rnn.weight_ih_l1' for layer 'rnn' (num_layers = 2)"),
    ("", None, {"rnn.weight_ih_l1": np.zeros((8, 2))}, "params.layers[0].weights",
     "bi.npz holds 'rnn.weight_ih_l1', layer 1 of a stacked module, but num_layers is 1: set "
     "num_layers = 2"),
    ("num_layers = 2", None, {"rnn.weight_ih_l1": np.zeros((8, 3))}, "params.layers[0].weights",
     "array 'rnn.weight_ih_l1' in bi.npz must have shape (8, 2) (4 gates of hidden size 2, "
     "layer 1 takes layer 0's 1·2 outputs), not (8, 3)"),
    ("", None, {"rnn.bias_hh_l0_reverse": np.zeros(8)}, "params.layers[0].weights",
     "holds 'rnn.bias_hh_l0_reverse', a reverse direction, but bidirectional is false"),
    ("max_steps = 4", None, {}, "params.layers[0].max_steps",
     "applies to a bidirectional layer (bidirectional = true)"),
    ("num_layers = 0", None, {}, "params.layers[0].num_layers", "at least 1"),
    ("bidirectional = 1", None, {}, "params.layers[0].bidirectional", "true or false"),
    ("bidirectional = true\nparallelism = 33", None, {}, "params.layers[0].parallelism",
     "must be between 1 and 32 (the products of the MAC over [x; h] of 'rnn.weight_ih_l0'), "
     "not 33"),
])
def test_spec_errors(tmp_path, extra, drop, add, field, message):
    arrays = state_dict("lstm", "rnn", hidden=2, inputs=2, directions=2, layers=2)
    keep = {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"}
    if "bidirectional = true" in extra:
        keep |= {k + "_reverse" for k in keep}
    if "num_layers = 2" in extra:
        keep |= {k.replace("_l0", "_l1") for k in keep}
    arrays = {k: v for k, v in arrays.items() if k in keep and k != drop}
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, spec_text("lstm", extra), {**arrays, **add}))
    assert info.value.field == field and message in info.value.message, info.value


def test_spec_max_steps_replaces_the_sequence_length(tmp_path):
    arrays = state_dict("gru", "rnn", hidden=2, inputs=2, directions=2)
    design = load_spec(write(tmp_path, spec_text("gru", "bidirectional = true\nmax_steps = 20"),
                             arrays))
    assert design.plan.layers[0].options["max_steps"] == 20
    assert network(design.plan, np.zeros((1, 20, 2), dtype=np.int64)).shape == (1, 20, 4)


def test_spec_needs_max_steps_without_a_sequence_length(tmp_path):
    arrays = state_dict("lstm", "rnn", hidden=2, inputs=2, directions=2)
    text = spec_text("lstm", "bidirectional = true").replace("sequence_length = 16\n", "")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text, arrays))
    assert info.value.field == "params.layers[0].max_steps"
    assert "a bidirectional layer stores each sequence" in info.value.message


# --- CLI: a bidirectional LSTM with a per-step head (the equalizer's shape) ----------------

CONV_HEAD = '''[[params.layers]]
kind = "conv1d"
name = "head"
parallelism = 2
weight_format = "SQ(1,7)"
out_format = "SQ(3,5)"'''


def test_cli_plan_sim_float_and_generate(tmp_path, capsys):
    rng = np.random.default_rng(13)
    arrays = {**state_dict("lstm", "rnn", hidden=2, inputs=1, directions=2, seed=3),
              "head.weight": rng.uniform(-.5, .5, (1, 4, 1)), "head.bias": rng.uniform(-.2, .2, 1)}
    spec = write(tmp_path, spec_text("lstm", 'bidirectional = true\narith = "mcm"',
                                     head=CONV_HEAD), arrays).as_posix()
    assert cli.main(["plan", spec]) == 0
    out = capsys.readouterr().out
    design = load_spec(spec)
    core = inspected(design.build())
    bi = core.cores[0]
    # The conv takes a window every 2 cycles (4 products on 2 multipliers): the layer emits
    # no faster (at least every 2 cycles anyway).
    assert bi.pace == core.cores[1].take_ii == 2
    assert re.search(rf"rnn\s+bilstm mcm pwl\s+SQ\(1, 7\) -> SQ\(1, 7\)\s+1 -> 4\s+{bi.ii}\s+"
                     rf"{bi.latency}\s+{bi.multipliers}\s", out), out
    assert f"a sequence of 16 steps every {core.period(16)} cycles" in out
    x = rng.uniform(-1, 1, (3, 16, 1))
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["sim", spec, "--inputs", str(tmp_path / "x.npy"), "--output",
                     str(tmp_path / "y.npy"), "--engine", "pysim", "--float"]) == 0
    out = capsys.readouterr().out
    assert "bi: 3 sequences bit-exact (core == reference)" in out
    assert re.search(r"rnn\s+SQ\(1, 7\)\s+[0-9.e-]+\s+[0-9.e-]+", out)
    codes = np.round(x * 128).clip(-128, 127).astype(np.int64)
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 16, 1)
    np.testing.assert_array_equal(y, design.reference(codes) / 32)
    assert cli.main(["sim", spec, "--vectors", "2", "--engine", "pysim", "--stall", "0"]) == 0
    assert "timing of every input and output: as modelled\n" in capsys.readouterr().out
    assert cli.main(["generate", spec, "-o", str(tmp_path / "gen"), "--testbench", "2"]) == 0
    assert "module bi" in (tmp_path / "gen" / "bi.v").read_text()
    assert len((tmp_path / "gen" / "bi_out.hex").read_text().splitlines()) == 32


def test_generated_testbench_checks_a_bidirectional_network(tmp_path):
    arrays = state_dict("lstm", "rnn", hidden=2, inputs=2, directions=2, seed=9)
    design = load_spec(write(tmp_path, spec_text("lstm", 'bidirectional = true\narith = "mcm"',
                                                 steps=6), arrays))
    written = generate(design, tmp_path / "gen", testbench=2, seed=3)
    assert len((tmp_path / "gen" / "bi_out.hex").read_text().splitlines()) == 12
    if not shutil.which("iverilog"):
        pytest.skip("needs Icarus Verilog to run the testbench")
    out = run_icarus(written["testbench"].parent, name="bi")
    assert "PASS 12 vectors" in out, out
